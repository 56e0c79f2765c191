"""Export and import of the whole database as versioned JSON lines (``drift-monitor-server
export`` / ``import``), for backups and moves between MongoDB-compatible servers.

The file format is described in :mod:`drift_backend.backup.fileformat`; ``dump`` writes it
and ``restore`` reads it back.
"""

from drift_backend.backup.dump import ExportSummary, export_database
from drift_backend.backup.fileformat import FORMAT, VERSION, BackupError
from drift_backend.backup.restore import ImportSummary, import_database

__all__ = [
    "FORMAT",
    "VERSION",
    "BackupError",
    "ExportSummary",
    "ImportSummary",
    "export_database",
    "import_database",
]
