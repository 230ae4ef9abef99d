"""What every command shares: the app, the options, parsing, error mapping, warnings."""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console

from cs_metrics import __version__
from cs_metrics.cli.allocator import hand_back_freed, reuse_freed_memory
from cs_metrics.engines import DISK_FROM_BYTES, DISK_FROM_ROWS, choose, chosen_name
from cs_metrics.errors import CsMetricsError, UsageError
from cs_metrics.pipeline import (
    Dataset,
    load,
)
from cs_metrics.policy import Policy, load_policy
from cs_metrics.readers import table_paths
from cs_metrics.timestamps import known_timezones, parse_instants

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help=(
        "TikTok Shop customer-service metrics, by the Customer Service Guidelines.\n\n"
        "Example:\n\n"
        "  cs-metrics compute --data sample_data --start 2026-11-16 --end 2026-11-22"
    ),
)
log = logging.getLogger("cs_metrics")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cs-metrics {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_print_version),
    ] = False,
) -> None:
    """TikTok Shop customer-service metrics, by the Customer Service Guidelines."""


def command(
    target: typer.Typer | None = None, **options: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command whose domain errors become one stderr line and their exit status."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                function(*args, **kwargs)
            except CsMetricsError as exc:
                typer.echo(f"cs-metrics: error: {printable(str(exc))}", err=True)
                raise typer.Exit(exc.exit_code) from None
            except OSError as exc:
                if exc.errno in FULL_ERRNOS:
                    where = f"{exc.filename}: " if exc.filename else ""
                    typer.echo(
                        f"cs-metrics: error: {printable(where)}{exc.strerror}; nothing was "
                        "half-written: the earlier files and the history are as they were",
                        err=True,
                    )
                    raise typer.Exit(1) from None
                # A path the user gave that cannot be written or opened: a bad invocation.
                if exc.errno not in PATH_ERRNOS or exc.filename is None:
                    raise
                typer.echo(f"cs-metrics: error: {exc.filename}: {exc.strerror}", err=True)
                raise typer.Exit(2) from None

        return (target or app).command(**options)(run)

    return register


PATH_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EROFS}
)
"""OS errors that mean a given path is of the wrong kind or not writable (exit 2)."""

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""OS errors of a full or failing disk while writing (exit 1, naming the path)."""


class TextFormat(StrEnum):
    """Output formats of `history` and `validate` (no CSV: their results are not tables)."""

    table = "table"
    json = "json"


class MetricsFormat(StrEnum):
    """Output formats of `compute`."""

    table = "table"
    json = "json"
    csv = "csv"


class Engine(StrEnum):
    """Engines of `compute` and `validate`: pandas, disk, Dask (docs/large_files.md)."""

    auto = "auto"
    pandas = "pandas"
    disk = "disk"
    dask = "dask"


ENGINE_HELP = (
    "pandas (all messages in memory), disk (messages spilled to temporary files by shop: "
    "memory stays flat with file size), dask (read, checked and evaluated on the workers of a "
    "Dask cluster; needs cs-metrics[dask]), or auto: disk for a CSV or JSON Lines messages file "
    f"of {DISK_FROM_BYTES // 2**20} MB or more, or messages that would not fit in the memory "
    "available, else pandas."
)


class ChatsFormat(StrEnum):
    """Output formats of `chats`."""

    csv = "csv"
    parquet = "parquet"


DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Folder with messages.(csv|parquet|jsonl) and optional ratings, holiday_mode, shops.",
    ),
]
StartOpt = Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (shop's local day).")]
EndOpt = Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (included).")]
CutoffOpt = Annotated[
    str | None,
    typer.Option("--cutoff", help="Data complete up to this instant (default: latest message)."),
]


def _stripped(values: list[str] | None) -> list[str] | None:
    """Shop ids as given, without surrounding white space (as in the data, SPEC 1)."""
    stripped = [v.strip() for v in values] if values else values
    if stripped and not all(stripped):
        # An empty value is a missing one (SPEC 1): no shop has an empty id.
        raise typer.BadParameter("a shop id cannot be empty")
    return stripped


ShopOpt = Annotated[
    list[str] | None,
    typer.Option("--shop", help="Only this shop (repeatable).", callback=_stripped),
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        "--default-timezone", help="Zone for shops with no timezone or known market (default UTC)."
    ),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")]
DateFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="Also accept timestamps in this strptime format, e.g. '%d/%m/%Y %H:%M' (shop-local).",
    ),
]
RejectIdsOpt = Annotated[
    bool,
    typer.Option(
        "--reject-mangled-ids",
        help="Quarantine ids a spreadsheet turned into 1.79E+18 or 3.0 (default: warn only).",
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Policy TOML file (see docs/policy.md).")
]


FIRST_DAY, LAST_DAY = dt.date(1, 1, 15), dt.date(9999, 12, 15)
"""Days a window may name: a week and a zone's offset either side stay within years 1-9999."""


def parse_day(text: str, option: str) -> dt.date:
    """A YYYY-MM-DD option value as a date."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
            raise ValueError(text)
        day = dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"{option} {text!r} is not a date in the form YYYY-MM-DD") from exc
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(f"{option} {day} is outside the supported days {FIRST_DAY}..{LAST_DAY}")
    return day


def parse_cutoff(text: str | None, default_tz: str) -> pd.Timestamp | None:
    """The --cutoff instant (SPEC 1 forms; naive means the run's default zone)."""
    if text is None:
        return None
    values = pd.Series([text.strip()], dtype="string")
    instants, _reasons = parse_instants(values, pd.Series([default_tz]))
    if pd.isna(instants.iloc[0]):
        raise UsageError(
            f"--cutoff {text!r} is not an accepted timestamp "
            "(ISO-8601, or Unix seconds or milliseconds; a local time must exist in the zone)"
        )
    return pd.Timestamp(instants.iloc[0])


def make_policy(config: Path | None, default_tz: str | None) -> Policy:
    """The effective policy from --config and --default-timezone."""
    if default_tz is not None and default_tz not in known_timezones():
        raise UsageError(f"--default-timezone {default_tz!r} is not a known IANA zone name")
    return load_policy(config, default_timezone=default_tz)


def accept(dataset: Dataset, data: Path, shops: list[str] | None = None) -> None:
    """A loaded folder the run can use (SPEC 6a: some usable message), its warnings printed,
    and the `--shop` ids found in no table named (still listed in the output, SPEC 7)."""
    dataset.check_usable(data)
    report_warnings(dataset.warnings)
    seen = set(dataset.shop_ids)
    unknown = [s for s in dict.fromkeys(shops or []) if s not in seen]
    if unknown:  # most often a typo: a row of zeros alone would not say so
        typer.echo(f"warning: shop(s) found in no table: {printable(', '.join(unknown))}", err=True)


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters that end a line or steer a terminal: a shop id holding them could forge log lines."""


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`), for logs and the terminal."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def report_warnings(messages: list[str]) -> None:
    """Print the run's warnings on stderr."""
    for line in messages:
        typer.echo(f"warning: {printable(line)}", err=True)


RawCsvOpt = Annotated[
    bool,
    typer.Option(
        "--raw-csv",
        help="Write CSV text cells as they are, for machines: by default a cell a spreadsheet "
        "would run as a formula (starting = + - @, tab or CR) gets a leading ' (docs/privacy.md).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display, even on a terminal.")
]


class Progress:
    """What a long command is doing, shown on a terminal's stderr; nothing off a terminal.

    Cron, CI and pipes get no progress lines: their logs hold the outcome, not the stages.
    """

    def __init__(self, quiet: bool = False) -> None:
        """Show progress when stderr is a terminal and the user did not ask for quiet."""
        self.console = None if quiet or not sys.stderr.isatty() else Console(stderr=True)

    @contextmanager
    def stage(self, text: str, done: Callable[[], str] | None = None) -> Iterator[None]:
        """A spinner with `text` while the block runs, then one line with its time (and
        `done()`, a few words on what it found)."""
        if self.console is None:
            yield
            return
        started = time.monotonic()
        with self.console.status(text):
            yield
        found = f" ({done()})" if done is not None else ""
        self.console.print(
            f"{text}: {time.monotonic() - started:.1f} s{found}", highlight=False, markup=False
        )


def read_summary(dataset: Dataset, data: Path) -> str:
    """Rows and bytes read of the messages table, for the progress line."""
    path = table_paths(data)["messages"]
    size = (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )
    counts = dataset.counts["messages"]
    return f"{counts.rows_read:,} message rows, {size / 2**20:,.1f} MB"


def load_whole(*args: Any, **kwargs: Any) -> Dataset:
    """`pipeline.load` for a run that holds every message: freed columns are reused while it
    reads, and handed back once the messages are held."""
    reuse_freed_memory()
    dataset = load(*args, **kwargs)
    hand_back_freed()
    return dataset


WEEKLY_ENGINE_HELP = (
    "pandas (all messages in memory, fastest), disk (messages spilled to temporary files by "
    "shop: memory stays flat with the number of messages; the week's chats are held), or auto: "
    f"disk for a CSV or JSON Lines messages file of {DISK_FROM_BYTES // 2**20} MB or more, "
    f"Parquet messages of {DISK_FROM_ROWS:,} rows or more, or messages that would not fit in "
    "the memory available, else pandas."
)
WeeklyEngineOpt = Annotated[Engine, typer.Option("--engine", help=WEEKLY_ENGINE_HELP)]


@contextmanager
def week_data(data: Path, engine: Engine, *args: Any, **kwargs: Any) -> Iterator[Dataset]:
    """The data folder read for `weekly` and `backfill` (`pipeline.load`'s arguments), held in
    memory or kept on disk by shop, open while the block runs (a week's scan, drill-down and
    files read it group by group)."""
    if engine == Engine.dask:
        raise UsageError("--engine dask is for compute and validate; weekly runs on pandas or disk")
    if chosen_name(engine.value, data) == "pandas":
        yield load_whole(data, *args, **kwargs)
        return
    with choose(engine.value, data) as chosen:
        yield load(data, *args, engine=chosen, **kwargs)


def reuse_memory_if_held(engine: Engine, data: Path) -> None:
    """Freed columns reused when this process will hold every message (the pandas engine): the
    disk engine keeps its peak flat by handing memory back, and Dask holds none here."""
    if chosen_name(engine.value, data) == "pandas":
        reuse_freed_memory()


def window(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Validated --start/--end dates."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise UsageError(f"--end {last} is before --start {first}")
    return first, last


HistoryOpt = Annotated[
    Path | None, typer.Option("--history", help="History store (default OUT/history.sqlite).")
]


def history_path(out: Path, given: Path | None) -> Path:
    """The history store: --history, else OUT/history.sqlite."""
    return given if given is not None else out / "history.sqlite"


def stored_history(out: Path, given: Path | None) -> Path:
    """The history store a command that reads stored weeks needs: it must exist (a mistyped
    --history would otherwise start an empty store)."""
    store = history_path(out, given)
    if not store.exists():
        raise UsageError(f"{store}: no history store; give the one the weekly job wrote")
    return store
