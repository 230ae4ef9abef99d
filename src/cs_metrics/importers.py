"""Import other sources into the SPEC tables: TikTok Shop Customer Service API dumps, IBM Twitter.

Both importers read their source at the I/O edge (a Python loop over dump lines or over the
items of one JSON file), turn it into one frame with pandas, map every message to a SPEC role
with vectorised rules, and write ``messages.parquet`` (typed UTC timestamps) to the data folder
atomically. The decisions (role mapping, duplicates, pseudonyms) are in ``docs/import.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cs_metrics.errors import InputError, UsageError
from cs_metrics.read import OPTIONAL_COLUMNS, TABLES
from cs_metrics.validate import INSTANT, canonical_roles

MESSAGE_COLUMNS = TABLES["messages"] + OPTIONAL_COLUMNS["messages"]
SHOP_COLUMNS = TABLES["shops"] + OPTIONAL_COLUMNS["shops"]
FILE_MODE = 0o644
TABLE_FORMATS = ("csv", "parquet", "jsonl")

# --- TikTok Shop Customer Service API ------------------------------------------------------

API_ROLES: dict[str, str] = {
    "BUYER": "buyer",
    "SHOP": "seller",
    "CUSTOMER_SERVICE": "seller",
    "ROBOT": "auto_reply",
    "SYSTEM": "system",
}
"""Sender role of Get Conversation Messages -> SPEC role (before the type and visibility rules)."""
SENDER_TYPES = frozenset(
    {
        "TEXT",
        "IMAGE",
        "VIDEO",
        "EMOTICONS",
        "ORDER_CARD",
        "PRODUCT_CARD",
        "RETURN_REFUND_CARD",
        "COUPON_CARD",
        "LOGISTICS_CARD",
        "OTHER",
    }
)
"""Message types that keep the sender's role (a buyer's order card asks about that order)."""
PLATFORM_TYPES = frozenset({"NOTIFICATION", "ALLOCATED_SERVICE"})
PLATFORM_TYPE_PREFIX = "BUYER_ENTER_FROM_"
"""Types the platform inserts into a conversation: always `system`, whoever is named as sender."""
DUMP_ROLES: dict[str, str] = {
    "buyer": "BUYER",
    "seller": "CUSTOMER_SERVICE",
    "auto_reply": "ROBOT",
    "system": "SYSTEM",
}
"""SPEC role -> API sender role, for writing dumps from SPEC tables."""
UNIX_EPOCH = pd.Timestamp(0, tz="UTC")
MILLISECONDS_FROM = 100_000_000_000  # SPEC 1: 12-digit whole numbers and up are milliseconds

# --- IBM Twitter customer care ----------------------------------------------------------------

TWITTER_EPOCH_MS = 1288834974657
"""Twitter snowflake epoch: a tweet id's time is (id >> 22) + this, in Unix milliseconds."""
TWITTER_SPEAKERS = ("client", "client1", "agent")
MENTION = re.compile(r"@(\w{1,15})")
PSEUDONYM_PREFIX = "user_"
PSEUDONYM_HEX_DIGITS = 16


@dataclass(frozen=True)
class Skipped:
    """A source record (dump page or conversation) that was not imported, and why."""

    file: str
    line: int
    reason: str


@dataclass
class ImportSummary:
    """What an import read, skipped, dropped and wrote."""

    source: str
    records_read: int = 0
    """Dump lines (pages) read, or conversations read."""
    records_skipped: list[Skipped] = field(default_factory=list)
    messages_written: int = 0
    duplicates_dropped: int = 0
    """Messages whose (shop_id, message_id) was already imported (overlapping pages)."""
    unknown_roles: int = 0
    """Messages whose sender role is not known: imported as `system`."""
    unknown_types: int = 0
    """Messages whose type is not known: imported as `system`."""
    bad_messages: int = 0
    """Message entries that are not objects (left out) or lack an id or time (written with the
    value missing, so that loading the folder quarantines them)."""
    files_written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def pages_read(self) -> int:
        """Alias of records_read for dump imports."""
        return self.records_read

    @property
    def pages_skipped(self) -> int:
        """How many records were skipped."""
        return len(self.records_skipped)

    def lines(self) -> list[str]:
        """A short human-readable account, one fact per line (for the command line)."""
        out = [
            f"{self.source}: {self.records_read} record(s) read, "
            f"{len(self.records_skipped)} skipped, {self.messages_written} message(s) written",
        ]
        if self.duplicates_dropped:
            out.append(f"{self.duplicates_dropped} duplicate message(s) dropped")
        if self.unknown_roles or self.unknown_types:
            out.append(
                f"{self.unknown_roles} unknown sender role(s) and {self.unknown_types} unknown "
                "message type(s) imported as system"
            )
        if self.bad_messages:
            out.append(f"{self.bad_messages} malformed message(s) (left out or quarantined later)")
        out.extend(f"skipped {s.file}:{s.line}: {s.reason}" for s in self.records_skipped[:20])
        if len(self.records_skipped) > 20:
            out.append(f"... and {len(self.records_skipped) - 20} more skipped")
        out.extend(self.notes)
        out.extend(f"wrote {p}" for p in self.files_written)
        return out


# ============================================================================================
# TikTok Shop API dump -> SPEC tables
# ============================================================================================


def import_tiktok_api(raw: Path, data: Path) -> ImportSummary:
    """Convert the dump pages under `raw` (``*.jsonl``, see docs/import.md) into `data`."""
    files = _dump_files(raw)
    summary = ImportSummary(source=str(raw))
    pages = list(_dump_pages(files, raw, summary))
    if not pages:
        raise InputError(f"{raw}: no usable dump pages (see docs/import.md for their form)")
    messages = api_messages(pages, summary)
    _refuse_other_formats(data, "messages", "parquet")
    shops = _dump_shops(raw)
    if shops is not None:
        _refuse_other_formats(data, "shops", "csv")
    summary.files_written.append(write_parquet(messages, data / "messages.parquet"))
    summary.messages_written = len(messages)
    if shops is not None:
        summary.files_written.append(write_csv(shops, data / "shops.csv"))
    return summary


def _dump_files(raw: Path) -> list[Path]:
    if not raw.is_dir():
        raise InputError(f"{raw}: dump folder not found")
    files = sorted(raw.rglob("*.jsonl"))
    if not files:
        raise InputError(f"{raw}: no dump pages (*.jsonl) found")
    return files


def _dump_pages(files: list[Path], raw: Path, summary: ImportSummary) -> Iterator[dict[str, Any]]:
    """Each usable page as {shop_id, conversation_id, messages}; the rest go to the summary."""
    for path in files:  # I/O edge: one loop over files and their lines
        name = str(path.relative_to(raw))
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read ({exc})") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            summary.records_read += 1
            page, reason = _page(line)
            if reason:
                summary.records_skipped.append(Skipped(name, number, reason))
            else:
                yield page


def _page(line: str) -> tuple[dict[str, Any], str]:
    """One dump line as a usable page, or the reason it is not one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {}, "not JSON"
    if not isinstance(record, dict):
        return {}, "not a JSON object"
    ids = {k: _id_text(record.get(k)) for k in ("shop_id", "conversation_id")}
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        return {}, f"no {' or '.join(missing)}"
    response = record.get("response")
    if not isinstance(response, dict):
        return {}, "no response object"
    code = response.get("code")
    if code != 0:
        detail = response.get("message") or ""
        return {}, f"API error code {code}" + (f": {detail}" if detail else "")
    body = response.get("data")
    messages = body.get("messages") if isinstance(body, dict) else None
    if messages is None:
        messages = []
    if not isinstance(messages, list):
        return {}, "data.messages is not a list"
    return {**ids, "messages": messages}, ""


def _id_text(value: object) -> str | None:
    """An id as text (API ids are strings; whole numbers are accepted); None when missing."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def api_messages(pages: list[dict[str, Any]], summary: ImportSummary) -> pd.DataFrame:
    """The SPEC messages table of the given pages, duplicates dropped, counts in `summary`."""
    frame = pd.DataFrame(pages, columns=["shop_id", "conversation_id", "messages"])
    rows = frame.explode("messages", ignore_index=True)
    rows = rows.loc[rows["messages"].notna()]
    is_object = rows["messages"].map(lambda m: isinstance(m, dict)).astype(bool)
    summary.bad_messages += int((~is_object).sum())
    rows = rows.loc[is_object].reset_index(drop=True)
    fields = pd.json_normalize(rows["messages"].tolist()) if len(rows) else pd.DataFrame()
    fields = fields.reindex(
        columns=[
            "id",
            "type",
            "content",
            "create_time",
            "is_visible",
            "sender.im_user_id",
            "sender.role",
        ]
    )
    fields.index = rows.index
    api_role = _upper(fields["sender.role"])
    api_type = _upper(fields["type"])
    roles = message_roles(api_role, api_type, visible_flags(fields["is_visible"]))
    summary.unknown_roles += int((~api_role.isin(list(API_ROLES))).sum())
    summary.unknown_types += int((~known_types(api_type)).sum())
    messages = pd.DataFrame(
        {
            "shop_id": rows["shop_id"].astype("string"),
            "conversation_id": rows["conversation_id"].astype("string"),
            "message_id": id_texts(fields["id"]),
            "sender_role": roles,
            "sent_at": unix_instants(fields["create_time"]),
            "sender_id": id_texts(fields["sender.im_user_id"]),
            "message_type": api_type.str.lower(),
            "content": fields["content"].map(content_text, na_action="ignore").astype("string"),
            "api_sender_role": api_role,
            "api_is_visible": fields["is_visible"].astype("string").str.lower(),
        }
    )
    summary.bad_messages += int((messages["message_id"].isna() | messages["sent_at"].isna()).sum())
    kept = drop_duplicate_messages(messages)
    summary.duplicates_dropped += len(messages) - len(kept)
    return kept.sort_values(
        ["shop_id", "conversation_id", "sent_at"], kind="stable", na_position="last"
    ).reset_index(drop=True)


def _upper(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


def known_types(api_type: pd.Series) -> pd.Series:
    """Whether each API message type is one this importer knows."""
    return (
        (
            api_type.isin(list(SENDER_TYPES | PLATFORM_TYPES))
            | api_type.str.startswith(PLATFORM_TYPE_PREFIX)
        )
        .fillna(False)
        .astype(bool)
    )


def visible_flags(is_visible: pd.Series) -> pd.Series:
    """`is_visible` as booleans: false only for an explicit false (missing counts as visible)."""
    text = is_visible.astype("string").str.strip().str.lower()
    return ~text.isin(["false", "0"]).fillna(False).astype(bool)


def message_roles(api_role: pd.Series, api_type: pd.Series, visible: pd.Series) -> pd.Series:
    """SPEC roles from sender roles; platform cards, hidden and unknown messages are system."""
    role = api_role.map(API_ROLES).fillna("system")
    platform = api_type.isin(list(PLATFORM_TYPES)) | api_type.str.startswith(PLATFORM_TYPE_PREFIX)
    system = platform.fillna(False).astype(bool) | ~visible | ~known_types(api_type)
    return role.mask(system, "system").astype("string")


def id_texts(values: pd.Series) -> pd.Series:
    """Ids as text: strings stripped, whole numbers in decimal, anything else missing."""

    def as_text(value: object) -> object:
        return _id_text(value) or pd.NA

    return values.map(as_text, na_action="ignore").astype("string")


def unix_instants(values: pd.Series) -> pd.Series:
    """UTC instants from Unix seconds (milliseconds from 12 digits up); non-numbers are NaT."""
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    whole = numbers.where(numbers.notna() & (numbers >= 0) & (numbers % 1 == 0))
    micros = whole.where(whole >= MILLISECONDS_FROM, whole * 1000) * 1000
    stamps = pd.to_datetime(micros, unit="us", utc=True, errors="coerce")
    return stamps.astype(INSTANT)


def content_text(content: object) -> object:
    """The text of a message's `content` JSON string: its "content" field, else the raw text."""
    if not isinstance(content, str):
        return pd.NA
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError:
        return content
    if isinstance(parsed, dict):
        text = parsed.get("content")
        return text if isinstance(text, str) else pd.NA
    return content


def drop_duplicate_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """Messages without a repeat of an earlier (shop_id, message_id); rows without an id stay."""
    repeated = messages.duplicated(["shop_id", "message_id"], keep="first")
    return messages.loc[~(repeated & messages["message_id"].notna())]


def _dump_shops(raw: Path) -> pd.DataFrame | None:
    """The optional ``shops.json`` of a dump folder (a list of shop objects), as a shops table."""
    path = raw / "shops.json"
    if not path.exists():
        return None
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InputError(f"{path}: expected a JSON list of shop objects")
    shops = pd.DataFrame(items).reindex(columns=list(SHOP_COLUMNS))
    return shops.astype("string")


# --------------------------------------------------------------------------------------------
# SPEC tables -> TikTok Shop API dump (the inverse, for the round-trip test and demos)
# --------------------------------------------------------------------------------------------


def tiktok_dump_from_tables(
    messages: pd.DataFrame, folder: Path, page_size: int = 50
) -> list[Path]:
    """Write a SPEC messages table as API dump pages (one ``.jsonl`` per shop); return the paths."""
    if page_size < 1:
        raise UsageError("page_size must be at least 1")
    if not isinstance(messages["sent_at"].dtype, pd.DatetimeTZDtype):
        raise UsageError("tiktok_dump_from_tables needs sent_at as time-zone-aware timestamps")
    api = api_message_objects(messages)
    order = api.sort_values(
        ["shop_id", "conversation_id", "create_time", "buyer_last", "message_id"], kind="stable"
    )
    order["index"] = order.groupby(["shop_id", "conversation_id"]).cumcount()
    order["page"] = order["index"] // page_size
    last_page = order.groupby(["shop_id", "conversation_id"])["page"].transform("max")
    order["has_more"] = order["page"] < last_page
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (shop_id, shop_rows) in enumerate(order.groupby("shop_id", sort=True)):
        lines = _dump_lines(str(shop_id), shop_rows)
        written.append(_write_text(folder / f"shop_{number:04d}.jsonl", "".join(lines)))
    return written


def api_message_objects(messages: pd.DataFrame) -> pd.DataFrame:
    """Each SPEC message as the fields of a Get Conversation Messages message object."""
    role = canonical_roles(messages["sender_role"].astype("string").str.strip()).astype("string")
    spec_type = messages.get("message_type", pd.Series(pd.NA, index=messages.index))
    api_type = _upper(spec_type.astype("string"))
    system = role == "system"
    platform = api_type.isin(list(PLATFORM_TYPES)) | api_type.str.startswith(PLATFORM_TYPE_PREFIX)
    sender_type = api_type.where(api_type.isin(list(SENDER_TYPES)), "OTHER").fillna("TEXT")
    system_type = api_type.where(known_types(api_type), "NOTIFICATION")
    api_type = sender_type.mask(system.fillna(False), system_type)
    api_type = api_type.mask(~system.fillna(False) & platform.fillna(False), "OTHER")
    sender_id = messages.get("sender_id", pd.Series(pd.NA, index=messages.index))
    content = messages.get("content", pd.Series(pd.NA, index=messages.index))
    sent = messages["sent_at"].dt.tz_convert("UTC")
    return pd.DataFrame(
        {
            "shop_id": messages["shop_id"].astype("string"),
            "conversation_id": messages["conversation_id"].astype("string"),
            "message_id": messages["message_id"].astype("string"),
            "create_time": (sent - UNIX_EPOCH) // pd.Timedelta(seconds=1),
            "buyer_last": role != "buyer",
            "api_role": role.map(DUMP_ROLES).fillna("SYSTEM"),
            "api_type": api_type,
            "sender_id": sender_id.astype("string").fillna(""),
            "content": content.astype("string"),
        }
    )


def _dump_lines(shop_id: str, rows: pd.DataFrame) -> list[str]:
    """The dump lines (one per page) of one shop's messages, ordered and paged."""
    lines = []
    for (conversation_id, page), page_rows in rows.groupby(
        ["conversation_id", "page"], sort=False
    ):  # I/O edge: one line per page
        has_more = bool(page_rows["has_more"].iloc[0])
        body = {
            "messages": [_message_object(r) for r in page_rows.to_dict("records")],
            "next_page_token": f"page-{page + 1}" if has_more else "",
            "has_more": has_more,
        }
        record = {
            "shop_id": shop_id,
            "conversation_id": str(conversation_id),
            "fetched_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "response": {
                "code": 0,
                "message": "Success",
                "request_id": f"dump-{secrets.token_hex(8)}",
                "data": body,
            },
        }
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return lines


def _message_object(row: dict[str, Any]) -> dict[str, Any]:
    content = row["content"]
    text = {} if content is None or content is pd.NA else {"content": content}
    return {
        "id": row["message_id"],
        "index": str(row["index"]),
        "type": row["api_type"],
        "content": json.dumps(text, ensure_ascii=False),
        "create_time": None if pd.isna(row["create_time"]) else int(row["create_time"]),
        "is_visible": True,
        "sender": {
            "im_user_id": row["sender_id"],
            "nickname": row["sender_id"],
            "role": row["api_role"],
        },
    }


# ============================================================================================
# IBM Twitter customer care -> SPEC tables
# ============================================================================================


def import_ibm_twitter(path: Path, data: Path, key: str | None = None) -> ImportSummary:
    """Convert the IBM Twitter customer-care JSON (list of conversations) into `data`.

    Customer handles are pseudonymised with HMAC-SHA256 under `key`; without a key a random one
    is used, so pseudonyms then differ between imports.
    """
    items = _twitter_items(path)
    summary = ImportSummary(source=str(path), records_read=len(items))
    usable = [i for i in items if _twitter_usable(i)]
    summary.records_skipped.extend(
        Skipped(path.name, n, "not a conversation (no dialogHeader/dialogContent)")
        for n, i in enumerate(items, start=1)
        if not _twitter_usable(i)
    )
    if not usable:  # nothing to write: a data folder of empty tables would look like a quiet week
        raise InputError(f"{path}: no conversations (objects with dialogHeader and dialogContent)")
    secret = key if key else secrets.token_hex(32)
    if not key:
        summary.notes.append(
            "pseudonyms use a random key (set CS_METRICS_PSEUDONYM_KEY to keep them stable)"
        )
    messages = twitter_messages(usable, secret.encode("utf-8"), summary)
    _refuse_other_formats(data, "messages", "parquet")
    _refuse_other_formats(data, "shops", "csv")
    summary.files_written.append(write_parquet(messages, data / "messages.parquet"))
    summary.messages_written = len(messages)
    shops = pd.DataFrame(
        {"shop_id": sorted(messages["shop_id"].dropna().unique())}, dtype="string"
    ).assign(name=lambda s: s["shop_id"], market=pd.NA, timezone="UTC")
    summary.files_written.append(write_csv(shops, data / "shops.csv"))
    return summary


def _twitter_items(path: Path) -> list[Any]:
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of conversations")
    return items


def _twitter_usable(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("dialogHeader"), dict)
        and isinstance(item.get("dialogContent"), list)
    )


def twitter_messages(items: list[dict], key: bytes, summary: ImportSummary) -> pd.DataFrame:
    """The SPEC messages table of IBM Twitter conversations; counts go to `summary`."""
    dialog = _twitter_dialog(items)
    final = _twitter_final_replies(items)
    rows = pd.concat([dialog, final], ignore_index=True).sort_values(
        ["item", "position"], kind="stable"
    )
    speaker = rows["speaker"]
    handle = rows["handle"].astype("string")
    company = rows["company"].astype("string")
    foreign_agent = (speaker == "agent") & (handle.str.lower() != company.str.lower())
    role = speaker.map({"client": "buyer", "client1": "buyer", "agent": "seller"})
    summary.unknown_roles += int(role.isna().sum())
    role = role.fillna("system").mask(foreign_agent.fillna(False), "system")
    if foreign_agent.any():
        summary.notes.append(
            f"{int(foreign_agent.sum())} agent message(s) from another company's account "
            "imported as system (they do not answer for this company)"
        )
    companies = set(company.dropna().str.lower()) | set(
        handle.loc[speaker == "agent"].dropna().str.lower()
    )
    customer = role == "buyer"
    sent_at = pd.to_datetime(rows["datetime"], utc=True, format="ISO8601", errors="coerce")
    snowflake = snowflake_instants(rows["tweet_ID"])
    messages = pd.DataFrame(
        {
            "shop_id": company,
            "conversation_id": rows["session"].astype("string"),
            "message_id": rows["tweet_ID"].astype("string").str.strip(),
            "sender_role": role.astype("string"),
            "sent_at": sent_at.fillna(snowflake).astype(INSTANT),
            "sender_id": handle.mask(customer, pseudonyms(handle, key)),
            "message_type": "text",
            "content": pseudonymise_mentions(rows["message"].astype("string"), companies, key),
        }
    ).reset_index(drop=True)
    summary.bad_messages += int((messages["message_id"].isna() | messages["sent_at"].isna()).sum())
    kept = drop_duplicate_messages(messages)
    summary.duplicates_dropped += len(messages) - len(kept)
    if len(kept) < len(messages):
        summary.notes.append(
            "a tweet id that appears in several conversations is kept in the first only"
        )
    return kept.reset_index(drop=True)


def _twitter_dialog(items: list[dict]) -> pd.DataFrame:
    """One row per dialogContent message, with its conversation and speaker."""
    records = [
        {"item": n, "position": p, **(m if isinstance(m, dict) else {})}
        for n, item in enumerate(items)
        for p, m in enumerate(item["dialogContent"])
    ]  # I/O edge: flatten the nested JSON
    frame = pd.DataFrame(records).reindex(
        columns=["item", "position", *TWITTER_SPEAKERS, "datetime", "message", "tweet_ID"]
    )
    header = pd.json_normalize([i["dialogHeader"] for i in items]).reindex(
        columns=["company", "sessionID"]
    )
    present = frame[list(TWITTER_SPEAKERS)].notna().to_numpy()
    speaker = np.array(TWITTER_SPEAKERS, dtype=object)[present.argmax(axis=1)]
    frame["speaker"] = pd.Series(speaker, index=frame.index).where(present.any(axis=1))
    frame["handle"] = frame[list(TWITTER_SPEAKERS)].bfill(axis=1).iloc[:, 0]
    frame["company"] = frame["item"].map(header["company"])
    frame["session"] = frame["item"].map(header["sessionID"])
    return frame[
        [
            "item",
            "position",
            "speaker",
            "handle",
            "company",
            "session",
            "datetime",
            "message",
            "tweet_ID",
        ]
    ]


def _twitter_final_replies(items: list[dict]) -> pd.DataFrame:
    """The company's last reply of each conversation (agentURL), which carries no datetime."""
    flat = pd.json_normalize(items).reindex(
        columns=[
            "dialogHeader.company",
            "dialogHeader.sessionID",
            "agentURL.tweet_ID",
            "agentURL.url_utterance",
        ]
    )
    flat = flat.loc[flat["agentURL.tweet_ID"].notna()]
    return pd.DataFrame(
        {
            "item": flat.index,
            "position": [len(items[i]["dialogContent"]) for i in flat.index],
            "speaker": "agent",
            "handle": flat["dialogHeader.company"],
            "company": flat["dialogHeader.company"],
            "session": flat["dialogHeader.sessionID"],
            "datetime": pd.NA,
            "message": flat["agentURL.url_utterance"],
            "tweet_ID": flat["agentURL.tweet_ID"],
        }
    )


def snowflake_instants(tweet_ids: pd.Series) -> pd.Series:
    """UTC instants of Twitter snowflake ids: ms = (id >> 22) + 1288834974657."""
    ids = pd.to_numeric(tweet_ids.astype("string").str.strip(), errors="coerce").astype("Int64")
    ms = (ids // (1 << 22)) + TWITTER_EPOCH_MS
    return pd.to_datetime(ms.astype("Float64"), unit="ms", utc=True).astype(INSTANT)


def pseudonyms(handles: pd.Series, key: bytes) -> pd.Series:
    """A keyed hash of each handle (case-insensitive, as Twitter handles are): user_<16 hex>."""
    codes, uniques = pd.factorize(handles.str.lower())
    hashed = [_pseudonym(str(u), key) for u in uniques]  # one HMAC per distinct handle
    lookup = np.array([*hashed, pd.NA], dtype=object)
    return pd.Series(lookup[codes], index=handles.index, dtype="string")


def _pseudonym(handle: str, key: bytes) -> str:
    digest = hmac.new(key, handle.lower().encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def pseudonymise_mentions(text: pd.Series, companies: set[str], key: bytes) -> pd.Series:
    """Text with every @mention that is not a company account replaced by its pseudonym."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name.lower() in companies else "@" + _pseudonym(name, key)

    return text.str.replace(MENTION, replace, regex=True)


# ============================================================================================
# Writing
# ============================================================================================


def _refuse_other_formats(data: Path, table: str, fmt: str) -> None:
    """Stop before writing when `data` holds `table` in another format (SPEC 1 forbids two)."""
    others = [data / f"{table}.{ext}" for ext in TABLE_FORMATS if ext != fmt]
    present = [p.name for p in others if p.exists()]
    if present:
        raise UsageError(
            f"{data}: already holds {', '.join(present)}; remove it before importing {table}"
        )


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as Parquet atomically (temp file, then os.replace)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return _atomic(path, lambda stream: pq.write_table(table, stream))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as UTF-8 CSV atomically."""
    text = frame.to_csv(index=False, lineterminator="\n")
    return _atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def _write_text(path: Path, text: str) -> Path:
    return _atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def _atomic(path: Path, write: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        temp.chmod(FILE_MODE)  # mkstemp creates owner-only files
        temp.replace(path)  # readers never see a half-written file
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
