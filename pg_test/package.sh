#!/usr/bin/env bash
# Builds the Debian package of pgops for one PostgreSQL major, from this checkout:
#
#   pg_test/package.sh [MAJOR]          (default 15) → target/debian/pgops-pg15_<version>_amd64.deb
#   PG_CONFIG=/usr/lib/postgresql/16/bin/pg_config pg_test/package.sh 16
#
# The package holds what `CREATE EXTENSION pgops` needs, in Debian's paths for that major
# (/usr/lib/postgresql/MAJOR/lib/pgops.so, /usr/share/postgresql/MAJOR/extension/pgops.control,
# pgops--<version>.sql and every upgrade script sql/pgops--A--B.sql), and depends on the server
# package of that major (postgresql-MAJOR). Release build unless PGOPS_PROFILE=dev.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
v=${1:-15}
profile=${PGOPS_PROFILE:-release}
# PG_CONFIG names another build of that major (PGDG's /usr/lib/postgresql/MAJOR/bin/pg_config, say).
pgc=${PG_CONFIG:-$(pg_config_for "$v")}
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$PGOPS_ROOT/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
name=pgops-pg$v
root=$PGOPS_ROOT/target/debian/$name
out=$PGOPS_ROOT/target/debian/${name}_${version}_${arch}.deb

rm -rf "$root" "$out"
(cd "$PGOPS_ROOT" && cargo pgrx package --pg-config "$pgc" --profile "$profile" \
    --no-default-features --features "pg$v" --out-dir "$root" >/dev/null)
# Debian's layout for this major, whatever prefix the pg_config used for the build has.
libdir=/usr/lib/postgresql/$v/lib
extdir=/usr/share/postgresql/$v/extension
so=$(find "$root" -name pgops.so | head -1)
staged=$(mktemp -d)
install -D -m 0644 "$so" "$staged$libdir/pgops.so"
for f in $(find "$root" -path '*/extension/*' -type f); do install -D -m 0644 "$f" "$staged$extdir/$(basename "$f")"; done
for f in "$PGOPS_ROOT"/sql/pgops--*--*.sql; do
  [ -e "$f" ] && install -D -m 0644 "$f" "$staged$extdir/$(basename "$f")"
done
strip --strip-unneeded "$staged$libdir/pgops.so" 2>/dev/null || true
rm -rf "$root"; mv "$staged" "$root"; chmod 0755 "$root"
install -d "$root/DEBIAN" "$root/usr/share/doc/$name"
install -m 0644 "$PGOPS_ROOT/README.md" "$root/usr/share/doc/$name/README.md"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: pgops developers <pgops@localhost>
Depends: postgresql-$v, libc6
Section: database
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Description: PostgreSQL operations from inside the database, for PostgreSQL $v
 pgops is a PostgreSQL extension: declarative roles and databases, pg_hba.conf rendered
 and validated from a table, bloat and XID-age views for Grafana, VACUUM FREEZE scheduled
 by a background worker, and the instance's state pushed to etcd.
 .
 Enable it with shared_preload_libraries = 'pgops' and CREATE EXTENSION pgops.
CONTROL
find "$root" -type d -exec chmod 0755 {} +
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
rm -rf "$root"
echo "$out"
