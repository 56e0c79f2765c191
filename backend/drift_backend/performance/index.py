"""Where each prediction id of a model is (pure: numpy, no I/O).

One entry per recorded prediction id: the prediction batch and row it was recorded in and,
once labelled, the label batch and row of its current label's joined row. Looked up by the
ids' 64-bit hashes (:func:`.columns.hash_ids`), kept sorted beside the entry each names.
About 40 bytes per id: a million predictions take some 40 MB.
"""

from __future__ import annotations

import numpy as np

_GROW = 1.5


class IdIndex:
    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)  # sorted
        self.slots = np.empty(0, dtype=np.int64)  # the entry of each hash
        self.size = 0
        self.pseq = np.empty(0, dtype=np.int64)  # prediction batch, -1: gone (expired)
        self.prow = np.empty(0, dtype=np.int32)
        self.jseq = np.empty(0, dtype=np.int64)  # label batch of the current label, -1: none
        self.jrow = np.empty(0, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The entry of each hash, -1 where absent."""
        if not len(self.hashes) or not len(hashes):
            return np.full(len(hashes), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return np.where(self.hashes[at] == hashes, self.slots[at], -1)

    def add(self, hashes: np.ndarray, pseq: int, prow: np.ndarray) -> np.ndarray:
        """New entries (hashes not indexed yet, each once); their slots."""
        n = len(hashes)
        self._reserve(self.size + n)
        slots = np.arange(self.size, self.size + n, dtype=np.int64)
        self.pseq[slots] = pseq
        self.prow[slots] = prow
        self.jseq[slots] = -1
        self.jrow[slots] = -1
        self.size += n
        order = np.argsort(hashes)
        merged_h = np.concatenate([self.hashes, hashes[order]])
        merged_s = np.concatenate([self.slots, slots[order]])
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        order = np.argsort(merged_h, kind="stable")
        self.hashes, self.slots = merged_h[order], merged_s[order]
        return slots

    def label(self, slots: np.ndarray, jseq: int, jrow: np.ndarray) -> None:
        self.jseq[slots] = jseq
        self.jrow[slots] = jrow

    def drop_unlabelled(self, pseqs: set[int]) -> int:
        """Forget the unlabelled predictions of these (expired) batches; labelled ones stay,
        their prediction now only in their joined row. How many were dropped."""
        if not pseqs or not len(self.hashes):
            return 0
        in_batches = np.isin(self.pseq[: self.size], np.fromiter(pseqs, dtype=np.int64))
        gone = in_batches & (self.jseq[: self.size] < 0)
        keep = ~gone[self.slots]
        self.hashes, self.slots = self.hashes[keep], self.slots[keep]
        self.pseq[: self.size][in_batches] = -1
        return int(gone.sum())

    def _reserve(self, n: int) -> None:
        if n <= len(self.pseq):
            return
        capacity = max(n, int(len(self.pseq) * _GROW), 1024)
        for name in ("pseq", "prow", "jseq", "jrow"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
