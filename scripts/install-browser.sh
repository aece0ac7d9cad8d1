#!/usr/bin/env bash
# Installs what the dashboard's browser test drives: Debian's headless Chromium and its
# ChromeDriver (WebDriver), and CJK fonts so the Chinese pages render in screenshots.
# Idempotent: does nothing when they are there. Needs root and Debian's package registry.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing chromium, chromium-driver and fonts-noto-cjk needs root (apt-get); run: sudo $0" >&2
    exit 1
fi
echo "installing chromium, chromium-driver and fonts-noto-cjk from Debian …" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-noto-cjk fontconfig >&2
