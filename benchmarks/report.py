"""The Monday report for a large portfolio: size of report.html and the shop pages, render
time, and load time in headless Chromium.

    python benchmarks/report.py [--shops 2000] [--messages 4000000] [--weeks 8] [--keep DIR]

Generates a seeded data set (`cs-metrics generate`) of `--weeks` weeks up to Sunday 22
November 2026, evaluates each of its Mondays with the installed `cs-metrics weekly` (so the
trend has all its points), re-renders the report
to time it, then opens report.html and one shop page in /usr/bin/chromium over the DevTools pipe
of tests/report/test_browser.py and reads the Navigation Timing of each (load event end, in ms,
best of three). Prints a Markdown table (docs/report.md keeps the figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "report")]

from test_browser import DevTools, chromium  # noqa: E402

from cs_metrics import week_files  # noqa: E402
from cs_metrics.report import build  # noqa: E402

BIN = Path(sys.executable).with_name("cs-metrics")
LAST_MONDAY = dt.date(2026, 11, 23)
TIMING = """(() => { const n = performance.getEntriesByType('navigation')[0];
  return {load: n.loadEventEnd, dom: n.domContentLoadedEventEnd,
          rows: document.querySelectorAll('tr[data-shop-id]').length,
          width: document.documentElement.scrollWidth}; })()"""


def mondays(weeks: int) -> list[str]:
    """The Mondays evaluated, oldest first, the last one LAST_MONDAY."""
    return [(LAST_MONDAY - dt.timedelta(weeks=k)).isoformat() for k in range(weeks - 1, -1, -1)]


def evaluated(folder: Path, shops: int, messages: int, weeks: int) -> Path:
    """OUT of a generated data set with each of its weeks evaluated."""
    data, out = folder / "data", folder / "out"
    if not (out / LAST_MONDAY.isoformat() / "report.html").exists():
        start = LAST_MONDAY - dt.timedelta(weeks=weeks)
        subprocess.run(
            [str(BIN), "generate", "--out", str(data), "--shops", str(shops),
             "--messages", str(messages), "--seed", "7", "--start", start.isoformat(),
             "--days", str(weeks * 7), "--format", "parquet"],
            check=True, capture_output=True,
        )  # fmt: skip
        for as_of in mondays(weeks):
            done = subprocess.run(
                [str(BIN), "weekly", "--data", str(data), "--out", str(out), "--as-of", as_of],
                check=False, capture_output=True, text=True,
            )  # fmt: skip
            if not (out / as_of / "report.html").exists():
                raise SystemExit(f"weekly {as_of} failed ({done.returncode}): {done.stderr}")
    return out


def tab(tools: DevTools, page: Path, width: int, mobile: bool) -> str:
    """A new tab at `width` CSS pixels with `page` loaded; its session."""
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})
    sid = session["sessionId"]
    tools.send("Page.enable", session=sid)
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile},
        session=sid,
    )
    tools.events.clear()
    tools.send("Page.navigate", {"url": page.as_uri()}, session=sid)
    tools.wait_for("Page.loadEventFired", timeout=60)
    return sid


def load_ms(tools: DevTools, page: Path, width: int, mobile: bool) -> dict[str, float]:
    """Navigation Timing of `page` at `width` px, the best of three loads."""
    best: dict[str, float] = {}
    for _ in range(3):
        session = tab(tools, page, width, mobile)
        found = tools.send(
            "Runtime.evaluate", {"expression": TIMING, "returnByValue": True}, session=session
        )["result"]["value"]
        if not best or found["load"] < best["load"]:
            best = found
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=4_000_000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="folder to keep the data and output in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    out = evaluated(folder, args.shops, args.messages, args.weeks)
    as_of = LAST_MONDAY
    store = out / "history.sqlite"
    results = week_files.load_week(out, as_of, store)
    started = time.perf_counter()
    path = build.write_report(results, folder / "render" / "report.html", store)
    render_s = time.perf_counter() - started
    pages = sorted((path.parent / "shops").glob("*.html"))
    tools = DevTools(chromium(), folder / "profile")
    try:
        desktop = load_ms(tools, path, 1400, mobile=False)
        phone = load_ms(tools, path, 390, mobile=True)
        shop = load_ms(tools, pages[0], 1400, mobile=False) if pages else None
    finally:
        tools.close()
    size = path.stat().st_size
    page_sizes = [p.stat().st_size for p in pages]
    print(f"| {args.shops:,} shops, {args.messages:,} messages, {args.weeks} weeks | figure |")
    print("| --- | --- |")
    print(f"| report.html | {size / 1e6:.2f} MB, {desktop['rows']:,} overview rows |")
    print(f"| render (build + write, all pages) | {render_s:.1f} s |")
    dom = desktop["dom"]
    print(f"| load in Chromium, 1400 px | {desktop['load']:.0f} ms (DOM ready {dom:.0f} ms) |")
    print(f"| load in Chromium, 390 px | {phone['load']:.0f} ms, page width {phone['width']} px |")
    if pages:
        print(
            f"| shops/*.html | {len(pages):,} pages, {min(page_sizes) / 1e3:.0f}-"
            f"{max(page_sizes) / 1e3:.0f} kB, {sum(page_sizes) / 1e6:.1f} MB in all |"
        )
        print(f"| one shop page, load at 1400 px | {shop['load']:.0f} ms |" if shop else "")
    print(f"\nkept in {folder}" if args.keep else "")


if __name__ == "__main__":
    main()
