"""Guideline compliance scan: flag seller and auto-reply messages that break section 4.2.

The rules are data (`cs_metrics/scan/rules.toml`, format in docs/scan.md). Each
rule's patterns are joined into one alternation and run once over the whole content
column with pyarrow's RE2 kernels (the engine behind `Series.str.contains` for
Arrow-backed strings; called directly so that no pattern silently falls back to a
per-row Python loop). Python `re` is used only on the few flagged messages, to cut
and mask their excerpts.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import small_codes
from cs_metrics.config import read_toml, unknown_names
from cs_metrics.errors import InputError

CATEGORIES: tuple[str, ...] = (
    "off_platform_contact",
    "off_platform_payment",
    "order_cancellation_request",
    "review_manipulation",
    "threat_or_coercion",
    "spam_marketing",
    "abusive_language",
    "buyer_abuse",
    "gambling_invitation",
    "app_install_link",
    "sexual_content",
    "personal_data_request",
)
LANGUAGES = frozenset({"all", "en", "ms", "id", "vi", "th", "tl"})
ROLES = frozenset({"buyer", "seller", "auto_reply"})
DEFAULT_ROLES = ("seller", "auto_reply")
FINDING_COLUMNS = [
    "shop_id",
    "conversation_id",
    "message_id",
    "sender_role",
    "sender_id",
    "sent_at",
    "category",
    "rule_id",
    "section",
    "excerpt",
    "from_auto_reply",
]
_MACRO = re.compile(r"\{\{(\w+)\}\}")
_ELLIPSIS = "…"

# Diacritic folding: one character in, one character out, so positions found in the
# folded text are positions in the (NFKC) original too. Thai is not touched.
_FOLD_CLASSES: dict[str, str] = {
    "a": "àáảãạăằắẳẵặâầấẩẫậäåā",
    "c": "ç",
    "d": "đð",
    "e": "èéẻẽẹêềếểễệëē",
    "i": "ìíỉĩịîïī",
    "n": "ñ",
    "o": "òóỏõọôồốổỗộơờớởỡợöø",
    "u": "ùúủũụưừứửữựûüū",
    "y": "ỳýỷỹỵÿ",
}
_FOLD_TABLE = {
    ord(ch): base for base, chars in _FOLD_CLASSES.items() for ch in chars + chars.upper()
}
# NFKC splits Thai SARA AM into NIKHAHIT + SARA AA; put it back (keeps lengths and
# lets rules be written with the usual spelling).
_THAI_AM_SPLIT = "\u0e4d\u0e32"
_THAI_AM = "\u0e33"


@dataclass(frozen=True)
class Rule:
    """One rule: a finding of `category` when any pattern and every `requires` matches."""

    id: str
    category: str
    section: str
    languages: tuple[str, ...]
    roles: frozenset[str]
    kind: str  # "pattern" or "broadcast"
    pattern: str  # all patterns joined into one alternation
    requires: tuple[str, ...]
    rationale: str
    compiled: re.Pattern[str]


@dataclass(frozen=True)
class Neutraliser:
    """Text that only looks like a violation; blanked out before `categories` are scanned."""

    id: str
    categories: frozenset[str]
    pattern: str
    compiled: re.Pattern[str]


@dataclass(frozen=True)
class AskedFirst:
    """A buyer's request that turns the seller's later findings of `category` in the same
    conversation into answers: the buyer asked to cancel first, the seller agreed.

    A finding that a rule of `keep_rules` also names stays (agreeing to cancel is fine,
    "cancel it and pay me directly" is not).
    """

    id: str
    category: str
    languages: tuple[str, ...]
    pattern: str  # the buyer-side patterns joined into one alternation
    keep_rules: tuple[str, ...]
    neutralise: tuple[str, ...]  # neutralisers blanking the buyer's text first ("don't cancel")
    rationale: str


@dataclass(frozen=True)
class RuleSet:
    """The compiled rules file."""

    rules: tuple[Rule, ...]
    neutralisers: tuple[Neutraliser, ...]
    allowed_domains: tuple[str, ...]
    broadcast_min_conversations: int
    excerpt_chars: int
    source: str
    asked_first: tuple[AskedFirst, ...] = ()

    def rules_for(self, category: str) -> tuple[Rule, ...]:
        """The rules of one category, in file order."""
        return tuple(r for r in self.rules if r.category == category)

    def neutralisers_for(self, category: str) -> tuple[Neutraliser, ...]:
        """The neutralisers applied before one category's rules."""
        return tuple(
            n for n in self.neutralisers if "all" in n.categories or category in n.categories
        )


# --------------------------------------------------------------------------- text


def fold_pattern(pattern: str) -> str:
    """Normalise a pattern the way message text is normalised (NFKC, diacritics folded)."""
    text = unicodedata.normalize("NFKC", pattern).replace(_THAI_AM_SPLIT, _THAI_AM)
    return text.translate(_FOLD_TABLE)


def _display_array(content: pd.Series | pa.Array) -> pa.ChunkedArray:
    """NFKC-normalised content as Arrow strings, missing values as ''."""
    raw = content if isinstance(content, pa.Array) else _content_array(content)
    arr = pc.fill_null(pa.chunked_array([raw]), "")
    arr = pc.utf8_normalize(arr, "NFKC")
    return pc.replace_substring(arr, _THAI_AM_SPLIT, _THAI_AM)


def _content_array(content: pd.Series) -> pa.Array:
    """A content column as one Arrow array of large strings."""
    arr = pa.array(content, type=pa.large_string(), from_pandas=True)
    # A column backed by several Arrow chunks comes back chunked.
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _distinct(content: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Each message's position among the distinct texts, and the distinct texts (a missing
    text is one of them): auto-replies and canned answers repeat, and a rule's verdict
    depends on the text alone, so each text is normalised and matched once."""
    encoded = pc.dictionary_encode(_content_array(content), null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _fold_array(display: pa.ChunkedArray) -> pa.ChunkedArray:
    """Lower case and diacritics folded, position for position."""

    def fold(text: pa.ChunkedArray) -> pa.ChunkedArray:
        for base, chars in _FOLD_CLASSES.items():
            text = pc.replace_substring_regex(text, f"[{chars}]", base)
        return text

    return _rewrite_matching(pc.utf8_lower(display), f"[{''.join(_FOLD_CLASSES.values())}]", fold)


def _rewrite_matching(
    text: pa.ChunkedArray,
    pattern: str,
    rewrite: Callable[[pa.ChunkedArray], pa.ChunkedArray],
) -> pa.ChunkedArray:
    """`rewrite` applied to the texts `pattern` matches, for a `rewrite` that leaves the others
    as they are: most messages need no rewriting, and finding them is cheaper than rewriting."""
    try:
        touched = pc.fill_null(pc.match_substring_regex(text, pattern), False).combine_chunks()
    except pa.ArrowInvalid:  # patterns joined into one are over RE2's size limit: rewrite all
        return rewrite(text)
    if not pc.any(touched).as_py():
        return text
    changed = rewrite(text.filter(touched))
    return pc.replace_with_mask(text, touched, changed.combine_chunks())


def normalised_text(content: pd.Series) -> pd.Series:
    """The text the rules see: NFKC, lower case, diacritics folded ('Hủy ĐƠN' -> 'huy don')."""
    folded = _fold_array(_display_array(content))
    return pd.Series(folded.to_pandas(), index=content.index, dtype="string")


# --------------------------------------------------------------------------- rules


def _expand(pattern: str, macros: Mapping[str, str], where: str, depth: int = 0) -> str:
    """Replace {{name}} by its macro, recursively."""
    if depth > 10:
        raise InputError(f"scan rules: {where}: macros nest too deep")

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in macros:
            raise InputError(f"scan rules: {where}: unknown macro {{{{{name}}}}}")
        return _expand(macros[name], macros, where, depth + 1)

    return _MACRO.sub(one, pattern)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    """Check a pattern in both engines (Python re for excerpts, RE2 for the scan)."""
    stripped = re.sub(r"\\.|\(\?P[<=][^>)]*[>)]", "", pattern)
    if re.search(r"[A-Z]", stripped):
        raise InputError(
            f"scan rules: {where}: patterns are matched against lower-case text; "
            "write them in lower case"
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"scan rules: {where}: bad pattern: {exc}") from None
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except pa.ArrowInvalid as exc:
        raise InputError(
            f"scan rules: {where}: pattern not supported by RE2 "
            f"(no look-arounds or back-references): {exc}"
        ) from None
    return compiled


def _string_list(value: Any, where: str, *, required: bool = True) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or (required and not value)
    ):
        raise InputError(f"scan rules: {where}: must be a non-empty list of strings")
    return tuple(value)


def _merged_config(data: dict[str, Any]) -> dict[str, Any]:
    """A user file with `extends = "default"` adds to (and may override) the packaged rules."""
    if data.get("extends") in (None, ""):
        return data
    if data["extends"] != "default":
        raise InputError('scan rules: `extends` can only be "default"')
    base = _read_toml(None)
    user_ids = {r.get("id") for r in data.get("rule", [])}
    user_nids = {n.get("id") for n in data.get("neutralise", [])}
    user_aids = {a.get("id") for a in data.get("asked_first", [])}
    return {
        "settings": {**base.get("settings", {}), **data.get("settings", {})},
        "macros": {**base.get("macros", {}), **data.get("macros", {})},
        "neutralise": [n for n in base.get("neutralise", []) if n.get("id") not in user_nids]
        + data.get("neutralise", []),
        "rule": [r for r in base.get("rule", []) if r.get("id") not in user_ids]
        + data.get("rule", []),
        "asked_first": [a for a in base.get("asked_first", []) if a.get("id") not in user_aids]
        + data.get("asked_first", []),
    }


def _read_toml(path: Path | None) -> dict[str, Any]:
    source = importlib.resources.files("cs_metrics.scan") / "rules.toml" if path is None else path
    return read_toml(source, InputError, "scan rules")


def load_rules(path: Path | None = None) -> RuleSet:
    """Load and compile a rules file (default: the packaged `rules.toml`)."""
    raw = _read_toml(path)
    unknown = unknown_names(
        raw, ("version", "extends", "settings", "macros", "neutralise", "rule", "asked_first")
    )
    if unknown:  # e.g. [[rules]] for [[rule]]: the file would scan with no rules
        raise InputError(
            f"scan rules: unknown table {', '.join(unknown)} "
            "(a rules file holds [settings], [macros], [[neutralise]], [[rule]] "
            "and [[asked_first]])"
        )
    data = _merged_config(raw)
    settings = data.get("settings", {})
    domains = _string_list(settings.get("allowed_domains", []), "allowed_domains", required=False)
    macros = {str(k): str(v) for k, v in data.get("macros", {}).items()}
    macros["allowed_domains"] = (
        "(?:" + "|".join(re.escape(d.lower()) for d in domains) + ")" if domains else "(?:$^)"
    )

    neutralisers = []
    for i, raw in enumerate(data.get("neutralise", [])):
        nid = str(raw.get("id", f"neutralise[{i}]"))
        if "pattern" not in raw:
            raise InputError(f"scan rules: neutraliser {nid}: missing `pattern`")
        cats = frozenset(_string_list(raw.get("categories", ["all"]), f"{nid}.categories"))
        strange = cats - set(CATEGORIES) - {"all"}
        if strange:
            raise InputError(f"scan rules: neutraliser {nid}: unknown category {sorted(strange)}")
        pattern = fold_pattern(_expand(str(raw["pattern"]), macros, nid))
        neutralisers.append(Neutraliser(nid, cats, pattern, _compile(pattern, nid)))

    rules = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("rule", [])):
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            raise InputError(f"scan rules: rule #{i + 1}: missing `id`")
        if rid in seen:
            raise InputError(f"scan rules: rule {rid}: duplicate id")
        seen.add(rid)
        for key in ("category", "section", "patterns", "rationale"):
            if key not in raw:
                raise InputError(f"scan rules: rule {rid}: missing `{key}`")
        category = raw["category"]
        if category not in CATEGORIES:
            raise InputError(
                f"scan rules: rule {rid}: unknown category {category!r} "
                f"(one of {', '.join(CATEGORIES)})"
            )
        languages = _string_list(raw.get("languages", ["all"]), f"{rid}.languages")
        if set(languages) - LANGUAGES:
            raise InputError(
                f"scan rules: rule {rid}: unknown language {sorted(set(languages) - LANGUAGES)}"
            )
        default_roles = ("buyer",) if category == "buyer_abuse" else DEFAULT_ROLES
        roles = frozenset(_string_list(raw.get("roles", list(default_roles)), f"{rid}.roles"))
        if roles - ROLES:
            raise InputError(f"scan rules: rule {rid}: unknown role {sorted(roles - ROLES)}")
        kind = raw.get("kind", "pattern")
        if kind not in ("pattern", "broadcast"):
            raise InputError(f"scan rules: rule {rid}: kind must be 'pattern' or 'broadcast'")
        parts = [
            fold_pattern(_expand(p, macros, rid))
            for p in _string_list(raw["patterns"], f"{rid}.patterns")
        ]
        pattern = "|".join(f"(?:{p})" for p in parts)
        requires = tuple(
            fold_pattern(_expand(p, macros, rid))
            for p in _string_list(raw.get("requires"), f"{rid}.requires", required=False)
        )
        for req in requires:
            _compile(req, f"{rid}.requires")
        rules.append(
            Rule(
                id=rid,
                category=category,
                section=str(raw["section"]),
                languages=languages,
                roles=roles,
                kind=kind,
                pattern=pattern,
                requires=requires,
                rationale=str(raw["rationale"]).strip(),
                compiled=_compile(pattern, rid),
            )
        )
    if not rules:
        raise InputError("scan rules: the file defines no [[rule]], so nothing would be found")
    asked_first = _asked_first_entries(
        data.get("asked_first", []),
        macros,
        {r.id: r.category for r in rules},
        {n.id for n in neutralisers},
    )
    return RuleSet(
        rules=tuple(rules),
        neutralisers=tuple(neutralisers),
        allowed_domains=domains,
        broadcast_min_conversations=int(settings.get("broadcast_min_conversations", 20)),
        excerpt_chars=int(settings.get("excerpt_chars", 120)),
        source=str(path) if path else "rules.toml (packaged)",
        asked_first=asked_first,
    )


def _asked_first_entries(
    entries: list[dict[str, Any]],
    macros: Mapping[str, str],
    rule_categories: Mapping[str, str],
    neutraliser_ids: set[str],
) -> tuple[AskedFirst, ...]:
    """The compiled [[asked_first]] tables (buyer requests that make a seller's reply fine)."""
    out = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        aid = raw.get("id")
        if not isinstance(aid, str) or not aid:
            raise InputError(f"scan rules: asked_first #{i + 1}: missing `id`")
        if aid in seen:
            raise InputError(f"scan rules: asked_first {aid}: duplicate id")
        seen.add(aid)
        for key in ("category", "patterns", "rationale"):
            if key not in raw:
                raise InputError(f"scan rules: asked_first {aid}: missing `{key}`")
        if raw["category"] not in CATEGORIES:
            raise InputError(f"scan rules: asked_first {aid}: unknown category {raw['category']!r}")
        languages = _string_list(raw.get("languages", ["all"]), f"{aid}.languages")
        if set(languages) - LANGUAGES:
            raise InputError(
                f"scan rules: asked_first {aid}: unknown language "
                f"{sorted(set(languages) - LANGUAGES)}"
            )
        keep = _string_list(raw.get("keep_rules"), f"{aid}.keep_rules", required=False)
        if set(keep) - set(rule_categories):
            raise InputError(
                f"scan rules: asked_first {aid}: keep_rules names no rule "
                f"{sorted(set(keep) - set(rule_categories))}"
            )
        # A kept finding is named by the keep rule: of another category, it would move there.
        elsewhere = sorted(k for k in keep if rule_categories[k] != raw["category"])
        if elsewhere:
            raise InputError(
                f"scan rules: asked_first {aid}: keep_rules {elsewhere} are not rules of "
                f"its category {raw['category']}"
            )
        blanking = _string_list(raw.get("neutralise"), f"{aid}.neutralise", required=False)
        if set(blanking) - neutraliser_ids:
            raise InputError(
                f"scan rules: asked_first {aid}: neutralise names no neutraliser "
                f"{sorted(set(blanking) - neutraliser_ids)}"
            )
        pattern = _either(
            fold_pattern(_expand(p, macros, aid))
            for p in _string_list(raw["patterns"], f"{aid}.patterns")
        )
        _compile(pattern, aid)
        out.append(
            AskedFirst(
                id=aid,
                category=str(raw["category"]),
                languages=languages,
                pattern=pattern,
                keep_rules=keep,
                neutralise=blanking,
                rationale=str(raw["rationale"]).strip(),
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- masking

_EMAIL = re.compile(r"([A-Za-z0-9])([A-Za-z0-9._%+-]*)(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_NUMBER = re.compile(r"(\+ ?[0-9]{1,3}[ .-]?)?[0-9](?:[ .()-]{0,2}[0-9]){6,}")


def _mask_number(m: re.Match[str]) -> str:
    prefix = m.group(1) or ""
    body = m.group(0)[len(prefix) :]
    digits = sum(ch.isdigit() for ch in body)
    keep_from = digits - 3  # keep the last three digits
    out, seen = [], 0
    for ch in body:
        if ch.isdigit():
            out.append(ch if seen >= keep_from else "*")
            seen += 1
        else:
            out.append(ch)
    return prefix + "".join(out)


def _mask_email(m: re.Match[str]) -> str:
    return m.group(1) + "*" * len(m.group(2)) + m.group(3)


def _mask_one(text: str) -> str:
    return _NUMBER.sub(_mask_number, _EMAIL.sub(_mask_email, text))


def mask_excerpt(text: pd.Series) -> pd.Series:
    """Mask e-mails (j***@gmail.com) and phone/account numbers of 7+ digits (+65 **** *567).

    Every character is replaced one for one, so masking never changes a text's length.
    """
    return text.map(_mask_one, na_action="ignore")


# --------------------------------------------------------------------------- scan


def _neutralised(text: pa.ChunkedArray, neutralisers: tuple[Neutraliser, ...]) -> pa.ChunkedArray:
    """The text with the neutralisers' matches blanked out."""
    if not neutralisers:
        return text

    def blank(text: pa.ChunkedArray) -> pa.ChunkedArray:
        for n in neutralisers:
            text = pc.replace_substring_regex(text, n.pattern, " ")
        return text

    # A text that no neutraliser matches is left as it is by each in turn.
    return _rewrite_matching(text, _either(n.pattern for n in neutralisers), blank)


def _matches(text: pa.ChunkedArray | pa.Array, rule: Rule) -> np.ndarray:
    """Whether each message matches the rule's patterns and all its `requires`."""
    hit = pc.fill_null(pc.match_substring_regex(text, rule.pattern), False)
    for req in rule.requires:
        hit = pc.and_(hit, pc.fill_null(pc.match_substring_regex(text, req), False))
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _either(patterns: Iterable[str]) -> str:
    """One pattern that matches where any of `patterns` does."""
    return "|".join(f"(?:{p})" for p in patterns)


JOINED_CHARS = 12_000
"""Patterns are joined for one pass up to about this many characters. Larger joined patterns
can outgrow RE2's DFA memory, and RE2 then falls back to a scan a hundred times slower
(one category's 20,000 characters took 60 s for 180,000 messages instead of 0.05 s)."""


def _groups(patterns: list[str]) -> list[list[str]]:
    """`patterns` in file order, packed into groups of at most JOINED_CHARS characters."""
    groups: list[list[str]] = []
    size = 0
    for pattern in patterns:
        if not groups or size + len(pattern) > JOINED_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(pattern)
        size += len(pattern)
    return groups


def _matches_any(text: pa.ChunkedArray, patterns: list[str]) -> np.ndarray:
    """Whether each text may match one of `patterns` (all true when RE2 cannot join them)."""
    found = np.zeros(len(text), dtype=bool)
    for group in _groups(patterns):
        try:
            hit = pc.match_substring_regex(text, _either(group))
        except pa.ArrowInvalid:  # the joined pattern is over RE2's size limit
            return np.ones(len(text), dtype=bool)
        found |= np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
    return found


def _at(text: pa.ChunkedArray, rows: np.ndarray) -> pa.ChunkedArray:
    """The texts at `rows` (ascending positions), without a copy when that is all of them."""
    return text if len(rows) == len(text) else text.take(pa.array(rows))


def _group_codes(frame: pd.DataFrame, key: str, text: str) -> np.ndarray:
    """Codes 0.. of a column's distinct values: of its integer key where the rows have one
    (settled messages do), cheaper to hash than the text."""
    values = frame[key].to_numpy() if key in frame else frame[text]
    return pd.factorize(values)[0].astype(np.int64)


def _broadcast(frame: pd.DataFrame, folded: pa.ChunkedArray, min_conversations: int) -> np.ndarray:
    """Whether each message's normalised text reaches >= min_conversations of its shop's chats."""
    spaced = _rewrite_matching(
        folded, r"[\t\r\n]|  ", lambda t: pc.replace_substring_regex(t, r"[ \t\r\n]+", " ")
    )
    key = pc.utf8_trim_whitespace(spaced)
    keys = pc.dictionary_encode(key).combine_chunks()
    key_code = keys.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    shop_code = _group_codes(frame, "shop_key", "shop_id")
    chat_code = _group_codes(frame, "conversation_key", "conversation_id")
    # (shop, text) groups, then the distinct (group, conversation) pairs counted per group.
    group, _ = pd.factorize(shop_code * len(keys.dictionary) + key_code)
    width = int(chat_code.max(initial=0)) + 1
    pairs = pd.unique(group.astype(np.int64) * width + chat_code)
    chats = np.bincount(pairs // width, minlength=group.max() + 1)
    empty = pc.equal(keys.dictionary, "").to_numpy(zero_copy_only=False)
    return (chats[group] >= min_conversations) & ~empty[key_code]


def _excerpt(display: str, located: str, compiled: re.Pattern[str], width: int) -> str:
    """The masked display text cut to ~width characters around the rule's match."""
    masked = _mask_one(display).replace("\n", " ").replace("\r", " ").replace("\t", " ")
    m = compiled.search(located)
    start, end = (m.start(), m.end()) if m else (0, 0)
    if len(masked) <= width:
        return masked.strip()
    if end - start >= width:
        lo, hi = start, start + width
    else:
        lo = max(0, start - (width - (end - start)) // 2)
        hi = min(len(masked), lo + width)
        lo = max(0, hi - width)
    text = masked[lo:hi].strip()
    return (_ELLIPSIS if lo > 0 else "") + text + (_ELLIPSIS if hi < len(masked) else "")


def _blank(text: str, neutralisers: tuple[Neutraliser, ...]) -> str:
    """Neutralisers applied keeping every position (for locating a match)."""
    for n in neutralisers:
        text = n.compiled.sub(lambda m: " " * len(m.group(0)), text)
    return text


def _empty_findings(messages: pd.DataFrame) -> pd.DataFrame:
    frame = messages.iloc[0:0].reindex(columns=FINDING_COLUMNS[:6])
    return frame.assign(
        category=pd.Series(dtype="string"),
        rule_id=pd.Series(dtype="string"),
        section=pd.Series(dtype="string"),
        excerpt=pd.Series(dtype="string"),
        from_auto_reply=pd.Series(dtype=bool),
    ).reset_index(drop=True)


SCAN_COLUMNS = (*FINDING_COLUMNS[:6], "content")
"""The message columns a scan reads."""


def _checked_roles(rules: RuleSet, *, include_buyer_abuse: bool = False) -> set[str]:
    """The sender roles whose messages some active rule checks."""
    active = [r for r in rules.rules if include_buyer_abuse or r.category != "buyer_abuse"]
    return set().union(*(r.roles for r in active))


def scanned_roles(rules: RuleSet, *, include_buyer_abuse: bool = False) -> set[str]:
    """The sender roles whose messages a scan reads: those some active rule checks, and the
    buyer's when an [[asked_first]] entry looks for what the buyer asked before."""
    roles = _checked_roles(rules, include_buyer_abuse=include_buyer_abuse)
    return roles | {"buyer"} if rules.asked_first else roles


def scan_messages(
    messages: pd.DataFrame, rules: RuleSet, *, include_buyer_abuse: bool = False
) -> pd.DataFrame:
    """One row per (message, category) that breaks a rule; columns FINDING_COLUMNS."""
    active = tuple(r for r in rules.rules if include_buyer_abuse or r.category != "buyer_abuse")
    roles = _checked_roles(rules, include_buyer_abuse=include_buyer_abuse)
    scanned = messages["sender_role"].isin(roles).to_numpy(dtype=bool, na_value=False)
    candidates = messages if scanned.all() else messages[scanned]
    if candidates.empty or not active:
        return _empty_findings(messages)

    # The texts are worked on once each (`_distinct`); `code` says which is each message's.
    code, texts = _distinct(candidates["content"])
    display = _display_array(texts)
    folded = _fold_array(display)
    # Neutralisers for every category run once; the others once per category.
    shared = _neutralised(folded, tuple(n for n in rules.neutralisers if "all" in n.categories))
    role_codes, role_names = pd.factorize(candidates["sender_role"])

    def of_rows(text: pa.ChunkedArray, rows: np.ndarray | None = None) -> pa.ChunkedArray:
        """The distinct-text array `text` as one value per candidate message (of `rows`)."""
        return text.take(pa.array(code if rows is None else code[rows]))

    def has_role(codes: np.ndarray, wanted: Iterable[str]) -> np.ndarray:
        """Whether each of `codes` is one of the `wanted` roles (a lookup of the few roles)."""
        return np.isin(np.asarray(role_names), list(wanted))[codes]

    reach = (
        _broadcast(candidates, of_rows(folded), rules.broadcast_min_conversations)
        if any(r.kind == "broadcast" for r in active)
        else None
    )

    def category_hits(category: str) -> list[tuple[np.ndarray, Rule]]:
        """(candidate positions, rule) for one category; the first rule to fire wins."""
        cat_rules = [r for r in active if r.category == category]
        # Only the rows whose sender role one of the category's rules checks.
        wanted = list(set().union(*(r.roles for r in cat_rules))) if cat_rules else []
        rows = np.flatnonzero(has_role(role_codes, wanted))
        if not len(rows):
            return []
        # The distinct texts of these rows, and each row's place among them.
        needed, place = small_codes(code[rows])
        own = tuple(n for n in rules.neutralisers_for(category) if "all" not in n.categories)
        text = _neutralised(_at(shared, needed), own)
        # A rule fires only where its pattern matches, so one pass of all the category's
        # patterns leaves the few rows worth checking rule by rule ("taken" by no rule).
        taken = ~_matches_any(text, [r.pattern for r in cat_rules])[place]
        found: list[tuple[np.ndarray, Rule]] = []
        for rule in cat_rules:
            todo = np.flatnonzero(has_role(role_codes[rows], rule.roles) & ~taken)
            if rule.kind == "broadcast" and reach is not None:
                todo = todo[reach[rows[todo]]]
            if not len(todo):
                continue
            checked = np.unique(place[todo])
            matched = np.zeros(len(needed), dtype=bool)
            matched[checked] = _matches(_at(text, checked), rule)
            hit = todo[matched[place[todo]]]
            if len(hit):
                found.append((rows[hit], rule))
                taken[hit] = True
        return found

    # pyarrow's regex kernels release the GIL, so categories run side by side.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        hits = [h for found in pool.map(category_hits, CATEGORIES) for h in found]
    if not hits:
        return _empty_findings(messages)

    positions = np.concatenate([p for p, _ in hits])
    rule_of = [r for p, r in hits for _ in range(len(p))]
    found = candidates.iloc[positions].reindex(columns=FINDING_COLUMNS[:6]).reset_index(drop=True)
    if rules.asked_first:
        stays, rule_of = _not_answers(messages, found, of_rows(folded, positions), rule_of, rules)
        if not stays.all():
            positions, found = positions[stays], found[stays].reset_index(drop=True)
            rule_of = [r for r, s in zip(rule_of, stays, strict=True) if s]
        if not len(found):
            return _empty_findings(messages)
    display_rows = of_rows(display, positions).to_pylist()
    folded_rows = of_rows(folded, positions).to_pylist()
    blanking = {c: rules.neutralisers_for(c) for c in CATEGORIES}
    excerpts = [
        _excerpt(
            shown,
            _blank(seen, blanking[rule.category]),
            rule.compiled,
            rules.excerpt_chars,
        )
        for shown, seen, rule in zip(display_rows, folded_rows, rule_of, strict=True)
    ]
    found = found.assign(
        category=pd.array([r.category for r in rule_of], dtype="string"),
        rule_id=pd.array([r.id for r in rule_of], dtype="string"),
        section=pd.array([r.section for r in rule_of], dtype="string"),
        excerpt=pd.array(excerpts, dtype="string"),
        from_auto_reply=(found["sender_role"].astype("string") == "auto_reply")
        .fillna(False)
        .astype(bool),
    )
    return _in_order(found)


def _in_order(found: pd.DataFrame) -> pd.DataFrame:
    """Findings by shop, time, conversation, message, then category in CATEGORIES order."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    found = found.assign(_cat=found["category"].map(order).astype(int))
    return (
        found.sort_values(["shop_id", "sent_at", "conversation_id", "message_id", "_cat"])
        .drop(columns="_cat")
        .reset_index(drop=True)
    )


def scan_asking_late(
    pick: Callable[[set[str], pd.DataFrame | None], pd.DataFrame], rules: RuleSet
) -> pd.DataFrame:
    """`scan_messages` of the messages `pick(roles, conversations)` gives (of those roles, and of
    those conversations, a frame of shop_id and conversation_id, unless None), reading the
    buyers' messages only where they can matter.

    The sellers' messages are scanned first. A buyer's earlier request ([[asked_first]]) only
    takes findings away, and only in its own conversation, so the buyers' messages are picked
    just for the conversations holding a finding it could take: the same findings as one scan
    of everyone's messages, without every buyer's text in memory. Broadcast rules in such a
    category count conversations across the shop, so those rules make it one scan of all.
    """
    checked, everyone = _checked_roles(rules), scanned_roles(rules)
    asked = {a.category for a in rules.asked_first}
    if everyone == checked or any(
        r.kind == "broadcast" for r in rules.rules if r.category in asked
    ):
        return scan_messages(pick(everyone, None), rules)
    found = scan_messages(pick(checked, None), rules)
    suspect = found["category"].isin(list(asked)).to_numpy(dtype=bool)
    if not suspect.any():
        return found
    talks = found.loc[suspect, ["shop_id", "conversation_id"]].drop_duplicates()
    again = scan_messages(pick(everyone, talks), rules)
    again = again.loc[again["category"].isin(list(asked)).to_numpy(dtype=bool)]
    return _in_order(pd.concat([found.loc[~suspect], again], ignore_index=True))


def _first_requests(
    messages: pd.DataFrame, chats: pd.DataFrame, asked: AskedFirst, rules: RuleSet
) -> pd.DataFrame:
    """When the buyer first asked (`asked.pattern`) in each of `chats`' conversations:
    columns shop_id, conversation_id, first_at (conversations where the buyer never asked
    are left out)."""
    # The few conversations first (one hash lookup per message), then their buyers' messages.
    wanted = pd.unique(chats["conversation_id"])
    near = np.flatnonzero(messages["conversation_id"].isin(wanted).to_numpy(bool, na_value=False))
    said = messages.iloc[near]
    said = said.loc[
        said["sender_role"].isin(["buyer"]).to_numpy(bool, na_value=False),
        ["shop_id", "conversation_id", "sent_at", "content"],
    ]
    if said.empty:
        return pd.DataFrame(columns=["shop_id", "conversation_id", "first_at"])
    blanking = tuple(n for n in rules.neutralisers if n.id in asked.neutralise)
    text = _neutralised(_fold_array(_display_array(said["content"])), blanking)
    hit = pc.fill_null(pc.match_substring_regex(text, asked.pattern), False)
    asking = said.loc[np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)]
    return (
        asking.groupby(["shop_id", "conversation_id"], observed=True, sort=False)["sent_at"]
        .min()
        .rename("first_at")
        .reset_index()
    )


def _not_answers(
    messages: pd.DataFrame,
    found: pd.DataFrame,
    folded: pa.ChunkedArray,
    rule_of: list[Rule],
    rules: RuleSet,
) -> tuple[np.ndarray, list[Rule]]:
    """Which findings stay, and the rule naming each, once replies to a buyer's own earlier
    request ([[asked_first]]) are taken out. `folded` is each finding's normalised text.

    Only the messages given are seen: a request sent before them (before the scanned week)
    does not count, and the seller's reply stays a finding.
    """
    stays = np.ones(len(found), dtype=bool)
    named = list(rule_of)
    category = np.array([r.category for r in rule_of], dtype=object)
    by_id = {r.id: r for r in rules.rules}
    for asked in rules.asked_first:
        rows = np.flatnonzero(category == asked.category)
        if not len(rows):
            continue
        seller = found.iloc[rows][["shop_id", "conversation_id", "sent_at"]]
        first = _first_requests(messages, seller, asked, rules)
        if first.empty:
            continue
        joined = seller.merge(first, on=["shop_id", "conversation_id"], how="left")
        # At the same instant the buyer's message comes first (SPEC 2), as an auto-reply often
        # lands in the second of the message it answers.
        answered = (joined["first_at"] <= joined["sent_at"]).to_numpy(dtype=bool, na_value=False)
        rows = rows[answered]
        # "OK, cancel it and pay me directly" after the buyer asked is still a finding.
        text = _neutralised(_at(folded, rows), rules.neutralisers_for(asked.category))
        kept = np.zeros(len(rows), dtype=bool)
        for rule_id in asked.keep_rules:
            rule = by_id[rule_id]
            hit = _matches(text, rule) & ~kept
            for i in np.flatnonzero(hit):
                named[rows[i]] = rule
            kept |= hit
        stays[rows[~kept]] = False
    return stays, named


# --------------------------------------------------------------------------- summary


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts(sort=False).sort_index().items()}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarise(findings: pd.DataFrame) -> dict[str, Any]:
    """Counts of findings overall and per shop: by category, by sender, share from auto-replies."""
    sender = (
        findings["sender_id"]
        .astype("string")
        .fillna(findings["sender_role"].astype("string").radd("(").add(")"))
    )
    frame = findings.assign(_sender=sender)
    auto = int(frame["from_auto_reply"].sum())
    shops = {}
    for shop_id, group in frame.groupby("shop_id", sort=True):
        shop_auto = int(group["from_auto_reply"].sum())
        shops[str(shop_id)] = {
            "findings": len(group),
            "by_category": _counts(group["category"]),
            "by_sender": _counts(group["_sender"]),
            "from_auto_reply": shop_auto,
            "auto_reply_share": _share(shop_auto, len(group)),
        }
    return {
        "findings": len(frame),
        "by_category": _counts(frame["category"]),
        "from_auto_reply": auto,
        "auto_reply_share": _share(auto, len(frame)),
        "shops": shops,
    }
