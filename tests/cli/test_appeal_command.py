"""`cs-metrics appeal`: every late or missed chat with its timeline, likely disputes first,
buyers pseudonymised, one self-contained page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cs_metrics import week_files
from cs_metrics.cli.app import app
from paths import ROOT

SAMPLE = ROOT / "sample_data"
SCREENSHOTS = ROOT / "out" / "screenshots"

runner = CliRunner()
AS_OF = "2026-11-23"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_the_pack_lists_every_late_or_missed_chat_with_its_timeline(tmp_path: Path) -> None:
    rows = [
        # Late, answered by an auto-reply ten minutes after the deadline: a likely dispute.
        ("V", "c-auto", "m1", "buyer", "2026-11-17T08:00:00+07:00", "buyer-secret-1"),
        ("V", "c-auto", "m2", "auto_reply", "2026-11-17T20:10:00+07:00", "bot"),
        # Late by a day, by a seller.
        ("V", "c-late", "m3", "buyer", "2026-11-18T08:00:00+07:00", "Buyer.Secret-2"),
        ("V", "c-late", "m4", "buyer", "2026-11-18T09:00:00+07:00", "Buyer.Secret-2"),
        ("V", "c-late", "m5", "seller", "2026-11-19T09:00:00+07:00", "agent"),
        # Missed.
        ("V", "c-miss", "m6", "buyer", "2026-11-19T08:00:00+07:00", "buyer-secret-3"),
        # On time: not in the pack.
        ("V", "c-ok", "m7", "buyer", "2026-11-20T08:00:00+07:00", "buyer-secret-4"),
        ("V", "c-ok", "m8", "seller", "2026-11-20T08:05:00+07:00", "agent"),
        ("V", "c-end", "m9", "buyer", "2026-11-23T00:00:00+07:00", "buyer-secret-5"),
    ]
    data = tmp_path / "data"
    data.mkdir()
    columns = ["shop_id", "conversation_id", "message_id", "sender_role", "sent_at", "sender_id"]
    pd.DataFrame(rows, columns=columns).to_csv(data / "messages.csv", index=False)
    pd.DataFrame({"shop_id": ["V"], "market": ["VN"], "name": ["<b>Shop</b>"]}).to_csv(
        data / "shops.csv", index=False
    )
    out = tmp_path / "out"
    weekly = invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF)
    assert weekly.exit_code == 0, weekly.stderr
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V")
    assert result.exit_code == 0, result.stderr
    folder = week_files.week_folder(out, pd.Timestamp(AS_OF).date()) / "appeal"
    html = (folder / "appeal-V.html").read_text()
    conversations = re.findall(r'data-conversation="([^"]+)"', html)
    assert conversations == ["c-auto", "c-late", "c-miss"]  # the likely dispute first
    assert "answered by an auto-reply" in html
    assert "answered within 30 minutes after the deadline" in html
    chats = pd.read_csv(out / AS_OF / "chats.csv")
    late = chats.loc[chats["conversation_id"] == "c-late"].iloc[0]
    assert late["status"] == "late"
    # The times shown are those of chats.csv, in the shop's zone.
    assert "Received Wed 18 Nov 08:00 (2 buyer message(s)" in html
    assert "Deadline Wed 18 Nov 20:00" in html
    assert "Responded Thu 19 Nov 09:00 by seller" in html
    assert "&lt;b&gt;Shop&lt;/b&gt;" in html and "<b>Shop</b>" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    table = (folder / "appeal-V.csv").read_text()
    assert "secret" not in html.lower() and "secret" not in table.lower()
    assert oct((folder / "appeal-V.html").stat().st_mode & 0o777) == "0o600"


PLANTED = ("jane_doe_88", "jane doe", "jane", "buyer-secret", "janie")
"""A buyer id, display name and handle planted in the data: none may reach the pack."""


@pytest.fixture
def week_with_data(tmp_path: Path) -> tuple[Path, Path]:
    """A shop (Vietnam, +07:00) whose week of 16 to 22 November holds, by hand:

    - c-auto: received Tue 17 08:00 from buyer jane_doe_88 ("Jane Doe", who writes "Hi I'm
      @jane_doe_88"), answered by an auto-reply at 20:10: late by ten minutes;
    - c-late: received Wed 18 08:00, a second buyer message at 09:00, a system message at
      10:00, Holiday Mode 12:00 to 14:00 (the deadline moves to 22:00), the seller at Thu 09:00;
    - c-miss: received Thu 19 08:00, never answered (missed);
    - c-ok: received Fri 20 08:00, answered at 08:05 (on time).

    So 1 of 4 on time: 25%. TikTok's store has figures for 16, 17, 19 and 20 November (not 18).
    """
    rows = [
        (
            "c-auto",
            "m1",
            "buyer",
            "2026-11-17T08:00:00+07:00",
            "jane_doe_88",
            "Hi I'm @jane_doe_88",
        ),
        ("c-auto", "m2", "auto_reply", "2026-11-17T20:10:00+07:00", "bot", "Thanks, Jane Doe!"),
        ("c-late", "m3", "buyer", "2026-11-18T08:00:00+07:00", "Buyer.Secret-2", "call janie"),
        ("c-late", "m4", "buyer", "2026-11-18T09:00:00+07:00", "Buyer.Secret-2", "hello?"),
        ("c-late", "m5", "system", "2026-11-18T10:00:00+07:00", "", "Order shipped"),
        ("c-late", "m6", "seller", "2026-11-19T09:00:00+07:00", "agent", "Sorry Janie"),
        ("c-miss", "m7", "buyer", "2026-11-19T08:00:00+07:00", "buyer-secret-3", "anyone?"),
        ("c-ok", "m8", "buyer", "2026-11-20T08:00:00+07:00", "buyer-secret-4", "hi"),
        ("c-ok", "m9", "seller", "2026-11-20T08:05:00+07:00", "agent", "hello"),
        ("c-end", "m10", "buyer", "2026-11-23T00:00:00+07:00", "buyer-secret-5", "later"),
    ]
    columns = ["conversation_id", "message_id", "sender_role", "sent_at", "sender_id", "content"]
    messages = pd.DataFrame(rows, columns=columns).assign(shop_id="V")
    buyer = messages["sender_role"] == "buyer"
    # Display names: the column privacy.py knows, and one it does not.
    messages["sender_name"] = (
        messages["sender_id"]
        .map({"jane_doe_88": "Jane Doe", "Buyer.Secret-2": "Janie"})
        .where(buyer)
    )
    messages["buyer_name"] = messages["sender_name"]
    data = tmp_path / "data"
    data.mkdir()
    messages.to_csv(data / "messages.csv", index=False)
    pd.DataFrame({"shop_id": ["V"], "market": ["VN"], "name": ["Shop V"]}).to_csv(
        data / "shops.csv", index=False
    )
    pd.DataFrame(
        {"shop_id": ["V"], "start": ["2026-11-18T12:00+07:00"], "end": ["2026-11-18T14:00+07:00"]}
    ).to_csv(data / "holiday_mode.csv", index=False)
    pd.DataFrame(
        {
            "shop_id": ["V", "V", "V", "V", "V", "OTHER"],
            "day": ["2026-11-16", "2026-11-17", "2026-11-19", "2026-11-20", "2026-11-23",
                    "2026-11-18"],
            "response_rate": [0.5, 0.5, 0.7, 0.9, 0.0, 0.1],
            "response_time_minutes": [60.0, 60.0, 60.0, 60.0, 999.0, 1.0],
            "satisfaction_rate": [0.8, 0.8, 0.8, 0.8, 0.0, 0.0],
        }
    ).to_csv(data / "tiktok_performance.csv", index=False)  # fmt: skip
    out = tmp_path / "out"
    weekly = invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF)
    assert weekly.exit_code == 0, weekly.stderr
    return data, out


def pack_files(out: Path) -> tuple[str, str]:
    folder = out / AS_OF / "appeal"
    return (folder / "appeal-V.html").read_text(), (folder / "appeal-V.csv").read_text()


def events_of(html: str, conversation: str, received: str = "") -> list[tuple[str, str, str]]:
    """(kind, UTC instant, local time) of each line of a chat's timeline (the chat received at
    `received`, when its conversation holds more than one)."""
    start = f'data-conversation="{conversation}" data-received="{received}'
    article = html.split(start, 1)[1].split("</article>", 1)[0]
    return re.findall(r'data-kind="([^"]+)"><time datetime="([^"]+)">([^<]+)</time>', article)


def test_with_data_every_message_of_each_late_or_missed_chat_is_in_its_timeline(
    week_with_data: tuple[Path, Path],
) -> None:
    data, out = week_with_data
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V", "--data", data)
    assert result.exit_code == 0, result.stderr
    html, table = pack_files(out)
    chats = pd.read_csv(out / AS_OF / "chats.csv", dtype=str).set_index("conversation_id")
    # Every chat counted late or missed, likely disputes first: c-auto (auto-reply, ten
    # minutes late) and c-late (a system message) before c-miss.
    assert re.findall(r'data-conversation="([^"]+)"', html) == ["c-auto", "c-late", "c-miss"]
    late = events_of(html, "c-late")
    assert [kind for kind, _, _ in late] == [
        "buyer", "buyer", "system", "holiday_mode", "holiday_mode", "deadline", "seller",
    ]  # fmt: skip
    # The times are chats.csv's, to the second, and local in the shop's zone.
    assert late[0][1] == chats.loc["c-late", "received_at_utc"] == "2026-11-18T01:00:00+00:00"
    assert late[-1][1] == chats.loc["c-late", "responded_at_utc"]
    assert late[5][1] == chats.loc["c-late", "deadline_at_utc"] == "2026-11-18T15:00:00+00:00"
    assert [local for _, _, local in late[:3]] == [
        "Wed 18 Nov 08:00:00", "Wed 18 Nov 09:00:00", "Wed 18 Nov 10:00:00",
    ]  # fmt: skip
    auto = events_of(html, "c-auto")
    assert [k for k, _, _ in auto] == ["buyer", "deadline", "auto_reply"]
    assert auto[2][1] == chats.loc["c-auto", "responded_at_utc"]
    assert "Response by an auto-reply" in html
    # A missed chat: its message and its deadline, then nothing up to the cut-off.
    assert [k for k, _, _ in events_of(html, "c-miss")] == ["buyer", "deadline"]
    assert "No response in the data up to the cut-off." in html
    assert "a system message came while the chat waited for its answer" in html
    assert "Message text is not shown" in html

    # TikTok's figures of 16 to 22 November (not 23, not another shop's): 4 days, a mean
    # rate of 65% against our 25%.
    assert "TikTok gave figures for 4 of the 7 days" in html
    assert re.search(
        r"Response rate \(ours: within 12 hours\)</th><td class=\"n\">25\.0%</td>"
        r"<td class=\"n\">65\.0%</td><td class=\"n\">−40\.0 pp</td>",
        html,
    )
    assert re.search(
        r"Tue 17 Nov</th><td class=\"n\">1</td><td class=\"n\">0\.0%</td>"
        r"<td class=\"n\">50\.0%</td><td class=\"n\">−50\.0 pp</td>",
        html,
    )
    explaining = html.split('class="explaining"', 1)[1].split("</ul>", 1)[0]
    assert "1 chat(s) counted late or missed by us with a system message" in explaining
    assert "1 chat(s) answered late by an auto-reply" in explaining
    assert re.search(r"received on a day TikTok gave no figure for.*c-late", explaining)

    # No buyer id, display name or handle anywhere, in the page or the CSV.
    for text in (html.lower(), table.lower()):
        for planted in PLANTED:
            assert planted not in text, planted
    assert "buyer-" in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_without_data_or_tiktok_figures_the_pack_says_what_is_missing(
    week_with_data: tuple[Path, Path],
) -> None:
    data, out = week_with_data
    assert invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V").exit_code == 0
    html, table = pack_files(out)
    assert "<code>--data DIR</code> adds every message" in html
    assert 'data-kind="' not in html  # the stored week's timeline, from chats.csv alone
    assert "Received Wed 18 Nov 08:00 (2 buyer message(s)" in html
    assert "system message came" not in html  # not known without the data
    (data / "tiktok_performance.csv").unlink()
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V", "--data", data)
    assert result.exit_code == 0, result.stderr
    html, table = pack_files(out)
    [note] = re.findall(r"TikTok&#39;s own figures for [^<]*", html)
    assert note == (
        "TikTok&#39;s own figures for 2026-11-16 to 2026-11-22 are not in data/ (the connector "
        "stores them in tiktok_performance.csv: docs/fetch.md)."
    )
    assert 'data-kind="system"' in html
    for text in (html.lower(), table.lower()):
        for planted in PLANTED:
            assert planted not in text, planted


def test_markup_in_a_conversation_id_arrives_as_text_in_every_part_of_the_pack(
    week_with_data: tuple[Path, Path],
) -> None:
    """A missed chat with markup for its id, on a day TikTok gave no figure for: its header,
    its timeline and the list of chats that may explain the difference show it escaped."""
    data, out = week_with_data
    messages = pd.read_csv(data / "messages.csv", dtype=str)
    extra = messages.iloc[[6]].assign(
        conversation_id="<script>x</script>", message_id="m-x", sent_at="2026-11-21T08:00+07:00"
    )
    pd.concat([messages, extra]).to_csv(data / "messages.csv", index=False)
    assert invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF).exit_code == 0
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V", "--data", data)
    assert result.exit_code == 0, result.stderr
    html, _ = pack_files(out)
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;x&lt;/script&gt;") == 3
    assert [k for k, _, _ in events_of(html, "&lt;script&gt;x&lt;/script&gt;")] == [
        "buyer",
        "deadline",
    ]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_every_late_or_missed_chat_of_a_generated_shop_has_its_times_from_chats_csv(
    tmp_path: Path,
) -> None:
    """The sample's VN-001 (a warning in the week of 23 November): every chat chats.csv counts
    late or missed has a timeline starting at its receipt, its deadline, and its response."""
    out = tmp_path / "out"
    assert invoke("weekly", "--data", SAMPLE, "--out", out, "--as-of", AS_OF).exit_code == 0
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "VN-001", "--data", SAMPLE)
    assert result.exit_code == 0, result.stderr
    html = (out / AS_OF / "appeal" / "appeal-VN-001.html").read_text()
    chats = pd.read_csv(out / AS_OF / "chats.csv", dtype=str, keep_default_na=False)
    counted = chats.loc[
        (chats["shop_id"] == "VN-001") & chats["status"].isin(["late", "unresponded"])
    ]
    assert len(counted) > 100
    shown = re.findall(r'data-conversation="([^"]+)"', html)
    assert sorted(shown) == sorted(counted["conversation_id"])
    assert "The data folder does not hold" not in html
    for chat in counted.itertuples(index=False):
        events = events_of(html, chat.conversation_id, chat.received_at_utc)
        assert events[0][:2] == ("buyer", chat.received_at_utc)
        assert ("deadline", chat.deadline_at_utc) in [e[:2] for e in events]
        buyers = sum(kind == "buyer" for kind, _, _ in events)
        if chat.status == "late":
            assert events[-1][:2] == (chat.responder_role, chat.responded_at_utc)
            assert buyers == int(chat.buyer_messages)
        else:
            assert chat.responded_at_utc == "" and buyers >= int(chat.buyer_messages)


def test_an_unknown_shop_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "messages.csv").write_text(
        "shop_id,conversation_id,message_id,sender_role,sent_at\n"
        "V,c,m,buyer,2026-11-17T08:00:00+07:00\n"
    )
    out = tmp_path / "out"
    assert invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF).exit_code in (0, 4)
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "W")
    assert result.exit_code == 2
    assert "--shop W: no such shop" in result.stderr


@pytest.mark.slow
def test_chromium_renders_the_watch_page_and_the_appeal_pack(tmp_path: Path) -> None:
    """Both pages in real headless Chromium: screenshots saved to out/screenshots/ to look at.
    The pack is built with --data and TikTok's figures for six of the seven days."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium here")
    data = Path(shutil.copytree(SAMPLE, tmp_path / "data"))
    days = pd.date_range("2026-11-16", "2026-11-22").strftime("%Y-%m-%d")
    pd.DataFrame(
        {
            "shop_id": "VN-001",
            "day": days,
            "response_rate": [0.78, 0.79, 0.80, None, 0.81, 0.82, 0.83],
            "response_time_minutes": 250.0,
            "satisfaction_rate": 0.75,
        }
    ).dropna().to_csv(data / "tiktok_performance.csv", index=False)
    out = tmp_path / "out"
    assert invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF).exit_code == 0
    appeal = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "VN-001", "--data", data)
    assert appeal.exit_code == 0, appeal.stderr
    watch = tmp_path / "watch.html"
    at = "2026-11-24T12:00+07:00"
    assert invoke("watch", "--data", SAMPLE, "--at", at, "--format", "html", "--output", watch)
    pages = {
        "watch": (watch, 1600),
        "appeal": (out / AS_OF / "appeal" / "appeal-VN-001.html", 3200),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, (page, height) in pages.items():
        shot = SCREENSHOTS / f"{name}.png"
        shot.unlink(missing_ok=True)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={shot}", f"--window-size=1280,{height}", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        assert shot.stat().st_size > 20_000  # a page with text and tables, not a blank one


def test_a_hand_edited_figures_file_gives_a_pack_not_a_traceback(
    week_with_data: tuple[Path, Path],
) -> None:
    """Text in a figure, a missing column and one day twice (the later row counts), as the
    weekly run takes them; then an empty file, which holds no figure."""
    data, out = week_with_data
    (data / "tiktok_performance.csv").write_text(
        "shop_id,day,response_rate\nV,2026-11-16,n/a\nV,2026-11-17,0.2\nV,2026-11-17,0.6\n"
    )
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V", "--data", data)
    assert result.exit_code == 0, result.stderr
    html, _ = pack_files(out)
    assert "TikTok gave figures for 1 of the 7 days" in html
    assert re.search(
        r"Tue 17 Nov</th><td class=\"n\">1</td><td class=\"n\">0\.0%</td>"
        r"<td class=\"n\">60\.0%</td><td class=\"n\">−60\.0 pp</td>",
        html,
    )
    (data / "tiktok_performance.csv").write_text("")
    result = invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "V", "--data", data)
    assert result.exit_code == 0, result.stderr
    assert "own figures for 2026-11-16 to 2026-11-22 are not in data/" in pack_files(out)[0]
