"""The Dask engine: the pandas stages per partition, messages shuffled by shop (docs/dask.md).

The only module that imports Dask, and only once a Dask run starts (Dask is an optional extra).
The metric logic stays in validate, chats and metrics. This module splits the messages table
into contiguous row chunks and runs `validate.check_message_rows` on each (row numbers stay the
file's), shuffles the good rows so that each shop's rows share one partition, settles duplicates
there (SPEC 8), reduces the default cut-off over all shops (SPEC 4), then runs the per-partition
stages of `partitions` (as the disk engine does). The small tables go through the pandas path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cs_metrics import validate
from cs_metrics.engines.partitions import (
    DUPLICATE,
    checked_messages,
    evaluation_of,
    flagged_duplicates,
    metric_inputs,
    partition_collapsed,
    partition_metrics,
    shops_metrics,
    without_rows,
)
from cs_metrics.errors import StrictModeError, UsageError
from cs_metrics.metrics import window_bounds
from cs_metrics.pipeline import (
    METRICS_ONLY,
    Dataset,
    Evaluation,
    _strict_message,
    checked_shops,
    dataset_of,
    shop_zones,
    small_tables,
)
from cs_metrics.policy import Policy
from cs_metrics.read import RawTable, read_folder
from cs_metrics.validate import MessageRows

if TYPE_CHECKING:
    from distributed import Client

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


def chunk_bounds(rows: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges that split `rows` rows into at most `parts` chunks."""
    edges = np.linspace(0, rows, max(1, min(parts, rows)) + 1).astype("int64")
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def chunk_shop_ids(raw: RawTable) -> pd.Index:
    """The non-empty shop_ids of a chunk of rows."""
    return validate.seen_shop_ids(raw.frame)


def checked_chunk(
    raw: RawTable, zones: pd.Series, date_format: str | None, reject_mangled_ids: bool
) -> MessageRows:
    """The row checks of `validate.check_message_rows` on a chunk (numbered as in the file)."""
    return validate.check_message_rows(
        raw.frame, zones, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )


def chunk_good(chunk: MessageRows) -> pd.DataFrame:
    """The rows of a checked chunk that passed the row checks."""
    return chunk.good


def default_partitions(client: Client) -> int:
    """PARTITIONS_PER_THREAD per worker thread of the cluster."""
    return PARTITIONS_PER_THREAD * max(1, sum(client.nthreads().values()))


def evaluate_on_dask(
    folder: Path,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None = None,
    shop_ids: list[str] | None = None,
    *,
    strict: bool = False,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    scheduler: str | None = None,
    partitions: int | None = None,
) -> tuple[Dataset, Evaluation]:
    """`pipeline.load` then `pipeline.evaluate` (metrics only), the messages table on Dask."""
    dask, dd, _ = dask_modules()
    if date_format is not None:
        validate.checked_date_format(date_format)
    raw = read_folder(folder, METRICS_ONLY)
    with dask_client(scheduler) as client:
        parts = partitions or default_partitions(client)
        table = raw["messages"]
        pieces = client.scatter(
            [
                RawTable(table.name, table.path, table.frame.iloc[a:b])
                for a, b in chunk_bounds(len(table.frame), parts)
            ]
        )
        # From here the client holds no message rows: its copy is dropped.
        raw["messages"] = RawTable(table.name, table.path, table.frame.iloc[:0])
        del table
        small = small_tables(
            raw,
            checked_shops(raw, policy, reject_mangled_ids),
            client.gather(client.map(chunk_shop_ids, pieces)),
            policy,
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
        )
        chunks = client.map(
            checked_chunk,
            pieces,
            zones=client.scatter(small.zones, broadcast=True),
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
        )
        del pieces
        # Quarantine, counts and id findings come back; the good rows stay on the cluster.
        summaries: list[MessageRows] = client.gather(client.map(without_rows, chunks))
        dataset = dataset_of(checked_messages(summaries, 0, []), small, policy)
        if strict and dataset.bad_rows:
            raise StrictModeError(_strict_message(dataset, {n: t.path for n, t in raw.items()}))

        meta = validate.check_message_rows(raw["messages"].frame, small.zones).good
        good = dd.from_delayed(client.map(chunk_good, chunks), meta=meta, verify_meta=False)
        dtypes = {str(c): d for c, d in meta.dtypes.items()}
        flagged_meta = flagged_duplicates(meta, dtypes)
        flagged = (
            good.shuffle(on="shop_id", npartitions=parts)
            .map_partitions(flagged_duplicates, dtypes, meta=flagged_meta)
            .persist()
        )
        del chunks, good
        duplicates, latest, collapsed = dask.compute(
            flagged[DUPLICATE].sum(),
            flagged["sent_at"][~flagged[DUPLICATE]].max(),
            flagged.map_partitions(partition_collapsed, meta=partition_collapsed(flagged_meta)),
        )
        checked = checked_messages(summaries, int(duplicates), [collapsed])
        dataset = dataset_of(checked, small, policy)

        cut = cutoff if cutoff is not None else (None if pd.isna(latest) else pd.Timestamp(latest))
        shops = shop_zones(dataset, shop_ids)
        inputs = metric_inputs(dataset, window_bounds(shops, start, end), cut, policy)
        empty = flagged_meta.drop(columns=DUPLICATE)
        found = flagged.map_partitions(
            partition_metrics,
            dask.delayed(inputs, pure=True),
            meta=shops_metrics(empty, pd.Index([], dtype="string"), inputs),
        ).compute()
    return dataset, evaluation_of([found], inputs, empty, start, end)
