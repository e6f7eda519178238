"""`koppel run`: the whole service on one machine, on the embedded defaults.

Migrate the database, start a private Redis, then the Exact sandbox, the API and the
workers as child processes (the same `koppel sandbox|api|worker` commands production
runs), set up the demo integration, print where everything is, and watch.

Each child runs in its own session, so Ctrl-C in the terminal reaches only this process,
which then stops the children in a safe order: API and workers first (a worker finishes
the booking it holds), then the sandbox, then Redis. Redis too is started from a child
(`python -m app.embedded redis PORT`), or the terminal's Ctrl-C would reach it directly
and pull it away from workers that are still finishing. If any child dies, everything
stops and `koppel run` exits non-zero.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import httpx

from app.embedded_redis import free_port, start_private_redis
from app.settings import get_settings

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0  # a worker may take arq's job_completion_wait (20 s) to finish a booking


def _say(message: str) -> None:
    print(f"koppel run: {message}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: a child gets SIGTERM should `koppel run` itself be killed outright (kill -9)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class Embedded:
    port: int = 8000
    sandbox_port: int = 8090
    workers: int = 1
    children: list[Child] = field(default_factory=list)

    # --- the pieces ------------------------------------------------------------------------

    def spawn(self, name: str, module: str, *args: str, env: dict[str, str]) -> None:
        process = subprocess.Popen([sys.executable, "-m", module, *args], env=env, start_new_session=True,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self.children.append(Child(name, process))

    def first_dead(self) -> str | None:
        for child in self.children:
            if child.process.poll() is not None:
                return f"the {child.name} (pid {child.process.pid}) exited with code {child.process.returncode}"
        return None

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        """Until `ready()`; a child dying or the time running out is fatal."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            dead = self.first_dead()
            if dead:
                raise RuntimeError(f"{dead} while waiting for the {what}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the {what} did not get ready within {STARTUP_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """API and workers, then the sandbox, then Redis; each gets STOP_TIMEOUT, then a kill."""
        last = ("sandbox", "redis")
        stages = [[c for c in self.children if c.name not in last],
                  *([c for c in self.children if c.name == name] for name in last)]
        for group in stages:
            for child in group:
                if child.process.poll() is None:
                    child.process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            for child in group:
                try:
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _say(f"the {child.name} (pid {child.process.pid}) did not stop in time; killing it")
                    child.process.kill()
                    child.process.wait()

    # --- the whole run ---------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        from app.db.migrate import upgrade
        from app.demo import set_up

        settings = get_settings()
        upgrade(settings.database_url)
        _say(f"database {settings.database_url} is at the newest migration")
        env = {**os.environ, "KOPPEL_DATABASE_URL": settings.database_url}
        env.setdefault("KOPPEL_LOG_JSON", "false")  # a person reads this terminal
        redis_url = settings.redis_url
        if not redis_url:
            redis_port = free_port()
            self.spawn("redis", "app.embedded", "redis", str(redis_port), env=env)
            self.wait_for(lambda: _redis_answers(redis_port), "private Redis")
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        env["KOPPEL_REDIS_URL"] = redis_url
        _say(f"redis at {redis_url}")

        sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        api_url = f"http://127.0.0.1:{self.port}"
        self.spawn("sandbox", "app.cli", "sandbox", "--port", str(self.sandbox_port), "--log-level", "warning",
                   env=env)
        self.wait_for(lambda: _answers(f"{sandbox_url}/sandbox/info"), "Exact sandbox")
        demo = asyncio.run(set_up(settings, api_url=api_url, sandbox_url=sandbox_url, redis_url=redis_url))
        self.spawn("API", "app.cli", "api", "--port", str(self.port), env=env)
        for n in range(self.workers):
            self.spawn("worker" if self.workers == 1 else f"worker {n + 1}", "app.cli", "worker", env=env)
        self.wait_for(lambda: _answers(f"{api_url}/readyz"), "API")
        return demo

    def supervise(self) -> str:
        while True:
            dead = self.first_dead()
            if dead:
                return dead
            time.sleep(0.2)


def banner(demo: dict[str, Any], workers: int) -> str:
    api = demo["api_url"]
    return "\n".join([
        "",
        f"  Koppel is running ({workers} worker{'s' if workers != 1 else ''}); Ctrl-C stops everything.",
        "",
        f"  API            {api}",
        f"  API docs       {api}/docs",
        f"  Exact sandbox  {demo['sandbox_url']}  (division {demo['division']}, state: /sandbox/state)",
        "",
        f"  Demo webshop (tenant \"Demo B.V.\", integration {demo['integration_id']}, source generic):",
        f"    webhook URL     {demo['webhook_url']}",
        f"    webhook secret  {demo['webhook_secret']}",
        f"    API key         {demo['api_key']}   (operator; Authorization: Bearer …)",
        "    saved in        var/demo.json",
        "",
        "  try:  koppel demo",
        "",
    ])


def run(*, port: int = 8000, sandbox_port: int = 8090, workers: int = 1) -> int:
    """Run until Ctrl-C or SIGTERM (exit 0), or until a child dies (exit 1)."""
    busy = [p for p in (port, sandbox_port) if not _port_is_free(p)]
    if busy:
        _say(f"port {', '.join(map(str, busy))} is in use (another koppel run?); choose others with "
             "--port / --sandbox-port")
        return 2
    embedded = Embedded(port=port, sandbox_port=sandbox_port, workers=workers)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        demo = embedded.start()
        print(banner(demo, workers), flush=True)
        dead = embedded.supervise()
        _say(f"{dead}; stopping everything")
        code = 1
    except KeyboardInterrupt:
        _say("stopping")
    except Exception as exc:  # noqa: BLE001 - any failure to start: say what, stop the rest
        _say(f"could not start: {type(exc).__name__}: {exc}; stopping everything")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            embedded.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    _say("stopped" if code == 0 else "stopped after an error")
    return code


def hold_redis(port: int) -> int:
    """`python -m app.embedded redis PORT`: keep a private Redis until SIGTERM, then stop it."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only our parent decides when Redis goes
    server = start_private_redis(port)
    try:
        while server.process.poll() is None:
            time.sleep(0.2)
        return 1  # it died by itself
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] != ["redis"] or len(sys.argv) != 3:
        sys.exit("usage: python -m app.embedded redis PORT")
    sys.exit(hold_redis(int(sys.argv[2])))
