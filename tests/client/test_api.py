"""Users, experiments, permissions and the error tree against the live backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from drift_monitor import (
    AuthenticationError,
    Client,
    ConfigurationError,
    ConflictError,
    DriftMonitorError,
    Experiment,
    ExperimentExists,
    ExperimentNotFound,
    NotFoundError,
    Permission,
    PermissionDeniedError,
    ValidationError,
    find_experiment,
    new_experiment,
    register,
)

from tests.client.conftest import unique
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer


def test_register_then_409_path_updates(live_backend: ThreadedServer, issuer: JWTIssuer) -> None:
    subject = unique("user")
    with Client(live_backend.url, token=issuer.token(subject, email="a@example.org")) as first:
        created = register(accept_terms=True, client=first)
        assert (created.subject, created.email) == (subject, "a@example.org")
        with pytest.raises(ConflictError):
            first.register()
    # Registering again (409) refreshes the stored user from the new token instead.
    with Client(live_backend.url, token=issuer.token(subject, email="b@example.org")) as second:
        again = register(accept_terms=True, client=second)
        assert again.id == created.id
        assert again.email == "b@example.org"
        assert second.get_user().email == "b@example.org"


def test_register_requires_accepting_terms() -> None:
    with pytest.raises(ValueError, match="terms"):
        register()


def test_module_functions_use_env(
    backend_env: str, issuer: JWTIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("alice"))
    register(accept_terms=True)
    name = unique()
    created = new_experiment(name, "made from env settings", permissions=[])
    assert created.permissions[0].level == "Manage"
    found = find_experiment(name)
    assert found == created
    with pytest.raises(ExperimentExists) as exists:
        new_experiment(name, "again")
    assert isinstance(exists.value, ValueError)
    assert isinstance(exists.value, ConflictError)
    missing = unique("missing")
    with pytest.raises(ExperimentNotFound, match=missing) as not_found:
        find_experiment(missing)
    assert isinstance(not_found.value, ValueError)
    assert isinstance(not_found.value, NotFoundError)


def test_experiment_crud_and_pages(alice: Client) -> None:
    prefix = unique("page")
    made = [alice.create_experiment(f"{prefix}-{i}", f"number {i}") for i in range(3)]
    page = alice.search_experiments(
        {"name": {"$in": [e.name for e in made]}}, page_size=2, order_by="asc"
    )
    assert [e.name for e in page] == [made[0].name, made[1].name]
    assert (page.pagination.total, page.pagination.total_pages) == (3, 2)
    assert page.pagination.next_page == 2
    everything = list(
        alice.iter_experiments({"name": {"$in": [e.name for e in made]}}, page_size=2)
    )
    assert sorted(e.id for e in everything) == sorted(e.id for e in made)

    patched = alice.update_experiment(made[0].id, description="patched")
    assert (patched.name, patched.description) == (made[0].name, "patched")
    replaced = alice.replace_experiment(
        made[0].id, name=f"{prefix}-renamed", public=True, permissions=made[0].permissions
    )
    assert (replaced.name, replaced.public, replaced.description) == (
        f"{prefix}-renamed",
        True,
        None,
    )
    assert alice.get_experiment(made[0].id) == replaced
    alice.delete_experiment(made[0].id)
    with pytest.raises(NotFoundError):
        alice.get_experiment(made[0].id)


def test_permissions_and_403(
    alice: Client, make_client: Callable[..., Client], experiment: Experiment
) -> None:
    bob = make_client("bob")
    bob_id = bob.get_user().id
    # Bob cannot see a private experiment at all.
    with pytest.raises(NotFoundError):
        bob.get_experiment(experiment.id)
    granted = alice.grant_permission(experiment.id, "Read", email="bob@example.org")
    assert Permission(bob_id, "Read") in granted
    assert bob.get_experiment(experiment.id).id == experiment.id
    with pytest.raises(PermissionDeniedError) as denied:
        bob.create_drift(experiment.id, "model-1")
    assert denied.value.status == 403
    assert denied.value.code == "forbidden"
    alice.grant_permission(experiment.id, "Edit", entity=bob_id)
    assert bob.create_drift(experiment.id, "model-1").created_by == bob_id
    after = alice.revoke_permission(experiment.id, bob_id)
    assert bob_id not in {p.entity for p in after}
    assert alice.list_permissions(experiment.id) == after


def test_error_tree_mapping(alice: Client, experiment: Experiment) -> None:
    with pytest.raises(NotFoundError) as missing:
        alice.get_experiment(str(uuid.uuid4()))
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    with pytest.raises(ConflictError):
        alice.create_experiment(experiment.name)

    with pytest.raises(ValidationError) as invalid:
        alice.search_experiments({"$where": "sleep(1000)"})
    assert invalid.value.status == 422
    assert invalid.value.errors, "422 answers list the offending fields"

    with pytest.raises(ValidationError) as too_big:
        alice.search_experiments(page_size=1000)
    assert too_big.value.errors[0].field == "page_size"

    drift = alice.create_drift(experiment.id, "m", job_status="Completed")
    with pytest.raises(ConflictError):
        alice.replace_drift(experiment.id, drift.id, "m", job_status="Running")
    for error in (missing.value, invalid.value):
        assert isinstance(error, DriftMonitorError)


def test_anonymous_reads_public_but_writes_need_a_token(
    alice: Client, make_client: Callable[..., Client]
) -> None:
    public = alice.create_experiment(unique("public"), public=True)
    private = alice.create_experiment(unique("private"))
    anonymous = make_client(None)
    assert anonymous.find_experiment(public.name).id == public.id
    with pytest.raises(ExperimentNotFound):
        anonymous.find_experiment(private.name)
    with pytest.raises(ConfigurationError, match="DRIFT_MONITOR_TOKEN") as no_token:
        anonymous.create_experiment(unique())
    assert isinstance(no_token.value.__cause__, AuthenticationError)


def test_invalid_token_is_an_authentication_error(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(None, token="not-a-valid-token")
    with pytest.raises(AuthenticationError) as error:
        client.get_user()
    assert error.value.status == 401
