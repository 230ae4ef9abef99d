"""The sync state of a store (`sync_state.json`): how far each shop is known complete, and the
run in progress, so that the next run fetches only what is new and a stopped run resumes.

The state is written after the data it describes, so it never claims a message not on disk; a
run stopped between the two fetches a few conversations again, which the store de-duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics import files
from cs_metrics.errors import InputError

STATE_FILE = "sync_state.json"
VERSION = 1


@dataclass
class Run:
    """A shop's sync under way: messages in [since, until] of the conversations not yet done."""

    since: str
    until: str
    done: list[str] = field(default_factory=list)
    """Conversations whose messages of the run are on disk."""


@dataclass
class ShopState:
    """What the store holds of one shop."""

    horizon: str | None = None
    """Earliest instant from which every message is stored (UTC ISO)."""
    complete_until: str | None = None
    """Every message up to this instant is stored (UTC ISO)."""
    run: Run | None = None
    extras_until: str | None = None
    """Ratings and performance figures are fetched up to this instant (UTC ISO)."""
    authorized: bool = True
    """Whether the latest sync found the shop authorised (a de-authorised shop's data stops, and
    must not hold back the store's complete-until)."""


@dataclass
class SyncState:
    """The whole state file."""

    shops: dict[str, ShopState] = field(default_factory=dict)

    def complete_until(self, shop_ids: Collection[str] | None = None) -> str | None:
        """How far the store is known complete: the earliest complete_until of the authorised
        shops (of `shop_ids` when given). A shop whose first sync has not finished counts with
        its horizon (nothing is known complete for it yet): one shop's gap holds the cut-off
        back, so that the weekly job withholds actions rather than judge it on partial data."""
        chosen = [
            entry
            for shop_id, entry in self.shops.items()
            if entry.authorized and (shop_ids is None or shop_id in shop_ids)
        ]
        stamps = [s for s in (e.complete_until or e.horizon for e in chosen) if s]
        return min(stamps, key=pd.Timestamp) if stamps else None


def read_state(data_dir: Path) -> SyncState:
    """The state of a store; an empty one when the store has never been synced."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return SyncState()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        shops = {
            shop_id: ShopState(
                horizon=entry.get("horizon"),
                complete_until=entry.get("complete_until"),
                run=Run(**entry["run"]) if entry.get("run") else None,
                extras_until=entry.get("extras_until"),
                authorized=bool(entry.get("authorized", True)),
            )
            for shop_id, entry in raw.get("shops", {}).items()
        }
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(f"{path}: not a sync state file this version reads ({exc})") from None
    return SyncState(shops=shops)


def write_state(data_dir: Path, state: SyncState) -> None:
    """Write the state atomically, with the store-wide `complete_until` for readers."""
    document: dict[str, Any] = {
        "version": VERSION,
        "complete_until": state.complete_until(),
        "shops": {shop_id: asdict(entry) for shop_id, entry in sorted(state.shops.items())},
    }
    files.write_atomic(data_dir / STATE_FILE, json.dumps(document, indent=2) + "\n")


def complete_until(data_dir: Path, shop_ids: Collection[str] | None = None) -> pd.Timestamp | None:
    """The instant up to which a fetched store is known complete, for all its authorised shops
    or those of `shop_ids` (None: not a fetched store): the weekly job's natural cut-off, rather
    than the latest message."""
    if not (data_dir / STATE_FILE).exists():
        return None
    value = read_state(data_dir).complete_until(shop_ids)
    return pd.Timestamp(value).tz_convert("UTC") if value else None


def iso(instant: pd.Timestamp) -> str:
    """UTC ISO-8601 text of an instant, as the state stores it."""
    return instant.tz_convert("UTC").isoformat()
