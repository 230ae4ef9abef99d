"""How a cs-metrics run takes memory: a process setting chosen by the command line per engine."""

from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

from cs_metrics import USER_ARROW_POOL

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
"""glibc's mallopt parameters (malloc.h)."""

KEEP_BELOW = 2**30
"""Freed memory at the top of the heap is handed back to the kernel only beyond this much."""

USER_TUNED = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def reuse_freed_memory() -> bool:
    """For a run that holds a whole table: reuse freed columns; False where glibc is not ours.

    By default glibc maps every block over 32 MB afresh and unmaps it when freed, so each new
    column of ten million rows costs a page fault per 4 kB: at 10M messages that was a third of
    `compute` (docs/performance.md). Taken from the heap instead (Arrow's columns too), freed
    columns are reused. The peak grows by the heap's free gaps, so the disk engine, whose peak
    must stay flat with file size, keeps the defaults (Arrow's jemalloc pool, set in __init__).
    Skipped if the user tuned glibc's allocator through the environment or chose Arrow's pool
    (ARROW_DEFAULT_MEMORY_POOL), or the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in USER_TUNED):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, KEEP_BELOW)):
        return False
    if not USER_ARROW_POOL:
        pa.set_memory_pool(pa.system_memory_pool())
    return True
