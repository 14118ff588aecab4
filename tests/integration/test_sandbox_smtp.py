"""The sandbox SMTP server, spoken to with the standard library's smtplib: it keeps what it
took, refuses 4xx / 5xx when told, and can cut the line after DATA (the message taken, the
client never told) — the ambiguous case the e-mail channel must never resend blindly."""

from __future__ import annotations

import contextlib
import email
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import run_in_thread
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


# --- The mail that comes back: bounces, the time-stamp mailbox, the inbound webhook ---

SENDER = "bounces@siamtrading.example"  # the envelope sender: where bounces go
TIMESTAMP = "csemail@etax.teda.th"
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n\x00\xff trailer"


def send_as(sandbox, mail: EmailMessage, rcpt_tos: list[str], mail_from: str = SENDER) -> None:
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=10) as client:
        client.send_message(mail, from_addr=mail_from, to_addrs=rcpt_tos)


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class InboundReceiver:
    """A tiny inbound-mail webhook on loopback: records each POST and answers the next
    status in ``answers`` (204 once they run out)."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self._received: list[Delivery] = []
        self._lock = threading.Lock()

    async def _inbound(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self._received.append(Delivery(dict(request.headers), body))
            status = self.answers.pop(0) if self.answers else 204
        return Response(status_code=status)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        app = Starlette(routes=[Route("/inbound", self._inbound, methods=["POST"])])
        base_url, stop = run_in_thread(app)
        try:
            yield f"{base_url}/inbound"
        finally:
            stop()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)


def test_a_bounce_comes_back_for_each_recipient_that_does_not_exist_and_only_for_them(tmp_path):
    knobs = {"bounce": ["Ghost@Buyer.example", "@nowhere.example"]}
    with smtp_sandbox(tmp_path, knobs=knobs) as sandbox:
        send_as(
            sandbox, message(), ["ap@buyer.example", "ghost@buyer.example", "x@NoWhere.example"]
        )
        (kept,) = sandbox.messages()
        assert kept["bounced"] == ["ghost@buyer.example", "x@NoWhere.example"]
        first, second = sandbox.outbound()
        assert [first["kind"], second["kind"]] == ["bounce", "bounce"]
        assert [first["bounced_recipient"], second["bounced_recipient"]] == [
            "ghost@buyer.example",
            "x@NoWhere.example",
        ]
        assert (first["mail_from"], first["rcpt_tos"], first["source"]) == ("", [SENDER], 0)
        assert first["parts"] == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
        assert first["delivered"] is False and first["attempts"] == 0  # no inbound_url set

        dsn = parse(sandbox.outbound_raw(0))
        assert dsn.get_content_type() == "multipart/report"
        assert dsn.get_param("report-type") == "delivery-status"
        assert dsn["From"].addresses[0].addr_spec == "mailer-daemon@sandbox-smtp.local"
        assert str(dsn["To"]) == SENDER
        assert str(dsn["Subject"]) == "Undelivered Mail Returned to Sender"
        assert str(dsn["Auto-Submitted"]) == "auto-replied"
        assert dsn["Message-ID"] and dsn["Message-ID"] != kept["message_id"] and dsn["Date"]
        explanation, status, headers = dsn.iter_parts()
        assert "ghost@buyer.example" in explanation.get_content()
        per_message, per_recipient = status.get_payload()  # header blocks, RFC 3464
        assert str(per_message["Reporting-MTA"]) == "dns; sandbox-smtp.local"
        assert per_message["Arrival-Date"]
        assert str(per_recipient["Final-Recipient"]) == "rfc822; ghost@buyer.example"
        assert str(per_recipient["Action"]) == "failed"
        assert str(per_recipient["Status"]) == "5.1.1"
        assert str(per_recipient["Diagnostic-Code"]).startswith("smtp; 550 5.1.1")
        original = email.message_from_string(headers.get_content(), policy=policy.default)
        assert str(original["Message-ID"]) == "<abc123@courier.example>"
        assert str(original["Subject"]) == "ใบกำกับภาษี TH1-2026-000001"

        assert sandbox.redeliver(0).status_code == 409  # nowhere to post it to


def test_nothing_bounces_back_to_the_null_sender_or_for_a_recipient_that_exists(tmp_path):
    with smtp_sandbox(tmp_path, knobs={"bounce": ["ghost@buyer.example"]}) as sandbox:
        send_as(sandbox, message(), ["ghost@buyer.example"], mail_from="")  # a bounce itself
        send_as(sandbox, message(), ["ap@buyer.example"])
        assert [kept["bounced"] for kept in sandbox.messages()] == [["ghost@buyer.example"], []]
        assert sandbox.outbound() == []


def test_a_bounce_pattern_that_is_not_an_address_is_refused(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            sandbox.configure(bounce=["nobody"])
        assert refused.value.response.status_code == 400
        assert sandbox.configure()["bounce"] == []


def test_the_time_stamp_mailbox_answers_with_the_same_pdfs_threaded_on_the_original(tmp_path):
    mail = message()
    mail["Cc"] = TIMESTAMP
    mail.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="TH1.pdf")
    with smtp_sandbox(tmp_path) as sandbox:
        before = datetime.now(UTC).replace(microsecond=0)
        send_as(sandbox, mail, ["ap@buyer.example", TIMESTAMP])
        (kept,) = sandbox.messages()
        assert kept["timestamp"] == "replied"
        (entry,) = sandbox.outbound()
        assert entry["kind"] == "timestamp" and entry["mail_from"] == TIMESTAMP
        assert entry["rcpt_tos"] == ["invoices@siamtrading.example", "ap@buyer.example"]

        reply = parse(sandbox.outbound_raw(0))
        assert str(reply["From"]) == TIMESTAMP
        assert str(reply["To"]) == "Siam Trading <invoices@siamtrading.example>"
        assert str(reply["Cc"]) == "ap@buyer.example"
        assert str(reply["Subject"]) == "ใบกำกับภาษี TH1-2026-000001"
        assert str(reply["In-Reply-To"]) == "<abc123@courier.example>"
        assert str(reply["References"]) == "<abc123@courier.example>"
        assert str(reply["Message-ID"]).endswith("@etax.teda.th>") and reply["Date"]
        stamped_at = datetime.fromisoformat(str(reply["X-Sandbox-Timestamp"]))
        assert stamped_at.utcoffset() == timedelta(0) and stamped_at >= before
        returned = [(p.get_filename(), p.get_content()) for p in reply.iter_attachments()]
        assert returned == [("a.pdf", b"%PDF-1.7"), ("TH1.pdf", PDF_BYTES)]


def test_the_time_stamp_mailbox_does_not_answer_a_message_without_a_pdf(tmp_path):
    mail = EmailMessage()
    mail["From"] = "invoices@siamtrading.example"
    mail["To"] = "ap@buyer.example"
    mail["Subject"] = "no attachment"
    mail.set_content("plain")
    with smtp_sandbox(tmp_path) as sandbox:
        send_as(sandbox, mail, ["ap@buyer.example", TIMESTAMP])  # envelope only (a Bcc)
        (kept,) = sandbox.messages()
        assert kept["timestamp"] == "no_pdf"
        assert sandbox.outbound() == []


def test_generated_mail_is_posted_to_the_inbound_webhook_with_its_token(tmp_path):
    receiver = InboundReceiver()
    with receiver.running() as inbound_url, smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(inbound_url=inbound_url, inbound_token="inbound-s3cret")
        mail = message()
        mail["Cc"] = TIMESTAMP
        send_as(sandbox, mail, ["ap@buyer.example", TIMESTAMP])
        (entry,) = sandbox.wait_for_outbound(1)
        assert entry["delivered"] is True and entry["attempts"] == 1
        assert (entry["http_status"], entry["error"]) == (204, None)
        assert entry["inbound_url"] == inbound_url
        (posted,) = receiver.received()
        assert posted.headers["content-type"] == "message/rfc822"
        assert posted.headers["authorization"] == "Bearer inbound-s3cret"
        assert posted.body == sandbox.outbound_raw(0)
        assert str(parse(posted.body)["In-Reply-To"]) == "<abc123@courier.example>"

        again = sandbox.redeliver(0)  # the same bytes twice: for idempotent receivers
        assert again.status_code == 200 and again.json()["delivered"] is True
        assert [d.body for d in receiver.received()] == [posted.body, posted.body]


def test_a_receivers_5xx_is_retried_a_couple_of_times_and_a_4xx_is_not(tmp_path):
    receiver = InboundReceiver()
    knobs = {"bounce": ["ghost@buyer.example"]}
    with receiver.running() as inbound_url, smtp_sandbox(tmp_path, knobs=knobs) as sandbox:
        sandbox.configure(inbound_url=inbound_url)
        receiver.answers = [503, 204]  # restarting, then back
        send_as(sandbox, message(), ["ghost@buyer.example"])
        (entry,) = sandbox.wait_for_outbound(1)
        assert (entry["delivered"], entry["attempts"], entry["http_status"]) == (True, 2, 204)
        assert "authorization" not in receiver.received()[0].headers  # no token set

        receiver.answers = [401, 204]
        send_as(sandbox, message(), ["ghost@buyer.example"])
        _, refused = sandbox.wait_for_outbound(2)
        assert (refused["delivered"], refused["attempts"]) == (False, 1)
        assert refused["error"] == "HTTP 401"
        assert len(receiver.received()) == 3


def test_reset_empties_the_outbound_list_and_puts_the_knobs_back(tmp_path):
    with smtp_sandbox(tmp_path) as sandbox:
        sandbox.configure(bounce=["ghost@buyer.example"], inbound_token="t")
        send_as(sandbox, message(), ["ghost@buyer.example"])
        assert len(sandbox.outbound()) == 1
        sandbox.reset()
        assert sandbox.outbound() == [] and sandbox.messages() == []
        assert httpx.get(f"{sandbox.url}/_sandbox/outbound/0/raw", timeout=10).status_code == 404
        knobs = sandbox.configure()
        assert (knobs["bounce"], knobs["inbound_token"]) == ([], None)
        send_as(sandbox, message(), ["ghost@buyer.example"])  # no longer bouncing
        assert sandbox.outbound() == []
