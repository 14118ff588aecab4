"""When a reminder step falls due (pure: no clock is read here, the caller passes "now").

A seller keeps its calendar in its own time zone: "7 days after the due date" means 09:00
(the rule's ``send_time``) on the seller's seventh local day after the due date, whatever
the server's zone, and a due date stands for that local day. Every moment returned is an
aware datetime in UTC, so comparing and storing them never depends on a zone again.

Zones come from the IANA database through ``zoneinfo``, so daylight saving time is right
where a country has it (Egypt again since 2023) and absent where it has none (Thailand,
Saudi Arabia).
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from courier.reminders.rules import Offset

#: The zone of a seller whose country says nothing usable: most sellers are Thai.
FALLBACK_TIMEZONE: Final = "Asia/Bangkok"
_UNKNOWN_ZONE: Final = "Etc/Unknown"  # what phonenumbers answers when it does not know


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` (may be negative), clamped to the target month's end.

    Jan 31 + 1 = Feb 28 (Feb 29 in a leap year); Feb 29 2028 + 12 = Feb 28 2029;
    Mar 31 - 1 = Feb 28/29. Clamping means a month later is never in the month after that.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month_index = divmod(index, 12)
    month = month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def zone_for_country(country: str) -> str:
    """The IANA zone of ISO alpha-2 ``country`` (``TH`` -> ``Asia/Bangkok``), from
    libphonenumber's zone of the country's example number; ``FALLBACK_TIMEZONE`` when
    unknown. A country with several zones gets the first listed (its main one, usually)."""
    return _zone_for_region((country or "").strip().upper())


@functools.cache
def _zone_for_region(region: str) -> str:
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return FALLBACK_TIMEZONE
    # The fixed-line example first; some regions only have a mobile one.
    candidates = (
        phonenumbers.example_number(region),
        phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE),
    )
    for number in candidates:
        if number is None:
            continue
        for name in phone_timezone.time_zones_for_number(number):
            if _usable_zone(name):
                return str(name)
    return FALLBACK_TIMEZONE


def _usable_zone(name: str) -> bool:
    if not name or name == _UNKNOWN_ZONE:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # not in this machine's tz database
        return False
    return True


def seller_timezone(country: str, explicit: str = "") -> str:
    """The seller's zone: ``explicit`` (the invoice's ``seller.timezone``, checked when the
    invoice is read) when given, else the zone of its ``country``."""
    chosen = (explicit or "").strip()
    return chosen or zone_for_country(country)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, not naive: {moment.isoformat()}")
    return moment


def local_day(moment: datetime, zone: str) -> date:
    """The calendar day ``moment`` falls on in ``zone``."""
    return _aware(moment, "moment").astimezone(ZoneInfo(zone)).date()


def at_local(day: date, clock: time, zone: str) -> datetime:
    """The moment (aware, UTC) the wall clocks of ``zone`` show ``clock`` on ``day``.

    ``fold=0``: a wall time that happens twice (clocks going back) is its first
    occurrence; one that does not happen (clocks going forward) is read with the offset
    before the change, which lands just after the jump.
    """
    wall = datetime.combine(day, clock.replace(tzinfo=None, fold=0), tzinfo=ZoneInfo(zone))
    return wall.astimezone(UTC)


def step_due_at(offset: Offset, anchor: datetime | date, zone: str, send_time: time) -> datetime:
    """When a step at ``offset`` from ``anchor`` falls due (aware, UTC).

    A date anchor (a due date) stands for that local day in ``zone``; a datetime anchor
    (issued, paid) must be aware. Hours count from the anchor's moment (``send_time`` on a
    date anchor) in real elapsed time; days and months move the seller's local calendar
    and land at ``send_time``, so "1 day after" is 09:00 the next local day even across a
    change of clocks. ``instantly`` is the anchor's moment itself (``send_time`` on a date).
    """
    if isinstance(anchor, datetime):
        moment: datetime | None = _aware(anchor, "anchor").astimezone(UTC)
        day = local_day(anchor, zone)
    else:
        moment, day = None, anchor
    if offset.unit == "instant":
        return moment if moment is not None else at_local(day, send_time, zone)
    if offset.unit == "hours":
        start = moment if moment is not None else at_local(day, send_time, zone)
        return start + timedelta(hours=offset.signed)
    if offset.unit == "days":
        return at_local(day + timedelta(days=offset.signed), send_time, zone)
    if offset.unit == "months":
        return at_local(add_months(day, offset.signed), send_time, zone)
    raise ValueError(f"unknown offset unit {offset.unit!r}")


def days_between_local(earlier: date, moment: datetime, zone: str) -> int:
    """Local days from ``earlier`` to the day ``moment`` falls on in ``zone`` (negative if
    before): 3 days after the due date this is 3, whatever the hour."""
    return (local_day(moment, zone) - earlier).days
