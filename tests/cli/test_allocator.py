"""The allocator setting the command line makes for runs that hold every message (allocator.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from cs_metrics.cli import allocator

# Runs in a fresh interpreter: prints how many more blocks glibc holds as separate mappings once
# a 64 MB array is made (mallinfo2: hblks), and Arrow's pool, after the setting or without it.
PROBE = """
import ctypes, sys
from cs_metrics.cli.allocator import reuse_freed_memory, tune_environment
tune_environment()  # as the entry point does, before numpy and pyarrow load
import numpy as np
import pyarrow as pa

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = reuse_freed_memory() if sys.argv[1] == "on" else False
before = libc.mallinfo2().hblks
array = np.ones(8 * 2**20)
print(applied, libc.mallinfo2().hblks - before, pa.default_memory_pool().backend_name)
"""

# The probe runs as a fresh command-line process would, without this process's pool setting.
INHERITED = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")


def probe(setting: str, env: dict[str, str] | None = None) -> tuple[str, int, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, setting],
        capture_output=True,
        text=True,
        check=True,
        env={**INHERITED, **(env or {})},
    ).stdout.split()
    return out[0], int(out[1]), out[2]


@glibc_only
def test_large_arrays_come_from_the_heap_once_set() -> None:
    assert probe("off") == ("False", 1, "jemalloc")  # defaults: a mapping of its own
    assert probe("on") == ("True", 0, "system")


@glibc_only
def test_a_user_tuned_allocator_is_left_alone() -> None:
    assert probe("on", {"MALLOC_TRIM_THRESHOLD_": str(2**20)}) == ("False", 1, "jemalloc")


@glibc_only
def test_a_user_chosen_arrow_pool_is_kept() -> None:
    assert probe("on", {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == ("True", 0, "mimalloc")


def test_not_glibc_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.reuse_freed_memory() is False
    assert allocator.one_heap() is False


def test_importing_the_package_changes_no_process_setting() -> None:
    """Only the command line's entry point tunes the process; a library user gets no surprise."""
    code = (
        "import os; before = dict(os.environ); import cs_metrics.pipeline, cs_metrics.report.build"
        "\nimport pyarrow as pa\n"
        "print(dict(os.environ) == before, pa.default_memory_pool().backend_name)"
    )
    env = {k: v for k, v in INHERITED.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out[0] == "True"
    assert out[1] != "jemalloc" or "ARROW_DEFAULT_MEMORY_POOL" in env


# Frees a 512 MB array that the heap keeps (under the trim threshold), then hands it back.
HAND_BACK = """
from cs_metrics.cli.allocator import hand_back_freed, reuse_freed_memory, tune_environment
tune_environment()
import numpy as np

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) // 1024 for l in status if l.startswith("VmRSS"))

assert reuse_freed_memory()
array = np.ones(64 * 2**20)  # 512 MB, every page touched
del array
kept = rss_mb()
hand_back_freed()
print(kept - rss_mb())
"""


@glibc_only
def test_freed_memory_is_handed_back_between_stages() -> None:
    """The heap keeps a freed block for reuse; between stages it goes back to the kernel."""
    out = subprocess.run(
        [sys.executable, "-c", HAND_BACK], capture_output=True, text=True, check=True, env=INHERITED
    )
    assert int(out.stdout) >= 400


def test_nothing_is_handed_back_from_a_heap_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.SETTINGS, "heap_reused", False)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: pytest.fail("libc was called"))
    allocator.hand_back_freed()


# Columns made and freed on a thread (as the checks of blocks are), then made again on the main
# thread: prints the page faults of the second making.
ONE_HEAP = """
import resource, threading
from cs_metrics.cli.allocator import reuse_freed_memory, tune_environment
tune_environment()
import numpy as np

assert reuse_freed_memory()

def columns():
    return [np.ones(4 * 2**20) for _ in range(8)]  # 8 columns of 32 MB, every page touched

worker = threading.Thread(target=columns)
worker.start()
worker.join()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
kept = columns()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@glibc_only
def test_with_one_heap_the_main_thread_reuses_what_a_thread_freed() -> None:
    """In a thread's own arena (here as the user's MALLOC_ARENA_MAX allows, which is kept),
    freed columns stay out of the main thread's reach: it takes (and faults in) fresh pages
    for some of them (16K pages here: 64 MB of the 256 MB)."""
    faults = {}
    for setting, env in (("one", {}), ("per-thread", {"MALLOC_ARENA_MAX": "8"})):
        out = subprocess.run(
            [sys.executable, "-c", ONE_HEAP],
            capture_output=True,
            text=True,
            check=True,
            env={**INHERITED, **env},
        )
        faults[setting] = int(out.stdout)
    assert faults["per-thread"] > 8_000
    assert faults["one"] < faults["per-thread"] // 10
