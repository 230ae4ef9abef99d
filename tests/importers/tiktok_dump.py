"""SPEC tables written as TikTok Shop API dump pages: the inverse of `import tiktok-api`.

Test-only: the round-trip tests import a generated week through dumps written here.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics.errors import UsageError
from cs_metrics.importers.tiktok_api import (
    PLATFORM_TYPE_PREFIX,
    PLATFORM_TYPES,
    SENDER_TYPES,
    UNIX_EPOCH,
    known_types,
)
from cs_metrics.validate import canonical_roles


def write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file; return its path."""
    path.write_text(text, encoding="utf-8")
    return path


def _upper(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


DUMP_ROLES: dict[str, str] = {
    "buyer": "BUYER",
    "seller": "CUSTOMER_SERVICE",
    "auto_reply": "ROBOT",
    "system": "SYSTEM",
}
"""SPEC role -> API sender role, for writing dumps from SPEC tables."""


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
        written.append(write_text(folder / f"shop_{number:04d}.jsonl", "".join(lines)))
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
