"""Whether a stream's caller may read an experiment right now, decided as
``GET /experiment/{id}`` decides it (``experiments.service.get_for`` at Read), and reused for
a few seconds so that a busy stream does not ask the database per event."""

from __future__ import annotations

from cachetools import TTLCache

from drift_backend.auth.caller import Caller
from drift_backend.auth.permissions import Level
from drift_backend.errors import Forbidden, NotFound, Unauthorized
from drift_backend.experiments.service import get_for
from drift_backend.store.database import Database

#: Experiments whose decision one stream keeps.
CACHED_DECISIONS = 1000


class ReadAccess:
    def __init__(self, db: Database, caller: Caller, ttl: float) -> None:
        self.db = db
        self.caller = caller
        self._decisions: TTLCache[str, bool] | None = (
            TTLCache(CACHED_DECISIONS, ttl) if ttl > 0 else None
        )

    async def allows(self, experiment_id: str) -> bool:
        if self._decisions is not None:
            known = self._decisions.get(experiment_id)
            if known is not None:
                return known
        allowed = await self.check(experiment_id)
        if self._decisions is not None:
            self._decisions[experiment_id] = allowed
        return allowed

    async def check(self, experiment_id: str) -> bool:
        try:
            await get_for(self.db, experiment_id, self.caller, Level.Read)
        except (NotFound, Forbidden, Unauthorized):
            return False
        return True
