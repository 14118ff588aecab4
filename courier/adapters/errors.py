"""How adapters report failure, so one retry policy can decide what to do.

AdapterError
├── TransientError      the call failed and did nothing; the same call may work later
│   │                   (HTTP 429 and 5xx, connect errors, timeouts before the request
│   │                   was written). Retried with backoff.
│   └── RateLimited     HTTP 429; carries the server's Retry-After when it gave one.
├── AmbiguousError      the request may have been acted on but we never saw the answer
│                       (read timeout, connection lost after the request was written).
│                       Never retried blindly: a send is looked up at the gateway first.
└── PermanentError      the request is wrong and will stay wrong (HTTP 4xx: invalid or
                        non-mobile number, opted out, bad credentials). Not retried; the
                        ``reason`` is written for a person.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base of every error an outside-service adapter raises."""


class TransientError(AdapterError):
    """Nothing happened; trying again later may work."""


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AmbiguousError(AdapterError):
    """The service may have acted on the request; the answer was lost."""


class PermanentError(AdapterError):
    """The service refused the request for a reason retrying cannot change."""

    def __init__(self, reason: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{reason} (code {code})" if code else reason)
        self.reason = reason
        self.code = code
        self.status = status
