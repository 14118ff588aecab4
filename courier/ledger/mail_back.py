"""Mail that came back: bounces (which stop e-mail to the address) and ETDA's stamped
invoices, each recorded once against the e-mail and invoice it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from courier.inbound_mail import InboundMail
from courier.ledger.connection import LedgerFile, now_utc


@dataclass(frozen=True)
class MailBackResult:
    kind: str
    invoice_number: str | None  # None: it answers no e-mail of ours
    duplicate: bool  # already received (a provider delivered it twice)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "invoice_number": self.invoice_number,
            "duplicate": self.duplicate,
        }


class MailBack(LedgerFile):
    def record_inbound(self, mail: InboundMail) -> MailBackResult:
        """Record ``mail`` once. A bounce's failed recipients go into ``email_bounces``
        (no more e-mail to them) and mark our e-mail ``bounced``; a stamped reply goes into
        ``etax_timestamps``; anything else is only noted."""
        stamp = now_utc()

        def write(con: Any) -> tuple[str | None, bool]:
            ours = (
                con.execute(
                    "SELECT invoice_number, message_id FROM messages "
                    "WHERE message_id = ? AND channel = 'email'",
                    [mail.answers],
                ).fetchall()
                if mail.answers
                else []
            )
            number = ours[0][0] if ours else None
            new = con.execute(
                """
                INSERT INTO inbound_emails VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (message_id) DO NOTHING
                RETURNING message_id
                """,
                [
                    mail.message_id,
                    mail.kind,
                    mail.answers,
                    number,
                    mail.sender,
                    mail.subject,
                    mail.size_bytes,
                    stamp,
                ],
            ).fetchall()
            if new and mail.kind == "bounce":
                for recipient in mail.recipients:
                    con.execute(
                        "INSERT INTO email_bounces VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            recipient.address,
                            mail.answers,
                            number,
                            recipient.action,
                            recipient.status,
                            recipient.diagnostic,
                            stamp,
                        ],
                    )
                failed = [r for r in mail.recipients if r.action == "failed"]
                if ours and failed:
                    self._mark_bounced(con, ours[0][1], failed[0].status, stamp)
            if new and mail.kind == "timestamp" and number is not None and mail.answers:
                first = mail.files[0] if mail.files else None
                con.execute(
                    "INSERT INTO etax_timestamps VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        number,
                        mail.message_id,
                        mail.answers,
                        mail.received_date,
                        first.filename if first else None,
                        first.sha256 if first else None,
                        stamp,
                    ],
                )
            return number, bool(new)

        number, new = self.transaction(write)
        return MailBackResult(mail.kind, number, duplicate=not new)

    @staticmethod
    def _mark_bounced(con: Any, message_id: str, status_code: str, stamp: Any) -> None:
        """Our e-mail's delivery status, as an SMS's receipt would set it. By Message-ID:
        a bounce can arrive before the send's own outcome is written (the relay answers
        in milliseconds); that write then keeps this status."""
        con.execute(
            "INSERT INTO delivery_events VALUES (?, 'bounced', ?, NULL, 'bounce', ?)",
            [message_id, status_code, stamp],
        )
        con.execute(
            "UPDATE messages SET provider_status = 'bounced', provider_status_at = ?, "
            "provider_error_code = ? WHERE message_id = ? AND channel = 'email'",
            [stamp, status_code, message_id],
        )

    def etax_timestamps(self, invoice_number: str) -> list[dict[str, Any]]:
        """The stamped copies ETDA sent back for one invoice, newest first."""
        with self.connect(read_only=True) as con:
            cursor = con.execute(
                "SELECT * FROM etax_timestamps WHERE invoice_number = ? ORDER BY received_at DESC",
                [invoice_number],
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class UnknownBuyer(KeyError):
    """No invoice names that buyer."""


BUYER_CHANNELS = ("sms", "email", "both")


class BuyerChannels(LedgerFile):
    def set_buyer_channel(self, target: str, channel: str, set_by: str) -> str:
        """Record which channel a buyer gets (``sms``, ``email`` or ``both``); ``target``
        is one of the buyer's invoice numbers or its buyer key. Returns the buyer key."""
        if channel not in BUYER_CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(BUYER_CHANNELS)}, not {channel!r}")
        with self.connect() as con:
            rows = con.execute(
                "SELECT buyer_key FROM invoices WHERE invoice_number = ? OR buyer_key = ? LIMIT 1",
                [target, target],
            ).fetchall()
            if not rows or not rows[0][0]:
                raise UnknownBuyer(f"no invoice or buyer matches {target!r}")
            key = str(rows[0][0])
            con.execute(
                "INSERT INTO buyer_channels VALUES (?, ?, ?, ?) ON CONFLICT (buyer_key) DO "
                "UPDATE SET channel = excluded.channel, set_by = excluded.set_by, "
                "set_at = excluded.set_at",
                [key, channel, set_by, now_utc()],
            )
        return key
