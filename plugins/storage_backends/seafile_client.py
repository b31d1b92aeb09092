"""Small client of Seafile's web API, shared by the seafile backend and the seafile CLIs.

Picks the Authorization scheme from the server version (`Token`; `Bearer` from Seafile 11),
retries 429/5xx/network failures through `retry.RetryPolicy`, and turns refusals into
`SeafileError` whose text never holds the token.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import requests

from storage_backends.base import BackendError, scrub
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy, http_status


class SeafileError(BackendError):
    """Seafile refused or could not be reached; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _reason(response: requests.Response) -> str:
    """Seafile's own words: {"error_msg"}, DRF's {"detail"} / {"non_field_errors"}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        for key in ("error_msg", "detail", "non_field_errors"):
            if key in body:
                value = body[key]
                return "; ".join(value) if isinstance(value, list) else str(value)
    return str(body)[:200]


class SeafileClient:
    """One server, optionally one token; `request` is the single way calls are made."""

    def __init__(self, server: str, token: str | None = None, *, retry: RetryPolicy = DEFAULT_RETRY,
                 timeout: float = 120.0, secrets: tuple[str, ...] = ()):
        self.server = server.rstrip("/")
        self.token = token
        self.retry = retry
        self.timeout = timeout
        self.secrets = tuple(s for s in (token, *secrets) if s)
        self.session = requests.Session()

    @cached_property
    def version(self) -> str:
        info = self.request("GET", "/api2/server-info/", what="server info", auth=False).json()
        return str(info.get("version", ""))

    @cached_property
    def auth_scheme(self) -> str:
        """`Bearer` is understood from Seafile 11 on; older servers only know `Token`."""
        try:
            major = int(self.version.split(".")[0])
        except ValueError:
            major = 0
        return "Bearer" if major >= 11 else "Token"

    def request(self, method: str, path: str, *, what: str, auth: bool = True, ok: tuple[int, ...] = (),
                headers: dict | None = None, **kwargs: Any) -> requests.Response:
        """Send with retries; statuses >= 400 not listed in `ok` raise SeafileError."""
        url = path if path.startswith(("http://", "https://")) else self.server + path
        sent = {"Accept": "application/json", **(headers or {})}
        if auth:
            if not self.token:
                raise SeafileError(f"Seafile {what}: no token")
            sent["Authorization"] = f"{self.auth_scheme} {self.token}"

        def send() -> requests.Response:
            response = self.session.request(method, url, headers=sent, timeout=self.timeout, **kwargs)
            if response.status_code == 429 or response.status_code >= 500:
                response.raise_for_status()
            return response

        try:
            response = self.retry.run(send, what=f"seafile {what}", classify=http_status)
        except requests.HTTPError as exc:
            response = exc.response
        except requests.RequestException as exc:
            raise SeafileError(f"cannot reach Seafile at {self.server} for {what} ({type(exc).__name__})") from None
        if response.status_code >= 400 and response.status_code not in ok:
            hint = " (wrong or expired token?)" if response.status_code in (401, 403) else ""
            message = f"Seafile {what} refused: HTTP {response.status_code} {_reason(response)}{hint}"
            raise SeafileError(scrub(message, self.secrets), response.status_code)
        return response

    # --- account-level calls the CLIs use -----------------------------------------------------
    def get_token(self, username: str, password: str, otp: str | None = None) -> str:
        """An account API token from username and password (2FA code in X-SEAFILE-OTP)."""
        client = SeafileClient(self.server, retry=self.retry, timeout=self.timeout, secrets=(password,))
        headers = {"X-SEAFILE-OTP": otp} if otp else None
        response = client.request("POST", "/api2/auth-token/", what="login", auth=False, headers=headers,
                                  data={"username": username, "password": password})
        return response.json()["token"]

    def list_repos(self) -> list[dict]:
        return self.request("GET", "/api2/repos/", what="list libraries").json()
