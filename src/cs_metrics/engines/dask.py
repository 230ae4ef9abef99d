"""The Dask engine: the messages read, checked, settled and evaluated on the workers.

The only module that imports Dask, and only once a Dask run starts (Dask is an optional extra).
Each worker reads its own pieces of the messages table (`readers.table_pieces`: Parquet row
groups; a CSV or JSON Lines file is one piece, read whole by one worker, since a quoted field may
hold line breaks) and checks them block by block with the same check as the in-memory engine.
Only each piece's quarantine, counts and shop ids come back to the client; the good rows are
shuffled so that each shop's rows share one partition, and `pipeline` then settles duplicates
and evaluates each partition on the workers (docs/dask.md). The client never holds the messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from cs_metrics.engines import (
    CheckedMessages,
    MessageSource,
    empty_like,
    set_aside,
    without_good_rows,
)
from cs_metrics.errors import UsageError
from cs_metrics.readers import Piece, map_piece, table_pieces
from cs_metrics.validate import BlockCheck, MessageCheck, MessageRows

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

MISSING_DASK = "--engine dask needs Dask; install it with: pip install 'cs-metrics[dask]'"
LOCAL_WORKERS = 2
"""Worker processes of the default local cluster (one thread each)."""
PARTITIONS_PER_THREAD = 2
"""Default number of partitions: this many per worker thread of the cluster."""
CONNECT_TIMEOUT = "10s"
"""How long to try to reach a `--scheduler` before giving up."""


def dask_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """dask, dask.dataframe and distributed, or a UsageError naming the extra to install."""
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError as exc:
        raise UsageError(MISSING_DASK) from exc
    return dask, dd, distributed


@contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Client]:
    """A client of the scheduler at `scheduler`, else of a small local cluster (closed after)."""
    _, _, distributed = dask_modules()
    if scheduler is not None:
        with quiet_logger("distributed", logging.WARNING):
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, ValueError) as exc:
                raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from exc
            with client:
                yield client
        return
    with (
        quiet_logger("distributed", logging.WARNING),
        quiet_logger("distributed.shuffle", logging.ERROR),
        distributed.LocalCluster(
            n_workers=LOCAL_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard; its HTTP server (health checks) on any free port of this machine only.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@contextmanager
def quiet_logger(name: str, level: int) -> Iterator[None]:
    """The logger `name` at `level` for a while (Dask logs each start, stop and shuffle)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


# Functions run on the workers -------------------------------------------------------------


def checked_piece(piece: Piece, check: MessageCheck, columns: tuple[str, ...] | None) -> BlockCheck:
    """One piece of the messages table read and checked (rows numbered as in the table)."""
    return merged_blocks(map_piece("messages", piece, check, columns))


def merged_blocks(blocks: list[BlockCheck]) -> BlockCheck:
    """The checked blocks of one piece as one: shops, good rows, quarantine, counts, findings."""
    if len(blocks) == 1:
        return blocks[0]
    good = [b.rows.good for b in blocks]
    quarantine = [b.rows.quarantine for b in blocks if len(b.rows.quarantine)]
    rows = MessageRows(
        pd.concat(good, ignore_index=True),
        pd.concat(quarantine, ignore_index=True) if quarantine else blocks[0].rows.quarantine,
        sum(b.rows.rows_read for b in blocks),
        [f for b in blocks for f in b.rows.findings],
    )
    shops = pd.Index([], dtype="string").append([b.shop_ids for b in blocks]).unique()
    return BlockCheck(shops, rows)


def good_rows(block: BlockCheck, meta: pd.DataFrame) -> pd.DataFrame:
    """A checked piece's good rows, typed as `meta` (pieces agree, so the shuffle can merge)."""
    good = block.rows.good
    return good.astype({str(c): t for c, t in meta.dtypes.items()}).reset_index(drop=True)


def no_rows(block: BlockCheck) -> pd.DataFrame:
    """The good rows' columns and types, without rows."""
    return empty_like(block.rows.good)


def applied(func: Callable[[pd.DataFrame], T], part: pd.DataFrame) -> T:
    """`func` of one partition."""
    return func(part)


def default_partitions(client: Client) -> int:
    """PARTITIONS_PER_THREAD per worker thread of the cluster."""
    return PARTITIONS_PER_THREAD * max(1, sum(client.nthreads().values()))


@dataclass(frozen=True)
class DaskGroups:
    """The messages as a Dask dataframe held by the workers, each shop's rows in one partition."""

    client: Client
    frame: Any
    """The persisted dask.dataframe.DataFrame."""
    meta: pd.DataFrame

    def map(
        self, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
    ) -> list[T]:
        """`func` of each partition (all its columns: held by the workers), run on the
        workers; the results come back here."""
        dask, _, _ = dask_modules()
        # The function (with the small tables it carries) goes to the workers once, not in
        # every task of the graph.
        shared = self.client.scatter(func, broadcast=True, hash=False)
        parts = self.frame.to_delayed()
        return list(dask.compute(*[dask.delayed(applied)(shared, part) for part in parts]))

    def transform(
        self, func: Callable[[pd.DataFrame], pd.DataFrame], needs: Sequence[str] | None = None
    ) -> DaskGroups:
        """Each partition replaced by `func` of it, on the workers (and kept there)."""
        meta = func(self.meta.copy())
        frame = self.frame.map_partitions(func, meta=meta).persist()
        return DaskGroups(self.client, frame, meta)

    def settled(self) -> DaskGroups:
        """The partitions themselves (each transform is persisted on the workers at once)."""
        return self

    def held(self) -> None:
        """None: the workers hold the messages."""
        return

    def empty(self) -> pd.DataFrame:
        """No message, with the columns and types of the partitions."""
        return self.meta


@dataclass(frozen=True)
class DaskEngine:
    """Reads, checks and groups the messages on the workers of a Dask cluster."""

    client: Client
    partitions: int
    name: str = "dask"

    def checked_messages(self, source: MessageSource) -> CheckedMessages:
        """Each piece read and checked by a worker; the good rows shuffled by shop, kept there."""
        _, dd, _ = dask_modules()
        client = self.client
        pieces = table_pieces(source.path, self.partitions, source.row_groups)
        checked = client.map(
            checked_piece, pieces, check=source.check, columns=source.columns, pure=False
        )
        # Each piece's bad rows come here one piece at a time and go on to the spill.
        kept = client.map(without_good_rows, checked)
        blocks = [set_aside(client.gather(piece), source.spill) for piece in kept]
        del kept
        meta = client.submit(no_rows, checked[0]).result()
        good = dd.from_delayed(
            client.map(good_rows, checked, meta=meta), meta=meta, verify_meta=False
        )
        del checked
        grouped = good.shuffle(on="shop_id", npartitions=self.partitions).persist()
        return CheckedMessages(blocks, DaskGroups(client, grouped, meta))


@contextmanager
def dask_engine(
    scheduler: str | None = None, partitions: int | None = None
) -> Iterator[DaskEngine]:
    """The Dask engine on the scheduler at `scheduler`, else on a small local cluster."""
    with dask_client(scheduler) as client:
        yield DaskEngine(client, partitions or default_partitions(client))
