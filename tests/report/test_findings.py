"""Compliance findings in the report, grouped by rule: counts per agent and per auto-reply
template, from a hand-made findings table."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from cs_metrics.report import advice
from cs_metrics.report import build as report
from cs_metrics.report.advice import findings_for
from cs_metrics.report.context import RuleFindings

WA = "Hi! For fast reply WhatsApp us at +65 **** *567"


def findings() -> pd.DataFrame:
    """Nine findings of shop S1: three rules, two agents, two auto-reply templates."""
    rows = [
        # rule, category, sender_id, auto, excerpt
        ("contact.chat_app", "off_platform_contact", "bot", True, WA),
        ("contact.chat_app", "off_platform_contact", "bot", True, WA),
        ("contact.chat_app", "off_platform_contact", "bot", True, "hi!  for fast reply " + WA[19:]),
        ("contact.chat_app", "off_platform_contact", "bot", True, "Add us on LINE @shopx"),
        ("contact.chat_app", "off_platform_contact", "agent-7", False, "my wa is +60 ***-***789"),
        ("contact.chat_app", "off_platform_contact", "agent-3", False, "line me @shopx"),
        ("contact.chat_app", "off_platform_contact", "agent-7", False, "whatsapp me pls"),
        ("review.reward_for_review", "review_manipulation", "agent-3", False, "5 stars = RM5"),
        ("cancel.request_en", "order_cancellation_request", None, False, "pls cancel"),
    ]
    return pd.DataFrame(
        {
            "shop_id": ["S1"] * len(rows),
            "conversation_id": [f"c{i}" for i in range(len(rows))],
            "message_id": [f"m{i}" for i in range(len(rows))],
            "sender_role": ["auto_reply" if r[3] else "seller" for r in rows],
            "sender_id": [r[2] for r in rows],
            "sent_at": pd.date_range("2026-11-16 09:00", periods=len(rows), freq="h", tz="UTC"),
            "category": [r[1] for r in rows],
            "rule_id": [r[0] for r in rows],
            "section": ["4.2"] * len(rows),
            "excerpt": [r[4] for r in rows],
            "from_auto_reply": [r[3] for r in rows],
        }
    )


def test_findings_are_grouped_by_rule_with_agents_and_templates() -> None:
    by_rule = findings_for(findings(), "UTC").by_rule
    assert by_rule == [
        RuleFindings(
            rule_id="contact.chat_app",
            category="off_platform_contact",
            section="4.2",
            count=7,
            by_agent=[("agent-7", 2), ("agent-3", 1)],
            agents_more=0,
            # Case and white space do not make another template.
            templates=[(WA, 3), ("Add us on LINE @shopx", 1)],
            templates_more=0,
        ),
        RuleFindings(
            "cancel.request_en",
            "order_cancellation_request",
            "4.2",
            1,
            [("(unknown)", 1)],
            0,
            [],
            0,
        ),
        RuleFindings(
            "review.reward_for_review", "review_manipulation", "4.2", 1, [("agent-3", 1)], 0, [], 0
        ),
    ]


def test_long_lists_name_the_largest_and_count_the_rest(monkeypatch) -> None:
    monkeypatch.setattr(advice, "RULE_BREAKDOWN", 1)
    (chat_app, *_) = findings_for(findings(), "UTC").by_rule
    assert chat_app.by_agent == [("agent-7", 2)]
    assert chat_app.agents_more == 1
    assert chat_app.templates == [(WA, 3)]
    assert chat_app.templates_more == 1


def test_long_template_excerpts_are_shortened() -> None:
    frame = findings().iloc[:1].assign(excerpt="y" * 300)
    (rule,) = findings_for(frame, "UTC").by_rule
    assert rule.templates == [("y" * (advice.TEMPLATE_CHARS - 1) + "…", 1)]


def test_no_findings_no_rules() -> None:
    assert findings_for(findings().iloc[0:0], "UTC").by_rule == []


def test_rule_table_is_rendered_and_escaped() -> None:
    frame = findings()
    frame.loc[4, "sender_id"] = "<b>agent</b>"
    frame.loc[3, "excerpt"] = "<script>x</script>"
    shop = SimpleNamespace(findings=findings_for(frame, "UTC"), timezone="UTC")
    html = report.environment().get_template("_findings.html").render(shop=shop)
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&lt;b&gt;agent&lt;/b&gt;" in html
    table = html[
        html.index('<table class="findings-rules">') : html.index('<table class="findings">')
    ]
    body_rows = table.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert [row.split("</td>")[0] for row in body_rows] == [
        '<td class="mono" data-label="Rule">contact.chat_app',
        '<td class="mono" data-label="Rule">cancel.request_en',
        '<td class="mono" data-label="Rule">review.reward_for_review',
    ]
    assert '<q class="excerpt">' + WA + "</q> 3" in body_rows[0]
    assert '<span class="mono">agent-3</span> 1' in body_rows[0]
