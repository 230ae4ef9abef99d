"""`appeal`: an evidence pack for one shop's evaluated week."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cs_metrics.cli.common import (
    DateFormatOpt,
    HistoryOpt,
    RejectIdsOpt,
    command,
    parse_day,
    printable,
    stored_history,
)
from cs_metrics.errors import UsageError
from cs_metrics.readers import table_paths


@command(
    name="appeal",
    help=(
        "Build an appeal pack for one shop's stored week: the evaluation, the action and the "
        "policy, and the timeline of every chat counted late or missed, likely disputes first "
        "(one self-contained HTML page to print to PDF, plus the shop's chats as CSV; buyers "
        "pseudonymised; docs/appeal.md).\n\n"
        "Example:\n\n"
        "  cs-metrics appeal --out out --as-of 2026-11-23 --shop VN-001"
    ),
)
def appeal_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder of the weekly job.")],
    as_of: Annotated[str, typer.Option("--as-of", help="The Monday of the stored evaluation.")],
    shop: Annotated[str, typer.Option("--shop", help="The shop the pack is for.")],
    history: HistoryOpt = None,
    folder: Annotated[
        Path | None,
        typer.Option("--output", help="Folder for the pack (default OUT/<as-of>/appeal/)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="The week's data folder (and the connector's store): every message of each "
            "timeline, system messages, and TikTok's own figures beside ours.",
        ),
    ] = None,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
) -> None:
    # Imported here: the pack's modules (report templates, Jinja) would slow every command's
    # start by a tenth of a second.
    from cs_metrics import appeal, privacy, week_files, weekly

    day = weekly.check_monday(parse_day(as_of, "--as-of"))
    store = stored_history(out, history)
    week = week_files.load_week(out, day, store)
    if shop not in {s["shop_id"] for s in week.doc["shops"]}:
        raise UsageError(f"--shop {printable(shop)}: no such shop in the week of {day}")
    target = folder if folder is not None else week_files.week_folder(out, day) / "appeal"
    if data is not None:
        table_paths(data)  # a missing or doubled table is named before anything is read
    # The data is read as the weekly run read it (give the same --date-format), so each
    # timeline has chats.csv's times.
    page, table = appeal.write_pack(
        week,
        shop,
        privacy.pseudonym_key(store),
        target,
        data,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
    )
    typer.echo(f"Appeal pack: {page}")
    typer.echo(f"Chats:       {table}")
