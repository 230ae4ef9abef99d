"""`compute --engine dask` gives byte for byte what the pandas engine gives (docs/dask.md).

The Dask runs use a real local cluster (two worker processes, one module-scoped cluster reached
through `--scheduler`), except one test of the default cluster that `compute` starts itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from conftest import MESSAGES_HEADER, WEEK, write_csv
from cs_metrics.cli.app import app
from paths import ROOT

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

SAMPLE = ROOT / "sample_data"
SAMPLE_WEEKS = [("2026-11-09", "2026-11-15"), ("2026-11-16", "2026-11-22")]
runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a local Dask cluster shared by this module's tests."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        yield cluster.scheduler_address


def compute_args(data: Path, start: str, end: str, *extra: str) -> list[str]:
    return ["compute", "--data", str(data), "--start", start, "--end", end, *extra]


def both_engines(args: list[str], scheduler: str, partitions: int = 4) -> tuple[Result, Result]:
    """`compute` with the pandas engine, then with Dask on the shared cluster."""
    pandas_run = runner.invoke(app, args)
    dask_args = ["--engine", "dask", "--scheduler", scheduler, "--partitions", str(partitions)]
    dask_run = runner.invoke(app, [*args, *dask_args])
    return pandas_run, dask_run


def assert_same(pandas_run: Result, dask_run: Result) -> None:
    """Same exit status, stdout and stderr (warnings included)."""
    assert pandas_run.exit_code == 0, pandas_run.output
    assert dask_run.exit_code == 0, (dask_run.exception, dask_run.output)
    assert dask_run.stdout == pandas_run.stdout
    assert dask_run.stderr == pandas_run.stderr


@pytest.mark.parametrize(
    ("week", "fmt"),
    [
        (SAMPLE_WEEKS[0], "json"),
        (SAMPLE_WEEKS[1], "json"),
        (SAMPLE_WEEKS[1], "csv"),
        (SAMPLE_WEEKS[1], "table"),
    ],
    ids=["week_11_09_json", "week_11_16_json", "week_11_16_csv", "week_11_16_table"],
)
def test_sample_data_output_is_identical(scheduler: str, week: tuple[str, str], fmt: str) -> None:
    """On the bundled sample, both engines print the same bytes (both weeks, every format)."""
    assert_same(*both_engines(compute_args(SAMPLE, *week, "--format", fmt), scheduler))


def test_default_local_cluster_gives_the_same_json() -> None:
    """Without --scheduler, compute starts (and stops) its own local cluster."""
    args = compute_args(SAMPLE, *SAMPLE_WEEKS[1], "--format", "json")
    assert_same(runner.invoke(app, args), runner.invoke(app, [*args, "--engine", "dask"]))


# A generated multi-shop dataset made messy: rows out of order, so every shop is spread over
# every chunk; duplicates within and across chunks (one far later than any message, which must
# not become the cut-off); bad rows; spreadsheet-mangled ids; shops seen only in some tables.

LATE = pd.Timestamp("2026-12-31T00:00:00Z")


def generated(tmp_path: Path, fmt: str) -> Path:
    """`cs-metrics generate`: 50 shops, about 30,000 messages (parquet: typed timestamps)."""
    folder = tmp_path / f"generated-{fmt}"
    args = ["generate", "--out", str(folder), "--shops", "50", "--messages", "30000"]
    bad = ["--bad-rows"] if fmt == "csv" else ["--no-bad-rows"]
    result = runner.invoke(app, [*args, "--format", fmt, *bad])
    assert result.exit_code == 0, result.output
    return folder


def read_table(folder: Path, name: str, fmt: str) -> pd.DataFrame:
    path = folder / f"{name}.{fmt}"
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path)


def write_table(frame: pd.DataFrame, folder: Path, name: str, fmt: str) -> None:
    path = folder / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def messy_messages(messages: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Shuffled messages with duplicates, bad rows and mangled ids added."""
    rng = np.random.default_rng(11)
    m = messages.iloc[rng.permutation(len(messages))].reset_index(drop=True)
    one_shop = m.index[m["shop_id"] == m.loc[0, "shop_id"]]
    # Six rows of one shop, far apart in the file, whose ids a spreadsheet collapsed into one.
    m.loc[one_shop[::40][:6], "message_id"] = "7.43800000000001E+18"
    m.loc[m.index[::997], "conversation_id"] = m.loc[m.index[::997], "conversation_id"] + ".0"
    # A repeat far later than any message: it must not become the cut-off.
    late = m.iloc[[2000]].copy()
    late["sent_at"] = LATE if fmt == "parquet" else LATE.isoformat()
    # Repeats that differ from the first row (a reply a minute later): counted, they would
    # close chats; only dropping them as duplicates gives the pandas answer.
    sent_at = pd.to_datetime(m["sent_at"], utc=True, errors="coerce", format="ISO8601")
    buyer = m.index[(m["sender_role"] == "buyer").to_numpy() & sent_at.notna().to_numpy()]
    clashing = m.loc[buyer[:300:10]].copy()
    shifted = sent_at[clashing.index] + pd.Timedelta(minutes=1)
    clashing["sent_at"] = shifted if fmt == "parquet" else shifted.map(pd.Timestamp.isoformat)
    clashing["sender_role"] = "seller"
    text = "2026-11-17T10:00:00Z" if fmt == "csv" else pd.Timestamp("2026-11-17T10:00:00Z")
    extra = pd.DataFrame(
        {
            "shop_id": ["shop_9999", None, " shop_0777 ", "shop_0777", "shop_0777"],
            "conversation_id": ["c1", "c2", "c3", "c3", "c3"],
            "message_id": ["x1", "x2", "x3", "x4", "x5"],
            "sender_role": ["nobody", "buyer", "BUYER", "Agent", "seller"],
            "sent_at": [text] * 5,
        }
    )
    if fmt == "csv":
        extra["shop_id"] = extra["shop_id"].fillna("")
        extra.loc[4, "sent_at"] = "17/11/2026"
    parts = [
        m.iloc[:5000],
        m.iloc[100:120],  # duplicates close to their originals: within one chunk
        m.iloc[5000:],
        extra,
        m.iloc[:40],  # duplicates at the far end of the file: across chunks
        late,
        clashing,
    ]
    return pd.concat(parts, ignore_index=True)


def messy_dataset(tmp_path: Path, fmt: str) -> Path:
    """The generated dataset with messy messages, a ratings-only shop and a shops-only shop."""
    folder = generated(tmp_path, fmt)
    write_table(messy_messages(read_table(folder, "messages", fmt), fmt), folder, "messages", fmt)
    ratings = read_table(folder, "ratings", fmt)
    rated_at = pd.Timestamp("2026-11-18T09:00:00Z")
    extra = pd.DataFrame(
        {
            "shop_id": ["shop_0888"],
            "conversation_id": ["r1"],
            "rating": pd.Series([5]).astype(ratings["rating"].dtype),
            "rated_at": [rated_at if fmt == "parquet" else rated_at.isoformat()],
        }
    )
    write_table(pd.concat([ratings, extra], ignore_index=True), folder, "ratings", fmt)
    shops = read_table(folder, "shops", fmt)
    alone = pd.DataFrame({"shop_id": ["shop_0999"], "market": ["SG"]})
    write_table(pd.concat([shops, alone], ignore_index=True), folder, "shops", fmt)
    return folder


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("csv", ["--date-format", "%d/%m/%Y"]), ("parquet", ["--reject-mangled-ids"])],
    ids=["csv_date_format", "parquet_reject_mangled_ids"],
)
def test_generated_multi_shop_dataset_is_identical(
    tmp_path: Path, scheduler: str, fmt: str, options: list[str]
) -> None:
    """JSON, warnings and quarantine files match on a messy 50-shop dataset over 7 partitions."""
    folder = messy_dataset(tmp_path, fmt)
    args = compute_args(folder, *WEEK, "--format", "json", *options)
    pandas_q, dask_q = tmp_path / "q-pandas", tmp_path / "q-dask"
    pandas_run = runner.invoke(app, [*args, "--quarantine", str(pandas_q)])
    dask_args = ["--engine", "dask", "--scheduler", scheduler, "--partitions", "7"]
    dask_run = runner.invoke(app, [*args, "--quarantine", str(dask_q), *dask_args])
    assert dask_run.exit_code == 0, (dask_run.exception, dask_run.output)
    assert dask_run.stdout == pandas_run.stdout
    assert dask_run.stderr.replace(str(dask_q), "Q") == pandas_run.stderr.replace(
        str(pandas_q), "Q"
    )
    assert sorted(p.name for p in dask_q.iterdir()) == sorted(p.name for p in pandas_q.iterdir())
    for path in pandas_q.iterdir():
        assert (dask_q / path.name).read_bytes() == path.read_bytes(), path.name

    # The dataset holds what the comparison is meant to exercise.
    doc = json.loads(pandas_run.stdout)
    counts = doc["input"]["messages"]
    assert counts["rows_duplicate"] >= 80
    assert counts["rows_quarantined"] >= 2
    assert pd.Timestamp(doc["cutoff"]) < LATE
    shops = {s["shop_id"]: s for s in doc["shops"]}
    assert len(shops) >= 53
    assert shops["shop_0888"]["ratings"] == 1 and shops["shop_0888"]["chats"] == 0
    assert shops["shop_0999"]["chats"] == 0 and "shop_9999" in shops
    if "--reject-mangled-ids" in options:
        assert "id_float_suffix" in (pandas_q / "messages.csv").read_text()
    else:
        assert "counted as duplicates have a message_id in scientific" in pandas_run.stderr
        assert "conversation_id ends in .0" in pandas_run.stderr


def test_shop_and_cutoff_options_are_identical(scheduler: str) -> None:
    """--shop (one shop found nowhere) and an early --cutoff leave the engines equal."""
    args = compute_args(
        SAMPLE,
        *SAMPLE_WEEKS[1],
        "--format",
        "json",
        "--shop",
        "VN-001",
        "--shop",
        "SG-001",
        "--shop",
        "XX-404",
        "--cutoff",
        "2026-11-20T12:00:00+07:00",
    )
    assert_same(*both_engines(args, scheduler, partitions=3))


def test_no_good_messages_is_unusable_alike(data: Path, scheduler: str) -> None:
    """A messages table of bad rows only is unusable (SPEC 6a): exit 2, one line, alike."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,soon\nS2,c2,m2,robot?,1\n")
    first, second = both_engines(compute_args(data, *WEEK, "--format", "json"), scheduler)
    assert (first.exit_code, second.exit_code) == (2, 2)
    assert first.stderr == second.stderr
    assert "no usable row among 2 message rows" in first.stderr


def test_strict_mode_fails_alike(data: Path, scheduler: str) -> None:
    """--strict with a bad row: exit 2 and the same one-line error from both engines."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,soon\n")
    pandas_run, dask_run = both_engines(compute_args(data, *WEEK, "--strict"), scheduler)
    assert (pandas_run.exit_code, dask_run.exit_code) == (2, 2)
    assert dask_run.stderr == pandas_run.stderr
    assert dask_run.stdout == ""


def test_scheduler_option_needs_the_dask_engine(data: Path) -> None:
    """--scheduler or --partitions without --engine dask is a bad invocation."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    result = runner.invoke(app, compute_args(data, *WEEK, "--partitions", "3"))
    assert result.exit_code == 2
    assert "need --engine dask" in result.stderr


BLOCK_DASK = """
import sys
sys.modules["dask"] = None  # `import dask` now raises ImportError, as when it is not installed
sys.modules["distributed"] = None
from cs_metrics.cli.main import main
sys.argv = ["cs-metrics", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("engine", "status"), [("dask", 2), ("pandas", 0)], ids=["dask_engine", "pandas_engine"]
)
def test_without_dask_installed(data: Path, engine: str, status: int) -> None:
    """Without Dask the pandas engine works and --engine dask is one line, exit 2."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    argv = [sys.executable, "-c", BLOCK_DASK, *compute_args(data, *WEEK, "--engine", engine)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == status, result.stderr
    if engine == "dask":
        assert result.stderr == (
            "cs-metrics: error: --engine dask needs Dask; "
            "install it with: pip install 'cs-metrics[dask]'\n"
        )
        assert result.stdout == ""


# The Dask engine distributes: workers read their own row groups, the client holds no message.


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated week (100 shops, about 200,000 messages, every column) as Parquet files
    of many small row groups: the pieces the workers read."""
    folder = tmp_path_factory.mktemp("spread")
    args = ["generate", "--out", str(folder), "--shops", "100", "--messages", "200000"]
    result = runner.invoke(app, [*args, "--format", "parquet", "--no-bad-rows"])
    assert result.exit_code == 0, result.output
    # In time order, as an archive grows: the last row groups hold the latest messages.
    messages = pd.read_parquet(folder / "messages.parquet").sort_values("sent_at", kind="stable")
    (folder / "messages.parquet").unlink()
    parts = folder / "messages"
    parts.mkdir()
    half = len(messages) // 2
    for number, rows in enumerate([messages.iloc[:half], messages.iloc[half:]]):
        rows.to_parquet(parts / f"part-{number}.parquet", index=False, row_group_size=20_000)
    return folder


def messages_bytes(folder: Path) -> int:
    """The size in memory of the folder's good messages as the pandas engine holds them."""
    from cs_metrics.pipeline import load
    from cs_metrics.policy import Policy

    return int(load(folder, Policy()).messages.memory_usage(deep=True).sum())


@pytest.mark.slow
def test_workers_below_the_size_of_the_messages_give_the_pandas_result(spread: Path) -> None:
    """Two workers, each allowed less memory than the messages take, give identical output.

    Each worker's memory limit is 3/4 of the messages' size in memory, so neither could hold
    them all: the workers read their own row groups, spill what they keep beyond the limit, and
    only counts and per-shop metrics come back. A worker process alone (Python, pandas, Arrow)
    is above so small a limit, so pausing and restarting at the limit are turned off: the
    limit then only makes the workers spill.
    """
    import dask

    limit = messages_bytes(spread) * 3 // 4
    settings = {
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    }
    with (
        dask.config.set(settings),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=limit,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
    ):
        args = compute_args(spread, *WEEK, "--format", "json")
        pandas_run, dask_run = both_engines(args, cluster.scheduler_address, partitions=4)
        assert_same(pandas_run, dask_run)
    assert json.loads(pandas_run.stdout)["input"]["messages"]["rows_used"] > 150_000


def test_the_client_holds_no_message(spread: Path, scheduler: str) -> None:
    """A Dask load keeps the messages on the workers: the client's dataset has none."""
    from cs_metrics.engines.dask import dask_engine
    from cs_metrics.pipeline import load
    from cs_metrics.policy import Policy

    with dask_engine(scheduler, partitions=4) as engine:
        dataset = load(spread, Policy(), engine=engine)
        assert dataset.message_groups.held() is None
        assert len(dataset.messages) == 0
        assert dataset.counts["messages"].rows_used > 150_000


def test_validate_on_dask_gives_the_pandas_report(spread: Path, scheduler: str) -> None:
    """`checkup` (cs-metrics validate) reports the same on both engines."""
    from cs_metrics.checkup import checkup
    from cs_metrics.engines.dask import dask_engine
    from cs_metrics.policy import Policy

    with dask_engine(scheduler, partitions=3) as engine:
        on_dask = checkup(spread, Policy(), engine=engine)
    assert on_dask == checkup(spread, Policy())


def test_skip_after_cutoff_is_identical(spread: Path, scheduler: str) -> None:
    """--skip-after-cutoff leaves out the same row groups on Dask as in memory."""
    cut = ["--cutoff", "2026-11-19T00:00:00Z", "--skip-after-cutoff"]
    pandas_run, dask_run = both_engines(
        compute_args(spread, *WEEK, "--format", "json", *cut), scheduler
    )
    assert_same(pandas_run, dask_run)
    assert "not read" in pandas_run.stderr
