"""Choosing what to send now, and building each send's intent (pure functions).

Guard rails live here, before anything is claimed or sent: a textable phone, both
documents stored, not already in the outbox, not opted out (STOP), inside the buyer's
local sending hours, and within the run's budget.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import phonenumbers
from phonenumbers import timezone as phone_timezones

from courier.emails import mask_email
from courier.invoice_io import invoice_from_dict
from courier.messages import (
    PriceTable,
    count_segments,
    country_of_e164,
    invoice_sms_values,
    on_issue_template_for,
    render_sms,
)
from courier.phones import mask_phone

ON_ISSUE = "on_issue"

#: Reasons a person reads for an invoice held back by a guard rail.
REASON_OPTED_OUT = "Buyer opted out (STOP)"
REASON_QUIET_HOURS = "Waiting for sending hours ({window} in the buyer's time)"

#: Used when a number's own time zone cannot be told (rare: non-geographic numbers).
FALLBACK_TIMEZONE = "Asia/Bangkok"


def idempotency_key(invoice_number: str, purpose: str, channel: str = "sms") -> str:
    """The stable identity of one intent to send: the same invoice, purpose and channel,
    the same key (an SMS keeps the key it had before there were channels)."""
    if channel == "sms":
        return f"{invoice_number}:{purpose}"
    return f"{invoice_number}:{purpose}:{channel}"


def wants_channel(preference: object, channel: str) -> bool:
    """A buyer's recorded choice (``sms``, ``email``, ``both``); none recorded: every
    channel the invoice has an address for."""
    if not isinstance(preference, str) or not preference:
        return True
    return preference in ("both", channel)


@dataclass(frozen=True)
class SendingHours:
    """Business SMS is expected between ``start`` and ``end`` in the recipient's local time."""

    start: time = time(9, 0)
    end: time = time(21, 0)

    @classmethod
    def parse(cls, text: str) -> SendingHours | None:
        """``"09:00-21:00"``; ``"off"`` (or empty) means no restriction (None)."""
        cleaned = text.strip().lower()
        if cleaned in ("", "off", "none"):
            return None
        try:
            start_text, end_text = cleaned.split("-")
            start, end = (
                time.fromisoformat(start_text.strip()),
                time.fromisoformat(end_text.strip()),
            )
        except ValueError:
            raise ValueError(
                f"sending hours must look like 09:00-21:00 or off, not {text!r}"
            ) from None
        if start >= end:
            raise ValueError(f"sending hours must start before they end: {text!r}")
        return cls(start, end)

    def allows(self, moment_utc: datetime, zone: str) -> bool:
        local = moment_utc.astimezone(ZoneInfo(zone)).time()
        return self.start <= local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@cache
def timezone_of(e164: str) -> str:
    """The number's own time zone (a mobile's region), not the buyer's postal address."""
    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return FALLBACK_TIMEZONE
    usable = [z for z in zones if z and z != "Etc/Unknown"]
    return usable[0] if usable else FALLBACK_TIMEZONE


@dataclass
class Plan:
    due: pd.DataFrame
    held: dict[str, str] = field(default_factory=dict)  # invoice number -> reason


def manual_purpose(request_id: str) -> str:
    """A person's send request: each request is its own intent (and its own charge), while
    the same request arriving twice (a double click) is the same intent."""
    return f"manual:{request_id}"


def plan_on_issue(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    opted_out: set[str] | frozenset[str] = frozenset(),
    now: datetime | None = None,
    hours: SendingHours | None = None,
    purpose: str = ON_ISSUE,
) -> Plan:
    """Invoices whose SMS for ``purpose`` is due now, and why the others that could be are held.

    ``candidates`` is ``Ledger.send_candidates()``; ``messages`` is ``Ledger.message_keys()``.
    Intents already in the outbox are excluded unless their state is ``retry`` (a transient
    failure outlasted the last run's retries: planned again, the claim re-opens the same
    row); ``pending`` ones are reconciled, the rest are final.
    """
    fresh = not_yet_sent(candidates, messages, purpose, "sms")
    return guard_rails(fresh, opted_out, now, hours)


def not_yet_sent(
    candidates: pd.DataFrame, messages: pd.DataFrame, purpose: str, channel: str
) -> pd.DataFrame:
    """The candidates that want ``channel`` and have no final outbox row for ``purpose``
    by it (a ``retry`` row is planned again)."""
    if "channel" in messages:
        mine = messages[messages["channel"].fillna("sms") == channel]
    else:  # rows from before there were channels are SMS
        mine = messages if channel == "sms" else messages.iloc[0:0]
    in_outbox = mine[(mine["purpose"] == purpose) & (mine["status"] != "retry")]
    already = set(in_outbox["invoice_number"])
    if purpose == ON_ISSUE:
        # A buyer who already got the document by this channel (a person sent it before
        # the nightly run) is not sent it again automatically.
        already |= set(mine.loc[mine["status"] == "accepted", "invoice_number"])
    if "channel_preference" in candidates:
        wanted = candidates["channel_preference"].map(lambda p: wants_channel(p, channel))
        candidates = candidates[wanted.astype(bool)]  # typed even with no rows
    return candidates[~candidates["invoice_number"].isin(already)]


def guard_rails(
    candidates: pd.DataFrame,
    opted_out: set[str] | frozenset[str] = frozenset(),
    now: datetime | None = None,
    hours: SendingHours | None = None,
) -> Plan:
    """The rules every SMS obeys, whatever its purpose (on issue, a person's, a reminder):
    a textable number, both documents stored (the link must work), no STOP from the
    number, and the buyer's local sending hours. Rows without a number or documents are
    simply not sendable; opted-out and out-of-hours ones are ``held`` with the reason."""
    ready = candidates[
        (candidates["phone_status"] == "ok")
        & (candidates["uploaded_documents"] >= 2)
        & candidates["pdf_url"].notna()
    ]
    held: dict[str, str] = {}
    stop = ready["phone_e164"].isin(list(opted_out))
    held.update(dict.fromkeys(ready.loc[stop, "invoice_number"], REASON_OPTED_OUT))
    ready = ready[~stop]
    if hours is not None and now is not None:
        inside = ready["phone_e164"].map(lambda e164: hours.allows(now, timezone_of(str(e164))))
        reason = REASON_QUIET_HOURS.format(window=hours)
        held.update(dict.fromkeys(ready.loc[~inside, "invoice_number"], reason))
        ready = ready[inside]
    return Plan(ready.reset_index(drop=True), held)


@dataclass(frozen=True)
class Intent:
    idempotency_key: str
    invoice_number: str
    purpose: str
    requested_by: str
    to_e164: str | None  # an SMS's number; None for an e-mail
    destination_country: str
    body: str
    encoding: str
    segments: int
    unit_price: Decimal
    amount: Decimal
    currency: str
    run_id: str | None = None
    channel: str = "sms"
    # Guards the outbox checks again when it claims the intent, right before sending:
    stop_when_paid: bool = False  # not if the invoice has been paid meanwhile (a reminder)
    pausable: bool = False  # not while reminders are paused for the invoice or its buyer
    # An e-mail's own parts (``body`` is its plain text): all it takes to build it again.
    to_address: str | None = None
    from_address: str | None = None
    cc_address: str | None = None  # ETDA's time-stamp mailbox, for a seller who opted in
    subject: str | None = None
    body_html: str | None = None
    message_id: str | None = None
    attachment_url: str | None = None  # the stored PDF, attached when sent

    @property
    def recipient_masked(self) -> str:
        """Who it goes to, as logs and screens show it."""
        if self.channel == "email":
            return mask_email(self.to_address or "")
        return mask_phone(self.to_e164 or "")

    def as_row(self) -> dict[str, Any]:
        return self.__dict__.copy()


def build_intent(
    record: dict[str, Any],
    to_e164: str,
    link: str,
    prices: PriceTable,
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
    run_id: str | None = None,
    language: str = "auto",
    template: str | None = None,
    extra_values: Mapping[str, str] | None = None,
    stop_when_paid: bool = False,
    pausable: bool = False,
) -> Intent:
    """The SMS for one invoice: text with the document link, its segments and its price.

    ``extra_values`` fills placeholders beyond the on-issue ones (a reminder's amount due,
    days overdue); ``stop_when_paid`` and ``pausable`` are the reminder guards the outbox
    checks again at claim time."""
    invoice = invoice_from_dict(record)
    chosen = template or on_issue_template_for(invoice.buyer.country, language)
    body = render_sms(chosen, **{**invoice_sms_values(invoice, link), **(extra_values or {})})
    info = count_segments(body)
    country = country_of_e164(to_e164)
    price = prices.price_for(country)
    return Intent(
        idempotency_key=idempotency_key(invoice.number, purpose),
        invoice_number=invoice.number,
        purpose=purpose,
        requested_by=requested_by,
        to_e164=to_e164,
        destination_country=country,
        body=body,
        encoding=info.encoding,
        segments=info.segments,
        unit_price=price.price_per_segment,
        amount=prices.charge(country, info.segments),
        currency=price.currency,
        run_id=run_id,
        stop_when_paid=stop_when_paid,
        pausable=pausable,
    )


def intents_for(
    due: pd.DataFrame,
    prices: PriceTable,
    run_id: str | None = None,
    language: str = "auto",
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
    template: str | None = None,
) -> list[Intent]:
    """One intent per due row; ``template`` (a person's own text, e.g. the dashboard's
    "Send All") replaces the default on-issue template for every row when given."""
    return [
        build_intent(
            json.loads(str(row.record_json)),
            str(row.phone_e164),
            str(row.pdf_url),
            prices,
            purpose=purpose,
            requested_by=requested_by,
            run_id=run_id,
            language=language,
            template=template,
        )
        for row in due.itertuples(index=False)
    ]


def over_budget(intents: list[Intent], budget: Decimal | None) -> str | None:
    """Why a run must send nothing (its quoted cost exceeds the budget), or None."""
    if budget is None or not intents:
        return None
    quoted = sum((intent.amount for intent in intents), Decimal(0))
    if quoted <= budget:
        return None
    currency = intents[0].currency
    return (
        f"Run budget {budget} {currency} would be exceeded: {len(intents)} SMS quoted at "
        f"{quoted} {currency}. Nothing was sent; raise COURIER_RUN_BUDGET or send fewer."
    )
