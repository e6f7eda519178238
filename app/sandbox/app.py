"""The sandbox's FastAPI application: Exact's OAuth and REST surface plus /sandbox admin."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.sandbox.admin import AdminApi
from app.sandbox.errors import ExactError
from app.sandbox.faults import FaultMiddleware
from app.sandbox.oauth import OAuthApi
from app.sandbox.rest import RestApi
from app.sandbox.state import SandboxState


def create_sandbox_app(state: SandboxState | None = None) -> FastAPI:
    """Build the simulator around ``state`` (a fresh seeded one when omitted).

    The state is reachable as ``app.state.sandbox`` so in-process tests can steer it.
    """
    state = state or SandboxState()
    app = FastAPI(
        title="Koppel — Exact Online sandbox",
        docs_url="/sandbox/docs",
        openapi_url="/sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.include_router(OAuthApi(state).router())
    app.include_router(RestApi(state).router())
    app.include_router(AdminApi(state).router())
    app.add_middleware(FaultMiddleware, state=state)

    @app.exception_handler(StarletteHTTPException)
    async def exact_style_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and methods answer in Exact's envelope, not FastAPI's {"detail":…}.
        if request.url.path.startswith("/sandbox/"):
            return await http_exception_handler(request, exc)
        message = "Resource not found." if exc.status_code == 404 else str(exc.detail)
        return ExactError(exc.status_code, message).response()

    return app
