"""Chats from messages (SPEC 2) and their response clock with Holiday Mode (SPEC 3, 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import (
    arrow_chunks,
    arrow_strings,
    chunks_taken,
    column_taken,
    dictionary_codes,
    id_numbers,
    text_codes,
)
from cs_metrics.duplicates import CONVERSATION_KEYS, is_keyed, keyed_shops
from cs_metrics.timestamps import INSTANT, LAST_INSTANT

ON_TIME, LATE, UNRESPONDED, PENDING, EXCLUDED = (
    "on_time",
    "late",
    "unresponded",
    "pending",
    "excluded_holiday_mode",
)
STATUSES = pd.CategoricalDtype([ON_TIME, LATE, UNRESPONDED, PENDING, EXCLUDED])
_NEVER = np.iinfo("int64").max
"""Stands for the end of a Holiday Mode period that is still on."""


TICKS_PER_MINUTE = 60_000_000
"""The clock counts microseconds, the resolution of every instant (timestamps.INSTANT)."""


def ticks(instants: pd.Series) -> np.ndarray:
    """UTC instants as int64 microseconds since the epoch."""
    return instants.astype(INSTANT).to_numpy(dtype="datetime64[us]").view("int64")


def from_ticks(values: np.ndarray | pd.Series, index: pd.Index | None = None) -> pd.Series:
    """UTC instants from int64 microseconds (the minimum int64 is missing)."""
    array = np.asarray(values, dtype="int64").view("datetime64[us]")
    return pd.Series(array, index=index).dt.tz_localize("UTC")


def counted_messages(
    messages: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    auto_reply_counts: bool = True,
    among: np.ndarray | None = None,
) -> pd.DataFrame:
    """Messages that can open or close a chat, up to the cut-off, in conversation order.

    One row per such message: its `position` in `messages`, whether it is in the same
    conversation as the row before and whether a buyer sent it (the text columns stay where they
    are; chats take them only where needed). With `among` (a mask holding whole shops), only
    those rows.
    """
    roles = ["buyer", "seller", "auto_reply"] if auto_reply_counts else ["buyer", "seller"]
    keep = roles_in(messages["sender_role"], roles)
    if among is not None:
        keep &= among
    sent_at = ticks(messages["sent_at"])
    if cutoff is not None:
        keep = keep & (sent_at <= int(ticks(pd.Series([cutoff]))[0]))
    rows = np.flatnonzero(keep)
    shop, conversation = (
        (messages[k].to_numpy()[rows] for k in CONVERSATION_KEYS)
        if "conversation_key" in messages
        else (
            text_codes(messages["shop_id"])[0][rows],
            id_numbers(messages["conversation_id"])[rows],
        )
    )
    not_buyer = (messages["sender_role"] != "buyer").to_numpy()[rows].astype("int8")
    sent_at = sent_at[rows]
    keys = pa.table(
        {"shop": shop, "conversation": conversation, "sent_at": sent_at, "not_buyer": not_buyer}
    )
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names])
    order = order.to_numpy()
    shop, conversation = shop[order], conversation[order]
    same_conversation = np.zeros(len(order), dtype=bool)
    same_conversation[1:] = (shop[1:] == shop[:-1]) & (conversation[1:] == conversation[:-1])
    # Ordering ties by message_id moves rows only within runs of equal keys: the flags stay.
    not_buyer = not_buyer[order]
    same_keys = same_conversation[1:] & _same_as_previous(sent_at[order])
    same_keys &= _same_as_previous(not_buyer)
    order = _ties_by_message_id(order, same_keys, messages["message_id"], rows)
    return pd.DataFrame(
        {
            "position": rows[order],
            "same_conversation": same_conversation,
            "is_buyer": not_buyer == 0,
        }
    )


def roles_in(roles: pd.Series, wanted: list[str]) -> np.ndarray:
    """Which rows' sender_role is one of `wanted` (a missing role is not), as a new array.

    Checked roles are categories: their few codes are looked up, not every row's text.
    """
    if isinstance(roles.dtype, pd.CategoricalDtype):
        lookup = np.append(roles.cat.categories.isin(wanted), False)  # code -1: missing
        return lookup[roles.cat.codes.to_numpy()]
    return roles.isin(wanted).to_numpy(dtype=bool, na_value=False)


def _same_as_previous(values: np.ndarray) -> np.ndarray:
    return values[1:] == values[:-1]


def _ties_by_message_id(
    order: np.ndarray, same_as_previous: np.ndarray, message_id: pd.Series, rows: np.ndarray
) -> np.ndarray:
    """The order with runs of equal keys (same conversation, instant and kind) by message_id.

    `same_as_previous[i]`: whether row i + 1 of the order has the keys of row i.
    """
    if not same_as_previous.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same_as_previous
    tied[:-1] |= same_as_previous
    positions = np.flatnonzero(tied)
    # A tied row starts a new run unless it equals the row before it.
    continues = np.zeros(len(positions), dtype=bool)
    inner = positions > 0
    continues[inner] = same_as_previous[positions[inner] - 1]
    run = np.cumsum(~continues)
    ids = chunks_taken(pa.chunked_array(arrow_strings(message_id)), rows[order[positions]])
    within = pc.sort_indices(
        pa.table({"run": run, "message_id": ids}),
        sort_keys=[("run", "ascending"), ("message_id", "ascending")],
    ).to_numpy()
    order = order.copy()
    order[positions] = order[positions][within]
    return order


OPENING = {
    "shop_id": "shop_id",
    "conversation_id": "conversation_id",
    "message_id": "first_message_id",
    "sent_at": "received_at",
    "sender_id": "buyer_id",
}
ANSWER = {
    "sent_at": "responded_at",
    "sender_role": "responder_role",
    "sender_id": "responder_id",
    "message_id": "response_message_id",
}
"""Message columns taken at each chat's first buyer message and at its answer, renamed."""
CHAT_SOURCE_COLUMNS = (*OPENING, "sender_role", *CONVERSATION_KEYS)
"""The message columns chats are built from (the keys where the messages are settled)."""
METRIC_COLUMNS = {"shop_id", "sent_at"}
"""The only ones the metrics need: the rest are for the drill-down."""


OPENING_ROW, ANSWER_ROW = "_opening_row", "_answer_row"
"""Columns of chats made with `rows`: the message rows of each chat's opening and answer (-1:
none), from which `with_detail` takes the drill-down's columns later."""


def chats(
    messages: pd.DataFrame,
    ordered: pd.DataFrame,
    detail: bool = True,
    rows: bool = False,
    bounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per chat: received at its first buyer message, responded at the next reply.

    Without `detail`, only what the metrics need: shop and instants (see METRIC_COLUMNS); with
    `rows`, also the rows of `messages` where each chat opened and was answered. With `bounds`
    (shop_id, window_start, window_end), only the chats received in their shop's window.
    """
    is_buyer = ordered["is_buyer"].to_numpy()
    position = ordered["position"].to_numpy()
    prev_buyer = np.zeros(len(ordered), dtype=bool)
    prev_buyer[1:] = is_buyer[:-1]
    prev_buyer &= ordered["same_conversation"].to_numpy()
    opens = is_buyer & ~prev_buyer
    closes = ~is_buyer & prev_buyer
    chat_no = np.cumsum(opens) - 1

    opening = position[opens]
    buyer_messages = np.bincount(chat_no[is_buyer], minlength=len(opening))[: len(opening)]
    # The message that answered each chat (-1: none yet).
    response = np.full(len(opening), -1, dtype="int64")
    response[chat_no[closes]] = position[closes]
    if bounds is not None:
        kept = received_within(messages, opening, bounds)
        opening, buyer_messages, response = opening[kept], buyer_messages[kept], response[kept]
    started = _columns_at(messages, opening, _wanted(OPENING, detail))
    started["buyer_messages"] = buyer_messages
    answered = _columns_at(messages, response, _wanted(ANSWER, detail))
    result = pd.concat([started, answered], axis=1)
    if detail:
        result["responder_role"] = as_text(result["responder_role"])
    if rows:
        result[OPENING_ROW], result[ANSWER_ROW] = opening, response
    return result


def received_within(
    messages: pd.DataFrame, opening: np.ndarray, bounds: pd.DataFrame
) -> np.ndarray:
    """Which chats, by the rows of their first buyer message, were received in their shop's
    window (see `within_bounds`), looked up before any chat's columns are taken."""
    shop = shop_positions(pd.Index(bounds["shop_id"]), messages, opening)
    return within_bounds(shop, ticks(messages["sent_at"])[opening], bounds)


def within_bounds(shop: np.ndarray, at: np.ndarray, bounds: pd.DataFrame) -> np.ndarray:
    """Whether each instant `at` (µs) falls in the window of its shop, `shop` being positions
    in `bounds` (shop_id, window_start, window_end); -1, a shop not there, has no window."""
    if not len(bounds):
        return np.zeros(len(shop), dtype=bool)
    start = ticks(bounds["window_start"])[shop]
    end = ticks(bounds["window_end"])[shop]
    return (shop >= 0) & (at >= start) & (at < end)


def with_detail(messages: pd.DataFrame, chats: pd.DataFrame) -> pd.DataFrame:
    """Chats made from `messages` without `detail` but with `rows`, given the drill-down's
    columns: the same columns, in the same order, as chats made with `detail`.

    Taken for the chats kept (the window's) rather than for every chat of the data.
    """
    started = _columns_at(messages, chats[OPENING_ROW].to_numpy(), _detail_only(OPENING))
    answered = _columns_at(messages, chats[ANSWER_ROW].to_numpy(), _detail_only(ANSWER))
    answered["responder_role"] = as_text(answered["responder_role"])
    taken = {**started.to_dict("series"), **answered.to_dict("series")}
    own = [c for c in chats.columns if c not in (OPENING_ROW, ANSWER_ROW)]
    first = [*OPENING.values(), "buyer_messages", *ANSWER.values()]
    names = [*first, *(c for c in own if c not in first)]
    columns = {n: (taken[n] if n in taken else chats[n]).array for n in names}
    return pd.DataFrame(columns, index=chats.index, columns=names, copy=False)


def _detail_only(names: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in names.items() if k not in METRIC_COLUMNS}


def _wanted(names: dict[str, str], detail: bool) -> dict[str, str]:
    return names if detail else {k: v for k, v in names.items() if k in METRIC_COLUMNS}


def as_text(values: pd.Series) -> pd.Series:
    """Values as text (categories are looked up once, not converted row by row)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype("string")
    codes = values.cat.codes.to_numpy()
    names = pa.array(values.cat.categories.astype(str), pa.large_string())
    text = pc.take(names, pa.array(codes, mask=codes < 0))
    return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)


def _columns_at(messages: pd.DataFrame, rows: np.ndarray, names: dict[str, str]) -> pd.DataFrame:
    """The named columns of `messages` at `rows` (-1: missing), renamed (absent: all missing)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for column, name in names.items():
        if column in messages:
            out[name] = column_taken(messages[column], rows, fill=True)
        else:
            out[name] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out


def positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Where each value is in `index` (-1: not there); only distinct values are looked up."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, distinct = values.cat.codes.to_numpy(), values.cat.categories
    elif values.dtype == object:
        codes, distinct = pd.factorize(values)
    else:
        codes, distinct = _arrow_factorize(values)
    found = np.append(index.get_indexer(distinct), -1)  # code -1 (missing) is not there
    return found[codes]


def shop_positions(
    index: pd.Index, frame: pd.DataFrame, rows: np.ndarray | None = None
) -> np.ndarray:
    """`positions(index, frame["shop_id"])` (of the `rows` given only): by shop key where the
    rows are keyed (a lookup per shop rather than a hash of every row's text)."""
    if not is_keyed(frame):
        shops = frame["shop_id"] if rows is None else column_taken(frame["shop_id"], rows)
        return positions(index, pd.Series(shops))
    key, ids = keyed_shops(frame)
    return index.get_indexer(ids)[key if rows is None else key[rows]]


def _arrow_factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and distinct values of text, hashed by Arrow."""
    codes, distinct = dictionary_codes(arrow_chunks(values.astype("string")))
    return codes, pd.Index(distinct.to_pylist(), dtype="string")


def merged_periods(holiday_mode: pd.DataFrame) -> pd.DataFrame:
    """Holiday Mode periods per shop with overlapping or touching ones merged, in int64 µs."""
    columns = ["shop_id", "start", "end", "held_before"]
    if holiday_mode.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns}).astype(
            {"shop_id": "string"}
        )
    p = pd.DataFrame(
        {
            "shop_id": holiday_mode["shop_id"].astype("string").to_numpy(),
            "start": ticks(holiday_mode["start"]),
            "end": np.where(
                holiday_mode["end"].isna().to_numpy(),
                _NEVER,
                ticks(holiday_mode["end"].fillna(holiday_mode["start"])),
            ),
        }
    )
    p = p[p["end"] > p["start"]].sort_values(["shop_id", "start", "end"], kind="stable")
    reach = p.groupby("shop_id", sort=False)["end"].cummax()
    prev_reach = reach.groupby(p["shop_id"], sort=False).shift(1)
    new_group = prev_reach.isna() | (p["start"] > prev_reach)
    group = new_group.cumsum()
    merged = p.groupby(group, sort=False).agg(
        shop_id=("shop_id", "first"), start=("start", "min"), end=("end", "max")
    )
    duration = np.where(merged["end"] == _NEVER, 0, merged["end"] - merged["start"])
    held = pd.Series(duration, index=merged.index).groupby(merged["shop_id"], sort=False).cumsum()
    merged["held_before"] = (held - duration).astype("int64")
    return merged.reset_index(drop=True)[columns]


def period_shops(shop_id: pd.Series, periods: pd.DataFrame) -> np.ndarray:
    """Each row's shop among the shops with Holiday Mode periods (-1: a shop without any)."""
    if periods.empty:
        return np.full(len(shop_id), -1, dtype="int64")
    return positions(pd.Index(periods["shop_id"].unique()), shop_id)


def _period_at(
    shop: np.ndarray, at: np.ndarray, periods: pd.DataFrame, key: str, exact: bool
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """For each (shop, instant): whether the shop has a period whose `key` is at or before the
    instant, and that last such period's columns (0 where none). `shop` from `period_shops`."""
    columns = [c for c in periods.columns if c != "shop_id"]
    found = np.zeros(len(at), dtype=bool)
    values = {c: np.zeros(len(at), dtype="int64") for c in columns}
    # Only rows of shops that have periods need the as-of join (most shops have none).
    rows = np.flatnonzero(shop >= 0)
    if not len(rows):
        return found, values
    left = pd.DataFrame({"shop": shop[rows], "at": at[rows], "pos": rows})
    left = left.sort_values("at", kind="stable")
    right = periods.drop(columns="shop_id").astype("Int64")
    right["key"] = periods[key].astype("int64")
    right["shop"] = period_shops(periods["shop_id"], periods)
    right = right.sort_values("key", kind="stable")
    hit = pd.merge_asof(
        left,
        right,
        left_on="at",
        right_on="key",
        by="shop",
        direction="backward",
        allow_exact_matches=exact,
    )
    positions_hit = hit["pos"].to_numpy()
    found[positions_hit] = hit["start"].notna().to_numpy()
    for column in columns:
        values[column][positions_hit] = hit[column].to_numpy(dtype="int64", na_value=0)
    return found, values


def _no_periods(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return at.copy(), np.zeros(len(at), dtype=bool)


def clock(shop: np.ndarray, at: np.ndarray, periods: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Active clock (µs) at each instant, Holiday Mode held back; and whether it is in one.

    `shop`: each instant's shop, from `period_shops`.
    """
    if periods.empty:
        return _no_periods(at)
    found, p = _period_at(shop, at, periods, "start", exact=True)
    inside = found & (at < p["end"])
    held = np.where(found, p["held_before"] + np.minimum(at, p["end"]) - p["start"], 0)
    return at - held, inside


def deadlines(shop: np.ndarray, active_deadline: np.ndarray, periods: pd.DataFrame) -> np.ndarray:
    """Instants (µs) at which the active clock reaches the given values (_NEVER if never)."""
    if periods.empty:
        return active_deadline.copy()
    shifted = periods.assign(active_start=periods["start"] - periods["held_before"])
    found, p = _period_at(shop, active_deadline, shifted, "active_start", exact=False)
    open_period = found & (p["end"] == _NEVER)
    held = np.where(found & ~open_period, p["held_before"] + (p["end"] - p["start"]), 0)
    return np.where(open_period, _NEVER, active_deadline + held)


def chat_clock(
    chat_table: pd.DataFrame,
    holiday_mode: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    limit: pd.Timedelta,
) -> pd.DataFrame:
    """Chats with their Holiday-Mode-adjusted response time, deadline and status."""
    periods = merged_periods(holiday_mode)
    received = ticks(chat_table["received_at"])
    responded_at = chat_table["responded_at"]
    responded = responded_at.notna().to_numpy()
    answer = np.where(responded, ticks(responded_at.fillna(chat_table["received_at"])), received)
    shop = period_shops(chat_table["shop_id"], periods)
    active_received, excluded = clock(shop, received, periods)
    active_answer, _ = clock(shop, answer, periods)
    limit_ticks = int(limit / pd.Timedelta(microseconds=1))
    deadline = deadlines(shop, active_received + limit_ticks, periods)
    response_ticks = active_answer - active_received
    cutoff_ticks = _NEVER if cutoff is None else int(ticks(pd.Series([cutoff]))[0])
    status = np.select(
        [
            excluded,
            responded & (response_ticks <= limit_ticks),
            responded,
            (deadline != _NEVER) & (deadline <= cutoff_ticks),
        ],
        [STATUSES.categories.get_loc(s) for s in (EXCLUDED, ON_TIME, LATE, UNRESPONDED)],
        default=STATUSES.categories.get_loc(PENDING),
    )
    out = chat_table.copy()
    out["response_ticks"] = pd.Series(response_ticks, index=out.index, dtype="Int64").where(
        responded & ~excluded
    )
    out["response_minutes"] = pd.Series(response_ticks / TICKS_PER_MINUTE, index=out.index).where(
        responded & ~excluded
    )
    # A deadline pushed past year 9999 by an "until further notice" period is never reached.
    never = deadline > int(ticks(pd.Series([LAST_INSTANT]))[0])
    out["deadline_at"] = from_ticks(np.where(never, np.iinfo("int64").min, deadline), out.index)
    out["deadline_at"] = out["deadline_at"].where(~never & ~excluded)
    out["status"] = pd.Categorical.from_codes(status, dtype=STATUSES)
    return out


def build_chats(
    messages: pd.DataFrame,
    holiday_mode: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    limit: pd.Timedelta,
    auto_reply_counts: bool = True,
    detail: bool = True,
    among: np.ndarray | None = None,
    rows: bool = False,
    bounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every chat in the data up to the cut-off, with its clock and status (see `chats`); of
    the shops whose rows `among` marks, when given (the frame is not copied for them); with
    `bounds`, only the chats received in their shop's window (the clock runs for them only)."""
    ordered = counted_messages(messages, cutoff, auto_reply_counts, among)
    table = chats(messages, ordered, detail, rows, bounds)
    return chat_clock(table, holiday_mode, cutoff, limit)
