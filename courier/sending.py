"""Sending each intent exactly once, by its channel (the imperative shell around the
gateway and the mail relay; ``courier.channels`` is the seam).

The protocol, per intent:

1. **Claim**: the outbox row (stable ``idempotency_key``) is committed as ``pending``
   *before* the gateway is called. A key already in the outbox is never sent again.
2. **Send** with the shared retry policy for transient errors (429/5xx/connect).
3. **Ambiguous failure** (timeout or connection lost after the request was written): the
   gateway may have accepted it, so it is *looked up* (same number, same day, same body —
   the body carries the invoice's unique link) before anything is resent. Found: recorded
   as accepted. Lookup impossible: ``unknown``, for a person; never blindly resent.
   A channel that cannot be asked (SMTP) marks the row ``sending`` before handing the
   message over; an ambiguous failure there is ``unknown`` at once.
4. **Record** the outcome: ``accepted`` with its one charge row (same transaction),
   ``failed`` with the reason a person reads (permanent), or ``retry`` (transient errors
   outlasted the policy: the next run tries again).

A process killed between 1 and 4 leaves a ``pending`` row; ``reconcile_pending`` resolves it
by the same look-up before a run sends anything new (an e-mail still ``pending`` was never
handed over and is sent; one left ``sending`` is ``unknown``).
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
from courier.adapters.sms import SmsGateway
from courier.channels import SMS, Channel, HandedOver, SmsChannel
from courier.ledger import AcceptedSend, FailedSend, Ledger
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

#: What each channel's message is called in a reason a person reads.
_WHAT = {"sms": "SMS", "email": "e-mail"}


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

    def accepted(self, outcome: AcceptedSend, now: bool = False) -> None:
        self._accepted.append(outcome)
        self._maybe_flush(now)

    def failed(self, outcome: FailedSend, opted_out: str | None = None, now: bool = False) -> None:
        self._failed.append(outcome)
        if opted_out:
            self._opt_outs.append(opted_out)
        self._maybe_flush(now)

    def _maybe_flush(self, now: bool) -> None:
        """``now``: a channel that cannot be asked later (e-mail) writes each outcome at
        once, so a crash leaves as few rows as possible ``unknown``."""
        waiting = len(self._accepted) + len(self._failed)
        if now or waiting >= self._every or time.monotonic() - self._last >= self._after_s:
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


class _Lane:
    """A channel with its own share of concurrency and pace (the SMS gateway's rate is
    not the mail relay's)."""

    def __init__(self, channel: Channel, concurrency: int, limiter: TokenBucket | Unlimited):
        self.channel = channel
        self.slots = asyncio.Semaphore(concurrency)
        self.limiter = limiter


class Sender:
    def __init__(
        self,
        gateway: SmsGateway | None,
        ledger: Ledger,
        policy: RetryPolicy,
        concurrency: int = 8,
        settle_s: float = AMBIGUOUS_SETTLE_S,
        limiter: TokenBucket | Unlimited | None = None,
        email: Channel | None = None,
        email_concurrency: int = 4,
    ) -> None:
        """``gateway`` carries the SMS; ``email`` the e-mail, when configured. An intent of
        a channel not configured here is left to ``retry`` (a later run sends it)."""
        self._settle_s = settle_s
        self._ledger = ledger
        self._policy = policy
        self._lanes: dict[str, _Lane] = {}
        if gateway is not None:
            self._lanes[SMS] = _Lane(SmsChannel(gateway), concurrency, limiter or Unlimited())
        if email is not None:
            self._lanes[email.name] = _Lane(email, email_concurrency, Unlimited())
        self._recorder = _Recorder(ledger)

    async def send_all(self, intents: list[Intent]) -> SendReport:
        """Claim and send each intent; already-claimed keys are skipped, never resent."""
        report = SendReport()
        claim = self._ledger.claim_intents_guarded([intent.as_row() for intent in intents])
        keys = claim.claimed
        claimed: list[tuple[Intent, date | None]] = [
            (intent, None) for intent in intents if intent.idempotency_key in keys
        ]
        # Changed since planning (paid, paused, STOP, bounced): checked again in the claim.
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
        """Resolve rows a killed process left: ``pending`` ones are looked up first (SMS)
        or were never handed over (e-mail) and are sent; an e-mail left ``sending`` may
        have gone, and SMTP cannot be asked: ``unknown``, for a person.

        Only safe while holding the send lock (``courier.locks``): then no live process owns
        a ``pending`` row."""
        report = SendReport()
        claimed: list[tuple[Intent, date | None]] = []
        for row in self._ledger.pending_intents():
            intent = _intent_from_row(row, run_id)
            if row["status"] == "sending":
                what = _WHAT.get(intent.channel, intent.channel)
                reason = (
                    f"Unknown whether the {what} was sent (the run stopped while handing it "
                    "over); check before resending"
                )
                self._fail(intent, "unknown", None, reason, 0)
                report.outcomes[
                    "unknown" if intent.channel == SMS else f"{intent.channel}_unknown"
                ] += 1
            else:
                claimed.append((intent, row["created_at"].date()))
        await self._run(claimed, report)
        return report

    async def _run(self, claimed: list[tuple[Intent, date | None]], report: SendReport) -> None:
        try:
            results = await asyncio.gather(
                *(self._deliver(intent, claimed_on) for intent, claimed_on in claimed)
            )
        finally:
            self._recorder.flush()
        for (intent, _), (outcome, charged) in zip(claimed, results, strict=True):
            # An SMS's outcome keeps its plain name; another channel's is prefixed.
            prefix = "" if intent.channel == SMS else f"{intent.channel}_"
            report.outcomes[prefix + outcome] += 1
            report.charged += charged

    async def _deliver(self, intent: Intent, claimed_on: date | None) -> tuple[str, Decimal]:
        """``claimed_on`` is set for a row left pending by an earlier process: look it up first."""
        lane = self._lanes.get(intent.channel)
        what = _WHAT.get(intent.channel, intent.channel)
        if lane is None:
            reason = f"The {what} channel is not configured; a later run sends it"
            self._fail(intent, "retry", None, reason, 0)
            return "retry", Decimal("0")
        channel = lane.channel
        urgent = not channel.can_look_up
        async with lane.slots:
            attempts = 0
            try:
                if claimed_on is not None and channel.can_look_up:
                    found = await self._look_up(channel, intent, claimed_on)
                    if found is not None:
                        return self._accepted(intent, found, attempts)
                if urgent:  # from here on the relay may take it, and cannot be asked later
                    self._ledger.mark_sending([intent.idempotency_key])
                async for attempt in self._policy.context():
                    with attempt:
                        attempts += 1
                        await lane.limiter.acquire()
                        message = await self._send_or_find(channel, intent)
                return self._accepted(intent, message, attempts)
            except PermanentError as error:
                log.info(
                    "send %s to %s refused: %s",
                    intent.idempotency_key,
                    intent.recipient_masked,
                    error.reason,
                )
                opted_out = (
                    intent.to_e164 if channel.name == SMS and error.code == OPTED_OUT_CODE else None
                )
                self._fail(intent, "failed", error.code, error.reason, attempts, opted_out)
                return "failed", Decimal("0")
            except TransientError as error:
                provider = "Gateway" if channel.name == SMS else "Mail relay"
                reason = f"{provider} unavailable, will retry next run: {error}"
                self._fail(intent, "retry", None, reason, attempts)
                return "retry", Decimal("0")
            except (_Unresolved, AdapterError) as error:
                reason = f"Unknown whether the {what} was sent ({error}); check before resending"
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
            FailedSend(intent.idempotency_key, status, code, reason, attempts),
            opted_out,
            now=self._urgent(intent),
        )

    def _urgent(self, intent: Intent) -> bool:
        lane = self._lanes.get(intent.channel)
        return lane is not None and not lane.channel.can_look_up

    async def _send_or_find(self, channel: Channel, intent: Intent) -> HandedOver:
        """One send; after an ambiguous failure, the look-up decides (absent = try again)."""
        try:
            return await channel.send(intent)
        except AmbiguousError as error:
            if not channel.can_look_up:
                raise _Unresolved(f"line lost after the message was sent: {error}") from error
            log.warning("send %s ambiguous (%s); looking it up", intent.idempotency_key, error)
            # Give a request the gateway is still processing time to land before looking.
            await asyncio.sleep(self._settle_s)
            found = await self._look_up(channel, intent, None)
            if found is not None:
                return found
            raise TransientError(f"not accepted after an ambiguous failure ({error})") from error

    async def _look_up(
        self, channel: Channel, intent: Intent, since: date | None
    ) -> HandedOver | None:
        """Did the gateway take this message? None only when it certainly has not."""
        today = datetime.now(UTC).date()
        first = max(since or today - timedelta(days=1), today - timedelta(days=LOOKUP_DAYS))
        days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
        try:
            for day in days:
                async for attempt in self._policy.context():
                    with attempt:
                        found = await channel.find_sent(intent, day)
                if found is not None:
                    return found
        except AdapterError as error:
            raise _Unresolved(f"look-up failed: {error}") from error
        return None

    def _accepted(self, intent: Intent, message: HandedOver, attempts: int) -> tuple[str, Decimal]:
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
            AcceptedSend(intent.idempotency_key, message.sid, message.status, attempts, charge),
            now=self._urgent(intent),
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
        channel=row.get("channel") or SMS,
        stop_when_paid=bool(row.get("stop_when_paid")),
        pausable=bool(row.get("pausable")),
        to_address=row.get("to_address"),
        from_address=row.get("from_address"),
        cc_address=row.get("cc_address"),
        subject=row.get("subject"),
        body_html=row.get("body_html"),
        message_id=row.get("message_id"),
        attachment_url=row.get("attachment_url"),
    )
