#!/usr/bin/env bash
# Generates production secret files in this folder (0600), never overwriting existing ones.
# The dashboard's OIDC client secret comes from your identity provider: write it yourself to
# secrets/dashboard_client_secret (see README.md beside this script).
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
# A replica set's members authenticate to each other with a shared key (6..1024 base64 chars).
keyfile() { python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(756)).decode())'; }
make_secret mongodb_root_password "$(random)"
make_secret mongodb_app_password "$(random)"
make_secret mongodb_keyfile "$(keyfile)"
make_secret mongodb_url "mongodb://drift:$(cat mongodb_app_password)@mongodb:27017/drift_monitor?authSource=drift_monitor&replicaSet=rs0"
make_secret metrics_token "$(random)"
make_secret grafana_admin_password "$(random)"
if [ ! -e dashboard_client_secret ]; then
  echo "missing  dashboard_client_secret: write the dashboard's client secret from your OIDC provider there"
fi
