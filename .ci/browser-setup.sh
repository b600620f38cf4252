#!/usr/bin/env bash
# Installs what the browser tests of the web site need (tests/browser): Debian's
# Chromium and its driver, Node.js with npm, and the npm packages pinned by
# tests/browser/package-lock.json (playwright-core, axe-core). No browser is
# downloaded by npm: playwright-core drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

packages=(chromium chromium-driver nodejs npm fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node from elsewhere (e.g. NodeSource) brings its own npm: keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) filtered+=("$p") ;; esac
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== browser tests: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
test -x /usr/bin/chromium || { echo "FATAL: /usr/bin/chromium is missing after install" >&2; exit 1; }

echo "== browser tests: npm ci (tests/browser)"
cd tests/browser
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
