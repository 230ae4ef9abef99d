"""Peak memory against file size for CSV and JSON Lines exports (the streamed readers).

    python benchmarks/memory.py [--sizes 1000000 2000000 4000000] [--formats csv jsonl]
                                [--engines pandas disk] [--no-validate]

Takes the first N rows (all eight columns, content included) of the seeded 10M-message Parquet
set of benchmarks/run.py, writes them once as messages.csv / messages.jsonl under
benchmarks/data/, and measures in fresh processes `cs-metrics validate` (default engine: `auto`,
the disk engine from 256 MB) and `cs-metrics compute --engine E` for each engine asked for. Both
read only the columns their checks and metrics need. Prints a Markdown table: wall time and peak
RSS of each run.

    python benchmarks/memory.py --shapes [--garbage-gb 2] [--repeated-rows 40000000]
                                [--wide-columns 1000000] [--limit-gb 16]

Builds inputs whose size says little about the memory they need, and runs `cs-metrics validate`
and `cs-metrics weekly --no-report` on each in a fresh process (both with their default engine):
a CSV of bad rows only (every sent_at unreadable, GARBAGE_GB of it), a Parquet file of one
message repeated REPEATED_ROWS times (a few MB), and a CSV with WIDE_COLUMNS columns. A run is
stopped when its memory passes LIMIT_GB (shown as `> LIMIT`). Prints a Markdown table of exit
status, wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


SHOPS = 50
"""Shops of the generated bad rows: a bounded set, as in a real export with broken times."""


def garbage_csv(gigabytes: float) -> Path:
    """A folder whose messages.csv is `gigabytes` of rows that all have an unreadable sent_at."""
    import numpy as np
    import pandas as pd

    size = int(gigabytes * 2**30)
    folder = DATA / f"garbage_csv_{gigabytes:g}gb"
    target = folder / "messages.csv"
    if target.exists():
        return folder
    rows = 100_000
    rng = np.random.default_rng(15)
    number = np.arange(rows)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz ,\"'"))
    words = ["".join(w) for w in rng.choice(letters, size=(rows, 60))]
    block = pd.DataFrame(
        {
            "shop_id": [f"SG-{s:03d}" for s in number % SHOPS],
            "conversation_id": number.astype(str),
            "message_id": (number + 10**9).astype(str),
            "sender_role": np.where(number % 2 == 0, "buyer", "seller"),
            "sent_at": [f"not a time {n}" for n in number],
            "sender_id": [f"user_{n:x}" for n in number],
            "message_type": "text",
            "content": words,
        }
    )
    header, body = block.to_csv(index=False, lineterminator="\n").split("\n", 1)
    data = body.encode("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with partial.open("wb") as out:
        out.write((header + "\n").encode("utf-8"))
        for _ in range(-(-size // len(data))):
            out.write(data)
    partial.rename(target)
    return folder


def repeated_parquet(rows: int) -> Path:
    """A folder whose messages.parquet holds one good message `rows` times (a few MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA / f"repeated_parquet_{rows}"
    target = folder / "messages.parquet"
    if target.exists():
        return folder
    group = 1_000_000
    zeros = pa.array([0] * group, pa.int32())

    def constant(value: str) -> pa.Array:
        return pa.DictionaryArray.from_arrays(zeros, pa.array([value])).cast(pa.string())

    table = pa.table(
        {
            "shop_id": constant("SG-001"),
            "conversation_id": constant("c1"),
            "message_id": constant("m1"),
            "sender_role": constant("buyer"),
            "sent_at": constant("2026-11-18T09:00:00Z"),
            "sender_id": constant("buyer_1"),
            "message_type": constant("text"),
            "content": constant("Is the charger included in the box?"),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with pq.ParquetWriter(partial, table.schema, compression="zstd") as writer:
        for start in range(0, rows, group):
            writer.write_table(table.slice(0, min(group, rows - start)))
    partial.rename(target)
    return folder


def wide_csv(columns: int) -> Path:
    """A folder whose messages.csv has the eight message columns and `columns` more, two rows."""
    folder = DATA / f"wide_csv_{columns}"
    target = folder / "messages.csv"
    if target.exists():
        return folder
    head = "shop_id,conversation_id,message_id,sender_role,sent_at,sender_id,message_type,content"
    row = "SG-001,c1,m{n},buyer,2026-11-18T09:00:00Z,buyer_1,text,hello"
    extra = ",".join(f"x{c}" for c in range(columns))
    blanks = "," * columns
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with partial.open("w", encoding="utf-8") as out:
        out.write(f"{head},{extra}\n")
        for n in (1, 2):
            out.write(row.format(n=n) + blanks + "\n")
    partial.rename(target)
    return folder


def capped(argv: list[str], limit_bytes: int, timeout: float = 3600) -> tuple[int, float, float]:
    """Exit status, wall seconds and peak RSS (MB) of a command in a fresh process, stopped
    (status -9) once its resident memory passes `limit_bytes` or after `timeout` seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = Path(f"/proc/{process.pid}/status")
    while True:
        pid, code, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            # VmHWM: the process's peak resident memory so far, kept by the kernel.
            hwm = [line for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
            over = bool(hwm) and int(hwm[0].split()[1]) * 1024 > limit_bytes
        except OSError:
            over = False  # the process ended between the two looks
        if over or time.perf_counter() - start > timeout:
            process.kill()
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(code)
    return process.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024


def shapes(args: argparse.Namespace) -> int:
    """The `--shapes` mode: odd-shaped inputs, `validate` and `weekly --no-report` on each."""
    limit = int(args.limit_gb * 2**30)
    cases = [
        (f"bad rows CSV ({args.garbage_gb:g} GB)", garbage_csv(args.garbage_gb)),
        (f"{args.repeated_rows:,} repeated rows, Parquet", repeated_parquet(args.repeated_rows)),
        (f"{args.wide_columns:,}-column CSV", wide_csv(args.wide_columns)),
    ]
    print(f"cs-metrics memory on odd-shaped inputs, {machine()}\n")
    print("| input | file MB | command | exit | wall | peak MB |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for label, folder in cases:
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        out = Path(tempfile.mkdtemp(prefix="cs-bench-shapes-"))
        commands = {
            "validate": [str(BIN / "cs-metrics"), "validate", "--data", str(folder)],
            "weekly --no-report": [
                str(BIN / "cs-metrics"),
                "weekly",
                "--data",
                str(folder),
                "--out",
                str(out),
                "--as-of",
                "2026-11-23",
                "--no-report",
                "--quiet",
            ],
        }
        try:
            for name, argv in commands.items():
                code, seconds, peak = capped(argv, limit)
                shown = f"> {limit / 2**20:,.0f}" if code == -9 else f"{peak:,.0f}"
                print(
                    f"| {label} | {size:,.1f} | {name} | {code} | {seconds:.1f} s | {shown} |",
                    flush=True,
                )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl"])
    parser.add_argument("--engines", nargs="+", default=["pandas", "disk"])
    parser.add_argument("--no-validate", action="store_true", help="Skip `cs-metrics validate`.")
    parser.add_argument("--shapes", action="store_true", help="Odd-shaped inputs instead.")
    parser.add_argument("--garbage-gb", type=float, default=2.0)
    parser.add_argument("--repeated-rows", type=int, default=40_000_000)
    parser.add_argument("--wide-columns", type=int, default=1_000_000)
    parser.add_argument("--limit-gb", type=float, default=16.0)
    args = parser.parse_args()
    if args.shapes:
        return shapes(args)
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
