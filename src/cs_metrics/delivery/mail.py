"""E-mail over SMTP (standard library): a text and an HTML part, the report attached or linked.

Named mail.py, not email.py, so that `import email` here and everywhere reads the standard
library's package without a second look.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from cs_metrics.delivery.config import DEFAULT_PORTS, EmailSettings
from cs_metrics.delivery.failure import DeliveryFailed, one_line, scrubbed
from cs_metrics.delivery.message import WeekMessage, html_body, size_text, text_body
from cs_metrics.delivery.watch_message import WatchMessage, watch_text

CHANNEL = "e-mail"


def report_note(message: WeekMessage, attached: bool) -> str:
    """Where the full report is: attached, linked, or on the job's machine."""
    if not message.report.exists():
        return "No report was written for this week (the run had --no-report)."
    size = size_text(message.report.stat().st_size)
    if attached:
        return f"The full report is attached (report-{message.as_of}.html, {size})."
    if message.report_url:
        return f"The full report ({size}) is too large to attach: {message.report_url}"
    return (
        f"The full report ({size}) is too large to attach; it is at {message.report} "
        "on the machine that runs the job."
    )


def headers(subject: str, settings: EmailSettings) -> EmailMessage:
    """An e-mail with its subject, sender, recipients, date and id."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.to)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2])
    return mail


def watch_email(message: WatchMessage, settings: EmailSettings) -> EmailMessage:
    """The watch's e-mail: the shops at risk as text, the watch page as the HTML part."""
    mail = headers(message.subject, settings)
    mail.set_content(watch_text(message))
    mail.add_alternative(message.page, subtype="html")
    return mail


def email_message(message: WeekMessage | WatchMessage, settings: EmailSettings) -> EmailMessage:
    """The e-mail: subject, recipients, text and HTML parts, and the report when small enough."""
    if isinstance(message, WatchMessage):
        return watch_email(message, settings)
    report = message.report
    attached = report.exists() and report.stat().st_size <= settings.attach_max_bytes
    note = report_note(message, attached)
    mail = headers(message.subject, settings)
    mail.set_content(text_body(message, note))
    mail.add_alternative(html_body(message, note), subtype="html")
    if attached:
        mail.make_mixed()
        mail.add_attachment(
            report.read_bytes(),
            maintype="text",
            subtype="html",
            filename=f"report-{message.as_of}.html",
        )
    return mail


def connect(settings: EmailSettings) -> smtplib.SMTP:
    """An open SMTP session, TLS as configured, every network step bounded by the timeout."""
    port = settings.port or DEFAULT_PORTS[settings.security]
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(
            settings.host, port, timeout=settings.timeout_seconds, context=context
        )
    client = smtplib.SMTP(settings.host, port, timeout=settings.timeout_seconds)
    if settings.security == "starttls":
        try:
            client.starttls(context=context)
        except BaseException:
            client.close()
            raise
    return client


def send_email(
    message: WeekMessage | WatchMessage, settings: EmailSettings, environ: Mapping[str, str]
) -> str:
    """Send the e-mail (the week's or the watch's); what was sent, in a few words.
    DeliveryFailed on any failure."""
    password = None
    if settings.password_env is not None:
        password = environ.get(settings.password_env)
        if not password:
            raise DeliveryFailed(
                CHANNEL, f"environment variable {settings.password_env} (the password) is not set"
            )
    mail = email_message(message, settings)
    server = settings.server
    try:
        with connect(settings) as client:
            if settings.username is not None and password is not None:
                client.login(settings.username, password)
            refused = client.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        # The server's text is left out: some echo what they were sent.
        raise DeliveryFailed(
            CHANNEL, f"{server} refused the login of user {settings.username} ({exc.smtp_code})"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(CHANNEL, f"{server}: {one_line(str(exc)).rstrip('.')}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(
            CHANNEL, f"{server} refused every recipient: {refusals(exc.recipients)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        raise DeliveryFailed(
            CHANNEL, f"{server} answered {exc.smtp_code} {scrubbed(one_line(text), [password])}"
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib reports a reply that never came as a disconnection caused by a timeout.
        if isinstance(exc.__context__, TimeoutError):
            raise DeliveryFailed(CHANNEL, no_answer(settings)) from None
        raise DeliveryFailed(CHANNEL, f"{server} closed the connection") from None
    except TimeoutError:
        raise DeliveryFailed(CHANNEL, no_answer(settings)) from None
    except ConnectionRefusedError:
        raise DeliveryFailed(CHANNEL, f"{server} refused the connection") from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed(
            CHANNEL, f"TLS with {server} failed: {exc.verify_message or exc.reason}"
        ) from None
    except ssl.SSLError as exc:
        raise DeliveryFailed(CHANNEL, f"TLS with {server} failed: {exc.reason or exc}") from None
    except OSError as exc:  # also smtplib.SMTPException: every other network failure
        text = exc.strerror or str(exc) or type(exc).__name__
        raise DeliveryFailed(
            CHANNEL, f"cannot send through {server}: {scrubbed(one_line(text), [password])}"
        ) from None
    if refused:
        raise DeliveryFailed(
            CHANNEL,
            f"sent, but {server} refused {len(refused)} of {len(settings.to)} recipients: "
            f"{refusals(refused)}",
        )
    return f"e-mail to {len(settings.to)} recipient{'s' if len(settings.to) != 1 else ''}"


def no_answer(settings: EmailSettings) -> str:
    """The reason for a server that did not answer in time."""
    return f"no answer from {settings.server} within {settings.timeout_seconds:g} s"


def refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    """`a@example.com (550)`, ... for the recipients a server refused."""
    return ", ".join(f"{address} ({code})" for address, (code, _text) in refused.items())
