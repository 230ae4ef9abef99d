"""Peak memory against file size for CSV and JSON Lines exports (the streamed readers).

    python benchmarks/memory.py [--sizes 1000000 2000000 4000000] [--formats csv jsonl]

Takes the first N rows (all eight columns, content included) of the seeded 10M-message Parquet
set of benchmarks/run.py, writes them once as messages.csv / messages.jsonl under
benchmarks/data/, and measures in fresh processes `cs-metrics validate` (every column, content
included) and `cs-metrics compute` (the columns the metrics need). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BIN, DATA, END, START, dataset, machine, measure


def export(rows: int, fmt: str) -> Path:
    """A folder holding the first `rows` messages as one CSV or JSON Lines file."""
    folder = DATA / f"stream_{fmt}_{rows}"
    target = folder / f"messages.{fmt}"
    if not target.exists():
        import pyarrow.parquet as pq

        source = dataset(10_000_000, 2000) / "messages.parquet"
        frame = pq.read_table(source).slice(0, rows).to_pandas()
        frame["sent_at"] = frame["sent_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        if fmt == "csv":
            frame.to_csv(partial, index=False)
        else:
            frame.to_json(partial, orient="records", lines=True, force_ascii=False)
        partial.rename(target)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl"])
    args = parser.parse_args()
    print(f"cs-metrics memory against file size, {machine()}\n")
    print(
        "| format | rows | file MB | validate | peak MB | compute | peak MB | "
        "compute peak MB per 1M rows |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt in args.formats:
        for rows in args.sizes:
            folder = export(rows, fmt)
            size = (folder / f"messages.{fmt}").stat().st_size / 2**20
            # validate exits 1 when it found problems (here: no shops table, so no time zones).
            check = measure([str(BIN / "cs-metrics"), "validate", "--data", str(folder)], (0, 1))
            compute = measure(
                [
                    str(BIN / "cs-metrics"),
                    "compute",
                    "--data",
                    str(folder),
                    "--start",
                    START,
                    "--end",
                    END,
                    "--format",
                    "json",
                ]
            )
            print(
                f"| {fmt} | {rows:,} | {size:,.0f} | {check[0]:.1f} s | {check[1]:,.0f} | "
                f"{compute[0]:.1f} s | {compute[1]:,.0f} | {compute[1] / rows * 1e6:,.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
