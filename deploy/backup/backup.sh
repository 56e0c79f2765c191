#!/bin/sh
# The backup service of compose.prod.yml: every DRIFT_BACKUP_INTERVAL_SECONDS, export the
# whole database (drift-monitor-server export: one snapshot, gzip) to DRIFT_BACKUP_DIR and
# delete exports older than DRIFT_BACKUP_RETENTION_DAYS. `drift-backup once` makes one now.
set -eu
dir=${DRIFT_BACKUP_DIR:-/backups}
interval=${DRIFT_BACKUP_INTERVAL_SECONDS:-86400}
retention=${DRIFT_BACKUP_RETENTION_DAYS:-14}

backup() {
  file="$dir/drift-monitor-$(date -u +%Y%m%dT%H%M%SZ).jsonl.gz"
  # The export writes FILE.partial and renames it when complete: retention and restores
  # only ever see whole files.
  if drift-monitor-server export "$file"; then
    find "$dir" -maxdepth 1 -name 'drift-monitor-*.jsonl.gz' -mtime "+$retention" \
      -print -delete
  else
    echo "backup failed; the previous exports are kept" >&2
    return 1
  fi
}

mkdir -p "$dir"
if [ "${1:-}" = "once" ]; then
  backup
  exit $?
fi
while true; do
  backup || true
  sleep "$interval"
done
