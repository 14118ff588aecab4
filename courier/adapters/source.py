"""Invoice sources: where the finance team's issued invoices come from.

A source yields *raw records* (the canonical JSON shape, see the README); turning them into
``Invoice`` values — and rejecting bad ones with a reason — is the core's job
(``courier.pulling``). Two implementations:

* ``FileInvoiceSource`` — a file drop: JSON Lines (canonical) or CSV (one row per invoice
  line, headers are dotted paths of the canonical record such as ``buyer.address.line1``
  and ``lines.quantity``).
* ``HttpInvoiceSource`` — the ERP's paginated JSON API (``GET /api/v1/invoices``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from courier.adapters.errors import PermanentError, TransientError
from courier.adapters.http import (
    classify_transport_error,
    make_timeout,
    raise_for_transient_status,
)

#: Records asked for per page of the ERP API.
DEFAULT_PAGE_SIZE = 200
#: A runaway API (a cursor that never ends) stops here.
MAX_PAGES = 10_000


class InvoiceSource(Protocol):
    name: str

    def fetch_records(
        self, issued_after: datetime | None, updated_after: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records issued after ``issued_after`` (all when None) and, when
        ``updated_after`` is given, also those the ERP changed after it (payments)."""
        ...


class SourceRecordError(ValueError):
    """A line of a file that is not a record at all (bad JSON); carries where it was."""


class FileInvoiceSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path.name}"

    def fetch_records(
        self, issued_after: datetime | None, updated_after: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        # A file drop is read whole each time: new invoices are told apart by number, and
        # a re-export with new payment figures updates the known ones.
        if self.path.suffix.lower() == ".csv":
            yield from _csv_records(self.path)
            return
        with self.path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    yield {
                        "_error": f"line {line_number}: not valid JSON ({error.msg})",
                        "_raw": line[:2000],
                        "number": f"{self.path.name}:{line_number}",
                    }
                    continue
                if not isinstance(record, dict):
                    yield {
                        "_error": f"line {line_number}: not a JSON object",
                        "_raw": line[:2000],
                        "number": f"{self.path.name}:{line_number}",
                    }
                    continue
                yield record


def _set_path(target: dict[str, Any], dotted: str, value: str) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _csv_records(path: Path) -> Iterator[dict[str, Any]]:
    """Group CSV rows (one per invoice line) into canonical records, in file order."""
    records: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            number = (row.get("number") or "").strip()
            record = records.setdefault(number, {"lines": []})
            line: dict[str, Any] = {}
            for column, value in row.items():
                if column is None:
                    continue
                if column.startswith("lines."):
                    line[column.removeprefix("lines.")] = value
                elif value not in (None, ""):
                    _set_path(record, column, value)
            if any(v not in (None, "") for v in line.values()):
                record["lines"].append(line)
    yield from records.values()


class HttpInvoiceSource:
    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        token: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/api/v1/invoices"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._page_size = page_size
        self._timeout = make_timeout(timeout_s)
        self.name = f"api:{base_url.rstrip('/')}"

    def fetch_records(
        self, issued_after: datetime | None, updated_after: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """New invoices (``issued_after``), then the older ones the ERP changed since
        ``updated_after`` (payments recorded, due dates moved): two walks, each number once."""
        seen: set[str] = set()
        for record in self._walk("issued_after", issued_after):
            seen.add(str(record.get("number", "")))
            yield record
        if updated_after is None:
            return
        for record in self._walk("updated_after", updated_after):
            if str(record.get("number", "")) not in seen:
                yield record

    def _walk(self, name: str, after: datetime | None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": self._page_size}
        if after is not None:
            params[name] = after.isoformat()
        for _ in range(MAX_PAGES):
            try:
                response = self._client.get(
                    self._url, params=params, headers=self._headers, timeout=self._timeout
                )
            except httpx.TransportError as error:
                # Reading a page changes nothing: an ambiguous failure is just transient.
                raise TransientError(str(classify_transport_error(error, "invoice API"))) from error
            raise_for_transient_status(response, "invoice API")
            if response.status_code != 200:
                raise PermanentError(
                    f"invoice API refused the request ({response.status_code}): "
                    f"{response.text[:200]}",
                    str(response.status_code),
                    response.status_code,
                )
            page = response.json()
            yield from page.get("data", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params = {"limit": self._page_size, "cursor": cursor}
        raise PermanentError(f"invoice API returned more than {MAX_PAGES} pages")
