"""The SMTP adapter against the sandbox SMTP server: errors sorted as the retry policy and
the outbox need them — 4xx transient, 5xx permanent, a line cut after DATA ambiguous."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import pytest

from courier.adapters.email import SmtpSender
from courier.adapters.errors import AmbiguousError, PermanentError, TransientError
from courier.email_messages import Attachment, EmailContent, build_email
from tests.support.sandbox_fixtures import smtp_sandbox


def mail():
    content = EmailContent("ใบกำกับภาษี TH1-2026-000001", "plain", "<p>html</p>")
    return build_email(
        content,
        sender="Siam Trading <invoices@siamtrading.example>",
        to="ap@buyer.example",
        message_id="<k1@courier.example>",
        date=datetime(2026, 12, 3, tzinfo=UTC),
    )


def sender(sandbox, **options) -> SmtpSender:
    return SmtpSender(sandbox.host, sandbox.port, security="none", timeout_s=5, **options)


def test_a_sent_message_arrives_once_with_its_message_id(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        sent = asyncio.run(sender(sandbox).send(mail()))
        assert sent.message_id == "<k1@courier.example>" and sent.reply.startswith("250")
        (kept,) = sandbox.messages()
        assert kept["message_id"] == "<k1@courier.example>"
        assert kept["rcpt_tos"] == ["ap@buyer.example"]
        assert kept["subject"] == "ใบกำกับภาษี TH1-2026-000001"


def test_a_whole_invoice_message_arrives_line_by_line(tmp_path):
    """A real message is many lines (a PDF in base64): they go with CRLF line ends, or a
    relay reads them as one line over SMTP's 1000-octet limit and refuses it."""
    content = EmailContent("ใบกำกับภาษี TH1-2026-000001", "ข้อความ\n" * 300, "<p>x</p>\n" * 300)
    message = build_email(
        content,
        sender="Siam Trading <invoices@siamtrading.example>",
        to="ap@buyer.example",
        message_id="<k2@courier.example>",
        date=datetime(2026, 12, 3, tzinfo=UTC),
        attachments=[Attachment("TH1-2026-000001.pdf", b"%PDF-1.7" * 4000, "application", "pdf")],
    )
    with smtp_sandbox(tmp_path) as sandbox:
        asyncio.run(sender(sandbox).send(message))
        (kept,) = sandbox.messages()
        assert kept["size"] > 40_000
        assert kept["attachments"][0]["bytes"] == 8 * 4000


@pytest.mark.parametrize(("reply", "error"), [("4xx", TransientError), ("5xx", PermanentError)])
def test_refusals_are_sorted_and_nothing_arrives(tmp_path, reply, error):
    with smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(reply=reply)
        with pytest.raises(error):
            asyncio.run(sender(sandbox).send(mail()))
        assert sandbox.messages() == []


def test_a_line_cut_after_data_is_ambiguous_though_the_message_arrived(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(reply="drop_after_data")
        with pytest.raises(AmbiguousError):
            asyncio.run(sender(sandbox).send(mail()))
        assert len(sandbox.messages()) == 1


def test_credentials_and_unreachable_relays(tmp_path):
    with smtp_sandbox(tmp_path, username="courier", password="s3cret") as sandbox:
        with pytest.raises(PermanentError, match="credentials"):
            asyncio.run(sender(sandbox, username="courier", password="wrong").send(mail()))
        asyncio.run(sender(sandbox, username="courier", password="s3cret").send(mail()))
        assert len(sandbox.messages()) == 1
        with pytest.raises(PermanentError, match="starttls"):  # no TLS offered: settings
            asyncio.run(SmtpSender(sandbox.host, sandbox.port, timeout_s=5).send(mail()))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(TransientError, match="cannot reach"):
        asyncio.run(SmtpSender("127.0.0.1", port, security="none", timeout_s=2).send(mail()))
