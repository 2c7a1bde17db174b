#!/usr/bin/env bash
# Runs every test of the workspace against a real local PostgreSQL (started or installed first).
# Each database test gets a fresh database of its own, created and dropped by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# A superuser connection to an existing database: tests create their own databases from it.
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# Node.js and npm (the reference GraphQL clients of the protocol tests, the panel) and
# Debian's Chromium (the panel's browser tests), installed from the OS packages when missing.
scripts/panel-tools.sh --browser
if [ ! -d tests/clients/node_modules ]; then
    npm ci --no-audit --no-fund --prefix tests/clients
fi
# The panel: its type check, lint and unit tests, then its build (which the binary under test
# embeds) when it is missing or stale.
scripts/build-panel.sh
(cd panel && npm run --silent check && npm run --silent lint && npm run --silent test)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# The S3-compatible server the media tests start (`moto_server`, from PyPI), installed into a
# virtual environment of its own when it is not on PATH (python3-venv from the OS packages).
if ! command -v moto_server >/dev/null; then
    venv=${XDG_CACHE_HOME:-$HOME/.cache}/ledgerdesk/moto
    if [ ! -x "$venv/bin/moto_server" ]; then
        if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "moto[server]"
    fi
    export PATH="$venv/bin:$PATH"
fi
exec cargo test --workspace --locked "$@"
