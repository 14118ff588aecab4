"""Sandbox document store: upload a document, get an unguessable link buyers can open.

- ``PUT /documents/{key}`` (``Authorization: Bearer <api_token>``, raw body, ``Content-Type``)
  -> 201 ``{"key", "url", "sha256", "size", "content_type", "expires_at"}``. Every PUT mints
  a fresh link ``<base URL>/d/<token>``; earlier links keep serving the bytes they were made
  for until they expire. Expiry: query ``expires_days`` (alias ``expires_in_days``) or
  header ``X-Expires-Days``: a positive number of days, default 90.
- ``GET /d/{token}`` serves the bytes inline with the stored content type; 404 unknown,
  410 expired.

Bytes live on disk under ``state_dir/blobs`` (content-addressed), the index in SQLite, so a
restart keeps every document and link.

Knobs (``POST /_sandbox/config``): ``fail_uploads`` (PUT -> 503), ``latency_ms``,
``public_base_url`` (links use it instead of the request's own base URL), ``max_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox._common import (
    Knobs,
    bool_knob,
    config_endpoint,
    health_response,
    init_sqlite,
    number_knob,
    sleep_ms,
    sqlite_connection,
    str_knob,
)

log = logging.getLogger("sandbox.docstore")

DEFAULT_EXPIRY_DAYS = 90.0
MAX_EXPIRY_DAYS = 3650.0
MAX_KEY_LENGTH = 512

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    token TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    last_hit_at REAL
);
CREATE INDEX IF NOT EXISTS links_key ON links (key, created_at);
"""

KNOB_SPEC = {
    "fail_uploads": (bool_knob(), False),
    "latency_ms": (number_knob(0), 0.0),
    "public_base_url": (str_knob(nullable=True), None),
    "max_bytes": (number_knob(1), 50 * 1024 * 1024),
}


class BadRequest(ValueError):
    pass


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def check_key(key: str) -> str:
    """A document key: relative slash-separated path, no empty/dot segments or controls."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"key must be 1..{MAX_KEY_LENGTH} characters")
    if any(ord(ch) < 0x20 or ch in "\x7f\\" for ch in key):
        raise BadRequest("key must not contain control characters or backslashes")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest("key must be a relative path without empty, '.' or '..' segments")
    return key


def parse_expiry_days(raw: str | None) -> float:
    if raw is None or raw.strip() == "":
        return DEFAULT_EXPIRY_DAYS
    try:
        days = float(raw)
    except ValueError:
        raise BadRequest(f"expires_days must be a number, got {raw!r}") from None
    if not math.isfinite(days) or days <= 0 or days > MAX_EXPIRY_DAYS:
        raise BadRequest(f"expires_days must be > 0 and <= {MAX_EXPIRY_DAYS:g}")
    return days


class DocStore:
    def __init__(self, state_dir: Path, api_token: str, knobs: Mapping[str, Any] | None) -> None:
        self.state_dir = Path(state_dir)
        self.blob_dir = self.state_dir / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.state_dir / "docstore.sqlite3"
        init_sqlite(self.db_path, SCHEMA)
        self.api_token = api_token
        self.knobs = Knobs(KNOB_SPEC, knobs)

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.api_token.encode()
        )

    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256

    def _write_blob(self, data: bytes, sha256: str) -> None:
        target = self.blob_path(sha256)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(
        self, key: str, data: bytes, content_type: str, expiry_days: float, base_url: str
    ) -> dict[str, Any]:
        sha256 = hashlib.sha256(data).hexdigest()
        self._write_blob(data, sha256)
        token = secrets.token_urlsafe(24)
        now = time.time()
        expires = now + expiry_days * 86400.0
        with sqlite_connection(self.db_path) as conn:
            conn.execute(
                "INSERT INTO links (token, key, sha256, size, content_type, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, key, sha256, len(data), content_type, now, expires),
            )
        return {
            "key": key,
            "url": f"{base_url}/d/{token}",
            "sha256": sha256,
            "size": len(data),
            "content_type": content_type,
            "expires_at": _iso(expires),
        }

    def lookup(self, token: str) -> Any:
        with sqlite_connection(self.db_path) as conn:
            row = conn.execute("SELECT * FROM links WHERE token = ?", (token,)).fetchone()
            if row is not None and row["expires_at"] > time.time():
                conn.execute(
                    "UPDATE links SET hits = hits + 1, last_hit_at = ? WHERE token = ?",
                    (time.time(), token),
                )
        return row

    def expire(self, token: str) -> bool:
        with sqlite_connection(self.db_path) as conn:
            cursor = conn.execute(
                "UPDATE links SET expires_at = ? WHERE token = ?", (time.time(), token)
            )
        return cursor.rowcount > 0

    def listing(self, base_url: str) -> dict[str, Any]:
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM links ORDER BY created_at, rowid").fetchall()
        now = time.time()
        links = [
            {
                "key": row["key"],
                "token": row["token"],
                "url": f"{base_url}/d/{row['token']}",
                "sha256": row["sha256"],
                "size": row["size"],
                "content_type": row["content_type"],
                "created_at": _iso(row["created_at"]),
                "expires_at": _iso(row["expires_at"]),
                "expired": row["expires_at"] <= now,
                "hits": row["hits"],
            }
            for row in rows
        ]
        latest: dict[str, dict[str, Any]] = {}
        for link in links:  # oldest first, so the last PUT of each key wins
            latest[link["key"]] = {
                name: link[name]
                for name in ("key", "sha256", "size", "content_type", "url", "created_at")
            }
        return {"documents": list(latest.values()), "links": links}

    def reset(self) -> None:
        with sqlite_connection(self.db_path) as conn:
            conn.execute("DELETE FROM links")
        shutil.rmtree(self.blob_dir, ignore_errors=True)
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.knobs.reset()


def _error(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "message": message}, status_code=status, headers=dict(headers or {})
    )


def _filename_for(key: str) -> str:
    return PurePosixPath(key).name or "document"


def create_docstore_app(
    state_dir: Path, api_token: str, knobs: dict[str, Any] | None = None
) -> Starlette:
    """ASGI app of the sandbox document store keeping its files and index in ``state_dir``."""
    store = DocStore(state_dir, api_token, knobs)

    def base_url(request: Request) -> str:
        configured = store.knobs["public_base_url"]
        return str(configured or request.base_url).rstrip("/")

    async def put_document(request: Request) -> Response:
        if not store.authorized(request):
            return _error(
                401,
                "unauthorized",
                "missing or wrong bearer token",
                {"WWW-Authenticate": 'Bearer realm="sandbox-docstore"'},
            )
        await sleep_ms(store.knobs["latency_ms"])
        if store.knobs["fail_uploads"]:
            return _error(
                503,
                "unavailable",
                "uploads are failing (sandbox knob fail_uploads)",
                {"Retry-After": "1"},
            )
        try:
            key = check_key(request.path_params["key"])
            days = parse_expiry_days(
                request.query_params.get("expires_days")
                or request.query_params.get("expires_in_days")
                or request.headers.get("x-expires-days")
            )
        except BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        declared = request.headers.get("content-length")
        limit = int(store.knobs["max_bytes"])
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _error(413, "too_large", f"documents are limited to {limit} bytes")
        data = await request.body()
        if len(data) > limit:
            return _error(413, "too_large", f"documents are limited to {limit} bytes")
        content_type = request.headers.get("content-type", "").strip() or "application/octet-stream"
        result = store.put(key, data, content_type, days, base_url(request))
        return JSONResponse(result, status_code=201, headers={"Location": result["url"]})

    async def get_link(request: Request) -> Response:
        row = store.lookup(request.path_params["token"])
        if row is None:
            return _error(404, "not_found", "no such document link")
        if row["expires_at"] <= time.time():
            return _error(410, "expired", f"this link expired at {_iso(row['expires_at'])}")
        path = store.blob_path(row["sha256"])
        if not path.is_file():
            return _error(404, "not_found", "the document's bytes are gone")
        return FileResponse(
            path,
            media_type=row["content_type"],
            filename=_filename_for(row["key"]),
            content_disposition_type="inline",
            headers={
                "Cache-Control": "private, max-age=300",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def admin_documents(request: Request) -> Response:
        return JSONResponse(store.listing(base_url(request)))

    async def admin_expire(request: Request) -> Response:
        if not store.expire(request.path_params["token"]):
            return _error(404, "not_found", "no such document link")
        return JSONResponse({"status": "expired"})

    async def admin_config(request: Request) -> Response:
        return await config_endpoint(request, store.knobs)

    async def admin_reset(request: Request) -> Response:
        store.reset()
        return JSONResponse({"status": "reset"})

    async def health(request: Request) -> Response:
        return health_response("docstore")

    app = Starlette(
        routes=[
            Route("/documents/{key:path}", put_document, methods=["PUT"]),
            Route("/d/{token}", get_link, methods=["GET"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/config", admin_config, methods=["GET", "POST"]),
            Route("/_sandbox/documents", admin_documents, methods=["GET"]),
            Route("/_sandbox/links/{token}/expire", admin_expire, methods=["POST"]),
            Route("/_sandbox/reset", admin_reset, methods=["POST"]),
        ]
    )
    app.state.store = store
    return app
