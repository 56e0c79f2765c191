"""The ``drift-monitor`` CLI through ``main(argv)``, against the live backend."""

from __future__ import annotations

import json

import pytest
from drift_monitor import Client, Experiment
from drift_monitor.cli import main

from tests.client.conftest import unique
from tests.support.jwt_issuer import JWTIssuer


@pytest.fixture
def cli_env(
    backend_env: str, issuer: JWTIssuer, monkeypatch: pytest.MonkeyPatch, alice: Client
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("alice"))


@pytest.mark.usefixtures("cli_env")
def test_whoami(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whoami"]) == 0
    out = capsys.readouterr().out
    assert "alice@example.org" in out
    assert "urn:test:group:team-a" in out

    assert main(["--json", "whoami"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subject"] == "alice"
    assert data["entitlements"] == ["urn:test:group:team-a"]


@pytest.mark.usefixtures("cli_env")
def test_experiments_create_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    name = unique("cli")
    assert main(["experiments", "create", name, "--description", "from the CLI", "--public"]) == 0
    assert f"created experiment '{name}'" in capsys.readouterr().out

    assert main(["experiments", "list", "--name", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "id", "public", "created", "description"]
    assert lines[1].startswith(name)
    assert "yes" in lines[1]
    assert "from the CLI" in lines[1]

    assert main(["--json", "experiments", "list", "--name", name, "--page-size", "5"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert (item["name"], item["public"]) == (name, True)


@pytest.mark.usefixtures("cli_env")
def test_drifts_list(
    capsys: pytest.CaptureFixture[str], alice: Client, experiment: Experiment
) -> None:
    alice.create_drift(experiment.id, "model-a", tags=["t1"], job_status="Completed")
    alice.create_drift(experiment.id, "model-b", drift_detected=True)
    assert main(["drifts", "list", experiment.name, "--model", "model-b"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "model-b" in lines[1]
    assert "Running" in lines[1]
    assert "yes" in lines[1]

    assert main(["--json", "drifts", "list", experiment.name]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert sorted(r["model"] for r in runs) == ["model-a", "model-b"]


@pytest.mark.usefixtures("cli_env")
def test_api_errors_are_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    missing = unique("missing")
    assert main(["drifts", "list", missing]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"drift-monitor: error: 404 not_found: experiment {missing!r} not found "
        "(or not readable with this token)"
    ]


def test_missing_url_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whoami"]) == 1
    assert "DRIFT_MONITOR_URL" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiments", "list", "--page-size", "500"])
    assert exit_info.value.code == 2
