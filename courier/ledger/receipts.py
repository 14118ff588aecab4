"""Delivery receipts (statuses only move forward) and opt-outs (STOP)."""

from __future__ import annotations

from decimal import Decimal

from courier.ledger.connection import LedgerFile, now_utc

#: Delivery statuses in the order they can follow each other; a receipt never moves back.
_STATUS_RANK = {
    "accepted": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "bounced": 4,  # an e-mail's delivery status notification said it failed
}


class Receipts(LedgerFile):
    def record_delivery(
        self,
        provider_sid: str,
        status: str,
        error_code: str | None,
        provider_price: Decimal | None,
        source: str,
    ) -> bool:
        """Apply a delivery receipt; statuses only move forward. False if the SID is unknown."""
        stamp = now_utc()
        rank = _STATUS_RANK.get(status, 0)
        with self.connect() as con:
            known = con.execute(
                "SELECT provider_status FROM messages WHERE provider_sid = ?", [provider_sid]
            ).fetchall()
            if not known:
                return False
            con.execute(
                "INSERT INTO delivery_events VALUES (?, ?, ?, ?, ?, ?)",
                [provider_sid, status, error_code, provider_price, source, stamp],
            )
            if rank >= _STATUS_RANK.get(known[0][0] or "", 0):
                con.execute(
                    """
                    UPDATE messages SET provider_status = ?, provider_error_code = ?,
                        provider_status_at = ?,
                        delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END
                    WHERE provider_sid = ?
                    """,
                    [status, error_code, stamp, status, stamp, provider_sid],
                )
            if provider_price is not None:
                con.execute(
                    "UPDATE sms_charges SET provider_price = ? WHERE provider_sid = ?",
                    [provider_price, provider_sid],
                )
        return True

    def awaiting_receipts(self, older_than_s: float, limit: int = 1000) -> list[str]:
        """SIDs of accepted messages with no final status (or no provider price) yet."""
        with self.connect() as con:
            rows = con.execute(
                """
                SELECT m.provider_sid FROM messages m
                JOIN sms_charges c USING (idempotency_key)
                WHERE m.status = 'accepted' AND m.channel = 'sms'  -- a relay has no receipts
                  AND coalesce(m.provider_status, '') <> 'failed'  -- final; never priced
                  AND (coalesce(m.provider_status, '') NOT IN ('delivered', 'undelivered')
                       OR c.provider_price IS NULL)
                  AND m.sent_at < now() - to_seconds(?)
                ORDER BY m.sent_at
                LIMIT ?
                """,
                [older_than_s, limit],
            ).fetchall()
        return [row[0] for row in rows]

    def add_opt_out(self, phone_e164: str, source: str) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO opt_outs VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [phone_e164, source, now_utc()],
            )

    def remove_opt_out(self, phone_e164: str) -> None:
        with self.connect() as con:
            con.execute("DELETE FROM opt_outs WHERE phone_e164 = ?", [phone_e164])

    def opted_out(self) -> set[str]:
        with self.connect() as con:
            return {row[0] for row in con.execute("SELECT phone_e164 FROM opt_outs").fetchall()}
