"""Benchmark cs-metrics on generated weeks of 1M and 10M messages (2,000 shops), side by side with
the time pyarrow needs merely to read the columns, and with one DuckDB SQL query computing the same
12-Hour Response Rate. Prints a Markdown table; `make bench` runs it.

    python benchmarks/run.py [--sizes 1000000 10000000] [--shops 2000] [--repeat 1]

Datasets are generated once (seeded) under benchmarks/data/ and reused. Each measurement runs in a
fresh process; its peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
BIN = Path(sys.executable).parent
START, END, AS_OF = "2026-11-16", "2026-11-22", "2026-11-23"

READ_FLOOR = """
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1] + "/messages.parquet",
                  columns=["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"])
pq.read_table(sys.argv[1] + "/shops.parquet")
pq.read_table(sys.argv[1] + "/holiday_mode.parquet")
pq.read_table(sys.argv[1] + "/ratings.parquet")
print(t.num_rows)
"""

# The 12-Hour Response Rate of SPEC 2-5 in one query: chats by lag/cumulative sum, the window in
# each shop's zone, Holiday Mode excluded and subtracted from the clock (periods do not overlap in
# the generated data), pending chats left out.
DUCKDB_QUERY = """
import sys, duckdb, json
d, START, END = sys.argv[1:4]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
cutoff = con.execute(f"SELECT max(sent_at) FROM read_parquet('{d}/messages.parquet')").fetchone()[0]
rows = con.execute(f'''
WITH shops AS (
  SELECT shop_id, coalesce(timezone, CASE upper(market) WHEN 'SG' THEN 'Asia/Singapore'
    WHEN 'MY' THEN 'Asia/Kuala_Lumpur' WHEN 'VN' THEN 'Asia/Ho_Chi_Minh' WHEN 'TH' THEN 'Asia/Bangkok'
    WHEN 'PH' THEN 'Asia/Manila' WHEN 'ID' THEN 'Asia/Jakarta' WHEN 'US' THEN 'America/Los_Angeles'
    WHEN 'GB' THEN 'Europe/London' WHEN 'JP' THEN 'Asia/Tokyo' ELSE 'UTC' END) AS tz
  FROM read_parquet('{d}/shops.parquet')),
bounds AS (
  SELECT shop_id, timezone(tz, TIMESTAMP '{START} 00:00:00') AS ws,
         timezone(tz, TIMESTAMP '{END} 00:00:00' + INTERVAL 1 DAY) AS we FROM shops),
hm AS (SELECT shop_id, "start" AS s, coalesce("end", TIMESTAMPTZ '9999-12-31 00:00:00+00') AS e
       FROM read_parquet('{d}/holiday_mode.parquet')),
m AS (
  SELECT shop_id, conversation_id, sent_at, sender_role = 'buyer' AS is_buyer
  FROM read_parquet('{d}/messages.parquet')
  WHERE sender_role IN ('buyer', 'seller', 'auto_reply') AND sent_at <= TIMESTAMPTZ '{cutoff}'),
o AS (
  SELECT *, lag(is_buyer) OVER w AS prev_buyer FROM m
  WINDOW w AS (PARTITION BY shop_id, conversation_id ORDER BY sent_at, NOT is_buyer)),
f AS (
  SELECT *, is_buyer AND coalesce(NOT prev_buyer, true) AS opens,
         NOT is_buyer AND coalesce(prev_buyer, false) AS closes FROM o),
n AS (
  SELECT *, sum(opens::INT) OVER (PARTITION BY shop_id, conversation_id
         ORDER BY sent_at, NOT is_buyer ROWS UNBOUNDED PRECEDING) AS chat_no FROM f),
c AS (
  SELECT shop_id, conversation_id, chat_no, min(sent_at) FILTER (WHERE opens) AS received,
         min(sent_at) FILTER (WHERE closes) AS responded
  FROM n WHERE chat_no > 0 GROUP BY shop_id, conversation_id, chat_no),
w AS (SELECT c.* FROM c JOIN bounds b USING (shop_id) WHERE received >= ws AND received < we),
x AS (
  SELECT w.*, bool_or(received >= s AND received < e) AS excluded,
    coalesce(sum(epoch_us(least(coalesce(responded, TIMESTAMPTZ '{cutoff}'), e))
                 - epoch_us(greatest(received, s)))
             FILTER (WHERE s < coalesce(responded, TIMESTAMPTZ '{cutoff}') AND e > received), 0) AS held
  FROM w LEFT JOIN hm USING (shop_id)
  GROUP BY ALL),
s AS (
  SELECT shop_id,
    CASE WHEN excluded THEN 'excluded'
         WHEN responded IS NOT NULL AND epoch_us(responded) - epoch_us(received) - held <= 43200000000
           THEN 'on_time'
         WHEN responded IS NOT NULL THEN 'late'
         WHEN epoch_us(TIMESTAMPTZ '{cutoff}') - epoch_us(received) - held >= 43200000000
           THEN 'unresponded'
         ELSE 'pending' END AS status
  FROM x)
SELECT shop_id, count(*) FILTER (WHERE status = 'on_time')
       / nullif(count(*) FILTER (WHERE status IN ('on_time', 'late', 'unresponded')), 0)::DOUBLE
FROM s GROUP BY shop_id ORDER BY shop_id''').fetchall()
print(json.dumps({k: v for k, v in rows}))
"""


def measure(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """Wall seconds, peak memory (MB) and stdout of one command run in a fresh process."""
    probe = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "t = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stderr.write(r.stderr[-2000:])\n"
        "print(json.dumps({'seconds': t, 'peak_mb': peak, 'code': r.returncode, 'out': r.stdout}))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True)
    result = json.loads(run.stdout)
    if result["code"] not in ok:
        raise SystemExit(f"failed: {' '.join(argv)}\n{run.stderr}")
    return result["seconds"], result["peak_mb"], result["out"]


def dataset(messages: int, shops: int) -> Path:
    """The seeded Parquet dataset of about `messages` messages (generated on first use)."""
    folder = DATA / f"m{messages}_s{shops}"
    if not (folder / "messages.parquet").exists():
        print(
            f"generating {messages:,} messages for {shops:,} shops in {folder} ...", file=sys.stderr
        )
        subprocess.run(
            [
                BIN / "cs-metrics",
                "generate",
                "--out",
                folder,
                "--shops",
                str(shops),
                "--messages",
                str(messages),
                "--format",
                "parquet",
                "--no-bad-rows",
            ],
            check=True,
        )
    return folder


def best(argv: list[str], repeat: int) -> tuple[float, float, str]:
    """The fastest of `repeat` runs (with its peak memory and output)."""
    runs = [measure(argv) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def compute_argv(folder: Path, engine: str | None = None) -> list[str]:
    """`cs-metrics compute` of the benchmark week as JSON (default engine unless one is named)."""
    argv = [str(BIN / "cs-metrics"), "compute", "--data", str(folder)]
    argv += ["--start", START, "--end", END, "--format", "json"]
    return argv + (["--engine", engine] if engine else [])


def interleaved(commands: list[list[str]], repeat: int) -> list[tuple[float, float, str]]:
    """The fastest run of each command, the commands run in turn `repeat` times."""
    runs: list[list[tuple[float, float, str]]] = [[] for _ in commands]
    for _ in range(repeat):
        for argv, done in zip(commands, runs, strict=True):
            done.append(measure(argv))
    return [min(done, key=lambda r: r[0]) for done in runs]


def bench(messages: int, shops: int, repeat: int) -> dict:
    """All measurements on one dataset."""
    folder = dataset(messages, shops)
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(folder / "messages.parquet").metadata.num_rows
    # The three compared measurements take turns, so each round meets the machine alike (the
    # kernel's page state after a large run slows the next run that takes fresh memory).
    floor, duck, compute = interleaved(
        [
            [sys.executable, "-c", READ_FLOOR, str(folder)],
            [sys.executable, "-c", DUCKDB_QUERY, str(folder), START, END],
            compute_argv(folder),
        ],
        repeat,
    )
    out = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    try:
        weekly = best(
            [
                str(BIN / "cs-metrics"),
                "weekly",
                "--data",
                str(folder),
                "--out",
                str(out),
                "--as-of",
                AS_OF,
                "--no-report",
            ],
            repeat,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    ours = {s["shop_id"]: s["response_rate_12h"] for s in json.loads(compute[2])["shops"]}
    theirs = json.loads(duck[2])
    differing = [
        k
        for k in ours
        if (ours[k] is None) != (theirs.get(k) is None)
        or (ours[k] is not None and abs(ours[k] - theirs[k]) > 1e-12)
    ]
    return {
        "messages": rows,
        "compute_s": compute[0],
        "compute_mb": compute[1],
        "weekly_s": weekly[0],
        "weekly_mb": weekly[1],
        "read_floor_s": floor[0],
        "read_floor_mb": floor[1],
        "duckdb_s": duck[0],
        "duckdb_mb": duck[1],
        "rates_equal": not differing,
        "rates_differing": differing[:5],
    }


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def table(results: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| messages | compute | peak MB | weekly (no report) | peak MB | read floor | DuckDB | "
        "compute / floor | compute / DuckDB | same 12h rates |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['messages']:,} | {r['compute_s']:.1f} s | {r['compute_mb']:,.0f} | "
            f"{r['weekly_s']:.1f} s | {r['weekly_mb']:,.0f} | {r['read_floor_s']:.2f} s | "
            f"{r['duckdb_s']:.1f} s | {r['compute_s'] / r['read_floor_s']:.1f}x | "
            f"{r['compute_s'] / r['duckdb_s']:.2f}x | {'yes' if r['rates_equal'] else 'NO'} |"
        )
    if len(results) >= 2:
        growth = results[-1]["compute_s"] / results[0]["compute_s"]
        size = results[-1]["messages"] / results[0]["messages"]
        lines.append("")
        lines.append(
            f"Time growth from the smallest to the largest set: {growth:.1f}x for {size:.1f}x the messages."
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shops", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = [bench(n, args.shops, args.repeat) for n in args.sizes]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"cs-metrics benchmark, {stamp}, {machine()}\n")
    print(table(results))
    if args.json:
        args.json.write_text(
            json.dumps({"date": stamp, "machine": machine(), "results": results}, indent=2)
        )
    return 0 if all(r["rates_equal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
