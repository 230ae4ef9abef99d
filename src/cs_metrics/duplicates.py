"""The duplicate rule of SPEC 8, settled here once for every engine.

A message whose message_id repeats an earlier good row of its shop (in file order) is a
duplicate: the first is kept, the rest are counted. An engine hands over groups of good message
rows, each shop's rows all in one group; `flagged` marks the repeats of a group, `group_summary`
says what the whole table needs to know of it (counts, time range, shops, odd ids) and
`without_duplicates` leaves the rows the evaluation uses. Checked blocks carry the numbers
their own duplicate pass gave their ids (`with_id_values`), which `flagged` takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from cs_metrics.arrow_text import (
    arrow_chunks,
    chunks_taken,
    clean_text,
    column_taken,
    dictionary_codes,
    id_numbers,
    rows_kept,
    text_codes,
    text_hashes,
    whole_numbers,
)
from cs_metrics.readers import ROW
from cs_metrics.reasons import AS_TEXT, SCIENTIFIC_ID, InputWarning, Warn

DUPLICATE = "_duplicate"
"""Column set on message rows whose message_id repeats an earlier row of the same shop."""
CONVERSATION_KEYS = ("shop_key", "conversation_key")
"""Integer columns of settled messages: equal in both, same conversation (SPEC 2)."""


def repeated_ids(
    shop: np.ndarray,
    ids: pd.Series,
    hashes: Callable[[pa.ChunkedArray], np.ndarray] = text_hashes,
) -> np.ndarray:
    """Which rows repeat the id of an earlier row of the same shop (`shop` holds shop codes).

    Text ids are compared by `hashes` of them first, then by the texts of rows whose hashes
    repeat: the result does not depend on the hash.
    """
    return shared_ids(ids, hashes).repeated(shop)


@dataclass(frozen=True)
class SharedIds:
    """The rows whose id another row also has (whatever its shop), found before the shops are
    known: `repeated` finishes `repeated_ids` once they are."""

    rows: np.ndarray
    codes: np.ndarray
    """One code per distinct id of those rows, in order of first appearance."""
    size: int
    """Rows in all."""

    def repeated(self, shop: np.ndarray) -> np.ndarray:
        """`repeated_ids` with these shop codes."""
        repeated = np.zeros(self.size, dtype=bool)
        if len(self.rows):
            repeated[self.rows] = repeated_pairs(shop[self.rows], self.codes)
        return repeated


def id_values(
    ids: pd.Series, hashes: Callable[[pa.ChunkedArray], np.ndarray] = text_hashes
) -> IdValues:
    """A number per id: the id itself when every id is a whole number (marketplace ids are), else
    a hash of its text."""
    arrow = arrow_chunks(ids)
    numbers = whole_numbers(arrow)
    exact = numbers is not None and not numbers.null_count
    return IdValues(numbers.to_numpy() if numbers is not None and exact else hashes(arrow), exact)


@dataclass(frozen=True)
class IdValues:
    """One uint64 per id (see `id_values`)."""

    numbers: np.ndarray
    exact: bool
    """Whether the numbers are the ids themselves (else hashes: equal ids, equal numbers only)."""


def shared_ids(
    ids: pd.Series,
    hashes: Callable[[pa.ChunkedArray], np.ndarray] = text_hashes,
    known: IdValues | None = None,
) -> SharedIds:
    """The rows of `ids` whose id occurs more than once (see `repeated_ids`); from their
    `id_values` when `known`."""
    found = known if known is not None else id_values(ids, hashes)
    values, exact = found.numbers, found.exact
    # A sort (stable: fast on ids that mostly rise, as the marketplace's do) finds the values
    # that occur more than once; only their rows are compared, by their ids, as (shop, id) pairs.
    ordered = np.sort(values, kind="stable" if exact else "quicksort")
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(shared):
        return SharedIds(np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), len(values))
    rows = np.flatnonzero(np.isin(values, shared))
    codes = (
        pd.factorize(values[rows])[0]
        if exact
        else dictionary_codes(chunks_taken(arrow_chunks(ids), rows))[0]
    )
    return SharedIds(rows, codes.astype("int64"), len(values))


ID_VALUE = "_id_value"
"""Column of a checked block's good rows: the `id_values` of its message_ids, worked out for the
block's own duplicates and kept so the whole table's rule does not hash or parse them again."""
ID_EXACT = "_id_exact"
"""Column beside ID_VALUE: whether its block's values are the ids themselves (else hashes)."""


def with_id_values(good: pd.DataFrame) -> tuple[pd.DataFrame, IdValues]:
    """A block's good rows with ID_VALUE and ID_EXACT set, and their `id_values`."""
    found = id_values(good["message_id"])
    exact = np.full(len(good), found.exact)
    return good.assign(**{ID_VALUE: found.numbers, ID_EXACT: exact}), found


SHOP_CODE = "_shop_code"
"""Column of good rows held in memory: a code per shop_id, numbered as `text_codes` numbers them
(in order of first appearance). Each block's, from its own duplicate pass, are renumbered for the
whole table (`table_shop_codes`) and `flagged` takes them over: encoding ten million shop_ids
again cost it 0.3 to 0.7 s."""


def table_shop_codes(blocks: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Good rows of consecutive blocks (in file order) whose SHOP_CODE numbers the shops of each
    block, renumbered as `text_codes` of all their rows together would number them.

    A block's codes are in order of first appearance in it, so the block's new shops come in
    order of first appearance in the table: one lookup per shop of a block, none per row.
    """
    seen = pd.Index([], dtype="string")
    renumbered = []
    for frame in blocks:
        local = frame[SHOP_CODE].to_numpy()
        names = pd.Index(column_taken(frame["shop_id"], first_appearances(local)), dtype="string")
        new = names[seen.get_indexer(names) < 0]
        seen = seen.append(new)
        # The last entry answers the code -1 (a missing shop_id), as `text_codes` gives it.
        table = np.append(seen.get_indexer(names), -1).astype(local.dtype)
        renumbered.append(frame.assign(**{SHOP_CODE: table[local]}))
    return renumbered


def first_appearances(codes: np.ndarray) -> np.ndarray:
    """The row where each code first appears, for codes numbered in order of first appearance
    (0, 1, 2... ; -1 for none): exactly the rows whose code is above every earlier one."""
    earlier = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]])) if len(codes) else codes
    return np.flatnonzero(codes > earlier)


def carried_id_values(group: pd.DataFrame) -> IdValues | None:
    """The `id_values` of a group's message_ids, from the ID_VALUE its blocks carried (None when
    they carried none, as on the Dask engine).

    The whole table's ids are numbers only when every block's are: a value's shape decides
    (digits, no leading zero). Otherwise the table's values are hashes, so blocks of numbers
    have theirs hashed now.
    """
    if ID_VALUE not in group:
        return None
    values = group[ID_VALUE].to_numpy(dtype=np.uint64)
    exact = group[ID_EXACT].to_numpy(dtype=bool)
    if exact.all() or not exact.any():
        return IdValues(values, bool(exact.all()) and len(values) > 0)
    rows = np.flatnonzero(exact)
    values = values.copy()
    values[rows] = text_hashes(chunks_taken(arrow_chunks(group["message_id"]), rows))
    return IdValues(values, False)


def repeated_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Which (first, second) code pairs occurred in an earlier row (codes >= 0).

    `second` codes number values in order of first appearance (as `text_codes` does), so a row
    whose code is not above every earlier one may repeat a value: only those codes are compared.
    """
    if not len(second):
        return np.zeros(0, dtype=bool)
    earlier_max = np.maximum.accumulate(np.concatenate([[-1], second[:-1]]))
    maybe = (second <= earlier_max) & (second >= 0)  # a missing value (-1) repeats nothing
    if not maybe.any():
        return maybe
    involved = np.zeros(int(second.max()) + 1, dtype=bool)
    involved[second[maybe]] = True
    rows = np.flatnonzero(involved[second] & (second >= 0))
    pairs = pd.Series(first[rows] * (int(second.max()) + 1) + second[rows])
    repeated = np.zeros(len(second), dtype=bool)
    repeated[rows] = pairs.duplicated().to_numpy()
    return repeated


FLAGGED_READS = (ROW, "shop_id", "conversation_id", "message_id", ID_VALUE, ID_EXACT, SHOP_CODE)
"""The columns `flagged` reads (it adds CONVERSATION_KEYS and DUPLICATE, and keeps the rows of
a group in file order where they are)."""


def flagged(group: pd.DataFrame) -> pd.DataFrame:
    """A group's rows in file order, conversations keyed, DUPLICATE set on repeated ids."""
    in_file_order = group[ROW].is_monotonic_increasing
    if not in_file_order:
        group = group.sort_values(ROW, kind="stable")
    group = group.reset_index(drop=True)
    known = carried_id_values(group)
    if known is not None:
        group = group.drop(columns=[ID_VALUE, ID_EXACT])
    # Carried codes number the shops in the order their rows were held: that is file order
    # only if the rows needed no sort.
    carried = group.pop(SHOP_CODE).to_numpy(dtype="int64") if SHOP_CODE in group else None
    # Arrow and numpy release the GIL: conversations are keyed on a second core while the
    # message ids are compared and the shops keyed here.
    with ThreadPoolExecutor(1) as pool:
        conversation = pool.submit(id_numbers, group["conversation_id"])
        shared = shared_ids(group["message_id"], known=known)
        shop = carried if carried is not None and in_file_order else text_codes(group["shop_id"])[0]
        duplicate = shared.repeated(shop)
        group["shop_key"], group["conversation_key"] = shop, conversation.result()
    group[DUPLICATE] = duplicate
    return group


def is_keyed(frame: pd.DataFrame) -> bool:
    """Whether `frame` holds rows of one settled group, its shops keyed (`shop_key`)."""
    return "shop_key" in frame and len(frame) > 0 and int(frame["shop_key"].min()) >= 0


def keyed_shops(group: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """Each row's `shop_key`, and the shop_id of each key (missing for a key no row has).

    A settled group's rows of one shop share a key: one row per key is looked at.
    """
    key = group["shop_key"].to_numpy()
    row_of = np.full(int(key.max(initial=-1)) + 1, -1, dtype="int64")
    # Any row of a key will do (they hold the same shop): every key starts a run of equal keys.
    starts = np.flatnonzero(key[1:] != key[:-1]) + 1
    row_of[key[starts]] = starts
    if len(key):
        row_of[key[0]] = 0
    ids = pd.Series(column_taken(group["shop_id"], row_of, fill=True))
    return key, pd.Index(ids, dtype="string")


def without_duplicates(group: pd.DataFrame) -> pd.DataFrame:
    """A flagged group's used rows: the duplicates and the DUPLICATE column left out."""
    duplicate = group[DUPLICATE].to_numpy()
    used = group.drop(columns=DUPLICATE)
    return rows_kept(used, ~duplicate).reset_index(drop=True) if duplicate.any() else used


@dataclass(frozen=True)
class GroupSummary:
    """What the whole table needs from one flagged group: duplicates, time range, shops, ids."""

    duplicates: int
    earliest: pd.Timestamp | None
    latest: pd.Timestamp | None
    """The latest sent_at of the used rows: the default cut-off is the latest of all groups."""
    shop_ids: pd.Index
    """The shops of the used rows."""
    collapsed: pd.DataFrame
    """Duplicate rows whose message_id is in scientific notation (row number and id)."""
    duplicates_by_shop: pd.Series
    """Rows counted as duplicates per shop_id (SPEC 6a counts a shop's rows read with them)."""


SUMMARY_COLUMNS = (DUPLICATE, ROW, "sent_at", "message_id", "shop_id", "shop_key")
"""The columns of a flagged group that `group_summary` reads."""


def group_summary(group: pd.DataFrame) -> GroupSummary:
    """The duplicates, sent_at range, shops and collapsed-id rows of a flagged group."""
    duplicate = group[DUPLICATE].to_numpy()
    found = bool(duplicate.any())
    # Without duplicates (the common case) no column is masked: selecting none of ten million
    # rows still reads the mask and allocates as much as selecting them all.
    sent_at = group["sent_at"][~duplicate] if found else group["sent_at"]
    repeats = group.loc[duplicate, [ROW, "message_id", "shop_id"]] if found else group.iloc[:0]
    earliest, latest = sent_at.min(), sent_at.max()
    return GroupSummary(
        duplicates=int(duplicate.sum()),
        earliest=None if pd.isna(earliest) else pd.Timestamp(earliest),
        latest=None if pd.isna(latest) else pd.Timestamp(latest),
        shop_ids=_used_shops(group, duplicate),
        collapsed=collapsed_rows(repeats[[ROW, "message_id"]]),
        duplicates_by_shop=repeats["shop_id"].value_counts(),
    )


def _used_shops(group: pd.DataFrame, duplicate: np.ndarray) -> pd.Index:
    """The shop_ids of a flagged group's used rows, in order of first appearance.

    A shop's first row is never a duplicate, so a keyed group's shops are those of its keys
    (numbered in order of first appearance): one lookup per key, not a hash of every row.
    """
    if is_keyed(group):
        return pd.Index(keyed_shops(group)[1].dropna(), dtype="string")
    return pd.Index(group["shop_id"][~duplicate].dropna().unique(), dtype="string")


def collapsed_rows(duplicates: pd.DataFrame) -> pd.DataFrame:
    """Duplicate rows whose (cleaned) message_id is in scientific notation."""
    ids = clean_text(duplicates["message_id"].astype("string"))
    scientific = ids.str.fullmatch(SCIENTIFIC_ID).fillna(False).astype(bool).to_numpy()
    frame = pd.DataFrame(
        {ROW: duplicates[ROW].astype("int64").to_numpy(), "message_id": ids.to_numpy()}
    )
    # Copied out: a slice would keep the whole group's buffers alive.
    return frame.loc[scientific].reset_index(drop=True).copy()


def collapsed_warnings(rows: list[pd.DataFrame], table: str = "messages") -> list[str]:
    """A warning when rows counted as duplicates have scientific-notation ids (likely collapsed).

    `rows` are the collapsed rows of each group; the example is the first in file order.
    """
    frames = [r for r in rows if len(r)]
    if not frames:
        return []
    found = pd.concat(frames, ignore_index=True).sort_values(ROW, kind="stable")
    count = len(found)
    example = found["message_id"].iloc[0]
    line = (
        f"{table}: {count} row(s) counted as duplicates have a message_id in scientific notation "
        f"(e.g. {example!r}): probably different messages whose ids a spreadsheet collapsed into "
        f"one; {AS_TEXT}"
    )
    return [InputWarning(line, table=table, code=Warn.ID_COLLAPSED_DUPLICATES.value, rows=count)]
