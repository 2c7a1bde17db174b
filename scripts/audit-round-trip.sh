#!/usr/bin/env bash
# Export → import round trip of a generated log: generates EVENTS events (default 1,000,000)
# into the database `rt_src`, anchors and exports it (with the customers' keys), imports it into
# `rt_dst`, rebuilds both sides' read models, runs `audit verify` on both, and compares every
# table of the two databases row by row (a digest of each table's rows in text form).
# Expected differences: the source's own audit records of its export and replay (two events
# more on that side), and the import's bookkeeping (keys' creation times, where the anchors end
# in the new log, the projections' checkpoints). Both databases are dropped first.
#
# LEDGERDESK: the binary (default: a release build through cargo). PG: the server's base URL.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
if [[ -n "${LEDGERDESK:-}" ]]; then run=("$LEDGERDESK"); else
  cargo build --release --locked --bin ledgerdesk
  run=("${CARGO_TARGET_DIR:-target}/release/ledgerdesk")
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$PG/rt_src dst=$PG/rt_dst
psql "$PG/postgres" -qc "drop database if exists rt_src" -c "drop database if exists rt_dst"
step() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s"; }
step generate "${run[@]}" generate --events "$EVENTS" --database-url "$src"
step anchor "${run[@]}" audit anchor --database-url "$src" --anchor-key-file "$work/anchor.key"
step export "${run[@]}" export --database-url "$src" -o "$work/log.jsonl" --keys "$work/keys.jsonl"
step import "${run[@]}" import --database-url "$dst" --keys "$work/keys.jsonl" "$work/log.jsonl"
step "replay (source)" "${run[@]}" replay --database-url "$src"
step "replay (import)" "${run[@]}" replay --database-url "$dst"
for side in src dst; do
  url=$PG/rt_$side
  "${run[@]}" audit verify --database-url "$url" --anchor-key-file "$work/anchor.key" 2>/dev/null \
    | tail -1 | tee "$work/verify-$side"
  psql "$url" -Atc "select table_name from information_schema.tables where table_schema = 'public'
      and table_type = 'BASE TABLE' and table_name not in ('events', '_sqlx_migrations') order by 1" \
    | while read -r table; do
        echo "$table $(psql "$url" -Atc "select count(*) || ' ' || coalesce(md5(string_agg(r::text,
          E'\n' order by r::text)), '-') from \"$table\" r")"
      done > "$work/tables-$side"
done
echo "== tables that differ (count and digest of their rows):"
diff "$work/tables-src" "$work/tables-dst" || true
