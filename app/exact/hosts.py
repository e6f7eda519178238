"""Where Exact Online lives: one host per country, the same paths on every host.

A connection stores its base URL (``https://start.exactonline.nl``, or any custom one such as
the bundled sandbox ``http://127.0.0.1:8090``); everything else is derived from it here.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

_TLD_BY_COUNTRY = {
    "nl": "nl",
    "be": "be",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "uk": "co.uk",
    "gb": "co.uk",
    "co.uk": "co.uk",
    "us": "com",
    "com": "com",
}

COUNTRIES = tuple(_TLD_BY_COUNTRY)


def base_url_for(country: str) -> str:
    """``"nl"`` → ``https://start.exactonline.nl``; ``"uk"``/``"co.uk"`` → ``…co.uk``;
    ``"us"``/``"com"`` → ``…com``. Case and a leading dot are ignored."""
    key = country.strip().lower().lstrip(".")
    try:
        tld = _TLD_BY_COUNTRY[key]
    except KeyError:
        raise ValueError(
            f"unknown Exact Online country {country!r}; expected one of {', '.join(COUNTRIES)}"
        ) from None
    return f"https://start.exactonline.{tld}"


def normalize_base_url(base_url: str) -> str:
    """Check an explicit base URL (any host, http or https) and drop a trailing slash."""
    value = base_url.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL takes no query or fragment: {base_url!r}")
    return value


def resolve_base_url(country_or_url: str) -> str:
    """Accept either a country code or a full base URL."""
    if "://" in country_or_url:
        return normalize_base_url(country_or_url)
    return base_url_for(country_or_url)


def authorize_endpoint(base_url: str) -> str:
    return f"{normalize_base_url(base_url)}/api/oauth2/auth"


def token_endpoint(base_url: str) -> str:
    return f"{normalize_base_url(base_url)}/api/oauth2/token"


def rest_url(base_url: str, division: int, path: str) -> str:
    """``{base}/api/v1/{division}/{service}/{Entity…}`` for a path like ``"crm/Accounts"`` or
    ``"crm/Accounts(guid'…')"``. Quotes and parentheses are kept; spaces are escaped."""
    if isinstance(division, bool) or not isinstance(division, int) or division <= 0:
        raise ValueError(f"division must be a positive int, got {division!r}")
    clean = path.strip().strip("/")
    if not clean or "://" in clean:
        raise ValueError(f"not a service/Entity path: {path!r}")
    return f"{normalize_base_url(base_url)}/api/v1/{division}/{quote(clean, safe=_PATH_SAFE)}"


def me_url(base_url: str) -> str:
    """``{base}/api/v1/current/Me``: the one endpoint without a division segment."""
    return f"{normalize_base_url(base_url)}/api/v1/current/Me"


# OData key syntax uses ' ( ) , = and $; keep them readable in the path.
_PATH_SAFE = "/'(),=$:@!*+;-._~"
