"""The typed context the report template receives: one dataclass per section and row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from markupsafe import Markup


@dataclass(frozen=True)
class Banner:
    """A notice at the top of the report: what is wrong with this run, and what to do."""

    title: str
    text: str
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Metric:
    """One metric of one shop: its value, status and the CSS class that colours it."""

    value: float | None
    status: str
    css: str
    text: str
    """The value as shown, with enough decimals never to contradict the status."""


@dataclass(frozen=True)
class OverviewRow:
    """One shop in the overview table."""

    shop_id: str
    name: str
    market: str
    anchor: str
    rate: Metric
    frt: Metric
    csat: Metric
    action: str
    action_text: str
    action_css: str
    reason: str
    risks: list[str]
    distance: int | None
    """On-time chats above (+) or below (-) the pass line of the response rate."""
    line: str
    next_step: str
    group: int
    link: str
    """Where the shop's details are: `#shop-VN-001`, or `shops/VN-001.html` past the split."""
    change: float | None
    change_css: str
    trend: Markup
    points: int
    chats_assessed: int


@dataclass(frozen=True)
class OverviewGroup:
    """A block of overview rows with the same standing (Act now, At risk, ...)."""

    title: str
    css: str
    rows: list[OverviewRow]
    slug: str = ""
    note: str = ""


@dataclass(frozen=True)
class MarketRow:
    """Shops of one market by overview group."""

    market: str
    counts: list[int]
    shops: int


@dataclass(frozen=True)
class ReportSettings:
    """How the report is laid out and when it advises (not policy: nothing here changes a
    status or an action)."""

    detail_pages_over: int = 50
    """Past this many shops, each shop's details go to shops/<id>.html beside report.html."""
    advice_min_misses: int = 5
    advice_min_miss_share: float = 0.01
    """No hour advice below this many missed or late chats, or this share of assessed chats."""
    top_shops: int = 10


@dataclass(frozen=True)
class DayRow:
    """One local day of a shop's week."""

    day: dt.date
    weekend: bool
    holiday: str
    chats: int
    assessed: int
    on_time: int
    late: int
    missed: int
    pending: int
    excluded: int
    rate: float | None
    rate_css: str
    rate_text: str = ""


@dataclass(frozen=True)
class HistBin:
    """One bar of the first-response-time histogram."""

    label: str
    count: int
    share: float
    bar: Markup


@dataclass(frozen=True)
class AgentRow:
    """Chats answered by one agent (or by auto-reply) in the week."""

    agent: str
    auto_reply: bool
    answered: int
    median: float | None
    p90: float | None
    late: int


@dataclass(frozen=True)
class ChatRow:
    """A missed or late chat, or a pending one."""

    conversation_id: str
    buyer: str
    received: str
    status: str
    waited: float | None
    responded: str
    deadline: str
    clock_left: str = ""
    """For a pending chat held by Holiday Mode still on: `X h Y min left on the clock once
    Holiday Mode ends` (it has no deadline yet)."""


@dataclass(frozen=True)
class RatingRow:
    """A low rating counted in the week."""

    conversation_id: str
    rating: int
    rated: str


@dataclass(frozen=True)
class PeriodRow:
    """A Holiday Mode period that touched the week, in local time."""

    start: str
    end: str
    text: str = ""
    """`Mon 16 Nov 09:00 to Tue 17 Nov 18:00`, or `since Sun 22 Nov 20:00, still on`."""


@dataclass(frozen=True)
class FigureRow:
    """One metric of a shop beside TikTok's own figure for it."""

    metric: str
    """The metrics.json field of ours (`response_rate_12h`, ...)."""
    label: str
    ours: float | None
    tiktok: float | None
    difference: float | None
    """Ours less TikTok's: a fraction for rates, minutes for the response time (None when
    either is missing)."""
    ours_text: str
    tiktok_text: str
    difference_text: str
    """`+3.2 pp`, `−12.5 min`, `–` when either figure is missing."""
    differs: bool
    """The difference is beyond the tolerance (build.FIGURE_TOLERANCE)."""


@dataclass(frozen=True)
class TikTokFigures:
    """A shop's week beside TikTok's own figures for the same days."""

    days: int
    """Days of the week TikTok gave figures for."""
    window_days: int
    rows: list[FigureRow]
    tolerance: str
    """What counts as a difference, in words."""

    @property
    def differs(self) -> bool:
        """Some metric differs beyond the tolerance."""
        return any(row.differs for row in self.rows)


@dataclass(frozen=True)
class Advice:
    """One recommendation: a headline, the specific text, optional detail lines."""

    title: str
    text: str
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleFindings:
    """The findings of one scan rule in one shop: who sent them, and which auto-reply."""

    rule_id: str
    category: str
    section: str
    count: int
    by_agent: list[tuple[str, int]]
    """Agents (sender ids) whose own messages broke the rule, most findings first."""
    agents_more: int
    """Findings of further agents, not listed."""
    templates: list[tuple[str, int]]
    """Auto-reply templates (one per normalised text) as a short excerpt, and their findings."""
    templates_more: int
    """Findings of further templates, not listed."""


@dataclass(frozen=True)
class Findings:
    """Compliance-scan findings of one shop: counts and the first findings."""

    total: int
    by_category: list[tuple[str, int]]
    by_agent: list[tuple[str, int]]
    rows: list[dict[str, str]]
    more: int
    by_rule: list[RuleFindings] = field(default_factory=list)
    """Per rule, most findings first."""


@dataclass(frozen=True)
class ShopSection:
    """Everything the per-shop detail section shows."""

    row: OverviewRow
    timezone: str
    tz_label: str
    counts: dict[str, int]
    frt_median: float | None
    frt_p90: float | None
    cutoff_local: str
    days: list[DayRow]
    holiday_note: str
    heatmap: Markup
    heat_legend: list[tuple[str, str]]
    """Shade class and the chats received per hour it stands for (`1-3`)."""
    holiday_hours: int
    histogram: list[HistBin]
    responded: int
    auto_replied: int
    auto_share: float | None
    person_replied: int
    responder_bar: Markup
    agents: list[AgentRow]
    missed: list[ChatRow]
    missed_more: int
    low_ratings: list[RatingRow]
    low_ratings_more: int
    periods: list[PeriodRow]
    advice: list[Advice]
    findings: Findings | None
    open: bool
    tiktok: TikTokFigures | None = None
    """TikTok's own figures beside ours (None: the week's data held none for this shop)."""


@dataclass(frozen=True)
class ReportContext:
    """The one object the templates receive."""

    title: str
    as_of: dt.date
    first_day: dt.date
    last_day: dt.date
    cutoff: str
    generated_at: str
    summary: dict[str, int]
    summary_css: dict[str, str]
    groups: list[OverviewGroup]
    markets: list[MarketRow]
    group_titles: list[str]
    top: list[OverviewRow]
    shops: list[ShopSection]
    split: bool
    """True when the shop details are separate pages (shops/<id>.html)."""
    policy: list[tuple[str, str]]
    input_line: str
    banners: list[Banner]
    limit_label: str
    """The response limit as the report names it: `12-hour` under the guidelines."""
    rate_target: float
    frt_target: float
    csat_target: float
    tiktok_differs: frozenset[str] = frozenset()
    """Shops whose figures differ from TikTok's own beyond the tolerance (marked in the
    overview and counted in the summary)."""
    tiktok_shops: int = 0
    """Shops with TikTok's own figures this week."""
