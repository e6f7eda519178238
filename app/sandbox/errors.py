"""Error shapes exactly as Exact Online sends them.

Two families exist and clients parse them differently, so both live here:

* REST errors (``/api/v1/...``): ``{"error":{"code":"","message":{"lang":…,"value":…}}}``.
  Business validation comes back as HTTP 500 with a Dutch text (the user's language);
  query/body problems as 400; token problems as 401; rights as 403.
* OAuth errors (``/api/oauth2/token``): flat ``{"error":…, "error_description":…}``.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

# Validation messages are shown in the Exact user's language; the seeded users are Dutch.
VALIDATION_LANG = "nl-NL"


class ExactError(Exception):
    """Raised anywhere below a REST route; rendered as Exact's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        lang: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.lang = lang
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": "", "message": {"lang": self.lang, "value": self.message}}}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def validation(message: str) -> ExactError:
    """Business rule violation: Exact answers these with a localised HTTP 500."""
    return ExactError(500, message, lang=VALIDATION_LANG)


def required(label: str) -> ExactError:
    return validation(f"Verplicht: {label}")


def invalid_reference(label: str) -> ExactError:
    return validation(f"Ongeldige referentie: {label}")


def already_exists() -> ExactError:
    return validation("Gegeven bestaat reeds")


def bad_request(message: str) -> ExactError:
    return ExactError(400, message)


def bad_stream(detail: str) -> ExactError:
    """A body the OData layer could not even deserialise (malformed JSON, wrong types)."""
    return ExactError(400, f"Error processing request stream. {detail}")


def not_found(message: str) -> ExactError:
    return ExactError(404, message)


class OAuthError(Exception):
    """Raised by the token logic; rendered as the flat OAuth2 error body."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers={"Cache-Control": "no-store", **self.headers},
        )
