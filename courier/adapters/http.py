"""Shared HTTP plumbing: explicit timeouts and the mapping of httpx failures to our errors."""

from __future__ import annotations

import httpx

from courier.adapters.errors import AmbiguousError, RateLimited, TransientError

#: Seconds to wait for a connection; connecting never sends anything, so it is safe to retry.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
#: Seconds to wait for an answer once the request is on the wire.
DEFAULT_READ_TIMEOUT_S = 10.0


def make_timeout(read_s: float = DEFAULT_READ_TIMEOUT_S) -> httpx.Timeout:
    return httpx.Timeout(read_s, connect=DEFAULT_CONNECT_TIMEOUT_S)


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify_transport_error(error: httpx.TransportError, what: str) -> Exception:
    """Map an httpx transport failure to Transient (nothing sent) or Ambiguous (maybe acted)."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientError(f"{what}: could not connect ({type(error).__name__})")
    if isinstance(error, httpx.WriteTimeout | httpx.WriteError):
        # The request body may be partly written; a server only acts on a full request,
        # but a proxy in between might not. Treat as ambiguous to be safe.
        return AmbiguousError(f"{what}: connection failed while sending ({type(error).__name__})")
    return AmbiguousError(f"{what}: no answer ({type(error).__name__})")


def raise_for_transient_status(response: httpx.Response, what: str) -> None:
    if response.status_code == 429:
        raise RateLimited(f"{what}: rate limited (429)", retry_after_seconds(response))
    if response.status_code >= 500:
        raise TransientError(f"{what}: server error {response.status_code}")
