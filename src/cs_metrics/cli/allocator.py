"""How a cs-metrics run takes memory: process settings the command line makes, never an import."""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
"""glibc's mallopt parameters (malloc.h)."""

KEEP_BELOW = 2**30
"""Freed memory at the top of the heap is handed back to the kernel only beyond this much."""

USER_TUNED = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


@dataclass
class ProcessSettings:
    """What the user chose before the run: their choices are never overridden."""

    user_arrow_pool: bool
    heap_reused: bool = False
    """Whether `reuse_freed_memory` took effect (glibc keeps freed blocks in its heap)."""


SETTINGS = ProcessSettings(user_arrow_pool=ARROW_POOL in os.environ)


def tune_environment() -> None:
    """Memory settings read when numpy and pyarrow load: call before either is imported.

    Every stage allocates fresh arrays of millions of rows; on transparent huge pages the kernel
    spends more time clearing them than they save (docs/performance.md). Arrow's jemalloc pool
    hands freed memory back, where its default (mimalloc) keeps it: with it the disk engine's peak
    stays flat with file size (docs/large_files.md). Values the user set are kept.
    """
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    SETTINGS.user_arrow_pool = ARROW_POOL in os.environ
    os.environ.setdefault(ARROW_POOL, "jemalloc")
    one_heap()


def one_heap() -> bool:
    """Every thread allocates from the one heap (glibc's main arena), unless the user set
    MALLOC_ARENA_MAX; False where glibc is not ours. Call before any thread starts: glibc fixes
    its limit of arenas when a thread first needs one (numpy's BLAS threads start on import).

    A thread's own arena keeps the columns it freed where no other thread reuses them. Blocks
    are checked and halves of the shops evaluated on threads: at 10M messages the one heap
    took `compute`'s peak from 3.2 to 2.7-3.0 GB and the weekly job's from 3.6-3.8 to 3.45 GB,
    with a quarter fewer page faults. Runs that hold little (the disk engine's) take their
    memory from Arrow's pool, not from these arenas.
    """
    libc = None if "MALLOC_ARENA_MAX" in os.environ else _glibc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, 1))


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose mallopt the settings here call), else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def reuse_freed_memory() -> bool:
    """For a run that holds a whole table: reuse freed columns; False where glibc is not ours.

    By default glibc maps every block over 32 MB afresh and unmaps it when freed, so each new
    column of ten million rows costs a page fault per 4 kB: at 10M messages that was a third of
    `compute` (docs/performance.md). Taken from the heap instead (Arrow's columns too), freed
    columns are reused. The peak grows by the heap's free gaps, so the disk engine, whose peak
    must stay flat with file size, keeps the defaults (Arrow's jemalloc pool, `tune_environment`).
    Skipped if the user tuned glibc's allocator through the environment or chose Arrow's pool
    (ARROW_DEFAULT_MEMORY_POOL), or the C library is not glibc.
    """
    libc = None if any(name in os.environ for name in USER_TUNED) else _glibc()
    if libc is None:
        return False
    if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, KEEP_BELOW)):
        return False
    if not SETTINGS.user_arrow_pool:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    SETTINGS.heap_reused = True
    return True


def hand_back_freed() -> None:
    """Between the stages of a run that reuses freed memory: the heap's free pages go back to
    the kernel, so what one stage freed does not add to the next stage's peak.

    Freed blocks are reused within a stage; across stages (scan, chats, files) the one heap
    otherwise keeps each stage's gaps, about a gigabyte at 10M messages (docs/performance.md).
    Costs a walk of the heap; nothing when the heap is not ours to tune.
    """
    if SETTINGS.heap_reused:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
