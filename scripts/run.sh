#!/usr/bin/env bash
# Runs Ledgerdesk on the local PostgreSQL (started or installed first). The database
# `ledgerdesk` is created and migrated on start. Extra arguments go to `ledgerdesk serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ledgerdesk}
exec cargo run --release --locked --bin ledgerdesk -- serve "$@"
