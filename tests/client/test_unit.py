"""Pieces that need no server: serialisation, settings, JWT expiry, the error parser."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
from decimal import Decimal

import httpx2
import numpy as np
import pytest
from drift_monitor import (
    APIError,
    ConfigurationError,
    ServerError,
    Settings,
    ValidationError,
    to_jsonable,
)
from drift_monitor._auth import jwt_expiry
from drift_monitor._exceptions import error_from_response


def test_numpy_values_become_plain_json() -> None:
    value = {
        "f": np.float32(0.5),
        "i": np.int64(7),
        "b": np.bool_(True),
        "arr": np.array([[1, 2], [3, 4]]),
        "nested": [{"x": np.float64("nan")}, (np.inf, -np.inf)],
        np.int32(3): "numpy key",
        "plain_nan": math.nan,
        "dec": Decimal("1.5"),
    }
    out = to_jsonable(value)
    assert out == {
        "f": 0.5,
        "i": 7,
        "b": True,
        "arr": [[1, 2], [3, 4]],
        "nested": [{"x": None}, [None, None]],
        "3": "numpy key",
        "plain_nan": None,
        "dec": 1.5,
    }
    assert type(out["i"]) is int
    assert type(out["b"]) is bool
    json.dumps(out, allow_nan=False)


def test_unknown_objects_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="cannot send a object"):
        to_jsonable({"x": object()})


def test_import_needs_no_numpy_and_no_settings() -> None:
    code = (
        "import sys, drift_monitor; "
        "assert 'numpy' not in sys.modules; "
        "print(drift_monitor.to_jsonable({'a': (1, float('inf'))}))"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no DRIFT_MONITOR_URL: importing must still work
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "{'a': [1, None]}"


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "DRIFT_MONITOR_URL": "https://drift.example.org/",
            "DRIFT_MONITOR_TIMEOUT": "2.5",
            "DRIFT_MONITOR_RETRIES": "0",
        }
    )
    assert settings.api_url == "https://drift.example.org/api/v1"
    assert (settings.timeout, settings.retries, settings.verify) == (2.5, 0, True)
    assert (
        Settings.from_env({"DRIFT_MONITOR_URL": "http://x", "DRIFT_MONITOR_INSECURE": "1"}).verify
        is False
    )


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "DRIFT_MONITOR_URL"),
        ({"DRIFT_MONITOR_URL": "drift.example.org"}, "http"),
        ({"DRIFT_MONITOR_URL": "http://x", "DRIFT_MONITOR_TIMEOUT": "soon"}, "TIMEOUT"),
        ({"DRIFT_MONITOR_URL": "http://x", "DRIFT_MONITOR_RETRIES": "-1"}, "RETRIES"),
        ({"DRIFT_MONITOR_URL": "http://x", "DRIFT_MONITOR_INSECURE": "maybe"}, "INSECURE"),
    ],
)
def test_bad_settings_raise_configuration_error(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Settings.from_env(env)


def test_missing_ca_bundle_is_a_configuration_error(tmp_path: object) -> None:
    settings = Settings.from_env(
        {"DRIFT_MONITOR_URL": "https://x", "DRIFT_MONITOR_CA_BUNDLE": "/nonexistent/ca.pem"}
    )
    with pytest.raises(ConfigurationError, match="CA bundle"):
        _ = settings.verify


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1234}).encode()).rstrip(b"=").decode()
    assert jwt_expiry(f"e30.{payload}.sig") == 1234.0
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.!!!.c") is None


def test_error_parser_handles_json_and_html() -> None:
    request = httpx2.Request("GET", "http://x/api/v1/y")
    body = {
        "code": "validation_error",
        "status": 422,
        "message": "name: too long",
        "errors": [{"field": "name", "reason": "too long"}],
    }
    error = error_from_response(httpx2.Response(422, json=body, request=request))
    assert isinstance(error, ValidationError)
    assert error.errors[0].field == "name"
    assert str(error) == "422 validation_error: name: too long"
    html = error_from_response(
        httpx2.Response(502, text="<html>Bad gateway</html>", request=request)
    )
    assert isinstance(html, ServerError)
    assert "Bad gateway" in html.message
    teapot = error_from_response(httpx2.Response(418, request=request))
    assert type(teapot) is APIError
