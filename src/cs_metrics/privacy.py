"""Buyer privacy: the pseudonym key's own file, buyer pseudonyms, and buyer identifiers hidden
in the text people share (docs/privacy.md)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics import arrow_text, history
from cs_metrics.errors import InputError
from cs_metrics.files import PRIVATE_MODE
from cs_metrics.pipeline import Dataset

KEY_FILE_ENV = "CS_METRICS_KEY_FILE"
"""The environment variable naming the pseudonym key's file."""
PRIVATE_DIR_MODE = 0o700
PARTIAL_MIN_CHARS = 4
"""The shortest cut-off piece of an identifier at an excerpt's edge that is hidden (shorter
pieces name too many words to tell a buyer by)."""
ELLIPSIS = "…"
"""What marks an excerpt cut at an edge (scan.scanner writes it)."""
BUYER = "buyer"
NAME_COLUMN = "sender_name"
"""An optional messages column with the sender's display name (SPEC has none; kept if given)."""

_TOKEN = r"\w[\w.+-]*\w|\w"
"""A word as buyer ids are written (letters, digits, `_`, and `.` `+` `-` inside)."""
_FIRST_TOKEN = re.compile(f"({_TOKEN})")


def key_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the pseudonym key lives: $CS_METRICS_KEY_FILE, else
    ${XDG_CONFIG_HOME:-~/.config}/cs-metrics/pseudonym.key."""
    given = environ.get(KEY_FILE_ENV)
    if given:
        return Path(given).expanduser()
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "cs-metrics" / "pseudonym.key"


def pseudonym_key(history_path: Path | None = None, path: Path | None = None) -> bytes:
    """The secret key of buyer pseudonyms, from its own file (0600; created on first use).

    A key an older version stored in the history store's meta table moves into the file (so
    pseudonyms stay the same) and is erased from the store.
    """
    path = path if path is not None else key_file()
    if path.exists():
        return _read_key(path)
    if history_path is not None:
        moved: list[bytes] = []
        history.take_legacy_pseudonym_key(
            history_path, lambda key: moved.append(_create_key_file(path, key))
        )
        if moved:
            return moved[0]
    return _create_key_file(path, secrets.token_bytes(32))


def _read_key(path: Path) -> bytes:
    """The key in a key file (64 hex digits)."""
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a usable pseudonym key file ({exc})") from exc
    if len(key) < 16:
        raise InputError(f"{path}: the pseudonym key is too short (64 hex digits expected)")
    return key


def _create_key_file(path: Path, key: bytes) -> bytes:
    """Write `key` to a new key file (0600, its folder 0700 when created here); when another run
    created the file meanwhile, its key wins, so both use one key."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
        folder.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the file exists: never replace a key in use
        except FileExistsError:
            return _read_key(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return key


def pseudonym(key: bytes, shop_id: str, buyer_id: Any) -> str:
    """A buyer id as a keyed hash (HMAC-SHA256 over shop and buyer), stable per key."""
    if buyer_id is None or pd.isna(buyer_id):
        return "–"
    message = f"{shop_id}\x1f{buyer_id}".encode()
    return "buyer-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:10]


BUYER_COLUMNS = ("shop_id", "sender_id", "sender_role", NAME_COLUMN)
"""The message columns `_buyers_of` reads."""


def _buyers_of(messages: pd.DataFrame, shops: frozenset[str] | None = None) -> pd.DataFrame:
    """The distinct buyers (shop_id, buyer_id, name) of a group of messages (of `shops` only,
    when named)."""
    # Compared as they are (a category compares its codes): no text copy of every role.
    buyer = messages["sender_role"].eq(BUYER).fillna(False).to_numpy(bool)
    if shops is not None:
        buyer = buyer & messages["shop_id"].isin(list(shops)).to_numpy(bool)
    # Only the columns read here are copied (by Arrow), not the buyers' messages.
    wanted = [c for c in ("shop_id", "sender_id", NAME_COLUMN) if c in messages]
    rows = arrow_text.rows_kept(messages[wanted], buyer)
    missing = pd.Series(pd.NA, index=rows.index, dtype="string")
    found = pd.DataFrame(
        {
            "shop_id": rows["shop_id"].astype("string"),
            "buyer_id": rows["sender_id"].astype("string") if "sender_id" in rows else missing,
            "name": rows[NAME_COLUMN].astype("string") if NAME_COLUMN in rows else missing,
        }
    )
    # A column missing throughout tells no rows apart: not hashed.
    return found.drop_duplicates([c for c in found if c != "name" or NAME_COLUMN in messages])


def _buyer_parts(
    dataset: Dataset, chats: pd.DataFrame | None = None, shops: frozenset[str] | None = None
) -> list[pd.DataFrame]:
    """`data_buyers` in parts, each without repeated rows (the parts may repeat each other's)."""
    parts = dataset.message_groups.map(partial(_buyers_of, shops=shops), BUYER_COLUMNS)
    if chats is not None and shops is not None:
        chats = chats.loc[chats["shop_id"].astype(str).isin(list(shops))]
    if chats is not None and len(chats) and "buyer_id" in chats:
        parts.append(
            pd.DataFrame(
                {
                    "shop_id": chats["shop_id"].astype("string"),
                    "buyer_id": chats["buyer_id"].astype("string"),
                    "name": pd.Series(pd.NA, index=chats.index, dtype="string"),
                }
            )
        )
    return parts


def _stacked(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts of `_buyer_parts` as one frame (no row when there is no part)."""
    if not parts:
        return pd.DataFrame(columns=["shop_id", "buyer_id", "name"], dtype="string")
    return pd.concat(parts, ignore_index=True)


def data_buyers(
    dataset: Dataset, chats: pd.DataFrame | None = None, shops: frozenset[str] | None = None
) -> pd.DataFrame:
    """Every buyer the data holds, of any week: shop_id, buyer_id and display name (if given),
    from the buyers' messages (and the chats' buyer_id); of `shops` only, when named."""
    return _stacked(_buyer_parts(dataset, chats, shops)).drop_duplicates(ignore_index=True)


def data_identifiers(
    dataset: Dataset, key: bytes, shops: frozenset[str] | None = None
) -> BuyerNames:
    """`identifiers` of every buyer in the data folder's messages, of any week (of `shops` only,
    when named: a text is only searched for the buyers of its own shop)."""
    # `identifiers` keeps the first row of each text, so a buyer row repeated in another part
    # changes nothing: the parts are not searched for repeats first.
    return identifiers(_stacked(_buyer_parts(dataset, shops=shops)), key)


@dataclass(frozen=True, eq=False)
class BuyerNames:
    """The texts that name a buyer, lower-cased, one row each: shop_id, text (an id or display
    name, white space as one space), buyer_id, first (the text's first word); and the key of
    their pseudonyms (computed only for the few buyers a text names)."""

    table: pd.DataFrame
    key: bytes

    def pseudonyms(self, shops: pd.Series, buyer_ids: pd.Series) -> pd.Series:
        """The pseudonym of each (shop, buyer id), one HMAC per distinct pair."""
        pairs = pd.DataFrame({"shop_id": shops.to_numpy(), "buyer_id": buyer_ids.to_numpy()})
        distinct = pairs.drop_duplicates()
        names = [pseudonym(self.key, str(s), b) for s, b in distinct.itertuples(index=False)]
        found = pairs.merge(
            distinct.assign(pseudonym=names), on=["shop_id", "buyer_id"], how="left"
        )
        return pd.Series(found["pseudonym"].to_numpy(dtype=object), index=buyer_ids.index)

    @cached_property
    def starts(self) -> tuple[np.ndarray, np.ndarray]:
        """`shop\x1ftext` keys sorted, and the buyer id of each (for pieces that start one)."""
        return self._sorted(self.table["text"])

    @cached_property
    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """As `starts`, of the reversed texts (for pieces that end one)."""
        return self._sorted(self.table["text"].str[::-1])

    def _sorted(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        keys = (self.table["shop_id"] + "\x1f" + texts).to_numpy(dtype=object)
        order = np.argsort(keys, kind="stable")
        return keys[order], self.table["buyer_id"].to_numpy(dtype=object)[order]


def identifiers(buyers: pd.DataFrame, key: bytes) -> BuyerNames:
    """The `BuyerNames` of some buyers (shop_id, buyer_id, name; text columns): their ids and
    display names.

    Each text is trimmed, its white space runs made one space and lower-cased, then the first
    text of each (shop, text) is kept (ids before names, in the buyers' order). The steps that
    need Python's Unicode-aware `re` run in Arrow for the texts that are pure ASCII (where
    Arrow's explicit character sets are Python's) and in `re` only for the others.
    """
    columns = ["shop_id", "text", "buyer_id", "first"]
    known = buyers.loc[buyers["buyer_id"].notna()] if len(buyers) else buyers
    if known.empty:
        return BuyerNames(pd.DataFrame(columns=columns, dtype=object), key)
    texts = pd.DataFrame(
        {
            "shop_id": pd.concat([known["shop_id"]] * 2, ignore_index=True).astype(str),
            "buyer_id": pd.concat([known["buyer_id"]] * 2, ignore_index=True),
            "text": pd.concat([known["buyer_id"], known["name"]], ignore_index=True),
        }
    )
    texts = texts.loc[texts["text"].notna().to_numpy(bool)]
    text = texts["text"].astype(str).str.strip()
    text = _by_ascii(text, _ascii_spaces_joined, lambda t: t.str.replace(r"\s+", " ", regex=True))
    texts["text"] = text.str.lower()
    texts = texts.loc[(texts["text"].str.len() > 0).to_numpy(bool)]
    texts = texts.loc[~texts.duplicated(["shop_id", "text"]).to_numpy(bool)]
    texts["buyer_id"] = texts["buyer_id"].astype(object)
    texts["first"] = _by_ascii(
        texts["text"], _ascii_first_token, lambda t: t.str.extract(_FIRST_TOKEN, expand=False)
    )
    return BuyerNames(texts[columns].reset_index(drop=True), key)


def _ascii_class(pattern: str) -> str:
    """The ASCII characters Python's `re` matches with a one-character `pattern`, as the inside
    of a character class in hex escapes (the same set in RE2, which Arrow runs)."""
    chars = (chr(code) for code in range(128))
    return "".join(f"\\x{ord(c):02x}" for c in chars if re.fullmatch(pattern, c))


_ASCII_SPACES = "[" + _ascii_class(r"\s") + "]+"
"""A run of what Python's `\\s` matches, on ASCII text (RE2's own `\\s` misses `\\x0b` and
`\\x1c`-`\\x1f`)."""
_ASCII_WORD = _ascii_class(r"\w")
_ASCII_TOKEN = f"[{_ASCII_WORD}][{_ASCII_WORD}.+-]*[{_ASCII_WORD}]|[{_ASCII_WORD}]"
"""`_TOKEN` on ASCII text, for RE2."""


def _ascii_spaces_joined(text: pa.Array) -> pa.Array:
    """ASCII texts with each run of white space (as Python's `re` has it) as one space."""
    return pc.replace_substring_regex(text, _ASCII_SPACES, " ")


def _ascii_first_token(text: pa.Array) -> pa.Array:
    """`_FIRST_TOKEN` of ASCII texts: the text itself when it is one token (most ids; a match
    test is much cheaper than an extraction), else extracted."""
    whole = pc.match_substring_regex(text, f"^(?:{_ASCII_TOKEN})$")
    if pc.all(whole).as_py():
        return text
    other = pc.invert(whole)
    found = pc.extract_regex(pc.filter(text, other), f"(?P<first>{_ASCII_TOKEN})")
    return pc.replace_with_mask(text, other, pc.struct_field(found, [0]))


def _by_ascii(
    text: pd.Series,
    arrow: Callable[[pa.Array], pa.Array],
    python: Callable[[pd.Series], pd.Series],
) -> pd.Series:
    """`python(text)` (text a `str` Series without missing values): `arrow` computes it for the
    ASCII texts, `python` only for the rest, each in its row."""
    values = pa.array(text)
    if isinstance(values, pa.ChunkedArray):  # Arrow's mask kernels take arrays only
        values = values.combine_chunks()
    done = pd.Series(pd.array(arrow(values), dtype=text.dtype), index=text.index)
    rest = ~pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
    if rest.any():
        done[rest] = python(text.loc[rest])
    return done


def hidden_findings(findings: pd.DataFrame, named: BuyerNames) -> pd.DataFrame:
    """Findings with every buyer identifier (`identifiers`) in their excerpts replaced by the
    buyer's pseudonym, and a buyer sender's id by its pseudonym too."""
    if not len(findings) or "shop_id" not in findings:
        return findings
    out = findings.copy()
    shops = out["shop_id"].astype(str)
    if "excerpt" in out:
        out["excerpt"] = hidden_text(out["excerpt"], shops, named)
    if {"sender_id", "sender_role"} <= set(out):
        buyer = out["sender_role"].astype("string").eq(BUYER).fillna(False).to_numpy(bool)
        buyer &= out["sender_id"].notna().to_numpy(bool)
        sender = out["sender_id"].astype(object)
        if buyer.any():
            # The sender's own id as the data writes it (a buyer of no other message too).
            sender[buyer] = named.pseudonyms(shops[buyer], sender[buyer])
        out["sender_id"] = sender
    return out


def hidden_text(text: pd.Series, shops: pd.Series, named: BuyerNames) -> pd.Series:
    """Texts with every identifier of a buyer of their shop replaced by its pseudonym: whole
    (any letter case, after `@` too) and, at an edge cut with `…`, a cut-off piece of one."""
    if not len(text) or named.table.empty:
        return text
    source = text.astype(object).where(text.notna(), None)
    present = source.notna()
    out = source.copy()
    out[present] = _edges_hidden(source[present].astype(str), shops[present], named)
    out[present] = _whole_hidden(out[present].astype(str), shops[present], named)
    return out.astype(text.dtype) if isinstance(text.dtype, pd.StringDtype) else out


def _whole_hidden(text: pd.Series, shops: pd.Series, named: BuyerNames) -> pd.Series:
    """Whole identifiers replaced, one regex per shop of the identifiers whose first word the
    shop's texts hold (a join on words first, so a million buyers make no giant pattern)."""
    table = named.table
    words = text.str.lower().str.findall(_TOKEN).explode().dropna()
    said = pd.DataFrame({"shop_id": shops.loc[words.index].to_numpy(), "first": words.to_numpy()})
    candidates = table.merge(said.drop_duplicates(), on=["shop_id", "first"])
    # Identifiers with no word (all punctuation) cannot be found by words: always candidates.
    wordless = table.loc[table["first"].isna() & table["shop_id"].isin(shops.unique())]
    candidates = pd.concat([candidates, wordless], ignore_index=True)
    if candidates.empty:
        return text
    candidates["pseudonym"] = named.pseudonyms(candidates["shop_id"], candidates["buyer_id"])
    out = text.copy()
    for shop, group in candidates.groupby("shop_id", sort=False):  # a loop over shops
        lookup = dict(zip(group["text"], group["pseudonym"], strict=True))
        ordered = sorted(lookup, key=len, reverse=True)  # longest first: `ann_lee` before `ann`
        alternatives = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in ordered)
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        rows = shops == shop

        def replacement(match: re.Match[str], lookup: dict[str, str] = lookup) -> str:
            return lookup[re.sub(r"\s+", " ", match.group().lower())]

        out[rows] = out[rows].str.replace(pattern, replacement, regex=True)
    return out


def _edges_hidden(text: pd.Series, shops: pd.Series, named: BuyerNames) -> pd.Series:
    """A word cut by an excerpt's edge (`…abc123` or `abc1…`) replaced by a pseudonym when it is
    the end (or start) of an identifier of the shop and at least PARTIAL_MIN_CHARS long."""
    head = text.str.extract(rf"^({ELLIPSIS})({_TOKEN})(.*)$", flags=re.DOTALL)
    tail = text.str.extract(rf"^(.*?)({_TOKEN})({ELLIPSIS})$", flags=re.DOTALL)
    out = text.copy()
    for parts, at_start in ((head, True), (tail, False)):
        cut = parts[1].notna() & (parts[1].str.len() >= PARTIAL_MIN_CHARS)
        if not cut.any():
            continue
        found = _piece_of(shops[cut], parts.loc[cut, 1].str.lower(), named, at_start)
        hit = found.notna()
        if not hit.any():
            continue
        rows = found.index[hit]
        if at_start:
            out[rows] = ELLIPSIS + found[hit] + parts.loc[rows, 2]
        else:
            out[rows] = parts.loc[rows, 0] + found[hit] + ELLIPSIS
    return out


def _piece_of(shops: pd.Series, pieces: pd.Series, named: BuyerNames, end: bool) -> pd.Series:
    """The pseudonym of a buyer of the shop whose identifier ends (`end`) or starts with each
    piece, by binary search in the sorted identifiers (reversed, for ends); NaN when none."""
    keys, buyer_ids = named.ends if end else named.starts
    if end:
        pieces = pieces.str[::-1]
    asked = (shops.astype(str) + "\x1f" + pieces).to_numpy(dtype=object)
    at = np.minimum(np.searchsorted(keys, asked), len(keys) - 1)
    hit = np.char.startswith(keys[at].astype(str), asked.astype(str))
    found = pd.Series(np.nan, index=pieces.index, dtype=object)
    if hit.any():
        found[hit] = named.pseudonyms(shops[hit], pd.Series(buyer_ids[at][hit])).to_numpy()
    return found
