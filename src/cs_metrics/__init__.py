"""cs-metrics: TikTok Shop customer-service metrics, computed the way the guidelines define them."""

import os

# Every stage allocates fresh arrays of millions of rows; on transparent huge pages the kernel
# spends more time clearing them than they save (measured: docs/performance.md). Set before
# numpy is first imported; a value the user set is kept.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

__version__ = "0.1.0"
