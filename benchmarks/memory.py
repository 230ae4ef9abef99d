"""Peak memory against file size for CSV and JSON Lines exports (the streamed readers).

    python benchmarks/memory.py [--sizes 1000000 2000000 4000000] [--formats csv jsonl]
                                [--engines pandas disk] [--no-validate]

Takes the first N rows (all eight columns, content included) of the seeded 10M-message Parquet
set of benchmarks/run.py, writes them once as messages.csv / messages.jsonl under
benchmarks/data/, and measures in fresh processes `cs-metrics validate` (default engine: `auto`,
the disk engine from 256 MB) and `cs-metrics compute --engine E` for each engine asked for. Both
read only the columns their checks and metrics need. Prints a Markdown table: wall time and peak
RSS of each run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BIN, DATA, compute_argv, dataset, machine, measure


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
    parser.add_argument("--engines", nargs="+", default=["pandas", "disk"])
    parser.add_argument("--no-validate", action="store_true", help="Skip `cs-metrics validate`.")
    args = parser.parse_args()
    print(f"cs-metrics memory against file size, {machine()}\n")
    heads = ([] if args.no_validate else ["validate", "peak MB"]) + [
        h for e in args.engines for h in (f"compute {e}", "peak MB")
    ]
    print("| format | rows | file MB | " + " | ".join(heads) + " |")
    print("| --- | ---: | ---: |" + " ---: |" * len(heads))
    for fmt in args.formats:
        for rows in args.sizes:
            folder = export(rows, fmt)
            size = (folder / f"messages.{fmt}").stat().st_size / 2**20
            runs = []
            if not args.no_validate:
                # validate exits 1 when it found problems (here: no shops table, no time zones).
                argv = [str(BIN / "cs-metrics"), "validate", "--data", str(folder)]
                runs.append(measure(argv, (0, 1)))
            outputs = []
            for engine in args.engines:
                runs.append(measure(compute_argv(folder, engine)))
                outputs.append(runs[-1][2])
            if len(set(outputs)) > 1:
                raise SystemExit(f"engines disagree on {folder}")
            cells = [f"{seconds:.1f} s | {peak:,.0f}" for seconds, peak, _ in runs]
            print(f"| {fmt} | {rows:,} | {size:,.0f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
