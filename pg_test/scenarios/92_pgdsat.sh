# pgops' CIS verdicts next to pgdsat 2.0's (HexaCluster's CIS PostgreSQL Benchmark tool, run on
# the database host as it is meant to be) on one scenario cluster: a mix of what passes and what
# fails. Every control both automate must agree, or have a reason below (the benchmark's wording
# decides; pgdsat's own slips are named). Prints the side-by-side table the README shows.
#
# pgdsat comes from PGOPS_PGDSAT_SRC (a release tarball or an unpacked directory), else from its
# v2.0 release on GitHub; its files are checked against the v2.0 tag's. Neither reachable: the
# comparison is skipped, saying so.
#
#   PGOPS_PGDSAT_SRC=/path/pgdsat-2.0.tar.gz pg_test/e2e.sh 15 92_pgdsat

PGDSAT_URL=https://github.com/HexaCluster/pgdsat/archive/refs/tags/v2.0.tar.gz
# sha256 of v2.0's files (tag commit f205d2d7a3debeb080c32b96d14a6f8aab85eef4)
PGDSAT_SUMS="2f294731a6610dd691ab732169899cf1813383a024f2e05b51063bdac9e66630  pgdsat
cdbac061e28bae2ed663457c0adfc6ed4c191301c108fd024255a72e98ffdd8b  lib/PGDSAT.pm
bf88a8a12a41e40b7e4845a93a6ccf94b0f6a43178b8c25a3ca832e0b442e96b  lib/PGDSAT/Labels.pm
e4824c9e00d2ef63c0a2f7b5654ff59168165e595e4d14de9e2d18e88ba94e44  lib/PGDSAT/Report.pm
b067fb8978af9bfa46fdf13c57a993539de4f54841bb2b10a628abfdf7163202  lib/PGDSAT/Messages.pm
f4e19206724524d88cf0c494097774c604ebce5a97406b6069ac85380ba8c5cf  lib/PGDSAT/Netmask.pm"

# Why pgops decides otherwise, control by control (the README's table repeats these).
PGDSAT_REASONS="1.1|pgdsat passes when any repository is configured; which are authorized is for a person on the host (pgops: n/a, what to check)
1.1.1|pgdsat reads dpkg/rpm on the host; pgops reads the package from version() and says n/a for a build that names none
1.3|needs systemd: pgops says n/a with what to check
1.4.2|pgdsat takes the server's major version from the PGDG packages it found (none for another build), so it fails PG_VERSION; pgops compares with the running server
1.5|pgdsat asks postgresql.org (no network here: FAILURE); pgops compares with its release list, dated, replaceable
1.6|a host check (profiles): pgops says n/a with the command to run
1.7|a host check (/proc as root): pgops reads the server's own environment, says n/a otherwise
1.9|pgdsat records 1.9's result under 1.8 (a slip in 2.0): its 1.9 is always SUCCESS
2.1|pgdsat reads the umask of the shell it runs in; the server sets its own (data_directory_mode): pgops says n/a, what to check
2.3|a host check (home directories): pgops says n/a
2.4|a host check (service files): pgops says n/a
3.1.1|the benchmark's rationale for 3.1, nothing to set: pgdsat says SUCCESS, pgops manual (informational)
3.1.3|pgdsat 2.0's condition fails whenever the collector is off; so does pgops
3.1.4|pgdsat passes 3.1.4 when the collector is off; pgops says n/a
3.1.26|pgdsat wants the literal GMT or UTC; pgops accepts UTC under its other names (Etc/UTC, initdb's default), as the benchmark means the zone
3.2|pgdsat records 3.2's failure under 3.1.28 (a slip in 2.0): its 3.2 is always SUCCESS; pgops fails without pgaudit
4.1|a host check (/etc/shadow): pgops says n/a
4.4|the benchmark leaves it to a person (Manual): pgops lists the login roles
4.5|Manual in the benchmark; pgops applies its rule (no superuser-owned SECURITY DEFINER function executable by PUBLIC)
4.6|Manual in the benchmark; pgops applies its rule (PUBLIC holds no write privilege on a table)
4.7|Manual in the benchmark; pgops applies its rule (policies enforced, no stray BYPASSRLS); pgdsat 2.0 looks for BYPASSRLS in the database list (a slip) and never fails
4.8|Manual in the benchmark; pgops fails without set_user in shared_preload_libraries, as pgdsat's check does
4.10|pgdsat fails on PUBLIC's USAGE of schema public (every database has it); the benchmark's remedy is revoking CREATE, which pgops checks
5.1|a host check (ps): pgops says n/a
5.3|pgdsat records every weak method under 5.4 (a slip in 2.0): its 5.3 is always SUCCESS
5.5|pgdsat counts NOLOGIN roles and superusers (whom the limit does not stop); pgops counts the login roles it applies to
5.6|pgdsat checks only when md5 or scram lines exist; pgops also counts password lines
5.7|pgdsat passes when auth_delay's setting merely exists (loaded, 0 ms); pgops wants a delay above 0; 5.10's findings also land in pgdsat's 5.7 (a slip)
5.8|pgdsat counts loopback host lines (nothing but root can listen there); 5.11's findings land in pgdsat's 5.8 (a slip)
5.9|pgdsat also fails reject lines and any IPv6 range wider than 65536 addresses; pgops ignores reject lines and allows an IPv6 /64
5.10|pgdsat records 5.10's findings under 5.7 (a slip in 2.0): its 5.10 is always SUCCESS
5.11|pgdsat records 5.11's findings under 5.8 (a slip in 2.0): its 5.11 is always SUCCESS
6.8|pgdsat also wants TLS 1.3 only and a passphrase command; the benchmark asks for TLS 1.2 or newer and hostssl lines
6.7|pgdsat runs fips-mode-setup (RHEL); pgops reads the kernel's flag, n/a where there is none
7.1|pgdsat counts superusers with REPLICATION too when they are two or more
7.3|pgdsat 2.0 does not check 7.3 (always SUCCESS); base backups live outside the server: pgops says n/a
7.5|pgdsat fails a primary (no primary_conninfo) and verify-full; pgops says n/a on a primary and accepts require, verify-ca, verify-full
8.1|pgdsat 2.0 does not check 8.1 (always SUCCESS); pgops checks pg_wal, the logs and temporary files
8.2|a host check (pgbackrest info): pgops says n/a"

pgdsat_reason() { printf '%s\n' "$PGDSAT_REASONS" | awk -F'|' -v id="$1" '($1 "") == (id "") { print $2; exit }'; }

# pgdsat_source DIR — unpacks pgdsat v2.0 into DIR and checks its files; says why not on stderr.
pgdsat_source() {
  local dir=$1 tarball src=${PGOPS_PGDSAT_SRC:-}
  mkdir -p "$dir"
  if [ -n "$src" ] && [ -d "$src" ]; then
    cp -r "$src"/. "$dir/"
  else
    if [ -n "$src" ]; then tarball=$src
    else
      tarball=$dir.tar.gz
      curl -fsSL --max-time 30 -o "$tarball" "$PGDSAT_URL" 2>/dev/null \
        || { echo "cannot download $PGDSAT_URL (set PGOPS_PGDSAT_SRC to a pgdsat v2.0 release tarball)" >&2; return 1; }
    fi
    tar -xzf "$tarball" -C "$dir" --strip-components=1 2>/dev/null || { echo "cannot unpack $tarball" >&2; return 1; }
  fi
  (cd "$dir" && printf '%s\n' "$PGDSAT_SUMS" | sha256sum -c --quiet >/dev/null 2>&1) \
    || { echo "$dir is not pgdsat v2.0 (its files differ from the tag's)" >&2; return 1; }
}

scenario_main() {
  local v=$1 C=dsat d src why out
  src=$(mktemp -d /tmp/pgops-pgdsat.XXXXXX)
  if ! why=$(pgdsat_source "$src/pgdsat" 2>&1); then
    printf '  skip    pgdsat comparison: %s\n' "$why"
    rm -rf "$src"; return 0
  fi
  for c in perl systemctl lsblk; do
    command -v $c >/dev/null || { printf '  skip    pgdsat comparison: pgdsat needs %s on PATH\n' "$c"; rm -rf "$src"; return 0; }
  done
  chmod -R a+rX "$src"

  # The scenario cluster: some of it as the benchmark wants, some not.
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "listen_addresses = '127.0.0.1'" "logging_collector = on" \
    "log_directory = 'log'" "log_connections = on" "log_disconnections = off" "log_statement = 'ddl'" "archive_mode = on" \
    "archive_command = '/bin/true'" "log_replication_commands = on" || { not_ok "initdb"; return 1; }
  d=${CL_DIR[$C]}/data
  printf 'local all postgres peer\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all dbuser_dba 0.0.0.0/0 scram-sha-256\nhost app app 10.0.0.0/8 md5\nhostnossl all all all reject\n' | as_pg tee "$d/pg_hba.conf" >/dev/null
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops; CREATE ROLE dbuser_dba SUPERUSER LOGIN; CREATE ROLE replicator LOGIN REPLICATION CONNECTION LIMIT 5;
    CREATE ROLE app LOGIN; CREATE ROLE etl BYPASSRLS" >/dev/null && sql $C postgres "CREATE DATABASE app OWNER app" >/dev/null || { not_ok "the scenario's roles"; return 1; }

  # pgdsat as its README runs it: on the host, as the server's OS user, with the server's pg_config.
  out=${CL_DIR[$C]}/pgdsat.txt
  as_pg env PATH="$(pg_bindir "$v"):$PATH" perl -I "$src/pgdsat/lib" "$src/pgdsat/pgdsat" -U postgres -h "${CL_DIR[$C]}" \
    -p "${CL_PORT[$C]}" -d postgres -D "$d" -C "$(pg_config_for "$v")" --no-pg-version-check -f text -o "$out" \
    >"${CL_DIR[$C]}/pgdsat.log" 2>&1 || { not_ok "pgdsat ran" "$(tail -5 "${CL_DIR[$C]}/pgdsat.log")"; rm -rf "$src"; return 1; }
  ok "pgdsat v2.0 ran against the scenario cluster"

  # Its summary: "3.1.20 - Ensure 'log_connections' is enabled => SUCCESS" ("(Manual)": no verdict).
  declare -A DSAT=()
  local line id verdict
  while IFS= read -r line; do
    [[ $line =~ ^([0-9]+(\.[0-9]+)*)\ -\ .*$ ]] || continue
    id=${BASH_REMATCH[1]}
    if [[ $line =~ \=\>\ (SUCCESS|FAILURE)$ ]]; then verdict=${BASH_REMATCH[1]}
    elif [[ $line == *"(Manual)" ]]; then verdict=manual
    else verdict=-; fi
    DSAT[$id]=$verdict
  done < <(sed -n '/Summary Table of security checks/,/Detailled security assessment/p' "$out")
  check "pgdsat's summary has the CIS controls" [ "${#DSAT[@]}" -ge 80 ]

  # pgops: each control's worst status (as pgops_admin would see it: a superuser here).
  declare -A MINE=() AUTO=()
  while IFS='|' read -r id verdict auto; do MINE[$id]=$verdict; AUTO[$id]=$auto; done < <(sql $C postgres "
    SELECT cis_id, CASE WHEN bool_or(status = 'fail') THEN 'fail' WHEN bool_or(status = 'unknown') THEN 'unknown'
                        WHEN bool_or(status = 'manual') THEN 'manual' WHEN bool_and(status = 'n/a') THEN 'n/a' ELSE 'pass' END,
           max(automation)
    FROM pgops.security_audit WHERE cis_id IS NOT NULL GROUP BY cis_id")

  local table=${CL_DIR[$C]}/pgdsat_table.md agree=0 differ=0 unexplained=0 both=0 host=0 mine dsat class reason
  printf '| CIS | pgdsat 2.0 | pgops | |\n|---|---|---|---|\n' > "$table"
  for id in $(printf '%s\n' "${!MINE[@]}" | sort -t. -k1,1n -k2,2n -k3,3n); do
    mine=${MINE[$id]}; dsat=${DSAT[$id]:-absent}
    case "${AUTO[$id]}:$dsat/$mine" in
      host:*) class="host: pgdsat runs it on the host; pgops says n/a and what to check" ;;
      *:SUCCESS/pass|*:FAILURE/fail|*:manual/manual|*:manual/pass) class=agree ;;
      *:SUCCESS/n/a|*:manual/n/a) class="agree (does not apply here: pgdsat says ${dsat/manual/Manual}, pgops n/a)" ;;
      *) class=differs ;;
    esac
    reason=$(pgdsat_reason "$id")
    if [[ $class == host:* ]]; then
      host=$((host + 1))
    elif [ "$class" = differs ]; then
      if [ -n "$reason" ]; then class="differs: $reason"; differ=$((differ + 1))
      else class="UNEXPLAINED"; unexplained=$((unexplained + 1)); fi
    else
      agree=$((agree + 1))
    fi
    [[ $dsat =~ SUCCESS|FAILURE ]] && [ "${AUTO[$id]}" = automated ] && both=$((both + 1))
    printf '| %s | %s | %s | %s |\n' "$id" "$dsat" "$mine" "$class" >> "$table"
  done
  echo "  pgops next to pgdsat v2.0 (PostgreSQL $v): $agree agree, $differ differ with a reason, $unexplained unexplained, $host host-only; $both automated by both"
  sed 's/^/    /' "$table"
  check_eq "every control both decide agrees, or differs for a reason the README gives" "$unexplained" 0
  cp "$table" "/tmp/pgops-pgdsat-table-pg$v.md" 2>/dev/null
  rm -rf "$src"
}
