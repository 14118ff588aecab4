"""The one retry policy for calls to outside services (stamina: backoff with jitter).

Transient errors are retried with capped exponential backoff; a 429's ``Retry-After`` sets
the wait instead; everything else (permanent, ambiguous) is never retried here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stamina

from courier.adapters.errors import RateLimited, TransientError

#: Attempts per call, counting the first.
DEFAULT_ATTEMPTS = 5
#: Total seconds one call may spend retrying.
DEFAULT_TOTAL_TIMEOUT_S = 60.0
DEFAULT_WAIT_INITIAL_S = 0.2
DEFAULT_WAIT_MAX_S = 10.0
#: A server asking us to wait longer than this is treated as "not now": next run.
MAX_RETRY_AFTER_S = 30.0


def backoff_hook(error: Exception) -> bool | float:
    """stamina hook: retry transient errors; wait what a 429 asked for when it said."""
    if isinstance(error, RateLimited) and error.retry_after_s is not None:
        return min(error.retry_after_s, MAX_RETRY_AFTER_S)
    return isinstance(error, TransientError)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS
    total_timeout_s: float = DEFAULT_TOTAL_TIMEOUT_S
    wait_initial_s: float = DEFAULT_WAIT_INITIAL_S
    wait_max_s: float = DEFAULT_WAIT_MAX_S

    def context(self) -> Any:
        return stamina.retry_context(
            on=backoff_hook,
            attempts=self.attempts,
            timeout=self.total_timeout_s,
            wait_initial=self.wait_initial_s,
            wait_max=self.wait_max_s,
        )
