#!/usr/bin/env bash
# Build and install the TimescaleDB extension (Apache edition) for the local PostgreSQL 15.
#
# Debian bookworm ships PostgreSQL 15 but no TimescaleDB package, so we build Debian's own source
# package (suite trixie) against postgresql-server-dev-15. The deb-src line lives in a separate sources
# list, so the system's binary packages stay bookworm's. Safe to run twice: it does nothing when the
# extension is already installed.
set -euo pipefail

TSDB_VERSION="${TSDB_VERSION:-2.19.3}"
PG_MAJOR="${PG_MAJOR:-15}"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_config_bin="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
ext_dir() { "$pg_config_bin" --sharedir 2>/dev/null | sed 's|$|/extension|'; }

if [ -x "$pg_config_bin" ] && [ -f "$(ext_dir)/timescaledb--${TSDB_VERSION}.sql" ]; then
  say "TimescaleDB ${TSDB_VERSION} is already installed for PostgreSQL ${PG_MAJOR}"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: install PostgreSQL ${PG_MAJOR} and TimescaleDB >= 2 yourself and set DATABASE_URL"

say "Installing PostgreSQL ${PG_MAJOR} and build tools (apt-get)"
src_list=/etc/apt/sources.list.d/beidou-timescaledb-src.list
if [ ! -f "$src_list" ]; then
  echo "deb-src http://deb.debian.org/debian trixie main" | sudo_if_needed tee "$src_list" >/dev/null
fi
sudo_if_needed apt-get update -q -o Dpkg::Progress-Fancy=0 | tail -n 3
sudo_if_needed apt-get install -y -q --no-install-recommends \
  "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" postgresql-client cmake libssl-dev \
  build-essential dpkg-dev ca-certificates | grep -E '^(Setting up|E:)' || true
[ -x "$pg_config_bin" ] || die "PostgreSQL ${PG_MAJOR} did not install; see the apt-get output above"

build_root="${BEIDOU_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beidou/timescaledb-build}"
mkdir -p "$build_root"
cd "$build_root"
if ! ls -d timescaledb-"${TSDB_VERSION}"*/ >/dev/null 2>&1; then
  say "Fetching Debian's timescaledb ${TSDB_VERSION} source package"
  apt-get source -q --download-only "timescaledb=${TSDB_VERSION}*" >/dev/null 2>&1 \
    || apt-get source -q --download-only timescaledb >/dev/null \
    || die "apt-get source timescaledb failed: check that deb-src for trixie is reachable ($src_list)"
  dsc=$(ls timescaledb_*.dsc | head -n 1)
  dpkg-source -x "$dsc" >/dev/null
fi
src=$(ls -d timescaledb-*/ | head -n 1)
cd "$src"
say "Building TimescaleDB (Apache edition) in $build_root/$src (about 30 s)"
rm -rf build
./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
  -DUSE_TELEMETRY=OFF -DPG_CONFIG="$pg_config_bin" >build.log 2>&1 || { tail -n 30 build.log; die "cmake configure failed (log: $PWD/build.log)"; }
make -C build -j"$(nproc)" >>build.log 2>&1 || { tail -n 30 build.log; die "build failed (log: $PWD/build.log)"; }
sudo_if_needed make -C build install >>build.log 2>&1 || { tail -n 30 build.log; die "install failed (log: $PWD/build.log)"; }
say "TimescaleDB installed: $(ls "$(ext_dir)"/timescaledb.control)"
