"""A fake TikTok Shop Open API: a real HTTP server on 127.0.0.1 for the fetch tests.

It serves seeded shops with long-lived conversations, checks every request as the real API
would (signature, app key, access token, shop cipher, page sizes, page tokens) and records each
protocol violation in `violations` (the tests require none). Faults are injected per request:
429 with Retry-After, 500, slow answers, an expired access token, malformed JSON, a duplicated
page, an error page in the middle of a conversation, no API access, a refused refresh token,
and a server that goes down after some requests.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd

from cs_metrics.fetch.client import sign

APP_KEY = "test-app-key-6abc"
APP_SECRET = "test-app-secret-do-not-leak"
FIRST_ACCESS = "access-token-0-do-not-leak"
FIRST_REFRESH = "refresh-token-0-do-not-leak"
SECRETS = (APP_SECRET, FIRST_ACCESS, FIRST_REFRESH)
CONVERSATION_PAGE_LIMIT = 20
MESSAGE_PAGE_LIMIT = 10
VERSION = "202309"
START = pd.Timestamp("2026-10-26T00:00Z")
"""First message of the seeded data (three weeks before the evaluated week)."""
END = pd.Timestamp("2026-11-30T00:00Z")
"""Nothing is sent after this."""
ROLES = ("BUYER", "CUSTOMER_SERVICE", "ROBOT", "SYSTEM")
SHOPS = (
    ("7495000000000000001", "Shop SG", "SG"),
    ("7495000000000000002", "Shop MY", "MY"),
    ("7495000000000000003", "Shop GB", "GB"),
)


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    params: dict[str, str]
    body: str
    token: str
    number: int


@dataclass
class Fault:
    """An injected fault: `kind` answers the requests `when` accepts, `times` times."""

    kind: str
    when: Callable[[Request], bool]
    times: int = 1
    retry_after: str = "2"
    delay: float = 0.5
    action: Callable[[FakeTikTok], None] | None = None
    """For kind `call`: done to the server before it answers as usual."""


def seeded_data(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground truth: API message objects per conversation, and rated sessions.

    Each conversation alternates buyer questions and answers (a seller, sometimes the robot,
    within minutes to a day), with an occasional platform message; some conversations run the
    whole five weeks (long-lived), others a few days. No chat waits longer than 2 days, so a
    sync's lookback always reaches a chat's first message.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    span = int((END - START).total_seconds())
    for shop_id, _name, _market in SHOPS:
        for c in range(26):
            conversation_id = f"{shop_id[-1]}{c:03d}"
            long_lived = c % 3 == 0
            t = int(START.timestamp()) + rng.randrange(0 if long_lived else span // 2, span - 86400)
            stop = t + (span if long_lived else rng.randrange(2, 6) * 86400)
            n = 0
            while t < min(stop, int(END.timestamp())):
                answer = rng.choice(("CUSTOMER_SERVICE", "CUSTOMER_SERVICE", "ROBOT"))
                for role in ("BUYER", answer):
                    rows.append(_message(shop_id, conversation_id, n, t, role, rng))
                    n += 1
                    t += rng.randrange(60, 86400 if rng.random() < 0.3 else 3600)
                if rng.random() < 0.15:
                    rows.append(_message(shop_id, conversation_id, n, t, "SYSTEM", rng))
                    n += 1
                if rng.random() < 0.4:
                    sessions.append(
                        {
                            "shop_id": shop_id,
                            "id": f"s{conversation_id}-{n}",
                            "conversation_id": conversation_id,
                            "start_time": t - 600,
                            "end_time": t,
                            "satisfaction": {"score": rng.randint(1, 5), "rate_time": t + 120},
                        }
                    )
                t += rng.randrange(3600, 4 * 86400 if long_lived else 86400)
    return pd.DataFrame(rows), pd.DataFrame(sessions)


def _message(
    shop_id: str, conversation_id: str, n: int, t: int, role: str, rng: random.Random
) -> dict[str, Any]:
    kind = "NOTIFICATION" if role == "SYSTEM" else rng.choice(("TEXT", "TEXT", "IMAGE"))
    return {
        "shop_id": shop_id,
        "conversation_id": conversation_id,
        "id": f"m{conversation_id}-{n:04d}",
        "create_time": t,
        "type": kind,
        "content": json.dumps({"content": f"message {n}"}),
        "is_visible": True,
        "sender": {"im_user_id": f"u{role[0]}{shop_id[-1]}", "role": role, "nickname": "x"},
    }


class FakeTikTok:
    """The server's state: data, tokens, faults, and what it saw."""

    def __init__(self, seed: int = 7) -> None:
        self.messages, self.sessions = seeded_data(seed)
        ordered = self.messages.sort_values(["create_time", "id"], ascending=False)
        self.by_conversation: dict[tuple[str, str], list[dict[str, Any]]] = {
            (str(shop), str(conversation)): [
                {k: _plain(v) for k, v in m.items()} for m in group.to_dict("records")
            ]
            for (shop, conversation), group in ordered.groupby(["shop_id", "conversation_id"])
        }
        self.visible_until = int(END.timestamp())
        """Messages sent after this do not exist yet (the world before a later sync)."""
        self.shops = {shop_id: (name, market) for shop_id, name, market in SHOPS}
        self.authorized = set(self.shops)
        self.access = {FIRST_ACCESS}
        self.refresh_token = FIRST_REFRESH
        self.refresh_refused = False
        self.issued = 0
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()
        self.performance = self._performance()

    def add_message(self, shop_id: str, conversation_id: str, create_time: int) -> None:
        """A buyer message arrives in a conversation (it moves to the front of the listing)."""
        rng = random.Random(create_time)
        conversation = self.by_conversation[(shop_id, conversation_id)]
        message = _message(shop_id, conversation_id, 9000, create_time, "BUYER", rng)
        conversation.insert(0, message)
        self.messages = pd.concat([self.messages, pd.DataFrame([message])], ignore_index=True)

    # --- ground truth ---------------------------------------------------------------------

    def truth(self, until: pd.Timestamp | None = None) -> pd.DataFrame:
        """The messages that exist, sent up to `until`, as (shop, conversation, id, sent_at)."""
        frame = self.messages.loc[self.messages["create_time"] <= self.visible_until]
        if until is not None:
            frame = frame.loc[frame["create_time"] <= until.timestamp()]
        return pd.DataFrame(
            {
                "shop_id": frame["shop_id"],
                "conversation_id": frame["conversation_id"],
                "message_id": frame["id"],
                "sent_at": pd.to_datetime(frame["create_time"], unit="s", utc=True),
            }
        ).reset_index(drop=True)

    def _performance(self) -> dict[str, list[dict[str, Any]]]:
        rng = random.Random(3)
        days = pd.date_range(START, END, freq="D")
        return {
            shop_id: [
                {
                    "date": d.strftime("%Y-%m-%d"),
                    "response_rate": str(round(rng.uniform(0.7, 1), 3)),
                    "response_time_seconds": str(rng.randrange(60, 7200)),
                    "satisfaction_rate": str(round(rng.uniform(0.5, 1), 3)),
                }
                for d in days
            ]
            for shop_id in self.shops
        }

    # --- faults ---------------------------------------------------------------------------

    def inject(self, kind: str, when: Callable[[Request], bool] | None = None, **kw: Any) -> Fault:
        """Add a fault for the requests `when` accepts (default: every API request)."""
        fault = Fault(kind, when or (lambda r: not r.path.startswith("/api/v2/")), **kw)
        self.faults.append(fault)
        return fault

    def _fault(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.when(request):
                fault.times -= 1
                return fault
        return None

    # --- answering ------------------------------------------------------------------------

    def answer(self, request: Request) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers, body, and how long to wait before sending them."""
        fault = self._fault(request)
        status, headers, body = self._faulty(request, fault)
        return status, headers, body, fault.delay if fault and fault.kind == "slow" else 0.0

    def _faulty(self, request: Request, fault: Fault | None) -> tuple[int, dict[str, str], bytes]:
        if fault is not None and fault.kind == "call" and fault.action is not None:
            fault.action(self)
            fault = None
        if fault is not None:
            kind = fault.kind
            if kind == "429":
                return 429, {"Retry-After": fault.retry_after}, _json(_error(36009429, "limit"))
            if kind == "500":
                return 500, {}, b"<html>Internal Server Error</html>"
            if kind == "down":
                return 503, {}, b"unavailable"
            if kind == "malformed":
                return 200, {}, b'{"code": 0, "data": {"messages": [{"id": '
            if kind == "expired_token":
                self.access.discard(request.token)
                return 200, {}, _json(_error(105002, "Access token is expired"))
            if kind == "error_page":
                return 200, {}, _json(_error(36009010, "Conversation data unavailable"))
            if kind == "no_access":
                return 200, {}, _json(_error(105005, "App has no permission for this API"))
            if kind == "duplicate_page":
                return 200, {}, _json(self._route(request, duplicate=True))
        if not request.path.startswith(("/api/v2/", "/authorization/", "/customer_service/")):
            return 404, {"Content-Type": "text/html"}, b"<html>Not Found</html>"
        return 200, {}, _json(self._route(request))

    def _route(self, request: Request, duplicate: bool = False) -> dict[str, Any]:
        if request.path == "/api/v2/token/refresh":
            return self._refresh(request)
        problem = self._check(request)
        if problem:
            self.violations.append(f"{request.path}: {problem}")
            return _error(106001 if "token" not in problem else 105001, problem)
        parts = request.path.split("/")
        if request.path == f"/authorization/{VERSION}/shops":
            return _ok(
                {
                    "shops": [
                        {"id": s, "name": n, "region": m, "cipher": _cipher(s), "code": s[-4:]}
                        for s, (n, m) in sorted(self.shops.items())
                        if s in self.authorized
                    ]
                }
            )
        shop_id = self._shop(request)
        if shop_id is None:
            self.violations.append(f"{request.path}: unknown or missing shop_cipher")
            return _error(106001, "invalid shop_cipher")
        if request.path == f"/customer_service/{VERSION}/conversations":
            return self._conversations(request, shop_id)
        if parts[1:3] == ["customer_service", VERSION] and parts[-1] == "messages":
            return self._messages(request, shop_id, parts[-2], duplicate)
        if request.path == "/customer_service/202407/performance":
            days = self.performance[shop_id]
            first, last = request.params.get("start_date", ""), request.params.get("end_date", "")
            return _ok({"performance": [d for d in days if first <= d["date"] <= last]})
        if request.path == "/customer_service/202407/sessions/search":
            return self._sessions(request, shop_id)
        self.violations.append(f"{request.path}: unknown path")
        return _error(40004, "not found")

    def _check(self, request: Request) -> str:
        params = request.params
        if params.get("app_key") != APP_KEY:
            return "wrong app_key"
        if not params.get("timestamp", "").isdigit():
            return "no timestamp"
        expected = sign(APP_SECRET, request.path, params, request.body)
        if params.get("sign") != expected:
            return "bad signature"
        if request.token not in self.access:
            return "unknown access token"
        return ""

    def _shop(self, request: Request) -> str | None:
        cipher = request.params.get("shop_cipher", "")
        found = [s for s in self.shops if _cipher(s) == cipher]
        return found[0] if found and found[0] in self.authorized else None

    def _page(self, request: Request, limit: int) -> tuple[int, int] | None:
        size = request.params.get("page_size", "")
        if not size.isdigit() or not 1 <= int(size) <= limit:
            self.violations.append(f"{request.path}: page_size {size!r} (limit {limit})")
            return None
        token = request.params.get("page_token", "")
        if token and not token.startswith("p"):
            self.violations.append(f"{request.path}: page token {token!r} never given")
            return None
        return (int(token[1:]) if token else 0), int(size)

    def _visible(self, shop_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each conversation's messages that exist, newest first (plain lists: this runs for
        every request, and a frame per request made the tests slow)."""
        return {
            conversation_id: [m for m in messages if m["create_time"] <= self.visible_until]
            for (shop, conversation_id), messages in self.by_conversation.items()
            if shop == shop_id and messages[-1]["create_time"] <= self.visible_until
        }

    def _conversations(self, request: Request, shop_id: str) -> dict[str, Any]:
        page = self._page(request, CONVERSATION_PAGE_LIMIT)
        if page is None:
            return _error(40006, "bad page")
        offset, size = page
        latest = sorted(
            ((messages[0], c) for c, messages in self._visible(shop_id).items() if messages),
            key=lambda pair: (pair[0]["create_time"], pair[1]),
            reverse=True,
        )
        chosen = latest[offset : offset + size]
        more = offset + size < len(latest)
        items = [
            {
                "id": conversation_id,
                "participant_count": 2,
                "latest_message": {"id": last["id"], "create_time": last["create_time"]},
                "create_time": last["create_time"] - 86400,
            }
            for last, conversation_id in chosen
        ]
        return _ok({"conversations": items, "next_page_token": f"p{offset + size}" if more else ""})

    def _messages(
        self, request: Request, shop_id: str, conversation_id: str, duplicate: bool
    ) -> dict[str, Any]:
        page = self._page(request, MESSAGE_PAGE_LIMIT)
        if page is None:
            return _error(40006, "bad page")
        offset, size = page
        rows = self._visible(shop_id).get(conversation_id)
        if not rows:
            self.violations.append(f"{request.path}: unknown conversation")
            return _error(36009004, "conversation not found")
        served = max(0, offset - size) if duplicate else offset
        chosen = rows[served : served + size]
        more = offset + size < len(rows)
        token = f"p{offset}" if duplicate else (f"p{offset + size}" if more else "")
        keys = ["id", "create_time", "type", "content", "is_visible", "sender"]
        items = [{k: m[k] for k in keys} for m in chosen]
        return _ok({"messages": items, "next_page_token": token, "has_more": bool(token)})

    def _sessions(self, request: Request, shop_id: str) -> dict[str, Any]:
        if request.method != "POST":
            self.violations.append(f"{request.path}: not a POST")
        body = json.loads(request.body or "{}")
        page = self._page(request, 50)
        if page is None:
            return _error(40006, "bad page")
        offset, size = page
        frame = self.sessions
        frame = frame.loc[
            (frame["shop_id"] == shop_id)
            & (frame["start_time"] >= body.get("create_time_ge", 0))
            & (frame["start_time"] < body.get("create_time_lt", 0))
            & (frame["end_time"] <= self.visible_until)
        ].sort_values("id")
        chosen = frame.iloc[offset : offset + size]
        more = offset + size < len(frame)
        keys = ["id", "conversation_id", "start_time", "end_time", "satisfaction"]
        items = [{k: _plain(row[k]) for k in keys} for _, row in chosen.iterrows()]
        return _ok({"sessions": items, "next_page_token": f"p{offset + size}" if more else ""})

    def _refresh(self, request: Request) -> dict[str, Any]:
        params = request.params
        if params.get("app_key") != APP_KEY or params.get("app_secret") != APP_SECRET:
            self.violations.append("token refresh: wrong app key or secret")
            return _error(36004001, "invalid app")
        if params.get("grant_type") != "refresh_token":
            self.violations.append("token refresh: wrong grant_type")
        if self.refresh_refused or params.get("refresh_token") != self.refresh_token:
            return _error(36004004, "refresh token is expired")
        self.issued += 1
        access, self.refresh_token = f"access-{self.issued}", f"refresh-{self.issued}"
        self.access = {access}
        now = int(time.time())
        return _ok(
            {
                "access_token": access,
                "access_token_expire_in": now + 7 * 86400,
                "refresh_token": self.refresh_token,
                "refresh_token_expire_in": now + 60 * 86400,
                "open_id": "o",
                "seller_name": "s",
            }
        )


def _cipher(shop_id: str) -> str:
    return f"ROW_cipher_{shop_id[-4:]}"


def _plain(value: Any) -> Any:
    """Numpy scalars as plain Python values for JSON."""
    return value.item() if hasattr(value, "item") else value


def _ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "message": "Success", "request_id": "r", "data": data}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "r", "data": None}


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTikTok
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API: the client reuses connections
    disable_nagle_algorithm = True  # headers and body go separately: no 40 ms wait for an ACK

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        with self.fake.lock:
            request = Request(
                self.command,
                url.path,
                params,
                body,
                self.headers.get("x-tts-access-token", ""),
                len(self.fake.requests) + 1,
            )
            self.fake.requests.append(request)
            status, headers, payload, delay = self.fake.answer(request)
        time.sleep(delay)  # outside the lock: the client's retry is not held up by it
        # The client may have given up waiting (a slow answer): then there is no one to send to.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


@contextmanager
def running(fake: FakeTikTok) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
