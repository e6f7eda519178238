"""Who exists: OAuth clients (apps), Exact users and the divisions they may open."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class OAuthClient:
    """An app registered in Exact's App Center.

    ``redirect_uris`` entries may use ``*`` for the port (``http://127.0.0.1:*/cb``)
    so tests can run the callback server on a free port; Exact itself wants an exact
    match, which a URI without ``*`` still gets.
    """

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    def allows_redirect(self, uri: str) -> bool:
        for registered in self.redirect_uris:
            if "*" not in registered:
                if uri == registered:
                    return True
                continue
            pattern = "^" + r"\d+".join(re.escape(part) for part in registered.split("*")) + "$"
            if re.match(pattern, uri):
                return True
        return False

    def public(self) -> dict:
        return {"client_id": self.client_id, "redirect_uris": list(self.redirect_uris)}


@dataclass
class User:
    user_id: str
    user_name: str
    full_name: str
    first_name: str
    last_name: str
    initials: str
    email: str
    divisions: list[int]
    current_division: int
    customer: str  # the licence holder (DivisionCustomer in /current/Me)
    customer_code: str
    customer_name: str
    language: str = "nl-NL"

    def me(self) -> dict:
        """The record served by GET /api/v1/current/Me."""
        return {
            "UserID": self.user_id,
            "UserName": self.user_name,
            "FullName": self.full_name,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "Initials": self.initials,
            "Email": self.email,
            "Language": self.language,
            "LanguageCode": self.language,
            "Legislation": 1,
            "CurrentDivision": self.current_division,
            "DivisionCustomer": self.customer,
            "DivisionCustomerCode": self.customer_code,
            "DivisionCustomerName": self.customer_name,
        }
