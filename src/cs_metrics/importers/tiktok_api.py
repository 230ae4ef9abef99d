"""Saved TikTok Shop Customer Service API pages (Get Conversation Messages) as a data folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics.errors import InputError
from cs_metrics.importers.common import (
    SHOP_COLUMNS,
    ImportSummary,
    Skipped,
    refuse_other_formats,
    write_csv,
    write_parquet,
)
from cs_metrics.timestamps import INSTANT

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


UNIX_EPOCH = pd.Timestamp(0, tz="UTC")


MILLISECONDS_FROM = 100_000_000_000  # SPEC 1: 12-digit whole numbers and up are milliseconds


def import_tiktok_api(raw: Path, data: Path) -> ImportSummary:
    """Convert the dump pages under `raw` (``*.jsonl``, see docs/import.md) into `data`."""
    files = _dump_files(raw)
    summary = ImportSummary(source=str(raw))
    pages = list(_dump_pages(files, raw, summary))
    if not pages:
        raise InputError(f"{raw}: no usable dump pages (see docs/import.md for their form)")
    messages = api_messages(pages, summary)
    refuse_other_formats(data, "messages", "parquet")
    shops = _dump_shops(raw)
    if shops is not None:
        refuse_other_formats(data, "shops", "csv")
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
