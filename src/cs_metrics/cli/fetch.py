"""`cs-metrics fetch tiktok`: a local store brought up to date from the TikTok Shop Open API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from cs_metrics.cli.common import ShopOpt, app, command, printable
from cs_metrics.errors import UsageError

fetch_app = typer.Typer(
    no_args_is_help=True,
    help="Fetch data from a marketplace's API into a local store (see docs/fetch.md).",
)
app.add_typer(fetch_app, name="fetch")

EXIT_PARTIAL = 4
"""The run kept what it fetched but could not fetch everything (it names what is missing)."""


@command(
    fetch_app,
    name="tiktok",
    help=(
        "Bring a store (a data folder compute, weekly and validate read as is) up to date from "
        "the TikTok Shop Open API: shops, conversations and their messages, rated sessions and "
        "TikTok's own performance figures, for every authorised shop or those named. Re-running "
        "fetches only what is new; a stopped run resumes. App key and secret come from "
        "TIKTOK_APP_KEY and TIKTOK_APP_SECRET; refreshed tokens are written back to the "
        "credentials file (mode 0600). Exit status: 0 all fetched, 2 bad invocation or "
        "credentials, 4 partial (what is missing is named; what was fetched is kept), 1 "
        "anything else.\n\n"
        "Example:\n\n"
        "  export TIKTOK_APP_KEY=6abc... TIKTOK_APP_SECRET=...\n\n"
        "  cs-metrics fetch tiktok --store store/ --credentials tiktok-tokens.json\n\n"
        "  cs-metrics weekly --data store/ --out reports/\n\n"
        "A first sync reaching back for a backfill, for one shop:\n\n"
        "\b\n  cs-metrics fetch tiktok --store store/ --credentials tiktok-tokens.json \\\n"
        "      --shop 7495000000000000001 --since 2026-08-24\n\n"
        "Every Monday, jobs/cs-metrics-weekly.sh fetches, then runs weekly, when "
        "CS_METRICS_TIKTOK_STORE and CS_METRICS_TIKTOK_CREDENTIALS are set (docs/fetch.md)."
    ),
)
def fetch_tiktok(
    store: Annotated[Path, typer.Option("--store", help="The store folder (created if new).")],
    credentials: Annotated[
        Path,
        typer.Option(
            "--credentials",
            help="JSON file with access_token, access_token_expire_in, refresh_token, "
            "refresh_token_expire_in (as the token endpoints return them).",
        ),
    ],
    shop: ShopOpt = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Fetch messages up to this instant (default and limit: now)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="A shop's first sync starts here (default: the week before --until's week, "
            "less --lookback-days).",
        ),
    ] = None,
    lookback_days: Annotated[
        int,
        typer.Option("--lookback-days", min=0, help="First sync: days before the evaluation week."),
    ] = 7,
    overlap_minutes: Annotated[
        int,
        typer.Option(
            "--overlap-minutes",
            min=0,
            help="Later syncs start this long before the store's complete-until (late messages).",
        ),
    ] = 60,
    api_base: Annotated[
        str, typer.Option("--api-base", help="Open API base URL.")
    ] = "https://open-api.tiktokglobalshop.com",
    auth_base: Annotated[
        str, typer.Option("--auth-base", help="Token endpoint base URL.")
    ] = "https://auth.tiktok-shops.com",
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, help="At most this many requests a second.")
    ] = 5.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for an answer.")
    ] = 30.0,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="Tries per request (429, 5xx, timeouts).")
    ] = 6,
    no_extras: Annotated[
        bool,
        typer.Option("--no-extras", help="Skip ratings (Search Sessions) and performance figures."),
    ] = False,
) -> None:
    from cs_metrics.fetch.client import Settings, client_from_environment
    from cs_metrics.fetch.outcome import Options
    from cs_metrics.fetch.sync import parse_until, sync

    for option, url in (("--api-base", api_base), ("--auth-base", auth_base)):
        if not url.startswith(("https://", "http://")):
            raise UsageError(f"{option}: expected an http(s):// URL, got {url!r}")
    now = dt.datetime.now(dt.UTC)
    options = Options(
        until=parse_until(until, now),
        shops=tuple(shop or ()),
        since=parse_until(since, now) if since else None,
        lookback_days=lookback_days,
        overlap_minutes=overlap_minutes,
        performance=not no_extras,
    )
    settings = Settings(
        api_base=api_base.rstrip("/"),
        auth_base=auth_base.rstrip("/"),
        timeout=timeout,
        requests_per_second=rate,
        attempts=attempts,
    )
    with client_from_environment(credentials, settings) as client:
        report = sync(client, store, options)
    for line in report.lines():
        (typer.echo(printable(line), err=True) if line.startswith("missing") else typer.echo(line))
    if not report.complete:
        typer.echo(
            f"cs-metrics: incomplete: {len(report.missing)} item(s) could not be fetched (named "
            "above); everything fetched is kept, and the next run resumes",
            err=True,
        )
        raise typer.Exit(EXIT_PARTIAL)
