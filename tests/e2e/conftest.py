"""End-to-end fixtures: one Prefect test harness per session; sandboxes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.testing.utilities import prefect_test_harness

from tests.support.browser import LiveStack, live_stack


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    # ~10 s to start: once per session, never per test.
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveStack]:
    """60 generated invoices behind the sandboxes, and the settings pointing at them."""
    with live_stack(tmp_path, monkeypatch, 60) as live:
        yield live


def download(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)
