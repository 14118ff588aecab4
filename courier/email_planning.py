"""Choosing the e-mails to send now and building each one's intent (pure functions).

The e-mail's guard rails mirror the SMS's (``courier.planning.guard_rails``): a valid
address, both documents stored, the address not bounced, and e-mail's own sending hours
in the buyer's time (by the buyer's country: an address has no time zone). What goes into
the outbox is the whole message — subject, plain text, HTML, Message-ID, sender, copy and
the stored PDF it attaches — so the very same message can be built again after a crash.

Sellers in ETDA's "e-Tax Invoice by e-mail" scheme (``EtaxByEmail``) send From their own
address with a copy to the time-stamp mailbox, and only the documents the scheme covers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import pandas as pd

from courier.channels import EMAIL
from courier.domain import Invoice
from courier.email_messages import email_language, message_id_for, render_email
from courier.emails import clean_email
from courier.etax_email import MAX_ATTACHMENT_BYTES as ETAX_MAX_ATTACHMENT_BYTES
from courier.etax_email import etax_covers, etax_subject
from courier.invoice_io import invoice_from_dict
from courier.planning import ON_ISSUE, Intent, Plan, SendingHours, idempotency_key, not_yet_sent
from courier.reminders.schedule import zone_for_country

REASON_BOUNCED: Final = "E-mail address bounced"
REASON_EMAIL_HOURS: Final = "Waiting for e-mail hours ({window} in the buyer's time)"
REASON_ETAX_SENDER: Final = (
    "e-Tax by e-mail needs the seller's own e-mail address on the invoice (missing or invalid)"
)
REASON_ETAX_TOO_LARGE: Final = "e-Tax by e-mail: the PDF is larger than the 3 MB it accepts"
REASON_ETAX_NOT_COVERED: Final = "e-Tax by e-mail does not cover this document type"


@dataclass(frozen=True)
class EtaxByEmail:
    """ETDA's e-Tax Invoice by e-mail: which sellers (tax ids) opted in, and the mailbox."""

    sellers: frozenset[str] = frozenset()
    timestamp_address: str = "csemail@etax.teda.th"

    def applies(self, invoice: Invoice) -> bool:
        seller = invoice.seller
        return seller.country == "TH" and seller.tax_id.strip() in self.sellers


@dataclass(frozen=True)
class EmailOptions:
    """What every e-mail of a run shares (from settings)."""

    sender: str  # the From, unless a seller sends from its own address (e-Tax by e-mail)
    price: Decimal
    currency: str
    max_attachment_bytes: int
    message_id_domain: str = ""  # empty: the From's domain
    language: str = "auto"
    etax: EtaxByEmail = EtaxByEmail()


def plan_email(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    bounced: set[str] | frozenset[str] = frozenset(),
    now: datetime | None = None,
    hours: SendingHours | None = None,
    purpose: str = ON_ISSUE,
) -> Plan:
    """Invoices whose e-mail for ``purpose`` is due now, and why others are held.

    ``candidates`` is ``Ledger.send_candidates()``; ``messages`` ``Ledger.message_keys()``.
    """
    return email_guard_rails(
        not_yet_sent(candidates, messages, purpose, EMAIL), bounced, now, hours
    )


def email_guard_rails(
    candidates: pd.DataFrame,
    bounced: set[str] | frozenset[str] = frozenset(),
    now: datetime | None = None,
    hours: SendingHours | None = None,
) -> Plan:
    """Rows without a valid address or without their documents are simply not sendable;
    bounced and out-of-hours ones are ``held`` with the reason."""
    ready = candidates[
        (candidates["email_status"] == "ok")
        & candidates["buyer_email"].notna()
        & (candidates["uploaded_documents"] >= 2)
        & candidates["pdf_url"].notna()
    ]
    held: dict[str, str] = {}
    gone = ready["buyer_email"].str.lower().isin(list(bounced))
    held.update(dict.fromkeys(ready.loc[gone, "invoice_number"], REASON_BOUNCED))
    ready = ready[~gone]
    if hours is not None and now is not None:
        inside = ready["buyer_country"].map(
            lambda country: hours.allows(now, zone_for_country(str(country)))
        )
        reason = REASON_EMAIL_HOURS.format(window=hours)
        held.update(dict.fromkeys(ready.loc[~inside, "invoice_number"], reason))
        ready = ready[inside]
    return Plan(ready.reset_index(drop=True), held)


class NotSendable(ValueError):
    """This e-mail cannot go as the rules stand (a person reads the reason)."""


def build_email_intent(
    record: dict[str, Any],
    to_address: str,
    link: str,
    pdf_bytes: int | None,
    options: EmailOptions,
    *,
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
    run_id: str | None = None,
    kind: str = "on_issue",
    extra_values: Mapping[str, str] | None = None,
    stop_when_paid: bool = False,
    pausable: bool = False,
    etax_copy: bool = True,
) -> Intent:
    """The e-mail about one invoice: its parts from the template files, the PDF attached
    when it is small enough (else the link alone), a Message-ID from its key.

    ``etax_copy``: this e-mail delivers the document itself and none has yet gone to the
    time-stamp mailbox (a reminder, or a resend of a stamped document, does not). Then,
    for a seller in the e-Tax by e-mail scheme, it follows the scheme's rules, or raises
    ``NotSendable`` when it cannot (no seller address, a document type the scheme does
    not cover, a PDF too large to attach)."""
    invoice = invoice_from_dict(record)
    attach = pdf_bytes is None or pdf_bytes <= options.max_attachment_bytes
    sender, cc, subject = options.sender, None, None
    if etax_copy and options.etax.applies(invoice):
        if not etax_covers(invoice.type_code):
            raise NotSendable(REASON_ETAX_NOT_COVERED)
        own = clean_email(invoice.seller.email)
        if not own.ok or own.address is None:
            raise NotSendable(REASON_ETAX_SENDER)
        if not attach or (pdf_bytes or 0) > ETAX_MAX_ATTACHMENT_BYTES:
            raise NotSendable(REASON_ETAX_TOO_LARGE)
        sender, cc = f"{invoice.seller.name} <{own.address}>", options.etax.timestamp_address
        subject = etax_subject(invoice)
    language = email_language(invoice.buyer.country, options.language)
    content = render_email(
        invoice, link, language=language, attached=attach, kind=kind, extra_values=extra_values
    )
    key = idempotency_key(invoice.number, purpose, EMAIL)
    domain = options.message_id_domain or sender.rsplit("@", 1)[-1].strip(" >")
    return Intent(
        idempotency_key=key,
        invoice_number=invoice.number,
        purpose=purpose,
        requested_by=requested_by,
        to_e164=None,
        destination_country=invoice.buyer.country,
        body=content.text,
        encoding="utf-8",
        segments=0,
        unit_price=options.price,
        amount=options.price,
        currency=options.currency,
        run_id=run_id,
        channel=EMAIL,
        stop_when_paid=stop_when_paid,
        pausable=pausable,
        to_address=to_address,
        from_address=sender,
        cc_address=cc,
        subject=subject or content.subject,
        body_html=content.html,
        message_id=message_id_for(key, domain),
        attachment_url=link if attach else None,
    )


def email_intents_for(
    due: pd.DataFrame,
    options: EmailOptions,
    *,
    run_id: str | None = None,
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
) -> tuple[list[Intent], dict[str, str]]:
    """One intent per due row, and the rows held because the e-Tax rules forbid them
    (invoice number -> reason)."""
    intents: list[Intent] = []
    held: dict[str, str] = {}
    for row in due.itertuples(index=False):
        size = getattr(row, "pdf_bytes", None)
        try:
            intents.append(
                build_email_intent(
                    json.loads(str(row.record_json)),
                    str(row.buyer_email),
                    str(row.pdf_url),
                    None if pd.isna(size) else int(size),
                    options,
                    purpose=purpose,
                    requested_by=requested_by,
                    run_id=run_id,
                    etax_copy=not bool(getattr(row, "etax_copied", False)),
                )
            )
        except NotSendable as why:
            held[str(row.invoice_number)] = str(why)
    return intents, held
