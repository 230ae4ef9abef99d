"""What a sync is asked to do, and what it did: the options and the report of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Options:
    """What to fetch."""

    until: pd.Timestamp
    """Fetch messages sent up to this instant (UTC)."""
    shops: tuple[str, ...] = ()
    """Shop ids to fetch; empty: every authorised shop."""
    since: pd.Timestamp | None = None
    """First sync of a shop: fetch from here (default: the evaluation window and lookback)."""
    lookback_days: int = 7
    """First sync: days before the evaluation week (chats opened before the week)."""
    overlap_minutes: int = 60
    """Incremental sync: start this long before the complete-until instant (late messages)."""
    batch_conversations: int = 20
    """Conversations written (and recorded as done) together: a stopped run loses at most this
    many conversations' work, and each batch rewrites the day files it touches."""
    give_up_after: int = 3
    """Consecutive conversations the API could not serve before the shop is left for next time."""
    performance: bool = True
    """Also fetch TikTok's own performance figures and (where allowed) rated sessions."""


@dataclass(frozen=True)
class Missing:
    """Something the run could not fetch, and why."""

    shop_id: str
    what: str
    reason: str

    def line(self) -> str:
        """One line for the command line."""
        return f"missing: shop {self.shop_id}: {self.what}: {self.reason}"


@dataclass
class SyncReport:
    """What a sync fetched and what it could not."""

    store: Path
    shops: list[str] = field(default_factory=list)
    conversations: int = 0
    messages_added: int = 0
    bad_messages: int = 0
    ratings_added: int = 0
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete_until: str | None = None
    requests: int = 0

    @property
    def complete(self) -> bool:
        """Everything asked for was fetched."""
        return not self.missing

    def lines(self) -> list[str]:
        """A short account, one fact a line."""
        out = [
            f"{self.store}: {len(self.shops)} shop(s), {self.conversations} conversation(s) "
            f"fetched, {self.messages_added} new message(s), {self.ratings_added} new rating(s), "
            f"{self.requests} request(s)",
        ]
        if self.bad_messages:
            out.append(f"{self.bad_messages} message(s) without id or time left out")
        out.extend(self.notes)
        out.append(f"complete until {self.complete_until or 'nothing yet'}")
        out.extend(m.line() for m in self.missing)
        return out
