"""Documents in the ledger: each invoice's PDF and XML, where stored and how it went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from courier.ledger.connection import LedgerFile, now_utc


class DocumentRecords(LedgerFile):
    def record_documents(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        stamp = now_utc()
        with self.connect() as con:
            con.executemany(
                """
                INSERT INTO documents (invoice_number, kind, status, url, sha256, size_bytes,
                                       error, attempts, uploaded_at, expires_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
                ON CONFLICT (invoice_number, kind) DO UPDATE SET
                    status = excluded.status,
                    url = coalesce(excluded.url, documents.url),
                    sha256 = coalesce(excluded.sha256, documents.sha256),
                    size_bytes = coalesce(excluded.size_bytes, documents.size_bytes),
                    error = excluded.error,
                    attempts = documents.attempts + 1,
                    uploaded_at = coalesce(excluded.uploaded_at, documents.uploaded_at),
                    expires_at = coalesce(excluded.expires_at, documents.expires_at),
                    updated_at = excluded.updated_at
                """,
                [
                    [
                        r["invoice_number"],
                        r["kind"],
                        r["status"],
                        r.get("url"),
                        r.get("sha256"),
                        r.get("size_bytes"),
                        r.get("error"),
                        stamp if r["status"] == "uploaded" else None,
                        r.get("expires_at"),
                        stamp,
                    ]
                    for r in rows
                ],
            )
