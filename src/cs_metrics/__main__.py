"""Allow `python -m cs_metrics`."""

from cs_metrics.cli import main

main()
