# Shared driver for integration scenarios: sourced by each tests/integration/*.sh.
# Gives a temp dir, free loopback ports, daemons that are always stopped, and checks that
# count. Every scenario ends with `finish`, which prints "N passed, N failed".
set -uo pipefail

BIN=${TISIM_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build/bin" && pwd)}
WORK=""
PIDS=()
PASSED=0
FAILED=0

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [ "$FAILED" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 15 lines)"
            tail -n 15 "$f"
        done
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tisim-it.XXXXXX") # after the trap: an interrupt removes it

pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# Stops the daemons, then fails the scenario if a sanitizer (ASan/UBSan/LSan build) or a
# crash left its mark in any daemon's output.
stop_all() {
    local pid f
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    PIDS=()
    for f in "$WORK"/*.out; do
        [ -f "$f" ] || continue
        if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|Segmentation fault|Aborted' "$f"; then
            fail "no memory error or crash in $(basename "$f" .out)"
            grep -E -A12 'Sanitizer|runtime error' "$f" | head -n 30 | sed 's/^/      /'
        fi
    done
}

finish() {
    stop_all
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# A port nobody listens on, below the kernel's ephemeral range (where outgoing connections
# take their local ports, which would make a later bind fail) and away from the defaults.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
            USED_PORTS="${USED_PORTS:-} $p"
            echo "$p"
            return
        fi
    done
}

# run_bg NAME CMD...: start a daemon, its output in $WORK/NAME.out; pid in $LAST_PID.
run_bg() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# wait_port PORT [PID [NAME]]: until something accepts on 127.0.0.1:PORT (30 s at most: the
# sanitizer build under a parallel ctest is slow). With PID: 1 at once when that process has
# exited, and NAME's output (WORK/NAME.out) is shown, so a daemon that failed says why.
wait_port() {
    local i
    for i in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
            [ -n "${3:-}" ] && tail -n 5 "$WORK/$3.out" | sed 's/^/      /' >&2
            return 1
        fi
        sleep 0.1
    done
    echo "      nothing listens on 127.0.0.1:$1 after 30 s" >&2
    return 1
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# expect SUCCEED|FAIL DESCRIPTION PATTERN CMD...: runs CMD, output in $WORK/last.out; passes
# when CMD succeeded (or failed, as asked) and its output matches the extended regex PATTERN.
expect() {
    local want=$1 what=$2 pattern=$3 rc=0 why=""
    shift 3
    "$@" >"$WORK/last.out.tmp" 2>&1 || rc=$? # (a command may read the last output)
    mv -f "$WORK/last.out.tmp" "$WORK/last.out"
    if [ "$want" = SUCCEED ] && [ "$rc" -ne 0 ]; then
        why=" (exit code $rc)"
    elif [ "$want" = FAIL ] && [ "$rc" -eq 0 ]; then
        why=" (command succeeded)"
    elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$WORK/last.out"; then
        why=" (output does not match /$pattern/)"
    fi
    if [ -z "$why" ]; then
        pass "$what"
        return
    fi
    fail "$what$why"
    sed 's/^/      /' "$WORK/last.out" | grep -vE '^      [A-Za-z0-9+/=]{40,}$' | tail -n 20
}

# check DESCRIPTION CMD...: CMD exits 0.
check() { local what=$1; shift; expect SUCCEED "$what" '' "$@"; }
# check_fails DESCRIPTION PATTERN CMD...: CMD exits non-zero with output matching PATTERN
# (the error a user would read).
check_fails() { expect FAIL "$@"; }
# check_output DESCRIPTION PATTERN CMD...: CMD exits 0 with output matching PATTERN.
check_output() { expect SUCCEED "$@"; }

# The cluster certificate set, plus the single certs the scenarios need.
make_pki() {
    local dir=$WORK/certs
    "$BIN/tisim-certs" pki --out "$dir" >/dev/null || return 1
    "$BIN/tisim-certs" cert --ca-cert "$dir/ca.pem" --ca-key "$dir/ca-key.pem" --cn PD-Control \
        --out-cert "$dir/pd-control.pem" --out-key "$dir/pd-control-key.pem" >/dev/null || return 1
    "$BIN/tisim-certs" ca --out-cert "$dir/other-ca.pem" --out-key "$dir/other-ca-key.pem" \
        >/dev/null || return 1
    "$BIN/tisim-certs" cert --ca-cert "$dir/other-ca.pem" --ca-key "$dir/other-ca-key.pem" \
        --cn PD-Control --out-cert "$dir/other-client.pem" --out-key "$dir/other-client-key.pem" \
        >/dev/null || return 1
    "$BIN/tisim-certs" cert --ca-cert "$dir/ca.pem" --ca-key "$dir/ca-key.pem" --cn PD-Control \
        --expired --out-cert "$dir/expired-client.pem" --out-key "$dir/expired-client-key.pem" \
        >/dev/null || return 1
    CERTS=$dir
}

# pd_config FILE ALLOWED_CN_TOML: PD's [security] snippet from TiDB's TLS guide, with real paths.
pd_config() {
    cat >"$1" <<TOML
[security]
# Path of file that contains list of trusted SSL CAs. If set, following four settings shouldn't be empty
cacert-path = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format.
cert-path = "$CERTS/pd-server.pem"
# Path of file that contains X509 key in PEM format.
key-path = "$CERTS/pd-server-key.pem"
cert-allowed-cn = $2
TOML
}

# start_pd NAME CLIENT_PORT PEER_PORT CONFIG [EXTRA FLAGS...]: a TLS PD; waits for its port.
start_pd() {
    local name=$1 cport=$2 pport=$3 conf=$4
    shift 4
    run_bg "$name" "$BIN/pd-server" --name "$name" --data-dir "$WORK/$name.data" \
        --client-urls "https://127.0.0.1:$cport" --peer-urls "https://127.0.0.1:$pport" \
        --config "$conf" --log-file "$WORK/$name.log" "$@"
    wait_port "$cport" "$LAST_PID" "$name"
}

# pdctl URL CERT_PREFIX ARGS...: pd-ctl with CERTS/<prefix>.pem and -key.pem.
pdctl() {
    local url=$1 who=$2
    shift 2
    "$BIN/pd-ctl" -u "$url" --cacert "$CERTS/ca.pem" --cert "$CERTS/$who.pem" \
        --key "$CERTS/$who-key.pem" "$@"
}

# --- TiKV

# make_tikv_certs: a TiKV-Control client cert and two cipher files (cipher-file-256 and
# other-cipher-file, from tikv-ctl random-hex) in $WORK, after make_pki.
make_tikv_certs() {
    "$BIN/tisim-certs" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" \
        --cn TiKV-Control --out-cert "$CERTS/tikv-control.pem" \
        --out-key "$CERTS/tikv-control-key.pem" >/dev/null || return 1
    "$BIN/tikv-ctl" random-hex --len 256 >"$WORK/cipher-file-256" || return 1
    "$BIN/tikv-ctl" random-hex --len 256 >"$WORK/other-cipher-file"
}

# tikv_config FILE CIPHER_FILE_OR_EMPTY: TiKV's [security] snippet of TiDB's TLS guide, with
# real paths (and the cipher-file line when one is given).
tikv_config() {
    cat >"$1" <<TOML
[security]
## The path for TLS certificates. Empty string means that secure connections are disabled.
# Path of file that contains list of trusted SSL CAs. If set, following four settings shouldn't be empty
ca-path = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format.
cert-path = "$CERTS/tikv-server.pem"
# Path of file that contains X509 key in PEM format.
key-path = "$CERTS/tikv-server-key.pem"
# Check the client certificate's CN. Empty means no check.
cert-allowed-cn = ["TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"]
TOML
    [ -n "$2" ] && printf '# The path of the encryption key file\ncipher-file = "%s"\n' "$2" >>"$1"
    return 0
}

# start_tikv NAME PD_PORT KV_PORT STATUS_PORT CONFIG: a store; waits for its KV port.
start_tikv() {
    run_bg "$1" "$BIN/tikv-server" --pd "127.0.0.1:$2" --addr "127.0.0.1:$3" \
        --status-addr "127.0.0.1:$4" --data-dir "$WORK/$1.data" --config "$5" \
        --log-file "$WORK/$1.log"
    wait_port "$3" "$LAST_PID" "$1"
}

# ctl PORT CERT_PREFIX ARGS...: tikv-ctl with the guide's flags and CERTS/<prefix>.pem.
ctl() {
    local port=$1 who=$2
    shift 2
    "$BIN/tikv-ctl" --host="127.0.0.1:$port" --ca-path="$CERTS/ca.pem" \
        --cert-path="$CERTS/$who.pem" --key-path="$CERTS/$who-key.pem" "$@"
}

# tikv_status STATUS_PORT: the store's GET /status (JSON), as TiKV-Control asks for it.
tikv_status() {
    curl -s --max-time 5 --cacert "$CERTS/ca.pem" --cert "$CERTS/tikv-control.pem" \
        --key "$CERTS/tikv-control-key.pem" "https://127.0.0.1:$1/status"
}

# status_num STATUS_PORT FIELD: a number of the store's /status ("key_count", "applied_index").
status_num() {
    tikv_status "$1" | grep -o "\"$2\": [0-9]*" | head -n 1 | grep -o '[0-9]*$'
}

# wait_until SECONDS CMD...: runs CMD every 0.2 s until it succeeds; 1 if it never did.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# multi_tikv_config FILE CIPHER_FILE: tikv_config with "TiKV-Server" added to cert-allowed-cn,
# as a cluster of more than one store needs (stores dial each other with that cert).
multi_tikv_config() {
    tikv_config "$1" "$2"
    sed -i 's/^cert-allowed-cn = \["TiDB-Server"/cert-allowed-cn = ["TiKV-Server", "TiDB-Server"/' "$1"
}

# --- TiDB

# make_mysql_certs: the MySQL-client certificate set, separate from the cluster's (as TiDB's
# guide has it): $MYCERTS/ca.pem, server.pem (SAN 127.0.0.1, localhost), client.pem (CN
# app-client), and other-client.pem from another CA.
make_mysql_certs() {
    local d=$WORK/mysql-certs T="$BIN/tisim-certs"
    mkdir -p "$d" || return 1
    "$T" ca --out-cert "$d/ca.pem" --out-key "$d/ca-key.pem" --cn "MySQL Client CA" >/dev/null &&
        "$T" cert --ca-cert "$d/ca.pem" --ca-key "$d/ca-key.pem" --cn tidb-mysql-server \
            --san 127.0.0.1 --san localhost --out-cert "$d/server.pem" \
            --out-key "$d/server-key.pem" >/dev/null &&
        "$T" cert --ca-cert "$d/ca.pem" --ca-key "$d/ca-key.pem" --cn app-client \
            --out-cert "$d/client.pem" --out-key "$d/client-key.pem" >/dev/null &&
        "$T" cert --ca-cert "$CERTS/other-ca.pem" --ca-key "$CERTS/other-ca-key.pem" \
            --cn app-client --out-cert "$d/other-client.pem" \
            --out-key "$d/other-client-key.pem" >/dev/null || return 1
    MYCERTS=$d
}

# tidb_config FILE [MYSQL_TLS [REQUIRE_SECURE]]: TiDB's [security] from the TLS guide (the
# cluster set), plus the MySQL-client set: MYSQL_TLS "none", "oneway" (ssl-cert/key) or
# "mutual" (also ssl-ca); REQUIRE_SECURE "true" adds require-secure-transport.
tidb_config() {
    cat >"$1" <<TOML
[security]
# Path of file that contains list of trusted SSL CAs for connection with cluster components.
cluster-ssl-ca = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format for connection with cluster components.
cluster-ssl-cert = "$CERTS/tidb-server.pem"
# Path of file that contains X509 key in PEM format for connection with cluster components.
cluster-ssl-key = "$CERTS/tidb-server-key.pem"
TOML
    case ${2:-none} in
    mutual) printf 'ssl-ca = "%s"\n' "$MYCERTS/ca.pem" >>"$1" ;&
    oneway) printf 'ssl-cert = "%s"\nssl-key = "%s"\n' "$MYCERTS/server.pem" \
        "$MYCERTS/server-key.pem" >>"$1" ;;
    esac
    [ "${3:-}" = true ] && echo 'require-secure-transport = true' >>"$1"
    return 0
}

# start_tidb NAME PD_PORT MYSQL_PORT STATUS_PORT CONFIG: a tidb-server; waits for its port.
start_tidb() {
    run_bg "$1" "$BIN/tidb-server" --store tikv --path "127.0.0.1:$2" -P "$3" --status "$4" \
        --config "$5" --log-file "$WORK/$1.log"
    wait_port "$3" "$LAST_PID" "$1"
}

# my PORT USER ARGS...: the mariadb client (its own flags follow), batch output.
my() {
    local port=$1 user=$2
    shift 2
    mariadb -h 127.0.0.1 -P "$port" -u "$user" --connect-timeout=10 "$@"
}
