# shellcheck shell=bash
# Shared by scripts/playground's commands: the playground dir's layout, its state file
# (component counts and ports, fixed when the dir is first made), port choice, the ctl
# command lines with the shared client certificate, and small output helpers.
#
# Layout of a playground dir (--dir, default .tisim/playground):
#   certs/          the cluster set (tisim-certs pki) + intruder.pem (CN Intruder, same CA)
#   mysql-certs/    the MySQL-client set: its own CA, TiDB's server cert, app-client's cert
#   cipher-file-256 TiKV's encryption key (tikv-ctl random-hex --len 256)
#   conf/           one TOML per process (written once; edit and restart to try a change)
#   data/ logs/     each process's data dir, log file (--log-file) and stdout/stderr (.out)
#   playground.env  counts and ports;  playground.pid  the running playground's pid
#   pids            NAME PID of each daemon it started

PG_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BIN=${TISIM_BIN:-${TISIM_BUILD_DIR:-$PG_TOP/build}/bin}

pg_say() { printf '%s\n' "$*"; }
pg_step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pg_die() { printf 'playground: %s\n' "$*" >&2; exit 1; }
pg_warn() { printf 'playground: WARNING: %s\n' "$*" >&2; }

# pg_set_dir DIR: absolute paths of everything in the playground dir (the other files use them).
# shellcheck disable=SC2034
pg_set_dir() {
    mkdir -p "$1" || pg_die "cannot create $1"
    D=$(cd "$1" && pwd)
    CERTS=$D/certs
    MYCERTS=$D/mysql-certs
    CONF=$D/conf
    DATA=$D/data
    LOGS=$D/logs
    CIPHER=$D/cipher-file-256
    ENVF=$D/playground.env
    PIDF=$D/playground.pid
    PIDS_F=$D/pids
}

# --- state: counts and ports, written once per dir

# pg_load_env: reads playground.env into NPD NTIKV PD_C[] PD_P[] KV[] ST[] MY TS; 1 if none.
pg_load_env() {
    [ -f "$ENVF" ] || return 1
    # shellcheck source=/dev/null
    . "$ENVF"
    read -r -a PD_C <<<"$PG_PD_CLIENT"
    read -r -a PD_P <<<"$PG_PD_PEER"
    read -r -a KV <<<"$PG_TIKV_ADDR"
    read -r -a ST <<<"$PG_TIKV_STATUS"
    NPD=$PG_NPD NTIKV=$PG_NTIKV MY=$PG_MYSQL TS=$PG_TIDB_STATUS
}

pg_save_env() {
    cat >"$ENVF" <<EOF
# written by scripts/playground when this dir was made; its data expects these ports
PG_NPD=$NPD
PG_NTIKV=$NTIKV
PG_PD_CLIENT="${PD_C[*]}"
PG_PD_PEER="${PD_P[*]}"
PG_TIKV_ADDR="${KV[*]}"
PG_TIKV_STATUS="${ST[*]}"
PG_MYSQL=$MY
PG_TIDB_STATUS=$TS
EOF
}

# pg_need_env: for the commands that work on a made playground dir.
pg_need_env() {
    pg_load_env || pg_die "$D has no playground (no playground.env); start one with scripts/playground --dir $D"
}

# --- ports

pg_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pg_layout_default / pg_layout_base N: fill PD_C PD_P KV ST MY TS.
pg_layout_default() {
    local i
    PD_C=() PD_P=() KV=() ST=()
    for ((i = 0; i < NPD; i++)); do PD_C+=($((2379 + 2 * i))); PD_P+=($((2380 + 2 * i))); done
    for ((i = 0; i < NTIKV; i++)); do KV+=($((20160 + i))); ST+=($((20180 + i))); done
    MY=4000 TS=10080
}

pg_layout_base() {
    local b=$1 i
    PD_C=() PD_P=() KV=() ST=()
    for ((i = 0; i < NPD; i++)); do PD_C+=($((b + 2 * i))); PD_P+=($((b + 2 * i + 1))); done
    b=$((b + 2 * NPD))
    for ((i = 0; i < NTIKV; i++)); do KV+=($((b + i))); ST+=($((b + NTIKV + i))); done
    MY=$((b + 2 * NTIKV)) TS=$((b + 2 * NTIKV + 1))
}

pg_all_ports() { echo "${PD_C[@]}" "${PD_P[@]}" "${KV[@]}" "${ST[@]}" "$MY" "$TS"; }

# pg_first_busy: prints the first port of the layout something listens on; 1 if none.
pg_first_busy() {
    local p
    for p in $(pg_all_ports); do
        pg_port_busy "$p" && { echo "$p"; return 0; }
    done
    return 1
}

# pg_pick_ports [BASE]: real TiDB's defaults when all are free, else BASE.. or a free block
# below the kernel's ephemeral range; says which.
pg_pick_ports() {
    local base=${1:-} busy low
    if [ -n "$base" ]; then
        pg_layout_base "$base"
        busy=$(pg_first_busy) && pg_die "--port-base $base: port $busy is in use"
        pg_say "ports: from --port-base $base"
        return 0
    fi
    pg_layout_default
    busy=$(pg_first_busy) || { pg_say "ports: real TiDB's defaults"; return 0; }
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 50); do
        base=$((10000 + RANDOM % (low - 10000 - 64)))
        pg_layout_base "$base"
        pg_first_busy >/dev/null || {
            pg_say "ports: $busy (a default) is in use, so this playground takes $base-$((TS)) (try --port-base N to choose)"
            return 0
        }
    done
    pg_die "found no block of free ports (tried 50); pass --port-base N"
}

# --- names and ctl command lines (absolute paths, so they can be pasted anywhere)

pg_pd_endpoints() { # comma-separated host:port of every PD client URL
    local IFS=, list=() p
    for p in "${PD_C[@]}"; do list+=("127.0.0.1:$p"); done
    echo "${list[*]}"
}

pg_pdctl_cmd() { # pd-ctl with the shared client cert
    echo "$PG_BIN/pd-ctl -u https://127.0.0.1:${PD_C[0]} --cacert $CERTS/ca.pem --cert $CERTS/client.pem --key $CERTS/client-key.pem"
}
pg_tikvctl_cmd() { # tikv-ctl against store $1 (1-based)
    echo "$PG_BIN/tikv-ctl --host=127.0.0.1:${KV[$(($1 - 1))]} --ca-path=$CERTS/ca.pem --cert-path=$CERTS/client.pem --key-path=$CERTS/client-key.pem"
}
pg_tidbctl_cmd() {
    echo "$PG_BIN/tidb-ctl -u https://127.0.0.1:$TS --ca $CERTS/ca.pem --ssl-cert $CERTS/client.pem --ssl-key $CERTS/client-key.pem"
}
pg_mariadb_oneway() {
    echo "mariadb -h 127.0.0.1 -P $MY -u root --ssl-ca=$MYCERTS/ca.pem --ssl-verify-server-cert"
}
pg_mariadb_mutual() {
    echo "mariadb -h 127.0.0.1 -P $MY -u app --ssl-ca=$MYCERTS/ca.pem --ssl-verify-server-cert --ssl-cert=$MYCERTS/client.pem --ssl-key=$MYCERTS/client-key.pem"
}

# pg_curl CERT_PREFIX URL [curl args...]: curl with $CERTS/<prefix>.pem and its key.
pg_curl() {
    local who=$1 url=$2
    shift 2
    curl -sS --max-time 5 --cacert "$CERTS/ca.pem" --cert "$CERTS/$who.pem" \
        --key "$CERTS/$who-key.pem" "$@" "$url"
}

# pg_json_str KEY: the first "KEY": "value" of the JSON on stdin (pretty or one line).
pg_json_str() { grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*: *"//; s/"$//'; }

# --- certificates

pg_cert_cn() { openssl x509 -noout -subject -nameopt multiline -in "$1" 2>/dev/null |
    sed -n 's/^ *commonName *= *//p' | head -n 1; }
pg_cert_end() { # expiry as YYYY-MM-DD
    date -u -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%F 2>/dev/null
}
# pg_cert_days FILE: whole days until it expires (negative when expired).
pg_cert_days() {
    local end
    end=$(date -u -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s) || return 1
    echo $(((end - $(date +%s)) / 86400))
}

# The certificates a playground holds: FILE-PREFIX (under D) and what it is for.
PG_CERT_LIST=(
    "certs/ca|cluster CA: every component and ctl tool trusts it"
    "certs/pd-server|PD: client and peer ports, dialing other PD members"
    "certs/tikv-server|TiKV: KV and status ports, dialing PD and other stores"
    "certs/tidb-server|TiDB: dialing PD and TiKV, its status port"
    "certs/client|the ctl tools (pd-ctl, tikv-ctl, tidb-ctl) and curl"
    "certs/intruder|a cert of the cluster CA whose CN no list holds (for the matrix)"
    "mysql-certs/ca|MySQL-client CA: TiDB's ssl-ca, clients' --ssl-ca"
    "mysql-certs/server|TiDB's MySQL port (ssl-cert)"
    "mysql-certs/client|MySQL user app (REQUIRE SUBJECT '/CN=app-client')"
)

# pg_warn_expiring: a warning for each certificate valid for less than 30 more days.
pg_warn_expiring() {
    local e f days
    for e in "${PG_CERT_LIST[@]}"; do
        f=$D/${e%%|*}.pem
        [ -f "$f" ] || continue
        days=$(pg_cert_days "$f") || continue
        if [ "$days" -lt 0 ]; then
            pg_warn "${f#"$D"/} EXPIRED on $(pg_cert_end "$f")"
        elif [ "$days" -lt 30 ]; then
            pg_warn "${f#"$D"/} expires in $days days ($(pg_cert_end "$f")); renew it"
        fi
    done
}

# --- processes

# pg_alive PID NAME: PID runs and is one of ours (its command line names this dir).
pg_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$D/"
}

# pg_running_pid: the pid of the playground running on this dir; 1 if none.
pg_running_pid() {
    local pid
    [ -f "$PIDF" ] || return 1
    read -r pid <"$PIDF" || return 1
    [ -n "$pid" ] && [ "$pid" != "$$" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q playground || return 1
    echo "$pid"
}
