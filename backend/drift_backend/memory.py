"""Keep freed memory for the next check instead of giving it back to the kernel at once.

A wide check moves buffers of tens of megabytes through every process (a 10,000 x 1,000
batch is 80 MB: the upload, its sorted values, the stored chunks, the statistics' input).
glibc hands each allocation that large to the kernel as a fresh mapping (``mmap``) and
unmaps it on ``free``, so every copy touches new pages: one page fault per 4 KiB, about
0.1 s of CPU per 80 MB, several times per check in each process. Taken from the heap and
kept there after ``free``, the next check reuses the same pages without faulting.

Three ``mallopt`` settings do that: large blocks from the heap (``M_MMAP_THRESHOLD``), free
memory at the heap's top kept up to ``retain_bytes`` (``M_TRIM_THRESHOLD``), and one arena
(``M_ARENA_MAX``): each thread's own arena is a 64 MiB mapping that cannot hold an 80 MB
block, which would go back to ``mmap``. The cost is resident memory: up to ``retain_bytes``
freed memory stays mapped between checks. Not glibc (musl, macOS): nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
MIB = 1024 * 1024

#: ``mallopt`` parameters (glibc ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks below this come from the heap (glibc accepts up to half its largest heap size on
#: some versions and refuses more: then blocks above 32 MiB stay mappings, as before).
_HEAP_BLOCKS_UP_TO = 1 << 30


def retain_freed_memory(retain_bytes: int) -> bool:
    """Tune this process's allocator as described above; call it early, before threads
    start. ``retain_bytes`` 0 leaves the allocator alone. True when glibc took the settings."""
    if retain_bytes <= 0:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    limit = min(retain_bytes, 2**31 - 1)
    taken = [
        mallopt(_M_ARENA_MAX, 1),
        mallopt(_M_TRIM_THRESHOLD, limit),
        mallopt(_M_MMAP_THRESHOLD, min(_HEAP_BLOCKS_UP_TO, limit)),
    ]
    if not all(taken):
        log.info("the allocator took %d of 3 memory settings", sum(1 for t in taken if t))
    return all(taken)
