"""Sending SMS exactly once per intent (the imperative shell around the gateway).

The protocol, per intent:

1. **Claim**: the outbox row (stable ``idempotency_key``) is committed as ``pending``
   *before* the gateway is called. A key already in the outbox is never sent again.
2. **Send** with the shared retry policy for transient errors (429/5xx/connect).
3. **Ambiguous failure** (timeout or connection lost after the request was written): the
   gateway may have accepted it, so it is *looked up* (same number, same day, same body —
   the body carries the invoice's unique link) before anything is resent. Found: recorded
   as accepted. Lookup impossible: ``unknown``, for a person; never blindly resent.
4. **Record** the outcome: ``accepted`` with its one charge row (same transaction),
   ``failed`` with the reason a person reads (permanent), or ``retry`` (transient errors
   outlasted the policy: the next run tries again).

A process killed between 1 and 4 leaves a ``pending`` row; ``reconcile_pending`` resolves it
by the same look-up before a run sends anything new.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from courier.adapters.errors import AdapterError, AmbiguousError, PermanentError, TransientError
from courier.adapters.sms import SentMessage, SmsGateway
from courier.ledger import Ledger
from courier.phones import mask_phone
from courier.planning import Intent
from courier.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Seconds to wait after an ambiguous failure before looking the message up, so a request
#: the gateway is still processing has landed in its records.
AMBIGUOUS_SETTLE_S = 1.0


@dataclass
class SendReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    charged: Decimal = Decimal("0")

    def merge(self, other: SendReport) -> None:
        self.outcomes.update(other.outcomes)
        self.charged += other.charged

    def as_dict(self) -> dict[str, Any]:
        return {**dict(self.outcomes), "charged": str(self.charged)}


class _Unresolved(Exception):
    """The look-up after an ambiguous send could not decide (it failed itself)."""


class Sender:
    def __init__(
        self,
        gateway: SmsGateway,
        ledger: Ledger,
        policy: RetryPolicy,
        concurrency: int = 8,
        settle_s: float = AMBIGUOUS_SETTLE_S,
    ) -> None:
        self._settle_s = settle_s
        self._gateway = gateway
        self._ledger = ledger
        self._policy = policy
        self._limit = asyncio.Semaphore(concurrency)

    async def send_all(self, intents: list[Intent]) -> SendReport:
        """Claim and send each intent; already-claimed keys are skipped, never resent."""
        report = SendReport()
        with self._ledger.holding():
            claimed = []
            for intent in intents:
                key = intent.idempotency_key
                if self._ledger.claim_intent(intent.as_row()) or self._ledger.reopen_intent(
                    key, intent.run_id
                ):
                    claimed.append((intent, False))
                else:
                    report.outcomes["skipped_already_in_outbox"] += 1
            await self._run(claimed, report)
        return report

    async def reconcile_pending(self, run_id: str | None) -> SendReport:
        """Resolve ``pending`` rows a killed process left: look up first, then send if absent."""
        report = SendReport()
        with self._ledger.holding():
            rows = self._ledger.pending_intents()
            claimed = [(_intent_from_row(row, run_id), True) for row in rows]
            await self._run(claimed, report)
        return report

    async def _run(self, claimed: list[tuple[Intent, bool]], report: SendReport) -> None:
        results = await asyncio.gather(
            *(self._deliver(intent, look_up_first) for intent, look_up_first in claimed)
        )
        for outcome, charged in results:
            report.outcomes[outcome] += 1
            report.charged += charged

    async def _deliver(self, intent: Intent, look_up_first: bool) -> tuple[str, Decimal]:
        async with self._limit:
            attempts = 0
            try:
                if look_up_first:
                    found = await self._look_up(intent)
                    if found is not None:
                        return self._accepted(intent, found, attempts)
                async for attempt in self._policy.context():
                    with attempt:
                        attempts += 1
                        message = await self._send_or_find(intent)
                return self._accepted(intent, message, attempts)
            except PermanentError as error:
                log.info(
                    "send %s to %s refused: %s",
                    intent.idempotency_key,
                    mask_phone(intent.to_e164),
                    error.reason,
                )
                self._ledger.record_failure(
                    intent.idempotency_key, "failed", error.code, error.reason, attempts
                )
                return "failed", Decimal("0")
            except TransientError as error:
                self._ledger.record_failure(
                    intent.idempotency_key,
                    "retry",
                    None,
                    f"Gateway unavailable, will retry: {error}",
                    attempts,
                )
                return "retry", Decimal("0")
            except (_Unresolved, AdapterError) as error:
                self._ledger.record_failure(
                    intent.idempotency_key,
                    "unknown",
                    None,
                    f"Unknown whether the SMS was sent ({error}); check before resending",
                    attempts,
                )
                return "unknown", Decimal("0")

    async def _send_or_find(self, intent: Intent) -> SentMessage:
        """One send; after an ambiguous failure, the look-up decides (absent = try again)."""
        try:
            return await self._gateway.send(intent.to_e164, intent.body)
        except AmbiguousError as error:
            log.warning("send %s ambiguous (%s); looking it up", intent.idempotency_key, error)
            # Give a request that is still being processed time to land before looking.
            await asyncio.sleep(self._settle_s)
            found = await self._look_up(intent)
            if found is not None:
                return found
            raise TransientError(f"not accepted after an ambiguous failure ({error})") from error

    async def _look_up(self, intent: Intent) -> SentMessage | None:
        """Did the gateway take this message? None only when it certainly has not."""
        today = datetime.now(UTC).date()
        days = {today - timedelta(days=1), today}
        try:
            for day in sorted(days):
                async for attempt in self._policy.context():
                    with attempt:
                        found = await self._gateway.find_sent(intent.to_e164, day, intent.body)
                if found is not None:
                    return found
        except AdapterError as error:
            raise _Unresolved(f"look-up failed: {error}") from error
        return None

    def _accepted(self, intent: Intent, message: SentMessage, attempts: int) -> tuple[str, Decimal]:
        self._ledger.record_accepted(
            intent.idempotency_key,
            message.sid,
            message.status,
            {
                "invoice_number": intent.invoice_number,
                "destination_country": intent.destination_country,
                "segments": intent.segments,
                "unit_price": intent.unit_price,
                "amount": intent.amount,
                "currency": intent.currency,
                "run_id": intent.run_id,
            },
            attempts,
        )
        return "accepted", intent.amount


def _intent_from_row(row: dict[str, Any], run_id: str | None) -> Intent:
    """A pending outbox row back into an intent, with the price quoted when it was made."""
    return Intent(
        idempotency_key=row["idempotency_key"],
        invoice_number=row["invoice_number"],
        purpose=row["purpose"],
        requested_by=row["requested_by"],
        to_e164=row["to_e164"],
        destination_country=row["destination_country"],
        body=row["body"],
        encoding=row["encoding"],
        segments=int(row["segments"]),
        unit_price=Decimal(row["unit_price"]),
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        run_id=run_id,
    )
