#!/usr/bin/env bash
# Generates production secret files in this folder (0600), never overwriting existing ones.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
make_secret() {
  local name=$1 value=$2
  if [ -e "$name" ]; then echo "keep     $name (exists)"; return; fi
  printf '%s' "$value" > "$name"
  echo "created  $name"
}
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
make_secret mongodb_root_password "$(random)"
make_secret mongodb_app_password "$(random)"
make_secret mongodb_url "mongodb://drift:$(cat mongodb_app_password)@mongodb:27017/drift_monitor?authSource=drift_monitor"
# The bearer token Prometheus sends to the backend's /metrics (docs/metrics.md).
make_secret metrics_token "$(random)"
