"""Values the tests and benches build again and again."""

from __future__ import annotations

from decimal import Decimal

from courier.planning import Intent


def on_issue_intents(
    count: int, prefix: str = "INV", *, requested_by: str = "test", run_id: str | None = None
) -> list[Intent]:
    """``count`` one-segment on-issue SMS intents for invoices ``<prefix>-0``, ``-1``, …,
    each to its own Thai mobile number, at 0.03 USD."""
    return [
        Intent(
            idempotency_key=f"{prefix}-{n}:on_issue",
            invoice_number=f"{prefix}-{n}",
            purpose="on_issue",
            requested_by=requested_by,
            to_e164=f"+668{n % 10}{n:07d}",
            destination_country="TH",
            body=f"Invoice {prefix}-{n}: https://docs.example/d/{n}",
            encoding="GSM-7",
            segments=1,
            unit_price=Decimal("0.03"),
            amount=Decimal("0.03"),
            currency="USD",
            run_id=run_id,
        )
        for n in range(count)
    ]
