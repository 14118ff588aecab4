"""``prefect.yaml`` names flows that exist, each deployment on a schedule."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

REPO = Path(__file__).resolve().parents[2]


def test_every_deployment_points_at_a_flow_and_reminders_have_their_own():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in config["deployments"]}
    for name, deployment in deployments.items():
        path, attribute = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, attribute), Flow), name
        assert deployment["schedules"] and deployment["schedules"][0]["cron"], name
    assert deployments["reminders"]["entrypoint"] == "flows/reminders.py:reminders"
    assert deployments["nightly"]["entrypoint"] == "flows/nightly.py:nightly_send"
