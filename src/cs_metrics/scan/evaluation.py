"""Precision and recall of the scan rules on a labelled set of messages.

Run `python -m cs_metrics.scan.evaluation [LABELLED.csv] [--rules RULES.toml]`; the default
set is tests/scan_eval/labelled.csv (columns: text, sender_role, language, expected
categories separated by ';' or empty for a clean message, note).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cs_metrics.errors import InputError
from cs_metrics.scan.scanner import CATEGORIES, RuleSet, load_rules, scan_messages

DEFAULT_LABELLED = Path("tests/scan_eval/labelled.csv")


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


def evaluate(rules: RuleSet, labelled: pd.DataFrame) -> pd.DataFrame:
    """Per category: precision, recall, support (expected positives), tp, fp, fn."""
    predicted = predictions(rules, labelled).to_list()
    expected = labelled["expected"].to_list()
    rows = []
    for category in CATEGORIES:
        tp = sum(category in p and category in e for p, e in zip(predicted, expected, strict=True))
        fp = sum(
            category in p and category not in e for p, e in zip(predicted, expected, strict=True)
        )
        fn = sum(
            category not in p and category in e for p, e in zip(predicted, expected, strict=True)
        )
        rows.append(
            {
                "category": category,
                "precision": tp / (tp + fp) if tp + fp else float("nan"),
                "recall": tp / (tp + fn) if tp + fn else float("nan"),
                "support": tp + fn,
                "tp": tp,
                "fp": fp,
                "fn": fn,
            }
        )
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
            f"| {row.category} | {row.precision:.3f} | {row.recall:.3f} | {row.support} "
            f"| {row.tp} | {row.fp} | {row.fn} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the per-category precision/recall table (and, with --errors, the misses)."""
    parser = argparse.ArgumentParser(prog="python -m cs_metrics.scan.evaluation")
    parser.add_argument("labelled", nargs="?", type=Path, default=DEFAULT_LABELLED)
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument("--errors", action="store_true", help="list misclassified messages")
    args = parser.parse_args(argv)
    if not args.labelled.is_file():
        sys.stderr.write(f"scan_eval: no labelled set at {args.labelled}\n")
        return 2
    try:
        rules = load_rules(args.rules)
    except InputError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    labelled = read_labelled(args.labelled)
    table = evaluate(rules, labelled)
    out = [
        f"{len(labelled)} messages, {int((labelled['expected'].map(len) == 0).sum())} clean",
        render_table(table),
    ]
    if args.errors:
        with pd.option_context("display.width", 250, "display.max_colwidth", 120):
            out.append(errors(rules, labelled).to_string())
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
