"""The IBM Twitter customer-care conversations (JSON) as a data folder; handles pseudonymised."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cs_metrics.errors import InputError
from cs_metrics.importers.common import (
    ImportSummary,
    Skipped,
    refuse_other_formats,
    write_csv,
    write_parquet,
)
from cs_metrics.importers.tiktok_api import drop_duplicate_messages
from cs_metrics.timestamps import INSTANT

TWITTER_EPOCH_MS = 1288834974657
"""Twitter snowflake epoch: a tweet id's time is (id >> 22) + this, in Unix milliseconds."""


TWITTER_SPEAKERS = ("client", "client1", "agent")


MENTION = re.compile(r"@(\w{1,15})")


PSEUDONYM_PREFIX = "user_"


PSEUDONYM_HEX_DIGITS = 16


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
    refuse_other_formats(data, "messages", "parquet")
    refuse_other_formats(data, "shops", "csv")
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
