"""The sandbox SMTP server, spoken to with the standard library's smtplib: it keeps what it
took, refuses 4xx / 5xx when told, and can cut the line after DATA (the message taken, the
client never told) — the ambiguous case the e-mail channel must never resend blindly."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from tests.support.sandbox_fixtures import smtp_sandbox


def message(subject: str = "ใบกำกับภาษี TH1-2026-000001") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Siam Trading <invoices@siamtrading.example>"
    mail["To"] = "ap@buyer.example"
    mail["Subject"] = subject
    mail["Message-ID"] = "<abc123@courier.example>"
    mail.set_content("plain")
    mail.add_alternative("<p>html</p>", subtype="html")
    mail.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="a.pdf")
    return mail


def send(sandbox, mail: EmailMessage, login: tuple[str, str] | None = None) -> None:
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=10) as client:
        if login:
            client.login(*login)
        client.send_message(mail)


def test_a_message_is_kept_with_its_envelope_headers_parts_and_attachments(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        send(sandbox, message())
        (kept,) = sandbox.messages()
        assert kept["rcpt_tos"] == ["ap@buyer.example"]
        assert kept["subject"] == "ใบกำกับภาษี TH1-2026-000001"  # decoded back intact
        assert kept["message_id"] == "<abc123@courier.example>"
        assert kept["parts"] == ["text/plain", "text/html", "application/pdf"]
        assert kept["attachments"] == [{"filename": "a.pdf", "type": "application/pdf", "bytes": 8}]
        assert b"Message-ID: <abc123@courier.example>" in sandbox.raw(0)
        assert (tmp_path / "messages.jsonl").read_text(encoding="utf-8").count("\n") == 1


@pytest.mark.parametrize(("reply", "code"), [("4xx", 451), ("5xx", 554)])
def test_refusals_keep_nothing_and_say_their_code(tmp_path, reply, code):
    with smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(reply=reply, reply_times=1)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(sandbox, message())
        assert refused.value.smtp_code == code
        assert sandbox.messages() == []
        send(sandbox, message())  # reply_times 1: the next one is taken
        assert len(sandbox.messages()) == 1


def test_a_line_cut_after_data_leaves_the_message_taken_and_the_client_unsure(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(reply="drop_after_data")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(sandbox, message())
        assert len(sandbox.messages()) == 1  # it arrived, though nobody said so


def test_auth_is_required_when_the_sandbox_has_a_password(tmp_path):
    with smtp_sandbox(tmp_path, username="courier", password="s3cret") as sandbox:
        with pytest.raises(smtplib.SMTPSenderRefused):
            send(sandbox, message())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            send(sandbox, message(), login=("courier", "wrong"))
        send(sandbox, message(), login=("courier", "s3cret"))
        assert len(sandbox.messages()) == 1
