"""Precision and recall of the scan rules on a labelled set of messages.

Run `python -m cs_metrics.scan.evaluation [LABELLED.csv] [--rules RULES.toml]`. Without a
path it prints the table of both sets in tests/scan_eval/: labelled.csv (the set the rules
were tuned on) and blind.csv (written by someone who never read the rules; see its
PROVENANCE.md). Columns: text, sender_role, language, expected categories separated by ';'
or empty for a clean message, note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cs_metrics.errors import InputError
from cs_metrics.scan.scanner import CATEGORIES, RuleSet, load_rules, scan_messages

DEFAULT_LABELLED = Path("tests/scan_eval/labelled.csv")
DEFAULT_BLIND = Path("tests/scan_eval/blind.csv")


def read_labelled(path: Path) -> pd.DataFrame:
    """The labelled set, with `expected` as a list of categories per message."""
    frame = pd.read_csv(path, dtype="string", keep_default_na=False)
    return frame.assign(
        expected=frame["expected"].map(lambda s: [c.strip() for c in s.split(";") if c.strip()])
    )


def labelled_messages(labelled: pd.DataFrame) -> pd.DataFrame:
    """Each labelled text as a message of its own conversation (so no broadcast fires)."""
    ids = pd.array([f"m{i}" for i in range(len(labelled))], dtype="string")
    return pd.DataFrame(
        {
            "shop_id": pd.array(["eval"] * len(labelled), dtype="string"),
            "conversation_id": ids,
            "message_id": ids,
            "sender_role": labelled["sender_role"].astype("string").to_numpy(),
            "sender_id": pd.array([pd.NA] * len(labelled), dtype="string"),
            "sent_at": pd.Timestamp("2026-01-05", tz="UTC"),
            "content": labelled["text"].astype("string").to_numpy(),
        }
    )


def predictions(rules: RuleSet, labelled: pd.DataFrame) -> pd.Series:
    """The categories the scan finds for each labelled message (buyer_abuse included)."""
    messages = labelled_messages(labelled)
    found = scan_messages(messages, rules, include_buyer_abuse=True)
    by_message: dict[str, set[str]] = {}
    for message_id, category in zip(found["message_id"], found["category"], strict=True):
        by_message.setdefault(str(message_id), set()).add(str(category))
    return pd.Series(
        [sorted(by_message.get(m, ())) for m in messages["message_id"]],
        index=labelled.index,
        dtype=object,
    )


def evaluated_categories(labelled: pd.DataFrame) -> list[str]:
    """The scan's categories, then any other category the set expects (in name order).

    A category the rules do not know yet must still show up, with its misses, rather than
    drop out of the table and flatter the figures.
    """
    expected = {c for cats in labelled["expected"] for c in cats}
    return [*CATEGORIES, *sorted(expected - set(CATEGORIES))]


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def evaluate(rules: RuleSet, labelled: pd.DataFrame) -> pd.DataFrame:
    """Per category, then `all` (micro-averaged): precision, recall, support, tp, fp, fn."""
    predicted = predictions(rules, labelled).to_list()
    expected = labelled["expected"].to_list()
    counts: list[tuple[str, int, int, int]] = []
    pairs = list(zip(predicted, expected, strict=True))
    for category in evaluated_categories(labelled):
        tp = sum(category in p and category in e for p, e in pairs)
        fp = sum(category in p and category not in e for p, e in pairs)
        fn = sum(category not in p and category in e for p, e in pairs)
        counts.append((category, tp, fp, fn))
    counts.append(
        (
            "all",
            sum(c[1] for c in counts),
            sum(c[2] for c in counts),
            sum(c[3] for c in counts),
        )
    )
    rows = [
        {
            "category": category,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "support": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
        for category, tp, fp, fn in counts
    ]
    return pd.DataFrame(rows)


def errors(rules: RuleSet, labelled: pd.DataFrame) -> pd.DataFrame:
    """The labelled messages whose predicted categories differ from the expected ones."""
    predicted = predictions(rules, labelled)
    wrong = [set(p) != set(e) for p, e in zip(predicted, labelled["expected"], strict=True)]
    return labelled.assign(predicted=predicted)[wrong][
        ["language", "sender_role", "expected", "predicted", "text"]
    ]


def render_table(table: pd.DataFrame) -> str:
    """A Markdown table of the evaluation."""
    lines = [
        "| category | precision | recall | support | tp | fp | fn |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.category} | {_figure(row.precision)} | {_figure(row.recall)} | {row.support} "
            f"| {row.tp} | {row.fp} | {row.fn} |"
        )
    return "\n".join(lines)


def _figure(value: float) -> str:
    """A ratio with three decimals; '–' when nothing was expected or found."""
    return "–" if pd.isna(value) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Print the per-category precision/recall table of each set (and, with --errors, misses).

    Without a path both sets are evaluated, but --errors lists only the tuning set's misses:
    the blind set stays blind (read its figures, never its misclassified texts).
    """
    parser = argparse.ArgumentParser(prog="python -m cs_metrics.scan_eval")
    parser.add_argument("labelled", nargs="?", type=Path, default=None)
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument(
        "--errors", action="store_true", help="list misclassified messages (not of blind.csv)"
    )
    args = parser.parse_args(argv)
    paths = [args.labelled] if args.labelled else [DEFAULT_LABELLED, DEFAULT_BLIND]
    for path in paths:
        if not path.is_file():
            sys.stderr.write(f"scan_eval: no labelled set at {path}\n")
            return 2
    try:
        rules = load_rules(args.rules)
    except InputError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    out = []
    for path in paths:
        labelled = read_labelled(path)
        clean = int((labelled["expected"].map(len) == 0).sum())
        table = evaluate(rules, labelled)
        out += [f"{path}: {len(labelled)} messages, {clean} clean", render_table(table)]
        if args.errors and path.name != DEFAULT_BLIND.name:
            with pd.option_context("display.width", 250, "display.max_colwidth", 120):
                out.append(errors(rules, labelled).to_string())
        out.append("")
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
