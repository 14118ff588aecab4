"""What the Send to Buyer dashboard shows is a pure function of the ledger's rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from courier import screens
from courier.invoice_io import invoice_to_dict
from courier.messages import PriceTable, count_segments, load_price_table
from courier.phones import clean_phone
from courier.planning import SendingHours
from courier.sample_data import generate_invoices

PRICES = load_price_table(Path(__file__).resolve().parents[2] / "data/pricing.csv")
NOW = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # 11:00 in Bangkok
LINK = "http://127.0.0.1:8702/d/" + "A" * 32
NO_MESSAGES = pd.DataFrame({"invoice_number": [], "purpose": [], "status": []})


def status_row(number: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "invoice_number": number,
        "issued_at": pd.Timestamp("2026-11-20T03:00:00Z"),
        "due_date": pd.Timestamp("2026-12-20"),
        "seller_name": "Seller A",
        "buyer_name": "Buyer A",
        "buyer_country": "TH",
        "grand_total": 1234.5,
        "currency": "THB",
        "phone_masked": "+66 ••• ••• 678",
        "phone_status": "ok",
        "phone_reason": "",
        "document_status": "uploaded",
        "document_error": None,
        "pdf_url": LINK,
        "xml_url": LINK,
        "sms_status": "sent",
        "reason": "",
        "delivery_status": "delivered",
        "delivery_error_code": None,
        "last_sent_at": pd.Timestamp("2026-11-20T03:05:00Z"),
        "sends": 1,
        "total_charges": 0.06,
        "charge_currency": "USD",
    }
    row.update(values)
    return row


def status_frame() -> pd.DataFrame:
    rows = [
        status_row("TH1-1"),
        status_row(
            "TH1-2",
            issued_at=pd.Timestamp("2026-11-18T17:30:00Z"),  # 19 Nov 00:30 in Bangkok
            buyer_name="บริษัท สยามการค้า จำกัด",
            phone_masked="•••",
            phone_status="invalid",
            phone_reason="Invalid telephone number",
            sms_status="not_sent",
            reason="Invalid telephone number",
            delivery_status=None,
            last_sent_at=pd.NaT,
            sends=0,
            total_charges=0.0,
            charge_currency=None,
        ),
        status_row(
            "SA1-3",
            seller_name="Seller B",
            buyer_name="Buyer B",
            currency="SAR",
            document_status="failed",
            document_error="pdf: Upload failed: store down",
            sms_status="waiting",
            reason="Document not uploaded yet",
            delivery_status=None,
            last_sent_at=pd.NaT,
            sends=0,
            total_charges=0.0,
        ),
        status_row(
            "SA1-4",
            seller_name="Seller B",
            sms_status="failed",
            reason="Gateway refused the number (21211)",
            delivery_status="undelivered",
            delivery_error_code="30003",
        ),
    ]
    frame = pd.DataFrame(rows)
    frame["issued_at"] = pd.to_datetime(frame["issued_at"], utc=True)
    frame["last_sent_at"] = pd.to_datetime(frame["last_sent_at"], utc=True)
    return frame


# --------------------------------------------------------------------------- filters


def test_no_filter_keeps_every_row_in_order():
    frame = status_frame()
    assert list(screens.apply_filters(frame, screens.Filters())["invoice_number"]) == list(
        frame["invoice_number"]
    )


def test_dates_are_bangkok_calendar_days_both_ends_included():
    frame = status_frame()
    only_19th = screens.Filters(issued_from=date(2026, 11, 19), issued_to=date(2026, 11, 19))
    assert list(screens.apply_filters(frame, only_19th)["invoice_number"]) == ["TH1-2"]
    from_20th = screens.Filters(issued_from=date(2026, 11, 20))
    assert "TH1-2" not in set(screens.apply_filters(frame, from_20th)["invoice_number"])


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (screens.Filters(sellers=("Seller B",)), ["SA1-3", "SA1-4"]),
        (screens.Filters(sms_statuses=("not_sent", "failed")), ["TH1-2", "SA1-4"]),
        (screens.Filters(reasons=("Invalid telephone number",)), ["TH1-2"]),
        (screens.Filters(search="sa1-"), ["SA1-3", "SA1-4"]),
        (screens.Filters(search="สยาม"), ["TH1-2"]),
        (screens.Filters(search="buyer b"), ["SA1-3"]),
        (screens.Filters(search="[("), []),  # literal text, never a pattern
        (screens.Filters(sellers=("Seller B",), sms_statuses=("failed",)), ["SA1-4"]),
    ],
)
def test_filters_combine(filters, expected):
    assert list(screens.apply_filters(status_frame(), filters)["invoice_number"]) == expected


def test_filter_options_come_from_the_rows():
    options = screens.filter_options(status_frame())
    assert (options.first_day, options.last_day) == (date(2026, 11, 19), date(2026, 11, 20))
    assert options.sellers == ["Seller A", "Seller B"]
    assert options.reasons == [
        "Document not uploaded yet",
        "Gateway refused the number (21211)",
        "Invalid telephone number",
    ]
    assert options.sms_statuses[0] == "sent"
    empty = screens.filter_options(status_frame().head(0))
    assert empty.first_day is None and empty.sellers == []


def test_filters_are_fast_enough_for_100k_rows():
    frame = pd.concat([status_frame()] * 25_000, ignore_index=True)
    import time

    started = time.perf_counter()
    kept = screens.apply_filters(
        frame,
        screens.Filters(
            issued_from=date(2026, 11, 19),
            issued_to=date(2026, 11, 20),
            sellers=("Seller B",),
            search="sa1",
        ),
    )
    assert len(kept) == 50_000
    assert time.perf_counter() - started < 2.0  # ~0.1 s measured; generous for CI


# --------------------------------------------------------------------------- the table


def test_the_table_reads_as_a_person_expects():
    table = screens.present_table(status_frame())
    assert list(table.columns) == list(screens.TABLE_COLUMNS)
    rows = table.set_index("Invoice")
    assert rows.loc["TH1-1", "SMS"] == "✓ 2026-11-20 10:05"
    assert rows.loc["TH1-1", "Document"] == "✓"
    assert rows.loc["TH1-1", "Delivery"] == "✓ delivered"
    assert rows.loc["TH1-1", "Amount"] == "1,234.50 THB"
    assert rows.loc["TH1-1", "Date"] == "2026-11-20"
    assert rows.loc["TH1-2", "Date"] == "2026-11-19"
    assert rows.loc["TH1-2", "SMS"] == "✗ Invalid telephone number"
    assert rows.loc["TH1-2", "Phone"] == "•••"
    assert rows.loc["SA1-3", "Document"] == "✗ pdf: Upload failed: store down"
    assert rows.loc["SA1-3", "SMS"] == "not sent — Document not uploaded yet"
    assert rows.loc["SA1-4", "SMS"] == "✗ Gateway refused the number (21211)"
    assert rows.loc["SA1-4", "Delivery"] == "✗ undelivered (30003)"
    assert rows.loc["TH1-1", "Charges"] == pytest.approx(0.06)
    assert rows.loc["TH1-2", "Sends"] == 0


def test_payment_and_reminders_read_as_a_person_expects():
    frame = pd.DataFrame(
        [
            status_row("A", payment_status="unpaid", amount_due=1234.5, reminders_sent=0,
                       last_reminder_at=None, reminders_paused=False),
            status_row("B", payment_status="partial", amount_due=617.25, reminders_sent=2,
                       last_reminder_at=pd.Timestamp("2026-12-17T02:00:00Z"),
                       reminders_paused=False),
            status_row("C", payment_status="paid", amount_due=0, reminders_sent=1,
                       last_reminder_at=pd.Timestamp("2026-12-07T20:00:00Z"),
                       reminders_paused=True),
            status_row("D", payment_status="unpaid", amount_due=10, reminders_sent=0,
                       last_reminder_at=None, reminders_paused=True),
        ]
    )  # fmt: skip
    rows = screens.present_table(frame).set_index("Invoice")
    assert rows.loc["A", "Payment"] == "Unpaid" and rows.loc["A", "Reminders"] == ""
    assert rows.loc["B", "Payment"] == "Part paid, 617.25 due"
    assert rows.loc["B", "Reminders"] == "2 sent, last 2026-12-17"
    assert rows.loc["C", "Payment"] == "Paid"
    assert rows.loc["C", "Reminders"] == "⏸ paused · 1 sent, last 2026-12-08"  # Bangkok day
    assert rows.loc["D", "Reminders"] == "⏸ paused"
    # A snapshot published before payments were tracked still draws (empty cells).
    old = screens.present_table(status_frame())
    assert set(old["Payment"]) == {""} and set(old["Reminders"]) == {""}


def test_only_the_displayed_rows_are_formatted_and_the_note_says_so():
    frame = pd.concat([status_frame()] * 600, ignore_index=True)
    table = screens.present_table(frame)
    assert len(table) == screens.MAX_TABLE_ROWS
    assert screens.showing_note(len(table), len(frame)) == (
        "Showing first 1,000 of 2,400 invoices (narrow the filters to see others)."
    )
    assert screens.showing_note(1, 1) == "1 invoice."
    assert screens.present_table(frame.head(0)).empty


# --------------------------------------------------------------------------- edit phone


@pytest.mark.parametrize(
    ("raw", "region", "ok", "message"),
    [
        ("081-234-5678", "TH", True, ""),
        ("+66 81 234 5678", "TH", True, ""),
        ("081-234-5678, 089-876-5432", "TH", False, "Invalid telephone number"),
        ("call office", "TH", False, "Invalid telephone number"),
        ("02-123-4567", "TH", False, "Not a mobile number"),
        ("", "TH", False, "No telephone number"),
        ("0551700214", "SA", True, ""),
    ],
)
def test_the_edit_dialog_judges_a_number_like_the_pipeline(raw, region, ok, message):
    check = screens.check_phone(raw, region)
    assert (check.ok, check.message) == (ok, message)
    assert check.result == clean_phone(raw, region)


# --------------------------------------------------------------------------- Send All


def candidates(count: int = 40) -> pd.DataFrame:
    invoices = generate_invoices(count=count)
    phones = [clean_phone(i.buyer_phone_raw, i.buyer.country) for i in invoices]
    return pd.DataFrame(
        {
            "invoice_number": [i.number for i in invoices],
            "issued_at": [i.issued_at for i in invoices],
            "buyer_country": [i.buyer.country for i in invoices],
            "phone_status": [p.status for p in phones],
            "phone_e164": [p.e164 for p in phones],
            "record_json": [json.dumps(invoice_to_dict(i), ensure_ascii=False) for i in invoices],
            "pdf_url": [LINK] * count,
            "uploaded_documents": [2] * count,
            "last_sent_at": pd.Series([pd.NaT] * count, dtype="datetime64[us, UTC]"),
        }
    )


def preview(frame: pd.DataFrame, **kwargs) -> screens.SendAllPreview:
    messages = kwargs.pop("messages", NO_MESSAGES)
    options = {"request_id": "r1", "requested_by": "ops@example.com", "now": NOW} | kwargs
    return screens.preview_send_all(frame, messages, PRICES, **options)


def test_send_all_counts_recipients_and_every_skip_reason():
    frame = candidates()
    ok = frame.index[frame["phone_status"] == "ok"].tolist()
    frame.loc[ok[0], "uploaded_documents"] = 1  # a document missing
    frame.loc[ok[1], "pdf_url"] = None
    frame.loc[ok[2], "last_sent_at"] = pd.Timestamp(NOW - timedelta(hours=1))  # today
    frame.loc[ok[3], "last_sent_at"] = pd.Timestamp(NOW - timedelta(days=1))  # yesterday
    stopped = frame.loc[ok[4], "phone_e164"]
    counts = frame["phone_status"].value_counts()

    result = preview(frame, opted_out={stopped})

    assert result.skipped_counts == {
        label: n
        for label, n in {
            "No telephone number": counts.get("missing", 0),
            "Invalid telephone number": counts.get("invalid", 0),
            "Not a mobile number": counts.get("not_mobile", 0),
            "Documents not stored": 2,
            "Buyer opted out (STOP)": 1,
            "Already sent today": 1,
        }.items()
        if n
    }
    assert len(result.recipients) == counts["ok"] - 4
    assert frame.loc[ok[3], "invoice_number"] in result.recipients  # yesterday's may go again
    assert result.selected == len(frame)
    assert sum(result.skipped_counts.values()) + len(result.recipients) == len(frame)


def test_send_all_cost_is_exact_segments_times_the_country_price():
    result = preview(candidates())
    assert result.intents and result.currency == "USD"
    for intent in result.intents:
        info = count_segments(intent.body)
        assert (intent.encoding, intent.segments) == (info.encoding, info.segments)
        assert intent.amount == PRICES.price_per_segment(intent.destination_country) * info.segments
        assert LINK in intent.body
    assert result.total == sum((i.amount for i in result.intents), Decimal(0))
    assert isinstance(result.total, Decimal)
    assert result.by_country["amount"].sum() == result.total
    assert result.by_country["messages"].sum() == len(result.recipients)
    per_country = result.by_country.set_index("country")
    for country, rows in pd.DataFrame([i.as_row() for i in result.intents]).groupby(
        "destination_country"
    ):
        assert per_country.loc[country, "segments"] == rows["segments"].sum()
        assert per_country.loc[country, "unit_price"] == PRICES.price_per_segment(country)
    assert result.by_encoding["messages"].sum() == len(result.intents)
    assert result.segments == sum(i.segments for i in result.intents)


def test_send_all_with_a_template_uses_it_and_names_the_ucs2_characters():
    template = "{number}: {amount} {currency} ฿ {link}"
    result = preview(candidates(), template=template)
    assert result.template == template
    assert all(i.body.startswith(i.invoice_number + ": ") for i in result.intents)
    assert "฿" in result.ucs2_chars
    assert set(result.by_encoding["encoding"]) == {"UCS-2"}
    gsm = preview(candidates(), template="{number}: {amount} {currency} {link}")
    assert set(gsm.by_encoding["encoding"]) == {"GSM-7"}
    assert gsm.total < result.total or gsm.segments <= result.segments
    assert preview(candidates(), template="   ").template is None  # blank = the usual text


def test_a_bad_template_previews_nothing_and_says_why():
    result = preview(candidates(), template="{seller} {iban}")
    assert result.template_error and "{iban}" in result.template_error
    assert result.recipients == [] and not result.can_send


def test_send_all_over_the_budget_cannot_be_sent():
    result = preview(candidates(), budget=Decimal("0.01"))
    assert result.recipients and not result.within_budget and not result.can_send
    assert preview(candidates(), budget=Decimal("100")).can_send


def test_send_all_respects_sending_hours_and_a_repeated_request():
    frame = candidates()
    night = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # midnight in Bangkok
    held = preview(frame, now=night, hours=SendingHours())
    thai = frame[(frame["phone_status"] == "ok") & frame["phone_e164"].str.startswith("+66")]
    assert held.skipped_counts["Outside the buyer's sending hours"] >= len(thai) > 0
    assert not set(thai["invoice_number"]) & set(held.recipients)

    first = preview(frame)
    messages = pd.DataFrame(
        {
            "invoice_number": first.recipients[:2],
            "purpose": ["manual:r1"] * 2,
            "status": ["accepted"] * 2,
        }
    )
    again = preview(frame, messages=messages)
    assert again.skipped_counts["Already sent by this request"] == 2
    assert len(again.recipients) == len(first.recipients) - 2


def test_nothing_to_send_is_a_zero_preview():
    frame = candidates()
    result = preview(frame[frame["phone_status"] != "ok"])
    assert result.recipients == [] and result.total == Decimal(0) and not result.can_send


def test_a_price_table_without_the_country_fails_loudly():
    only_th = PriceTable({"TH": Decimal("0.03")}, "USD")
    frame = candidates()
    with pytest.raises(ValueError, match="no SMS price"):
        screens.preview_send_all(
            frame, NO_MESSAGES, only_th, request_id="r", requested_by="x", now=NOW
        )


def test_template_check_highlights_what_forces_ucs2():
    check = screens.check_template("Pay {amount} ฿ <b> “now”")
    assert check.error is None and check.encoding == "UCS-2"
    assert check.ucs2_chars == ["฿", "“", "”"]
    assert check.highlighted_html == (
        "Pay {amount} <mark>฿</mark> &lt;b&gt; <mark>“</mark>now<mark>”</mark>"
    )
    assert screens.check_template("{amount} {oops}").error
    assert screens.char_names(["฿"]) == "฿ (U+0E3F)"


# --------------------------------------------------------------------------- analytics


def test_the_funnel_counts_each_stage_of_those_that_passed_the_previous_one():
    funnel = screens.delivery_funnel(status_frame())
    assert dict(zip(funnel["stage"], funnel["invoices"], strict=True)) == {
        "Pulled": 4,
        "Valid phone": 3,
        "Uploaded": 2,
        "Sent": 1,
        "Delivered": 1,
    }


def test_failures_by_reason_most_frequent_first():
    frame = pd.concat([status_frame(), status_frame().iloc[[1]]], ignore_index=True)
    failures = screens.failures_by_reason(frame)
    assert failures.iloc[0].to_dict() == {"reason": "Invalid telephone number", "invoices": 2}
    assert set(failures["reason"]) == {
        "Invalid telephone number",
        "Document not uploaded yet",
        "Gateway refused the number (21211)",
    }


def charges_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "charged_at": pd.to_datetime(
                ["2026-10-31T18:00:00Z", "2026-11-01T03:00:00Z", "2026-11-02T03:00:00Z"], utc=True
            ),
            "invoice_number": ["A", "B", "C"],
            "seller_name": ["S1", "S2", "S1"],
            "destination_country": ["TH", "SA", "TH"],
            "segments": [2, 1, 3],
            "amount": [Decimal("0.060000"), Decimal("0.040000"), Decimal("0.090000")],
            "currency": ["USD"] * 3,
        }
    )


def test_charges_by_day_month_seller_country_are_exact():
    by_day = screens.charges_by(charges_frame(), "day")
    assert list(by_day["day"]) == ["2026-11-01", "2026-11-02"]  # Bangkok days
    assert list(by_day["amount"]) == [Decimal("0.1"), Decimal("0.09")]
    by_month = screens.charges_by(charges_frame(), "month")
    assert by_month.to_dict("records") == [
        {
            "month": "2026-11",
            "currency": "USD",
            "messages": 3,
            "segments": 6,
            "amount": Decimal("0.19"),
        }
    ]
    assert list(screens.charges_by(charges_frame(), "seller")["amount"]) == [
        Decimal("0.15"),
        Decimal("0.04"),
    ]
    assert list(screens.charges_by(charges_frame(), "country")["country"]) == ["SA", "TH"]
    assert screens.charges_by(charges_frame().head(0), "day").empty
    chart = screens.as_chart(by_day, "day")
    assert chart.loc["2026-11-01", "USD"] == pytest.approx(0.1)
    csv = screens.to_csv(by_month).decode()
    assert "0.190000" in csv


def test_run_history_links_each_run_to_the_prefect_ui():
    runs = pd.DataFrame(
        {
            "run_id": ["11111111-1111-1111-1111-111111111111", "r2"],
            "flow": ["nightly-send", "send-sms"],
            "started_at": pd.to_datetime(["2026-11-20T19:00:00Z", "2026-11-21T03:00:00Z"]),
            "finished_at": pd.to_datetime(["2026-11-20T19:05:00Z", None]),
            "summary_json": [
                json.dumps({"run_sms_sent": 5, "run_charges": "0.15", "sms_outcomes": {"a": 5}}),
                json.dumps({"result": {"refused": "Run budget 1 USD would be exceeded"}}),
            ],
        }
    )
    history = screens.run_history(runs, "http://127.0.0.1:4200")
    assert list(history["Flow"]) == ["send-sms", "nightly-send"]  # newest first
    assert history.loc[1, "Prefect"] == (
        "http://127.0.0.1:4200/runs/flow-run/11111111-1111-1111-1111-111111111111"
    )
    assert history.loc[1, "SMS sent"] == 5 and history.loc[1, "Charges"] == "0.15"
    assert history.loc[0, "Finished"] == "running or died"
    assert history.loc[0, "Result"].startswith("refused: Run budget")
    assert screens.run_history(runs, None)["Prefect"].isna().all()


@pytest.mark.parametrize(
    ("env", "base"),
    [
        ({"PREFECT_UI_URL": "http://ui:4200/"}, "http://ui:4200"),
        ({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}, "http://127.0.0.1:4200"),
        ({}, None),
    ],
)
def test_prefect_ui_base(env, base):
    assert screens.prefect_ui_base(env) == base
