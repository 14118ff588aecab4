"""Choosing what to send now, and building each send's intent (pure functions)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from courier.invoice_io import invoice_from_dict
from courier.messages import (
    PriceTable,
    count_segments,
    country_of_e164,
    on_issue_template_for,
    render_sms,
)

ON_ISSUE = "on_issue"


def idempotency_key(invoice_number: str, purpose: str) -> str:
    """The stable identity of one intent to send: the same invoice and purpose, the same key."""
    return f"{invoice_number}:{purpose}"


def plan_on_issue(candidates: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Invoices whose on-issue SMS is due: textable phone, both documents stored, never tried.

    ``candidates`` is ``Ledger.send_candidates()``; ``messages`` is ``Ledger.message_keys()``.
    Intents already in the outbox are excluded whatever their state: ``retry`` ones are
    re-opened by the sender, ``pending`` ones are reconciled, the rest are final.
    """
    already = set(messages.loc[messages["purpose"] == ON_ISSUE, "invoice_number"])
    due = candidates[
        (candidates["phone_status"] == "ok")
        & (candidates["uploaded_documents"] >= 2)
        & candidates["pdf_url"].notna()
        & ~candidates["invoice_number"].isin(already)
    ]
    return due.reset_index(drop=True)


@dataclass(frozen=True)
class Intent:
    idempotency_key: str
    invoice_number: str
    purpose: str
    requested_by: str
    to_e164: str
    destination_country: str
    body: str
    encoding: str
    segments: int
    unit_price: Decimal
    amount: Decimal
    currency: str
    run_id: str | None = None

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
) -> Intent:
    """The SMS for one invoice: text with the document link, its segments and its price."""
    invoice = invoice_from_dict(record)
    template = on_issue_template_for(invoice.buyer.country, language)
    body = render_sms(
        template,
        seller=invoice.seller.name,
        number=invoice.number,
        amount=f"{invoice.grand_total:,.2f}",
        currency=invoice.currency,
        due_date=invoice.due_date.isoformat(),
        link=link,
    )
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
    )


def intents_for(
    due: pd.DataFrame,
    prices: PriceTable,
    run_id: str | None = None,
    language: str = "auto",
) -> list[Intent]:
    return [
        build_intent(
            json.loads(str(row.record_json)),
            str(row.phone_e164),
            str(row.pdf_url),
            prices,
            run_id=run_id,
            language=language,
        )
        for row in due.itertuples(index=False)
    ]
