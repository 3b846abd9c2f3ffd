#!/usr/bin/env bash
# Everything Health Beidou needs on a fresh Debian/Ubuntu machine, installed once; safe to run again.
#   - PostgreSQL 15 and the TimescaleDB extension (built from Debian's source package when missing),
#     unless DATABASE_URL points at a server of your own;
#   - a Python virtual environment in .venv with the project and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ -z "${DATABASE_URL:-}" ]; then
  [ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
fi
# Headless Chromium drives the care page's end-to-end tests (Playwright uses this browser, never a download).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# Chinese glyphs for the care page's zh-CN labels in screenshots.
[ -d /usr/share/fonts/truetype/wqy ] || need_apt+=(fonts-wqy-zenhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get: install them yourself"
  say "Installing ${need_apt[*]} (apt-get)"
  sudo_if_needed apt-get update -q >/dev/null
  sudo_if_needed apt-get install -y -q --no-install-recommends "${need_apt[@]}" | grep -E '^(Setting up|E:)' || true
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed (found $(python3 --version))"

if [ -z "${DATABASE_URL:-}" ]; then
  bash "$ROOT/scripts/install-timescaledb.sh"
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  if [ ! -x .venv/bin/python ]; then
    say "Creating the virtual environment in .venv"
    python3 -m venv .venv || die "python3 -m venv failed: install python3-venv"
  fi
  say "Installing Python dependencies into .venv (first time: about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if ! .venv/bin/python -m pip install --progress-bar off -q -e ".[test]" >.venv/pip.log 2>&1; then
    tail -n 20 .venv/pip.log >&2
    die "pip install failed (log: .venv/pip.log): check that PyPI is reachable, then run this again"
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
say "Set-up complete"
