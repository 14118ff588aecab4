"""One sender at a time per ledger, across processes (an advisory file lock).

Two runs overlapping must never both work on the same outbox: the second could take the
first's in-flight ``pending`` rows for crashed ones and resend them. The operating system
releases the lock when its holder dies (even on SIGKILL), so whoever holds it knows every
``pending`` row it finds was left by a process that is gone.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How long a run waits for another run's sending to finish before giving up.
DEFAULT_SEND_LOCK_WAIT_S = 600.0
_POLL_S = 0.2


class SendLockTimeout(RuntimeError):
    """Another run kept sending for longer than we were willing to wait."""


@contextmanager
def exclusive(path: Path, wait_s: float = DEFAULT_SEND_LOCK_WAIT_S) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SendLockTimeout(f"another run holds {path.name}") from None
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def send_lock_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".send.lock")
