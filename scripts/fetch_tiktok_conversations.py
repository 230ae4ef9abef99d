#!/usr/bin/env python3
"""Fetch TikTok Shop conversations' messages and append them as dump pages for cs-metrics.

Pages through Get Conversation Messages
(``GET /customer_service/{version}/conversations/{conversation_id}/messages``) for each given
conversation id and appends one JSON line per page to OUT, in the layout that
``cs-metrics import tiktok-api`` reads (docs/import.md):

    {"shop_id": ..., "conversation_id": ..., "fetched_at": ..., "response": {<API body>}}

Credentials come from the environment: TIKTOK_APP_KEY, TIKTOK_APP_SECRET and
TIKTOK_ACCESS_TOKEN. Requests are signed as the TikTok Shop Open API documents: HMAC-SHA256,
keyed with the app secret, over ``secret + path + sorted(key + value of the query parameters
except sign and access_token) + body + secret``, sent as the ``sign`` parameter, with the access
token in the ``x-tts-access-token`` header.

NOT TESTED AGAINST THE LIVE API: it was written on a machine without internet access, from the
public documentation. Check the first pages by hand before relying on it.

Standard library only. Example:

    export TIKTOK_APP_KEY=... TIKTOK_APP_SECRET=... TIKTOK_ACCESS_TOKEN=...
    python scripts/fetch_tiktok_conversations.py --shop-id 7495... --shop-cipher ROW_... \\
        --out raw/2026-11-23.jsonl 7494560109732380456 7494560109732380457
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BASE_URL = "https://open-api.tiktokglobalshop.com"
API_VERSION = "202309"
ENV_KEYS = ("TIKTOK_APP_KEY", "TIKTOK_APP_SECRET", "TIKTOK_ACCESS_TOKEN")
MAX_PAGES = 10_000  # per conversation: a guard against a page token that never ends
UNSIGNED = ("sign", "access_token")


def sign(app_secret: str, path: str, params: dict[str, str], body: str = "") -> str:
    """The request signature: HMAC-SHA256 (key: app secret) of the wrapped canonical string."""
    pairs = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in UNSIGNED)
    text = f"{app_secret}{path}{pairs}{body}{app_secret}"
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def messages_url(
    base_url: str, version: str, conversation_id: str, params: dict[str, str], app_secret: str
) -> str:
    """The signed URL of one Get Conversation Messages page."""
    path = (
        f"/customer_service/{version}/conversations/{urllib.parse.quote(conversation_id)}/messages"
    )
    signed = {**params, "sign": sign(app_secret, path, params)}
    return f"{base_url}{path}?{urllib.parse.urlencode(signed)}"


def fetch_page(url: str, access_token: str, timeout: float) -> dict:
    """One response body; an HTTP error with a JSON body is returned as that body."""
    request = urllib.request.Request(
        url,
        headers={"x-tts-access-token": access_token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return {"code": exc.code, "message": f"HTTP {exc.code}: {text[:200]}", "data": None}
    except (urllib.error.URLError, TimeoutError) as exc:  # no connection: an error page
        return {"code": -1, "message": f"request failed: {exc}", "data": None}


def fetch_conversation(args: argparse.Namespace, env: dict[str, str], conversation_id: str):
    """Yield a dump record per page of one conversation, stopping after an error page."""
    token = ""
    for _ in range(MAX_PAGES):
        params = {
            "app_key": env["TIKTOK_APP_KEY"],
            "timestamp": str(int(time.time())),
            "page_size": str(args.page_size),
        }
        if args.shop_cipher:
            params["shop_cipher"] = args.shop_cipher
        if args.locale:
            params["locale"] = args.locale
        if token:
            params["page_token"] = token
        url = messages_url(
            args.base_url, args.api_version, conversation_id, params, env["TIKTOK_APP_SECRET"]
        )
        body = fetch_page(url, env["TIKTOK_ACCESS_TOKEN"], args.timeout)
        yield {
            "shop_id": args.shop_id,
            "conversation_id": conversation_id,
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
            "response": body,
        }
        data = body.get("data") or {}
        token = data.get("next_page_token") or ""
        if body.get("code") != 0 or not token or data.get("has_more") is False:
            return
        time.sleep(args.pause)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Append TikTok Shop Get Conversation Messages pages to a cs-metrics dump "
        "(one JSON line per page). Credentials from TIKTOK_APP_KEY, TIKTOK_APP_SECRET, "
        "TIKTOK_ACCESS_TOKEN. Untested against the live API."
    )
    parser.add_argument("conversation_ids", nargs="*", help="conversation ids to fetch")
    parser.add_argument("--ids-file", type=Path, help="file with one conversation id per line")
    parser.add_argument("--shop-id", required=True, help="shop id written into each record")
    parser.add_argument("--shop-cipher", default="", help="the shop's cipher (shop_cipher)")
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to append to")
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--locale", default="")
    parser.add_argument("--base-url", default=BASE_URL)
    parser.add_argument("--api-version", default=API_VERSION)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between pages")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ids = list(args.conversation_ids)
    if args.ids_file:
        ids += [line.strip() for line in args.ids_file.read_text().splitlines() if line.strip()]
    missing = [k for k in ENV_KEYS if not os.environ.get(k)]
    if missing:
        print(f"missing environment variable(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    if not ids:
        print("no conversation ids given", file=sys.stderr)
        return 2
    env = {k: os.environ[k] for k in ENV_KEYS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    errors = 0
    with args.out.open("a", encoding="utf-8") as out:
        for conversation_id in ids:
            for record in fetch_conversation(args, env, conversation_id):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                if record["response"].get("code") != 0:
                    errors += 1
                    message = record["response"].get("message")
                    print(f"{conversation_id}: API error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
