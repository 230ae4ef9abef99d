"""`cs-metrics watch` through the CLI: table, JSON and HTML, pseudonyms, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from test_watch import AT, data  # noqa: F401 - the fixture

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_json_carries_the_verdicts_and_the_answer_now_list(data: Path) -> None:  # noqa: F811
    result = invoke("watch", "--data", data, "--at", AT.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    verdicts = {s["shop_id"]: (s["verdict"], s["needed"]) for s in doc["shops"]}
    assert verdicts == {"LOST": ("lost", 6), "NEEDS": ("needs", 3), "SAFE": ("safe", 0)}
    # LOST-wait1 came a minute before 10:00; NEEDS's clocks lost two hours to Holiday Mode.
    assert [p["conversation_id"] for p in doc["pending"]][:4] == [
        "LOST-wait1",
        "LOST-wait0",
        "SAFE-wait0",
        "NEEDS-wait3",
    ]
    assert all(p["buyer"].startswith("buyer-") for p in doc["pending"])


def test_table_names_what_it_takes(data: Path) -> None:  # noqa: F811
    result = invoke("watch", "--data", data, "--at", AT.isoformat())
    assert result.exit_code == 0, result.stderr
    assert "NEEDS: 26 chats, 20 on time, 0 late, 2 missed, 4 pending" in result.stdout
    assert "answer 3 of the 4 pending chats in time" in result.stdout
    assert "(Holiday Mode: clock stopped)" in result.stdout


def test_html_page_is_self_contained_escaped_and_pseudonymised(
    data: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    messages = data / "messages.csv"
    text = messages.read_text()
    # A conversation id with markup, and a buyer id that must not appear anywhere.
    text += '"SAFE","<script>x</script>","evil-b","buyer","2026-11-26T11:00:00+08:00","b-evil"\n'
    messages.write_text(text)
    page = tmp_path / "watch.html"
    result = invoke(
        "watch", "--data", data, "--at", AT.isoformat(), "--format", "html", "--output", page
    )
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'data-verdict="needs"' in html
    assert "b-evil" not in html and "b-SAFE-wait0" not in html and "buyer-" in html
    assert "Holiday Mode: the clock stands still" in html


@pytest.mark.parametrize("shop", ["SAFE"])
def test_shop_filter_and_a_stale_export_warning(data: Path, shop: str) -> None:  # noqa: F811
    later = AT + pd.Timedelta(hours=5)
    result = invoke("watch", "--data", data, "--at", later.isoformat(), "--shop", shop)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(": ") >= 1 and "NEEDS" not in result.stdout
    assert "warning: the data ends" in result.stderr


def test_no_buyer_id_name_or_handle_reaches_any_output(data: Path, tmp_path: Path) -> None:  # noqa: F811
    """Planted: a pending chat's buyer id, display names (the column privacy.py knows and one it
    does not) and a handle in the message text. The watch shows no message text at all."""
    messages = pd.read_csv(data / "messages.csv", dtype=str)
    chat = messages["conversation_id"] == "NEEDS-wait0"
    messages.loc[chat, "sender_id"] = "jane_doe_88"
    messages["sender_name"] = messages["buyer_name"] = None
    messages.loc[chat, ["sender_name", "buyer_name"]] = "Jane Doe"
    messages["content"] = "hello"
    messages.loc[chat, "content"] = "Hi I'm @jane_doe_88, call me Janie"
    messages.to_csv(data / "messages.csv", index=False)
    page = tmp_path / "watch.html"
    outputs = []
    for fmt in ("html", "json", "table"):
        where = ["--output", page] if fmt == "html" else []
        result = invoke("watch", "--data", data, "--at", AT.isoformat(), "--format", fmt, *where)
        assert result.exit_code == 0, result.stderr
        outputs.append(result.output)
    outputs.append(page.read_text())
    assert "NEEDS-wait0" in outputs[-1] and "buyer-" in outputs[-1]
    for text in outputs:
        for planted in ("jane_doe_88", "jane doe", "jane", "janie"):
            assert planted not in text.lower(), planted
