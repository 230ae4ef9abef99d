"""Precision and recall of the compliance scan on both labelled sets.

`python -m cs_metrics.scan_eval [LABELLED.csv] [--rules FILE] [--errors]` is
`python -m cs_metrics.scan.evaluation` under the name the README gives: without a path it
prints the table of the tuning set (tests/scan_eval/labelled.csv) and of the blind set
(tests/scan_eval/blind.csv), run from the repository's root.
"""

from __future__ import annotations

from cs_metrics.scan.evaluation import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
