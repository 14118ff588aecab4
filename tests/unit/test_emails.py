"""Buyers' e-mail addresses: checked without DNS, one per field, masked everywhere."""

from __future__ import annotations

import pytest

from courier.emails import REASON_INVALID, REASON_MISSING, clean_email, mask_email


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("somchai@siamtrading.co.th", "somchai@siamtrading.co.th"),
        ("  Billing@Example.COM ", "Billing@example.com"),  # the mailbox's case is its own
        ("ap.team+invoices@example.co.th", "ap.team+invoices@example.co.th"),
        ("สมชาย@ตัวอย่าง.ไทย", "สมชาย@ตัวอย่าง.ไทย"),  # internationalised, kept readable
        ("ap@no-such-domain-for-courier-tests.com", "ap@no-such-domain-for-courier-tests.com"),
    ],
)
def test_good_addresses_are_accepted_and_normalised(raw, normalised):
    check = clean_email(raw)
    assert check.ok and check.address == normalised and check.reason == ""


@pytest.mark.parametrize(
    "raw",
    ["see contract", "ap@", "@example.com", "a@b", "a..b@example.com", "ap@exa mple.com"],
)
def test_bad_addresses_are_invalid_with_the_reason(raw):
    check = clean_email(raw)
    assert check.status == "invalid" and check.address is None
    assert check.reason.startswith(REASON_INVALID)


def test_two_addresses_in_one_field_are_invalid_not_guessed():
    check = clean_email("ap@example.com, cfo@example.com")
    assert check.status == "invalid"
    assert check.reason == "Invalid e-mail address (one address per buyer)"


def test_blank_is_missing():
    assert clean_email("   ").status == "missing" and clean_email(None).reason == REASON_MISSING


def test_masked_addresses_show_neither_mailbox_nor_domain():
    assert mask_email("somchai@siamtrading.co.th") == "s•••@•••.th"
    assert mask_email("สมชาย@ตัวอย่าง.ไทย") == "ส•••@•••.ไทย"
    assert mask_email("see the contract for Khun Somchai") == "•••"  # raw text not echoed
    assert mask_email("") == ""
