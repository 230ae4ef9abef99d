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
    """Both pages in real headless Chromium: screenshots saved to out/screenshots/ to look at."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium here")
    out = tmp_path / "out"
    assert invoke("weekly", "--data", SAMPLE, "--out", out, "--as-of", AS_OF).exit_code == 0
    assert invoke("appeal", "--out", out, "--as-of", AS_OF, "--shop", "VN-001").exit_code == 0
    watch = tmp_path / "watch.html"
    at = "2026-11-24T12:00+07:00"
    assert invoke("watch", "--data", SAMPLE, "--at", at, "--format", "html", "--output", watch)
    pages = {"watch": watch, "appeal": out / AS_OF / "appeal" / "appeal-VN-001.html"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        shot = SCREENSHOTS / f"{name}.png"
        shot.unlink(missing_ok=True)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        assert shot.stat().st_size > 20_000  # a page with text and tables, not a blank one
