"""courier.reminders.schedule: month arithmetic, local days and when a step falls due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from courier.reminders.rules import Offset, parse_when
from courier.reminders.schedule import (
    FALLBACK_TIMEZONE,
    add_months,
    at_local,
    days_between_local,
    local_day,
    seller_timezone,
    step_due_at,
    zone_for_country,
)

BANGKOK, RIYADH, CAIRO = "Asia/Bangkok", "Asia/Riyadh", "Africa/Cairo"
NINE = time(9, 0)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def due(when: str, anchor: datetime | date, zone: str = BANGKOK) -> datetime:
    return step_due_at(parse_when(when), anchor, zone, NINE)


# --------------------------------------------------------------------------- add_months


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 1, date(2026, 2, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 48, date(2032, 2, 29)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2028, 3, 31), -1, date(2028, 2, 29)),
        (date(2026, 5, 31), 1, date(2026, 6, 30)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
        (date(2026, 1, 10), -1, date(2025, 12, 10)),
        (date(2026, 1, 10), -13, date(2024, 12, 10)),
        (date(2026, 8, 31), 0, date(2026, 8, 31)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


# --------------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    ("country", "zone"),
    [("TH", BANGKOK), ("SA", RIYADH), ("EG", CAIRO), (" th ", BANGKOK)],
)
def test_zone_for_country(country, zone):
    assert zone_for_country(country) == zone


@pytest.mark.parametrize("country", ["XX", "", "001", "Thailand"])
def test_an_unknown_country_gets_the_fallback_zone(country):
    assert zone_for_country(country) == FALLBACK_TIMEZONE == BANGKOK


def test_the_sellers_own_zone_wins_over_its_country():
    assert seller_timezone("TH", "Africa/Cairo") == CAIRO
    assert seller_timezone("SA") == RIYADH
    assert seller_timezone("SA", "  ") == RIYADH


def test_local_day_of_a_late_evening_in_utc():
    late = utc(2026, 7, 14, 22, 30)
    for zone in (BANGKOK, RIYADH, CAIRO):
        assert local_day(late, zone) == date(2026, 7, 15)
    # In winter Cairo is UTC+2: 21:30 UTC is still the 14th there, but the 15th in summer.
    assert local_day(utc(2026, 1, 14, 21, 30), CAIRO) == date(2026, 1, 14)
    assert local_day(utc(2026, 7, 14, 21, 30), CAIRO) == date(2026, 7, 15)


def test_at_local_follows_daylight_saving_time_where_there_is_one():
    assert at_local(date(2026, 7, 15), NINE, CAIRO) == utc(2026, 7, 15, 6)  # summer, UTC+3
    assert at_local(date(2026, 1, 15), NINE, CAIRO) == utc(2026, 1, 15, 7)  # winter, UTC+2
    assert at_local(date(2026, 7, 15), NINE, RIYADH) == utc(2026, 7, 15, 6)
    assert at_local(date(2026, 1, 15), NINE, RIYADH) == utc(2026, 1, 15, 6)
    assert at_local(date(2026, 7, 15), NINE, BANGKOK) == utc(2026, 7, 15, 2)
    assert at_local(date(2026, 1, 15), NINE, BANGKOK) == utc(2026, 1, 15, 2)
    assert at_local(date(2026, 1, 15), NINE, BANGKOK).tzinfo is UTC


def test_cairo_changes_its_clocks_on_the_days_the_law_says():
    # 2026: summer time from Friday 24 April 00:00 to Thursday 29 October 24:00.
    assert at_local(date(2026, 4, 23), NINE, CAIRO) == utc(2026, 4, 23, 7)
    assert at_local(date(2026, 4, 24), NINE, CAIRO) == utc(2026, 4, 24, 6)
    assert at_local(date(2026, 10, 29), NINE, CAIRO) == utc(2026, 10, 29, 6)
    assert at_local(date(2026, 10, 30), NINE, CAIRO) == utc(2026, 10, 30, 7)
    # 00:30 on 24 April never shows on Cairo's clocks: read with the winter offset.
    assert at_local(date(2026, 4, 24), time(0, 30), CAIRO) == utc(2026, 4, 23, 22, 30)
    # 23:30 on 29 October shows twice: the first (summer) one.
    assert at_local(date(2026, 10, 29), time(23, 30), CAIRO) == utc(2026, 10, 29, 20, 30)


# --------------------------------------------------------------------------- step_due_at


def test_day_steps_before_on_and_after_a_due_date():
    due_date = date(2026, 7, 15)
    assert due("3 days before", due_date) == utc(2026, 7, 12, 2)
    assert due("instantly", due_date) == utc(2026, 7, 15, 2)
    assert due("0 days after", due_date) == utc(2026, 7, 15, 2)
    assert due("7 days after", due_date) == utc(2026, 7, 22, 2)
    assert due("1 day after", due_date, RIYADH) == utc(2026, 7, 16, 6)


def test_a_due_date_in_cairo_in_summer_and_in_winter():
    assert due("instantly", date(2026, 7, 15), CAIRO) == utc(2026, 7, 15, 6)
    assert due("7 days after", date(2026, 7, 8), CAIRO) == utc(2026, 7, 15, 6)
    assert due("7 days after", date(2026, 1, 8), CAIRO) == utc(2026, 1, 15, 7)


def test_day_steps_keep_the_local_clock_across_a_change_of_clocks():
    # Due the day before summer time starts: 09:00 local is 07:00 UTC, then 06:00 UTC.
    assert due("instantly", date(2026, 4, 23), CAIRO) == utc(2026, 4, 23, 7)
    assert due("1 day after", date(2026, 4, 23), CAIRO) == utc(2026, 4, 24, 6)
    assert due("1 day before", date(2026, 10, 31), CAIRO) == utc(2026, 10, 30, 7)


def test_hour_steps_count_real_hours():
    due_date = date(2026, 7, 15)
    assert due("3 hours before", due_date) == utc(2026, 7, 14, 23)  # 06:00 Bangkok
    assert due("2 hours after", due_date) == utc(2026, 7, 15, 4)
    issued = utc(2026, 4, 23, 10)  # 12:00 in Cairo, the day before summer time
    assert due("24 hours after", issued, CAIRO) == utc(2026, 4, 24, 10)  # 13:00 local
    assert due("1 day after", issued, CAIRO) == utc(2026, 4, 24, 6)  # 09:00 local


def test_month_steps_land_on_the_same_day_of_the_month_or_its_end():
    assert due("1 month after", date(2026, 1, 31)) == utc(2026, 2, 28, 2)
    assert due("1 month after", date(2028, 1, 31)) == utc(2028, 2, 29, 2)
    assert due("12 months after", date(2028, 2, 29)) == utc(2029, 2, 28, 2)
    assert due("1 month before", date(2026, 3, 31)) == utc(2026, 2, 28, 2)
    assert due("2 months after", date(2026, 5, 15), CAIRO) == utc(2026, 7, 15, 6)
    assert due("2 months before", date(2026, 3, 15), CAIRO) == utc(2026, 1, 15, 7)


def test_a_datetime_anchor_counts_from_its_local_day():
    paid = utc(2026, 7, 14, 22, 30)  # already the 15th in Bangkok (05:30)
    assert due("instantly", paid) == paid
    assert due("instantly", paid).tzinfo is UTC
    assert due("1 day after", paid) == utc(2026, 7, 16, 2)
    assert due("1 month after", paid) == utc(2026, 8, 15, 2)
    assert due("1 hour after", paid) == utc(2026, 7, 14, 23, 30)
    # The same moment written with another offset is the same anchor.
    same = paid.astimezone(timezone(timedelta(hours=-5)))
    assert due("1 day after", same) == utc(2026, 7, 16, 2)
    assert due("instantly", same).utcoffset() == timedelta(0)


def test_the_send_time_is_the_rules():
    offset = Offset(1, "days", "after")
    assert step_due_at(offset, date(2026, 7, 15), BANGKOK, time(18, 30)) == utc(2026, 7, 16, 11, 30)


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        step_due_at(parse_when("1 day after"), datetime(2026, 7, 15, 9), BANGKOK, NINE)
    with pytest.raises(ValueError, match="timezone-aware"):
        local_day(datetime(2026, 7, 15, 9), BANGKOK)


# --------------------------------------------------------------------------- days_between_local


def test_days_between_local_counts_local_midnights():
    due_date = date(2026, 7, 14)
    # Half an hour either side of local midnight (UTC 17:00 in Bangkok, 21:00 in July in
    # Riyadh and Cairo).
    for zone, midnight in ((BANGKOK, utc(2026, 7, 14, 17)), (RIYADH, utc(2026, 7, 14, 21))):
        half = timedelta(minutes=30)
        assert days_between_local(due_date, midnight - half, zone) == 0
        assert days_between_local(due_date, midnight + half, zone) == 1
    assert days_between_local(due_date, utc(2026, 7, 14, 20, 30), CAIRO) == 0
    assert days_between_local(due_date, utc(2026, 7, 14, 21, 30), CAIRO) == 1
    assert days_between_local(due_date, utc(2026, 7, 21, 2), BANGKOK) == 7
    assert days_between_local(due_date, utc(2026, 7, 11, 2), BANGKOK) == -3
    # Winter Cairo (UTC+2): 21:30 UTC is still the due day; in Bangkok it is the next.
    assert days_between_local(date(2026, 1, 14), utc(2026, 1, 14, 21, 30), CAIRO) == 0
    assert days_between_local(date(2026, 1, 14), utc(2026, 1, 14, 21, 30), BANGKOK) == 1
