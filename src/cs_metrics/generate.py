"""Seeded generator of realistic TikTok Shop chat exports (SPEC section 1).

Used for the bundled ``sample_data/`` and for benchmarks of millions of messages.
Everything is vectorised with numpy/pandas/pyarrow; the only Python loops run over
shops, time zones, the (at most four) positions of a chat in its conversation,
phrases and tables, never over conversations, chats or messages.

The model, per shop:

* New conversations arrive per local day (Poisson; weekends and the 11.11-style
  "double day" sales of South-East Asian markets are busier) at a local hour drawn
  from a daily curve (quiet 02:00-07:00, busiest in the evening).
* A conversation holds 1-4 chats. A chat is 1-3 buyer messages followed by a
  response: an ``auto_reply`` within seconds (shops that use auto-reply, usually
  followed later by a human ``seller`` message), or a ``seller`` message whose
  delay is fast (minutes), slow (hours), late (more than 12 hours) or never. Each
  shop has an archetype (excellent, good, borderline, failing, unhappy buyers) that
  sets these odds; chats received at night (23:00-08:00 local) are slower.
  A buyer whose chat is never answered stops writing.
* Some conversations open with a seller message (some get no buyer reply at all),
  a few carry ``system`` messages (order cards, notifications).
* Seller messages due inside a Holiday Mode period are sent when it ends (or never,
  when it is still on). Messages after the last covered day are not exported.
* A share of conversations is rated 1..5 after the last message; a few twice.

With ``bad_rows=True`` (the sample) a few bad rows are injected: a ``sent_at`` of
the form ``17/11/2026 10:00``, a role ``alien``, a missing ``conversation_id``, an
exact duplicate message row, and ratings ``6`` and ``4.5``. Typed columns cannot
hold those values, so in that case ``messages.sent_at`` is returned as ISO-8601
text in the shop's local offset and ``ratings.rating`` as text; every other
timestamp column is a tz-aware UTC datetime. With ``bad_rows=False`` all
timestamp columns are typed and ``rating`` is an integer. ``write_tables``
writes either form.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cs_metrics import files
from cs_metrics.errors import UsageError
from cs_metrics.policy import MARKET_TIMEZONES
from cs_metrics.readers import OPTIONAL_COLUMNS, TABLES

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: TABLES[name] + OPTIONAL_COLUMNS[name] for name in TABLES
}
FORMATS = ("csv", "parquet")
CSV_CHUNK_ROWS = 500_000  # rows formatted and written at a time, to bound memory

# Only the markets generated here; the metric code owns the full default table.
MARKET_ZONES = {m: MARKET_TIMEZONES[m] for m in ("SG", "MY", "VN", "TH", "PH", "ID", "GB", "US")}
MARKETS = tuple(MARKET_ZONES)
DOUBLE_DAY_MARKETS = frozenset({"SG", "MY", "VN", "TH", "PH", "ID"})

ROLES = ("buyer", "seller", "auto_reply", "system")
BUYER, SELLER, AUTO, SYSTEM = range(4)
MESSAGE_TYPES = ("text", "image", "product_card", "order_card", "notification")
TEXT, IMAGE, PRODUCT_CARD, ORDER_CARD, NOTIFICATION = range(5)

# Volume and shape of the traffic.
CONVERSATIONS_PER_DAY = 55.0  # per shop of volume 1.0 on a plain weekday
WEEKDAY_FACTOR = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 1.3])  # Monday first
DOUBLE_DAY_FACTOR, AFTER_DOUBLE_DAY_FACTOR = 1.8, 1.3
HOUR_WEIGHT = np.array(  # by local hour: quiet before dawn, busiest in the evening
    [
        *(2.0, 1.2, 0.7, 0.4, 0.3, 0.4, 0.7, 1.4, 2.4, 3.4, 4.0, 4.2),  # 00-11
        *(4.5, 4.2, 4.0, 4.0, 4.2, 4.5, 5.0, 6.0, 7.0, 7.5, 6.5, 4.0),  # 12-23
    ]
)
NIGHT_HOURS = np.isin(np.arange(24), [23, 0, 1, 2, 3, 4, 5, 6, 7])
CHATS_PER_CONVERSATION = (np.array([1, 2, 3, 4]), np.array([0.70, 0.19, 0.08, 0.03]))
BUYER_MESSAGES_PER_CHAT = (np.array([1, 2, 3]), np.array([0.55, 0.30, 0.15]))
SELLER_CLOSING_SHARE = 0.3  # a second seller message after the reply
AUTO_FOLLOW_UP_SHARE = 0.7  # a human reply after the auto-reply
OPENER_SHARE, OUTREACH_ONLY_SHARE, SYSTEM_SHARE = 0.06, 0.35, 0.04
RATINGS_TWICE_SHARE = 0.04
VIOLATIONS_PER_SELLER_TEXT, MIN_VIOLATIONS = 1 / 4000, 6
MESSAGE_ID_BASE, CONVERSATION_ID_BASE = 7_438_000_000_000_000_000, 7_437_000_000_000_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: shop count, first day, day count, size target, seed, bad rows."""

    shops: int = 8
    start: date = date(2026, 11, 9)
    days: int = 15
    messages: int | None = None  # approximate total; None: 2,000-6,000 per sample shop
    seed: int = 7
    bad_rows: bool = True


@dataclass(frozen=True)
class Archetype:
    """How a kind of shop answers and how its buyers rate it."""

    auto_reply: float  # share of chats answered by auto-reply
    day: tuple[float, float, float, float]  # P(fast, slow, late, never) by day
    night: tuple[float, float, float, float]  # the same for chats received at night
    satisfied: float  # P(rating 4 or 5) for a conversation answered in time
    rated: float  # share of conversations that get a rating


ARCHETYPES = {
    "excellent": Archetype(0.5, (0.91, 0.083, 0.005, 0.002), (0.6, 0.37, 0.02, 0.01), 0.92, 0.3),
    "good": Archetype(0.0, (0.74, 0.23, 0.02, 0.01), (0.35, 0.55, 0.07, 0.03), 0.88, 0.25),
    "borderline": Archetype(0.0, (0.56, 0.35, 0.06, 0.03), (0.2, 0.5, 0.2, 0.1), 0.82, 0.25),
    "failing": Archetype(0.0, (0.5, 0.3, 0.12, 0.08), (0.15, 0.4, 0.25, 0.2), 0.92, 0.25),
    "unhappy": Archetype(0.25, (0.72, 0.24, 0.025, 0.015), (0.35, 0.55, 0.07, 0.03), 0.5, 0.35),
}
GENERIC_ARCHETYPES = ("excellent", "good", "good", "borderline", "good", "failing", "unhappy")


@dataclass(frozen=True)
class SampleShop:
    """One hand-made shop of the sample, with its character."""

    shop_id: str
    name: str
    market: str
    timezone: str  # empty: the market's default zone applies
    archetype: str
    volume: float
    agents: int
    holiday: tuple[int, int, int | None] | None = None  # (day offset, hour, days or open)


SAMPLE_SHOPS = (
    SampleShop("SG-001", "Lion City Gadgets", "SG", "Asia/Singapore", "excellent", 1.3, 4),
    SampleShop("MY-001", "Batik Seri Ayu", "MY", "", "borderline", 1.0, 2),
    SampleShop("VN-001", "Nhà Xinh Decor", "VN", "Asia/Ho_Chi_Minh", "failing", 1.1, 3),
    SampleShop("TH-001", "Siam Glow Beauty", "TH", "", "unhappy", 1.15, 3),
    SampleShop("PH-001", "Manila Home Kitchen", "PH", "Asia/Manila", "good", 0.8, 2, (9, 0, 2)),
    SampleShop("ID-001", "Toko Sepatu Jaya", "ID", "", "good", 1.1, 3, (13, 20, None)),
    SampleShop("GB-001", "Brighton Vintage Finds", "GB", "Europe/London", "good", 0.55, 1),
    SampleShop("US-001", "Pacific Pet Supply", "US", "", "excellent", 0.7, 2),
)

# Message texts by kind and market (data/phrases.toml); the violations give the scan something.
PHRASE_KINDS = ("buyer", "follow_up", "reply", "closing", "auto_reply", "opener", "violation")
BUYER_FIRST, BUYER_FOLLOW, REPLY, CLOSING, AUTO_TEXT, OPENER, VIOLATION = range(7)
SYSTEM_PHRASES = (
    ("Buyer placed an order", ORDER_CARD),
    ("Order shipped", ORDER_CARD),
    ("Order delivered", ORDER_CARD),
    ("Buyer requested a refund", NOTIFICATION),
    ("Reminder: please reply to your buyer within 12 hours", NOTIFICATION),
)
PLACEHOLDERS = {IMAGE: "[image]", PRODUCT_CARD: "[product card]", ORDER_CARD: "[order card]"}
SCRIPT_CONTENT = "<script>alert(1)</script>"
BOT_SENDER_ID = "shop_bot"


def generate(config: GeneratorConfig) -> dict[str, pd.DataFrame]:
    """Generate the four SPEC tables (messages, ratings, holiday_mode, shops) for a config."""
    if config.shops < 1 or config.days < 1 or (config.messages is not None and config.messages < 1):
        raise UsageError("generate needs shops >= 1, days >= 1 and messages >= 1")
    rng = np.random.default_rng(config.seed)
    shops = _shop_profiles(config, rng)
    convs = _conversations(shops, config, rng)
    chats = _chats(shops, convs, rng)
    raw = _raw_messages(shops, convs, chats, rng)
    ratings = _ratings_frame(shops, convs, chats, raw, rng)
    del chats  # the largest intermediate; frees memory for the messages frame
    messages = _messages_frame(shops, convs, raw, rng)
    tables = {
        "messages": messages,
        "ratings": ratings,
        "holiday_mode": _holiday_frame(shops),
        "shops": shops.loc[:, list(TABLE_COLUMNS["shops"])].reset_index(drop=True),
    }
    if config.bad_rows:
        zones = _shop_zones(tables["shops"])
        tables["messages"] = _messages_with_bad_rows(messages, zones, rng)
        tables["ratings"] = _ratings_with_bad_rows(ratings, rng)
    return tables


def _shop_profiles(config: GeneratorConfig, rng: np.random.Generator) -> pd.DataFrame:
    """One row per shop: the shops table columns plus the generation parameters."""
    if config.shops <= len(SAMPLE_SHOPS):
        picked = SAMPLE_SHOPS[: config.shops]
    else:
        width = max(4, len(str(config.shops)))
        volumes = rng.lognormal(0.0, 0.4, config.shops)
        agents = rng.integers(1, 6, config.shops)
        picked = tuple(
            SampleShop(
                f"shop_{i + 1:0{width}d}",
                f"Shop {i + 1:0{width}d} ({MARKETS[i % len(MARKETS)]})",
                MARKETS[i % len(MARKETS)],
                MARKET_ZONES[MARKETS[i % len(MARKETS)]] if i % 2 == 0 else "",
                GENERIC_ARCHETYPES[i % len(GENERIC_ARCHETYPES)],
                float(volumes[i]),
                int(agents[i]),
                (config.days // 2, 0, 2) if i % 25 == 12 and config.days >= 4 else None,
            )
            for i in range(config.shops)  # one row per shop, not per message
        )
    df = pd.DataFrame([vars(shop) for shop in picked])
    df["timezone"] = df["timezone"].replace("", np.nan).astype("str")
    df["zone"] = df["timezone"].fillna(df["market"].map(MARKET_ZONES))
    for field in ("auto_reply", "satisfied", "rated"):
        df[field] = [getattr(ARCHETYPES[a], field) for a in df["archetype"]]
    df["day_odds"] = [ARCHETYPES[a].day for a in df["archetype"]]
    df["night_odds"] = [ARCHETYPES[a].night for a in df["archetype"]]
    first = pd.Timestamp(config.start)
    df["lo"] = [_utc_seconds(first, z) for z in df["zone"]]
    df["hi"] = [_utc_seconds(first + pd.Timedelta(days=config.days), z) for z in df["zone"]]
    df["holiday_start"], df["holiday_end"] = zip(
        *(
            _holiday_bounds(h, first, z, config.days)
            for h, z in zip(df["holiday"], df["zone"], strict=True)
        ),
        strict=True,
    )
    return df


def _utc_seconds(local: pd.Timestamp, zone: str) -> int:
    """Unix seconds of a naive local time in a zone (gaps shift forward)."""
    stamp = local.tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
    return int(stamp.timestamp())


def _holiday_bounds(
    holiday: tuple[int, int, int | None] | None, first: pd.Timestamp, zone: str, days: int
) -> tuple[int, int]:
    """Unix seconds [start, end) of a shop's Holiday Mode; end -1 while on, (0, 0) if none."""
    if holiday is None or holiday[0] >= days:
        return 0, 0
    offset, hour, length = holiday
    start = first + pd.Timedelta(days=offset, hours=hour)
    if length is None:
        return _utc_seconds(start, zone), -1
    return _utc_seconds(start, zone), _utc_seconds(start + pd.Timedelta(days=length), zone)


def _messages_per_conversation(shops: pd.DataFrame) -> np.ndarray:
    """Expected exported messages per conversation of each shop (for the size target)."""
    values, odds = CHATS_PER_CONVERSATION
    buyer_values, buyer_odds = BUYER_MESSAGES_PER_CHAT
    night = HOUR_WEIGHT[NIGHT_HOURS].sum() / HOUR_WEIGHT.sum()
    never = np.array(
        [
            (1 - night) * d[3] + night * n[3]
            for d, n in zip(shops["day_odds"], shops["night_odds"], strict=True)
        ]
    )
    chats = float(values @ odds) * (1 - 2 * never)  # a never-answered chat ends the conversation
    auto = shops["auto_reply"].to_numpy()
    replies = auto * (1 + AUTO_FOLLOW_UP_SHARE * (1 - never)) + (1 - auto) * (1 - never) * (
        1 + SELLER_CLOSING_SHARE
    )
    per_chat = float(buyer_values @ buyer_odds) + replies
    kept = 1 - OPENER_SHARE * OUTREACH_ONLY_SHARE
    return chats * per_chat * kept + OPENER_SHARE + SYSTEM_SHARE


def _conversations(
    shops: pd.DataFrame, config: GeneratorConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Conversations: shop, first chat's instant (Unix s), local offset, ids, opener flags."""
    days = pd.date_range(pd.Timestamp(config.start), periods=config.days, freq="D")
    factor = np.tile(WEEKDAY_FACTOR[days.day_of_week.to_numpy()], (len(shops), 1))
    double = np.asarray(days.month == days.day)
    after = np.concatenate([[False], double[:-1]])
    sea = shops["market"].isin(DOUBLE_DAY_MARKETS).to_numpy()[:, None]
    factor = factor * np.where(sea & double, DOUBLE_DAY_FACTOR, 1.0)
    factor = factor * np.where(sea & after, AFTER_DOUBLE_DAY_FACTOR, 1.0)
    rate = CONVERSATIONS_PER_DAY * shops["volume"].to_numpy()[:, None] * factor
    if config.messages is not None:
        expected = (rate.sum(axis=1) * _messages_per_conversation(shops)).sum()
        rate = rate * (config.messages / expected)
    counts = rng.poisson(rate).ravel()
    shop = np.repeat(np.repeat(np.arange(len(shops)), config.days), counts)
    day = np.repeat(np.tile(np.arange(config.days), len(shops)), counts)
    n = len(shop)
    hour = rng.choice(24, size=n, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
    local = np.datetime64(config.start, "s") + (
        day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
    ).astype("timedelta64[s]")
    start = np.empty(n, dtype=np.int64)
    zone_of_shop = shops["zone"].to_numpy()
    for zone in pd.unique(zone_of_shop):  # a handful of zones
        rows = np.isin(shop, np.flatnonzero(zone_of_shop == zone))
        stamps = pd.DatetimeIndex(local[rows]).tz_localize(
            zone, ambiguous=np.zeros(rows.sum(), dtype=bool), nonexistent="shift_forward"
        )
        start[rows] = stamps.as_unit("s").asi8
    offset = local.astype(np.int64) - start
    opener = rng.random(n) < OPENER_SHARE
    return {
        "shop": shop,
        "start": start,
        "offset": offset,
        "id": _increasing_ids(CONVERSATION_ID_BASE, np.lexsort((start, shop)), rng),
        "buyer": rng.integers(0, 1 << 24, n),
        "opener": opener,
        "outreach_only": opener & (rng.random(n) < OUTREACH_ONLY_SHARE),
    }


def _increasing_ids(base: int, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique ids that grow, with random gaps, along ``order`` (like a platform's id counter)."""
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = base + np.cumsum(rng.integers(1, 4_000, len(order)))
    return ids


def _group_starts(sizes: np.ndarray) -> np.ndarray:
    """Index of each group's first row when groups of these sizes are laid end to end."""
    return np.cumsum(sizes) - sizes


def _reply_offsets(
    klass: np.ndarray,
    auto: np.ndarray,
    last_buyer: np.ndarray,
    human_delay: np.ndarray,
    auto_delay: np.ndarray,
    second_draw: np.ndarray,
    closing_delay: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds after a chat starts of its response and of a second shop message (-1: none)."""
    never = klass == 3
    human = np.maximum(human_delay, last_buyer + 3)
    reply = np.where(auto, last_buyer + auto_delay, np.where(never, -1, human))
    second = np.where(
        auto,
        np.where(~never & (second_draw < AUTO_FOLLOW_UP_SHARE), np.maximum(human, reply + 30), -1),
        np.where(~never & (second_draw < SELLER_CLOSING_SHARE), human + closing_delay, -1),
    )
    return reply, second


def _chats(
    shops: pd.DataFrame, convs: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Chats: conversation, start, buyer message offsets, response class and reply offsets."""
    n_conv = len(convs["shop"])
    per_conv = rng.choice(CHATS_PER_CONVERSATION[0], size=n_conv, p=CHATS_PER_CONVERSATION[1])
    conv = np.repeat(np.arange(n_conv), per_conv)
    position = np.arange(len(conv)) - np.repeat(_group_starts(per_conv), per_conv)
    n = len(conv)
    shop = convs["shop"][conv]

    buyers = rng.choice(BUYER_MESSAGES_PER_CHAT[0], size=n, p=BUYER_MESSAGES_PER_CHAT[1])
    firsts = _group_starts(buyers)
    gaps = np.rint(rng.exponential(40.0, int(buyers.sum())) + 5).astype(np.int64)
    gaps[firsts] = 0
    running = np.cumsum(gaps)
    buyer_offsets = running - np.repeat(running[firsts], buyers)
    last_buyer = buyer_offsets[firsts + buyers - 1]

    auto = rng.random(n) < shops["auto_reply"].to_numpy()[shop]
    class_draw = rng.random(n)
    delays = np.stack(
        [
            np.clip(rng.lognormal(np.log(240), 0.8, n), 20, 1_800),  # fast: minutes
            np.exp(rng.uniform(np.log(1_800), np.log(11.5 * 3_600), n)),  # slow: hours
            rng.uniform(12.25 * 3_600, 40 * 3_600, n),  # late: past the 12 hours
        ]
    ).astype(np.int64)
    auto_delay = rng.integers(2, 15, n)
    second_draw = rng.random(n)
    closing_delay = rng.integers(20, 600, n)
    next_gap = np.select(
        [rng.random(n) < 0.55, rng.random(n) < 0.67],
        [rng.integers(60, 1_200, n), rng.integers(3_600, 36_000, n)],
        rng.integers(86_400, 3 * 86_400, n),
    )
    day_cum = np.cumsum(np.stack(shops["day_odds"].to_numpy()), axis=1)[:, :3]
    night_cum = np.cumsum(np.stack(shops["night_odds"].to_numpy()), axis=1)[:, :3]

    start = np.zeros(n, dtype=np.int64)
    klass = np.zeros(n, dtype=np.int8)
    reply = np.zeros(n, dtype=np.int64)
    second = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    conv_end = convs["start"].copy()
    conv_open = ~convs["outreach_only"]  # a never-answered chat makes the buyer give up
    for pos in range(int(per_conv.max(initial=0))):  # at most four positions, vectorised over chats
        rows = np.flatnonzero(position == pos)
        c = conv[rows]
        start[rows] = conv_end[c] + (next_gap[rows - 1] if pos else 0)
        alive[rows] = conv_open[c]
        hour = ((start[rows] + convs["offset"][c]) // 3_600) % 24
        cum = np.where(NIGHT_HOURS[hour][:, None], night_cum[shop[rows]], day_cum[shop[rows]])
        klass[rows] = (class_draw[rows][:, None] > cum).sum(axis=1)
        reply[rows], second[rows] = _reply_offsets(
            klass[rows],
            auto[rows],
            last_buyer[rows],
            delays[np.minimum(klass[rows], 2), rows],
            auto_delay[rows],
            second_draw[rows],
            closing_delay[rows],
        )
        conv_open[c] &= reply[rows] >= 0
        conv_end[c] = start[rows] + np.maximum(
            np.maximum(last_buyer[rows], reply[rows]), second[rows]
        )
    return {
        "conv": conv,
        "start": start,
        "buyers": buyers,
        "buyer_offsets": buyer_offsets,
        "auto": auto,
        "late": ~auto & (klass >= 2),
        "alive": alive,
        "reply": reply,
        "second": second,
        "agent": rng.integers(0, 1 << 30, n) % shops["agents"].to_numpy()[shop],
    }


def _raw_messages(
    shops: pd.DataFrame,
    convs: dict[str, np.ndarray],
    chats: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Exported messages in file order as arrays: conversation, shop, instant, role, kind, agent."""
    n_chat = len(chats["conv"])
    buyer_chat = np.repeat(np.arange(n_chat), chats["buyers"])
    first_buyer = np.zeros(len(buyer_chat), dtype=bool)
    first_buyer[_group_starts(chats["buyers"])] = True
    reply_chat = np.flatnonzero(chats["reply"] >= 0)
    second_chat = np.flatnonzero(chats["second"] >= 0)
    chat = np.concatenate([buyer_chat, reply_chat, second_chat])
    offset = np.concatenate(
        [chats["buyer_offsets"], chats["reply"][reply_chat], chats["second"][second_chat]]
    )
    auto_reply, auto_second = chats["auto"][reply_chat], chats["auto"][second_chat]
    role = np.concatenate(
        [
            np.full(len(buyer_chat), BUYER),
            np.where(auto_reply, AUTO, SELLER),
            np.full(len(second_chat), SELLER),
        ]
    ).astype(np.int8)
    kind = np.concatenate(
        [
            np.where(first_buyer, BUYER_FIRST, BUYER_FOLLOW),
            np.where(auto_reply, AUTO_TEXT, REPLY),
            np.where(auto_second, REPLY, CLOSING),
        ]
    ).astype(np.int8)
    keep = chats["alive"][chat]
    chat, offset, role, kind = chat[keep], offset[keep], role[keep], kind[keep]

    openers = np.flatnonzero(convs["opener"])
    systems = np.flatnonzero(rng.random(len(convs["shop"])) < SYSTEM_SHARE)
    agents = shops["agents"].to_numpy()
    conv = np.concatenate([chats["conv"][chat], openers, systems])
    shop = convs["shop"][conv]
    t = np.concatenate(
        [
            chats["start"][chat] + offset,
            convs["start"][openers] - rng.integers(900, 2 * 86_400, len(openers)),
            convs["start"][systems] + rng.integers(30, 3 * 3_600, len(systems)),
        ]
    )
    role = np.concatenate([role, np.full(len(openers), SELLER), np.full(len(systems), SYSTEM)])
    kind = np.concatenate([kind, np.full(len(openers), OPENER), np.full(len(systems), -1)])
    agent = np.concatenate(
        [
            chats["agent"][chat],
            rng.integers(0, 1 << 30, len(openers)) % agents[convs["shop"][openers]],
            np.zeros(len(systems), dtype=np.int64),
        ]
    )

    # Seller messages due in Holiday Mode are sent when it ends, or never while it is on.
    hol_start = shops["holiday_start"].to_numpy()[shop]
    hol_end = shops["holiday_end"].to_numpy()[shop]
    held = (role == SELLER) & (t >= hol_start) & ((t < hol_end) | (hol_end == -1))
    held &= hol_start != hol_end
    t = np.where(held, hol_end + rng.integers(600, 4 * 3_600, len(t)), t)
    exported = ~(held & (hol_end == -1))
    exported &= (t >= shops["lo"].to_numpy()[shop]) & (t < shops["hi"].to_numpy()[shop])
    rows = np.flatnonzero(exported)
    key = (shop[rows] << 40) | (t[rows] - shops["lo"].min())  # file order: shop, then time
    rows = rows[np.argsort(key, kind="stable")]
    return {
        "conv": conv[rows],
        "shop": shop[rows],
        "t": t[rows],
        "role": role[rows],
        "kind": kind[rows],
        "agent": agent[rows],
    }


@cache
def phrases() -> dict[str, dict[str, tuple[str, ...]]]:
    """Message texts by market and kind (src/cs_metrics/data/phrases.toml)."""
    resource = importlib.resources.files("cs_metrics") / "data" / "phrases.toml"
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    return {market: {kind: tuple(data[market][kind]) for kind in PHRASE_KINDS} for market in data}


def _phrase_table() -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """All texts in one list, with offset and count per (kind, market), and the system base."""
    texts_of = phrases()
    texts: list[str] = []
    offsets = np.zeros((len(PHRASE_KINDS), len(MARKETS)), dtype=np.int64)
    counts = np.zeros_like(offsets)
    for k, kind in enumerate(PHRASE_KINDS):  # a few dozen phrases, not messages
        for m, market in enumerate(MARKETS):
            offsets[k, m], counts[k, m] = len(texts), len(texts_of[market][kind])
            texts.extend(texts_of[market][kind])
    system_base = len(texts)
    texts.extend(text for text, _ in SYSTEM_PHRASES)
    return texts, offsets, counts, system_base


def _texts(values: Sequence[str] | pa.Array, codes: np.ndarray | pa.Array) -> pd.Series:
    """A pandas ``str`` Series of ``values[codes]`` (null where a code is null), built in Arrow."""
    table = values if isinstance(values, pa.Array) else pa.array(values)
    return pd.Series(table.cast(pa.large_string()).take(codes), dtype="str")


def _id_texts(numbers: np.ndarray) -> pd.Series:
    """Whole numbers as a pandas ``str`` Series of their decimal digits."""
    return pd.Series(pa.array(numbers).cast(pa.large_string()), dtype="str")


def _utc_datetimes(seconds: np.ndarray) -> pd.Series:
    """tz-aware UTC datetimes (microseconds) from Unix seconds; -1 becomes NaT."""
    stamps = pd.Series(seconds.astype("datetime64[s]").astype("datetime64[us]"))
    return stamps.where(seconds != -1).dt.tz_localize("UTC")


def _messages_frame(
    shops: pd.DataFrame,
    convs: dict[str, np.ndarray],
    raw: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The messages table (rows as in ``raw``) with ids, types and texts."""
    conv, shop, t = raw["conv"], raw["shop"], raw["t"]
    role, kind, agent = raw["role"], raw["kind"], raw["agent"]
    n = len(t)
    market = np.array([MARKETS.index(m) for m in shops["market"]])[shop]

    mtype = np.full(n, TEXT, dtype=np.int8)
    draw = rng.random(n)
    buyer = role == BUYER
    mtype[buyer] = np.searchsorted([0.87, 0.95, 0.99], draw[buyer], side="right")
    reply = kind == REPLY
    mtype[reply] = np.array([TEXT, IMAGE, PRODUCT_CARD])[
        np.searchsorted([0.95, 0.98], draw[reply], side="right")
    ]
    texts, offsets, counts, system_base = _phrase_table()
    placeholder = {code: len(texts) + i for i, code in enumerate(PLACEHOLDERS)}
    texts.extend(PLACEHOLDERS.values())
    script = len(texts)
    texts.append(SCRIPT_CONTENT)
    phrase = np.maximum(kind, 0)
    choice = (rng.random(n) * counts[phrase, market]).astype(np.int64)
    content = offsets[phrase, market] + choice
    system = np.flatnonzero(role == SYSTEM)
    system_pick = rng.integers(0, len(SYSTEM_PHRASES), len(system))
    content[system] = system_base + system_pick
    mtype[system] = np.array([code for _, code in SYSTEM_PHRASES])[system_pick]
    for code, index in placeholder.items():  # three message types
        content[(role != SYSTEM) & (mtype == code)] = index
    candidates = np.flatnonzero(reply & (mtype == TEXT))
    n_bad = min(
        len(candidates), max(MIN_VIOLATIONS, round(len(candidates) * VIOLATIONS_PER_SELLER_TEXT))
    )
    flagged = rng.choice(candidates, size=n_bad, replace=False)
    content[flagged] = offsets[VIOLATION, market[flagged]] + rng.integers(
        0, counts[VIOLATION, market[flagged]]
    )
    firsts = np.flatnonzero((kind == BUYER_FIRST) & (mtype == TEXT))
    if len(firsts):
        content[rng.choice(firsts)] = script

    n_conv = len(convs["shop"])
    hex_pairs = pa.array([f"{i:02x}" for i in range(256)])
    buyer = convs["buyer"]
    buyer_ids = pc.binary_join_element_wise(
        "buyer_",
        hex_pairs.take(pa.array(buyer >> 16)),
        hex_pairs.take(pa.array((buyer >> 8) & 255)),
        hex_pairs.take(pa.array(buyer & 255)),
        "",
    )
    senders = pa.concat_arrays(
        [buyer_ids, pa.array([f"agent_{i:02d}" for i in range(1, 100)]), pa.array([BOT_SENDER_ID])]
    )
    sender = np.select([role == BUYER, role == SELLER], [conv, n_conv + agent], n_conv + 99)
    message_ids = _increasing_ids(MESSAGE_ID_BASE, np.arange(n), rng)
    return pd.DataFrame(
        {
            "shop_id": _texts(shops["shop_id"].to_list(), shop),
            "conversation_id": _texts(pa.array(convs["id"]).cast(pa.string()), conv),
            "message_id": _id_texts(message_ids),
            "sender_role": _texts(ROLES, role),
            "sent_at": _utc_datetimes(t),
            "sender_id": _texts(senders, pa.array(sender, mask=role == SYSTEM)),
            "message_type": _texts(MESSAGE_TYPES, mtype),
            "content": _texts(texts, content),
        }
    )


def _ratings_frame(
    shops: pd.DataFrame,
    convs: dict[str, np.ndarray],
    chats: dict[str, np.ndarray],
    raw: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The ratings table: some conversations rated after their last message, a few twice."""
    n_conv = len(convs["shop"])
    last = np.full(n_conv, -1, dtype=np.int64)
    np.maximum.at(last, raw["conv"], raw["t"])
    has_buyer = np.bincount(raw["conv"][raw["role"] == BUYER], minlength=n_conv) > 0
    late = np.bincount(chats["conv"][chats["alive"] & chats["late"]], minlength=n_conv) > 0
    shop = convs["shop"]
    rated = np.flatnonzero(has_buyer & (rng.random(n_conv) < shops["rated"].to_numpy()[shop]))
    twice = rated[rng.random(len(rated)) < RATINGS_TWICE_SHARE]
    conv = np.concatenate([rated, twice])
    wait = np.clip(rng.lognormal(np.log(3 * 3_600), 1.2, len(conv)), 120, 3 * 86_400)
    rated_at = last[conv] + wait.astype(np.int64)
    rated_at[len(rated) :] += rng.integers(3_600, 3 * 86_400, len(twice))
    satisfied = shops["satisfied"].to_numpy()[shop[conv]] * np.where(late[conv], 0.55, 1.0)
    happy = rng.random(len(conv)) < satisfied
    rating = np.where(
        happy,
        np.where(rng.random(len(conv)) < 0.72, 5, 4),
        rng.choice([1, 2, 3], size=len(conv), p=[0.45, 0.2, 0.35]),
    )
    keep = rated_at < shops["hi"].to_numpy()[shop[conv]]
    conv, rated_at, rating = conv[keep], rated_at[keep], rating[keep]
    order = np.lexsort((rated_at, shop[conv]))
    conv, rated_at, rating = conv[order], rated_at[order], rating[order]
    return pd.DataFrame(
        {
            "shop_id": _texts(shops["shop_id"].to_list(), shop[conv]),
            "conversation_id": _id_texts(convs["id"][conv]),
            "rating": rating.astype(np.int64),
            "rated_at": _utc_datetimes(rated_at),
        }
    )


def _holiday_frame(shops: pd.DataFrame) -> pd.DataFrame:
    """The holiday_mode table: one period per shop that has one; end NaT while still on."""
    on = shops[shops["holiday_start"] != shops["holiday_end"]]
    return pd.DataFrame(
        {
            "shop_id": on["shop_id"].astype("str").to_numpy(),
            "start": _utc_datetimes(on["holiday_start"].to_numpy(dtype=np.int64)),
            "end": _utc_datetimes(on["holiday_end"].to_numpy(dtype=np.int64)),
        }
    )


def _shop_zones(shops: pd.DataFrame | None) -> dict[str, str]:
    """Each shop's time zone: its ``timezone``, else its market's default (known markets only)."""
    if shops is None or shops.empty:
        return {}
    zone = shops["timezone"].where(shops["timezone"].notna() & (shops["timezone"] != ""))
    market = shops["market"].astype("str").str.upper().map(MARKET_ZONES)
    zone = zone.fillna(market).dropna()
    return dict(zip(shops.loc[zone.index, "shop_id"], zone, strict=True))


def _local_iso(stamps: pd.Series, zones: pd.Series) -> pd.Series:
    """ISO-8601 text of instants in each row's zone (``+08:00``); ``Z`` if none, '' if NaT."""
    utc = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    wall = utc.copy()
    zone_values = zones.to_numpy(dtype=object)
    has_zone = pd.notna(zone_values)
    for zone in pd.unique(zone_values[has_zone]):  # a handful of zones
        rows = zone_values == zone
        local = pd.DatetimeIndex(utc[rows]).tz_localize("UTC").tz_convert(zone).tz_localize(None)
        wall[rows] = local.to_numpy().astype("datetime64[s]")
    offsets = (wall - utc).astype(np.int64)
    unique, inverse = np.unique(
        np.where(has_zone, offsets, np.iinfo(np.int64).min), return_inverse=True
    )
    labels = np.array([_offset_label(int(o)) for o in unique], dtype=str)  # a few offsets
    text = np.char.add(np.datetime_as_string(wall, unit="s"), labels[inverse])
    return pd.Series(np.where(np.isnat(utc), "", text), index=stamps.index, dtype="str")


def _offset_label(seconds: int) -> str:
    """``+08:00`` style label of a UTC offset in seconds; ``Z`` for the no-zone marker."""
    if seconds == np.iinfo(np.int64).min:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _insert_rows(df: pd.DataFrame, extra: pd.DataFrame, after: np.ndarray) -> pd.DataFrame:
    """``df`` with the rows of ``extra`` inserted, each after the row at position ``after``."""
    combined = pd.concat([df, extra], ignore_index=True)
    key = np.concatenate([np.arange(len(df)) * 2, np.asarray(after) * 2 + 1])
    return combined.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


def _messages_with_bad_rows(
    messages: pd.DataFrame, zones: dict[str, str], rng: np.random.Generator
) -> pd.DataFrame:
    """Messages with ``sent_at`` as local ISO text plus four bad rows (three bad, one duplicate)."""
    df = messages.copy()
    df["sent_at"] = _local_iso(df["sent_at"], df["shop_id"].map(zones))
    buyer_text = np.flatnonzero((df["sender_role"] == "buyer") & (df["message_type"] == "text"))
    if len(buyer_text) < 4:  # too small a data set to hide bad rows in
        return df
    picks = np.sort(rng.choice(buyer_text, 4, replace=False))
    bad = df.iloc[picks[:3]].copy()
    local = bad["sent_at"].iloc[0]
    bad.iloc[0, df.columns.get_loc("sent_at")] = (
        f"{local[8:10]}/{local[5:7]}/{local[:4]} {local[11:16]}"
    )
    bad.iloc[1, df.columns.get_loc("sender_role")] = "alien"
    bad.iloc[2, df.columns.get_loc("conversation_id")] = np.nan
    top = int(df["message_id"].astype("int64").max())
    bad["message_id"] = [str(top + i) for i in (1, 2, 3)]
    duplicate = df.iloc[picks[3:]]
    after = np.concatenate([picks[:3], np.minimum(picks[3:] + rng.integers(1, 40), len(df) - 1)])
    return _insert_rows(df, pd.concat([bad, duplicate]), after)


def _ratings_with_bad_rows(ratings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Ratings with ``rating`` as text plus two bad ratings, ``6`` and ``4.5``."""
    df = ratings.copy()
    df["rating"] = df["rating"].astype("str")
    if df.empty:
        return df
    picks = np.sort(rng.choice(len(df), 2, replace=len(df) < 2))
    bad = df.iloc[picks].copy()
    bad["rating"] = ["6", "4.5"]
    return _insert_rows(df, bad, picks)


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> list[Path]:
    """Write each table to ``folder/NAME.csv`` or ``NAME.parquet`` atomically; return the paths."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    zones = _shop_zones(tables.get("shops"))
    written = []
    for name, df in tables.items():  # four tables
        path = folder / f"{name}.{fmt}"
        table = df

        def write(stream: BinaryIO, table: pd.DataFrame = table) -> None:
            if fmt == "csv":
                _write_csv(table, zones, stream)
            else:
                pq.write_table(pa.Table.from_pandas(table, preserve_index=False), stream)

        files.write_atomic(path, write)
        for other in ("csv", "parquet", "jsonl"):  # a table in two formats is an error (SPEC 1)
            if other != fmt:
                (folder / f"{name}.{other}").unlink(missing_ok=True)
        written.append(path)
    return written


def _write_csv(df: pd.DataFrame, zones: dict[str, str], stream: BinaryIO) -> None:
    """Write a frame as UTF-8 CSV, timestamps as ISO-8601 in the shop's offset, in chunks."""
    stamp_columns = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    for begin in range(0, max(len(df), 1), CSV_CHUNK_ROWS):  # chunks bound the memory use
        chunk = df.iloc[begin : begin + CSV_CHUNK_ROWS]
        if stamp_columns:
            chunk = chunk.copy()
            shop_zone = chunk["shop_id"].map(zones) if "shop_id" in chunk else None
            for column in stamp_columns:
                row_zones = shop_zone if shop_zone is not None else pd.Series(np.nan, chunk.index)
                chunk[column] = _local_iso(chunk[column], row_zones)
        chunk.to_csv(stream, index=False, header=begin == 0, lineterminator="\n", encoding="utf-8")
