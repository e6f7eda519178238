"""Structured JSON logs carry the order id; tokens and secrets never reach them."""

from __future__ import annotations

import json

import structlog

from app.observability import configure_logging


def test_json_log_lines_carry_bound_order_id(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", json=True)
    structlog.contextvars.bind_contextvars(order_id=42)
    try:
        structlog.get_logger("test").info("order_booked", entry_number="26700001")
        structlog.get_logger("test").debug("hidden")
    finally:
        structlog.contextvars.unbind_contextvars("order_id")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [{"order_id": 42, "entry_number": "26700001", "event": "order_booked", "level": "info",
                      "timestamp": lines[0]["timestamp"]}]
