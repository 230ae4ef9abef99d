"""`compute` and `validate --engine disk` give byte for byte what the pandas engine gives.

The disk engine spills checked message rows to per-shop bucket files and evaluates one bucket at
a time. The generated datasets are run through the core with small blocks and several buckets,
so that duplicates fall within and across blocks and each bucket holds many shops.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from conftest import MESSAGES_HEADER, WEEK, write_csv, write_jsonl
from cs_metrics import output
from cs_metrics.checkup import EXIT_STATUS, checkup, checkup_text
from cs_metrics.cli.app import app
from cs_metrics.engines import DISK_FROM_BYTES, prefers_disk
from cs_metrics.engines.disk import bucket_count, bucket_numbers, disk_engine
from cs_metrics.errors import InputError, StrictModeError
from cs_metrics.generate import GeneratorConfig, generate, write_tables
from cs_metrics.pipeline import METRICS_ONLY, Dataset, Evaluation, evaluate, load
from cs_metrics.policy import Policy
from paths import ROOT


def evaluate_on_disk(
    folder: Path,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None = None,
    shop_ids: list[str] | None = None,
    *,
    strict: bool = False,
    buckets: int | None = None,
    block_rows: int | None = None,
    workdir: Path | None = None,
) -> tuple[Dataset, Evaluation]:
    """`load` then `evaluate` (metrics only) on the disk engine, as `compute` runs them."""
    with disk_engine(workdir, buckets, block_rows) as engine:
        dataset = load(folder, policy, strict, METRICS_ONLY, engine=engine)
        evaluation = evaluate(
            dataset, start, end, policy, cutoff, shop_ids, chat_detail=False, keep_chats=False
        )
    return dataset, evaluation


def checkup_on_disk(
    folder: Path,
    policy: Policy,
    *,
    buckets: int | None = None,
    block_rows: int | None = None,
    workdir: Path | None = None,
    **checks: Any,
) -> dict[str, Any]:
    """`checkup` on the disk engine."""
    with disk_engine(workdir, buckets, block_rows) as engine:
        return checkup(folder, policy, engine=engine, **checks)


SAMPLE = ROOT / "sample_data"
SAMPLE_WEEKS = [("2026-11-09", "2026-11-15"), ("2026-11-16", "2026-11-22")]
BLOCK_ROWS = 97
BUCKETS = 5
runner = CliRunner()


def compute_args(data: Path, start: str, end: str, *extra: str) -> list[str]:
    return ["compute", "--data", str(data), "--start", start, "--end", end, *extra]


def both_engines(args: list[str]) -> tuple[Result, Result]:
    """`compute` with the pandas engine, then with the disk engine."""
    return (
        runner.invoke(app, [*args, "--engine", "pandas"]),
        runner.invoke(app, [*args, "--engine", "disk"]),
    )


def assert_same(pandas_run: Result, disk_run: Result, status: int = 0) -> None:
    """Same exit status, stdout and stderr (warnings included)."""
    assert pandas_run.exit_code == status, pandas_run.output
    assert disk_run.exit_code == status, (disk_run.exception, disk_run.output)
    assert disk_run.stdout == pandas_run.stdout
    assert disk_run.stderr == pandas_run.stderr


@pytest.mark.parametrize(
    ("week", "fmt"),
    [
        (SAMPLE_WEEKS[0], "json"),
        (SAMPLE_WEEKS[0], "csv"),
        (SAMPLE_WEEKS[0], "table"),
        (SAMPLE_WEEKS[1], "json"),
        (SAMPLE_WEEKS[1], "csv"),
        (SAMPLE_WEEKS[1], "table"),
    ],
    ids=lambda v: v if isinstance(v, str) else v[0],
)
def test_sample_data_output_is_identical(week: tuple[str, str], fmt: str) -> None:
    """On the bundled sample, both engines print the same bytes (both weeks, every format)."""
    assert_same(*both_engines(compute_args(SAMPLE, *week, "--format", fmt)))


# A generated multi-shop dataset made messy: shops interleaved so every block holds many shops;
# duplicates next to their first row and far from it (one sent later than any message, which
# must not become the cut-off, one sent earlier than any, which must not start the checkup's
# time range, and repeats that differ from their first row); bad rows;
# spreadsheet-mangled ids; shops seen only in bad rows, only in ratings, only in shops.

LATE = "2026-12-31T00:00:00Z"
SOON = "2026-01-01T00:00:00Z"


def messy_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """Shuffled text messages with duplicates, bad rows and mangled ids added."""
    m = messages.iloc[np.random.default_rng(5).permutation(len(messages))].reset_index(drop=True)
    one_shop = m.index[m["shop_id"] == m.loc[0, "shop_id"]]
    m.loc[one_shop[::40][:6], "message_id"] = "7.43800000000001E+18"  # collapsed into one id
    m.loc[m.index[::997], "conversation_id"] = m.loc[m.index[::997], "conversation_id"] + ".0"
    late = m.iloc[[1500]].copy()
    late["sent_at"] = LATE
    soon = m.iloc[[2500]].copy()
    soon["sent_at"] = SOON
    buyer = m.index[(m["sender_role"] == "buyer").to_numpy()]
    clashing = m.loc[buyer[:300:10]].copy()
    clashing["sent_at"] = (
        pd.to_datetime(clashing["sent_at"], utc=True, format="ISO8601") + pd.Timedelta(minutes=1)
    ).map(pd.Timestamp.isoformat)
    clashing["sender_role"] = "seller"
    extra = pd.DataFrame(
        {
            "shop_id": ["shop_9999", "", " shop_0777 ", "shop_0777", "shop_0777"],
            "conversation_id": ["c1", "c2", "c3", "c3", "c3"],
            "message_id": ["x1", "x2", "x3", "x4", "x5"],
            "sender_role": ["nobody", "buyer", "BUYER", "Agent", "seller"],
            "sent_at": ["2026-11-17T10:00:00Z"] * 4 + ["17/11/2026 10:00"],
        }
    )
    parts = [
        m.iloc[:3000],
        m.iloc[100:120],  # duplicates close to their first rows: within one block
        m.iloc[3000:],
        extra,
        m.iloc[:40],  # duplicates at the far end of the file: across blocks
        late,
        soon,
        clashing,
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module", params=["csv", "jsonl"])
def messy(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 30-shop folder with messy messages as CSV or JSON Lines."""
    folder = tmp_path_factory.mktemp(f"spill_{request.param}")
    config = GeneratorConfig(shops=30, start=dt.date(2026, 11, 9), days=15, messages=8000, seed=7)
    tables = generate(config)
    write_tables(tables, folder, "csv")
    text = pd.read_csv(folder / "messages.csv", dtype=str, keep_default_na=False)
    messages = messy_messages(text)
    (folder / "messages.csv").unlink()
    if request.param == "csv":
        messages.to_csv(folder / "messages.csv", index=False)
    else:
        messages.to_json(folder / "messages.jsonl", orient="records", lines=True)
    ratings = pd.read_csv(folder / "ratings.csv", dtype=str, keep_default_na=False)
    only_rated = pd.DataFrame(
        {"shop_id": ["shop_0888"], "conversation_id": ["r1"], "rating": ["5"]}
        | {"rated_at": ["2026-11-18T09:00:00Z"]}
    )
    pd.concat([ratings, only_rated]).to_csv(folder / "ratings.csv", index=False)
    with (folder / "shops.csv").open("a") as shops:
        shops.write("shop_0999,,SG,\n")
    return folder


def rendered(dataset: Dataset, evaluation: Evaluation, quarantine: Path) -> dict[str, Any]:
    """What `compute` prints and writes: JSON, table, warnings and quarantine files."""
    doc = output.result_document(dataset, evaluation)
    written = output.write_quarantine(dataset, quarantine)
    return {
        "json": output.to_json(doc),
        "table": output.to_table(doc),
        "warnings": list(dataset.warnings),
        "quarantine": {p.name: p.read_bytes() for p in written},
    }


def pandas_result(folder: Path, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The pandas engine's output, as `compute` makes it."""
    dataset = load(folder, Policy(), message_columns=METRICS_ONLY)
    evaluation = evaluate(dataset, *DAYS, Policy(), **options)
    return rendered(dataset, evaluation, tmp_path / "q-pandas")


def disk_result(folder: Path, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The disk engine's output with small blocks and several buckets."""
    dataset, evaluation = evaluate_on_disk(
        folder, *DAYS, Policy(), buckets=BUCKETS, block_rows=BLOCK_ROWS, **options
    )
    return rendered(dataset, evaluation, tmp_path / "q-disk")


DAYS = (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
EARLY = pd.Timestamp("2026-11-20T12:00:00+07:00")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cutoff": EARLY},
        {"shop_ids": ["shop_0003", "shop_0888", "shop_0999", "XX-404"]},
        {"shop_ids": ["shop_0003", "shop_0017"], "cutoff": EARLY},
    ],
    ids=["default_cutoff", "cutoff_given", "shops", "shops_and_cutoff"],
)
def test_generated_messy_dataset_is_identical(
    messy: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    """JSON, table, warnings and quarantine files match over many blocks and five buckets."""
    expected = pandas_result(messy, tmp_path, **options)
    assert disk_result(messy, tmp_path, **options) == expected
    assert expected["quarantine"]
    assert any("scientific notation" in w and "counted as dup" in w for w in expected["warnings"])


def test_the_messy_dataset_spreads_shops_and_duplicates(messy: Path) -> None:
    """The test data does what it is for: duplicates and shops in every bucket, cut-off early."""
    dataset = load(messy, Policy())
    assert dataset.counts["messages"].rows_duplicate >= 40 + 20 + 1 + 1 + 30
    assert dataset.latest_message is not None
    assert dataset.latest_message < pd.Timestamp(LATE)
    assert dataset.messages["sent_at"].min() > pd.Timestamp(SOON)
    assert "shop_9999" in dataset.shop_ids  # seen in a bad row only
    assert "shop_9999" not in set(dataset.messages["shop_id"])
    shops = pd.Series(dataset.messages["shop_id"].unique(), dtype="string")
    assert set(bucket_numbers(shops, BUCKETS).tolist()) == set(range(BUCKETS))


def test_generated_messy_dataset_through_the_command_line(messy: Path, tmp_path: Path) -> None:
    """`compute --engine disk --quarantine` prints and writes what the pandas engine does."""
    args = compute_args(messy, *WEEK, "--format", "json")
    pandas_q, disk_q = tmp_path / "q-pandas", tmp_path / "q-disk"
    pandas_run = runner.invoke(app, [*args, "--quarantine", str(pandas_q)])
    disk_run = runner.invoke(app, [*args, "--quarantine", str(disk_q), "--engine", "disk"])
    assert disk_run.exit_code == 0, (disk_run.exception, disk_run.output)
    assert disk_run.stdout == pandas_run.stdout
    assert disk_run.stderr.replace(str(disk_q), "Q") == pandas_run.stderr.replace(
        str(pandas_q), "Q"
    )
    names = sorted(p.name for p in pandas_q.iterdir())
    assert names == sorted(p.name for p in disk_q.iterdir())
    assert all((disk_q / n).read_bytes() == (pandas_q / n).read_bytes() for n in names)


def test_no_good_messages_is_unusable_alike(data: Path) -> None:
    """A messages table of bad rows only is unusable (SPEC 6a): exit 2, one line, alike."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,soon\nS2,c2,m2,robot?,1\n")
    first, second = both_engines(compute_args(data, *WEEK, "--format", "json"))
    assert (first.exit_code, second.exit_code) == (2, 2)
    assert first.stderr == second.stderr
    assert "no usable row among 2 message rows" in first.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_empty_messages_file_is_identical(data: Path, fmt: str) -> None:
    """A header-only CSV or an empty JSON Lines file: no rows, no cut-off, same output."""
    if fmt == "csv":
        write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    else:
        (data / "messages.jsonl").write_text("")
    assert_same(*both_engines(compute_args(data, *WEEK, "--format", "json")))


def test_strict_mode_fails_alike(data: Path, tmp_path: Path) -> None:
    """--strict with a bad row: exit 2, the same one-line error, nothing written."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,soon\n")
    quarantine = tmp_path / "q"
    args = compute_args(data, *WEEK, "--strict", "--quarantine", str(quarantine))
    pandas_run, disk_run = both_engines(args)
    assert_same(pandas_run, disk_run, status=2)
    assert disk_run.stdout == ""
    assert not quarantine.exists()


def test_a_csv_read_again_by_the_tolerant_reader_is_spilled_once(data: Path) -> None:
    """A row with an extra field after the first block: the reader starts over, no row twice."""
    rows = 200_100
    frame = pd.DataFrame(
        {
            "shop_id": "S" + pd.Series(np.arange(rows) % 7).astype(str),
            "conversation_id": "c" + pd.Series(np.arange(rows) // 4).astype(str),
            "message_id": "m" + pd.Series(np.arange(rows)).astype(str),
            "sender_role": np.where(np.arange(rows) % 2 == 0, "buyer", "seller"),
            "sent_at": "2026-11-17T10:00:00Z",
        }
    )
    frame.to_csv(data / "messages.csv", index=False)
    with (data / "messages.csv").open("a") as file:
        file.write("S1,c1,m1,buyer,2026-11-17T10:00:00Z,extra\n")
    pandas_run, disk_run = both_engines(compute_args(data, *WEEK, "--format", "json"))
    assert_same(pandas_run, disk_run)
    assert '"rows_read": 200101' in disk_run.stdout


def workdir(tmp_path: Path) -> Path:
    """An empty folder to hold the run's temporary folder."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_the_temporary_folder_is_removed_after_a_run(messy: Path, tmp_path: Path) -> None:
    """The bucket files live in a temporary folder that is gone once the run returns."""
    work = workdir(tmp_path)
    evaluate_on_disk(messy, *DAYS, Policy(), buckets=BUCKETS, block_rows=500, workdir=work)
    assert list(work.iterdir()) == []


def test_the_temporary_folder_is_removed_after_a_failing_run(data: Path, tmp_path: Path) -> None:
    """A JSON Lines file found to lack a column after every block was spilled: nothing left."""
    write_jsonl(
        data,
        "messages",
        [
            {
                "shop_id": f"S{i}",
                "conversation_id": "c",
                "message_id": f"m{i}",
                "sender_role": "buyer",
            }
            for i in range(50)
        ],
    )
    work = workdir(tmp_path)
    with pytest.raises(InputError, match="required column missing: sent_at"):
        evaluate_on_disk(data, *DAYS, Policy(), buckets=3, block_rows=7, workdir=work)
    assert list(work.iterdir()) == []


def test_the_temporary_folder_is_removed_after_strict_mode_fails(
    messy: Path, tmp_path: Path
) -> None:
    """--strict stops the run after the bucket files were written: they are removed."""
    work = workdir(tmp_path)
    with pytest.raises(StrictModeError):
        evaluate_on_disk(messy, *DAYS, Policy(), strict=True, buckets=BUCKETS, workdir=work)
    assert list(work.iterdir()) == []


def test_auto_picks_disk_only_for_large_csv_or_json_lines(tmp_path: Path) -> None:
    """`--engine auto` uses the disk engine from DISK_FROM_BYTES of CSV or JSON Lines."""
    for name, size, expected in [
        ("messages.csv", DISK_FROM_BYTES - 1, False),
        ("messages.csv", DISK_FROM_BYTES, True),
        ("messages.jsonl", DISK_FROM_BYTES, True),
        ("messages.parquet", DISK_FROM_BYTES, False),
    ]:
        folder = tmp_path / f"{name}-{size}"
        folder.mkdir()
        with (folder / name).open("wb") as file:
            file.truncate(size)  # a sparse file: only its size matters here
        assert prefers_disk(folder) is expected, (name, size)


def test_bucket_count_grows_with_the_file(tmp_path: Path) -> None:
    """One bucket for a small file; more as the file grows."""
    path = tmp_path / "messages.csv"
    path.write_text("x")
    assert bucket_count(path) == 1
    with path.open("wb") as file:
        file.truncate(10 * DISK_FROM_BYTES)
    assert bucket_count(path) > 1


def test_a_shop_always_falls_in_the_same_bucket() -> None:
    """The bucket of a shop_id depends only on the shop_id (not on the block it came in)."""
    first = bucket_numbers(pd.Series(["a", "b", "c", "a"], dtype="string"), 7)
    second = bucket_numbers(pd.Series(["c", "zz", "a"], dtype="string"), 7)
    assert first[0] == first[3] == second[2]
    assert first[2] == second[0]


def test_the_default_cutoff_is_the_latest_message_of_all_buckets(
    data: Path, tmp_path: Path
) -> None:
    """A quiet shop's unanswered chat is late by the cut-off of all shops, not of its bucket."""
    quiet = "quiet"
    # A busy shop in the other of two buckets.
    names = pd.Series([f"busy{i}" for i in range(20)])
    busy = names[bucket_numbers(names, 2) != bucket_numbers(pd.Series([quiet]), 2)[0]].iloc[0]
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\n"
        f"{quiet},q1,m1,buyer,2026-11-17T10:00:00Z\n"
        f"{busy},b1,m1,buyer,2026-11-17T09:00:00Z\n"
        f"{busy},b1,m2,seller,2026-11-17T09:05:00Z\n"
        f"{busy},b2,m3,buyer,2026-11-22T10:00:00Z\n",
    )
    expected = pandas_result(data, tmp_path)
    assert '"chats_unresponded": 1' in expected["json"]
    dataset, evaluation = evaluate_on_disk(data, *DAYS, Policy(), buckets=2)
    assert rendered(dataset, evaluation, tmp_path / "q-disk") == expected


# `validate --engine disk`: the checkup from pass 1 and a summary sweep of the buckets ---------


def checkup_outputs(report: dict[str, Any]) -> tuple[str, str, int]:
    """What `validate` prints (JSON, then text) and its exit status."""
    return output.to_json(report), checkup_text(report), EXIT_STATUS[report["status"]]


def validate_both(data: Path, *extra: str) -> tuple[Result, Result]:
    """`validate` with the pandas engine, then with the disk engine."""
    args = ["validate", "--data", str(data), *extra]
    return (
        runner.invoke(app, [*args, "--engine", "pandas"]),
        runner.invoke(app, [*args, "--engine", "disk"]),
    )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_validate_sample_data_is_identical(fmt: str) -> None:
    """On the bundled sample, `validate` prints the same bytes and exits alike on both engines."""
    assert_same(*validate_both(SAMPLE, "--format", fmt), status=1)


def test_checkup_of_the_sample_is_identical_over_several_buckets(tmp_path: Path) -> None:
    """The sample's checkup, its messages in small pieces over five buckets."""
    expected = checkup_outputs(checkup(SAMPLE, Policy()))
    report = checkup_on_disk(SAMPLE, Policy(), buckets=BUCKETS, block_rows=997)
    assert checkup_outputs(report) == expected


@pytest.mark.parametrize(
    "options", [{}, {"reject_mangled_ids": True}], ids=["default", "reject_mangled_ids"]
)
def test_checkup_of_the_messy_dataset_is_identical(
    messy: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    """Counts, reasons, warnings, time range and shops match over many blocks and five buckets.

    The range covers the used messages only: a duplicate sent before (and one after) every
    message, and bad rows, are not in it; nor are the shops seen only in bad rows.
    """
    expected = checkup_outputs(checkup(messy, Policy(), **options))
    work = workdir(tmp_path)
    report = checkup_on_disk(
        messy, Policy(), buckets=BUCKETS, block_rows=BLOCK_ROWS, workdir=work, **options
    )
    assert checkup_outputs(report) == expected
    assert list(work.iterdir()) == []
    messages = report["tables"]["messages"]
    assert messages["rows_duplicate"] >= 40 + 20 + 30
    assert messages["quarantined_by_reason"]
    assert SOON < messages["time_from"] < messages["time_to"] < LATE
    assert 30 <= messages["shops_found"] < report["shops_found"]


def test_the_disk_load_holds_no_message(messy: Path) -> None:
    """The disk engine keeps no good message in memory: the buckets stand for them."""
    with disk_engine(buckets=BUCKETS, block_rows=BLOCK_ROWS) as engine:
        dataset = load(messy, Policy(), message_columns=METRICS_ONLY, engine=engine)
        assert len(dataset.messages) == 0
        assert dataset.message_groups.held() is None
        assert len(dataset.message_groups.map(len)) == BUCKETS
    assert dataset.counts == load(messy, Policy(), message_columns=METRICS_ONLY).counts


def test_validate_the_messy_dataset_through_the_command_line(messy: Path) -> None:
    """`validate --engine disk` prints (text and JSON) and exits as `--engine pandas` does."""
    assert_same(*validate_both(messy), status=1)
    assert_same(*validate_both(messy, "--format", "json"), status=1)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_validate_empty_messages_file_is_identical(data: Path, fmt: str) -> None:
    """A header-only CSV or an empty JSON Lines file: no rows, no range, same output."""
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    if fmt == "csv":
        write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    else:
        (data / "messages.jsonl").write_text("")
    pandas_run, disk_run = validate_both(data, "--format", "json")
    assert_same(pandas_run, disk_run, status=0)
    assert '"time_from": null' in disk_run.stdout
    assert_same(*validate_both(data), status=0)


def test_validate_all_bad_messages_is_unusable_alike(data: Path) -> None:
    """Every message row bad: the folder is unusable (SPEC 6a), exit 2 alike naming why."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,soon\nS2,c2,m2,robot?,1\n")
    pandas_run, disk_run = validate_both(data, "--format", "json")
    assert_same(pandas_run, disk_run, status=2)
    assert "no usable row among 2 message rows" in disk_run.stderr
    assert_same(*validate_both(data), status=2)


def test_validate_missing_column_fails_alike(data: Path) -> None:
    """A messages file without sent_at: exit 2 and the same one-line error on both engines."""
    write_csv(data, "messages", "shop_id,conversation_id,message_id,sender_role\nS1,c1,m1,buyer\n")
    pandas_run, disk_run = validate_both(data)
    assert_same(pandas_run, disk_run, status=2)
    assert "required column missing: sent_at" in disk_run.stderr


def test_the_checkup_temporary_folder_is_removed_after_a_failing_run(
    data: Path, tmp_path: Path
) -> None:
    """A JSON Lines file found to lack a column after blocks were spilled: nothing left."""
    write_jsonl(
        data,
        "messages",
        [
            {"shop_id": f"S{i}", "conversation_id": "c", "message_id": f"m{i}"}
            | {"sender_role": "buyer"}
            for i in range(50)
        ],
    )
    work = workdir(tmp_path)
    with pytest.raises(InputError, match="required column missing: sent_at"):
        checkup_on_disk(data, Policy(), buckets=3, block_rows=7, workdir=work)
    assert list(work.iterdir()) == []


def test_spill_folders_of_runs_that_are_gone_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from cs_metrics.engines.disk import SPILL_PREFIX, disk_engine

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{SPILL_PREFIX}{gone.stdout.strip()}-abc123"
    (dead / "bucket-0").mkdir(parents=True)
    (dead / "bucket-0" / "part.parquet").write_bytes(b"left by a killed run")
    alive = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-def456"  # a run still going (this one)
    alive.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    with disk_engine(tmp_path) as engine:
        assert engine is not None
        assert not dead.exists()
        assert alive.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "not-ours"]


def test_settled_buckets_run_each_step_once_and_keep_their_rows(tmp_path: Path) -> None:
    """After `settled`, the buckets hold the steps' results (their own column types, a text id's
    code in one bucket and a number in another): maps read them without running a step again.
    The buckets' own files stay as they were; only the added column is written beside them."""
    from cs_metrics.engines.disk import BucketFiles, BucketGroups

    rows = pd.DataFrame(
        {
            "shop_id": pd.Series(["a", "b", "a", "c"], dtype="string[pyarrow]"),
            "conversation_id": pd.Series(["7", "x1", "8", "9"], dtype="string[pyarrow]"),
            "_row": np.arange(1, 5, dtype="int64"),
        }
    )
    store = BucketFiles(tmp_path, 3)
    with store:
        store.append(rows)
    own_files = {b: store.path(b).read_bytes() for b in store.filled()}
    dtypes = {str(c): d for c, d in rows.dtypes.items()}
    calls: list[int] = []

    def keyed(group: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(group))
        numbers = pd.to_numeric(group["conversation_id"], errors="coerce")
        key = numbers.astype("uint64") if numbers.notna().all() else group["_row"] * 10
        return group.assign(key=key.to_numpy())

    groups = BucketGroups(store, dtypes, rows.iloc[:0]).transform(keyed)
    before = sorted(groups.map(lambda g: g.to_dict("records")), key=str)
    calls.clear()
    settled = groups.settled()
    assert sum(calls) == len(rows)  # each row through the step once
    calls.clear()
    after = sorted(settled.map(lambda g: g.to_dict("records")), key=str)
    assert after == before and not calls
    assert sorted(str(g["key"].dtype) for g in settled.map(lambda g: g)) == ["int64", "uint64"]
    assert {b: store.path(b).read_bytes() for b in store.filled()} == own_files
    assert settled.added is not None
    filled = len(store.filled())
    assert [list(settled.added.read(b).columns) for b in store.filled()] == [["key"]] * filled
    keys = settled.map(lambda g: g, columns=("key",))
    assert [list(g.columns) for g in keys] == [["key"]] * filled


def test_a_settled_step_that_moves_rows_is_refused(tmp_path: Path) -> None:
    """Settling writes only the added columns, beside rows that must stay where they are."""
    from cs_metrics.engines.disk import BucketFiles, BucketGroups
    from cs_metrics.readers import ROW

    rows = pd.DataFrame(
        {"shop_id": pd.Series(["a", "a"], dtype="string[pyarrow]"), ROW: np.array([1, 2])}
    )
    store = BucketFiles(tmp_path, 1)
    with store:
        store.append(rows)
    groups = BucketGroups(store, {str(c): d for c, d in rows.dtypes.items()}, rows.iloc[:0])
    reversed_rows = groups.transform(lambda g: g.iloc[::-1].assign(key=1), needs=(ROW,))
    with pytest.raises(RuntimeError, match="moved the rows"):
        reversed_rows.settled()


def test_buckets_are_worked_in_bucket_order_on_threads(tmp_path: Path) -> None:
    """`map` on two threads gives each bucket's result in bucket order; an error in a bucket is
    raised to the caller."""
    from cs_metrics.engines.disk import BucketFiles, BucketGroups

    shops = [f"s{i}" for i in range(40)]
    rows = pd.DataFrame(
        {"shop_id": pd.Series(shops, dtype="string[pyarrow]"), "_row": np.arange(40)}
    )
    store = BucketFiles(tmp_path, 16)
    with store:
        store.append(rows)
    groups = BucketGroups(store, {str(c): d for c, d in rows.dtypes.items()}, rows.iloc[:0])
    found = groups.map(lambda g: sorted(g["shop_id"].tolist()))
    expected = [sorted(store.read(b)["shop_id"].tolist()) for b in store.filled()]
    assert found == expected and len(found) > 2

    def fails_at_first(group: pd.DataFrame) -> int:
        if "s0" in set(group["shop_id"]):
            raise ValueError("bad bucket")
        return len(group)

    with pytest.raises(ValueError, match="bad bucket"):
        groups.map(fails_at_first)


def test_a_map_asking_for_some_columns_reads_those_and_what_the_steps_need(
    tmp_path: Path,
) -> None:
    """`map` with `columns` gives each bucket's rows with those columns (the ones it has) and
    the ones a step needs, as a map of all columns has them; `None` gives every column."""
    from cs_metrics.engines.disk import BucketFiles, BucketGroups

    rows = pd.DataFrame(
        {
            "shop_id": pd.Series(["a", "b", "a", "c", "b"], dtype="string[pyarrow]"),
            "content": pd.Series(["hi", None, "yes", "no", "ok"], dtype="string[pyarrow]"),
            "sent_at": pd.to_datetime(["2026-11-17T10:00:00Z"] * 5, utc=True),
            "_drop": np.array([False, True, False, False, True]),
        }
    )
    store = BucketFiles(tmp_path, 2)
    with store:
        store.append(rows)
    dtypes = {str(c): d for c, d in rows.dtypes.items()}

    def without_dropped(group: pd.DataFrame) -> pd.DataFrame:
        return group.loc[~group["_drop"].to_numpy(bool)].drop(columns="_drop")

    groups = BucketGroups(store, dtypes, rows.iloc[:0]).transform(without_dropped, needs=("_drop",))
    whole = groups.map(lambda g: g)
    some = groups.map(lambda g: g, columns=("sent_at", "shop_id", "not_there"))
    assert [list(g.columns) for g in whole] == [["shop_id", "content", "sent_at"]] * len(whole)
    assert [list(g.columns) for g in some] == [["shop_id", "sent_at"]] * len(whole)
    for all_columns, two in zip(whole, some, strict=True):
        pd.testing.assert_frame_equal(all_columns[["shop_id", "sent_at"]], two)
    assert sum(len(g) for g in some) == 3
    assert list(store.read(store.filled()[0], ("content",)).columns) == ["content"]


def test_blocks_are_checked_on_threads_and_written_in_file_order(
    messy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill checks blocks on worker threads; their good rows go to the bucket files from
    this thread, block after block in file order, so each bucket's rows keep their order."""
    import threading

    from cs_metrics.engines import disk
    from cs_metrics.readers import ROW, jsonl
    from cs_metrics.readers import csv as csv_reader

    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 20_000)
    monkeypatch.setattr(disk, "FLAT_CSV_BLOCK_BYTES", 20_000)
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", 40_000)
    here = threading.get_ident()
    arranged_on: set[int] = set()
    written: list[tuple[int, np.ndarray]] = []
    real_arranged, real_write = disk.BucketFiles.arranged, disk.BucketFiles.write

    def arranged(self: disk.BucketFiles, good: pd.DataFrame) -> disk.BucketRows | None:
        arranged_on.add(threading.get_ident())
        return real_arranged(self, good)

    def write(self: disk.BucketFiles, rows: disk.BucketRows | None) -> None:
        if rows is not None:
            written.append((threading.get_ident(), np.sort(rows.table[ROW].to_numpy())))
        real_write(self, rows)

    monkeypatch.setattr(disk.BucketFiles, "arranged", arranged)
    monkeypatch.setattr(disk.BucketFiles, "write", write)
    with disk_engine(buckets=4) as engine:
        dataset = load(messy, Policy(), engine=engine)
    assert len(written) > 3
    assert {thread for thread, _ in written} == {here}
    assert here not in arranged_on
    starts = [rows[0] for _, rows in written]
    ends = [rows[-1] for _, rows in written]
    assert all(a > b for a, b in zip(starts[1:], ends[:-1], strict=True))
    assert dataset.summary is not None
