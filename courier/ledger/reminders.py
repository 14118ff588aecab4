"""Reminders in the ledger: pauses ("stop chasing", audited) and steps skipped with why."""

from __future__ import annotations

import uuid
from typing import Literal

from courier.ledger.connection import LedgerFile, now_utc

PauseScope = Literal["invoice", "buyer"]


class UnknownPauseTarget(LookupError):
    """No invoice (or no buyer) by that name to pause."""


class Reminders(LedgerFile):
    def pause_reminders(self, scope: PauseScope, target: str, reason: str, paused_by: str) -> str:
        """Stop chasing one invoice (``target`` = its number) or one buyer (``target`` =
        an invoice number of that buyer, or the buyer key). Who, when and why are kept;
        returns the pause id. Raises ``UnknownPauseTarget`` when nothing matches."""
        if not reason.strip():
            raise ValueError("a pause needs a reason (what a colleague reads later)")
        with self.connect() as con:
            if scope == "invoice":
                rows = con.execute(
                    "SELECT invoice_number, invoice_number || ' (' || buyer_name || ')' "
                    "FROM invoices WHERE invoice_number = ?",
                    [target],
                ).fetchall()
            else:
                rows = con.execute(
                    "SELECT buyer_key, buyer_name FROM invoices "
                    "WHERE invoice_number = ? OR buyer_key = ? LIMIT 1",
                    [target, target],
                ).fetchall()
            if not rows:
                raise UnknownPauseTarget(f"no {scope} matches {target!r}")
            key, label = rows[0]
            pause_id = uuid.uuid4().hex
            con.execute(
                "INSERT INTO reminder_pauses (pause_id, scope, target, target_label, reason, "
                "paused_by, paused_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [pause_id, scope, key, label, reason.strip(), paused_by, now_utc()],
            )
        return pause_id

    def resume_reminders(self, scope: PauseScope, target: str, resumed_by: str, reason: str) -> int:
        """End the pauses in force for that invoice or buyer (as ``pause_reminders`` names
        them); the pause rows stay, with who resumed, when and why. Returns how many ended."""
        with self.connect() as con:
            if scope == "buyer":
                keys = con.execute(
                    "SELECT buyer_key FROM invoices WHERE invoice_number = ? OR buyer_key = ?",
                    [target, target],
                ).fetchall()
                target = keys[0][0] if keys else target
            ended = con.execute(
                """
                UPDATE reminder_pauses SET resumed_by = ?, resumed_at = ?, resume_reason = ?
                WHERE scope = ? AND target = ? AND resumed_at IS NULL
                RETURNING pause_id
                """,
                [resumed_by, now_utc(), reason.strip(), scope, target],
            ).fetchall()
        return len(ended)

    def paused_invoices(self) -> dict[str, str]:
        """Invoice number -> the reason of the pause in force for it (its own or its buyer's)."""
        with self.connect() as con:
            return dict(
                con.execute(
                    "SELECT invoice_number, pause_reason FROM reminder_pause_in_force"
                ).fetchall()
            )
