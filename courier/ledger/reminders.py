"""Reminders in the ledger: pauses ("stop chasing", audited) and steps skipped with why."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

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

    def reminder_facts(self, numbers: Sequence[str] | None = None) -> pd.DataFrame:
        """The ``invoice_reminders`` view (only ``numbers``' rows when given): what
        reminder planning needs per invoice. Money comes as exact text (a DataFrame would
        make it float), for ``Decimal(text)``."""
        where, params = _only(numbers)
        with self.connect() as con:
            return con.execute(
                f"""
                SELECT * REPLACE (grand_total::VARCHAR AS grand_total,
                                  coalesce(amount_paid, 0)::VARCHAR AS amount_paid,
                                  amount_due::VARCHAR AS amount_due)
                FROM invoice_reminders {where}
                ORDER BY invoice_number
                """,
                params,
            ).df()

    def record_reminder_skips(
        self, skips: Sequence[Any], run_id: str | None
    ) -> set[tuple[str, str, str]]:
        """Write each skipped step (``courier.reminders.planning.Skip``) once: the first
        reason a step was not sent stands. Returns the (invoice, rule, step) first
        recorded by this call."""
        if not skips:
            return set()
        stamp = now_utc()
        frame = pd.DataFrame(
            {
                "invoice_number": [s.invoice_number for s in skips],
                "rule_id": [s.rule_id for s in skips],
                "step_id": [s.step_id for s in skips],
                "reason_code": [s.reason_code for s in skips],
                "reason": [s.reason for s in skips],
                "due_at": [s.due_at.isoformat() for s in skips],
            }
        )
        with self.connect() as con:
            con.register("new_skips", frame)
            inserted = con.execute(
                """
                INSERT INTO reminder_skips (invoice_number, rule_id, step_id, reason_code,
                    reason, due_at, run_id, recorded_at)
                SELECT invoice_number, rule_id, step_id, reason_code, reason,
                       due_at::TIMESTAMPTZ, ?, ? FROM new_skips
                ON CONFLICT DO NOTHING
                RETURNING invoice_number, rule_id, step_id
                """,
                [run_id, stamp],
            ).fetchall()
            con.unregister("new_skips")
        return {(row[0], row[1], row[2]) for row in inserted}

    def reminder_history(self, invoice_number: str | None = None) -> pd.DataFrame:
        """The ``reminder_history`` view (sent, tried and skipped steps), newest first;
        one invoice's when ``invoice_number`` is given."""
        where, params = (
            ("WHERE invoice_number = ?", [invoice_number]) if invoice_number else ("", [])
        )
        with self.connect() as con:
            return con.execute(
                f'SELECT * FROM reminder_history {where} ORDER BY "at" DESC',
                params,
            ).df()

    def pauses_in_force(self) -> pd.DataFrame:
        """Pauses not resumed: scope, target (invoice number or buyer key), who, when, why."""
        with self.connect() as con:
            return con.execute(
                """
                SELECT pause_id, scope, target, target_label, reason, paused_by, paused_at
                FROM reminder_pauses WHERE resumed_at IS NULL ORDER BY paused_at DESC
                """
            ).df()


def _only(numbers: Sequence[str] | None) -> tuple[str, list[Any]]:
    """A WHERE clause keeping ``numbers`` (all rows for None)."""
    if numbers is None:
        return "", []
    return "WHERE invoice_number IN (SELECT unnest(?))", [list(numbers)]
