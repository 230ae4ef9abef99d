"""The [delivery] table of the config file: where the weekly result goes, checked once.

Secrets are never in the file: it names the environment variables that hold them
(`password_env`, `url_env`), and they are read only at the moment of sending.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cs_metrics.config import Number, Problem, Whole, first_problem, read_toml, unknown_names
from cs_metrics.errors import UsageError

SECURITY = ("starttls", "ssl", "none")
"""How the SMTP connection is protected: STARTTLS on 587, TLS from the start on 465, or none
(a relay on this machine)."""
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_ATTACH_MAX_BYTES = 5_000_000
"""Above this, the report is linked, not attached: base64 makes it a third larger, and many
mail servers refuse messages over 10 MB."""

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def is_loopback(host: str | None) -> bool:
    """Whether `host` is this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty text"


def _env_name(value: Any) -> str | None:
    if isinstance(value, str) and ENV_NAME.fullmatch(value):
        return None
    return "must be the name of an environment variable, e.g. CS_METRICS_SMTP_PASSWORD"


def _address(value: Any) -> str | None:
    if isinstance(value, str) and ADDRESS.fullmatch(value.strip()):
        return None
    return "must be an e-mail address such as reports@example.com"


def _addresses(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return 'must be a list of e-mail addresses, e.g. ["ops@example.com"]'
    bad = [repr(v) for v in value if _address(v)]
    return f"not e-mail addresses: {', '.join(bad)}" if bad else None


def _security(value: Any) -> str | None:
    return None if value in SECURITY else f"must be one of {', '.join(SECURITY)}"


def _web_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be an https:// URL"
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    return "must be an https:// URL (http:// only to this machine)"


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook or report URL, without repeating the URL (it may hold a
    token)."""
    return _web_url(url)


TIMEOUT = Number(0, 3600, low_included=False)

EMAIL_CHECKS: dict[str, Problem] = {
    "host": _text,
    "port": Whole(1, 65535),
    "security": _security,
    "sender": _address,
    "to": _addresses,
    "username": _text,
    "password_env": _env_name,
    "timeout_seconds": TIMEOUT,
    "attach_max_bytes": Whole(0, 1_000_000_000),
    "ca_file": _text,
}
WEBHOOK_CHECKS: dict[str, Problem] = {
    "url": _web_url,
    "url_env": _env_name,
    "timeout_seconds": TIMEOUT,
}
DELIVERY_CHECKS: dict[str, Problem] = {"report_base_url": _web_url}


@dataclass(frozen=True)
class EmailSettings:
    """[delivery.email]: an SMTP server, a sender and the recipients."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int | None = None
    """None: the usual port of `security` (587, 465 or 25)."""
    security: str = "starttls"
    username: str | None = None
    password_env: str | None = None
    """The environment variable holding the SMTP password (never the password itself)."""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    attach_max_bytes: int = DEFAULT_ATTACH_MAX_BYTES
    ca_file: str | None = None
    """A PEM file of the certificate authorities to trust instead of the system's (a company
    relay with its own CA). The server's certificate is always verified."""

    @property
    def server(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port or DEFAULT_PORTS[self.security]}"


@dataclass(frozen=True)
class WebhookSettings:
    """[delivery.webhook]: a URL that takes a JSON POST (Slack, Teams workflows, a chat bot)."""

    url: str | None = None
    url_env: str | None = None
    """The environment variable holding the URL, for URLs that carry a token (Slack's do)."""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery]: the channels the weekly result is sent over, and where the report is served."""

    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    report_base_url: str | None = None
    """Where OUT is served on the web: the report of week D is `<base>/<D>/report.html`."""

    @property
    def channels(self) -> list[str]:
        """The configured channels, in sending order."""
        return [name for name in ("email", "webhook") if getattr(self, name) is not None]


def _checked(
    values: Any, checks: Mapping[str, Problem], table: str, source: str, required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise UsageError(f"{source}: [{table}] must be a table (see docs/delivery.md)")
    unknown = unknown_names(values, checks)
    if unknown:
        raise UsageError(f"{source}: unknown keys in [{table}]: {', '.join(unknown)}")
    missing = [key for key in required if key not in values]
    if missing:
        raise UsageError(f"{source}: [{table}] needs {', '.join(missing)}")
    problem = first_problem(values, checks)
    if problem:
        key, text = problem
        # Values are shown: none of these keys holds a secret (URLs with tokens go in url_env).
        shown = "(hidden)" if key == "url" else repr(values[key])
        raise UsageError(f"{source}: {table}.{key} = {shown}: {text}")
    return dict(values)


def email_settings(values: Any, source: str) -> EmailSettings:
    """[delivery.email] checked: known keys, types, login only with a password variable."""
    table = "delivery.email"
    checked = _checked(values, EMAIL_CHECKS, table, source, ("host", "sender", "to"))
    if ("username" in checked) != ("password_env" in checked):
        raise UsageError(f"{source}: [{table}] needs both username and password_env, or neither")
    security = checked.get("security", "starttls")
    if "username" in checked and security == "none" and not is_loopback(checked["host"]):
        raise UsageError(
            f"{source}: [{table}] would send the password unencrypted to {checked['host']}: "
            'use security = "starttls" or "ssl" (plain only to a relay on this machine)'
        )
    if "ca_file" in checked and not Path(checked["ca_file"]).is_file():
        raise UsageError(f"{source}: {table}.ca_file = {checked['ca_file']!r}: no such file")
    checked["to"] = tuple(address.strip() for address in checked["to"])
    checked["sender"] = checked["sender"].strip()
    return EmailSettings(**checked)


def webhook_settings(values: Any, source: str) -> WebhookSettings:
    """[delivery.webhook] checked: exactly one of url and url_env."""
    table = "delivery.webhook"
    checked = _checked(values, WEBHOOK_CHECKS, table, source, ())
    if ("url" in checked) == ("url_env" in checked):
        raise UsageError(f"{source}: [{table}] needs one of url and url_env")
    return WebhookSettings(**checked)


def delivery_settings(values: Mapping[str, Any], source: str) -> DeliverySettings | None:
    """The [delivery] table checked; None when it names no channel."""
    allowed = {**DELIVERY_CHECKS, "email": None, "webhook": None}
    unknown = unknown_names(values, allowed)
    if unknown:
        raise UsageError(f"{source}: unknown keys in [delivery]: {', '.join(unknown)}")
    problem = first_problem(
        {k: v for k, v in values.items() if k in DELIVERY_CHECKS}, DELIVERY_CHECKS
    )
    if problem:
        key, text = problem
        raise UsageError(f"{source}: delivery.{key} = {values[key]!r}: {text}")
    email = email_settings(values["email"], source) if "email" in values else None
    webhook = webhook_settings(values["webhook"], source) if "webhook" in values else None
    if email is None and webhook is None:
        return None
    base = values.get("report_base_url")
    return DeliverySettings(email, webhook, base.rstrip("/") if base else None)


def load_delivery(path: Path | None) -> DeliverySettings | None:
    """The delivery settings of a config file; None without a file or a [delivery] table."""
    if path is None:
        return None
    document = read_toml(path, UsageError, "config file")
    values = document.get("delivery")
    if values is None:
        return None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: [delivery] must be a table (see docs/delivery.md)")
    return delivery_settings(values, str(path))
