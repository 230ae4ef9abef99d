"""A channel that could not deliver: one line naming the channel and the reason, no secret."""

from __future__ import annotations

from collections.abc import Iterable

from cs_metrics.errors import CsMetricsError

HIDDEN = "(hidden)"


class DeliveryFailed(CsMetricsError):
    """A channel failed; the run's files are kept and `notify` re-sends (exit 4)."""

    exit_code = 4

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


def scrubbed(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret value replaced, for text that came from a server or a library."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return text


def one_line(text: str, most: int = 200) -> str:
    """A server's reply on one line, cut to `most` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"
