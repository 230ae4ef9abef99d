"""Time the compliance scan alone on the generated 10M-message week (2,000 shops).

    python benchmarks/scan.py [--messages 10000000] [--shops 2000] [--data DIR] [--repeat 1]

The data folder is the one benchmarks/run.py generates (seeded, under benchmarks/data/, made with
`cs-metrics generate` on first use), or `--data DIR`. It is loaded once, untimed; then the
weekly job's own scan (`weekly.week_findings`: the week's messages picked, then scanned) is
timed, and, for comparison, the scan of the seller and auto-reply messages alone without the
conversation-aware cancellation ([[asked_first]]), as the scan ran before it (with
`--before-rules OLD.toml`, also with older rules). Prints seconds and messages per second
(messages of the week, all roles).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import time
from pathlib import Path

import numpy as np
from run import dataset  # benchmarks/run.py, beside this script: the same generated weeks

from cs_metrics import pipeline, weekly
from cs_metrics.policy import load_policy
from cs_metrics.scan import scanner
from cs_metrics.scan.scanner import SCAN_COLUMNS, load_rules, scan_messages

FIRST, LAST = dt.date(2026, 11, 16), dt.date(2026, 11, 22)
"""The generated week (benchmarks/run.py's START..END)."""


@contextlib.contextmanager
def patched(module, name: str, value):
    """`module.name` replaced while the block runs."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def timed(run, repeat: int) -> tuple[float, object]:
    """The fastest of `repeat` runs, in seconds, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--shops", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--before-rules",
        type=Path,
        default=None,
        help="rules file of the comparison row (an older rules.toml; default: the packaged one)",
    )
    args = parser.parse_args()
    folder = args.data or dataset(args.messages, args.shops)
    policy = load_policy()
    start = time.perf_counter()
    data = pipeline.load(folder, policy)
    loaded = time.perf_counter() - start
    print(f"loaded {len(data.messages):,} messages from {folder} in {loaded:.1f} s")
    week = pipeline.messages_in_window(data, FIRST, LAST, columns=SCAN_COLUMNS)
    total = len(week)

    seconds, findings = timed(lambda: weekly.week_findings(data, FIRST, LAST, None), args.repeat)
    rows = [("weekly scan (week_findings, as the weekly job runs it)", seconds, len(findings))]

    # As the weekly scan ran before the buyer's earlier requests were looked at: only seller
    # and auto-reply messages picked, no [[asked_first]].
    def scan_before() -> object:
        # week_findings loads its rules too
        before = dataclasses.replace(load_rules(args.before_rules), asked_first=())
        sellers = pipeline.messages_in_window(
            data, FIRST, LAST, columns=SCAN_COLUMNS, roles=["seller", "auto_reply"]
        )
        return scan_messages(sellers, before)

    seconds, findings = timed(scan_before, args.repeat)
    name = f"sellers only, no [[asked_first]], rules {args.before_rules or 'packaged'}"
    rows.append((name, seconds, len(findings)))

    # The generated week repeats a few dozen texts; a real export repeats fewer (auto-replies
    # and canned answers). Each message's text worked on alone is the case of no repeat at all.
    def alone(content):
        return np.arange(len(content), dtype=np.int64), scanner._content_array(content)

    with patched(scanner, "_distinct", alone):
        seconds, findings = timed(
            lambda: weekly.week_findings(data, FIRST, LAST, None), args.repeat
        )
    rows.append(
        ("weekly scan, every text worked on alone (no repeated text)", seconds, len(findings))
    )
    sellers = int(week["sender_role"].isin(["seller", "auto_reply"]).sum())

    print(f"{total:,} messages in the week {FIRST}..{LAST}, {sellers:,} of sellers/bots")
    print("| what | seconds | messages/s | findings |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds, found in rows:
        print(f"| {name} | {seconds:.1f} | {total / seconds:,.0f} | {found:,} |")


if __name__ == "__main__":
    main()
