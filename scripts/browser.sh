#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the portal's browser test
# (tests/tests/e2e/portal_browser.rs) when they are missing. Sourced by
# scripts/test.sh and run by .ci/run; safe to run again.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  return 0 2>/dev/null || exit 0
fi
echo "== installing chromium and chromium-driver (Debian packages) for the browser test"
if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo -n); fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
/usr/bin/chromedriver --version
