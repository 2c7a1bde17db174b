#!/usr/bin/env bash
# Makes sure the panel's tools are here: Node.js (20.19 or newer) and npm, and with
# `--browser` Debian's Chromium for the browser tests. Missing ones are installed from the OS
# packages (as root, or with sudo). No browser is ever downloaded by npm.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=()
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
fi
if [ "${1:-}" = "--browser" ] && [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    packages+=(chromium)
fi
if [ "${#packages[@]}" -gt 0 ]; then
    echo "panel-tools: installing ${packages[*]} from the OS packages" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# Vite needs Node.js 20.19 or newer.
version=$(node --version | sed 's/^v//')
major=${version%%.*}
minor=$(echo "$version" | cut -d. -f2)
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
    echo "panel-tools: Node.js $version is too old for the panel's build (20.19 or newer is needed);" >&2
    echo "  install a newer one (for example Debian 13's nodejs, or the nodejs.org binaries)." >&2
    exit 1
fi
