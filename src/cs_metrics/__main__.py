"""Allow `python -m cs_metrics`."""

from cs_metrics.cli.main import main

main()
