"""`watch --send` (docs/watch.md): the watch e-mailed and posted to real local servers when a
shop is at risk, nothing sent when every shop is safe, exit 4 when a channel fails.

The servers, the config and the secrets are those of test_delivery.py; the week is the hand-made
one of tests/test_watch.py (SAFE needs nothing, NEEDS 3 of its 4 pending chats, LOST is lost).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_delivery import (  # noqa: F401 - fixtures
    PASSWORD_ENV,
    TOKEN,
    URL_ENV,
    Hook,
    Inbox,
    assert_no_secret,
    error_lines,
    free_port,
    hook,
    inbox,
    invoke,
    parts,
    write_config,
)

from cs_metrics.delivery.watch_message import RiskRow, WatchMessage
from test_watch import AT, data  # noqa: F401 - the fixture

AT_TEXT = AT.isoformat()


def test_shops_at_risk_are_sent_by_email_and_webhook(
    data: Path,  # noqa: F811
    tmp_path: Path,
    inbox: Inbox,  # noqa: F811
    hook: Hook,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path / "config.toml", inbox.port, f'url_env = "{URL_ENV}"')
    result = invoke(
        "watch", "--data", data, "--at", AT_TEXT, "--format", "json", "--config", config,
        "--send", env={URL_ENV: hook.url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout holds the watch alone; what was sent goes to stderr
    assert "Sent:    e-mail to 2 recipients" in result.stderr
    assert "Sent:    webhook to 127.0.0.1:" in result.stderr
    assert error_lines(caplog) == []

    [mail] = inbox.received
    assert mail.authenticated
    message = mail.message
    # LOST's first pending chat came 09:59 (9 h 59 min left at noon); NEEDS's at 09:57, but
    # Holiday Mode since 11:00 stopped its clock at 63 minutes: 10 h 57 min left, and the
    # deadline moves two hours later, to 23:57.
    assert message["Subject"] == (
        "cs-metrics watch: 2 shops at risk: "
        "LOST: already lost, first deadline Thu 26 Nov 21:59 (9 h 59 min left); "
        "NEEDS: answer 3 of 4 in time, first deadline Thu 26 Nov 23:57 "
        "(10 h 57 min left, clock stopped by Holiday Mode)"
    )
    text, html, attachments = parts(message)
    assert "- NEEDS: rate so far 90.9%, 4 pending; answer 3 of the 4 pending chats" in text
    assert "SAFE" not in text  # a safe shop is not mentioned in the text ...
    assert 'data-verdict="needs"' in html and 'data-shop-id="SAFE"' in html
    # ... the page has every shop
    assert "b-NEEDS-wait0" not in html and "buyer-" in html
    assert attachments == []

    [(path, _headers, body)] = hook.received
    assert path == f"/services/{TOKEN}"  # the token reached the receiver, and only it
    payload = json.loads(body)
    assert payload["kind"] == "watch"
    assert payload["at"] == "2026-11-26T04:00:00+00:00"
    shops = {s["shop_id"]: s for s in payload["shops_at_risk"]}
    assert set(shops) == {"LOST", "NEEDS"}
    assert shops["NEEDS"] == {
        "shop_id": "NEEDS",
        "verdict": "needs",
        "rate_so_far": pytest.approx(20 / 22),
        "pending": 4,
        "needed": 3,
        "what_it_takes": shops["NEEDS"]["what_it_takes"],
        "soonest_deadline": "2026-11-26T15:57:00+00:00",
        "clock_left_minutes": pytest.approx(657),
        "clock_paused_by_holiday_mode": True,
    }
    assert shops["NEEDS"]["what_it_takes"].startswith("answer 3 of the 4 pending chats")
    assert shops["LOST"]["verdict"] == "lost" and shops["LOST"]["pending"] == 2
    assert shops["LOST"]["rate_so_far"] == pytest.approx(5 / 10)
    assert_no_secret(mail.raw + body, "what was sent")
    assert_no_secret(result.output + caplog.text, "the output or the log")


def test_nothing_is_sent_when_every_shop_is_safe(
    data: Path,  # noqa: F811
    tmp_path: Path,
    inbox: Inbox,  # noqa: F811
    hook: Hook,  # noqa: F811
) -> None:
    config = write_config(tmp_path / "config.toml", inbox.port, f'url_env = "{URL_ENV}"')
    result = invoke(
        "watch", "--data", data, "--at", AT_TEXT, "--shop", "SAFE", "--config", config,
        "--send", env={URL_ENV: hook.url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # One line says so (the other is the stale-export warning: the data ends at 10:00).
    assert result.stderr.splitlines()[-1] == "Nothing sent: no shop is at risk this week so far."
    assert len(result.stderr.splitlines()) == 2
    assert "SAFE: 11 chats" in result.stdout
    assert inbox.received == [] and hook.received == []


def test_a_failed_channel_exits_4_and_the_other_still_sends(
    data: Path,  # noqa: F811
    tmp_path: Path,
    hook: Hook,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens: the SMTP server refuses the connection
    config = write_config(tmp_path / "config.toml", port, f'url_env = "{URL_ENV}"')
    page = tmp_path / "watch.html"
    result = invoke(
        "watch", "--data", data, "--at", AT_TEXT, "--format", "html", "--output", page,
        "--config", config, "--send", env={URL_ENV: hook.url},
    )  # fmt: skip
    assert result.exit_code == 4, result.output
    [line] = error_lines(caplog)
    assert line.startswith(f"delivery failed: e-mail: 127.0.0.1:{port} refused the connection")
    assert page.exists()  # the watch itself is written whatever the channels do
    assert len(hook.received) == 1
    assert_no_secret(result.output + caplog.text, "the output or the log")


def test_send_needs_a_delivery_table(data: Path, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "policy.toml"
    config.write_text("[policy]\nresponse_rate_target = 0.85\n")
    result = invoke("watch", "--data", data, "--at", AT_TEXT, "--config", config, "--send")
    assert result.exit_code == 2
    assert "--send: nothing to send over" in result.stderr
    assert PASSWORD_ENV not in result.output


def test_a_subject_names_the_three_soonest_shops_and_counts_the_rest() -> None:
    rows = tuple(
        RiskRow(
            shop_id=f"S{i}",
            verdict="needs",
            rate_so_far=0.8,
            pending=2,
            needed=1,
            what_it_takes="answer 1 of the 2 pending chats in time to stay at the target",
            soonest_deadline=f"Thu 26 Nov 1{i}:00",
            soonest_deadline_utc=None,
            clock_left_minutes=60.0 * (i + 1),
            paused=False,
        )
        for i in range(5)
    )
    message = WatchMessage(at="", target=0.85, limit_hours="12", rows=rows, page="")
    assert message.subject == (
        "cs-metrics watch: 5 shops at risk: "
        "S0: answer 1 of 2 in time, first deadline Thu 26 Nov 10:00 (1 h 00 min left); "
        "S1: answer 1 of 2 in time, first deadline Thu 26 Nov 11:00 (2 h 00 min left); "
        "S2: answer 1 of 2 in time, first deadline Thu 26 Nov 12:00 (3 h 00 min left); "
        "and 2 more"
    )
