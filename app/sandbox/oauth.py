"""The OAuth2 endpoints: the consent "page" and the token endpoint.

``GET /api/oauth2/auth`` stands in for Exact's login + consent screen. There is no
browser step: a registered client with an allowed redirect URI is sent straight
back with a code, as if the user logged in and pressed "allow". Two sandbox-only
query parameters steer the simulated user:

* ``sandbox_user=<user id or e-mail>`` — who consents (default: Jan de Vries);
* ``sandbox_deny=1`` — the user presses "deny" (``error=access_denied``).
"""

from __future__ import annotations

import base64
import html
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.sandbox.errors import OAuthError
from app.sandbox.state import SandboxState

TOKEN_ENDPOINT = "oauth2/token"


def _error_page(message: str) -> HTMLResponse:
    body = (
        "<!DOCTYPE html><html><head><title>Exact Online</title></head><body>"
        f"<h1>Er is een fout opgetreden</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=400)


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    # urlencode quotes '!' as %21, exactly how Exact delivers its codes.
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{urlencode(params)}", status_code=302)


class OAuthApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/api/oauth2/auth", self.authorize, methods=["GET"], include_in_schema=False)
        router.add_api_route("/api/oauth2/token", self.token, methods=["POST"], include_in_schema=False)
        return router

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.state.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page("Onbekende client_id.")
        redirect_uri = params.get("redirect_uri", "")
        if not client.allows_redirect(redirect_uri):
            # Never redirect to an unregistered URI; Exact shows an error page instead.
            return _error_page("De redirect_uri komt niet overeen met de registratie van de app.")
        state_param = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **state_param})
        try:
            user = self.state.resolve_user(params.get("sandbox_user"))
        except KeyError:
            return _error_page("Onbekende gebruiker (sandbox_user).")
        if params.get("sandbox_deny") in ("1", "true", "yes"):
            self.state.tokens.stats.consents_denied += 1
            return _redirect(redirect_uri, {"error": "access_denied", **state_param})
        code = self.state.tokens.issue_code(client.client_id, user.user_id, redirect_uri)
        return _redirect(redirect_uri, {"code": code, **state_param})

    async def token(self, request: Request) -> Response:
        form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
        _apply_basic_auth(request, form)
        tokens = self.state.tokens
        try:
            body = tokens.token_request(form)
            return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        except OAuthError as exc:
            # Refused token calls (a too-early refresh, say) count toward Exact's error budget.
            self._record_error(form, exc.status)
            return exc.response()

    def _record_error(self, form: dict[str, str], status: int) -> None:
        tokens = self.state.tokens
        client_id, user_id = form.get("client_id"), None
        refresh = tokens.refresh_tokens.get(form.get("refresh_token", ""))
        code = tokens.codes.get(form.get("code", ""))
        if refresh is not None:
            user_id = tokens.chains[refresh.chain_id].user_id
        elif code is not None:
            user_id = code.user_id
        self.state.monitor.record(
            client_id=client_id,
            user_id=user_id,
            division=None,
            endpoint=TOKEN_ENDPOINT,
            status=status,
            now=self.state.clock.now(),
        )


def _apply_basic_auth(request: Request, form: dict[str, str]) -> None:
    """Client credentials may also come as HTTP Basic; form values win if both are sent."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return
    form.setdefault("client_id", unquote(client_id))
    form.setdefault("client_secret", unquote(secret))
