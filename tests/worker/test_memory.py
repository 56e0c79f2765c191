"""``drift_backend.memory``: with the allocator tuned, a large buffer freed and allocated
again reuses the same pages (no page faults); 0 leaves the allocator alone."""

from __future__ import annotations

import subprocess
import sys

from drift_backend.memory import retain_freed_memory

#: In a fresh process: allocate 64 MiB, free it, allocate it again; print the page faults
#: the second allocation took.
_PROBE = """
import resource, sys
from drift_backend.memory import MIB, retain_freed_memory
tuned = retain_freed_memory(int(sys.argv[1]) * MIB)
size = 64 * MIB
block = b"x" * size
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = b"y" * size
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(retain_mb: int) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(retain_mb)], capture_output=True, text=True, check=True
    )
    tuned, faults = out.stdout.split()
    return tuned == "1", int(faults)


def test_a_freed_large_buffer_is_reused_without_page_faults() -> None:
    tuned, faults = _faults(512)
    assert tuned
    assert faults < 1_000  # 64 MiB of fresh pages would be 16,384 faults
    # Left alone, glibc maps fresh pages for it (16,384 faults here; fewer where transparent
    # huge pages back the mapping, so no bound on that side).
    untouched, _ = _faults(0)
    assert not untouched


def test_zero_leaves_the_allocator_alone() -> None:
    assert retain_freed_memory(0) is False
