"""Start and stop servers in their own processes for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None, ready_url: str | None = None,
            timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    # Output goes to a file: an unread pipe fills up and stalls the server mid-benchmark.
    os.makedirs(os.path.join(ROOT, "var"), exist_ok=True)
    log = open(os.path.join(ROOT, "var", f"bench-{os.path.basename(args[-1] if args else 'proc')}-{os.getpid()}.log"), "ab")
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
    try:
        if ready_url:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{args} exited; see {log.name}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args} did not become ready")
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def uvicorn(app: str, port: int, env: dict[str, str] | None = None, ready_path: str = "/docs"):  # type: ignore[no-untyped-def]
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
            "--timeout-keep-alive", "30"]
    return process(args, env=env, ready_url=f"http://127.0.0.1:{port}{ready_path}")
