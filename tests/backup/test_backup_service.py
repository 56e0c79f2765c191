"""compose.prod.yml's backup service script (deploy/backup/backup.sh, `drift-backup` in the
image), run natively: one export now, exports past the retention deleted, newer ones kept."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from drift_backend.backup import FORMAT
from drift_backend.devstack.services import ManagedProcess

from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
DAY = 24 * 3600


async def test_backup_once_exports_and_applies_retention(
    api: Api, mongodb: ManagedProcess, tmp_path: Path
) -> None:
    await api.register("alice")
    await api.experiment("alice")
    old = tmp_path / "drift-monitor-20200101T000000Z.jsonl.gz"
    recent = tmp_path / "drift-monitor-20200102T000000Z.jsonl.gz"
    unrelated = tmp_path / "notes.txt"
    for path, age_days in ((old, 20), (recent, 3), (unrelated, 20)):
        path.write_bytes(b"")
        stamp = time.time() - age_days * DAY
        os.utime(path, (stamp, stamp))

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DRIFT_MONGODB_URL": mongodb.url,
        "DRIFT_MONGODB_DATABASE": api.settings.mongodb_database,
        "DRIFT_SECRETS_DIR": "/nonexistent",
        "DRIFT_BACKUP_DIR": str(tmp_path),
        "DRIFT_BACKUP_RETENTION_DAYS": "14",
    }
    result = subprocess.run(
        ["sh", str(ROOT / "deploy" / "backup" / "backup.sh"), "once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    new = [n for n in left if n.startswith("drift-monitor-2") and n not in (old.name, recent.name)]
    assert len(new) == 1, left
    assert old.name not in left  # past the retention
    assert recent.name in left
    assert unrelated.name in left  # only exports are ever deleted
    assert not [n for n in left if n.endswith(".partial")]
    with gzip.open(tmp_path / new[0], "rt") as lines:
        header = json.loads(next(lines))
    assert header["format"] == FORMAT
    assert "experiments" in [c["name"] for c in header["collections"]]


def test_scripts_are_executable_and_parse() -> None:
    modes = subprocess.run(
        ["git", "ls-files", "-s", "deploy", "secrets"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    mode = {line.split()[3]: line.split()[0] for line in modes}
    for script, shell in (
        ("deploy/backup/backup.sh", "sh"),
        ("deploy/mongodb/entrypoint-prod.sh", "bash"),
        ("secrets/generate.sh", "bash"),
    ):
        assert mode[script] == "100755", script  # bind-mounted or run as is
        subprocess.run([shell, "-n", str(ROOT / script)], check=True)
