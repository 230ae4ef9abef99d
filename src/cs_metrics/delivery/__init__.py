"""Delivery: the weekly result sent to people by e-mail and webhook (docs/delivery.md); the
watch too, when a shop is at risk (`watch_message`, docs/watch.md).

`config` reads the [delivery] table, `message` builds what a manager receives from metrics.json,
`mail` and `webhook` send it. `deliver` tries every configured channel and returns the failures;
the command line reports them (exit 4), the run's files stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cs_metrics.delivery.config import DeliverySettings, load_delivery
from cs_metrics.delivery.failure import DeliveryFailed
from cs_metrics.delivery.mail import send_email
from cs_metrics.delivery.message import WeekMessage, week_message
from cs_metrics.delivery.watch_message import WatchMessage, watch_message
from cs_metrics.delivery.webhook import post_webhook

__all__ = [
    "DeliveryFailed",
    "DeliveryReport",
    "DeliverySettings",
    "WatchMessage",
    "WeekMessage",
    "deliver",
    "load_delivery",
    "watch_message",
    "week_message",
]


@dataclass(frozen=True)
class DeliveryReport:
    """What each channel did: sent (a few words each) and failed (one per channel)."""

    sent: list[str] = field(default_factory=list)
    failed: list[DeliveryFailed] = field(default_factory=list)


def deliver(
    message: WeekMessage | WatchMessage, settings: DeliverySettings, environ: Mapping[str, str]
) -> DeliveryReport:
    """Send `message` over every configured channel; one failing does not stop the others."""
    report = DeliveryReport()
    if settings.email is not None:
        try:
            report.sent.append(send_email(message, settings.email, environ))
        except DeliveryFailed as failure:
            report.failed.append(failure)
    if settings.webhook is not None:
        try:
            report.sent.append(post_webhook(message, settings.webhook, environ))
        except DeliveryFailed as failure:
            report.failed.append(failure)
    return report
