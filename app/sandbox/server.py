"""Run the sandbox as a server: what ``koppel sandbox`` calls."""

from __future__ import annotations

import uvicorn

from app.sandbox.app import create_sandbox_app
from app.sandbox.state import SandboxState


def run(host: str = "127.0.0.1", port: int = 8090, *, state: SandboxState | None = None, log_level: str = "info") -> None:
    """Serve the simulator until interrupted (blocking).

    One process, one event loop: the state is in memory and must not be shared by
    several workers, so uvicorn runs with a single worker.
    """
    uvicorn.run(create_sandbox_app(state), host=host, port=port, log_level=log_level, workers=1)
