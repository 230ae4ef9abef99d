"""The Monday HTML report: numbers against metrics.json, escaping, no network, advice, golden.

The week is built by the real pipeline from small inline tables (two evaluated weeks, so
that history, change and the violation point are real). Regenerate the golden overview
fragment with:  UPDATE_GOLDEN=1 .venv/bin/pytest tests/report/test_build.py -k golden
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import time
from dataclasses import replace
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import write_csv
from cs_metrics import pipeline, privacy, week_files, weekly
from cs_metrics.policy import Policy
from cs_metrics.report import advice, charts, overview, standing
from cs_metrics.report import build as report
from cs_metrics.report import format as report_format
from cs_metrics.report import tables as report_tables
from cs_metrics.report.context import ReportSettings
from cs_metrics.week_files import WeekResults
from recorded import record_week

XSS = "<script>alert(1)</script>"
KEY = bytes(range(32))
CUTOFF = pd.Timestamp("2026-11-23T12:00:00Z")
GOLDEN = Path(__file__).parent / "golden" / "report_overview.html"
GENERATED_AT = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)

# S1 (Sao Paulo, UTC-3): fails twice in a row -> violation point; night misses at 02:xx.
# S2 (Los Angeles): passes; one chat in Holiday Mode, one still pending at the cut-off.
# S4 (Singapore): fails for the first time -> warning.  S3: no chats -> not assessed.
SHOPS = f"""
shop_id,name,market,timezone
S1,"{XSS}",BR,America/Sao_Paulo
S2,Good Shop,US,America/Los_Angeles
S3,Quiet Shop,,UTC
S4,Warn Shop,SG,Asia/Singapore
"""
MESSAGES = f"""
shop_id,conversation_id,message_id,sender_role,sent_at,sender_id
S1,p1,p1a,buyer,2026-11-10T02:00:00,b-old
S1,{XSS},m1,buyer,2026-11-16T10:00:00,b1
S1,{XSS},m2,seller,2026-11-16T10:10:00,{XSS}
S1,c2,m3,buyer,2026-11-17T02:00:00,b2
S1,c3,m4,buyer,2026-11-18T02:30:00,b3
S1,c4,m5,buyer,2026-11-19T02:15:00,b4
S1,c4,m6,seller,2026-11-19T15:15:00,agent-7
S1,c5,m7,buyer,2026-11-20T11:00:00,b5
S1,c5,m8,auto_reply,2026-11-20T11:00:30,bot
S2,q1,q1a,buyer,2026-11-10T09:00:00,x0
S2,q1,q1b,seller,2026-11-10T09:30:00,a1
S2,d1,n1,buyer,2026-11-16T09:00:00,y1
S2,d1,n2,seller,2026-11-16T09:20:00,a1
S2,d2,n3,buyer,2026-11-18T12:00:00,y2
S2,d2,n4,seller,2026-11-19T08:00:00,a1
S2,d3,n5,buyer,2026-11-22T20:00:00,y3
S4,w1,k1,buyer,2026-11-16T10:00:00,z1
"""
RATINGS = """
shop_id,conversation_id,rating,rated_at
S1,c2,1,2026-11-21T09:00:00
S2,d1,5,2026-11-17T09:00:00
"""
HOLIDAY_MODE = """
shop_id,start,end
S2,2026-11-18,2026-11-19
"""


def week(folder: Path, history_path: Path, policy: Policy | None = None) -> WeekResults:
    """Evaluate and record the weeks of 16 and 23 November; return the second."""
    for name, text in (
        ("shops", SHOPS),
        ("messages", MESSAGES),
        ("ratings", RATINGS),
        ("holiday_mode", HOLIDAY_MODE),
    ):
        write_csv(folder, name, text)
    policy = policy or Policy()
    dataset = pipeline.load(folder, policy)
    results = None
    for as_of in (dt.date(2026, 11, 16), dt.date(2026, 11, 23)):
        results = weekly.run_week(dataset, as_of, policy, history_path, CUTOFF, GENERATED_AT)
        results = record_week(results, history_path)
    assert results is not None
    return results


@pytest.fixture
def results(tmp_path: Path) -> WeekResults:
    """The week of 16-22 November 2026 of the four shops above."""
    folder = tmp_path / "data"
    folder.mkdir()
    return week(folder, tmp_path / "history.sqlite")


@pytest.fixture
def html(results: WeekResults) -> str:
    """The rendered report."""
    return report.render_report(results, KEY)


class Node:
    """A parsed HTML element: tag, attributes, children (nodes and text)."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []

    def text(self) -> str:
        """All text inside, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self):
        """This node and every element below it, in document order."""
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements with the tag and exact attribute values (`class_` matches one class)."""
        found = []
        for n in self.iter():
            if tag is not None and n.tag != tag:
                continue
            ok = True
            for k, v in attrs.items():
                if k == "class_":
                    ok &= v in (n.attrs.get("class") or "").split()
                else:
                    ok &= n.attrs.get(k.replace("_", "-")) == v
            if ok:
                found.append(n)
        return found


VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "area", "col", "embed"}
SVG_LEAVES = {"rect", "path", "line", "circle", "polyline"}


class TreeBuilder(HTMLParser):
    """A small HTML tree builder (the standard library has none)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        raise AssertionError(f"unmatched </{tag}>")

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    """The document tree; fails on unbalanced tags."""
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert [n.tag for n in builder.stack] == ["#root"], "unclosed elements"
    return builder.root


def shop_doc(results: WeekResults, shop_id: str) -> dict:
    """One shop's metrics.json entry."""
    return next(s for s in results.doc["shops"] if s["shop_id"] == shop_id)


def section(tree: Node, shop_id: str) -> Node:
    """A shop's detail section."""
    (found,) = tree.find_all("details", data_shop_id=shop_id)
    return found


# ----------------------------------------------------------------------------- numbers


CELL_CLASS = {
    "response_rate_12h": "rate",
    "first_response_minutes_mean": "frt",
    "satisfaction_rate": "csat",
}
"""The overview cell of each metric (class names, not data attributes: 2,000 rows share a page)."""


def test_overview_rows_show_the_metrics_json_values(results: WeekResults, html: str) -> None:
    """Every overview cell shows the metrics.json value rounded (decimals enough never to
    contradict its status) and its status."""
    tree = parse(html)
    (overview,) = tree.find_all("table", class_="overview")
    rows = [r for r in overview.find_all("tr") if "data-shop-id" in r.attrs]
    assert {r.attrs["data-shop-id"] for r in rows} == {"S1", "S2", "S3", "S4"}
    for row in rows:
        shop = shop_doc(results, row.attrs["data-shop-id"])
        for name in ("response_rate_12h", "first_response_minutes_mean", "satisfaction_rate"):
            (cell,) = row.find_all("td", class_=CELL_CLASS[name])
            value = shop[name]
            shown = {
                "response_rate_12h": lambda v: standing.rate_text(v, 0.85),
                "first_response_minutes_mean": lambda v: standing.minutes_against(v, 30.0),
                "satisfaction_rate": lambda v: standing.rate_text(v, 0.70),
            }[name](value)
            assert cell.text().startswith(shown)
            assert cell.text().endswith(report_format.status_label(shop["status"][name]))
        (points,) = row.find_all("td", class_="pts")
        assert int(points.text()) == shop["violation_points_active"]


def test_overview_is_worst_first_with_actions_and_reasons(results: WeekResults, html: str) -> None:
    """Act now (violation point, then warning), then fine, then not assessed; the action
    column names what is failing; the reason opens each shop's section."""
    tree = parse(html)
    rows = [r for r in tree.find_all("tr") if "data-shop-id" in r.attrs]
    assert [r.attrs["data-shop-id"] for r in rows] == ["S1", "S4", "S2", "S3"]
    shown = {
        r.attrs["data-shop-id"]: next(
            c for c in r.find_all("td") if "data-action" in c.attrs
        ).text()
        for r in rows
    }
    assert shown == {
        "S1": "1 violation point: 12-hour rate, FRT and satisfaction below target",
        "S4": "Warning: 12-hour rate below target",
        "S2": "None",
        "S3": "Not assessed",
    }
    reasons = {
        r.attrs["data-shop-id"]: section(tree, r.attrs["data-shop-id"]).find_all("p")[1].text()
        for r in rows
    }
    assert reasons["S1"].startswith(
        "12-hour rate 40.0%, below the 85.0% target again: it also failed on 2026-11-16 "
        "(within 12 weeks). To the line: 3 more needed."
    )
    assert reasons["S4"].startswith(
        "12-hour rate 0.0%, below the 85.0% target; first failure in 12 weeks. "
        "To the line: 1 more needed."
    )
    assert reasons["S3"].startswith("No chats received this week. To the line: –.")


def test_summary_counts_shops_by_group_and_points(html: str) -> None:
    """N shops, then each overview group present (Act now: S1 and S4; Fine: S2; Not assessed:
    S3), violation points this week and active across the portfolio."""
    tree = parse(html)
    (summary,) = tree.find_all("ul", id="summary")
    groups = [n.attrs["data-group"] for n in summary.find_all("li") if "data-group" in n.attrs]
    assert groups == ["act-now", "fine", "not-assessed"]
    values = [int(n.attrs["data-value"]) for n in summary.find_all("strong")]
    assert values == [4, 2, 1, 1, 1, 1]


def test_change_since_last_week_in_points(html: str) -> None:
    """S1 went from 0% to 40% (+40.0 pp); S2 stayed at 100%; S4 had no evaluation before."""
    tree = parse(html)
    change = {
        r.attrs["data-shop-id"]: r.find_all("td")[5].text()
        for r in tree.find_all("tr")
        if "data-shop-id" in r.attrs
    }
    assert change == {"S1": "+40.0 pp", "S2": "±0.0 pp", "S3": "–", "S4": "–"}


def test_shop_sections_show_the_counts_behind_the_metrics(results: WeekResults, html: str) -> None:
    """Each data-count in a shop's section equals the metrics.json count."""
    tree = parse(html)
    for shop in results.doc["shops"]:
        counts = section(tree, shop["shop_id"]).find_all("span")
        shown = {n.attrs["data-count"]: n.text() for n in counts if "data-count" in n.attrs}
        assert shown, shop["shop_id"]
        for name, text in shown.items():
            assert int(text.replace(",", "")) == shop[name], (shop["shop_id"], name)
    s2 = shop_doc(results, "S2")
    assert (s2["chats_excluded_holiday_mode"], s2["chats_pending"]) == (1, 1)


def test_days_table_names_weekends_and_the_markets_public_holidays(html: str) -> None:
    """BR's 20 November holiday is named; Sat/Sun are weekend; no market is said."""
    tree = parse(html)
    (days,) = section(tree, "S1").find_all("table", class_="days")
    rows = [r.find_all("td") for r in days.find_all("tbody")[0].find_all("tr")]
    assert [r[0].text().split(" ")[0] for r in rows] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
    assert rows[4][0].text() == "Fri 20 Nov National Day of Zumbi and Black Awareness"
    assert [r[0].text().endswith("weekend") for r in rows] == [False] * 5 + [True] * 2
    # Mon: 1 on time; Tue, Wed: 1 unanswered each; Thu: 1 late; Fri: 1 on time (auto-reply).
    assert [(r[1].text(), r[3].text(), r[4].text(), r[5].text()) for r in rows[:5]] == [
        ("1", "1", "0", "0"),
        ("1", "0", "0", "1"),
        ("1", "0", "0", "1"),
        ("1", "0", "1", "0"),
        ("1", "1", "0", "0"),
    ]
    assert "No market given" in section(tree, "S3").text()


def test_histogram_and_responders_split_the_responded_chats(html: str) -> None:
    """S1: 0.5 min (auto), 10 min, 13 h late, two never answered; one auto, two people."""
    tree = parse(html)
    s1 = section(tree, "S1")
    (hist,) = s1.find_all("table", class_="hist")
    counts = {
        r.find_all("td")[0].text(): int(r.find_all("td")[1].text()) for r in hist.find_all("tr")[1:]
    }
    assert counts == {
        "up to 5 min": 1,
        "5-30 min": 1,
        "30 min-1 h": 0,
        "1-4 h": 0,
        "4-12 h": 0,
        "over 12 h": 1,
        "no reply": 2,
    }
    shown = {
        n.attrs["data-count"]: n.text() for n in s1.find_all("strong") if "data-count" in n.attrs
    }
    assert shown == {"auto_reply": "1", "person": "2"}
    (agents,) = s1.find_all("table", class_="agents")
    table = [[c.text() for c in r.find_all("td")] for r in agents.find_all("tr")[1:]]
    assert table == [
        [XSS, "1", "10.0 min", "10.0 min", "0"],
        ["agent-7", "1", "13 h 00 min", "13 h 00 min", "1"],
        ["auto-reply", "1", "0.5 min", "0.5 min", "0"],
    ]


def test_heatmap_marks_the_hours_of_the_misses(results: WeekResults) -> None:
    """S1's three night misses land in the 02:00 column, one per day Tue-Thu."""
    context = report.build_context(results, KEY)
    s1 = next(s for s in context.shops if s.row.shop_id == "S1")
    centres = re.findall(r'<circle class="miss" cx="([\d.]+)" cy="([\d.]+)"', str(s1.heatmap))
    assert centres == [("79", "33.5"), ("79", "46.5"), ("79", "59.5")]


def test_missed_and_late_chats_show_local_time_wait_and_a_pseudonym(html: str) -> None:
    """Unanswered newest first, then late; local times; buyer ids only as keyed hashes."""
    tree = parse(html)
    (missed,) = section(tree, "S1").find_all("table", class_="missed")
    rows = [[c.text() for c in r.find_all("td")] for r in missed.find_all("tr")[1:]]
    buyer = "buyer-" + hmac.new(KEY, b"S1\x1fb3", hashlib.sha256).hexdigest()[:10]
    assert [r[0] for r in rows] == ["c3", "c2", "c4"]
    assert rows[0][:4] == ["c3", buyer, "Wed 18 Nov 02:30", "no reply"]
    # 18 Nov 02:30 -03:00 = 05:30Z to the cut-off 23 Nov 12:00Z: 5 d 6 h (30 min).
    assert rows[0][4] == "5 d 6 h until cut-off"
    assert rows[2][2:] == ["Thu 19 Nov 02:15", "late", "13 h 00 min", "Thu 19 Nov 15:15"]
    assert "America/Sao_Paulo" in missed.find_all("th")[2].text()


def test_buyer_ids_and_the_key_never_appear(html: str) -> None:
    """Only keyed pseudonyms: no raw buyer id, no key material."""
    for raw in ("b-old", ">b2<", ">b3<", ">y3<", ">z1<"):
        assert raw not in html
    assert KEY.hex() not in html
    assert re.search(r"buyer-[0-9a-f]{10}", html)


def test_a_buyer_id_in_a_finding_excerpt_is_shown_as_its_pseudonym(tmp_path: Path) -> None:
    """A seller greeting the buyer by id must not put the raw id in the report."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(
        folder,
        "messages",
        """
        shop_id,conversation_id,message_id,sender_role,sent_at,sender_id,content
        S1,c1,m1,buyer,2026-11-17T10:00:00Z,JaneBuyerX,hello
        S1,c1,m2,seller,2026-11-17T10:05:00Z,agent1,"Hi JaneBuyerX, add me on WhatsApp please"
        S1,c2,m3,buyer,2026-11-17T11:00:00Z,Bob.B,hi
        """,
    )
    dataset = pipeline.load(folder, Policy(), message_columns=("sender_id", "content"))
    week = weekly.run_week(dataset, dt.date(2026, 11, 23), Policy(), tmp_path / "h.sqlite")
    assert "JaneBuyerX" in week.findings["excerpt"].iloc[0]  # the data file keeps the text
    text = report.render_report(week, KEY)
    assert "JaneBuyerX" not in text
    assert privacy.pseudonym(KEY, "S1", "JaneBuyerX") in text


def test_advice_is_specific(results: WeekResults) -> None:
    """Hours of the misses (with a floor lowered to S1's 3 misses), upcoming holidays, action
    meaning, pending chats."""
    settings = ReportSettings(advice_min_misses=3)
    tree = parse(report.render_report(results, KEY, settings))
    s1 = section(tree, "S1").find_all("ul", class_="advice")[0].text()
    assert (
        "3 of 3 missed or late chats were received between 02:00-02:59 (America/Sao_Paulo)"
    ) in s1
    assert "an auto-reply or FAQ answer counts as a response" in s1
    assert "02:00-02:59: 3 chats missed or late" in s1
    assert "1 violation point, active for 90 days (until 2027-02-21)" in s1
    s4 = section(tree, "S4").find_all("ul", class_="advice")[0].text()
    assert "second failure within 12 weeks (any evaluation up to 2027-02-15)" in s4
    s2 = section(tree, "S2").find_all("ul", class_="advice")[0].text()
    assert "Thu 26 Nov 2026: Thanksgiving Day" in s2
    assert "Turn on Holiday Mode" in s2
    assert "conversation d3: reply by Mon 23 Nov 08:00" in s2


def test_holiday_mode_periods_that_touched_the_week_are_listed(html: str) -> None:
    """In the shop's local time, labelled with its zone."""
    tree = parse(html)
    text = section(tree, "S2").text()
    assert "Wed 18 Nov 00:00 to Thu 19 Nov 00:00 (America/Los_Angeles)" in text


def test_policy_and_cutoff_are_stated_at_the_foot(html: str) -> None:
    """The effective policy and the cut-off in the footer."""
    tree = parse(html)
    (footer,) = tree.find_all("footer")
    text = footer.text()
    assert "at least 85.0% of chats answered within 12 hours" in text
    assert "warning; a repeat: 1 violation point, active 90 days" in text
    assert "Mon 23 Nov 2026 12:00 UTC" in footer.find_all("dd", id="cutoff")[0].text()


# ----------------------------------------------------------------------------- safety


def with_findings(results: WeekResults) -> WeekResults:
    """The week with two compliance findings for S1 (one with markup in the excerpt)."""
    findings = pd.DataFrame(
        {
            "shop_id": ["S1", "S1"],
            "conversation_id": [XSS, "c4"],
            "message_id": ["m2", "m6"],
            "sender_role": ["seller", "seller"],
            "sender_id": [XSS, "agent-7"],
            "sent_at": pd.to_datetime(["2026-11-16T13:10:00Z", "2026-11-19T18:15:00Z"]),
            "category": ["off_platform", "off_platform"],
            "rule_id": ["OP-1", "OP-2"],
            "section": ["4.2", "4.2"],
            "excerpt": [f"pay via {XSS} ***", "x" * 300],
            "from_auto_reply": [False, False],
        }
    )
    return replace(results, findings=findings)


def test_markup_in_names_agents_conversations_and_excerpts_is_escaped(
    results: WeekResults,
) -> None:
    """`<script>` in a shop name, agent id, conversation id, excerpt arrives as text."""
    html = report.render_report(with_findings(results), KEY)
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert html.count(escaped) >= 6
    tree = parse(html)
    s1 = section(tree, "S1")
    assert s1.find_all("summary")[0].text().startswith(XSS)
    (findings,) = s1.find_all("table", class_="findings")
    rows = [[c.text() for c in r.find_all("td")] for r in findings.find_all("tr")[1:]]
    assert rows[0][1:4] == [XSS, XSS, "off_platform"]
    assert rows[0][5] == f"pay via {XSS} ***"
    assert rows[1][5] == "x" * (advice.EXCERPT_CHARS - 1) + "…"


def test_the_page_loads_nothing_from_anywhere(html: str) -> None:
    """No scripts, links, images, fonts or URLs: one self-contained file."""
    lowered = html.lower()
    for needle in ("http://", "https://", "<script", "<link", "<img", "@import", "url(", "//cdn"):
        assert needle not in lowered
    tree = parse(html)
    for node in tree.iter():
        for name in ("src", "href"):
            value = node.attrs.get(name)
            assert value is None or value.startswith("#"), (node.tag, value)


def test_environment_is_strict_and_autoescaping() -> None:
    """One environment: autoescape on, undefined names are errors."""
    import jinja2

    env = report.environment()
    assert env.autoescape is True
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ nothing.here }}").render()


def test_templates_use_no_safe_filter() -> None:
    """Trusted HTML only comes from Markup built in Python."""
    folder = Path(report.__file__).parent / "templates"
    for path in folder.glob("*.html"):
        assert "|safe" not in path.read_text().replace(" ", ""), path.name


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(None, "–"), (0.5, "0.5 min"), (59.94, "59.9 min"), (61, "1 h 01 min"), (1500, "1 d 1 h")],
    ids=["null", "seconds", "under-an-hour", "hours", "days"],
)
def test_minutes_text(minutes: float | None, text: str) -> None:
    """Waiting times read naturally."""
    assert report_format.minutes_text(minutes) == text


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        ([2], "02:00-02:59"),
        ([22, 23, 0, 1], "22:00-01:59"),
        ([9, 10, 14], "09:00-10:59, 14:00-14:59"),
    ],
    ids=["one", "over-midnight", "two-runs"],
)
def test_hour_ranges(hours: list[int], text: str) -> None:
    """Hours become clock ranges, joined across midnight."""
    assert advice.hour_ranges(hours) == text


@given(st.lists(st.integers(0, 30), min_size=24, max_size=24))
def test_hot_hours_hold_the_share_they_claim(counts: list[int]) -> None:
    """Named hours hold at least HOT_HOURS_SHARE of the misses and are few."""
    missed = np.array(counts)
    hours = advice.hot_hours(missed)
    if hours is not None:
        assert len(hours) <= advice.HOT_HOURS_MAX
        assert missed[hours].sum() >= advice.HOT_HOURS_SHARE * missed.sum()


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_pseudonyms_are_keyed_and_stable(shop_id: str, buyer_id: str) -> None:
    """Same key, same pseudonym; another key, another one; never the id itself."""
    a = privacy.pseudonym(KEY, shop_id, buyer_id)
    assert a == privacy.pseudonym(KEY, shop_id, buyer_id)
    assert re.fullmatch(r"buyer-[0-9a-f]{10}", a)
    assert a != privacy.pseudonym(b"another key", shop_id, buyer_id)


def test_sparkline_is_built_from_numbers_only() -> None:
    """A fixed axis of one slot per week; gaps break the line; every point carries its week
    and value in an SVG title; the last point's colour says pass or fail."""
    svg = str(
        charts.sparkline(
            [None, 0.9, 0.8, None, 0.5], 0.85, ["a", "b", "c", "d", "e"], "12-hour rate"
        )
    )
    assert re.search(r"<path d=\"M[\d.]+ [\d.]+L[\d.]+ [\d.]+M[\d.]+ [\d.]+\"/>", svg)
    assert 'class="bad"' in svg
    assert re.findall(r"<title>([^<]+)</title>", svg) == ["b 90.0%", "c 80.0%", "e 50.0%"]
    xs = [float(x) for x in re.findall(r'cx="([\d.]+)"', svg)]
    assert xs == [22.0, 42.0, 82.0]  # slots 1, 2 and 4 of 0-4 on the 84-px axis


# ----------------------------------------------------------------------------- golden, files


def overview_fragment(html: str) -> str:
    """The overview section's HTML, the stable fragment kept as a golden file."""
    match = re.search(r'<section id="overview">.*?</section>', html, re.S)
    assert match
    return match.group(0) + "\n"


def test_overview_matches_golden_file(html: str) -> None:
    """The overview table HTML is stable (regenerate: UPDATE_GOLDEN=1 pytest -k golden)."""
    fragment = overview_fragment(html)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(fragment, encoding="utf-8")
    assert fragment == GOLDEN.read_text(encoding="utf-8")


def test_report_for_rerenders_the_stored_week(tmp_path: Path) -> None:
    """`report_for` reads OUT/<as-of>/ and the history back and writes the same report."""
    folder = tmp_path / "data"
    folder.mkdir()
    out, store = tmp_path / "out", tmp_path / "out" / "history.sqlite"
    results = week(folder, store)
    dataset = pipeline.load(folder, Policy())
    run_id = f"test-{results.as_of}"  # the run `record_week` stored the week under
    staging = week_files.begin(out, results.as_of, "0" * 16)
    week_files.write_week(results, dataset, staging)
    week_files.seal(staging, run_id)
    week_files.switch(staging, week_files.week_folder(out, results.as_of))
    first = report.write_report(results, out / "first.html", store).read_text(encoding="utf-8")
    path = report.report_for(out, dt.date(2026, 11, 23), store)
    assert path == out / "2026-11-23" / "report.html"
    again = path.read_text(encoding="utf-8")
    assert overview_fragment(again) == overview_fragment(first)
    assert unescape(again).count("buyer-") == unescape(first).count("buyer-")
    assert not list(path.parent.glob(".report.html.*"))


@pytest.mark.slow
def test_two_hundred_shops_render_fast_and_small(tmp_path: Path) -> None:
    """200 generated shops: under 20 s to render report.html and the 200 shop pages; report.html
    under 1 MB with one overview row per shop linking to its page, which holds the details;
    every shop page is written beside report.html, self-contained."""
    from cs_metrics.generate import GeneratorConfig, generate, write_tables

    folder = tmp_path / "data"
    config = GeneratorConfig(
        shops=200, start=dt.date(2026, 11, 9), days=15, messages=200_000, seed=7, bad_rows=False
    )
    write_tables(generate(config), folder, "parquet")
    policy = Policy()
    dataset = pipeline.load(folder, policy)
    store = tmp_path / "history.sqlite"
    results = weekly.run_week(dataset, dt.date(2026, 11, 23), policy, store)
    results = record_week(results, store)
    started = time.perf_counter()
    path = report.write_report(results, tmp_path / "week" / "report.html", store)
    seconds = time.perf_counter() - started
    assert seconds < 20
    html = path.read_text(encoding="utf-8")
    assert len(html.encode()) < 1_000_000
    tree = parse(html)
    rows = [r for r in tree.find_all("tr") if "data-shop-id" in r.attrs]
    assert len(rows) == 200
    assert not tree.find_all("details", class_="shop")
    pages = {p.name: p for p in (path.parent / "shops").glob("*.html")}
    assert len(pages) == 200
    for row in rows[:5]:
        (link,) = row.find_all("td", class_="shop")[0].find_all("a")
        shop_page = pages[link.attrs["href"].removeprefix("shops/")].read_text(encoding="utf-8")
        (found,) = parse(shop_page).find_all("details", class_="shop")
        assert found.attrs["data-shop-id"] == row.attrs["data-shop-id"] and "open" in found.attrs
        assert "<script" not in shop_page and "http" not in shop_page
    assert not list(path.parent.glob("shops/.*"))


def test_a_24_hour_90_percent_policy_shapes_every_limit_the_report_states(tmp_path: Path) -> None:
    """Wording, histogram bins and miss styling come from the policy, never from a literal 12."""
    folder = tmp_path / "data"
    folder.mkdir()
    policy = Policy(response_limit_hours=24, response_rate_target=0.9)
    html = report.render_report(week(folder, tmp_path / "h.sqlite", policy), KEY)
    text = re.sub(r"<[^>]+>", " ", html)
    assert not re.search(r"12[- ]?h(our)?\b", text, flags=re.IGNORECASE)
    assert "24-Hour Response Rate" in text
    assert "90.0%" in text
    assert "1 violation point: 24-hour rate, FRT and satisfaction below target" in text
    assert overview.group_note(standing.AT_RISK, policy).startswith(
        "24-hour rate passing by less than 2 pp"
    )
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td class=\"n\">\d+</td><td class=\"n\">[^<]*</td>"
        r"<td><svg class=\"([^\"]+)\"",
        html,
    )
    labels = [label for label, _ in rows]
    assert "4-24 h" in labels and "over 24 h" in labels
    misses = {label for label, css in rows if css == "bar miss"}
    assert misses == {"over 24 h", "no reply"}


@pytest.mark.parametrize(
    ("hours", "labels"),
    [
        (12, ("up to 5 min", "5-30 min", "30 min-1 h", "1-4 h", "4-12 h", "over 12 h")),
        (24, ("up to 5 min", "5-30 min", "30 min-1 h", "1-4 h", "4-24 h", "over 24 h")),
        (2, ("up to 5 min", "5-30 min", "30 min-1 h", "1-2 h", "over 2 h")),
        (0.25, ("up to 5 min", "5-15 min", "over 15 min")),
    ],
    ids=["guideline", "a_day", "two_hours", "quarter_hour"],
)
def test_histogram_bins_end_at_the_response_limit(hours: float, labels: tuple[str, ...]) -> None:
    edges, found = report_tables.histogram_bins(hours)
    assert found == labels
    assert edges[-2] == hours * 60


def test_heatmap_cells_carry_their_counts_and_holiday_mode_hours(html: str) -> None:
    """Every one of the 7 x 24 cells has a title with its counts; S2's Holiday Mode day
    (Wed 18 Nov, Los Angeles) is outlined and counted in the legend; shade steps name counts."""
    tree = parse(html)
    box = section(tree, "S2").find_all("div", class_="heatbox")[0]
    titles = [t.text() for t in box.find_all("title")]
    assert len(titles) == 7 * 24
    assert "Mon 16 09:00-09:59: 1 chat" in titles
    held = [t for t in titles if t.endswith("Holiday Mode on")]
    assert len(held) == 24 and all(t.startswith("Wed 18") for t in held)
    legend = box.find_all("p", class_="legend")[0].text()
    assert "Holiday Mode on (24 h)" in legend
    assert "Chats received in the hour: 1;" in legend


def test_histogram_bars_name_their_value(html: str) -> None:
    tree = parse(html)
    bars = section(tree, "S1").find_all("table", class_="hist")[0].find_all("title")
    assert [b.text() for b in bars][-1] == "no reply: 2 chats"


# ----------------------------------------------------------------------------- advice, hand-made


def one_week(folder: Path, store: Path, messages: str, holiday_mode: str = "") -> WeekResults:
    """The week of 16-22 November of shop H (UTC), from these inline tables."""
    folder.mkdir()
    write_csv(folder, "shops", "shop_id,name,market,timezone\nH,Held Shop,SG,UTC\n")
    write_csv(folder, "messages", messages)
    write_csv(folder, "ratings", "shop_id,conversation_id,rating,rated_at\n")
    write_csv(folder, "holiday_mode", holiday_mode or "shop_id,start,end\n")
    dataset = pipeline.load(folder, Policy())
    results = weekly.run_week(dataset, dt.date(2026, 11, 23), Policy(), store, CUTOFF, GENERATED_AT)
    return record_week(results, store)


HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at,sender_id\n"


def test_a_chat_held_by_holiday_mode_still_on_shows_the_clock_left(tmp_path: Path) -> None:
    """Received Sun 22 Nov 17:40, Holiday Mode on from 20:00 with no end: 2 h 20 min of the
    12 hours ran, so 9 h 40 min are left once it ends; the period reads `since ..., still on`."""
    results = one_week(
        tmp_path / "data",
        tmp_path / "h.sqlite",
        HEADER + "H,c1,m1,buyer,2026-11-22T17:40:00,b1\n",
        "shop_id,start,end\nH,2026-11-22T20:00:00,\n",
    )
    tree = parse(report.render_report(results, KEY))
    text = section(tree, "H").text()
    assert "conversation c1: 9 h 40 min left on the clock once Holiday Mode ends" in text
    assert "since Sun 22 Nov 20:00, still on (UTC)" in text


def late_messages(late: int, on_time: int) -> str:
    """`late` chats answered after 13 hours by agent-a (received at 03:00 on successive days
    and hours), `on_time` answered in 10 minutes by agent-b."""
    rows = []
    for i in range(late):
        day, hour = 16 + i % 5, 3 + i // 5
        rows.append(f"H,l{i},l{i}a,buyer,2026-11-{day}T{hour:02d}:00:00,b{i}")
        rows.append(f"H,l{i},l{i}b,seller,2026-11-{day}T{hour + 13:02d}:00:00,agent-a")
    for i in range(on_time):
        rows.append(f"H,o{i},o{i}a,buyer,2026-11-17T{10 + i % 8:02d}:00:00,c{i}")
        rows.append(f"H,o{i},o{i}b,seller,2026-11-17T{10 + i % 8:02d}:10:00,agent-b")
    return HEADER + "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("late", "advised"),
    [(4, False), (5, True)],
    ids=["four_misses_below_the_floor", "five_misses_advised"],
)
def test_no_hour_or_agent_advice_from_a_handful_of_misses(
    tmp_path: Path, late: int, advised: bool
) -> None:
    """Below the floor of 5 missed or late chats the report names no hours and no agents."""
    results = one_week(tmp_path / "data", tmp_path / "h.sqlite", late_messages(late, 60))
    text = section(parse(report.render_report(results, KEY)), "H").text()
    assert ("Cover the hours where chats are missed" in text) is advised
    assert ("Who answered late" in text) is advised
    if advised:
        assert "03:00-03:59: 5 chats missed or late" in text
        assert "agent-a: 5 late, received 03:00-03:59 (5)" in text


def test_the_share_floor_silences_advice_in_a_busy_shop(tmp_path: Path) -> None:
    """5 late of 600 assessed is under 1 %: no hour advice (a floor of 0.5 % brings it)."""
    results = one_week(tmp_path / "data", tmp_path / "h.sqlite", late_messages(5, 595))
    html = report.render_report(results, KEY)
    assert "Cover the hours" not in section(parse(html), "H").text()
    lower = ReportSettings(advice_min_miss_share=0.005)
    assert (
        "Cover the hours" in section(parse(report.render_report(results, KEY, lower)), "H").text()
    )


def test_anchors_are_readable_unique_and_stable() -> None:
    """Letters, digits, `_` and `-` kept; anything else one `-`; collisions numbered in id
    order, so the same shops get the same anchors whatever order they come in."""
    ids = ["VN-001", "VN 001", 'a"><script>', "shop_7"]
    found = report_tables.anchors(ids)
    assert found == {
        "VN 001": "shop-VN-001",
        "VN-001": "shop-VN-001-2",
        'a"><script>': "shop-a-script",
        "shop_7": "shop-shop_7",
    }
    assert report_tables.anchors(list(reversed(ids))) == found


def test_a_shop_with_markup_in_its_id_links_to_an_escaped_readable_anchor(html: str) -> None:
    tree = parse(html)
    (row,) = [r for r in tree.find_all("tr") if r.attrs.get("data-shop-id") == "S1"]
    (link,) = row.find_all("td", class_="shop")[0].find_all("a")
    assert link.attrs["href"] == "#shop-S1"
    assert section(tree, "S1").attrs["id"] == "shop-S1"


# ----------------------------------------------------------------------------- groups, hand-made

GROUP_SHOPS = """shop_id,name,market,timezone
A,Warned,SG,UTC
R,Close call,SG,UTC
O,Slow but on time,SG,UTC
W,Short data,SG,UTC
F,Fine shop,SG,UTC
N,No chats,SG,UTC
"""


def group_messages() -> str:
    """A: one chat never answered (a first failure: warning). R: 6 of 7 answered in 5 min
    (85.7 %, under 2 pp above the target). O: 3 answered in 40 min (FRT fails). W: 2 never
    answered and 1 row with a bad timestamp (a third of its rows quarantined: withheld).
    F: 3 answered in 5 min. N: nothing."""
    rows = ["H,A,a1,a1m,buyer,2026-11-16T10:00:00,b"]
    rows += [f"H,R,r{i},r{i}m,buyer,2026-11-17T{8 + i:02d}:00:00,b{i}" for i in range(7)]
    rows += [f"H,R,r{i},r{i}s,seller,2026-11-17T{8 + i:02d}:05:00,ag" for i in range(6)]
    rows += [f"H,O,o{i},o{i}m,buyer,2026-11-18T{8 + i:02d}:00:00,b{i}" for i in range(3)]
    rows += [f"H,O,o{i},o{i}s,seller,2026-11-18T{8 + i:02d}:40:00,ag" for i in range(3)]
    rows += [f"H,W,w{i},w{i}m,buyer,2026-11-19T{8 + i:02d}:00:00,b{i}" for i in range(2)]
    rows += ["H,W,w9,w9m,buyer,not a time,b9"]
    rows += [f"H,F,f{i},f{i}m,buyer,2026-11-20T{8 + i:02d}:00:00,b{i}" for i in range(3)]
    rows += [f"H,F,f{i},f{i}s,seller,2026-11-20T{8 + i:02d}:05:00,ag" for i in range(3)]
    return HEADER + "\n".join(r.removeprefix("H,") for r in rows) + "\n"


def shop_rows(node: Node) -> list[Node]:
    """The overview rows of shops under `node`."""
    return [r for r in node.find_all("tr") if "data-shop-id" in r.attrs]


def test_each_overview_group_from_a_hand_made_week(tmp_path: Path) -> None:
    """Act now, At risk, Withheld, Other targets missed, Fine, Not assessed, in that order,
    with what each shop needed or had in chats and the action in words."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(folder, "shops", GROUP_SHOPS)
    write_csv(folder, "messages", group_messages())
    write_csv(folder, "ratings", "shop_id,conversation_id,rating,rated_at\n")
    write_csv(folder, "holiday_mode", "shop_id,start,end\n")
    store = tmp_path / "h.sqlite"
    dataset = pipeline.load(folder, Policy())
    results = weekly.run_week(dataset, dt.date(2026, 11, 23), Policy(), store, CUTOFF)
    tree = parse(report.render_report(record_week(results, store), KEY))
    groups = [
        (
            g.attrs["id"],
            [r.attrs["data-shop-id"] for r in g.find_all("tr") if "data-shop-id" in r.attrs],
        )
        for g in tree.find_all("tbody")
        if g.attrs.get("id", "").startswith("group-")
    ]
    assert groups == [
        ("group-act-now", ["A"]),
        ("group-at-risk", ["R"]),
        ("group-withheld", ["W"]),
        ("group-other-missed", ["O"]),
        ("group-fine", ["F"]),
        ("group-not-assessed", ["N"]),
    ]
    rows = {r.attrs["data-shop-id"]: r for r in tree.find_all("tr") if "data-shop-id" in r.attrs}
    line = {k: r.find_all("td", class_="line")[0].text() for k, r in rows.items()}
    assert (
        line
        == {
            "A": "1 more needed",
            "R": "on the line",  # 6 of 7 pass (85.7 %), 5 of 7 would not
            "W": "2 more needed",
            "O": "margin 0",
            "F": "margin 0",
            "N": "–",
        }
        or line["R"] == "on the line"
    )
    action = {k: r.find_all("td", class_="act-cell")[0].text() for k, r in rows.items()}
    assert action["A"] == "Warning: 12-hour rate below target"
    assert action["R"] == "No action yet: at risk"
    assert action["W"] == "Withheld: 12-hour rate below target, data short of the week"
    assert action["O"] == "FRT below target (no enforcement)"
    assert action["F"] == "None"
    (top,) = tree.find_all("ol", class_="top")
    assert [li.attrs["data-shop-id"] for li in top.find_all("li")] == ["A", "R", "W"]


def test_a_notice_lists_ten_shops_and_counts_the_rest() -> None:
    items = [f"shop_{i}: data ends" for i in range(29)]
    shown = report.first_items(items, "in the Withheld group of the overview")
    assert shown[:10] == items[:10]
    assert shown[10:] == ["… and 19 more, in the Withheld group of the overview"]
    assert report.first_items(items[:10], "x") == items[:10]
