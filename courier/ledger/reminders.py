"""Reminders in the ledger: pauses ("stop chasing", audited) and steps skipped with why."""

from __future__ import annotations

from courier.ledger.connection import LedgerFile


class Reminders(LedgerFile):
    pass
