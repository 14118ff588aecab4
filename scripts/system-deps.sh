#!/usr/bin/env bash
# Installs the Debian packages Courier needs when they are missing:
# fonts with Thai and Arabic glyphs (WeasyPrint) and poppler-utils (pdftotext, for tests).
set -euo pipefail

missing=()
# Captured first: `fc-list | grep -q` can fail under pipefail when grep exits early.
fonts=$(fc-list 2>/dev/null || true)
libs=$(ldconfig -p 2>/dev/null || true)
grep -q "NotoSansThai" <<<"$fonts" || missing+=(fonts-noto-core)
grep -qi "tlwg" <<<"$fonts" || missing+=(fonts-thai-tlwg)
# WeasyPrint subsets fonts with HarfBuzz when present (much faster than its fontTools path).
grep -q "libharfbuzz-subset.so.0" <<<"$libs" || missing+=(libharfbuzz-subset0)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
# The dashboard's browser tests drive Debian's Chromium (Playwright's own download is not used).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "Installing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "error: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fc-cache -f >/dev/null 2>&1 || true
