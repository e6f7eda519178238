"""`koppel run` for real: child processes, a private Redis, the sandbox, `koppel demo`,
a clean stop on SIGTERM, a second run that duplicates nothing, and a dying child."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from app.embedded_redis import free_port

BANNER_END = "try:  koppel demo"


def koppel_command() -> list[str]:
    script = Path(sys.executable).with_name("koppel")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log: Path
    api: str
    sandbox: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def start(workdir: Path, name: str) -> Run:
    api_port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "KOPPEL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'var' / 'koppel.db'}"}
    env.pop("KOPPEL_REDIS_URL", None)  # the private Redis is part of what is tested
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([*koppel_command(), "run", "--port", str(api_port), "--sandbox-port",
                                    str(sandbox_port)], cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT)
    run = Run(process, log, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}")
    deadline = time.monotonic() + 120
    while BANNER_END not in run.output():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(run)
            pytest.fail(f"koppel run did not come up (exit {process.returncode}):\n{run.output()}")
        time.sleep(0.2)
    assert httpx.get(f"{run.api}/readyz", timeout=5).json()["status"] == "ready"
    return run


def stop(run: Run, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if run.process.poll() is None:
        run.process.send_signal(sig)
    try:
        return run.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for child in run.descendants():
            child.kill()
        run.process.kill()
        run.process.wait(timeout=10)
        pytest.fail(f"koppel run did not stop within {timeout} s:\n{run.output()}")


def gone(processes: list[psutil.Process]) -> list[str]:
    """Those still alive (a zombie counts as gone: it runs nothing and holds no port)."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.NoSuchProcess:
            pass
    return alive


def table_rows(output: str) -> dict[str, list[str]]:
    """`koppel demo`'s table by order number (cut at the columns its dashed line marks)."""
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("--"))
    starts = [i for i, ch in enumerate(lines[at]) if ch == "-" and (i == 0 or lines[at][i - 1] == " ")]
    ends = [*starts[1:], None]
    rows = [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)]
            for line in lines[at + 1:] if line.startswith("DEMO-")]
    return {row[0]: row for row in rows}


@dataclass
class FirstRun:
    workdir: Path
    run: Run
    demo: subprocess.CompletedProcess[str]
    sandbox_state: dict
    children: list[psutil.Process]
    commands: list[str]  # the children's command lines, while they ran
    exit_code: int
    demo_file: dict


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    workdir = tmp_path_factory.mktemp("koppel-run")
    run = start(workdir, "first")
    try:
        children = run.descendants()
        commands = [" ".join(child.cmdline()) for child in children]
        demo = subprocess.run([*koppel_command(), "demo", "--url", run.api, "--wait", "90"], cwd=workdir,
                              capture_output=True, text=True, timeout=150)
        sandbox_state = httpx.get(f"{run.sandbox}/sandbox/state", timeout=5).json()
    finally:
        code = stop(run)
    yield FirstRun(workdir, run, demo, sandbox_state, children, commands, code,
                   json.loads((workdir / "var" / "demo.json").read_text()))


def test_run_books_the_demo_orders_and_stops_everything_on_sigterm(first_run: FirstRun) -> None:
    demo = first_run.demo
    assert demo.returncode == 0, demo.stdout + demo.stderr
    rows = table_rows(demo.stdout)
    assert len(rows) == 5, demo.stdout
    by_suffix = {number.rsplit("-", 1)[1]: row for number, row in rows.items()}
    domestic, bad_total, unpaid = by_suffix["1"], by_suffix["4"], by_suffix["5"]
    assert domestic[2] == "booked" and domestic[3].isdigit(), demo.stdout
    assert by_suffix["2"][2] == "booked" and by_suffix["3"][2] == "booked", demo.stdout  # ICP and export
    assert bad_total[2] == "failed" and "≠" in bad_total[3], demo.stdout
    assert unpaid[2] == "open", demo.stdout
    # The booked orders really are sales entries in the (sandbox) Exact division, once each.
    entries = first_run.sandbox_state["divisions"]["1234567"]["sales_entries"]
    booked = {row[0]: row[3] for row in (domestic, by_suffix["2"], by_suffix["3"])}
    assert sorted((e["YourRef"], str(e["EntryNumber"])) for e in entries) == sorted(booked.items())

    commands = first_run.commands
    for part in ("redis-server", "app.cli sandbox", "app.cli api", "app.cli worker"):
        assert sum(part in command for command in commands) == 1, commands
    assert first_run.exit_code == 0, first_run.run.output()
    assert gone(first_run.children) == []
    assert "koppel run: stopped" in first_run.run.output()

    demo_file = first_run.workdir / "var" / "demo.json"
    assert demo_file.stat().st_mode & 0o777 == 0o600
    banner = first_run.run.output()
    for value in (first_run.demo_file["webhook_secret"], first_run.demo_file["api_key"],
                  first_run.demo_file["webhook_url"], f"{first_run.run.api}/docs", first_run.run.sandbox):
        assert value in banner


def test_second_run_reuses_the_demo_and_a_dying_child_stops_everything(first_run: FirstRun) -> None:
    run = start(first_run.workdir, "second")
    try:
        children = run.descendants()
        demo_file = json.loads((first_run.workdir / "var" / "demo.json").read_text())
        api_key = demo_file["api_key"]
        orders = httpx.get(f"{run.api}/api/v1/orders", headers={"Authorization": f"Bearer {api_key}"}, timeout=5)
        worker = next(c for c in children if c.cmdline()[-1:] == ["worker"])
        worker.kill()
        code = run.process.wait(timeout=60)
    finally:
        stop(run)

    for name in ("webhook_secret", "api_key", "integration_id", "webhook_path"):
        assert demo_file[name] == first_run.demo_file[name], name
    assert orders.status_code == 200 and len(orders.json()["orders"]) == 5  # the first run's orders
    with sqlite3.connect(first_run.workdir / "var" / "koppel.db") as db:
        counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                  for table in ("tenants", "exact_connections", "integrations")}
        live_keys = db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]
        connection = db.execute("SELECT state, exact_user_name, base_url FROM exact_connections").fetchone()
    assert counts == {"tenants": 1, "exact_connections": 1, "integrations": 1}
    assert live_keys == 1
    assert connection == ("active", "Jan de Vries", run.sandbox)

    assert code == 1, run.output()
    assert f"the worker (pid {worker.pid}) exited" in run.output() and "stopping everything" in run.output()
    assert gone(children) == []
