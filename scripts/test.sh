#!/usr/bin/env bash
# Runs every test of the workspace against a real local PostgreSQL (started or installed first).
# Each database test gets a fresh database of its own, created and dropped by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# A superuser connection to an existing database: tests create their own databases from it.
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The reference GraphQL clients the protocol tests run (Node.js 20 or later, and npm),
# installed from the OS packages (with sudo) when missing.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/clients/node_modules ]; then
    npm ci --no-audit --no-fund --prefix tests/clients
fi
exec cargo test --workspace --locked "$@"
