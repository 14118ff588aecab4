"""The dashboard's e-mail: its table column and filter, the row's "Send by e-mail", the
"Send All" preview by channel, and the notice after a send — pure functions of rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from courier import screens
from courier.email_planning import REASON_ETAX_TOO_LARGE, EmailOptions, EtaxByEmail
from courier.emails import clean_email, mask_email
from courier.invoice_io import invoice_to_dict
from courier.messages import load_price_table
from courier.phones import clean_phone
from courier.planning import SendingHours
from courier.sample_data import SELLERS, generate_invoices

PRICES = load_price_table(Path(__file__).resolve().parents[2] / "data/pricing.csv")
NOW = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # 11:00 in Bangkok
LINK = "http://127.0.0.1:8702/d/" + "A" * 32
EMAIL_PRICE = Decimal("0.002")
OPTIONS = EmailOptions(
    sender="Courier Billing <billing@courier.example>",
    price=EMAIL_PRICE,
    currency="USD",
    max_attachment_bytes=7 * 1024 * 1024,
)
NO_MESSAGES = pd.DataFrame({"invoice_number": [], "purpose": [], "channel": [], "status": []})


# --------------------------------------------------------------------------- the table


def status_row(number: str, **values: object) -> dict[str, object]:
    """An ``invoice_status`` row, SMS sent, with the e-mail columns of migration 3."""
    row: dict[str, object] = {
        "invoice_number": number,
        "issued_at": pd.Timestamp("2026-11-20T03:00:00Z"),
        "seller_name": "Seller A",
        "buyer_name": "Buyer A",
        "buyer_country": "TH",
        "grand_total": 100.0,
        "currency": "THB",
        "phone_masked": "+66 ••• ••• 678",
        "phone_status": "ok",
        "document_status": "uploaded",
        "document_error": None,
        "sms_status": "sent",
        "reason": "",
        "delivery_status": "delivered",
        "last_sent_at": pd.Timestamp("2026-11-20T03:05:00Z"),
        "sends": 1,
        "total_charges": 0.03,
        "charge_currency": "USD",
        "email_masked": mask_email("somchai@siamtrading.co.th"),
        "email_status": "ok",
        "email_reason": "",
        "email_send_status": "sent",
        "email_send_reason": "",
        "last_emailed_at": pd.Timestamp("2026-12-03T03:11:00Z"),
        "email_sends": 1,
    }
    row.update(values)
    return row


def email_rows() -> pd.DataFrame:
    never = {"last_emailed_at": pd.NaT, "email_sends": 0}
    frame = pd.DataFrame(
        [
            status_row("SENT"),
            status_row(
                "MISSING",
                email_masked="",
                email_status="missing",
                email_reason="No e-mail address",
                email_send_status="not_sent",
                email_send_reason="No e-mail address",
                **never,
            ),
            status_row(
                "INVALID",
                email_masked=mask_email("ap123@example"),
                email_status="invalid",
                email_reason="Invalid e-mail address",
                email_send_status="not_sent",
                email_send_reason="Invalid e-mail address",
                **never,
            ),
            status_row("BOUNCED", email_send_status="bounced", email_send_reason="Bounced (5.1.1)"),
            status_row(
                "WAITING",
                email_send_status="waiting",
                email_send_reason="Document not uploaded yet",
                **never,
            ),
            status_row("SENDING", email_send_status="sending", **never),
            status_row(
                "RETRY",
                email_send_status="retry",
                email_send_reason="Mail relay unavailable, will retry next run",
                **never,
            ),
            status_row(
                "UNKNOWN",
                email_send_status="unknown",
                email_send_reason="Unknown whether the e-mail was sent",
                **never,
            ),
        ]
    )
    for name in ("issued_at", "last_sent_at", "last_emailed_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def test_the_email_column_reads_like_the_sms_one_with_the_address_masked():
    table = screens.present_table(email_rows())
    assert list(table.columns) == list(screens.TABLE_COLUMNS)
    assert table.columns.get_loc("E-mail") == table.columns.get_loc("SMS") + 1
    cells = table.set_index("Invoice")["E-mail"].to_dict()
    assert cells == {
        "SENT": "✓ 2026-12-03 10:11 · s•••@•••.th",  # Bangkok time
        "MISSING": "✗ No e-mail address",
        "INVALID": "✗ Invalid e-mail address · •••",
        "BOUNCED": "✗ Bounced (5.1.1) · s•••@•••.th",
        "WAITING": "not sent — Document not uploaded yet · s•••@•••.th",
        "SENDING": "… sending · s•••@•••.th",
        "RETRY": "… retrying: Mail relay unavailable, will retry next run · s•••@•••.th",
        "UNKNOWN": "? Unknown whether the e-mail was sent · s•••@•••.th",
    }
    assert "somchai" not in " ".join(cells.values())
    # One cell function for both channels: the SMS column is unchanged.
    assert table.set_index("Invoice").loc["SENT", "SMS"] == "✓ 2026-11-20 10:05"


def test_a_snapshot_from_before_email_still_draws_and_a_page_without_email_hides_it():
    old = email_rows().drop(
        columns=[c for c in email_rows().columns if c.startswith(("email_", "last_emailed"))]
    )
    assert set(screens.present_table(old)["E-mail"]) == {"not sent"}
    without = screens.present_table(email_rows(), email=False)
    assert list(without.columns) == [c for c in screens.TABLE_COLUMNS if c != "E-mail"]


def test_the_email_status_filter_keeps_those_rows_only():
    frame = email_rows()
    kept = screens.apply_filters(frame, screens.Filters(email_statuses=("not_sent", "bounced")))
    assert list(kept["invoice_number"]) == ["MISSING", "INVALID", "BOUNCED"]
    both = screens.Filters(email_statuses=("sent",), sms_statuses=("sent",))
    assert list(screens.apply_filters(frame, both)["invoice_number"]) == ["SENT"]
    old = frame.drop(columns=["email_send_status"])
    assert screens.apply_filters(old, screens.Filters(email_statuses=("sent",))).empty


def test_filter_options_offer_the_email_statuses_and_tell_if_email_was_used():
    options = screens.filter_options(email_rows())
    assert options.email_statuses == list(screens.EMAIL_STATUS_LABELS)
    assert options.email_in_use
    quiet = email_rows().assign(email_send_status="waiting")
    assert not screens.filter_options(quiet).email_in_use
    assert not screens.filter_options(quiet.drop(columns=["email_send_status"])).email_in_use


# --------------------------------------------------------------------------- the row action


@pytest.mark.parametrize(
    ("number", "configured", "label", "allowed", "why"),
    [
        ("SENT", True, "Resend by e-mail", True, ""),
        ("WAITING", True, "Send by e-mail", True, ""),
        ("SENT", False, "Resend by e-mail", False, screens.EMAIL_NOT_CONFIGURED),
        ("MISSING", True, "Send by e-mail", False, "No e-mail address"),
        ("INVALID", True, "Send by e-mail", False, "Invalid e-mail address"),
        ("BOUNCED", True, "Resend by e-mail", False, "E-mail address bounced (5.1.1)"),
    ],
)
def test_the_row_offers_email_only_to_a_usable_address(number, configured, label, allowed, why):
    row = email_rows().set_index("invoice_number", drop=False).loc[number]  # a pd.Series
    action = screens.email_action(row, configured)
    assert (action.label, action.allowed, action.why_not) == (label, allowed, why)


def test_without_one_selected_row_there_is_nothing_to_email():
    action = screens.email_action(None, True)
    assert not action.allowed and action.why_not.startswith("Select one row")
    before_email = {"invoice_number": "A", "sms_status": "sent"}  # an old snapshot's row
    assert screens.email_action(before_email, True).why_not == "No e-mail address"


# --------------------------------------------------------------------------- Send All


def candidates(count: int = 40) -> pd.DataFrame:
    """``Ledger.send_all_candidates`` rows for generated invoices, both documents stored."""
    invoices = generate_invoices(count=count)
    phones = [clean_phone(i.buyer_phone_raw, i.buyer.country) for i in invoices]
    emails = [clean_email(i.buyer.email) for i in invoices]
    return pd.DataFrame(
        {
            "invoice_number": [i.number for i in invoices],
            "issued_at": [i.issued_at for i in invoices],
            "buyer_country": [i.buyer.country for i in invoices],
            "phone_status": [p.status for p in phones],
            "phone_e164": [p.e164 for p in phones],
            "record_json": [json.dumps(invoice_to_dict(i), ensure_ascii=False) for i in invoices],
            "email_status": [e.status for e in emails],
            "buyer_email": pd.Series([e.address for e in emails], dtype=object),
            "buyer_key": [i.buyer.name for i in invoices],
            "channel_preference": pd.Series([None] * count, dtype=object),
            "pdf_url": [LINK] * count,
            "pdf_bytes": [50_000] * count,
            "uploaded_documents": [2] * count,
            "last_sent_at": pd.Series([pd.NaT] * count, dtype="datetime64[us, UTC]"),
        }
    )


def preview(frame: pd.DataFrame, channels=("email",), **kwargs) -> screens.SendAllPreview:
    options = {
        "request_id": "r1",
        "requested_by": "ops@example.com",
        "now": NOW,
        "messages": NO_MESSAGES,
        "email": OPTIONS,
        "channels": channels,
    } | kwargs
    return screens.preview_send_all(frame, options.pop("messages"), PRICES, **options)


def with_address(frame: pd.DataFrame) -> list[int]:
    return frame.index[frame["email_status"] == "ok"].tolist()


def test_send_all_by_email_counts_emails_and_each_skip_reason():
    frame = candidates()
    ok = with_address(frame)
    frame.loc[ok[0], "channel_preference"] = "sms"
    frame.loc[ok[1], "uploaded_documents"] = 1
    bounced_address = frame.loc[ok[2], "buyer_email"].upper()  # bounces are matched lower-case
    frame.loc[ok[3], ["email_status", "buyer_email"]] = ["invalid", None]
    frame.loc[ok[4], "last_sent_at"] = pd.Timestamp(NOW - timedelta(hours=1))  # an SMS today
    missing = int((frame["email_status"] == "missing").sum())

    result = preview(frame, bounced={bounced_address})

    assert result.email_skipped_counts == {
        "Buyer chose SMS only": 1,
        "No e-mail address": missing,
        "Invalid e-mail address": 1,
        "Documents not stored": 1,
        "E-mail address bounced": 1,
    }
    assert len(result.email_recipients) == len(ok) - 4
    assert frame.loc[ok[4], "invoice_number"] in result.email_recipients  # SMS-only rule
    assert result.sms_recipients == [] and result.skipped == {}
    assert result.recipients == result.email_recipients
    assert result.skipped_total + len(result.recipients) == len(frame)
    assert result.total == EMAIL_PRICE * len(result.email_recipients)
    assert result.by_channel().to_dict("records") == [
        {
            "channel": "E-mail",
            "messages": len(result.email_recipients),
            "unit_price": EMAIL_PRICE,
            "amount": result.total,
            "currency": "USD",
        }
    ]
    assert all(i.channel == "email" and i.to_address for i in result.intents)
    assert result.segments == 0 and result.by_encoding.empty and result.can_send


def test_send_all_by_both_counts_each_channel_and_totals_both_prices():
    frame = candidates()
    sms_only = preview(frame, channels=("sms",))
    email_only = preview(frame)
    both = preview(frame, channels=("sms", "email"))

    assert both.sms_recipients == sms_only.recipients
    assert both.email_recipients == email_only.recipients
    assert both.skipped_counts == sms_only.skipped_counts
    assert both.email_skipped_counts == email_only.email_skipped_counts
    assert both.total == sms_only.total + EMAIL_PRICE * len(both.email_recipients)
    assert both.segments == sms_only.segments
    assert both.by_channel()["amount"].sum() == both.total
    assert list(both.by_channel()["channel"]) == ["SMS", "E-mail"]
    assert set(both.recipients) == set(both.sms_recipients) | set(both.email_recipients)


def test_send_all_sends_each_invoice_only_by_the_channels_its_preview_counted():
    frame = candidates()
    ok = with_address(frame)
    texted_today = frame.loc[ok[0], "invoice_number"]
    frame.loc[ok[0], "last_sent_at"] = pd.Timestamp(NOW - timedelta(hours=1))
    result = preview(frame, channels=("sms", "email"))

    groups = dict(result.send_groups())
    assert texted_today in groups[("email",)]  # no second SMS today, but its e-mail goes
    assert set(groups[("sms", "email")]) == set(result.sms_recipients) & set(
        result.email_recipients
    )
    assert set(groups[("sms",)]) == set(result.sms_recipients) - set(result.email_recipients)
    sent = [(n, c) for channels, numbers in groups.items() for n in numbers for c in channels]
    assert sorted(sent) == sorted((i.invoice_number, i.channel) for i in result.intents)


def test_send_all_by_email_respects_its_hours_the_request_and_etax_rules():
    frame = candidates()
    night = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # midnight in Bangkok
    held = preview(frame, now=night, email_hours=SendingHours())
    thai = frame[(frame["email_status"] == "ok") & (frame["buyer_country"] == "TH")]
    assert held.email_skipped_counts["Outside the e-mail sending hours"] >= len(thai) > 0

    first = preview(frame)
    messages = pd.DataFrame(
        {
            "invoice_number": first.email_recipients[:2],
            "purpose": ["manual:r1"] * 2,
            "channel": ["email"] * 2,
            "status": ["accepted"] * 2,
        }
    )
    again = preview(frame, channels=("sms", "email"), messages=messages)
    assert again.email_skipped_counts["Already sent by this request"] == 2
    assert len(again.email_recipients) == len(first.email_recipients) - 2
    assert "Already sent by this request" not in again.skipped_counts  # their SMS still go

    scheme_seller = SELLERS[0].party.tax_id  # a Thai seller in the e-Tax by e-mail scheme
    in_scheme = frame["record_json"].str.contains(scheme_seller) & (frame["email_status"] == "ok")
    assert in_scheme.any()
    large = frame.assign(pdf_bytes=frame["pdf_bytes"].mask(in_scheme, 50 * 1024 * 1024))
    etax = EmailOptions(
        OPTIONS.sender, EMAIL_PRICE, "USD", OPTIONS.max_attachment_bytes,
        etax=EtaxByEmail(frozenset({scheme_seller})),
    )  # fmt: skip
    assert preview(large, email=etax).email_skipped_counts[REASON_ETAX_TOO_LARGE] == int(
        in_scheme.sum()
    )
    # Once the time-stamp mailbox had its copy, a resend is a plain e-mail, as the sender has it.
    stamped = preview(large.assign(etax_copied=True), email=etax)
    assert REASON_ETAX_TOO_LARGE not in stamped.email_skipped_counts
    assert set(large.loc[in_scheme, "invoice_number"]) <= set(stamped.email_recipients)


def test_the_buyers_channel_choice_is_a_skip_reason_for_sms_too():
    frame = candidates()
    textable = frame.index[frame["phone_status"] == "ok"]
    frame.loc[textable[0], "channel_preference"] = "email"
    frame.loc[textable[1], "channel_preference"] = "both"
    result = preview(frame, channels=("sms",))
    assert result.skipped_counts["Buyer chose e-mail only"] == 1
    assert frame.loc[textable[1], "invoice_number"] in result.recipients


def test_email_without_a_relay_cannot_be_sent_and_a_template_is_for_sms_only():
    frame = candidates()
    unconfigured = preview(frame, channels=("sms", "email"), email=None)
    assert unconfigured.channel_error == screens.EMAIL_NOT_CONFIGURED
    assert unconfigured.sms_recipients and not unconfigured.can_send

    by_email = preview(frame, template="{seller} {iban}")  # not used: no template error
    assert by_email.template is None and by_email.template_error is None and by_email.can_send
    assert preview(frame, channels=()).channel_error


def test_a_selection_with_nothing_left_to_plan_previews_nothing():
    frame = candidates()
    nobody = frame.assign(
        phone_status="missing", email_status="missing", buyer_email=None, channel_preference="sms"
    )
    result = preview(nobody, channels=("sms", "email"))
    assert result.intents == [] and result.total == 0 and not result.can_send
    assert result.skipped_total == 2 * len(frame)
    table = result.skipped_table()
    assert list(table.columns) == ["Channel", "Reason", "Invoices"]
    assert set(table["Channel"]) == {"SMS", "E-mail"}


# --------------------------------------------------------------------------- after sending


def test_the_notice_reports_both_channels():
    kind, text = screens.describe_send(
        {"accepted": 3, "email_accepted": 2, "email_failed": 1, "charged": "0.094"},
        "USD",
        ("sms", "email"),
    )
    assert kind == "warning"
    assert text.startswith("3 SMS sent, 2 e-mails sent, charged 0.094 USD.")
    assert "1 e-mail failed." in text

    kind, text = screens.describe_send({"email_accepted": 1, "charged": "0"}, "USD", ("email",))
    assert (kind, text) == ("success", "1 e-mail sent, charged 0 USD.")
    kind, text = screens.describe_send({"accepted": 1, "charged": "0.03"}, "USD")
    assert (kind, text) == ("success", "1 SMS sent, charged 0.03 USD.")

    _, text = screens.describe_send(
        {"not_sendable": ["A"], "skipped_bounced_at_send": 1, "charged": "0"}, "USD", ("email",)
    )
    assert "1 not sendable (no usable e-mail address or no stored document): A" in text
    assert "1 not sent at the last check (bounced)." in text
    kind, _ = screens.describe_send({"already_requested": 2, "charged": "0"}, "USD", ("email",))
    assert kind == "info"


def test_the_results_of_several_sends_add_up():
    merged = screens.merge_send_results(
        [
            {"accepted": 2, "email_accepted": 2, "charged": "0.064", "held": {}},
            {"accepted": 1, "charged": "0.03", "not_sendable": ["B"]},
            {"email_accepted": 1, "charged": "0.002", "held": {"C (e-mail)": "bounced"}},
        ]
    )
    assert merged == {
        "accepted": 3,
        "email_accepted": 3,
        "charged": "0.096",
        "held": {"C (e-mail)": "bounced"},
        "not_sendable": ["B"],
    }
