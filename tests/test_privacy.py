"""Buyer privacy: the pseudonym key's own file, and no raw buyer identifier in report.html or
findings.csv whatever shape it takes in a message (docs/privacy.md)."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cs_metrics import files, history, privacy
from cs_metrics.cli.app import app
from cs_metrics.errors import InputError

KEY = b"k" * 32
AS_OF = "2026-11-23"


# ----------------------------------------------------------------------------- the key file


def test_key_file_defaults_to_the_user_config_folder(tmp_path: Path) -> None:
    assert privacy.key_file({"CS_METRICS_KEY_FILE": str(tmp_path / "k")}) == tmp_path / "k"
    assert privacy.key_file({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "cs-metrics" / "pseudonym.key"
    )
    assert privacy.key_file({}) == Path.home() / ".config" / "cs-metrics" / "pseudonym.key"


def test_a_new_key_file_is_private_and_kept(tmp_path: Path) -> None:
    """Created 0600 in a folder created 0700; the second call reads the same key."""
    path = tmp_path / "config" / "cs-metrics" / "pseudonym.key"
    key = privacy.pseudonym_key(path=path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert privacy.pseudonym_key(path=path) == key


def test_the_key_file_is_the_environment_variables(pseudonym_key_file: Path) -> None:
    """Tests never write into the real home: conftest points CS_METRICS_KEY_FILE at tmp."""
    key = privacy.pseudonym_key()
    assert pseudonym_key_file.read_text().strip() == key.hex()


def test_a_key_in_an_old_history_store_moves_to_the_key_file(tmp_path: Path) -> None:
    """Pseudonyms stay the same after the upgrade, and the store no longer holds the key."""
    store = tmp_path / "history.sqlite"
    with history.connect(store) as con:
        con.execute("INSERT INTO meta VALUES ('pseudonym_key', ?)", (KEY.hex(),))
    con.close()
    path = tmp_path / "keys" / "pseudonym.key"
    assert privacy.pseudonym_key(store, path) == KEY
    assert path.read_text().strip() == KEY.hex()
    with sqlite3.connect(store) as con:
        assert con.execute("SELECT * FROM meta WHERE key = 'pseudonym_key'").fetchall() == []
    con.close()
    assert KEY.hex().encode() not in store.read_bytes()  # secure_delete: not left in free pages
    assert privacy.pseudonym_key(store, path) == KEY


def test_an_existing_key_file_wins_over_a_missing_store(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_text(KEY.hex() + "\n")
    assert privacy.pseudonym_key(tmp_path / "no-store.sqlite", path) == KEY
    assert not (tmp_path / "no-store.sqlite").exists()


def test_a_damaged_key_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_text("not hex")
    with pytest.raises(InputError, match="not a usable pseudonym key file"):
        privacy.pseudonym_key(path=path)


# ----------------------------------------------------------------------------- hiding


BUYERS = pd.DataFrame(
    {
        "shop_id": ["S", "S", "S", "T"],
        "buyer_id": ["buyer_9c798d", "Ann", "=1+1", "buyer_9c798d"],
        "name": ["Alice Tan", None, None, None],
    },
    dtype="string",
)


@pytest.mark.parametrize(
    ("excerpt", "buyer"),
    [
        ("Hi buyer_9c798d, add us on WhatsApp", "buyer_9c798d"),
        ("Hi BUYER_9C798D, add us on WhatsApp", "buyer_9c798d"),
        ("Hi @buyer_9c798d add us on WhatsApp", "buyer_9c798d"),
        ("Hi alice  TAN, add us on WhatsApp", "buyer_9c798d"),
        ("@Alice Tan add us on WhatsApp", "buyer_9c798d"),
        ("…9c798d, add us on WhatsApp", "buyer_9c798d"),
        ("add us on WhatsApp, buyer_9c…", "buyer_9c798d"),
        ("ann: add us on WhatsApp", "Ann"),
        ("pay =1+1 on WhatsApp", "=1+1"),
    ],
    ids=[
        "id",
        "other case",
        "handle",
        "display name",
        "display name handle",
        "cut head",
        "cut tail",
        "short id",
        "punctuation id",
    ],
)
def test_every_shape_of_a_buyer_identifier_becomes_the_pseudonym(excerpt: str, buyer: str) -> None:
    findings = pd.DataFrame({"shop_id": ["S"], "excerpt": pd.array([excerpt], dtype="string")})
    hidden = privacy.hidden_findings(findings, privacy.identifiers(BUYERS, KEY))
    text = hidden.loc[0, "excerpt"]
    assert privacy.pseudonym(KEY, "S", buyer) in text
    assert "9c" not in text.lower().replace(privacy.pseudonym(KEY, "S", buyer), "")
    assert "alice" not in text.lower() and "ann" not in text.lower() and "=1+1" not in text


def test_hiding_keeps_other_words_and_other_shops_buyers() -> None:
    """A word that merely contains an id, a short cut piece and another shop's buyer stay."""
    findings = pd.DataFrame(
        {
            "shop_id": ["S", "S", "T"],
            "excerpt": ["Annual sale, add us on WhatsApp", "…8d add us", "Ann: add us"],
        }
    )
    hidden = privacy.hidden_findings(findings, privacy.identifiers(BUYERS, KEY))
    assert hidden["excerpt"].tolist() == findings["excerpt"].tolist()


def test_a_buyer_sender_id_becomes_the_pseudonym() -> None:
    findings = pd.DataFrame(
        {
            "shop_id": ["S", "S"],
            "sender_role": ["buyer", "seller"],
            "sender_id": ["buyer_9c798d", "agent_1"],
            "excerpt": ["rude words", "add us on WhatsApp"],
        }
    )
    hidden = privacy.hidden_findings(findings, privacy.identifiers(BUYERS, KEY))
    assert hidden["sender_id"].tolist() == [privacy.pseudonym(KEY, "S", "buyer_9c798d"), "agent_1"]


def test_display_names_come_from_a_sender_name_column() -> None:
    messages = pd.DataFrame(
        {
            "shop_id": ["S", "S"],
            "sender_role": pd.Categorical(["buyer", "seller"]),
            "sender_id": ["b1", "agent"],
            privacy.NAME_COLUMN: ["Bea Lim", "Agent Smith"],
        }
    )
    buyers = privacy._buyers_of(messages)
    assert buyers[["buyer_id", "name"]].to_numpy().tolist() == [["b1", "Bea Lim"]]


def test_the_buyers_of_named_shops_only() -> None:
    """Findings are searched for the buyers of their own shop: a week's findings of shop S need
    S's buyers only, so the others are not gathered."""
    messages = pd.DataFrame(
        {
            "shop_id": pd.array(["S", "T", "S", "U"], dtype="string"),
            "sender_role": pd.Categorical(["buyer", "buyer", "seller", "buyer"]),
            "sender_id": pd.array(["b1", "b2", "agent", "b3"], dtype="string"),
        }
    )
    assert privacy._buyers_of(messages, frozenset({"S", "U"}))["buyer_id"].tolist() == ["b1", "b3"]
    assert privacy._buyers_of(messages, frozenset())["buyer_id"].tolist() == []
    assert privacy._buyers_of(messages)["buyer_id"].tolist() == ["b1", "b2", "b3"]


def test_many_buyers_are_hidden_without_a_giant_pattern() -> None:
    """200,000 buyers of one shop: only the ids a text holds make the shop's pattern."""
    ids = pd.Series([f"buyer_{i:07d}" for i in range(200_000)], dtype="string")
    buyers = pd.DataFrame({"shop_id": "S", "buyer_id": ids, "name": pd.NA}, dtype="string")
    named = privacy.identifiers(buyers, KEY)
    findings = pd.DataFrame({"shop_id": ["S"], "excerpt": ["…r_0199999 and BUYER_0123456"]})
    text = privacy.hidden_findings(findings, named).loc[0, "excerpt"]
    assert text == (
        f"…{privacy.pseudonym(KEY, 'S', 'buyer_0199999')} and "
        f"{privacy.pseudonym(KEY, 'S', 'buyer_0123456')}"
    )


# ----------------------------------------------------------------------------- end to end


TAIL_ID = "Tail_buyer99"
HEAD_ID = "Head_buyer77"
LEAKS = {
    "handle": ("JaneBuyerX", "Hi @JaneBuyerX, add us on WhatsApp for a discount"),
    "other case": ("MixedCaseBuyer", "MIXEDCASEBUYER please add us on whatsapp"),
    "earlier week": ("OldBuyer_777", "OldBuyer_777 you can add us on WhatsApp"),
    # The excerpt (120 characters around the match) starts and ends inside these ids.
    "cut tail": (TAIL_ID, TAIL_ID + " " + "z" * 40 + " add us on whatsapp " + "z" * 100),
    "cut head": (
        HEAD_ID,
        "z" * 100 + " add us on whatsapp " + "y" * 40 + f" {HEAD_ID} " + "z" * 60,
    ),
}


MESSAGE_COLUMNS = (
    "shop_id",
    "conversation_id",
    "message_id",
    "sender_role",
    "sent_at",
    "sender_id",
    "content",
)


def leaky_folder(folder: Path) -> Path:
    """A shop whose agent names buyers in every shape while asking them to WhatsApp."""
    folder.mkdir()
    rows = [("S1", "old", "m-old", "buyer", "2026-11-03T09:00:00Z", "OldBuyer_777", "hello")]
    for n, (buyer, _) in enumerate(LEAKS.values()):
        rows.append(
            ("S1", f"c{n}", f"b{n}", "buyer", f"2026-11-1{7 + n % 3}T09:00:00Z", buyer, "hi")
        )
    for n, (_, text) in enumerate(LEAKS.values()):
        rows.append(
            ("S1", f"c{n}", f"s{n}", "seller", f"2026-11-1{7 + n % 3}T09:05:00Z", "ag", text)
        )
    frame = pd.DataFrame(
        rows,
        columns=list(MESSAGE_COLUMNS),
    )
    # the earlier-week buyer is a buyer of the data, not of this week's chats
    frame.loc[frame["message_id"] == "b2", "sender_id"] = "someone_else"
    frame.to_csv(folder / "messages.csv", index=False)
    (folder / "shops.csv").write_text("shop_id,name,timezone\nS1,Shop One,UTC\n")
    return folder


def test_weekly_report_and_findings_hold_no_raw_buyer_identifier(tmp_path: Path) -> None:
    data, out = leaky_folder(tmp_path / "data"), tmp_path / "out"
    result = CliRunner().invoke(
        app, ["weekly", "--data", str(data), "--out", str(out), "--as-of", AS_OF]
    )
    assert result.exit_code in (0, 4), result.stderr
    folder = out / AS_OF
    report = (folder / "report.html").read_text(encoding="utf-8").lower()
    findings_text = (folder / "findings.csv").read_text(encoding="utf-8")
    findings = list(csv.DictReader(io.StringIO(findings_text)))
    assert len(findings) == len(LEAKS)  # every planted message was found: the test bites
    raw = [b.lower() for b, _ in LEAKS.values()] + [TAIL_ID[3:].lower(), HEAD_ID[:9].lower()]
    for identifier in raw:
        assert identifier not in report, identifier
        assert identifier not in findings_text.lower(), identifier
    key = privacy.pseudonym_key()
    for buyer in ("JaneBuyerX", "MixedCaseBuyer", "OldBuyer_777", TAIL_ID, HEAD_ID):
        assert privacy.pseudonym(key, "S1", buyer) in findings_text, buyer


def test_files_with_raw_buyer_data_are_private(tmp_path: Path) -> None:
    data, out = leaky_folder(tmp_path / "data"), tmp_path / "out"
    messages = pd.read_csv(data / "messages.csv", dtype=str)
    bad = {**messages.iloc[0].to_dict(), "message_id": "bad-1", "sent_at": "soon"}
    pd.concat([messages, pd.DataFrame([bad])]).to_csv(data / "messages.csv", index=False)
    mask = os.umask(0o022)
    try:
        result = CliRunner().invoke(
            app, ["weekly", "--data", str(data), "--out", str(out), "--as-of", AS_OF]
        )
    finally:
        os.umask(mask)
    assert result.exit_code in (0, 4), result.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (out / AS_OF).glob("*.*")}
    assert modes["chats.csv"] == modes["findings.csv"] == files.PRIVATE_MODE
    assert modes["metrics.csv"] == modes["report.html"] == 0o644
    quarantined = list((out / AS_OF / "quarantine").glob("*.csv"))
    assert quarantined
    assert {stat.S_IMODE(p.stat().st_mode) for p in quarantined} == {files.PRIVATE_MODE}


def test_a_failed_move_keeps_the_key_in_the_store(tmp_path: Path) -> None:
    """The key is erased from the store only once the key file holds it."""
    store = tmp_path / "history.sqlite"
    with history.connect(store) as con:
        con.execute("INSERT INTO meta VALUES ('pseudonym_key', ?)", (KEY.hex(),))
    con.close()

    def fail(key: bytes) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        history.take_legacy_pseudonym_key(store, fail)
    assert history.take_legacy_pseudonym_key(store, lambda key: None) == KEY


@pytest.mark.parametrize("mode", [None, files.PRIVATE_MODE, 0o640])
def test_write_atomic_gives_the_file_its_mode(tmp_path: Path, mode: int | None) -> None:
    mask = os.umask(0o022)
    try:
        files.write_atomic(tmp_path / "f.csv", "a\n", mode=mode)
        files.write_atomic(tmp_path / "f.csv", "b\n", mode=mode)  # replacing keeps it too
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "f.csv").stat().st_mode) == (0o644 if mode is None else mode)
