"""One sync: every authorised shop (or those named) brought up to `until`, resumable.

For each shop: finish the run a stopped sync left (same since/until, the conversations already
written skipped), then fetch from where the store is complete (less an overlap) to `until`.
Conversations come newest activity first and are listed until one is older than the run's
`since`; each conversation's messages come newest first and are paged back until a page reaches
before `since`. Messages are written in batches of conversations, then the state records those
conversations as done; the shop's `complete_until` moves only when the whole run is on disk.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics.errors import UsageError
from cs_metrics.fetch import store
from cs_metrics.fetch.client import (
    DEAUTHORIZED_CODES,
    NO_ACCESS_CODES,
    ApiError,
    Client,
    FetchError,
    Unavailable,
)
from cs_metrics.fetch.outcome import Missing, Options, SyncReport
from cs_metrics.fetch.performance import fetch_extras
from cs_metrics.fetch.state import Run, ShopState, SyncState, iso, read_state, write_state
from cs_metrics.importers.common import ImportSummary
from cs_metrics.importers.tiktok_api import MILLISECONDS_FROM, api_messages, unix_instants

log = logging.getLogger("cs_metrics.fetch")

CONVERSATION_PAGE_SIZE = 20
"""Get Conversations returns at most 20 a page."""
MESSAGE_PAGE_SIZE = 10
"""Get Conversation Messages returns at most 10 a page."""
LOCK_FILE = ".fetch.lock"
LISTING_PASSES = 3
"""Readings of a shop's conversation listing per run (see `_run`)."""
MAX_PAGES = 10_000
"""Per listing: a guard against a page token that never ends."""
MAX_SAME_TOKEN = 3
"""A page token asked this often is a loop, not a duplicated page."""


class ShopUnavailable(Exception):
    """A shop the run cannot go on with (no API access, de-authorised, listing failed)."""


def default_since(until: pd.Timestamp, lookback_days: int) -> pd.Timestamp:
    """Start of a first sync: the Monday of the week before `until`'s week (UTC), a day earlier
    for shops east of UTC, then `lookback_days` more for chats opened before the window."""
    day = until.tz_convert("UTC").normalize()
    monday = day - pd.Timedelta(days=day.day_of_week + 7)
    return monday - pd.Timedelta(days=1 + lookback_days)


def sync(client: Client, data_dir: Path, options: Options) -> SyncReport:
    """Bring the store at `data_dir` up to `options.until`; never raises for one shop's failure."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with store_lock(data_dir):
        return _sync(client, data_dir, options)


@contextmanager
def store_lock(data_dir: Path) -> Iterator[None]:
    """Hold the store for one sync: two runs interleaving their state writes would each record
    conversations the other wrote. The lock goes with the process, however it ends."""
    with (data_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(
                f"{data_dir}: another fetch is updating this store; try again when it ends"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sync(client: Client, data_dir: Path, options: Options) -> SyncReport:
    report = SyncReport(store=data_dir)
    state = read_state(data_dir)
    try:
        authorized = client.get(f"/authorization/{client.settings.version}/shops").get("shops")
    except (ApiError, Unavailable) as exc:
        report.missing.append(Missing("*", "Get Authorized Shops", str(exc)))
        report.requests = client.requests
        return report
    api_shops = [s for s in (authorized or []) if isinstance(s, dict) and s.get("id")]
    if not api_shops:
        report.notes.append("the credentials reach no authorised shop (docs/fetch.md, section 1)")
    shops = store.shops_table(api_shops, store.read_shops(data_dir))
    store.write_shops(data_dir, shops)
    ciphers = {str(s["id"]): str(s.get("cipher") or "") for s in api_shops}
    for shop_id, known in state.shops.items():
        known.authorized = shop_id in ciphers
    # A shop synced before and no longer authorised is named, not silently dropped.
    wanted = list(options.shops) or sorted(set(ciphers) | set(state.shops))
    for shop_id in wanted:
        if shop_id not in ciphers:
            report.missing.append(
                Missing(
                    shop_id,
                    "the shop",
                    "not authorised for this app (de-authorised, or a "
                    "wrong id); its stored data is kept",
                )
            )
            continue
        report.shops.append(shop_id)
        entry = state.shops.setdefault(shop_id, ShopState())
        try:
            _sync_shop(client, data_dir, state, entry, shop_id, ciphers[shop_id], options, report)
        except ShopUnavailable as exc:
            report.missing.append(Missing(shop_id, "the shop", str(exc)))
        if options.performance and entry.complete_until:
            overlap = pd.Timedelta(minutes=options.overlap_minutes)
            fetch_extras(client, data_dir, shop_id, ciphers[shop_id], entry, overlap, report)
    write_state(data_dir, state)
    report.complete_until = state.complete_until()
    report.requests = client.requests
    return report


def _sync_shop(
    client: Client,
    data_dir: Path,
    state: SyncState,
    entry: ShopState,
    shop_id: str,
    cipher: str,
    options: Options,
    report: SyncReport,
) -> None:
    until = options.until.tz_convert("UTC")
    if entry.run is not None:
        report.notes.append(f"shop {shop_id}: resuming the sync to {entry.run.until}")
        if not _run(client, data_dir, state, entry, shop_id, cipher, options, report):
            return
    if entry.complete_until and pd.Timestamp(entry.complete_until) >= until:
        return
    if entry.complete_until:
        since = pd.Timestamp(entry.complete_until) - pd.Timedelta(minutes=options.overlap_minutes)
    else:
        since = options.since or default_since(until, options.lookback_days)
        entry.horizon = iso(since)
    entry.run = Run(since=iso(since), until=iso(until))
    write_state(data_dir, state)
    _run(client, data_dir, state, entry, shop_id, cipher, options, report)


def _run(
    client: Client,
    data_dir: Path,
    state: SyncState,
    entry: ShopState,
    shop_id: str,
    cipher: str,
    options: Options,
    report: SyncReport,
) -> bool:
    """Carry out the shop's recorded run; True when all of it is on disk.

    The listing is read again after its conversations are fetched: a conversation that gets a
    message while the listing is paged moves to its front, and one from a later page could be
    passed over. A pass that finds nothing new ends the run.
    """
    run = entry.run
    assert run is not None
    since = pd.Timestamp(run.since)
    tried: set[str] = set()
    for _ in range(LISTING_PASSES):
        try:
            listed = list(dict.fromkeys(conversation_ids(client, cipher, since)))
        except ApiError as exc:
            raise ShopUnavailable(str(exc)) from None
        except Unavailable as exc:
            raise ShopUnavailable(f"Get Conversations failed: {exc}") from None
        todo = [c for c in listed if c not in tried and c not in set(run.done)]
        if not todo:
            break
        tried.update(todo)
        if not _fetch_conversations(
            client, data_dir, state, run, shop_id, cipher, todo, options, report
        ):
            return False
    if not tried <= set(run.done):
        return False
    entry.complete_until = run.until
    entry.run = None
    write_state(data_dir, state)
    return True


def _fetch_conversations(
    client: Client,
    data_dir: Path,
    state: SyncState,
    run: Run,
    shop_id: str,
    cipher: str,
    todo: list[str],
    options: Options,
    report: SyncReport,
) -> bool:
    """Fetch and write the conversations of `todo`; False when the API failed too often to go
    on (the failures are in the report)."""
    since = pd.Timestamp(run.since)
    batch: list[dict[str, Any]] = []
    batch_ids: list[str] = []
    in_a_row = 0
    for number, conversation_id in enumerate(todo):
        try:
            pages = list(message_pages(client, cipher, conversation_id, since))
        except ApiError as exc:
            if exc.code in NO_ACCESS_CODES | DEAUTHORIZED_CODES:
                _flush(data_dir, state, run, batch, batch_ids, report)
                raise ShopUnavailable(str(exc)) from None
            report.missing.append(Missing(shop_id, f"conversation {conversation_id}", str(exc)))
            continue
        except Unavailable as exc:
            report.missing.append(Missing(shop_id, f"conversation {conversation_id}", str(exc)))
            in_a_row += 1
            if in_a_row >= options.give_up_after:
                rest = todo[number + 1 :]
                if rest:
                    reason = f"not tried: the API failed {in_a_row} conversations in a row"
                    report.missing.append(
                        Missing(shop_id, f"{len(rest)} more conversation(s)", reason)
                    )
                _flush(data_dir, state, run, batch, batch_ids, report)
                return False
            continue
        in_a_row = 0
        ids = {"shop_id": shop_id, "conversation_id": conversation_id}
        batch.extend({**ids, "messages": p.get("messages") or []} for p in pages)
        batch_ids.append(conversation_id)
        if len(batch_ids) >= options.batch_conversations:
            _flush(data_dir, state, run, batch, batch_ids, report)
    _flush(data_dir, state, run, batch, batch_ids, report)
    return True


def _flush(
    data_dir: Path,
    state: SyncState,
    run: Run,
    batch: list[dict[str, Any]],
    batch_ids: list[str],
    report: SyncReport,
) -> None:
    """Write a batch of conversations' messages, then record them as done (in that order)."""
    if not batch_ids:
        return
    rows = batch_messages(batch, pd.Timestamp(run.until), report)
    for shop_id, shop_rows in rows.groupby("shop_id"):
        report.messages_added += store.merge_messages(data_dir, str(shop_id), shop_rows)
    run.done.extend(batch_ids)
    report.conversations += len(batch_ids)
    write_state(data_dir, state)
    batch.clear()
    batch_ids.clear()


def batch_messages(
    pages: list[dict[str, Any]], until: pd.Timestamp, report: SyncReport
) -> pd.DataFrame:
    """The SPEC rows of a batch's pages sent up to `until` (the importer's conversion, once per
    batch: pandas' cost is per call, not per row)."""
    rows = api_messages(pages, ImportSummary(source="fetch"))
    usable = rows["message_id"].notna() & rows["sent_at"].notna()
    report.bad_messages += int((~usable).sum())
    return rows.loc[usable & (rows["sent_at"] <= until)]


def conversation_ids(client: Client, cipher: str, since: pd.Timestamp) -> Iterator[str]:
    """Ids of the conversations active since `since` (the API lists newest activity first)."""
    path = f"/customer_service/{client.settings.version}/conversations"
    for page in _pages(client, path, cipher, CONVERSATION_PAGE_SIZE):
        items = [c for c in page.get("conversations") or [] if isinstance(c, dict)]
        for item in items:
            if _activity(item) < since:
                return
            yield str(item["id"])


def _activity(conversation: dict[str, Any]) -> pd.Timestamp:
    """A conversation's latest activity: its latest message, else its creation."""
    latest = conversation.get("latest_message")
    value = latest.get("create_time") if isinstance(latest, dict) else None
    value = value if value is not None else conversation.get("create_time")
    stamp = unix_instants(pd.Series([value])).iloc[0]
    # An activity the API does not give cannot be judged old: keep listing.
    return stamp if pd.notna(stamp) else pd.Timestamp.max.tz_localize("UTC")


def message_pages(
    client: Client, cipher: str, conversation_id: str, since: pd.Timestamp
) -> Iterator[dict[str, Any]]:
    """A conversation's message pages, newest first, until one reaches back before `since`."""
    path = f"/customer_service/{client.settings.version}/conversations/{conversation_id}/messages"
    for page in _pages(client, path, cipher, MESSAGE_PAGE_SIZE):
        yield page
        oldest = oldest_time(page.get("messages"))
        if oldest is not None and oldest < since.timestamp():
            return


def oldest_time(messages: object) -> float | None:
    """Unix seconds of a page's oldest message (None: no usable time). A page holds at most ten
    messages, so plain Python is cheaper here than a frame."""
    seconds = []
    for message in messages if isinstance(messages, list) else []:
        value = message.get("create_time") if isinstance(message, dict) else None
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        seconds.append(number / 1000 if number >= MILLISECONDS_FROM else number)
    return min(seconds) if seconds else None


def _pages(client: Client, path: str, cipher: str, page_size: int) -> Iterator[dict[str, Any]]:
    """The `data` of each page of a paged listing, following `next_page_token`."""
    token = ""
    asked: dict[str, int] = {}
    for _ in range(MAX_PAGES):
        asked[token] = asked.get(token, 0) + 1
        if asked[token] > MAX_SAME_TOKEN:
            raise Unavailable(f"{path}: the API keeps answering the same page")
        params = {"page_size": str(page_size)}
        if token:
            params["page_token"] = token
        data = client.get(path, params, cipher)
        yield data
        token = str(data.get("next_page_token") or "")
        if not token or data.get("has_more") is False:
            return
    raise Unavailable(f"{path}: more than {MAX_PAGES} pages")


def parse_until(text: str | None, now: dt.datetime) -> pd.Timestamp:
    """`--until` as a UTC instant (naive: UTC); default and upper bound: now."""
    latest = pd.Timestamp(now).tz_convert("UTC").floor("s")
    if not text:
        return latest
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"--until: not a timestamp: {text!r}") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return min(stamp, latest)
