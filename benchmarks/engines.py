"""Time and peak memory of the whole process tree of `cs-metrics compute` per engine.

    python benchmarks/engines.py DATA_DIR [--engines pandas dask] [--start D --end D]

A Dask run starts worker processes: the peak resident memory of the command alone would miss
them, so the resident set sizes of the command and all its descendants are summed every
SAMPLE_SECONDS and the largest sum is reported. Prints one Markdown row per engine.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.1


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (those that vanish count 0)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def measure(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak summed RSS of the process tree (MB) and exit status of one command."""
    start = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL) as child:
        process = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            with contextlib.suppress(psutil.Error):  # the command may end while it is sampled
                peak = max(peak, tree_rss(process))
            time.sleep(SAMPLE_SECONDS)
    return time.perf_counter() - start, peak / 2**20, child.returncode


def main() -> None:
    """Measure each engine on one data folder."""
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--engines", nargs="+", default=["pandas", "dask"])
    parser.add_argument("--start", default="2026-11-16")
    parser.add_argument("--end", default="2026-11-22")
    args = parser.parse_args()
    print("| data | engine | seconds | peak MB (process tree) | exit |")
    print("| --- | --- | ---: | ---: | ---: |")
    for engine in args.engines:
        # `python -m cs_metrics`: PYTHONPATH may point at another checkout to compare versions.
        argv = [sys.executable, "-m", "cs_metrics", "compute", "--data", str(args.data)]
        argv += ["--start", args.start, "--end", args.end, "--format", "json", "--engine", engine]
        seconds, peak, code = measure(argv)
        print(f"| {args.data.name} | {engine} | {seconds:.1f} | {peak:,.0f} | {code} |", flush=True)


if __name__ == "__main__":
    main()
