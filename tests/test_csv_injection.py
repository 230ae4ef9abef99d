"""Spreadsheet-safe CSVs: no text cell a spreadsheet would run as a formula, in any CSV written
for people; numbers untouched; `--raw-csv` writes them as they are; the report re-renders the
same from neutralised files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cs_metrics import files
from cs_metrics.cli.app import app

PREFIXES = ["=", "+", "-", "@", "\t", "\r"]
PREFIX_IDS = ["equals", "plus", "minus", "at", "tab", "cr"]
DATA_PREFIXES = PREFIXES[:4]
"""A data folder's values are trimmed (SPEC 1): tab and CR cannot start one there."""
AS_OF = "2026-11-23"
WEEK = ("2026-11-16", "2026-11-22")
runner = CliRunner()


# ----------------------------------------------------------------------------- the function


@pytest.mark.parametrize("prefix", PREFIXES, ids=PREFIX_IDS)
@pytest.mark.parametrize("dtype", ["object", "string", "category"])
def test_a_formula_cell_gets_one_quote(prefix: str, dtype: str) -> None:
    frame = pd.DataFrame({"t": pd.Series([f"{prefix}1+1", "ok", None], dtype=dtype)})
    safe = files.spreadsheet_safe(frame)
    assert safe["t"].tolist()[:2] == [f"'{prefix}1+1", "ok"]
    assert type(safe["t"].dtype) is type(frame["t"].dtype)
    text = files.csv_text(frame)
    assert text.startswith((f"t\n'{prefix}1+1", f"t\n\"'{prefix}1+1"))
    assert files.csv_text(frame, raw=True) == files.csv_text(frame.astype(object), raw=True)
    assert f"'{prefix}" not in files.csv_text(frame, raw=True)


def test_numbers_are_not_formulas() -> None:
    """A negative number in a numeric column is written as the number."""
    frame = pd.DataFrame(
        {
            "f": [-1.5, 2.0],
            "i": np.array([-3, 4]),
            "n": pd.array([-5, None], dtype="Int64"),
            "mixed": pd.array([-7, "-x"], dtype=object),
        }
    )
    assert files.csv_text(frame) == "f,i,n,mixed\n-1.5,-3,-5,-7\n2.0,4,,'-x\n"


@given(st.lists(st.text(alphabet="'=+-@\t\rab1", max_size=5), min_size=1, max_size=8))
def test_reading_back_undoes_the_quotes_exactly(values: list[str]) -> None:
    """Texts that already start with quotes before a formula get one more, so the quote taken
    off on reading gives back every original text, `'=x` included."""
    frame = pd.DataFrame({"t": pd.Series(values, dtype="string")})
    safe = files.spreadsheet_safe(frame)
    assert not safe["t"].str.match(r"[=+\-@\t\r]").any()
    pd.testing.assert_frame_equal(files.spreadsheet_original(safe), frame)


# ----------------------------------------------------------------------------- every output


def formula_folder(folder: Path, prefix: str) -> Path:
    """One shop whose every id, name and message text starts with `prefix`."""
    folder.mkdir(parents=True)
    p = prefix
    messages = pd.DataFrame(
        {
            "shop_id": [f"{p}1+1"] * 2,
            "conversation_id": [f"{p}conv"] * 2,
            "message_id": [f"{p}m1", f"{p}m2"],
            "sender_role": ["buyer", "seller"],
            "sent_at": ["2026-11-17T09:00:00Z", "2026-11-17T09:05:00Z"],
            "sender_id": [f"{p}buyer", f"{p}agent"],
            "content": [f"{p}SUM(A1) hi", f"{p}HYPERLINK(x) add us on WhatsApp"],
        }
    )
    # And one bad row, set aside in the quarantine file with its values.
    bad = {**messages.iloc[0].to_dict(), "message_id": f"{p}m3", "sent_at": f"{p}soon"}
    messages = pd.concat([messages, pd.DataFrame([bad])], ignore_index=True)
    messages.to_csv(folder / "messages.csv", index=False)
    pd.DataFrame(
        {"shop_id": [f"{p}1+1"], "name": [f"{p}cmd|calc"], "market": ["SG"], "timezone": ["UTC"]}
    ).to_csv(folder / "shops.csv", index=False)
    pd.DataFrame(
        {
            "shop_id": [f"{p}1+1"],
            "conversation_id": [f"{p}conv"],
            "rating": [1],
            "rated_at": ["2026-11-17T09:03:00Z"],
        }
    ).to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame(
        {"shop_id": [f"{p}1+1"], "start": ["2026-11-21T00:00:00Z"], "end": ["2026-11-22T00:00:00Z"]}
    ).to_csv(folder / "holiday_mode.csv", index=False)
    return folder


def invoke(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code in (0, 4), result.stderr  # 4: the shop needs a look
    return result.stdout


def csv_outputs(tmp: Path, prefix: str, raw: bool) -> dict[str, str]:
    """Every CSV the commands write for a folder of formula-like values."""
    data = formula_folder(tmp / "data", prefix)
    flag = ["--raw-csv"] if raw else []
    out = tmp / "out"
    invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF, *flag)
    week = out / AS_OF
    texts = {
        name: (week / name).read_text(encoding="utf-8")
        for name in (
            "metrics.csv",
            "chats.csv",
            "ratings.csv",
            "holiday_mode.csv",
            "findings.csv",
            "quarantine/messages.csv",
        )
    }
    window = ["--start", WEEK[0], "--end", WEEK[1]]
    texts["compute --format csv"] = invoke(
        "compute", "--data", data, *window, "--format", "csv", *flag,
        "--quarantine", tmp / "q",
    )  # fmt: skip
    texts["compute --quarantine"] = (tmp / "q" / "messages.csv").read_text(encoding="utf-8")
    invoke("chats", "--data", data, *window, "--output", tmp / "x.csv", *flag)
    texts["chats --output x.csv"] = (tmp / "x.csv").read_text(encoding="utf-8")
    texts["scan --format csv"] = invoke("scan", "--data", data, "--format", "csv", *flag)
    return texts


OUTPUTS = [
    "quarantine/messages.csv",
    "compute --quarantine",
    "metrics.csv",
    "chats.csv",
    "ratings.csv",
    "holiday_mode.csv",
    "findings.csv",
    "compute --format csv",
    "chats --output x.csv",
    "scan --format csv",
]


@pytest.fixture(scope="module", params=DATA_PREFIXES, ids=PREFIX_IDS[:4])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(prefix, safe outputs, raw outputs) for one formula prefix."""
    prefix = request.param
    safe = csv_outputs(tmp_path_factory.mktemp("safe"), prefix, raw=False)
    raw = csv_outputs(tmp_path_factory.mktemp("raw"), prefix, raw=True)
    return prefix, safe, raw


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", OUTPUTS)
def test_no_csv_for_people_holds_a_formula(written, name: str) -> None:
    prefix, safe, _ = written
    found = cells(safe[name])
    formulas = [c for c in found if c[:1] in PREFIXES and not is_number(c)]
    assert formulas == []
    assert f"'{prefix}1+1" in found  # the shop id, neutralised (not dropped)


@pytest.mark.parametrize("name", OUTPUTS)
def test_raw_csv_writes_the_values_as_they_are(written, name: str) -> None:
    prefix, _, raw = written
    found = cells(raw[name])
    assert f"{prefix}1+1" in found
    assert not any(c.startswith(f"'{prefix}") for c in found)


@pytest.mark.parametrize("shop_id", ["=1+1", "-5", "+1", "@SUM(1)", "'=x"])
def test_the_report_re_renders_the_same_from_neutralised_files(
    tmp_path: Path, shop_id: str
) -> None:
    """`report` reads the stored CSVs back: the quotes come off, the report is identical."""
    data = formula_folder(tmp_path / "data", "")
    for name in ("messages", "shops", "ratings", "holiday_mode"):
        path = data / f"{name}.csv"
        frame = pd.read_csv(path, dtype=str)
        frame["shop_id"] = shop_id
        frame.to_csv(path, index=False)
    out = tmp_path / "out"
    invoke("weekly", "--data", data, "--out", out, "--as-of", AS_OF)
    report = out / AS_OF / "report.html"
    first = report.read_bytes()
    assert "'" + shop_id in cells((out / AS_OF / "chats.csv").read_text(encoding="utf-8"))
    report.unlink()
    invoke("report", "--out", out, "--as-of", AS_OF)
    assert report.read_bytes() == first
