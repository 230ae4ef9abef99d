"""`cs-metrics import ...`: other sources converted into a data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cs_metrics.cli.common import (
    app,
    command,
)

import_app = typer.Typer(
    no_args_is_help=True,
    help="Convert other sources into a cs-metrics data folder (see docs/import.md).",
)
app.add_typer(import_app, name="import")


@command(
    import_app,
    name="tiktok-api",
    help=(
        "Convert saved TikTok Shop Customer Service API pages (docs/import.md) into the tables.\n\n"
        "Example:\n\n"
        "  cs-metrics import tiktok-api --raw dumps/ --data exports/"
    ),
)
def import_tiktok_api(
    raw: Annotated[Path, typer.Option("--raw", help="Folder of *.jsonl page dumps.")],
    data: Annotated[Path, typer.Option("--data", help="Data folder to write.")],
) -> None:
    from cs_metrics.importers.tiktok_api import import_tiktok_api as convert

    for line in convert(raw, data).lines():
        typer.echo(line)


@command(
    import_app,
    name="ibm-twitter",
    help=(
        "Convert the IBM Twitter customer-care conversations (JSON) into the tables; customer "
        "handles are pseudonymised with CS_METRICS_PSEUDONYM_KEY (random when unset).\n\n"
        "Example:\n\n"
        "  cs-metrics import ibm-twitter --path test.json --data twitter/"
    ),
)
def import_ibm_twitter(
    path: Annotated[Path, typer.Option("--path", help="The dataset's JSON file.")],
    data: Annotated[Path, typer.Option("--data", help="Data folder to write.")],
) -> None:
    from cs_metrics.importers.ibm_twitter import import_ibm_twitter as convert

    for line in convert(path, data, os.environ.get("CS_METRICS_PSEUDONYM_KEY")).lines():
        typer.echo(line)
