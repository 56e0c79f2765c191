"""One scrape's reading of MongoDB: every source in turn within one deadline, shared by the
scrapes of a few seconds (a cache, and one reading at a time), and ``drift_monitor_up 0``
instead of an error when the database cannot answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import pymongo
from pymongo.errors import PyMongoError

from drift_backend.metrics import families as f
from drift_backend.metrics.families import Sample
from drift_backend.metrics.sources import SOURCES, Limits, Source
from drift_backend.settings import Settings
from drift_backend.store.database import Database, database_unavailable

log = logging.getLogger(__name__)


class Scraper:
    def __init__(
        self,
        *,
        limits: Limits,
        cache_seconds: float,
        read_timeout_seconds: float,
        sources: Sequence[Source] = SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.cache_seconds = cache_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self.sources = tuple(sources)
        self.clock = clock
        self._lock = asyncio.Lock()
        self._cached: list[Sample] | None = None
        self._read_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Scraper:
        return cls(
            limits=Limits(
                max_experiments=settings.metrics_max_experiments,
                max_models=settings.metrics_max_models,
                max_features=settings.metrics_max_features,
            ),
            cache_seconds=settings.metrics_cache_seconds,
            read_timeout_seconds=settings.metrics_read_timeout_seconds,
        )

    async def samples(self, db: Database) -> list[Sample]:
        """The readings of at most ``cache_seconds`` ago; scrapes that arrive while one
        reads wait for it rather than read again."""
        async with self._lock:
            fresh = self.clock() - self._read_at < self.cache_seconds
            if self._cached is None or not fresh:
                self._cached = await self._read(db)
                self._read_at = self.clock()
            return self._cached

    async def _read(self, db: Database) -> list[Sample]:
        started = self.clock()
        samples: list[Sample] = []
        up = 1.0
        try:
            # One deadline for all of it (the driver's own), so a slow or stopped database
            # answers within a scraper's timeout, with the process's metrics still there.
            with pymongo.timeout(self.read_timeout_seconds):
                for source in self.sources:
                    samples.extend(await source(db, self.limits))
        except PyMongoError as error:
            if not database_unavailable(error):
                raise
            log.warning("metrics: the database is unavailable: %s", error)
            samples, up = [], 0.0
        return [
            Sample(f.UP, (), up),
            Sample(f.READ_SECONDS, (), max(0.0, self.clock() - started)),
            *samples,
        ]
