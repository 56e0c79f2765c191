"""Which driver errors are an outage (503, retry later) and which are a bug (500): a retry must
never be suggested for an error the same request would only repeat."""

from __future__ import annotations

import pytest
from drift_backend.store.database import database_unavailable
from gridfs.errors import NoFile
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConfigurationError,
    CursorNotFound,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

OUTAGES = [
    ServerSelectionTimeoutError("no servers found yet"),
    NetworkTimeout("127.0.0.1:27017: timed out"),
    AutoReconnect("connection closed"),
    NotPrimaryError("not primary", {"code": 10107}),
    WaitQueueTimeoutError("pool exhausted"),
    ExecutionTimeout("operation exceeded time limit", 50),
    WTimeoutError("waiting for replication timed out", 64, {"code": 64}),
    OperationFailure("interrupted at shutdown", 11600),
    OperationFailure("host unreachable", 6),
    BulkWriteError({"writeErrors": [{"code": 50, "errmsg": "time limit"}]}),
]
BUGS = [
    DuplicateKeyError("E11000 duplicate key error", 11000),
    OperationFailure("unknown operator: $nope", 2),
    OperationFailure("bad value", 9),
    BulkWriteError({"writeErrors": [{"code": 11000, "errmsg": "duplicate"}]}),
    WriteConcernError("no such tag", 79),
    CursorNotFound("cursor id not found", 43),
    ConfigurationError("bad option"),
    NoFile("no file"),
    DocumentTooLarge("document too large"),
    ValueError("not a driver error"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_unavailable(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize("error", BUGS, ids=lambda e: type(e).__name__)
def test_errors_in_the_request_are_not(error: BaseException) -> None:
    assert not database_unavailable(error)


def test_the_driver_labels_count() -> None:
    error = OperationFailure("write conflict", 112, {"errorLabels": ["RetryableWriteError"]})
    assert database_unavailable(error)
