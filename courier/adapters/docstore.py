"""Document store: keeps each PDF/XML and returns the link the buyer opens.

Uploads are idempotent (a PUT by key), so unlike SMS sends they are safe to retry after an
ambiguous failure; ``courier.documents_step`` retries them with the shared policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

from courier.adapters.errors import AmbiguousError, PermanentError, TransientError
from courier.adapters.http import (
    classify_transport_error,
    make_timeout,
    raise_for_transient_status,
)


@dataclass(frozen=True)
class StoredDocument:
    key: str
    url: str
    sha256: str
    size_bytes: int
    expires_at: datetime | None


class DocumentStore(Protocol):
    def put(self, key: str, content: bytes, content_type: str) -> StoredDocument: ...


class HttpDocumentStore:
    """``DocumentStore`` over HTTP: ``PUT /documents/{key}`` answers with the public link."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        token: str,
        link_days: int = 90,
        timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._link_days = link_days
        self._timeout = make_timeout(timeout_s)

    def put(self, key: str, content: bytes, content_type: str) -> StoredDocument:
        try:
            response = self._client.put(
                f"{self._base}/documents/{key}",
                content=content,
                headers={**self._headers, "Content-Type": content_type},
                params={"expires_days": self._link_days},
                timeout=self._timeout,
            )
        except httpx.TransportError as error:
            classified = classify_transport_error(error, "document store")
            # A PUT by key is idempotent: an ambiguous upload is simply done again.
            if isinstance(classified, AmbiguousError):
                raise TransientError(str(classified)) from error
            raise classified from error
        if response.status_code in (200, 201):
            payload = response.json()
            expires = payload.get("expires_at")
            return StoredDocument(
                key=key,
                url=str(payload["url"]),
                sha256=str(payload.get("sha256", "")),
                size_bytes=int(payload.get("size", len(content))),
                expires_at=datetime.fromisoformat(expires) if expires else None,
            )
        raise_for_transient_status(response, "document store")
        raise PermanentError(
            f"document store refused the upload ({response.status_code})",
            str(response.status_code),
            response.status_code,
        )


class StoredFiles(Protocol):
    async def fetch(self, url: str) -> bytes: ...


class HttpStoredFiles:
    """Reads a stored document back by its link (the e-mail attaches the very PDF the link
    serves). A GET is safe to repeat, so every failure but a refusal is transient."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout = make_timeout(timeout_s)

    async def fetch(self, url: str) -> bytes:
        try:
            response = await self._client.get(url, timeout=self._timeout)
        except httpx.TransportError as error:
            raise TransientError(f"document store: {type(error).__name__} reading {url}") from error
        if response.status_code == 200:
            return response.content
        raise_for_transient_status(response, "document store")
        gone = response.status_code in (404, 410)
        raise PermanentError(
            "The stored PDF is no longer available (its link expired); publish it again"
            if gone
            else f"document store refused to serve the PDF ({response.status_code})",
            str(response.status_code),
            response.status_code,
        )
