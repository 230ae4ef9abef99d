"""A webhook: one HTTPS POST of JSON (standard library), Slack-compatible `text` first.

The URL may carry a token (Slack's do), so no message names more of it than its host.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cs_metrics import __version__
from cs_metrics.delivery.config import WebhookSettings, url_problem
from cs_metrics.delivery.failure import DeliveryFailed, one_line, scrubbed
from cs_metrics.delivery.message import WeekMessage, webhook_payload
from cs_metrics.delivery.watch_message import WatchMessage, watch_webhook_payload

CHANNEL = "webhook"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would follow a 302 with a GET, and the message would be lost
    while the run reported success."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def webhook_url(settings: WebhookSettings, environ: Mapping[str, str]) -> str:
    """The URL: from the config, or from the environment variable it names."""
    if settings.url is not None:
        return settings.url
    assert settings.url_env is not None  # config.webhook_settings: one of the two
    url = environ.get(settings.url_env, "").strip()
    if not url:
        raise DeliveryFailed(
            CHANNEL, f"environment variable {settings.url_env} (the URL) is not set"
        )
    problem = url_problem(url)
    if problem:
        raise DeliveryFailed(CHANNEL, f"the URL in {settings.url_env} {problem}")
    return url


def post_webhook(
    message: WeekMessage | WatchMessage, settings: WebhookSettings, environ: Mapping[str, str]
) -> str:
    """POST the week's (or the watch's) JSON; what was sent, in a few words. DeliveryFailed
    on any failure."""
    url = webhook_url(settings, environ)
    parts = urlsplit(url)
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    # A token sits in the path or the query; short parts ("/", "/hook") are not secrets, and
    # scrubbing them would garble the server's answer.
    secrets = [url, *(s for s in (parts.path, parts.query, parts.password) if s and len(s) >= 8)]
    payload = (
        watch_webhook_payload(message)
        if isinstance(message, WatchMessage)
        else webhook_payload(message)
    )
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"cs-metrics/{__version__}",
        },
    )
    try:
        with OPENER.open(request, timeout=settings.timeout_seconds) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", "replace") if exc.fp is not None else ""
        detail = scrubbed(one_line(detail), secrets)
        raise DeliveryFailed(
            CHANNEL,
            f"{host} answered HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else ""),
        ) from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(CHANNEL, network_reason(exc.reason, host, settings)) from None
    except OSError as exc:  # a timeout or reset while reading the answer
        raise DeliveryFailed(CHANNEL, network_reason(exc, host, settings)) from None
    return f"webhook to {host}"


def network_reason(error: object, host: str | None, settings: WebhookSettings) -> str:
    """Why a POST did not get through, without the URL."""
    if isinstance(error, TimeoutError):
        return f"no answer from {host} within {settings.timeout_seconds:g} s"
    if isinstance(error, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(error, OSError):
        return f"cannot reach {host}: {error.strerror or type(error).__name__}"
    return f"cannot reach {host}: {one_line(str(error))}"
