#!/usr/bin/env bash
# Runs Ledgerdesk on the local PostgreSQL (started or installed first), with the panel built
# (Node.js installed first when missing). The database `ledgerdesk` is created and migrated on
# start. Extra arguments go to `ledgerdesk serve`. The panel is at http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# The agents' web app, embedded in the binary: built when missing or stale.
scripts/build-panel.sh
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ledgerdesk}
exec cargo run --release --locked --bin ledgerdesk -- serve "$@"
