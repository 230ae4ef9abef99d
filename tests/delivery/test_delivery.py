"""Delivery (docs/delivery.md): the weekly result sent by e-mail and webhook to real local servers.

An SMTP server (aiosmtpd) and an HTTP server run on 127.0.0.1; the tests read what arrived.
No secret may appear in a message, a request, the command's output, the log or OUT.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from cs_metrics.delivery import load_delivery, week_message
from cs_metrics.delivery.message import html_body, webhook_payload
from cs_metrics.errors import UsageError
from cs_metrics.policy import Policy, load_policy
from paths import ROOT

SAMPLE = ROOT / "sample_data"
AS_OF = "2026-11-23"
USER = "reports@shop.example"
SECRET = "s3cr3t-Pa55word-7f1c"
TOKEN = "T0KEN-b7e4-hook-9f8e7d"
PASSWORD_ENV = "CS_METRICS_TEST_SMTP_PASSWORD"
URL_ENV = "CS_METRICS_TEST_WEBHOOK_URL"
RECIPIENTS = ["ops@shop.example", "manager@shop.example"]
runner = CliRunner()


def secret_forms() -> list[bytes]:
    """The secrets as they could leak: plain, and base64 as SMTP AUTH sends them."""
    forms = [SECRET.encode(), TOKEN.encode(), base64.b64encode(SECRET.encode())]
    return [*forms, base64.b64encode(f"\0{USER}\0{SECRET}".encode())]


def assert_no_secret(data: str | bytes, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for form in secret_forms():
        assert form not in raw, f"a secret appears in {where}"


# --- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Arrived:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    authenticated: bool
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Inbox:
    """A real SMTP server on 127.0.0.1 with AUTH LOGIN (over plain text: loopback only)."""

    port: int = 0
    received: list[Arrived] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Arrived(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                bool(session.authenticated),
                session.ssl is not None,
            )
        )
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            SECRET.encode(),
        )
        self.logins.append(mechanism.encode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox(port=free_port())
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=box.authenticate,
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN"],  # so that the client logs in with AUTH LOGIN
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_inbox(certificate: tuple[Path, Path]) -> Iterator[Inbox]:
    """An SMTP server that requires STARTTLS before anything else, login included."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    box = Inbox(port=free_port())
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=box.authenticate,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
    )
    controller.start()
    yield box
    controller.stop()


@dataclass
class Hook:
    """A real HTTP server on 127.0.0.1 that records each POST and answers `status`."""

    port: int
    status: int = 200
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{TOKEN}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), body))
            answer = b"ok" if state.status < 400 else b"internal error"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


# --- the week ------------------------------------------------------------------------------------


def invoke(*args: Any, env: dict[str, str] | None = None):
    """Run the CLI in-process with the secrets in its environment."""
    environment = {PASSWORD_ENV: SECRET, **(env or {})}
    return runner.invoke(app, [str(a) for a in args], env=environment)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT with the sample's weeks of 2026-11-16 and -23 (VN-001: a warning, then a violation
    point) and of 2026-11-30 (the data ends on the 24th: MY-001 and VN-001 withheld)."""
    out = tmp_path_factory.mktemp("evaluated") / "out"
    result = invoke(
        "backfill", "--data", SAMPLE, "--out", out, "--from", "2026-11-16", "--to", AS_OF
    )
    assert result.exit_code == 0, result.output
    result = invoke("weekly", "--data", SAMPLE, "--out", out, "--as-of", "2026-11-30")
    assert result.exit_code == 4, result.output
    return out


@pytest.fixture
def out(evaluated: Path, tmp_path: Path) -> Path:
    """A copy of the evaluated OUT for one test."""
    return Path(shutil.copytree(evaluated, tmp_path / "out"))


def write_config(
    path: Path,
    smtp_port: int | None = None,
    webhook: str | None = None,
    *,
    login: bool = True,
    timeout: float = 5,
    extra_email: str = "",
    extra: str = "",
) -> Path:
    """A config file with a [policy] table and the given channels."""
    lines = ["[policy]", "response_rate_target = 0.85", "", "[delivery]", extra]
    if smtp_port is not None:
        lines += [
            "[delivery.email]",
            'host = "127.0.0.1"',
            f"port = {smtp_port}",
            'security = "none"',
            f'sender = "{USER}"',
            f"to = {json.dumps(RECIPIENTS)}",
            f"timeout_seconds = {timeout}",
            extra_email,
        ]
        if login:
            lines += [f'username = "{USER}"', f'password_env = "{PASSWORD_ENV}"']
    if webhook is not None:
        lines += ["[delivery.webhook]", webhook, f"timeout_seconds = {timeout}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The command's error lines (the test servers' own log records left out)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR" and r.name.startswith("cs_metrics")
    ]


def every_file_under(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    """The text part, the HTML part and the attachments of a received e-mail."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    lines = [str(part.get_content()).replace("\r\n", "\n") for part in (text, html)]
    return lines[0], lines[1], list(message.iter_attachments())


# --- what arrives --------------------------------------------------------------------------------


def test_weekly_sends_the_outcome_and_the_report_by_email_and_webhook(
    out: Path, tmp_path: Path, inbox: Inbox, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """The Monday run with a [delivery] table: one e-mail to every recipient (login, subject,
    text and HTML parts with the action list, the report attached) and one webhook POST."""
    config = write_config(tmp_path / "config.toml", inbox.port, f'url_env = "{URL_ENV}"', extra="")
    result = invoke(
        "weekly", "--data", SAMPLE, "--out", out, "--as-of", AS_OF, "--config", config,
        env={URL_ENV: hook.url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sent:    e-mail to 2 recipients" in result.stdout
    assert "Sent:    webhook to 127.0.0.1:" in result.stdout
    assert error_lines(caplog) == []

    [mail] = inbox.received
    assert mail.authenticated and inbox.logins == [b"LOGIN"]
    assert mail.mail_from == USER
    assert sorted(mail.rcpt_tos) == sorted(RECIPIENTS)
    message = mail.message
    assert message["Subject"] == "cs-metrics 2026-11-23: 1 violation point"
    assert message["To"] == ", ".join(RECIPIENTS)
    text, html, attachments = parts(message)
    assert "Outcome: 8 shops: 1 violation point (VN-001), 7 fine" in text
    vn = re.search(
        r"^- VN-001 \((.+?)\): 1 violation point; 12-hour rate (\d+\.\d)%(.+)$", text, re.M
    )
    assert vn is not None, text
    doc = json.loads((out / AS_OF / "metrics.json").read_text())
    shop = next(s for s in doc["shops"] if s["shop_id"] == "VN-001")
    assert vn.group(1) == shop["name"]
    assert vn.group(2) == f"{shop['response_rate_12h'] * 100:.1f}"
    assert "it also failed on 2026-11-16" in vn.group(3)
    assert "attached (report-2026-11-23.html" in text
    assert "<td>1 violation point</td>" in html and "VN-001" in html
    [attachment] = attachments
    assert attachment.get_filename() == "report-2026-11-23.html"
    assert attachment.get_content_type() == "text/html"
    assert attachment.get_payload(decode=True) == (out / AS_OF / "report.html").read_bytes()

    [(path, headers, body)] = hook.received
    assert path == f"/services/{TOKEN}"
    assert headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    assert payload["text"].startswith("cs-metrics 2026-11-23: 1 violation point\n")
    assert "VN-001" in payload["text"]
    assert payload["as_of"] == AS_OF
    assert payload["actions"] == {"violation_point": 1, "warning": 0, "withheld": 0, "none": 7}
    assert [(s["shop_id"], s["action"]) for s in payload["shops_with_actions"]] == [
        ("VN-001", "violation_point")
    ]
    assert payload["shops_with_actions"][0]["response_rate_12h"] == shop["response_rate_12h"]
    assert payload["withheld"] == [] and payload["stale_weeks"] == []
    assert payload["needs_look"] is False
    assert payload["report"] == str(out / AS_OF / "report.html")

    assert_no_secret(mail.raw, "the e-mail")
    assert_no_secret(body, "the webhook body")
    assert_no_secret(json.dumps(headers), "the webhook headers")
    assert_no_secret(result.output + caplog.text, "the output or the log")
    for written in every_file_under(out):
        assert_no_secret(written.read_bytes(), str(written))


def test_a_report_over_the_size_limit_is_linked_not_attached(
    out: Path, tmp_path: Path, inbox: Inbox, hook: Hook
) -> None:
    """Above attach_max_bytes the e-mail links the report under report_base_url; the webhook
    names the same URL."""
    config = write_config(
        tmp_path / "config.toml",
        inbox.port,
        f'url = "{hook.url}"',
        extra_email="attach_max_bytes = 1000",
        extra='report_base_url = "https://reports.shop.example/cs-metrics/"',
    )
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    assert result.exit_code == 0, result.output
    link = "https://reports.shop.example/cs-metrics/2026-11-23/report.html"
    text, html, attachments = parts(inbox.received[0].message)
    assert attachments == []
    assert f"too large to attach: {link}" in text
    assert f'<a href="{link}">' in html
    payload = json.loads(hook.received[0][2])
    assert payload["report"] == link
    assert f"<{link}|report 2026-11-23>" in payload["text"]


def test_without_a_base_url_a_large_report_is_named_by_its_path(
    out: Path, tmp_path: Path, inbox: Inbox
) -> None:
    config = write_config(
        tmp_path / "config.toml", inbox.port, extra_email="attach_max_bytes = 1000"
    )
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    assert result.exit_code == 0, result.output
    text, _html, attachments = parts(inbox.received[0].message)
    assert attachments == []
    assert f"too large to attach; it is at {out / AS_OF / 'report.html'}" in text


def tls_config(path: Path, port: int, ca_file: Path | None) -> Path:
    """A config for a STARTTLS server on 127.0.0.1 with login."""
    path.write_text(
        "[delivery.email]\n"
        f'host = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\n'
        f'sender = "{USER}"\nto = {json.dumps(RECIPIENTS)}\ntimeout_seconds = 5\n'
        f'username = "{USER}"\npassword_env = "{PASSWORD_ENV}"\n'
        + (f'ca_file = "{ca_file}"\n' if ca_file else "")
    )
    return path


def test_starttls_with_the_servers_ca_logs_in_and_sends_encrypted(
    out: Path, tmp_path: Path, tls_inbox: Inbox, certificate: tuple[Path, Path]
) -> None:
    config = tls_config(tmp_path / "c.toml", tls_inbox.port, certificate[0])
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    assert result.exit_code == 0, result.output
    [mail] = tls_inbox.received
    assert mail.tls and mail.authenticated
    assert sorted(mail.rcpt_tos) == sorted(RECIPIENTS)


def test_ssl_from_the_start_sends_encrypted(
    out: Path, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """security = "ssl": TLS from the first byte (port 465 style)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    box = Inbox(port=free_port())
    controller = Controller(
        box, hostname="127.0.0.1", port=box.port, authenticator=box.authenticate,
        ssl_context=context, auth_require_tls=False,  # aiosmtpd sees TLS only after STARTTLS
    )  # fmt: skip
    controller.start()
    try:
        config = tls_config(tmp_path / "c.toml", box.port, certificate[0])
        config.write_text(config.read_text().replace('"starttls"', '"ssl"'))
        result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    [mail] = box.received
    assert (
        mail.authenticated and mail.message["Subject"] == "cs-metrics 2026-11-23: 1 violation point"
    )


def test_starttls_refuses_a_certificate_it_cannot_verify(
    out: Path, tmp_path: Path, tls_inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    """No fallback to an unverified or plain connection: the password is never sent."""
    config = tls_config(tmp_path / "c.toml", tls_inbox.port, None)
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    expected = f"e-mail: TLS with 127.0.0.1:{tls_inbox.port} failed: self-signed certificate"
    assert_one_failure(result, caplog, expected, out)
    assert tls_inbox.logins == [] and tls_inbox.received == []


def test_notify_resends_a_stored_week_with_its_withheld_shops(
    out: Path, tmp_path: Path, inbox: Inbox, hook: Hook
) -> None:
    """`notify` re-sends a stored week; a withheld week says why in every channel, and notify's
    own exit status is about the sending (0)."""
    config = write_config(tmp_path / "config.toml", inbox.port, f'url = "{hook.url}"')
    for _ in range(2):
        result = invoke("notify", "--out", out, "--as-of", "2026-11-30", "--config", config)
        assert result.exit_code == 0, result.output
    assert len(inbox.received) == len(hook.received) == 2
    message = inbox.received[-1].message
    assert message["Subject"] == "cs-metrics 2026-11-30: 2 withheld"
    text, html, _ = parts(message)
    assert "Needs a look:" in text
    assert "- No warning or violation point for MY-001, VN-001: the data does not cover" in text
    assert re.search(
        r"^- VN-001 \(.+\): Withheld; 12-hour rate 65\.5%, below the 85\.0% target, "
        r"but no warning or violation point: data ends Tue 24 Nov 14:27$",
        text,
        re.M,
    )
    assert "Needs a look" in html
    payload = json.loads(hook.received[-1][2])
    assert payload["withheld"] == [
        {"shop_id": "MY-001", "reason": "data ends Tue 24 Nov 15:27"},
        {"shop_id": "VN-001", "reason": "data ends Tue 24 Nov 14:27"},
    ]
    assert payload["actions"]["withheld"] == 2
    assert payload["needs_look"] is True


def test_notify_needs_a_delivery_table(out: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy.toml"
    config.write_text("[policy]\nwindow_days = 7\n")
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    assert result.exit_code == 2
    assert "nothing to send" in result.stderr


# --- failures ------------------------------------------------------------------------------------


def assert_one_failure(
    result: Any, caplog: pytest.LogCaptureFixture, expected: str, out: Path
) -> None:
    """Exit 4, one log line naming the channel and the reason, the files kept, no secret."""
    assert result.exit_code == 4, result.output
    [line] = error_lines(caplog)
    assert line.startswith(f"delivery failed: {expected}"), line
    assert "re-send with: cs-metrics notify --out" in line
    assert_no_secret(result.output + caplog.text, "the output or the log")
    assert (out / AS_OF / "report.html").exists() and (out / AS_OF / "metrics.json").exists()


def test_weekly_keeps_its_files_and_exits_4_when_the_smtp_server_refuses(
    out: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    config = write_config(tmp_path / "config.toml", port)
    shutil.rmtree(out / AS_OF)
    result = invoke("weekly", "--data", SAMPLE, "--out", out, "--as-of", AS_OF, "--config", config)
    assert "Outcome: 8 shops: 1 violation point (VN-001), 7 fine" in result.stdout
    assert_one_failure(result, caplog, f"e-mail: 127.0.0.1:{port} refused the connection", out)


@pytest.mark.parametrize("channel", ["email", "webhook"])
def test_a_server_that_never_answers_times_out(
    out: Path, tmp_path: Path, silent_port: int, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that accepts and never answers costs the timeout, not the whole job."""
    if channel == "email":
        config = write_config(tmp_path / "c.toml", silent_port, timeout=0.5)
        expected = f"e-mail: no answer from 127.0.0.1:{silent_port} within 0.5 s"
    else:
        url = f'url = "http://127.0.0.1:{silent_port}/services/{TOKEN}"'
        config = write_config(tmp_path / "c.toml", webhook=url, timeout=0.5)
        expected = f"webhook: no answer from 127.0.0.1:{silent_port} within 0.5 s"
    result = invoke("notify", "--out", out, "--as-of", AS_OF, "--config", config)
    assert_one_failure(result, caplog, expected, out)


def test_bad_credentials_are_named_without_the_password(
    out: Path, tmp_path: Path, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "config.toml", inbox.port)
    result = invoke(
        "notify", "--out", out, "--as-of", AS_OF, "--config", config,
        env={PASSWORD_ENV: "wrong-" + SECRET[::-1]},
    )  # fmt: skip
    assert_one_failure(
        result,
        caplog,
        f"e-mail: 127.0.0.1:{inbox.port} refused the login of user {USER} (535)",
        out,
    )
    assert "wrong-" not in result.output + caplog.text
    assert inbox.received == []


def test_a_missing_password_variable_is_named(
    out: Path, tmp_path: Path, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "config.toml", inbox.port)
    result = runner.invoke(
        app, ["notify", "--out", str(out), "--as-of", AS_OF, "--config", str(config)],
        env={PASSWORD_ENV: None},
    )  # fmt: skip
    expected = f"e-mail: environment variable {PASSWORD_ENV} (the password) is not set"
    assert_one_failure(result, caplog, expected, out)


def test_a_webhook_answering_500_fails_alone_and_the_email_still_goes(
    out: Path, tmp_path: Path, inbox: Inbox, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """One channel failing does not stop the other; the URL's token is never shown."""
    hook.status = 500
    config = write_config(tmp_path / "config.toml", inbox.port, f'url_env = "{URL_ENV}"')
    result = invoke(
        "notify", "--out", out, "--as-of", AS_OF, "--config", config, env={URL_ENV: hook.url}
    )
    expected = f"webhook: 127.0.0.1:{hook.port} answered HTTP 500 Internal Server Error"
    assert_one_failure(result, caplog, expected, out)
    assert len(inbox.received) == 1 and len(hook.received) == 1
    assert "Sent:    e-mail to 2 recipients" in result.stdout


@pytest.mark.slow
def test_the_installed_command_logs_one_line_for_a_failed_webhook(
    out: Path, tmp_path: Path, hook: Hook
) -> None:
    """The real entry point: the failure is one stderr line; exit 4; no token anywhere."""
    hook.status = 500
    config = write_config(tmp_path / "config.toml", webhook=f'url_env = "{URL_ENV}"')
    argv = [str(Path(sys.executable).with_name("cs-metrics")), "notify", "--out", str(out)]
    run = subprocess.run(
        [*argv, "--as-of", AS_OF, "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, URL_ENV: hook.url},
        timeout=120,
        check=False,
    )
    assert run.returncode == 4, run.stderr
    lines = run.stderr.splitlines()
    failures = [line for line in lines if "delivery failed" in line]
    assert len(failures) == 1
    assert f"ERROR delivery failed: webhook: 127.0.0.1:{hook.port} answered HTTP 500" in failures[0]
    assert_no_secret(run.stdout + run.stderr, "the command's output")


# --- configuration -------------------------------------------------------------------------------

EMAIL = (
    '[delivery.email]\nhost = "smtp.example.com"\nsender = "a@example.com"\n'
    'to = ["b@example.com"]\n'
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (EMAIL + "port = \"587\"\n", "delivery.email.port = '587': must be a whole number"),
        (EMAIL + 'pasword_env = "X"\n', "unknown keys in [delivery.email]: pasword_env"),
        (EMAIL + f'password = "{SECRET}"\n', "unknown keys in [delivery.email]: password"),
        (EMAIL + 'security = "tls"\n', "must be one of starttls, ssl, none"),
        (EMAIL + 'username = "u"\n', "needs both username and password_env"),
        (EMAIL + 'username = "u"\npassword_env = "P"\nsecurity = "none"\n', "unencrypted"),
        (EMAIL + 'password_env = "my password"\nusername = "u"\n', "name of an environment"),
        (EMAIL + "timeout_seconds = 0\n", "must be over 0"),
        (EMAIL + 'ca_file = "/nonexistent/ca.pem"\n', "no such file"),
        (EMAIL.replace('["b@example.com"]', "[]"), "must be a list of e-mail addresses"),
        (EMAIL.replace('["b@example.com"]', '["b at example"]'), "not e-mail addresses"),
        ('[delivery.email]\nhost = "h"\n', "needs sender, to"),
        ("[delivery.webhook]\ntimeout_seconds = 5\n", "needs one of url and url_env"),
        ('[delivery.webhook]\nurl = "http://hooks.example.com/x"\n', "must be an https:// URL"),
        ("[delivery.sms]\nto = 1\n", "unknown keys in [delivery]: sms"),
        ('[delivery]\nreport_base_url = "ftp://x"\n', "must be an https:// URL"),
    ],
    ids=[
        "port-text", "misspelt-key", "password-in-file", "security", "login-half",
        "login-in-clear", "env-name", "timeout", "ca-file", "no-recipients", "bad-address",
        "required", "webhook-empty", "webhook-http", "unknown-channel", "base-url",
    ],
)  # fmt: skip
def test_delivery_settings_of_the_wrong_kind_are_usage_errors(
    tmp_path: Path, body: str, problem: str
) -> None:
    """Refused when read, before a run starts; the message never repeats a secret."""
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(UsageError, match=re.escape(problem)) as caught:
        load_delivery(path)
    assert SECRET not in str(caught.value)


def test_a_config_file_holds_a_policy_and_a_delivery_table(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[policy]\nresponse_rate_target = 0.9\n" + EMAIL)
    assert load_policy(path).response_rate_target == 0.9
    settings = load_delivery(path)
    assert settings is not None and settings.email is not None
    assert settings.email.server == "smtp.example.com:587"
    path.write_text("[policy]\n[delivery_email]\nhost = 1\n")
    with pytest.raises(UsageError, match=re.escape("one [policy] table")):
        load_policy(path)


def test_weekly_with_a_bad_delivery_table_stops_before_writing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(EMAIL + "port = 0\n")
    out = tmp_path / "out"
    result = invoke("weekly", "--data", SAMPLE, "--out", out, "--as-of", AS_OF, "--config", config)
    assert result.exit_code == 2
    assert "delivery.email.port = 0" in result.stderr
    assert not out.exists()


# --- the message itself --------------------------------------------------------------------------


def test_shop_names_are_escaped_in_html_and_in_slack_text() -> None:
    """A shop name is data: `<script>` arrives as text in the e-mail and in Slack's `text`."""
    shop = {
        "shop_id": "SG-009",
        "name": "<script>alert(1)</script> & Co",
        "timezone": "Asia/Singapore",
        "action": "warning",
        "response_rate_12h": 0.8,
        "status": {
            "response_rate_12h": "fail",
            "first_response_minutes_mean": "pass",
            "satisfaction_rate": "pass",
        },
        "coverage": "complete",
    }
    doc = {"as_of": AS_OF, "cutoff": "2026-11-23T00:00:00Z", "shops": [shop]}
    message = week_message(doc, pd.DataFrame(), Policy(), Path("/nonexistent/report.html"), None)
    html = html_body(message, "note")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    payload = webhook_payload(message)
    assert "&lt;script&gt;" in payload["text"] and "<script>" not in payload["text"]
    assert payload["shops_with_actions"][0]["name"] == shop["name"]  # JSON carries it as is
    assert payload["report"] is None
    assert message.subject == "cs-metrics 2026-11-23: 1 warning"
