#!/usr/bin/env bash
# The Debian package, as a DBA installs it: built from this checkout (pg_test/package.sh), then
# installed with apt-get where only Debian's postgresql-MAJOR provides PostgreSQL (every file a
# source build installed is removed first), a preloaded server with CREATE EXTENSION and a smoke
# test, removed with apt-get, and nothing of it left behind.
#
#   pg_test/package_test.sh [MAJOR]                  (default 15; root)
#   pg_test/package_test.sh MAJOR --contents-only    where no Debian postgresql-MAJOR can be installed
#                                                    (14, 16, 17, 18 come only from PGDG): build it and
#                                                    check its control file, paths and library
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
v=${1:-15}
contents_only=0; [ "${2:-}" = --contents-only ] && contents_only=1
SCENARIO="package pg$v"
PASSED=0; FAILED=0; FAILURES=()
trap cleanup_all EXIT
libdir=/usr/lib/postgresql/$v/lib
extdir=/usr/share/postgresql/$v/extension
leftovers() { ls "$libdir"/pgops* "$extdir"/pgops* 2>/dev/null; }

say "package pg$v: build"
deb=$(bash "$here/package.sh" "$v") || { not_ok "the package builds"; echo "package pg$v: $PASSED passed, $FAILED failed"; exit 1; }
ok "the package builds: $(basename "$deb")"
check_match "its control file: name, version, Depends on the server package of this major" \
  "$(dpkg-deb -f "$deb" Package Version Depends | tr '\n' ' ')" "^Package: pgops-pg$v Version: [0-9.]+ Depends: postgresql-$v, libc6 $"
check_match "its files are in Debian's paths for PostgreSQL $v" "$(dpkg-deb -c "$deb" | awk '{print $6}' | tr '\n' ' ')" \
  "\./usr/lib/postgresql/$v/lib/pgops\.so .*\./usr/share/postgresql/$v/extension/pgops--[0-9.]+\.sql .*\./usr/share/postgresql/$v/extension/pgops\.control"

# The library is a PostgreSQL module that needs nothing the server package does not bring.
tmpd=$(mktemp -d); dpkg-deb -x "$deb" "$tmpd"
so=$tmpd/usr/lib/postgresql/$v/lib/pgops.so
dynamic=$(readelf -d "$so" 2>&1) || dynamic="readelf failed: $dynamic"
check_match "its library is a shared object that links only the C runtime (libc6, which it Depends on)" \
  "$(printf '%s\n' "$dynamic" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')" \
  '^((ld-linux-x86-64|libc|libgcc_s|libm)\.so\.[0-9]+ )+$'
check_match "its library is a PostgreSQL module (magic block, _PG_init) with pgops' background workers" \
  "$(nm -D --defined-only "$so" 2>&1 | awk '{print $3}' | grep -E '^(Pg_magic_func|_PG_init|pgops_launcher_main)$' | LC_ALL=C sort | tr '\n' ' ')" \
  '^Pg_magic_func _PG_init pgops_launcher_main $'
default_version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$tmpd/usr/share/postgresql/$v/extension/pgops.control" 2>/dev/null)
check "its control file's default_version ($default_version) has its install script" \
  test -n "$default_version" -a -s "$tmpd/usr/share/postgresql/$v/extension/pgops--$default_version.sql"
rm -rf "$tmpd"
if [ $contents_only = 1 ]; then
  echo
  if [ ${#FAILURES[@]} -gt 0 ]; then printf 'failed checks:\n'; printf '  %s\n' "${FAILURES[@]}"; fi
  echo "package pg$v: $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ]; exit
fi

say "package pg$v: only postgresql-$v installed, then apt-get install"
rm -f "$libdir"/pgops* "$extdir"/pgops*
check_eq "no pgops file is left from a source build" "$(leftovers)" ""
check "postgresql-$v is the Debian package" deb_installed "postgresql-$v"
out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" 2>&1)
check_match "apt-get install ./$(basename "$deb")" "$(dpkg-query -W -f '${Status}' "pgops-pg$v" 2>&1)" "install ok installed"
check_eq "dpkg owns the library" "$(dpkg -S "$libdir/pgops.so" 2>&1 | cut -d: -f1)" "pgops-pg$v"

C=pkg
if cluster_init $C "$v" "shared_preload_libraries = 'pgops'" && cluster_start $C; then
  check_eq "CREATE EXTENSION pgops with preload" "$(sql $C postgres "CREATE EXTENSION pgops; SELECT extversion FROM pg_extension WHERE extname = 'pgops'" 2>&1)" \
    "$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$PGOPS_ROOT/Cargo.toml" | head -1)"
  wait_sql $C postgres "SELECT state LIKE 'idle (pgops%' FROM pgops.workers WHERE name = 'pgops launcher'" 15
  check_match "the launcher runs from the packaged library" \
    "$(sql $C postgres "SELECT state FROM pgops.workers WHERE name = 'pgops launcher'")" "^idle \(pgops"
  check_eq "smoke: roles planned and applied, a database created, the views answer" \
    "$({ sql $C postgres "SELECT pgops.load_roles('[{\"name\": \"pkg_user\", \"login\": true}]');
                        SELECT count(*) FROM pgops.apply_roles() WHERE status = 'applied';
                        INSERT INTO pgops.database_spec (name, owner) VALUES ('pkg_db', 'pkg_user')" 2>&1
       sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases()" 2>&1
       sql $C postgres "SELECT (SELECT count(*) > 0 FROM pgops.table_bloat) AND (SELECT count(*) > 0 FROM pgops.database_age)
                               AND (SELECT count(*) FROM pgops.plan_databases()) = 0" 2>&1; } | tr '\n' ' ')" "1 1 applied t "
  cluster_stop $C fast
else
  not_ok "a server with the packaged library starts"
fi

say "package pg$v: apt-get remove"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "pgops-pg$v" >/dev/null 2>&1
check_match "the package is gone" "$(dpkg-query -W -f '${Status}' "pgops-pg$v" 2>&1)" "no packages found|not-installed"
check_eq "nothing of it is left behind" "$(leftovers; ls -d /usr/share/doc/pgops-pg$v 2>/dev/null)" ""
check "postgresql-$v is still installed" deb_installed "postgresql-$v"

# Put the source build back for whatever runs next.
install_pgops "$v" >/dev/null 2>&1 || not_ok "the source build reinstalls"
echo
if [ ${#FAILURES[@]} -gt 0 ]; then printf 'failed checks:\n'; printf '  %s\n' "${FAILURES[@]}"; fi
echo "package pg$v: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
