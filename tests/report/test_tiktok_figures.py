"""TikTok's own figures beside ours in the Monday report, from a fetched store's
tiktok_performance.csv, stored with the week and shown again by `report`.

Hand-checkable week of 16-22 November 2026 (every shop in UTC, cut-off Mon 23 Nov 12:00):
- H: four chats, three answered after 10, 20 and 30 min, one never: 75.0%, mean 20.0 min;
  ratings 5 and 2: 50.0% satisfied. TikTok: 90% (the mean of 0.8, 1.0 and five days of 0.9),
  22 min, 50%: the rate is 15.0 pp below TikTok's (marked), 2.0 min and 0.0 pp are within.
- A: two chats answered after 10 min: 100.0%, 10.0 min, no ratings. TikTok gave figures for
  5 days: 98% (2.0 pp, exactly the tolerance: not marked), 10.5 min, no satisfaction.
- N: one chat answered; no TikTok figures at all.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from test_build import CUTOFF, GENERATED_AT, KEY, Node, parse, section
from typer.testing import CliRunner

from conftest import write_csv
from cs_metrics import pipeline, week_files, weekly
from cs_metrics.cli.app import app
from cs_metrics.policy import Policy
from cs_metrics.report import build as report
from cs_metrics.report.context import ReportSettings
from cs_metrics.week_files import WeekResults
from paths import ROOT
from recorded import record_week

AS_OF = dt.date(2026, 11, 23)
GOLDEN = Path(__file__).parent / "golden" / "report_tiktok.html"
SCREENSHOTS = ROOT / "out" / "screenshots"
runner = CliRunner()

SHOPS = """
shop_id,name,market,timezone
H,Hand Shop,SG,UTC
A,Agreeing Shop,SG,UTC
N,No Figures Shop,SG,UTC
"""
MESSAGES = """
shop_id,conversation_id,message_id,sender_role,sent_at,sender_id
H,h1,h1a,buyer,2026-11-16T09:00:00Z,b1
H,h1,h1b,seller,2026-11-16T09:10:00Z,agent-1
H,h2,h2a,buyer,2026-11-17T09:00:00Z,b2
H,h2,h2b,seller,2026-11-17T09:20:00Z,agent-1
H,h3,h3a,buyer,2026-11-18T09:00:00Z,b3
H,h3,h3b,seller,2026-11-18T09:30:00Z,agent-1
H,h4,h4a,buyer,2026-11-19T09:00:00Z,b4
A,a1,a1a,buyer,2026-11-16T09:00:00Z,c1
A,a1,a1b,seller,2026-11-16T09:10:00Z,agent-2
A,a2,a2a,buyer,2026-11-20T09:00:00Z,c2
A,a2,a2b,seller,2026-11-20T09:10:00Z,agent-2
N,n1,n1a,buyer,2026-11-16T09:00:00Z,d1
N,n1,n1b,seller,2026-11-16T09:05:00Z,agent-3
"""
RATINGS = """
shop_id,conversation_id,rating,rated_at
H,h1,5,2026-11-16T10:00:00Z
H,h2,2,2026-11-17T10:00:00Z
"""
# As `fetch tiktok` stores them. The day before the week and a day without any figure are
# not counted.
PERFORMANCE = """
shop_id,day,response_rate,response_time_minutes,satisfaction_rate
A,2026-11-16,0.98,10.5,
A,2026-11-17,0.98,10.5,
A,2026-11-18,0.98,10.5,
A,2026-11-19,0.98,10.5,
A,2026-11-20,0.98,10.5,
A,2026-11-21,,,
H,2026-11-15,0.1,500,0.1
H,2026-11-16,0.8,22,0.5
H,2026-11-17,1.0,22,0.5
H,2026-11-18,0.9,22,0.5
H,2026-11-19,0.9,22,0.5
H,2026-11-20,0.9,22,0.5
H,2026-11-21,0.9,22,0.5
H,2026-11-22,0.9,22,0.5
"""


def data_folder(folder: Path, performance: str | None = PERFORMANCE, shops: str = SHOPS) -> Path:
    folder.mkdir()
    write_csv(folder, "shops", shops)
    write_csv(folder, "messages", MESSAGES)
    write_csv(folder, "ratings", RATINGS)
    write_csv(folder, "holiday_mode", "shop_id,start,end\n")
    if performance is not None:
        write_csv(folder, "tiktok_performance", performance)
    return folder


def evaluated(folder: Path, store: Path) -> WeekResults:
    dataset = pipeline.load(folder, Policy())
    results = weekly.run_week(
        dataset, AS_OF, Policy(), store, CUTOFF, GENERATED_AT, data_dir=folder
    )
    return record_week(results, store)


@pytest.fixture
def results(tmp_path: Path) -> WeekResults:
    return evaluated(data_folder(tmp_path / "data"), tmp_path / "history.sqlite")


@pytest.fixture
def tree(results: WeekResults) -> Node:
    return parse(report.render_report(results, KEY))


def comparison(tree: Node, shop_id: str) -> list[list[str]]:
    """The shop's comparison table as text cells, header first."""
    (box,) = section(tree, shop_id).find_all("div", class_="tiktok")
    (table,) = box.find_all("table")
    return [[cell.text() for cell in row.find_all() if cell.tag in ("th", "td")]
            for row in table.find_all("tr")]  # fmt: skip


def test_a_shop_that_differs_shows_both_figures_the_difference_and_a_mark(tree: Node) -> None:
    assert comparison(tree, "H") == [
        ["Metric", "cs-metrics", "TikTok", "Difference", ""],
        ["Response rate", "75.0%", "90.0%", "−15.0 pp", "differs"],
        ["Response time (mean)", "20.0 min", "22.0 min", "−2.0 min", ""],
        ["Satisfaction", "50.0%", "50.0%", "±0.0 pp", ""],
    ]
    shop = section(tree, "H")
    (marked,) = shop.find_all("tr", class_="differs")
    assert marked.attrs["data-metric"] == "response_rate_12h"
    (box,) = shop.find_all("div", class_="tiktok")
    assert box.attrs["data-tiktok-days"] == "7"
    assert box.find_all("h3")[0].text() == "Beside TikTok's own figures they differ"
    note = box.find_all("p")[0].text()
    assert note.startswith("TikTok gave figures for 7 of the 7 days; its figure is the mean")
    assert note.endswith(
        "Marked: a rate over 2 percentage points, or a response time over 10% (and 5 min), "
        "from TikTok's."
    )


def test_a_shop_that_agrees_is_not_marked_and_says_how_many_days(tree: Node) -> None:
    """2.0 pp is the tolerance itself (0.98 and 1.0 are 2.0000000000000018 pp apart in
    floating point): not marked; TikTok gave no satisfaction: no difference."""
    assert comparison(tree, "A")[1:] == [
        ["Response rate", "100.0%", "98.0%", "+2.0 pp", ""],
        ["Response time (mean)", "10.0 min", "10.5 min", "−0.5 min", ""],
        ["Satisfaction", "–", "–", "–", ""],
    ]
    shop = section(tree, "A")
    assert not shop.find_all("tr", class_="differs")
    (box,) = shop.find_all("div", class_="tiktok")
    assert "differ" not in box.find_all("h3")[0].text()
    assert "TikTok gave figures for 5 of the 7 days;" in box.text()


def test_a_shop_without_tiktok_figures_shows_no_comparison(tree: Node) -> None:
    assert not section(tree, "N").find_all("div", class_="tiktok")


def test_the_overview_marks_the_shops_that_differ_and_the_summary_counts_them(
    tree: Node,
) -> None:
    (overview,) = tree.find_all("section", id="overview")
    marks = {
        row.attrs["data-shop-id"]: bool(row.find_all("small", class_="tiktok-differs"))
        for row in overview.find_all("tr")
        if "data-shop-id" in row.attrs
    }
    assert marks == {"H": True, "A": False, "N": False}
    (item,) = [li for li in tree.find_all("li") if "data-tiktok" in li.attrs]
    assert item.text() == "1 of 2 shop(s) with TikTok's own figures differ from ours"
    assert item.attrs["class"] == "warn"


def test_a_data_folder_without_tiktok_figures_is_quiet(tmp_path: Path) -> None:
    """An ordinary data folder (no tiktok_performance.csv): no comparison, no summary item,
    no file in the week, and nothing said about it."""
    data = data_folder(tmp_path / "data", performance=None)
    results = evaluated(data, tmp_path / "history.sqlite")
    assert results.tiktok_figures.empty
    html = report.render_report(results, KEY)
    assert 'class="tiktok' not in html and "data-tiktok" not in html
    out = tmp_path / "out"
    args = ["weekly", "--data", data, "--out", out, "--as-of", AS_OF, "--cutoff", CUTOFF]
    run = runner.invoke(app, [str(a) for a in args])
    assert run.exit_code == 0, run.output
    assert "tiktok" not in run.output.lower()
    assert not (out / AS_OF.isoformat() / week_files.TIKTOK_FIGURES_FILE).exists()


def test_figures_only_outside_the_week_are_quiet_too(tmp_path: Path) -> None:
    header = PERFORMANCE.strip().splitlines()[0]
    data = data_folder(tmp_path / "data", f"{header}\nH,2026-11-23,0.5,1,0.5\n")
    results = evaluated(data, tmp_path / "history.sqlite")
    assert results.tiktok_figures.empty
    assert 'class="tiktok' not in report.render_report(results, KEY)


def tiktok_fragment(html: str, shop_id: str) -> str:
    """The comparison block of a shop's section."""
    start = html.index(f'data-shop-id="{shop_id}" open>')
    match = re.compile(r'<div class="tiktok.*?</p>\n</div>\n', re.S).search(html, start)
    assert match
    return match.group(0)


def test_weekly_stores_the_figures_and_report_shows_them_again_without_the_data(
    tmp_path: Path,
) -> None:
    """`weekly` writes tiktok_figures.csv in the week's folder (one unit with the week);
    `report` re-renders the same comparison with the data folder gone."""
    data = data_folder(tmp_path / "data")
    out = tmp_path / "out"
    args = ["weekly", "--data", data, "--out", out, "--as-of", AS_OF, "--cutoff", CUTOFF]
    run = runner.invoke(app, [str(a) for a in args])
    assert run.exit_code == 0, run.output
    folder = out / AS_OF.isoformat()
    stored = pd.read_csv(folder / week_files.TIKTOK_FIGURES_FILE, dtype={"shop_id": str})
    assert stored["shop_id"].tolist() == ["A", "H"]
    assert stored["days"].tolist() == [5, 7]
    assert stored["response_rate"].tolist() == pytest.approx([0.98, 0.9])
    metrics = (folder / "metrics.json").read_text()
    assert "tiktok" not in metrics  # SPEC 7's document is unchanged
    first = (folder / "report.html").read_text(encoding="utf-8")
    shutil.rmtree(data)
    (folder / "report.html").unlink()
    again = runner.invoke(app, ["report", "--out", str(out), "--as-of", AS_OF.isoformat()])
    assert again.exit_code == 0, again.output
    html = (folder / "report.html").read_text(encoding="utf-8")
    for shop_id in ("H", "A"):
        assert tiktok_fragment(html, shop_id) == tiktok_fragment(first, shop_id)
    assert "1 of 2 shop(s) with TikTok" in re.sub("<[^>]+>", "", html)


def test_markup_and_formula_like_shop_ids_are_escaped_and_round_trip(tmp_path: Path) -> None:
    """A shop id with markup is escaped wherever the comparison names it; a formula-like one
    is stored spreadsheet-safe in tiktok_figures.csv and read back as it was."""
    odd = {"H": "<b>H</b>", "A": "=A1+1"}
    shops, messages, ratings, performance = SHOPS, MESSAGES, RATINGS, PERFORMANCE
    for old, new in odd.items():
        shops = shops.replace(f"\n{old},", f'\n"{new}",')
        performance = performance.replace(f"\n{old},", f'\n"{new}",')
    data = tmp_path / "data"
    data.mkdir()
    for name, text in (("shops", shops), ("tiktok_performance", performance)):
        write_csv(data, name, text)
    for name, text in (("messages", messages), ("ratings", ratings)):
        for old, new in odd.items():
            text = text.replace(f"\n{old},", f'\n"{new}",')
        write_csv(data, name, text)
    write_csv(data, "holiday_mode", "shop_id,start,end\n")
    out = tmp_path / "out"
    args = ["weekly", "--data", data, "--out", out, "--as-of", AS_OF, "--cutoff", CUTOFF]
    assert runner.invoke(app, [str(a) for a in args]).exit_code == 0
    folder = out / AS_OF.isoformat()
    assert "'=A1+1" in (folder / week_files.TIKTOK_FIGURES_FILE).read_text()
    again = runner.invoke(app, ["report", "--out", str(out), "--as-of", AS_OF.isoformat()])
    assert again.exit_code == 0, again.output
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "<b>H</b>" not in html
    tree = parse(html)
    assert comparison(tree, "<b>H</b>")[1][4] == "differs"
    assert comparison(tree, "=A1+1")[1][1:4] == ["100.0%", "98.0%", "+2.0 pp"]
    (overview,) = tree.find_all("section", id="overview")
    (row,) = [r for r in overview.find_all("tr") if r.attrs.get("data-shop-id") == "<b>H</b>"]
    assert row.find_all("small", class_="tiktok-differs")


def test_the_comparison_matches_the_golden_file(results: WeekResults) -> None:
    """Shop H's comparison block is stable (regenerate: UPDATE_GOLDEN=1 pytest -k golden)."""
    import os

    fragment = tiktok_fragment(report.render_report(results, KEY), "H")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(fragment, encoding="utf-8")
    assert fragment == GOLDEN.read_text(encoding="utf-8")


@pytest.mark.slow
def test_chromium_renders_a_shop_page_with_the_comparison(
    results: WeekResults, tmp_path: Path
) -> None:
    """Shop H's own page (the split layout) in headless Chromium: a screenshot saved to
    out/screenshots/tiktok-figures.png to look at."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium here")
    path = report.write_report(
        results, tmp_path / "report.html", tmp_path / "history.sqlite", ReportSettings(0)
    )
    page = path.parent / report.SHOP_FOLDER / "H.html"
    assert "Beside TikTok" in unescape(page.read_text(encoding="utf-8"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "tiktok-figures.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,600", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000


def test_a_hand_edited_figures_file_counts_only_its_numbers(tmp_path: Path) -> None:
    """Text in a figure, a missing column, a row without a day: no figure there, no failed
    week. H keeps one day, 16 Nov's 0.5; the other columns are missing."""
    text = "shop_id,day,response_rate\nH,2026-11-16,0.5\nH,2026-11-17,n/a\nH,,0.3\n"
    results = evaluated(data_folder(tmp_path / "data", text), tmp_path / "history.sqlite")
    figures = results.tiktok_figures
    assert figures["shop_id"].tolist() == ["H"]
    assert figures["days"].tolist() == [1]
    assert figures["response_rate"].tolist() == [0.5]
    assert figures[["response_time_minutes", "satisfaction_rate"]].isna().all(axis=None)
    tree = parse(report.render_report(results, KEY))
    assert comparison(tree, "H")[1] == ["Response rate", "75.0%", "50.0%", "+25.0 pp", "differs"]
