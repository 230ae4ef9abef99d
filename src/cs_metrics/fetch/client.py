"""Signed, paced, retried requests to the TikTok Shop Open API, with the access token refreshed.

Nothing here writes a token, the app secret or a signed URL into a log line, an exception or a
file other than the credentials file: messages name the API path only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cs_metrics import files
from cs_metrics.errors import CsMetricsError

API_BASE = "https://open-api.tiktokglobalshop.com"
AUTH_BASE = "https://auth.tiktok-shops.com"
REFRESH_PATH = "/api/v2/token/refresh"
UNSIGNED = ("sign", "access_token")
CREDENTIAL_KEYS = (
    "access_token",
    "access_token_expire_in",
    "refresh_token",
    "refresh_token_expire_in",
)
TOKEN_MARGIN_SECONDS = 300
"""Refresh an access token this long before it expires: a page fetched with a token that expires
on the way is an avoidable retry."""

# Open API error codes with a meaning for the fetch (any other code is reported with its message).
TOKEN_EXPIRED_CODES = frozenset({105001, 105002})
"""Invalid or expired access token: refresh it and ask again."""
NO_ACCESS_CODES = frozenset({105005, 36009001})
"""The app may not call this API (the Customer Service API needs platform approval)."""
DEAUTHORIZED_CODES = frozenset({105003})
"""The shop withdrew the app's authorisation."""
TRANSIENT_CODES = frozenset({36009003, 36009429})
"""Internal error or rate limit reported in the body: worth asking again."""

log = logging.getLogger("cs_metrics.fetch")
# httpx logs every request URL at INFO; the token refresh carries the app secret and refresh
# token in its query, so those lines must never be written.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class FetchError(CsMetricsError):
    """A fetch that could not go on (exit 1 unless a subclass says otherwise)."""


class CredentialsError(FetchError):
    """Missing app key or secret, an unusable credentials file, or a refresh token refused."""

    exit_code = 2


class ApiError(FetchError):
    """The API answered a request with an error that asking again will not cure."""

    def __init__(self, path: str, code: object, message: str) -> None:
        self.path = path
        self.code = code
        super().__init__(f"{path}: {explain(code, message)}")


class Unavailable(FetchError):
    """The API did not give a usable answer within the allowed attempts."""


def explain(code: object, message: str) -> str:
    """A sentence for an Open API error code, with the API's own message."""
    detail = f"API error {code}" + (f" ({message})" if message else "")
    if code in NO_ACCESS_CODES:
        return (
            f"{detail}: the app has no access to this API; the Customer Service API is off by "
            "default and needs TikTok's approval (docs/fetch.md)"
        )
    if code in DEAUTHORIZED_CODES:
        return (
            f"{detail}: the shop has withdrawn the app's authorisation; ask it to authorise again"
        )
    if code in TOKEN_EXPIRED_CODES:
        return f"{detail}: the access token is still refused after a refresh"
    return detail


def sign(app_secret: str, path: str, params: dict[str, str], body: str = "") -> str:
    """The request signature: HMAC-SHA256 (key: app secret) of the wrapped canonical string."""
    pairs = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in UNSIGNED)
    text = f"{app_secret}{path}{pairs}{body}{app_secret}"
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Credentials:
    """The shop tokens of a credentials file, as the token endpoints return them."""

    path: Path
    access_token: str = field(repr=False)  # a repr in a traceback must not show a token
    access_token_expire_in: int
    """Unix seconds at which the access token expires (the token endpoints' field)."""
    refresh_token: str = field(repr=False)
    refresh_token_expire_in: int

    @classmethod
    def load(cls, path: Path) -> Credentials:
        """Read a credentials file; a missing file or key is a credentials error."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CredentialsError(f"{path}: credentials file not found (docs/fetch.md)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CredentialsError(
                f"{path}: not a readable JSON credentials file ({type(exc).__name__})"
            ) from None
        if not isinstance(raw, dict):
            raise CredentialsError(
                f"{path}: expected a JSON object with {', '.join(CREDENTIAL_KEYS)}"
            )
        return cls.from_fields(path, raw)

    @classmethod
    def from_fields(cls, path: Path, raw: dict[str, Any]) -> Credentials:
        """Credentials from the token endpoint's fields (a nested `data` object is accepted)."""
        nested = raw.get("data")
        fields: dict[str, Any] = nested if isinstance(nested, dict) else raw
        missing = [k for k in CREDENTIAL_KEYS if k not in fields]
        if missing:
            raise CredentialsError(f"{path}: missing {', '.join(missing)} (docs/fetch.md)")
        try:
            return cls(
                path=path,
                access_token=str(fields["access_token"]),
                access_token_expire_in=int(fields["access_token_expire_in"]),
                refresh_token=str(fields["refresh_token"]),
                refresh_token_expire_in=int(fields["refresh_token_expire_in"]),
            )
        except (TypeError, ValueError):
            raise CredentialsError(f"{path}: the *_expire_in fields must be Unix seconds") from None

    def save(self) -> None:
        """Write the tokens back atomically, readable by the owner only (they grant shop access)."""
        text = json.dumps({k: getattr(self, k) for k in CREDENTIAL_KEYS}, indent=2) + "\n"
        old = os.umask(0o077)  # the temporary file is created 0600 before it takes the name
        try:
            files.write_atomic(self.path, text)
        finally:
            os.umask(old)
        self.path.chmod(0o600)


@dataclass
class Settings:
    """How requests are made: where to, how fast, how long to wait, how often to try."""

    api_base: str = API_BASE
    auth_base: str = AUTH_BASE
    version: str = "202309"
    timeout: float = 30.0
    """Seconds to connect, and between bytes of an answer."""
    requests_per_second: float = 5.0
    """Politeness: at most this many requests a second (the Open API limits each app)."""
    attempts: int = 6
    """Tries per request before it counts as failed (429, 5xx, timeouts, malformed answers)."""
    backoff_seconds: float = 1.0
    """First wait before a retry; doubled each time, with jitter, up to `backoff_cap_seconds`."""
    backoff_cap_seconds: float = 60.0


@dataclass
class Clock:
    """Time and waiting, injectable so that tests of backoff and pacing run in no time."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = field(default_factory=lambda: random.Random().random)


class Client:
    """One app's requests for one set of shop tokens, over one reused HTTP connection pool."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        credentials: Credentials,
        settings: Settings | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not app_key or not app_secret:
            raise CredentialsError(
                "set TIKTOK_APP_KEY and TIKTOK_APP_SECRET to the app's key and secret"
            )
        self.app_key = app_key
        self._secret = app_secret
        self.credentials = credentials
        self.settings = settings or Settings()
        self.clock = clock or Clock()
        self.requests = 0
        self._last_request = 0.0
        self._http = httpx.Client(timeout=httpx.Timeout(self.settings.timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(
        self, path: str, params: dict[str, str] | None = None, cipher: str | None = None
    ) -> dict[str, Any]:
        """The `data` object of a GET answer."""
        return self._call("GET", path, params or {}, None, cipher)

    def post(
        self,
        path: str,
        body: dict[str, Any],
        params: dict[str, str] | None = None,
        cipher: str | None = None,
    ) -> dict[str, Any]:
        """The `data` object of a POST answer (JSON body, signed with the body)."""
        return self._call("POST", path, params or {}, body, cipher)

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: dict[str, Any] | None,
        cipher: str | None,
    ) -> dict[str, Any]:
        refreshed = False
        reason = ""
        attempt = 0
        while attempt < self.settings.attempts:
            self._fresh_token()
            outcome = self._once(method, path, params, body, cipher)
            if isinstance(outcome, dict):
                code = outcome.get("code")
                if code == 0:
                    data = outcome.get("data")
                    return data if isinstance(data, dict) else {}
                if code in TOKEN_EXPIRED_CODES and not refreshed:
                    # The token died before its stated expiry (revoked, clock skew): refresh once.
                    self.refresh()
                    refreshed = True
                    continue
                if code not in TRANSIENT_CODES:
                    raise ApiError(path, code, str(outcome.get("message") or ""))
                reason, wait = f"API error {code}", None
            else:
                reason, wait = outcome
            attempt += 1
            if attempt < self.settings.attempts:
                delay = self._backoff(attempt, wait)
                log.info("%s %s: %s; retrying in %.1f s", method, path, reason, delay)
                self.clock.sleep(delay)
        raise Unavailable(f"{path}: no usable answer after {attempt} attempt(s) (last: {reason})")

    def _once(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: dict[str, Any] | None,
        cipher: str | None,
    ) -> dict[str, Any] | tuple[str, float | None]:
        """The answer's JSON object, or why it is worth asking again and the server's wait."""
        query = {"app_key": self.app_key, "timestamp": str(int(self.clock.now())), **params}
        if cipher:
            query["shop_cipher"] = cipher
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        query["sign"] = sign(self._secret, path, query, text)
        self._pace()
        try:
            response = self._http.request(
                method,
                self.settings.api_base + path,
                params=query,
                content=text.encode() if body is not None else None,
                headers={
                    "x-tts-access-token": self.credentials.access_token,
                    "content-type": "application/json",
                },
            )
        except httpx.TimeoutException:
            return "timed out", None
        except httpx.HTTPError as exc:
            # Only the kind of failure: httpx's own message may carry the request's URL.
            return f"request failed ({type(exc).__name__})", None
        if response.status_code == 429 or response.status_code >= 500:
            return f"HTTP {response.status_code}", retry_after(response.headers.get("retry-after"))
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            if 400 <= response.status_code < 500:
                # A refusal without an API body (a wrong path or base URL): asking again won't help.
                raise ApiError(path, f"HTTP {response.status_code}", "no API answer") from None
            return f"malformed JSON (HTTP {response.status_code})", None
        if not isinstance(answer, dict):
            return f"malformed answer (HTTP {response.status_code})", None
        return answer

    def _pace(self) -> None:
        """Wait until the configured request rate allows the next request."""
        gap = 1.0 / self.settings.requests_per_second if self.settings.requests_per_second else 0
        wait = self._last_request + gap - self.clock.now()
        if wait > 0:
            self.clock.sleep(wait)
        self._last_request = self.clock.now()
        self.requests += 1

    def _backoff(self, attempt: int, server_wait: float | None) -> float:
        """Exponential backoff with jitter, never shorter than the server's Retry-After."""
        base = min(
            self.settings.backoff_cap_seconds, self.settings.backoff_seconds * 2 ** (attempt - 1)
        )
        delay = base * (0.5 + self.clock.jitter() / 2)
        return max(delay, server_wait or 0.0)

    def _fresh_token(self) -> None:
        if self.credentials.access_token_expire_in - TOKEN_MARGIN_SECONDS <= self.clock.now():
            self.refresh()

    def refresh(self) -> None:
        """New tokens from the refresh token, written back to the credentials file."""
        creds = self.credentials
        if creds.refresh_token_expire_in <= self.clock.now():
            raise CredentialsError(
                f"{creds.path}: the refresh token has expired; authorise the app again and write "
                "the new tokens to this file (docs/fetch.md)"
            )
        params = {
            "app_key": self.app_key,
            "app_secret": self._secret,
            "refresh_token": creds.refresh_token,
            "grant_type": "refresh_token",
        }
        answer: object = None
        for attempt in range(1, self.settings.attempts + 1):
            self._pace()
            try:
                response = self._http.get(self.settings.auth_base + REFRESH_PATH, params=params)
                if response.status_code != 429 and response.status_code < 500:
                    answer = response.json()
                    break
            except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError):
                pass  # never shown: this request's URL carries the app secret and refresh token
            if attempt < self.settings.attempts:
                self.clock.sleep(self._backoff(attempt, None))
        if not isinstance(answer, dict):
            raise Unavailable(f"{REFRESH_PATH}: the token endpoint gave no usable answer")
        if answer.get("code") != 0:
            raise CredentialsError(
                f"{creds.path}: the refresh token was refused (API error {answer.get('code')}: "
                f"{answer.get('message') or 'no message'}); it may have expired or been revoked: "
                "authorise the app again (docs/fetch.md)"
            )
        self.credentials = Credentials.from_fields(creds.path, answer)
        self.credentials.save()
        log.info("access token refreshed; %s updated", creds.path)


def retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header given in seconds (an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def client_from_environment(
    credentials_path: Path, settings: Settings, clock: Clock | None = None
) -> Client:
    """A client with the app key and secret of TIKTOK_APP_KEY / TIKTOK_APP_SECRET."""
    credentials = Credentials.load(credentials_path)
    return Client(
        os.environ.get("TIKTOK_APP_KEY", ""),
        os.environ.get("TIKTOK_APP_SECRET", ""),
        credentials,
        settings,
        clock,
    )
