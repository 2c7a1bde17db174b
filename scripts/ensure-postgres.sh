#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on $PGHOST:$PGPORT (default 127.0.0.1:5432) for the
# user postgres without a password: starts the machine's cluster when it is stopped, installs
# PostgreSQL from the OS packages when it is missing. For development machines and CI only.
set -euo pipefail

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}

answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -h "$host" -p "$port" -q
    else
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if answers; then
    exit 0
fi

installed_now=no
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "ensure-postgres: PostgreSQL is not installed; installing it from the OS packages" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    installed_now=yes
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ "$installed_now" = yes ]; then
    # A fresh cluster asks for passwords over TCP; let local development connect from this
    # machine only as postgres (the owner: migrations) and as ledgerdesk_app (the role the
    # server runs as, which the migrations create without a password).
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    for role in postgres ledgerdesk_app; do
        as_root sed -i "1i host all $role 127.0.0.1/32 trust\nhost all $role ::1/128 trust" "$hba"
    done
fi

echo "ensure-postgres: starting PostgreSQL $version" >&2
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
if [ "$installed_now" = yes ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
fi

for _ in $(seq 1 60); do
    if answers; then
        exit 0
    fi
    sleep 0.5
done
echo "ensure-postgres: PostgreSQL does not answer on $host:$port" >&2
exit 1
