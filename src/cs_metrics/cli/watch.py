"""`watch`: the week so far, which chats to answer now, and what it takes to stay at target."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from cs_metrics import files, formats, output, privacy, watch
from cs_metrics.cli.common import (
    ConfigOpt,
    DataOpt,
    DateFormatOpt,
    ShopOpt,
    TzOpt,
    accept,
    command,
    load_whole,
    log,
    make_policy,
    parse_cutoff,
    printable,
)
from cs_metrics.errors import UsageError
from cs_metrics.pipeline import resolve_cutoff

# Delivery and the page's templates are imported by the functions that use them: here, they
# would slow every command's start by 0.2 s.
if TYPE_CHECKING:
    from cs_metrics import delivery

STALE_DATA = pd.Timedelta(hours=1)
"""Data ending this long before the watched moment is named: its picture is out of date."""


class WatchFormat(StrEnum):
    """Output formats of `watch`."""

    table = "table"
    json = "json"
    html = "html"


@command(
    name="watch",
    help=(
        "The evaluation week so far, per shop: chats on time, late, missed and pending, the "
        "rate so far and if all or none of the pending chats are answered in time, how many "
        "must be, and the pending chats soonest deadline first (docs/watch.md). Meant for "
        "cron every few hours. With --send, e-mail and webhook it over the config's [delivery] "
        "table when a shop is at risk (exit 4 when a channel fails).\n\n"
        "Examples:\n\n"
        "  cs-metrics watch --data exports --at 2026-11-26T12:00+08:00 --format html "
        "--output watch.html\n\n"
        "  cs-metrics watch --data exports --config config.toml --send"
    ),
)
def watch_command(
    data: DataOpt,
    at: Annotated[
        str | None,
        typer.Option("--at", help="The moment to look from (default: now); the cut-off."),
    ] = None,
    shop: ShopOpt = None,
    fmt: Annotated[
        WatchFormat, typer.Option("--format", help="table, json or html.")
    ] = WatchFormat.table,
    output_path: Annotated[
        Path | None,
        typer.Option("--output", help="Write to this file (atomically) instead of stdout."),
    ] = None,
    config: ConfigOpt = None,
    default_timezone: TzOpt = None,
    date_format: DateFormatOpt = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Send the watch over the config's [delivery] channels when a shop is at risk "
            "(docs/delivery.md); nothing is sent when every shop is safe.",
        ),
    ] = False,
) -> None:
    from cs_metrics import delivery
    from cs_metrics.report import watch_page

    sending = delivery.load_delivery(config) if send else None
    if send and sending is None:
        raise UsageError(
            "--send: nothing to send over: give --config with a [delivery] table naming an "
            "e-mail or a webhook (see docs/delivery.md)"
        )
    policy = make_policy(config, default_timezone)
    now = parse_cutoff(at, policy.default_timezone) or pd.Timestamp(dt.datetime.now(dt.UTC))
    dataset = load_whole(data, policy, date_format=date_format)
    accept(dataset, data, shop)
    latest = resolve_cutoff(dataset, None)
    if latest is not None and latest < now - STALE_DATA:
        typer.echo(
            f"warning: the data ends {files.iso_utc(latest)}, "
            f"{(now - latest) / pd.Timedelta(hours=1):.0f} h before --at: "
            "chats received since are not in it, and answers sent since are not seen",
            err=True,
        )
    found = watch.watch(dataset, now, policy, shop)
    key = privacy.pseudonym_key()
    page = watch_page.render(found, key) if fmt == WatchFormat.html or send else ""
    if fmt == WatchFormat.html:
        text = page
    elif fmt == WatchFormat.json:
        text = output.to_json(watch_document(found, key))
    else:
        text = watch_table(found, key)
    if output_path is None:
        typer.echo(text, nl=False)
    else:
        files.write_atomic(output_path, text)
        typer.echo(f"Watch: {output_path}")
    if sending is not None and send_watch(found, page, sending):
        raise typer.Exit(4)


def send_watch(found: watch.Watch, page: str, settings: delivery.DeliverySettings) -> bool:
    """Send the watch when a shop is at risk, each channel's result on stderr (stdout holds the
    watch itself); one log line per failed channel, never a secret. True when a channel failed."""
    from cs_metrics import delivery

    message = delivery.watch_message(found, page)
    if message is None:
        typer.echo("Nothing sent: no shop is at risk this week so far.", err=True)
        return False
    result = delivery.deliver(message, settings, os.environ)
    for sent in result.sent:
        typer.echo(f"Sent:    {sent}", err=True)
    for failure in result.failed:
        log.error(
            "delivery failed: %s; the watch was not sent there, the next run sends it again "
            "if the shop is still at risk",
            printable(str(failure)),
        )
    return bool(result.failed)


def watch_document(found: watch.Watch, key: bytes) -> dict:
    """The watch as JSON: `at`, the target, each shop's week so far, the answer-now list."""
    from cs_metrics.report import watch_page

    pending = watch_page.pending_frame(found, key)
    return {
        "at": files.iso_utc(found.at),
        "response_rate_target": found.target,
        "shops": [
            {**dataclasses.asdict(s), "first_day": s.first_day.isoformat()} for s in found.shops
        ],
        "pending": pending.to_dict(orient="records"),
    }


def watch_table(found: watch.Watch, key: bytes) -> str:
    """The watch as aligned text for a terminal or a log."""
    from cs_metrics.report import watch_page

    lines = [f"As of {files.iso_utc(found.at)}; target {formats.percent(found.target)}"]
    for s in sorted(found.shops, key=lambda s: s.shop_id):
        lines.append(
            f"{printable(s.shop_id)}: {s.chats} chats, {s.on_time} on time, {s.late} late, "
            f"{s.missed} missed, {s.pending} pending; rate so far "
            f"{formats.percent(s.rate_so_far)} (all answered "
            f"{formats.percent(s.rate_if_all_answered)}, none "
            f"{formats.percent(s.rate_if_none_answered)}): "
            f"{watch_page.verdict_text(s)}"
        )
    pending = watch_page.pending_frame(found, key)
    if len(pending):
        lines.append("Answer now (soonest deadline first):")
        for r in pending.itertuples(index=False):
            paused = " (Holiday Mode: clock stopped)" if r.paused_by_holiday_mode else ""
            lines.append(
                f"  {printable(r.shop_id)} {printable(r.conversation_id)} {r.buyer} "
                f"deadline {r.deadline}, {r.clock_left} left{paused}"
            )
    return "\n".join(lines) + "\n"
