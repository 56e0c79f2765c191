"""The client spool: a job runs while the server cannot be reached, its records wait on disk,
and a flush later creates each run exactly once, with the time it really ran.

Real backend, real tokens, real files. The one fake is ``Link``, a transport in front of the
real ``httpx2.HTTPTransport`` that can be cut (every request fails to connect) or lose the
answer of a request *after* the server handled it, as a dropped connection would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pandas as pd
import pytest
from drift_backend.devstack.services import free_port
from drift_monitor import (
    Client,
    DriftMonitor,
    DriftResult,
    Experiment,
    FlushResult,
    Spool,
    TransportError,
)
from drift_monitor.cli import main

from tests.client.conftest import unique
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer


class JobCrashed(Exception):
    pass


@dataclass
class Link(httpx2.BaseTransport):
    """The real transport, which the test can cut or make lose answers."""

    inner: httpx2.HTTPTransport = field(default_factory=httpx2.HTTPTransport)
    down: bool = False
    #: Path suffixes of POSTs whose next answer is lost after the server handled them.
    lose: list[str] = field(default_factory=list)
    #: Path suffix -> called before a matching POST goes to the server.
    before: dict[str, Callable[[], None]] = field(default_factory=dict)
    sent: list[tuple[str, str | None]] = field(default_factory=list)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.sent.append((f"{request.method} {path}", request.headers.get("idempotency-key")))
        if self.down:
            raise httpx2.ConnectError("connection refused (injected)", request=request)
        for suffix, hook in list(self.before.items()):
            if request.method == "POST" and path.endswith(suffix):
                del self.before[suffix]
                hook()
        response = self.inner.handle_request(request)
        for suffix in self.lose:
            if request.method == "POST" and path.endswith(suffix):
                self.lose.remove(suffix)
                response.read()
                response.close()
                raise httpx2.ReadTimeout("answer lost (injected)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(0.0, 1.0, n), "c": rng.choice(["a", "b"], size=n)})


@pytest.fixture
def linked(make_client: Callable[..., Client]) -> Callable[..., tuple[Client, Link]]:
    """alice's clients on the live backend through a ``Link`` (registered while it is up)."""

    def build(**kwargs: Any) -> tuple[Client, Link]:
        link = Link()
        client = make_client("alice", transport=link, **kwargs)
        link.sent.clear()
        return client, link

    return build


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def runs_of(client: Client, experiment: Experiment, model: str) -> list[Any]:
    return list(client.iter_drifts(experiment.id, {"model": model}))


def entries(spool: Spool) -> list[tuple[str, str]]:
    return [(e.kind, e.state) for e in spool.entries()]


# The job runs on; the records wait; a flush sends each once ---------------------------------
def test_unreachable_server_spools_the_run_and_flush_creates_it_once(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, link = linked()
    link.down = True
    before = datetime.now(UTC)
    steps: list[str] = []
    with (
        caplog.at_level(logging.WARNING, logger="drift_monitor"),
        DriftMonitor(
            experiment.name, "offline", ["nightly"], client=client, spool=spool
        ) as monitor,
    ):
        steps.append("started")
        monitor.concept(True, {"p_value": 0.01})
        monitor.data(False, {"psi": 0.05})
        assert monitor.heartbeat() is None
        steps.append("finished")
    assert steps == ["started", "finished"], "the job ran whole"
    assert monitor.spooled is True
    assert monitor.drift is None
    assert f"go to the spool {spool.directory}" in caplog.text

    waiting = spool.entries()
    assert [(e.kind, e.state, e.experiment, e.model) for e in waiting] == [
        ("create", "pending", experiment.name, "offline"),
        ("finish", "pending", experiment.name, "offline"),
    ]
    started = waiting[0].at
    assert before - timedelta(milliseconds=1) <= started <= waiting[1].at
    assert runs_of(alice, experiment, "offline") == [], "nothing reached the server"

    link.down = False
    link.sent.clear()
    assert spool.flush(client) == FlushResult(sent=2, dead=0, waiting=0, stopped=None)
    [run] = runs_of(alice, experiment, "offline")
    assert run.created_at == started, "the run keeps the time it really ran"
    assert run.job_status == "Completed"
    assert run.finished_at == waiting[1].at, "and the time it really finished"
    assert run.tags == ["nightly"]
    assert run.concept_drift == DriftResult(True, {"p_value": 0.01})
    assert run.data_drift == DriftResult(False, {"psi": 0.05})
    assert run.drift_detected is True
    assert not waiting[0].path.exists()
    posts = [(call, key) for call, key in link.sent if call.endswith("/drift")]
    assert len(posts) == 1
    assert posts[0][1] is not None, "the replayed creation carries its idempotency key"
    assert spool.entries() == []

    assert spool.flush(client) == FlushResult(sent=0, dead=0, waiting=0, stopped=None)
    assert len(runs_of(alice, experiment, "offline")) == 1, "a second flush sends nothing"


def test_the_users_exception_propagates_and_the_failure_is_spooled(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked()
    link.down = True
    with (
        pytest.raises(JobCrashed, match="disk full"),
        DriftMonitor(experiment.name, "crashing", client=client, spool=spool),
    ):
        raise JobCrashed("disk full")
    assert entries(spool) == [("create", "pending"), ("finish", "pending")]

    link.down = False
    assert spool.flush(client).sent == 2
    [run] = runs_of(alice, experiment, "crashing")
    assert run.job_status == "Failed"
    assert run.error is not None
    assert (run.error.type, run.error.message) == ("JobCrashed", "disk full")


def test_the_server_going_away_mid_run_spools_the_rest(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked()
    with DriftMonitor(experiment.name, "midway", client=client, spool=spool) as monitor:
        assert monitor.drift is not None
        link.down = True
        monitor.data(True, {"psi": 0.4})
    assert monitor.spooled is True
    assert entries(spool) == [("finish", "pending")]
    assert alice.get_drift(experiment.id, monitor.drift.id).job_status == "Running"

    link.down = False
    assert spool.flush(client).sent == 1
    done = alice.get_drift(experiment.id, monitor.drift.id)
    assert done.job_status == "Completed"
    assert done.data_drift == DriftResult(True, {"psi": 0.4})
    assert len(runs_of(alice, experiment, "midway")) == 1


def test_the_next_monitor_replays_the_spool_before_its_own_run(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked()
    link.down = True
    with DriftMonitor(experiment.name, "first", client=client, spool=spool):
        pass
    link.down = False
    with DriftMonitor(experiment.name, "second", client=client, spool=spool) as monitor:
        assert monitor.drift is not None
        [first] = runs_of(alice, experiment, "first")
        assert first.job_status == "Completed", "replayed when the next monitor entered"
    assert spool.entries() == []
    assert [r.job_status for r in runs_of(alice, experiment, "second")] == ["Completed"]


def test_a_run_whose_check_was_spooled_replays_when_it_ends(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    alice.upload_baseline(experiment.id, frame(1, 2000), model="blip")
    client, link = linked()
    with DriftMonitor(experiment.name, "blip", client=client, spool=spool) as monitor:
        link.down = True
        assert monitor.check(frame(2, 1000)) is None
        assert entries(spool) == [("check", "pending")]
        [spooled] = spool.entries()
        link.down = False
    assert spool.entries() == [], "the server took the run's creation: it is back, replay"
    assert monitor.drift is not None
    own = alice.get_drift(experiment.id, monitor.drift.id)
    assert own.job_status == "Completed"
    [check_run] = [r for r in runs_of(alice, experiment, "blip") if "check" in r.parameters]
    assert own.parameters["check_runs"] == [check_run.id]
    assert check_run.parameters["check"]["rows"] == 1000
    assert check_run.created_at == spooled.at, "the check keeps the time it was made"


# Exactly once: lost answers, repeated flushes, two flushes at once ------------------------------
def test_a_replay_whose_answer_was_lost_is_not_duplicated(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked(retries=0)
    link.down = True
    with DriftMonitor(experiment.name, "lost", client=client, spool=spool):
        pass
    [create, _] = spool.entries()
    link.down = False
    # The server creates the run, but its answer never comes back: the flush stops there.
    link.lose.append("/drift")
    result = spool.flush(client)
    assert (result.sent, result.waiting) == (0, 2)
    assert result.stopped is not None
    assert "answer lost" in result.stopped
    assert entries(spool) == [("create", "pending"), ("finish", "pending")]
    assert len(runs_of(alice, experiment, "lost")) == 1, "the server did create it"

    assert spool.flush(client).sent == 2
    [run] = runs_of(alice, experiment, "lost")
    assert run.job_status == "Completed", "the repeat got the first run's id, and finished it"
    assert run.created_at == create.at
    keys = [key for call, key in link.sent if call.endswith("/drift")]
    assert len(keys) == 2
    assert keys[0] == keys[1], "the repeat used the first attempt's key"


def test_a_creation_whose_live_answer_was_lost_is_not_duplicated_by_the_replay(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    """The live POST reached the server (which created the run) but its answer was lost, so
    the record was spooled. The replay adds ``created_at`` to the body, which the server
    refuses for that key (another request); sent again as it was first sent, it answers the
    run created then."""
    client, link = linked(retries=0)
    link.lose.append("/drift")
    with DriftMonitor(experiment.name, "half", client=client, spool=spool) as monitor:
        assert monitor.drift is None
    assert entries(spool) == [("create", "pending"), ("finish", "pending")]
    [live] = runs_of(alice, experiment, "half")
    assert live.job_status == "Running"

    assert spool.flush(client) == FlushResult(sent=2, dead=0, waiting=0, stopped=None)
    [run] = runs_of(alice, experiment, "half")
    assert (run.id, run.job_status) == (live.id, "Completed")
    keys = [key for call, key in link.sent if call.endswith("/drift")]
    assert len(keys) == 3, "live, replay with created_at, replay as first sent"
    assert len(set(keys)) == 1


def test_a_flush_never_sends_what_another_flush_has_claimed(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked()
    link.down = True
    with DriftMonitor(experiment.name, "claimed", client=client, spool=spool):
        pass
    link.down = False
    other_client, _ = linked()
    other = Spool(spool.directory)  # another process's view of the same directory
    seen: list[tuple[FlushResult, list[tuple[str, str]]]] = []
    # While the first flush sends the creation, a second flush runs to its end.
    link.before["/drift"] = lambda: seen.append((other.flush(other_client), entries(other)))

    assert spool.flush(client) == FlushResult(sent=2, dead=0, waiting=0, stopped=None)

    [(result, states)] = seen
    assert states == [("create", "inflight"), ("finish", "pending")]
    assert result.sent == 0, "the claimed creation, and the completion that follows it, waited"
    assert result.waiting == 2
    assert [r.job_status for r in runs_of(alice, experiment, "claimed")] == ["Completed"]


# Dead letters and records too old to replay ----------------------------------------------
def test_records_the_server_refuses_move_to_dead_with_the_reason(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    spool: Spool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doomed = alice.create_experiment(unique("doomed"))
    client, link = linked()
    link.down = True
    with DriftMonitor(doomed.name, "m", client=client, spool=spool):
        pass
    alice.delete_experiment(doomed.id)
    link.down = False

    result = spool.flush(client)
    assert (result.sent, result.dead, result.waiting, result.stopped) == (0, 2, 0, None)
    dead = spool.entries()
    assert [(e.kind, e.state) for e in dead] == [("create", "dead"), ("finish", "dead")]
    assert dead[0].reason is not None
    assert "not found" in dead[0].reason
    assert dead[1].reason is not None
    assert "its run's creation was refused" in dead[1].reason
    assert spool.flush(client) == FlushResult(sent=0, dead=0, waiting=0, stopped=None)

    assert main(["spool", "--dir", str(spool.directory), "list"]) == 0
    out = capsys.readouterr().out
    assert "dead" in out
    assert doomed.name in out
    assert "not found" in out


def test_a_record_older_than_the_backdate_limit_is_refused_not_retried(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, _ = linked()
    run = "old-run"
    common: dict[str, Any] = {
        "server": client.settings.url,
        "run": run,
        "experiment_name": experiment.name,
        "experiment_id": experiment.id,
        "model": "ancient",
    }
    body = {"model": "ancient", "job_status": "Running", "tags": [], "parameters": {}}
    spool.add(
        "create",
        at=datetime.now(UTC) - timedelta(days=8),
        body=body,
        idempotency_key="7d0c4d5e-3a53-4f07-9d0e-5e7c3f9f0a01",
        **common,
    )
    spool.add(
        "finish",
        at=datetime.now(UTC) - timedelta(days=8),
        body={**body, "job_status": "Completed"},
        **common,
    )

    result = spool.flush(client)
    assert (result.sent, result.dead, result.stopped) == (0, 2, None)
    reasons = [e.reason or "" for e in spool.entries()]
    assert "created_at" in reasons[0]
    assert runs_of(alice, experiment, "ancient") == []


# Checks: summary preferred, the size cap ---------------------------------------------------
def test_a_check_is_spooled_as_a_summary_when_the_bins_are_known(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    client, link = linked()
    alice.upload_baseline(experiment.id, frame(1, 2000), model="m")
    # A summary check: this client now knows the baseline's bins.
    earlier = client.check(experiment.id, frame(2, 500), model="m", summary_only=True)
    with DriftMonitor(experiment.name, "m", client=client, spool=spool) as monitor:
        link.down = True
        assert monitor.check(frame(3, 5000)) is None  # raw was asked for
    assert monitor.check_runs == []
    [check, finish] = spool.entries()
    assert (check.kind, finish.kind) == ("check", "finish")
    assert 0 < check.size < 5000, "counts, not 5,000 rows"

    link.down = False
    assert spool.flush(client).sent == 2
    runs = runs_of(alice, experiment, "m")
    [spooled] = [r for r in runs if "check" in r.parameters and r.id != earlier.id]
    assert spooled.parameters["check"]["mode"] == "summary"
    assert spooled.parameters["check"]["rows"] == 5000
    [own] = [r for r in runs if "check" not in r.parameters]
    assert own.job_status == "Completed"
    assert own.parameters["check_runs"] == [spooled.id], "the replayed check's id is recorded"


def test_a_check_whose_live_answer_was_lost_is_replayed_as_it_was_sent(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    """The server queued the check but its answer was lost: the batch is spooled as it was
    sent (raw, with its key and wait), not as a summary under a new key, so the replay
    answers that check instead of queueing a second one."""
    alice.upload_baseline(experiment.id, frame(1, 2000), model="m")
    client, link = linked(retries=0)
    earlier = client.check(experiment.id, frame(2, 500), model="m", summary_only=True)
    with DriftMonitor(experiment.name, "m", client=client, spool=spool) as monitor:
        link.lose.append("/check")
        assert monitor.check(frame(3, 3000), wait=0.2) is None
        link.down = True  # (else the run's end would replay the spool at once)
    [check, finish] = spool.entries()
    assert (check.kind, finish.kind) == ("check", "finish")
    [lost] = [
        r for r in runs_of(alice, experiment, "m") if "check" in r.parameters and r != earlier
    ]
    assert check.size > 3000, "the rows as sent, not counts"

    link.down = False
    assert spool.flush(client).sent == 2
    runs = runs_of(alice, experiment, "m")
    checks = [r for r in runs if "check" in r.parameters]
    assert sorted(r.id for r in checks) == sorted([earlier.id, lost.id]), "no second check"
    [own] = [r for r in runs if "check" not in r.parameters]
    assert own.parameters["check_runs"] == [lost.id]
    keys = [key for call, key in link.sent if call.endswith("/check")]
    assert len(keys) >= 3
    assert len(set(keys[1:])) == 1, "the live attempt and its replays share one key"


def test_a_raw_check_is_spooled_within_the_cap_and_dropped_above_it(
    linked: Callable[..., tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice.upload_baseline(experiment.id, frame(1, 2000), model="m")
    client, link = linked()
    link.down = True
    small = Spool(tmp_path / "small", max_bytes=1000)
    with (
        caplog.at_level(logging.WARNING, logger="drift_monitor"),
        DriftMonitor(experiment.name, "m", client=client, spool=small) as monitor,
    ):
        assert monitor.check(frame(2, 3000)) is None
        assert monitor.check(frame(2, 3000), summary_only=True) is None
    assert "does not fit in the spool's cap of 1000 bytes" in caplog.text
    assert "summary mode needs the baseline's bins" in caplog.text
    assert [e.kind for e in small.entries()] == ["create", "finish"]

    roomy = Spool(tmp_path / "roomy")
    with DriftMonitor(experiment.name, "m", client=client, spool=roomy) as monitor:
        assert monitor.check(frame(2, 3000)) is None
    [_, check, _] = roomy.entries()
    assert check.kind == "check"
    assert check.size > 1000
    assert roomy.data_bytes() == check.size

    link.down = False
    assert roomy.flush(client).sent == 3
    assert roomy.data_bytes() == 0
    checks = [r for r in runs_of(alice, experiment, "m") if "check" in r.parameters]
    [check_run] = checks
    assert check_run.parameters["check"]["mode"] != "summary", "the rows were sent"
    assert check_run.parameters["check"]["rows"] == 3000


# spool=False, and configuration ------------------------------------------------------------
def test_spool_false_raises_as_before(
    linked: Callable[..., tuple[Client, Link]],
    experiment: Experiment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_SPOOL_DIR", str(tmp_path / "spool"))
    client, link = linked()
    link.down = True
    ran = False
    with (
        pytest.raises(TransportError),
        DriftMonitor(experiment.name, "m", client=client, spool=False),
    ):
        ran = True
    assert ran is False
    assert not (tmp_path / "spool").exists()


def test_spool_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_SPOOL_DIR", str(tmp_path / "here"))
    monkeypatch.setenv("DRIFT_MONITOR_SPOOL_MAX_BYTES", "12345")
    spool = Spool()
    assert (spool.directory, spool.max_bytes) == (tmp_path / "here", 12345)
    monkeypatch.delenv("DRIFT_MONITOR_SPOOL_DIR")
    monkeypatch.delenv("DRIFT_MONITOR_SPOOL_MAX_BYTES")
    default = Spool()
    assert default.directory.parts[-2:] == ("drift-monitor", "spool")
    assert default.max_bytes == 100_000_000


# The CLI -----------------------------------------------------------------------------------
def test_cli_spool_list_and_flush(
    linked: Callable[..., tuple[Client, Link]],
    live_backend: ThreadedServer,
    issuer: JWTIssuer,
    alice: Client,
    experiment: Experiment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("alice"))
    closed = f"http://127.0.0.1:{free_port()}"
    down = Client(closed, retries=0)
    with DriftMonitor(experiment.name, "cli", client=down):  # default spool=True: the env's
        pass
    down.close()

    assert main(["spool", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "entry",
        "state",
        "kind",
        "experiment",
        "model",
        "at",
        "bytes",
        "server",
        "reason",
    ]
    assert [line.split()[1:3] for line in lines[1:3]] == [
        ["pending", "create"],
        ["pending", "finish"],
    ]
    assert closed in lines[1]
    assert lines[3] == f"(2 in {tmp_path / 'spool'})"

    assert main(["--json", "spool", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["kind"], e["state"], e["model"]) for e in listed] == [
        ("create", "pending", "cli"),
        ("finish", "pending", "cli"),
    ]

    # Still unreachable: nothing is lost, and the exit status says so.
    assert main(["--url", closed, "spool", "flush"]) == 1
    captured = capsys.readouterr()
    assert "sent 0, refused 0 (see spool list), waiting 2" in captured.out
    assert "flush stopped" in captured.err
    # Records are kept per server: a flush to another server sends only its own.
    client, link = linked()
    link.down = True
    with DriftMonitor(experiment.name, "cli-live", client=client):
        pass
    assert len(Spool().entries()) == 4
    assert main(["--url", live_backend.url, "spool", "flush"]) == 0
    assert "sent 2, refused 0 (see spool list), waiting 0" in capsys.readouterr().out
    assert [r.job_status for r in runs_of(alice, experiment, "cli-live")] == ["Completed"]
    assert [e.server for e in Spool().entries()] == [closed, closed]
