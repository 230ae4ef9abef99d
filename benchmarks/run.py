"""Benchmark cs-metrics on generated weeks of 1M and 10M messages (2,000 shops), side by side with
the time pyarrow needs merely to read the columns, and with one DuckDB SQL query computing the same
12-Hour Response Rate. Prints Markdown tables; `make bench` runs it.

    python benchmarks/run.py [--sizes 1000000 10000000] [--shops 2000] [--repeat 1]
                             [--variants numeric text csv] [--big 50000000] [--big-days 75]

Variants of the largest size: `numeric` (the generator's marketplace-style ids), `text` (the same
week with text ids such as `S0001`, `C2213`, `M398`, as other tools export them) and `csv` (the
same week generated as CSV; DuckDB reads the same CSV; `compute` runs on its default engine, the
disk engine for a CSV this large, and on the in-memory one). `--big N` also runs `weekly` on N
messages (5x the week at 50M) and compares its time with the 10M run: it takes long.
`--big-days 75` spreads them over five times the days instead (the same messages per week).

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
import sys, pyarrow.parquet as pq, pyarrow.csv as pc
COLUMNS = ["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"]
d = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "csv":
    quoted = pc.ParseOptions(newlines_in_values=True)  # messages may hold line breaks
    t = pc.read_csv(d + "/messages.csv", parse_options=quoted,
                    convert_options=pc.ConvertOptions(include_columns=COLUMNS))
    for name in ("shops", "holiday_mode", "ratings"):
        pc.read_csv(f"{d}/{name}.csv", parse_options=quoted)
else:
    t = pq.read_table(d + "/messages.parquet", columns=COLUMNS)
    for name in ("shops", "holiday_mode", "ratings"):
        pq.read_table(f"{d}/{name}.parquet")
print(t.num_rows)
"""

# The 12-Hour Response Rate of SPEC 2-5 in one query: chats by lag/cumulative sum, the window in
# each shop's zone, Holiday Mode excluded and subtracted from the clock (periods do not overlap in
# the generated data), pending chats left out.
DUCKDB_QUERY = """
import sys, duckdb, json
d, START, END = sys.argv[1:4]
FORMAT = sys.argv[4] if len(sys.argv) > 4 else "parquet"
V, T = "VARCHAR", "TIMESTAMPTZ"
TYPES = {
    "messages": {"shop_id": V, "conversation_id": V, "message_id": V, "sender_role": V,
                 "sent_at": T, "sender_id": V},
    "shops": {"shop_id": V, "name": V, "market": V, "timezone": V},
    "holiday_mode": {"shop_id": V, "start": T, "end": T},
}
def table(name):
    if FORMAT == "parquet":
        return f"read_parquet('{d}/{name}.parquet')"
    return f"read_csv('{d}/{name}.csv', header=true, types={TYPES[name]!r})"
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
cutoff = con.execute(f"SELECT max(sent_at) FROM {table('messages')}").fetchone()[0]
rows = con.execute(f'''
WITH shops AS (
  SELECT shop_id, coalesce(timezone, CASE upper(market) WHEN 'SG' THEN 'Asia/Singapore'
    WHEN 'MY' THEN 'Asia/Kuala_Lumpur' WHEN 'VN' THEN 'Asia/Ho_Chi_Minh' WHEN 'TH' THEN 'Asia/Bangkok'
    WHEN 'PH' THEN 'Asia/Manila' WHEN 'ID' THEN 'Asia/Jakarta' WHEN 'US' THEN 'America/Los_Angeles'
    WHEN 'GB' THEN 'Europe/London' WHEN 'JP' THEN 'Asia/Tokyo' ELSE 'UTC' END) AS tz
  FROM {table("shops")}),
bounds AS (
  SELECT shop_id, timezone(tz, TIMESTAMP '{START} 00:00:00') AS ws,
         timezone(tz, TIMESTAMP '{END} 00:00:00' + INTERVAL 1 DAY) AS we FROM shops),
hm AS (SELECT shop_id, "start" AS s, coalesce("end", TIMESTAMPTZ '9999-12-31 00:00:00+00') AS e
       FROM {table("holiday_mode")}),
m AS (
  SELECT shop_id, conversation_id, sent_at, sender_role = 'buyer' AS is_buyer
  FROM {table("messages")}
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


DAYS = 15
"""Days of the generated data (its default): the benchmark week and the week before it."""


def dataset(messages: int, shops: int, fmt: str = "parquet", days: int = DAYS) -> Path:
    """The seeded dataset of about `messages` messages over `days` days up to the benchmark
    week's end (generated on first use); the CSV one holds the same rows as the Parquet one
    (same seed)."""
    name = f"m{messages}_s{shops}" + ("" if days == DAYS else f"_d{days}")
    folder = DATA / (name + ("_csv" if fmt == "csv" else ""))
    first = dt.date.fromisoformat(AS_OF) - dt.timedelta(days=days - 1)
    if not (folder / f"messages.{fmt}").exists():
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
                fmt,
                "--start",
                first.isoformat(),
                "--days",
                str(days),
                "--no-bad-rows",
                "--quiet",
            ],
            check=True,
        )
    return folder


TEXT_PREFIXES = {"shop_id": "S", "conversation_id": "C", "message_id": "M"}
"""The text-id variant: marketplace numbers become short text ids, as other tools export them."""


def text_ids(folder: Path) -> Path:
    """The same week with text ids (`shop_0001` -> `S0001`, `7437000000000002213` -> `C2213`,
    `7438000000000000398` -> `M398`), derived once from the Parquet dataset."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    target = folder.with_name(folder.name + "_text")
    if (target / "messages.parquet").exists():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("messages", "shops", "holiday_mode", "ratings"):
        table = pq.read_table(folder / f"{name}.parquet")
        for column, prefix in TEXT_PREFIXES.items():
            if column not in table.column_names:
                continue
            ids = table[column]
            if column == "shop_id":
                text = pc.replace_substring(ids, "shop_", prefix)
            else:
                # The generator's ids share their leading digits: what follows them is unique.
                numbers = pc.cast(ids, pa.int64())
                base = pc.min(numbers).as_py() // 10**15 * 10**15
                digits = pc.cast(pc.subtract(numbers, base), pa.large_string())
                text = pc.binary_join_element_wise(
                    pa.scalar(prefix, pa.large_string()), digits, pa.scalar("", pa.large_string())
                )
            table = table.set_column(table.column_names.index(column), column, text)
        pq.write_table(table, tmp / f"{name}.parquet")
    tmp.rename(target)
    return target


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


def weekly_run(folder: Path, repeat: int) -> tuple[float, float, str]:
    """The fastest `weekly --no-report` of the benchmark week (a fresh OUT each run)."""
    out = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    try:
        argv = [str(BIN / "cs-metrics"), "weekly", "--data", str(folder), "--out", str(out)]
        return best([*argv, "--as-of", AS_OF, "--no-report", "--quiet"], repeat)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bench(
    folder: Path,
    label: str,
    repeat: int,
    fmt: str = "parquet",
    weekly: bool = True,
    engine: str | None = None,
) -> dict:
    """All measurements on one dataset (`compute` on its default engine, or `engine`)."""
    # The three compared measurements take turns, so each round meets the machine alike (the
    # kernel's page state after a large run slows the next run that takes fresh memory).
    floor, duck, compute = interleaved(
        [
            [sys.executable, "-c", READ_FLOOR, str(folder), fmt],
            [sys.executable, "-c", DUCKDB_QUERY, str(folder), START, END, fmt],
            compute_argv(folder, engine),
        ],
        repeat,
    )
    week = weekly_run(folder, repeat) if weekly else None
    ours = {s["shop_id"]: s["response_rate_12h"] for s in json.loads(compute[2])["shops"]}
    theirs = json.loads(duck[2])
    differing = [
        k
        for k in ours
        if (ours[k] is None) != (theirs.get(k) is None)
        or (ours[k] is not None and abs(ours[k] - theirs[k]) > 1e-12)
    ]
    return {
        "label": label,
        "messages": int(floor[2].strip()),
        "compute_s": compute[0],
        "compute_mb": compute[1],
        "weekly_s": week[0] if week else None,
        "weekly_mb": week[1] if week else None,
        "read_floor_s": floor[0],
        "read_floor_mb": floor[1],
        "duckdb_s": duck[0],
        "duckdb_mb": duck[1],
        "rates_equal": not differing,
        "rates_differing": differing[:5],
    }


def big_run(messages: int, shops: int, days: int = DAYS) -> dict:
    """`weekly --no-report` on `messages` over `days` days (the out-of-core path), time and
    peak."""
    folder = dataset(messages, shops, days=days)
    seconds, peak, _ = weekly_run(folder, 1)
    return {"messages": messages, "days": days, "weekly_s": seconds, "weekly_mb": peak}


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


def seconds(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} s"


def megabytes(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def table(results: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| data | messages | compute | peak MB | weekly (no report) | peak MB | read floor | DuckDB | "
        "compute / floor | compute / DuckDB | same 12h rates |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['messages']:,} | {seconds(r['compute_s'])} | "
            f"{megabytes(r['compute_mb'])} | {seconds(r['weekly_s'])} | "
            f"{megabytes(r['weekly_mb'])} | {seconds(r['read_floor_s'], 2)} | "
            f"{seconds(r['duckdb_s'])} | {r['compute_s'] / r['read_floor_s']:.1f}x | "
            f"{r['compute_s'] / r['duckdb_s']:.2f}x | {'yes' if r['rates_equal'] else 'NO'} |"
        )
    sized = [r for r in results if r["label"] == "numeric ids"]
    if len(sized) >= 2:
        growth = sized[-1]["compute_s"] / sized[0]["compute_s"]
        size = sized[-1]["messages"] / sized[0]["messages"]
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
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["numeric", "text", "csv"],
        choices=["numeric", "text", "csv"],
    )
    parser.add_argument("--big", type=int, metavar="N", help="also run weekly on N messages")
    parser.add_argument(
        "--big-days",
        type=int,
        default=DAYS,
        metavar="D",
        help=f"the --big messages over D days (default {DAYS}, as the other sizes; 75 for five "
        "times the range at the same messages per day)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = [bench(dataset(n, args.shops), "numeric ids", args.repeat) for n in args.sizes]
    largest = max(args.sizes)
    if "text" in args.variants:
        results.append(bench(text_ids(dataset(largest, args.shops)), "text ids", args.repeat))
    if "csv" in args.variants:
        folder = dataset(largest, args.shops, "csv")
        results.append(bench(folder, "CSV", args.repeat, fmt="csv", weekly=False))
        # `auto` reads a CSV this large on the disk engine (flat memory, for small machines);
        # with the memory for it, the in-memory engine is the faster choice.
        results.append(
            bench(folder, "CSV, --engine pandas", args.repeat, "csv", False, engine="pandas")
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"cs-metrics benchmark, {stamp}, {machine()}\n")
    print(table(results))
    big = None
    if args.big:
        big = big_run(args.big, args.shops, args.big_days)
        base = next(
            r for r in results if r["label"] == "numeric ids" and r["messages"] >= largest * 0.9
        )
        print(
            f"\nweekly on {big['messages']:,} messages over {big['days']} days: "
            f"{big['weekly_s']:.1f} s, peak "
            f"{big['weekly_mb']:,.0f} MB; {big['weekly_s'] / base['weekly_s']:.1f}x the time of "
            f"{base['messages']:,} messages for {big['messages'] / base['messages']:.1f}x the messages."
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"date": stamp, "machine": machine(), "results": results, "big": big}, indent=2
            )
        )
    return 0 if all(r["rates_equal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
