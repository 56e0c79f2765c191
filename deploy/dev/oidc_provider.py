"""The development OIDC provider of compose.yml (oidc-provider-mock) with the sandbox users,
as `make run` starts it (drift_backend.devstack.services.start_oidc_provider)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from drift_backend.devstack.sandbox import load_identities

SANDBOX = Path(os.environ.get("DRIFT_SANDBOX_DIR", "/app/sandbox"))


def main() -> None:
    port = os.environ.get("OIDC_PORT", "9400")
    argv = ["oidc-provider-mock", "--host", "0.0.0.0", "--port", port]
    for user in load_identities(SANDBOX)["users"]:
        argv += ["--user-claims", json.dumps(user)]
    bin_dir = Path(sys.executable).parent
    os.execv(bin_dir / "oidc-provider-mock", argv)  # noqa: S606 (fixed argv, no shell)


if __name__ == "__main__":
    main()
