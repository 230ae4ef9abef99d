"""CSV quotes that never close or hold whole rows: exit 2 naming the line, on every reader."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from cs_metrics.errors import InputError
from cs_metrics.readers import ROW, quotes, read_table
from cs_metrics.readers import csv as csv_reader

HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at,content"
T = "2026-11-17T10:00:00Z"
CHAINS = {
    "arrow": ("arrow", "pandas", "tolerant"),
    "pandas": ("pandas", "tolerant"),
    "tolerant": ("tolerant",),
}


def row(number: int, content: str = "hi") -> str:
    return f"S,c{number},m{number},buyer,{T},{content}\n"


STRAY = {
    # name: (file text, line named, what the message says)
    "closed_by_a_later_quote": (
        HEADER + "\n" + row(1) + row(2, '"oops') + row(3) + row(4, 'he said "hi"') + row(5),
        3,
        "its value runs over whole rows (through line 5)",
    ),
    "never_closed_mid_file": (HEADER + "\n" + row(1) + 'S,"c2,m2\n' + row(3) + row(4), 3, "never"),
    "never_closed_on_the_last_line": (HEADER + "\n" + row(1) + row(2, '"oops'), 3, "never"),
    "never_closed_without_a_last_line_break": (
        HEADER + "\n" + row(1) + row(2, '"oops').rstrip("\n"),
        3,
        "never",
    ),
    "after_quoted_line_breaks_and_blank_lines": (
        HEADER + "\n" + row(1, '"a\nb\r\nc"') + "\n\n" + row(2, '"oops') + row(3) + row(4),
        7,
        "never",
    ),
    "in_a_column_not_read": (
        HEADER
        + ",notes\n"
        + row(1).rstrip("\n")
        + ",x\n"
        + row(2).rstrip("\n")
        + ',"oops\n'
        + row(3).rstrip("\n")
        + ",x\n"
        + row(4).rstrip("\n")
        + ',"y"\n',
        3,
        "runs over whole rows",
    ),
}


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.parametrize("case", STRAY)
def test_a_stray_quote_is_an_error_naming_the_line_it_opens_on(
    case: str, chain: str, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines count the header as line 1; every reader gives the same one line."""
    text, line, says = STRAY[case]
    path = data / "messages.csv"
    path.write_bytes(text.encode())
    monkeypatch.setattr(csv_reader, "CSV_READERS", CHAINS[chain])
    with pytest.raises(InputError) as err:
        read_table("messages", path)
    message = str(err.value)
    # Every case puts the stray quote in the second data row.
    assert message.startswith(f"{path} line {line} (data row 2): a quote opens here and ")
    assert says in message
    assert "\n" not in message


LEGIT = {
    "a_line_break": row(1, '"line one\nline two"') + row(2),
    "crlf_and_a_comma": row(1, '"one, two\r\nthree"') + row(2),
    "a_pasted_short_line": row(1, '"a,b\nc,d,e"') + row(2),
    "escaped_quotes": row(1, '"say ""hi""\nbye"') + row(2),
    "a_quote_inside_a_value": row(1, 'ab"c') + row(2),
    "the_last_value_ends_in_a_break": row(1) + row(2, '"bye\n"'),
}


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.parametrize("case", LEGIT)
def test_quoted_line_breaks_still_read_as_one_value(
    case: str, chain: str, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data / "messages.csv"
    path.write_bytes(f"{HEADER}\n{LEGIT[case]}".encode())
    monkeypatch.setattr(csv_reader, "CSV_READERS", CHAINS[chain])
    frame = read_table("messages", path).frame
    assert list(frame["message_id"]) == ["m1", "m2"]


@pytest.mark.parametrize("case", LEGIT)
def test_rows_read_equal_the_lines_less_the_quoted_line_breaks(case: str, data: Path) -> None:
    """An independent count: every line of the file is the header, a row, or a line break
    inside a quoted value (these files have no blank line)."""
    raw = f"{HEADER}\n{LEGIT[case]}"
    path = data / "messages.csv"
    path.write_bytes(raw.encode())
    frame = read_table("messages", path).frame
    lines = len(re.findall(r"\r\n|\r|\n", raw))
    quoted_breaks = sum(len(re.findall(r"\r\n|\r|\n", v)) for v in frame["content"])
    assert len(frame) == lines - 1 - quoted_breaks
    assert list(frame[ROW]) == [1, 2]


def issue_case(folder: Path) -> Path:
    """100,000 rows; row 6's content opens a quote that never closes (issue #15)."""
    folder.mkdir()
    rows = [row(n, '"oops' if n == 6 else f"hello {n}") for n in range(1, 100_001)]
    (folder / "messages.csv").write_text(HEADER + "\n" + "".join(rows))
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["compute", "--start", "2026-11-16", "--end", "2026-11-22"],
        ["compute", "--start", "2026-11-16", "--end", "2026-11-22", "--engine", "disk"],
        ["weekly", "--out", "OUT", "--as-of", "2026-11-23"],
    ],
    ids=["validate", "compute", "compute_disk", "weekly"],
)
def test_the_issue_case_exits_2_naming_line_7(command: list[str], tmp_path: Path) -> None:
    data = issue_case(tmp_path / "d")
    out = tmp_path / "out"
    options = [str(out) if option == "OUT" else option for option in command[1:]]
    result = CliRunner().invoke(app, [command[0], "--data", str(data), *options])
    assert result.exit_code == 2, result.output
    assert not out.exists()  # nothing written
    assert result.stderr.strip().splitlines() == [
        f"cs-metrics: error: {data / 'messages.csv'} line 7 (data row 6): a quote opens here "
        "and never closes, so every line after it would be one value; close the quote (or "
        "remove it) and export again"
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.text(alphabet=st.sampled_from(["a", "\n", "\r", ",", "é"]))),
        max_size=12,
    ),
    st.lists(st.integers(0, 12), max_size=3),
    st.integers(0, 2),
    st.sampled_from([pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]),
)
def test_rows_with_line_breaks_are_those_arrow_finds(rows, cuts, skip, kind):
    """Values read as bytes (chunks sliced from one buffer, empty values, missing ones that keep
    their bytes): the values with a line break are those Arrow's substring search finds."""
    present = [p for p, _ in rows]
    full = pa.array([t for _, t in rows], pa.large_string()).cast(kind)
    validity = pa.py_buffer(np.packbits(np.array(present, dtype=bool), bitorder="little"))
    array = pa.Array.from_buffers(kind, len(full), [validity, *full.buffers()[1:]])
    array = array.slice(min(skip, len(array)))
    bounds = sorted({0, len(array), *(min(c, len(array)) for c in cuts)})
    chunked = pa.chunked_array([array.slice(a, b - a) for a, b in itertools.pairwise(bounds)], kind)
    values = array.cast(pa.large_binary())
    broken = pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))
    expected = np.flatnonzero(broken.fill_null(False).to_numpy(zero_copy_only=False))
    assert quotes._rows_with_line_breaks(chunked).tolist() == expected.tolist()
