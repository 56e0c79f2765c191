"""The one-shot `sandbox` service of compose.yml: the indexes and the sandbox demo data
(users alice, bob, admin; experiments with weeks of runs), once, as `make run` loads them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from drift_backend.devstack.sandbox import load_demo_data
from drift_backend.settings import load_settings
from drift_backend.store.database import connect, ensure_indexes

SANDBOX = Path(os.environ.get("DRIFT_SANDBOX_DIR", "/app/sandbox"))


async def main() -> None:
    settings = load_settings()
    issuer = settings.trusted_issuers[0]
    mongo = connect(settings.mongodb_url.get_secret_value(), timeout_seconds=30)
    try:
        db = mongo[settings.mongodb_database]
        await ensure_indexes(db)
        loaded = await load_demo_data(db, SANDBOX, issuer)
    finally:
        await mongo.close()
    print("loaded the sandbox demo data" if loaded else "sandbox demo data already loaded")


if __name__ == "__main__":
    asyncio.run(main())
