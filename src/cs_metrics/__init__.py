"""cs-metrics: TikTok Shop customer-service metrics, computed the way the guidelines define them."""

import os

# Every stage allocates fresh arrays of millions of rows; on transparent huge pages the kernel
# spends more time clearing them than they save (measured: docs/performance.md). Set before
# numpy is first imported; a value the user set is kept.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
USER_ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL" in os.environ
# Arrow's jemalloc pool hands freed memory back, where its default (mimalloc) keeps it: with it
# the disk engine's peak stays flat with file size (docs/large_files.md). Read when pyarrow loads.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

__version__ = "0.1.0"
