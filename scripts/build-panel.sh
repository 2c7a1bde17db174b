#!/usr/bin/env bash
# Builds the agents' web app into panel/dist (which the ledgerdesk binary embeds) when it is
# missing or older than its sources. Installs its packages (`npm ci`) when they are missing or
# the lock file changed. `--force` builds in any case.
set -euo pipefail
cd "$(dirname "$0")/../panel"

../scripts/panel-tools.sh

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi

stale=yes
if [ "${1:-}" != "--force" ] && [ -f dist/index.html ]; then
    newer=$(find src public index.html package-lock.json vite.config.ts tsconfig.json svelte.config.js tools \
        ../schema.graphql -newer dist/index.html -print -quit 2>/dev/null || true)
    [ -z "$newer" ] && stale=no
fi
if [ "$stale" = yes ]; then
    echo "build-panel: building the panel" >&2
    npm run build --silent
fi
