#!/usr/bin/env bash
# Installs the S3-compatible server the object-store test runs against: moto's server (PyPI
# `moto[server]`, pinned) in a virtual environment under ~/.cache/shopfuse-tools/moto.
# Idempotent: does nothing when it is there. Needs python3 and PyPI.
set -euo pipefail
version="5.2.5"
venv="${SHOPFUSE_TOOLS:-$HOME/.cache/shopfuse-tools}/moto"
if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$venv/.version" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
echo "installing moto[server] $version into $venv …" >&2
rm -rf "$venv"
if ! python3 -m venv "$venv" >&2; then
    # Debian's python3 keeps venv in its own package.
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$version" >&2
echo "$version" > "$venv/.version"
