"""What "Send All" will send, by each chosen channel, and what it will cost — before it
sends — and the message template's checks.

The recipients' intents come from the sender's own planning code (``courier.planning``
for SMS, ``courier.email_planning`` for e-mail), with the same purpose, template, language
and sending hours, so the messages and prices are the ones that will be charged.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

import pandas as pd

from courier.channels import EMAIL, SMS
from courier.email_planning import (
    REASON_BOUNCED,
    EmailOptions,
    email_intents_for,
    plan_email,
)
from courier.emails import REASON_INVALID
from courier.emails import REASON_MISSING as REASON_NO_EMAIL
from courier.messages import (
    PriceTable,
    TemplateError,
    count_segments,
    ucs2_forcing_chars,
    validate_template,
)
from courier.planning import (
    REASON_OPTED_OUT,
    Intent,
    SendingHours,
    intents_for,
    manual_purpose,
    plan_on_issue,
    wants_channel,
)
from courier.screens._format import DISPLAY_TZ, column, to_local
from courier.screens.row_actions import EMAIL_NOT_CONFIGURED

#: The dialog's channel choice -> the channels sent by (SMS first: the default).
CHANNEL_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "SMS": (SMS,),
    "E-mail": (EMAIL,),
    "Both": (SMS, EMAIL),
}
#: A channel as a person reads it.
CHANNEL_NAMES: Final[Mapping[str, str]] = {SMS: "SMS", EMAIL: "E-mail"}

SkipKey = Literal[
    "chose_email",
    "missing",
    "invalid",
    "not_mobile",
    "no_document",
    "opted_out",
    "sent_today",
    "outside_hours",
    "already_requested",
]

#: Why an invoice of the selection gets no SMS, in the order the checks run.
SKIP_LABELS: Final[Mapping[SkipKey, str]] = {
    "chose_email": "Buyer chose e-mail only",
    "missing": "No telephone number",
    "invalid": "Invalid telephone number",
    "not_mobile": "Not a mobile number",
    "no_document": "Documents not stored",
    "opted_out": "Buyer opted out (STOP)",
    "sent_today": "Already sent today",
    "outside_hours": "Outside the buyer's sending hours",
    "already_requested": "Already sent by this request",
}

#: Why an invoice of the selection gets no e-mail, as a person reads it, in the order the
#: checks run; an e-Tax by e-mail rule adds its own reason (``courier.email_planning``).
EMAIL_SKIP_CHOSE_SMS: Final = "Buyer chose SMS only"
EMAIL_SKIP_NO_DOCUMENT: Final = SKIP_LABELS["no_document"]
EMAIL_SKIP_HOURS: Final = "Outside the e-mail sending hours"
EMAIL_SKIP_REQUESTED: Final = SKIP_LABELS["already_requested"]


@dataclass(frozen=True)
class SendAllPreview:
    """What "Send All" will do by each of ``channels``, before it does it."""

    request_id: str
    template: str | None  # the SMS text (an e-mail keeps its template files)
    selected: int
    intents: list[Intent]  # every message that will go: the SMS first, then the e-mails
    skipped: dict[SkipKey, list[str]]  # SMS: reason -> invoice numbers, only non-empty ones
    by_encoding: pd.DataFrame  # SMS: encoding, segments (per message), messages
    by_country: pd.DataFrame  # SMS: country, messages, segments, unit_price, amount, currency
    total: Decimal  # both channels, e-mails at their price
    currency: str
    budget: Decimal | None
    ucs2_chars: list[str]  # characters of the SMS that force UCS-2
    template_error: str | None = None
    channels: tuple[str, ...] = (SMS,)
    #: E-mail: the reason a person reads -> invoice numbers, only non-empty ones.
    email_skipped: dict[str, list[str]] = field(default_factory=dict)
    #: Why a chosen channel cannot be previewed (e-mail without a relay), or None.
    channel_error: str | None = None

    def _numbers(self, channel: str) -> list[str]:
        return [i.invoice_number for i in self.intents if i.channel == channel]

    @property
    def sms_recipients(self) -> list[str]:
        return self._numbers(SMS)

    @property
    def email_recipients(self) -> list[str]:
        return self._numbers(EMAIL)

    @property
    def recipients(self) -> list[str]:
        """Invoices that get at least one message (by either channel), in order."""
        return list(dict.fromkeys(i.invoice_number for i in self.intents))

    @property
    def within_budget(self) -> bool:
        return self.budget is None or self.total <= self.budget

    @property
    def can_send(self) -> bool:
        return (
            bool(self.intents)
            and self.within_budget
            and self.template_error is None
            and self.channel_error is None
        )

    @property
    def skipped_counts(self) -> dict[str, int]:
        return {SKIP_LABELS[key]: len(numbers) for key, numbers in self.skipped.items()}

    @property
    def email_skipped_counts(self) -> dict[str, int]:
        return {reason: len(numbers) for reason, numbers in self.email_skipped.items()}

    @property
    def skipped_total(self) -> int:
        """Messages not sent, over the chosen channels (an invoice may count for each)."""
        return sum(self.skipped_counts.values()) + sum(self.email_skipped_counts.values())

    def skipped_table(self) -> pd.DataFrame:
        """Channel, Reason, Invoices: one row per reason of each chosen channel."""
        rows = [("SMS", reason, n) for reason, n in self.skipped_counts.items()]
        rows += [("E-mail", reason, n) for reason, n in self.email_skipped_counts.items()]
        return pd.DataFrame(rows, columns=["Channel", "Reason", "Invoices"])

    @property
    def segments(self) -> int:
        return sum(i.segments for i in self.intents if i.channel == SMS)

    def by_channel(self) -> pd.DataFrame:
        """channel, messages, unit_price (None when prices differ), amount, currency: one
        row per chosen channel, in the order chosen."""
        rows = []
        for channel in self.channels:
            mine = [i for i in self.intents if i.channel == channel]
            prices = {i.unit_price for i in mine}
            rows.append(
                {
                    "channel": CHANNEL_NAMES.get(channel, channel),
                    "messages": len(mine),
                    "unit_price": prices.pop() if channel == EMAIL and len(prices) == 1 else None,
                    "amount": sum((i.amount for i in mine), Decimal(0)),
                    "currency": self.currency,
                }
            )
        return pd.DataFrame(
            rows, columns=["channel", "messages", "unit_price", "amount", "currency"]
        )

    def send_groups(self) -> list[tuple[tuple[str, ...], list[str]]]:
        """(channels, invoice numbers) to send, one group per set of channels an invoice
        gets. The sender is told each invoice's own channels, so an invoice this preview
        skips for one channel (e.g. "Already sent today" by SMS) is not sent by it."""
        sms, email = set(self.sms_recipients), set(self.email_recipients)
        order = self.recipients
        groups = (
            ((SMS, EMAIL), [n for n in order if n in sms and n in email]),
            ((SMS,), [n for n in order if n in sms and n not in email]),
            ((EMAIL,), [n for n in order if n in email and n not in sms]),
        )
        return [(channels, numbers) for channels, numbers in groups if numbers]


def _empty_preview(
    request_id: str,
    template: str | None,
    selected: int,
    currency: str,
    budget: Decimal | None,
    channels: tuple[str, ...],
    error: str | None = None,
) -> SendAllPreview:
    return SendAllPreview(
        request_id=request_id,
        template=template,
        selected=selected,
        intents=[],
        skipped={},
        by_encoding=_sms_tables([])[0],
        by_country=_sms_tables([])[1],
        total=Decimal(0),
        currency=currency,
        budget=budget,
        ucs2_chars=[],
        template_error=error,
        channels=channels,
    )


class _Selection:
    """The rows still in play, and each check's skipped invoices (checks run in order)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.skipped: dict[str, list[str]] = {}

    def skip(self, key: str, mask: Callable[[pd.DataFrame], pd.Series]) -> None:
        hit = mask(self.rows)
        numbers = self.rows.loc[hit, "invoice_number"].astype(str).tolist()
        if numbers:
            self.skipped.setdefault(key, []).extend(numbers)
        self.rows = self.rows[~hit]


def _wants(rows: pd.DataFrame, channel: str) -> pd.Series:
    """The buyer's recorded channel allows ``channel`` (none recorded: yes)."""
    return column(rows, "channel_preference").map(lambda p: wants_channel(p, channel)).astype(bool)


def _requested(messages: pd.DataFrame, purpose: str, channel: str, rows: pd.DataFrame) -> list[str]:
    """Invoices of ``rows`` this very request already sent by ``channel`` (a repeat)."""
    by_channel = column(messages, "channel", SMS).fillna(SMS)
    mine = messages[(messages["purpose"] == purpose) & (by_channel == channel)]
    return sorted(set(mine["invoice_number"].astype(str)) & set(rows["invoice_number"].astype(str)))


def _sms_part(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    prices: PriceTable,
    *,
    purpose: str,
    requested_by: str,
    now: datetime,
    template: str | None,
    opted_out: set[str],
    hours: SendingHours | None,
    language: str,
) -> tuple[list[Intent], dict[SkipKey, list[str]]]:
    """The SMS intents, and why the others get none (``SKIP_LABELS`` order)."""
    selection = _Selection(candidates)
    selection.skip("chose_email", lambda r: ~_wants(r, SMS))
    selection.skip("missing", lambda r: r["phone_status"] == "missing")
    selection.skip("invalid", lambda r: r["phone_status"] == "invalid")
    selection.skip("not_mobile", lambda r: r["phone_status"] != "ok")
    selection.skip("no_document", lambda r: (r["uploaded_documents"] < 2) | r["pdf_url"].isna())
    selection.skip("opted_out", lambda r: r["phone_e164"].isin(list(opted_out)))
    today = pd.Timestamp(now).tz_convert(DISPLAY_TZ).normalize()

    def sent_today(rows: pd.DataFrame) -> pd.Series:
        sent_at = to_local(rows["last_sent_at"])
        return (sent_at >= today) & (sent_at < today + pd.Timedelta(days=1))

    selection.skip("sent_today", sent_today)
    rest = selection.rows

    def in_order() -> dict[SkipKey, list[str]]:
        return {key: selection.skipped[key] for key in SKIP_LABELS if key in selection.skipped}

    # Zero rows would lose their columns in planning's channel-preference filter (an empty
    # object mask selects columns): nothing is left to plan anyway.
    if rest.empty:
        return [], in_order()
    plan = plan_on_issue(rest, messages, opted_out, now=now, hours=hours, purpose=purpose)
    held_hours = [n for n, why in plan.held.items() if why != REASON_OPTED_OUT]
    if held_hours:
        selection.skipped["outside_hours"] = held_hours
    requested = _requested(messages, purpose, SMS, rest)
    if requested:
        selection.skipped["already_requested"] = requested
    intents = intents_for(
        plan.due,
        prices,
        language=language,
        purpose=purpose,
        requested_by=requested_by,
        template=template,
    )
    return intents, in_order()


def _email_part(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    options: EmailOptions,
    *,
    purpose: str,
    requested_by: str,
    now: datetime,
    bounced: set[str],
    hours: SendingHours | None,
) -> tuple[list[Intent], dict[str, list[str]]]:
    """The e-mail intents (``plan_email`` and ``email_intents_for``, as the sender plans
    them), and why the others get none, by the reason a person reads."""

    def address(rows: pd.DataFrame) -> pd.Series:
        return column(rows, "email_status", "missing").fillna("missing")

    selection = _Selection(candidates)
    selection.skip(EMAIL_SKIP_CHOSE_SMS, lambda r: ~_wants(r, EMAIL))
    selection.skip(REASON_NO_EMAIL, lambda r: address(r) == "missing")
    selection.skip(REASON_INVALID, lambda r: (address(r) != "ok") | column(r, "buyer_email").isna())
    selection.skip(
        EMAIL_SKIP_NO_DOCUMENT, lambda r: (r["uploaded_documents"] < 2) | r["pdf_url"].isna()
    )
    rest = selection.rows
    if rest.empty:  # as for SMS: planning's channel filter cannot take zero rows
        return [], selection.skipped
    plan = plan_email(rest, messages, bounced, now=now, hours=hours, purpose=purpose)
    for number, why in plan.held.items():
        reason = REASON_BOUNCED if why == REASON_BOUNCED else EMAIL_SKIP_HOURS
        selection.skipped.setdefault(reason, []).append(number)
    requested = _requested(messages, purpose, EMAIL, rest)
    if requested:
        selection.skipped[EMAIL_SKIP_REQUESTED] = requested
    intents, refused = email_intents_for(
        plan.due, options, purpose=purpose, requested_by=requested_by
    )
    for number, why in refused.items():  # an e-Tax by e-mail rule: its own words
        selection.skipped.setdefault(why, []).append(number)
    return intents, selection.skipped


def _sms_tables(intents: list[Intent]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by encoding, by country) of the SMS intents."""
    if not intents:
        return (
            pd.DataFrame(columns=["encoding", "segments", "messages"]),
            pd.DataFrame(
                columns=["country", "messages", "segments", "unit_price", "amount", "currency"]
            ),
        )
    rows = pd.DataFrame(
        {
            "country": [i.destination_country for i in intents],
            "encoding": [i.encoding for i in intents],
            "segments": [i.segments for i in intents],
            "unit_price": [i.unit_price for i in intents],
            "amount": [i.amount for i in intents],
            "currency": [i.currency for i in intents],
        }
    )
    by_encoding = (
        rows.groupby(["encoding", "segments"], as_index=False)
        .size()
        .rename(columns={"size": "messages"})
    )
    by_country = (
        rows.groupby(["country", "unit_price", "currency"], as_index=False)
        .agg(
            messages=("segments", "size"),
            segments=("segments", "sum"),
            amount=("amount", lambda a: sum(a, Decimal(0))),
        )
        .loc[:, ["country", "messages", "segments", "unit_price", "amount", "currency"]]
    )
    return by_encoding, by_country


def preview_send_all(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    prices: PriceTable,
    *,
    request_id: str,
    requested_by: str,
    now: datetime,
    template: str | None = None,
    opted_out: Iterable[str] = (),
    hours: SendingHours | None = None,
    language: str = "auto",
    budget: Decimal | None = None,
    channels: Sequence[str] = (SMS,),
    email: EmailOptions | None = None,
    bounced: Iterable[str] = (),
    email_hours: SendingHours | None = None,
) -> SendAllPreview:
    """Who "Send All" texts and e-mails, who it skips and why (per channel), and exactly
    what it costs.

    ``candidates`` is ``Ledger.send_all_candidates(selection)`` (the selected invoices with
    phone, address, channel preference, documents, ``pdf_url``, the last SMS's
    ``last_sent_at``); ``messages`` is ``Ledger.message_keys()``; ``email`` the run's
    e-mail options (None: e-mail is not configured, and choosing it is an error);
    ``bounced`` the addresses that bounced. SMS skips are counted in the order of
    ``SKIP_LABELS``; the purpose is ``manual:<request_id>`` for both channels.

    Each SMS carries the link minted at send time (``courier.jobs.send_manual`` uploads the
    document again). It is measured here on the invoice's current ``pdf_url``: the document
    store mints every link as ``<base URL>/d/<token>`` with a fixed-length token, so a fresh
    link has exactly the same length and the segment count cannot change.
    """
    chosen = tuple(c for c in (SMS, EMAIL) if c in channels)
    selected = len(candidates)
    if SMS not in chosen or (template is not None and not template.strip()):
        template = None  # an e-mail keeps its template files; blank = the usual text
    if template is not None:
        try:
            validate_template(template)
        except TemplateError as error:
            return _empty_preview(
                request_id, template, selected, prices.currency, budget, chosen, str(error)
            )
    purpose = manual_purpose(request_id)
    intents: list[Intent] = []
    skipped: dict[SkipKey, list[str]] = {}
    email_skipped: dict[str, list[str]] = {}
    channel_error = None if chosen else "Choose a channel to send by."
    if SMS in chosen:
        intents, skipped = _sms_part(
            candidates,
            messages,
            prices,
            purpose=purpose,
            requested_by=requested_by,
            now=now,
            template=template,
            opted_out=set(opted_out),
            hours=hours,
            language=language,
        )
    if EMAIL in chosen and email is None:
        channel_error = EMAIL_NOT_CONFIGURED
    elif EMAIL in chosen and email is not None:
        mails, email_skipped = _email_part(
            candidates,
            messages,
            email,
            purpose=purpose,
            requested_by=requested_by,
            now=now,
            bounced={a.lower() for a in bounced},
            hours=email_hours,
        )
        intents = intents + mails
    sms_intents = [i for i in intents if i.channel == SMS]
    by_encoding, by_country = _sms_tables(sms_intents)
    forcing: dict[str, None] = {}
    for intent in sms_intents:
        if intent.encoding == "UCS-2":
            forcing.update(dict.fromkeys(ucs2_forcing_chars(intent.body)))
    return SendAllPreview(
        request_id=request_id,
        template=template,
        selected=selected,
        intents=intents,
        skipped=skipped,
        by_encoding=by_encoding,
        by_country=by_country,
        total=sum((i.amount for i in intents), Decimal(0)),
        currency=intents[0].currency if intents else prices.currency,
        budget=budget,
        ucs2_chars=list(forcing),
        channels=chosen,
        email_skipped=email_skipped,
        channel_error=channel_error,
    )


# --------------------------------------------------------------------------- template


@dataclass(frozen=True)
class TemplateCheck:
    error: str | None
    encoding: str
    segments: int  # of the template text alone (placeholders still in it)
    ucs2_chars: list[str]
    highlighted_html: str


def check_template(template: str) -> TemplateCheck:
    """A template as typed: its error (if any), and the characters that force UCS-2
    highlighted (``<mark>``) in an HTML-escaped copy of the text."""
    error = None
    try:
        validate_template(template)
    except TemplateError as exc:
        error = str(exc)
    info = count_segments(template)
    return TemplateCheck(
        error=error,
        encoding=info.encoding,
        segments=info.segments,
        ucs2_chars=ucs2_forcing_chars(template),
        highlighted_html=highlight_ucs2(template),
    )


def highlight_ucs2(text: str) -> str:
    """``text`` HTML-escaped, each character outside GSM-7 wrapped in ``<mark>``."""
    forcing = set(ucs2_forcing_chars(text))
    return "".join(
        f"<mark>{html.escape(ch)}</mark>" if ch in forcing else html.escape(ch) for ch in text
    )


def char_names(chars: Sequence[str]) -> str:
    """``ก (U+0E01), ฿ (U+0E3F)`` — shown next to the highlighted text."""
    return ", ".join(
        f"{ch if ch.isprintable() and not ch.isspace() else ' '} (U+{ord(ch):04X})" for ch in chars
    )
