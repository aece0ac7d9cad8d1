#!/usr/bin/env bash
# Fetches what the dashboard embeds from the npm registry (the only place it is reachable from
# here), verifies the package tarball's checksum and unpacks the files the build includes:
#   crates/serve/web/vendor/echarts.min.js   Apache ECharts 6.1.0 (Apache-2.0), package echarts
#   crates/serve/web/vendor/LICENSE-echarts  its licence
# Idempotent: does nothing when the files are there and intact. Needs npm (build time only).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=crates/serve/web/vendor
version=6.1.0
tarball_sha=681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481
file_sha=b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0

if [ -f "$dest/echarts.min.js" ] && echo "$file_sha  $dest/echarts.min.js" | sha256sum --quiet -c - 2>/dev/null; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is needed to fetch echarts: installing Debian's npm …" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >&2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching echarts $version from the npm registry …" >&2
(cd "$tmp" && npm pack --silent "echarts@$version" >/dev/null)
echo "$tarball_sha  $tmp/echarts-$version.tgz" | sha256sum --quiet -c - || {
    echo "error: echarts-$version.tgz does not have the expected sha256 $tarball_sha; refusing to use it" >&2
    exit 1
}
tar -xzf "$tmp/echarts-$version.tgz" -C "$tmp" package/dist/echarts.min.js package/LICENSE
echo "$file_sha  $tmp/package/dist/echarts.min.js" | sha256sum --quiet -c -
mkdir -p "$dest"
cp "$tmp/package/LICENSE" "$dest/LICENSE-echarts"
# The script last: its presence is what the build checks.
cp "$tmp/package/dist/echarts.min.js" "$dest/echarts.min.js.partial"
mv "$dest/echarts.min.js.partial" "$dest/echarts.min.js"
echo "echarts $version in $dest" >&2
