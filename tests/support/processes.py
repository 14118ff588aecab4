"""Stopping the helper processes tests start (Streamlit, Prism)."""

from __future__ import annotations

import subprocess

#: How long a process gets to exit after SIGTERM, then after SIGKILL.
STOP_TIMEOUT_S = 10.0


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Terminate ``process`` and wait for it; kill it if it has not exited in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
