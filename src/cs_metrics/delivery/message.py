"""What a manager receives: a subject, the outcome, the action list and where the report is.

Built from the week's metrics.json document and the history store (never by reading the
report's HTML), so the e-mail, the webhook and the report say the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from cs_metrics import formats
from cs_metrics.enforcement import NO_ACTION, VIOLATION_POINT, WARNING, WITHHELD, withheld_reason
from cs_metrics.policy import Policy
from cs_metrics.report.advice import earlier_failures, reason
from cs_metrics.report.format import action_label
from cs_metrics.weekly import Outcome, outcome

ACTION_ORDER = (VIOLATION_POINT, WARNING, WITHHELD)
"""Actions listed to the manager, most severe first ("none" is not listed)."""


@dataclass(frozen=True)
class ActionRow:
    """One shop with an action: what it gets and why."""

    shop_id: str
    name: str
    action: str
    label: str
    """The action as the report shows it: `1 violation point`, `Warning`, `Withheld`."""
    rate: float | None
    reason: str

    @property
    def rate_text(self) -> str:
        """The response rate as a percentage, `-` when not assessed."""
        return formats.percent(self.rate)


@dataclass(frozen=True)
class WeekMessage:
    """The content of every channel for one evaluated week."""

    as_of: str
    first_day: str
    last_day: str
    limit_label: str
    """`12-hour`, from the policy the week was evaluated under."""
    found: Outcome
    rows: tuple[ActionRow, ...]
    report: Path
    """OUT/<as-of>/report.html (absent when the run had --no-report)."""
    report_url: str | None

    @property
    def subject(self) -> str:
        """E.g. `cs-metrics 2026-11-23: 1 violation point, 1 withheld`."""
        return f"cs-metrics {self.as_of}: {headline(self.found)}"

    @property
    def notices(self) -> list[str]:
        """What needs a look before anyone acts on the list (SPEC 6a)."""
        lines = []
        if self.found.withheld:
            shops = ", ".join(self.found.withheld)
            lines.append(
                f"No warning or violation point for {shops}: the data does not cover the week "
                "(reasons below). Get a complete export for the week and run the evaluation again."
            )
        if self.found.stale_weeks:
            lines.append(
                "This week's results changed; the stored later week(s) "
                f"{', '.join(self.found.stale_weeks)} rest on the old ones: "
                "re-evaluate them with `cs-metrics backfill`"
            )
        return lines

    @property
    def report_location(self) -> str | None:
        """The report's URL when OUT is served, else its path on the job's machine."""
        if not self.report.exists():
            return None
        return self.report_url or str(self.report)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def headline(found: Outcome) -> str:
    """The counts that matter, for a subject line: `1 violation point, 1 withheld`."""
    parts = []
    for action, word in ((VIOLATION_POINT, "violation point"), (WARNING, "warning")):
        if found.by_action.get(action):
            parts.append(_plural(len(found.by_action[action]), word))
    if found.withheld:
        parts.append(f"{len(found.withheld)} withheld")
    if found.stale_weeks:
        parts.append(_plural(len(found.stale_weeks), "stale week"))
    if not parts:
        return f"no action ({_plural(found.shops, 'shop')})"
    return ", ".join(parts)


def action_rows(doc: dict[str, Any], history: pd.DataFrame, policy: Policy) -> list[ActionRow]:
    """Shops with an action other than none, most severe first: shop, action, rate, reason."""
    as_of = dt.date.fromisoformat(doc["as_of"])
    failures = earlier_failures(history, as_of, policy.warning_lookback_weeks)
    rows = []
    for shop in doc["shops"]:
        action = shop["action"]
        if action not in ACTION_ORDER:
            continue
        rate = shop["response_rate_12h"]
        if action == WITHHELD:
            why = (
                f"{policy.limit_label} rate {formats.percent(rate)}, below the "
                f"{formats.percent(policy.response_rate_target)} target, but no warning or "
                f"violation point: {withheld_reason(shop, doc.get('cutoff'), policy)}"
            )
        else:
            why = reason(shop, policy, failures.get(shop["shop_id"]))
        rows.append(
            ActionRow(
                shop_id=shop["shop_id"],
                name=shop.get("name") or shop["shop_id"],
                action=action,
                label=action_label(action),
                rate=rate,
                reason=why,
            )
        )
    return sorted(rows, key=lambda r: (ACTION_ORDER.index(r.action), r.shop_id))


def week_policy(doc: dict[str, Any], fallback: Policy) -> Policy:
    """The policy the week was evaluated under (stored in metrics.json), else `fallback`."""
    stored = doc.get("policy")
    return Policy.from_dict(stored, "metrics.json") if stored else fallback


def week_message(
    doc: dict[str, Any],
    history: pd.DataFrame,
    policy: Policy,
    report: Path,
    report_base_url: str | None,
) -> WeekMessage:
    """The message for the week of metrics.json `doc` (its report at `report`)."""
    policy = week_policy(doc, policy)
    url = f"{report_base_url}/{doc['as_of']}/report.html" if report_base_url else None
    return WeekMessage(
        as_of=doc["as_of"],
        first_day=doc.get("window_first_day", ""),
        last_day=doc.get("window_last_day", ""),
        limit_label=policy.limit_label,
        found=outcome(doc, policy),
        rows=tuple(action_rows(doc, history, policy)),
        report=report,
        report_url=url,
    )


def size_text(size: int) -> str:
    """A file size for people: `146 KB`, `12.3 MB`."""
    if size < 1_000_000:
        return f"{max(1, round(size / 1000))} KB"
    return f"{size / 1_000_000:.1f} MB"


def text_body(message: WeekMessage, report_note: str) -> str:
    """The plain-text part: outcome, what needs a look, the action list, the report."""
    lines = [
        f"cs-metrics weekly evaluation as of Monday {message.as_of} "
        f"(days {message.first_day} to {message.last_day})",
        "",
        f"Outcome: {message.found.summary()}",
    ]
    if message.notices:
        lines += ["", "Needs a look:", *(f"- {n}" for n in message.notices)]
    lines.append("")
    if message.rows:
        lines.append(f"Shops with an action ({message.limit_label} response rate):")
        lines += [f"- {r.shop_id} ({r.name}): {r.label}; {r.reason}" for r in message.rows]
    else:
        lines.append("No shop has a warning, violation point or withheld action this week.")
    lines += ["", report_note, ""]
    return "\n".join(lines)


HTML = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
).from_string(
    """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ m.subject }}</title></head>
<body style="font-family: Arial, Helvetica, sans-serif; color: #222; max-width: 760px;">
<h2 style="margin: 0 0 4px;">cs-metrics weekly evaluation, as of Monday {{ m.as_of }}</h2>
<p style="margin: 0 0 12px; color: #555;">Days {{ m.first_day }} to {{ m.last_day }}</p>
<p><strong>Outcome:</strong> {{ m.found.summary() }}</p>
{% if m.notices %}
<div style="border: 1px solid #d39e00; background: #fff8e1; padding: 8px 12px; margin: 12px 0;">
<strong>Needs a look</strong>
<ul>
{% for notice in m.notices %}
<li>{{ notice }}</li>
{% endfor %}
</ul>
</div>
{% endif %}
{% if m.rows %}
<table style="border-collapse: collapse;" cellpadding="6">
<thead><tr style="background: #f0f0f0; text-align: left;">
<th>Shop</th><th>Action</th><th>{{ m.limit_label }} rate</th><th>Reason</th>
</tr></thead>
<tbody>
{% for r in m.rows %}
<tr style="border-top: 1px solid #ddd;">
<td><strong>{{ r.shop_id }}</strong><br>{{ r.name }}</td>
<td>{{ r.label }}</td>
<td style="text-align: right;">{{ r.rate_text }}</td>
<td>{{ r.reason }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No shop has a warning, violation point or withheld action this week.</p>
{% endif %}
<p>{% if link %}<a href="{{ link }}">Open the full report</a>. {% endif %}{{ report_note }}</p>
</body>
</html>
"""
)


def html_body(message: WeekMessage, report_note: str) -> str:
    """The HTML part: the same as the text part, the action list as a table."""
    return HTML.render(m=message, report_note=report_note, link=message.report_url)


def slack_escaped(text: str) -> str:
    """Text for Slack's `text` field: &, < and > escaped (Slack reads <...> as links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_text(message: WeekMessage) -> str:
    """The Slack-compatible `text`: subject, outcome, needs-a-look lines, actions, report."""
    lines = [message.subject, f"Outcome: {message.found.summary()}"]
    lines += [f"Needs a look: {n}" for n in message.notices]
    lines += [
        f"• {r.shop_id} ({r.name}): {r.label}, {message.limit_label} rate {r.rate_text}"
        for r in message.rows
    ]
    text = "\n".join(slack_escaped(line) for line in lines)
    if message.report_url and message.report.exists():
        text += f"\nReport: <{message.report_url}|report {message.as_of}>"
    elif message.report.exists():
        text += f"\nReport: {slack_escaped(str(message.report))}"
    return text


def webhook_payload(message: WeekMessage) -> dict[str, Any]:
    """The JSON body: Slack's `text` plus the structured outcome for other receivers."""
    found = message.found
    return {
        "text": webhook_text(message),
        "as_of": message.as_of,
        "first_day": message.first_day,
        "last_day": message.last_day,
        "summary": found.summary(),
        "shops": found.shops,
        "actions": {
            action: len(found.by_action.get(action, [])) for action in (*ACTION_ORDER, NO_ACTION)
        },
        "shops_with_actions": [
            {
                "shop_id": r.shop_id,
                "name": r.name,
                "action": r.action,
                "response_rate_12h": r.rate,
                "reason": r.reason,
            }
            for r in message.rows
        ],
        "withheld": [{"shop_id": shop, "reason": why} for shop, why in found.withheld.items()],
        "stale_weeks": list(found.stale_weeks),
        "needs_look": found.needs_look,
        "report": message.report_location,
    }
