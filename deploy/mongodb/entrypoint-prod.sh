#!/bin/bash
# MongoDB in production: authentication on (the image's entrypoint turns it on when a root
# user is configured) and a replica set, which with authentication needs a key file for
# its members. mongod refuses a key file readable by others or owned by someone else; a
# compose secret keeps the host's owner and mode, so it is copied first.
set -euo pipefail
install -m 0400 -o mongodb -g mongodb /run/secrets/mongodb_keyfile /tmp/mongodb-keyfile
exec docker-entrypoint.sh mongod --replSet rs0 --bind_ip_all --keyFile /tmp/mongodb-keyfile "$@"
