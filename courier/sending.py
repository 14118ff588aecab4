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
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from courier.adapters.errors import AdapterError, AmbiguousError, PermanentError, TransientError
from courier.adapters.sms import SentMessage, SmsGateway
from courier.ledger import AcceptedSend, FailedSend, Ledger
from courier.phones import mask_phone
from courier.planning import Intent
from courier.ratelimit import TokenBucket, Unlimited
from courier.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Twilio's "unsubscribed recipient" (the number texted STOP): recorded as an opt-out.
OPTED_OUT_CODE = "21610"
#: How many days back a pending row from a dead process is looked up at the gateway.
LOOKUP_DAYS = 7

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


class _Recorder:
    """Outcomes written in small groups: one short transaction per group, not per SMS, and
    no connection held across network calls (a dashboard or another run may need the file).
    An outcome not yet written when the process dies leaves its row ``pending``, which the
    next run reconciles by look-up: slower, never wrong."""

    def __init__(self, ledger: Ledger, every: int = 50, after_s: float = 0.5) -> None:
        self._ledger = ledger
        self._every = every
        self._after_s = after_s
        self._accepted: list[AcceptedSend] = []
        self._failed: list[FailedSend] = []
        self._opt_outs: list[str] = []
        self._last = time.monotonic()

    def accepted(self, outcome: AcceptedSend) -> None:
        self._accepted.append(outcome)
        self._maybe_flush()

    def failed(self, outcome: FailedSend, opted_out: str | None = None) -> None:
        self._failed.append(outcome)
        if opted_out:
            self._opt_outs.append(opted_out)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        waiting = len(self._accepted) + len(self._failed)
        if waiting >= self._every or time.monotonic() - self._last >= self._after_s:
            self.flush()

    def flush(self) -> None:
        accepted, self._accepted = self._accepted, []
        failed, self._failed = self._failed, []
        opt_outs, self._opt_outs = self._opt_outs, []
        self._last = time.monotonic()
        if accepted or failed or opt_outs:
            with self._ledger.holding():
                self._ledger.record_outcomes(accepted, failed)
                for number in opt_outs:
                    self._ledger.add_opt_out(number, "gateway_21610")


class Sender:
    def __init__(
        self,
        gateway: SmsGateway,
        ledger: Ledger,
        policy: RetryPolicy,
        concurrency: int = 8,
        settle_s: float = AMBIGUOUS_SETTLE_S,
        limiter: TokenBucket | Unlimited | None = None,
    ) -> None:
        self._settle_s = settle_s
        self._gateway = gateway
        self._ledger = ledger
        self._policy = policy
        self._slots = asyncio.Semaphore(concurrency)
        self._limiter = limiter or Unlimited()
        self._recorder = _Recorder(ledger)

    async def send_all(self, intents: list[Intent]) -> SendReport:
        """Claim and send each intent; already-claimed keys are skipped, never resent."""
        report = SendReport()
        claim = self._ledger.claim_intents_guarded([intent.as_row() for intent in intents])
        keys = claim.claimed
        claimed: list[tuple[Intent, date | None]] = [
            (intent, None) for intent in intents if intent.idempotency_key in keys
        ]
        # Changed since planning (paid, paused, STOP): checked again in the claim itself.
        for why in claim.refused.values():
            report.outcomes[f"skipped_{why}_at_send"] += 1
        report.outcomes["skipped_already_in_outbox"] += (
            len(intents) - len(claimed) - len(claim.refused)
        )
        if not report.outcomes["skipped_already_in_outbox"]:
            del report.outcomes["skipped_already_in_outbox"]
        await self._run(claimed, report)
        return report

    async def reconcile_pending(self, run_id: str | None) -> SendReport:
        """Resolve ``pending`` rows a killed process left: look up first, then send if absent.

        Only safe while holding the send lock (``courier.locks``): then no live process owns
        a ``pending`` row."""
        report = SendReport()
        rows = self._ledger.pending_intents()
        claimed = [(_intent_from_row(row, run_id), row["created_at"].date()) for row in rows]
        await self._run(claimed, report)
        return report

    async def _run(self, claimed: list[tuple[Intent, date | None]], report: SendReport) -> None:
        try:
            results = await asyncio.gather(
                *(self._deliver(intent, claimed_on) for intent, claimed_on in claimed)
            )
        finally:
            self._recorder.flush()
        for outcome, charged in results:
            report.outcomes[outcome] += 1
            report.charged += charged

    async def _deliver(self, intent: Intent, claimed_on: date | None) -> tuple[str, Decimal]:
        """``claimed_on`` is set for a row left pending by an earlier process: look it up first."""
        async with self._slots:
            attempts = 0
            try:
                if claimed_on is not None:
                    found = await self._look_up(intent, claimed_on)
                    if found is not None:
                        return self._accepted(intent, found, attempts)
                async for attempt in self._policy.context():
                    with attempt:
                        attempts += 1
                        await self._limiter.acquire()
                        message = await self._send_or_find(intent)
                return self._accepted(intent, message, attempts)
            except PermanentError as error:
                log.info(
                    "send %s to %s refused: %s",
                    intent.idempotency_key,
                    mask_phone(intent.to_e164),
                    error.reason,
                )
                opted_out = intent.to_e164 if error.code == OPTED_OUT_CODE else None
                self._fail(intent, "failed", error.code, error.reason, attempts, opted_out)
                return "failed", Decimal("0")
            except TransientError as error:
                reason = f"Gateway unavailable, will retry next run: {error}"
                self._fail(intent, "retry", None, reason, attempts)
                return "retry", Decimal("0")
            except (_Unresolved, AdapterError) as error:
                reason = f"Unknown whether the SMS was sent ({error}); check before resending"
                self._fail(intent, "unknown", None, reason, attempts)
                return "unknown", Decimal("0")

    def _fail(
        self,
        intent: Intent,
        status: str,
        code: str | None,
        reason: str,
        attempts: int,
        opted_out: str | None = None,
    ) -> None:
        self._recorder.failed(
            FailedSend(intent.idempotency_key, status, code, reason, attempts), opted_out
        )

    async def _send_or_find(self, intent: Intent) -> SentMessage:
        """One send; after an ambiguous failure, the look-up decides (absent = try again)."""
        try:
            return await self._gateway.send(intent.to_e164, intent.body)
        except AmbiguousError as error:
            log.warning("send %s ambiguous (%s); looking it up", intent.idempotency_key, error)
            # Give a request the gateway is still processing time to land before looking.
            await asyncio.sleep(self._settle_s)
            found = await self._look_up(intent, None)
            if found is not None:
                return found
            raise TransientError(f"not accepted after an ambiguous failure ({error})") from error

    async def _look_up(self, intent: Intent, since: date | None) -> SentMessage | None:
        """Did the gateway take this message? None only when it certainly has not."""
        today = datetime.now(UTC).date()
        first = max(since or today - timedelta(days=1), today - timedelta(days=LOOKUP_DAYS))
        days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
        try:
            for day in days:
                async for attempt in self._policy.context():
                    with attempt:
                        found = await self._gateway.find_sent(intent.to_e164, day, intent.body)
                if found is not None:
                    return found
        except AdapterError as error:
            raise _Unresolved(f"look-up failed: {error}") from error
        return None

    def _accepted(self, intent: Intent, message: SentMessage, attempts: int) -> tuple[str, Decimal]:
        charge = {
            "invoice_number": intent.invoice_number,
            "destination_country": intent.destination_country,
            "segments": intent.segments,
            "unit_price": intent.unit_price,
            "amount": intent.amount,
            "currency": intent.currency,
            "run_id": intent.run_id,
        }
        self._recorder.accepted(
            AcceptedSend(intent.idempotency_key, message.sid, message.status, attempts, charge)
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
