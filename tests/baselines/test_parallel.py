"""Per-column work on the shared thread pool: results in input order, nesting runs inline."""

from __future__ import annotations

import threading

from drift_backend.baselines.parallel import map_columns


def test_results_keep_the_input_order() -> None:
    assert map_columns(lambda x: x * x, range(50)) == [x * x for x in range(50)]
    assert map_columns(str, []) == []


def test_work_runs_on_the_column_threads() -> None:
    names = set(map_columns(lambda _: threading.current_thread().name, range(20)))
    assert all(name.startswith("drift-columns") for name in names)


def test_nested_calls_run_inline_instead_of_waiting_on_the_pool() -> None:
    def outer(i: int) -> list[int]:
        # Every pool thread blocked here waiting on the pool would deadlock.
        return map_columns(lambda j: i * 100 + j, range(5))

    assert map_columns(outer, range(8)) == [[i * 100 + j for j in range(5)] for i in range(8)]
