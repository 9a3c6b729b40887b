# Shared by every scenario in this directory (sourced; not a scenario itself).
# A scenario starts its own small cluster in a temp dir ($W in what it prints), breaks one thing
# on purpose, shows the command lines, what the client printed and what each daemon logged
# (trimmed), checks that the outcome is the expected one and that the good case works in the
# same setup, explains why and how to fix it, and ends with `verdict`: exit 0 when every check
# held. Processes and files are removed whatever happens (tests/integration/lib.sh's traps).
#
#   title   "what is broken" "what is expected"      header
#   step    TEXT                                      a section
#   run     CMD...                                    shows and runs CMD (output trimmed)
#   expect_refused WHAT REGEX CMD...                  CMD fails, output matches REGEX
#   expect_served  WHAT REGEX CMD...                  CMD succeeds (output matches REGEX if given)
#   expect_output  WHAT REGEX                        the last run's output also matches REGEX
#   expect_output_lacks WHAT STRING                  ... and does not contain STRING
#   expect_log     WHAT NAME REGEX                    $W/NAME.log or .out has a matching line
#   wait_log       SECONDS NAME REGEX                 waits until it has one
#   explain "why..." "fix..."                         2-3 lines
#   verdict                                           stops everything, exits 0/1
#
# Cluster helpers (free loopback ports, certificates from tests/integration/lib.sh):
#   certs           the cluster set, a TiKV-Control cert, cipher files (lib.sh's make_*)
#   mysql_certs     the MySQL-client set ($MYCERTS)
#   pd_up [ALLOWED_CN_TOML]                 PD_C, PD_URL; PDCTL=(pd-ctl -u URL --cacert CA)
#   tikv_up NAME CONFIG / tikv_down NAME   KV[NAME], ST[NAME] (ports kept across restarts)
#   tikv_cmd NAME CONFIG                    TIKV_CMD=(tikv-server ...) to run in the foreground
#   tidb_up NAME CONFIG                     MY[NAME], TS[NAME]
#   tikvctl NAME CERT_PREFIX                TIKVCTL=(tikv-ctl --host=... with that cert)

# shellcheck shell=bash disable=SC2034
# (SC2034: the arrays and ports set here are used by the scenarios that source this file.)
TISIM_TOP=${TISIM_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export TISIM_BIN=${TISIM_BIN:-${TISIM_BUILD_DIR:-$TISIM_TOP/build}/bin}
# A Ctrl-C before lib.sh has set its traps (it makes the temp dir first) ends the scenario
# right after, through them.
trap 'SCN_STOP=1' INT TERM
# shellcheck source=../../tests/integration/lib.sh
. "$TISIM_TOP/tests/integration/lib.sh"
[ -n "${SCN_STOP:-}" ] && exit 130

SCN=$(basename "$0" .sh)
W=$WORK
declare -A KV ST MY TS DPID
if { [ -t 1 ] || [ -n "${TISIM_SCENARIO_COLOR:-}" ]; } && [ -z "${NO_COLOR:-}" ]; then
    BOLD=$'\033[1m'; DIM=$'\033[2m'; OFF=$'\033[0m'
else
    BOLD=""; DIM=""; OFF=""
fi

# --- presentation

# short TEXT...: the text with the temp dir written $W and the binaries' directory dropped.
short() { sed -e "s#$BIN/##g" -e "s#$W#\$W#g" <<<"$*"; }

title() {
    echo "${BOLD}=== $SCN: $1${OFF}"
    echo "expected: $2"
    echo "${DIM}(W=$W: certificates, configs, data and logs; removed at the end)${OFF}"
}
step() { printf '\n%s-- %s%s\n' "$BOLD" "$*" "$OFF"; }
note() { echo "   $*"; }

# trimmed FILE [MAX_LINES]: FILE's lines (condensed), each cut to 240 characters, at most
# MAX_LINES (8).
trimmed() {
    local n total max=${2:-8}
    total=$(grep -c '' "$1")
    n=0
    while { IFS= read -r line || [ -n "$line" ]; } && [ "$n" -lt "$max" ]; do
        line=$(short "$line")
        [ "${#line}" -gt 240 ] && line="${line:0:237}..."
        echo "   | $line"
        n=$((n + 1))
    done < <(condensed <"$1")
    [ "$total" -gt "$max" ] && echo "   | ... ($((total - max)) more lines)"
    return 0
}

# condensed: log lines without their timestamp; a handshake JSON line (common/log.c) also
# without its component and role, and cut after its reason.
condensed() {
    sed -E -e 's/^\[[0-9/]+ [0-9:.]+ [+0-9:]+\] //' \
        -e 's/^\{"time":"[^"]*",("level":"[A-Z]+"),"component":"[^"]*",("event":"[a-z_]+"),"role":"[^"]*",/{\1,\2,/' \
        -e 's/,"version":.*$/, ...}/'
}

# --- running things

# shown CMD...: the command line as a shell would take it back (arguments quoted when needed).
shown() {
    local a out=""
    for a in "$@"; do
        if [[ $a =~ ^[][A-Za-z0-9_@%+=:,./{}\"-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
    done
    short "${out# }"
}

# run CMD...: prints the command line, runs it (external commands under a 20 s timeout, so a
# daemon that was expected to refuse to start cannot hang the scenario), shows the output.
# Sets RC; the output stays in $W/last.out.
run() {
    echo "\$ $(shown "$@")"
    RC=0
    if [ "$(type -t "$1")" = function ]; then
        "$@" >"$W/last.out" 2>&1 || RC=$?
    else
        timeout -k 2 "${SCN_CMD_TIMEOUT:-20}" "$@" >"$W/last.out" 2>&1 || RC=$?
    fi
    trimmed "$W/last.out" "${SCN_LINES:-6}"
    [ "$RC" -ne 0 ] && echo "   (exit status $RC)"
    return 0
}

matches() { [ -z "$1" ] || grep -Eq -- "$1" "$W/last.out"; }

expect_refused() {
    local what=$1 re=$2
    shift 2
    run "$@"
    if [ "$RC" -eq 0 ]; then
        fail "$what (it succeeded)"
    elif [ "$RC" -ge 124 ] && [ "$RC" -le 137 ]; then
        fail "$what (no answer: timed out)"
    elif ! matches "$re"; then
        fail "$what (output does not match /$re/)"
    else
        pass "$what"
    fi
}

expect_served() {
    local what=$1 re=$2
    shift 2
    run "$@"
    if [ "$RC" -ne 0 ]; then
        fail "$what (exit status $RC)"
    elif ! matches "$re"; then
        fail "$what (output does not match /$re/)"
    else
        pass "$what"
    fi
}

# expect_output WHAT REGEX: the output of the last `run` also matches REGEX.
expect_output() {
    if matches "$2"; then pass "$1"; else fail "$1 (output does not match /$2/)"; fi
}

# expect_output_lacks WHAT STRING: the output of the last `run` does not contain STRING.
expect_output_lacks() {
    if grep -qF -- "$2" "$W/last.out"; then fail "$1 (it does)"; else pass "$1"; fi
}

# log_has NAME REGEX: a line of $W/NAME.log (or NAME.out, the daemon's stderr) matches.
log_has() { cat "$W/$1.log" "$W/$1.out" 2>/dev/null | grep -Eq -- "$2"; }

# expect_log WHAT NAME REGEX: shows the last two matching lines of NAME's log; passes if any.
expect_log() {
    local what=$1 name=$2 re=$3
    echo "   ${DIM}$name.log:${OFF}"
    cat "$W/$name.log" "$W/$name.out" 2>/dev/null | grep -E -- "$re" | tail -n 2 | condensed \
        >"$W/lines.out"
    if [ -s "$W/lines.out" ]; then
        trimmed "$W/lines.out" 2
        pass "$what"
    else
        echo "   | (no line matches /$re/)"
        fail "$what"
    fi
}

# wait_log SECONDS NAME REGEX: until NAME's log has a matching line (1 if it never did).
wait_log() { wait_until "$1" log_has "$2" "$3"; }

explain() {
    printf '\n%sWhy:%s %s\n%sFix:%s %s\n' "$BOLD" "$OFF" "$1" "$BOLD" "$OFF" "$2"
}

verdict() {
    stop_all    # first: a daemon's sanitizer report or crash counts in the result
    echo
    if [ "$FAILED" -eq 0 ]; then
        echo "${BOLD}RESULT $SCN: as expected ($PASSED checks)${OFF}"
    else
        echo "${BOLD}RESULT $SCN: NOT as expected ($FAILED of $((PASSED + FAILED)) checks failed)${OFF}"
    fi
    finish
}

# swap SRC DST: replaces DST by a copy of SRC with a rename (as a rotation should).
swap() { cp "$1" "$2.new" && mv -f "$2.new" "$2"; }

# --- the cluster

certs() {
    if ! { make_pki && make_tikv_certs; } >/dev/null; then
        fail "make the certificates"
        verdict
    fi
}
mysql_certs() { make_mysql_certs || { fail "make the MySQL-client certificates"; verdict; }; }

# newcert NAME CN [tisim-certs cert options...]: $CERTS/NAME.pem and NAME-key.pem from the CA.
newcert() {
    local name=$1 cn=$2
    shift 2
    "$BIN/tisim-certs" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" --cn "$cn" \
        --out-cert "$CERTS/$name.pem" --out-key "$CERTS/$name-key.pem" "$@" >/dev/null
}

# pd_up [ALLOWED_CN_TOML]: one TLS PD with the guide's snippet and that list.
pd_up() {
    PD_C=$(free_port); PD_P=$(free_port)
    PD_URL=https://127.0.0.1:$PD_C
    pd_config "$W/pd.toml" "${1:-[\"TiKV-Server\", \"TiDB-Server\", \"PD-Control\"]}"
    start_pd pd "$PD_C" "$PD_P" "$W/pd.toml" || { fail "pd-server starts"; verdict; }
    DPID[pd]=$LAST_PID
    PDCTL=("$BIN/pd-ctl" -u "$PD_URL" --cacert "$CERTS/ca.pem")
}

pd_restart() {
    stop_pid "${DPID[pd]}"
    start_pd pd "$PD_C" "$PD_P" "$W/pd.toml" || { fail "pd-server restarts"; verdict; }
    DPID[pd]=$LAST_PID
}

# tikv_up NAME CONFIG: a store (data in $W/NAME.data), on the same ports when restarted.
tikv_up() {
    [ -n "${KV[$1]:-}" ] || { KV[$1]=$(free_port); ST[$1]=$(free_port); }
    start_tikv "$1" "$PD_C" "${KV[$1]}" "${ST[$1]}" "$2" || { fail "tikv-server $1 starts"; verdict; }
    DPID[$1]=$LAST_PID
}
tikv_down() { stop_pid "${DPID[$1]}"; }

# tikv_cmd NAME CONFIG: the command line that starts store NAME in the foreground.
tikv_cmd() {
    [ -n "${KV[$1]:-}" ] || { KV[$1]=$(free_port); ST[$1]=$(free_port); }
    TIKV_CMD=("$BIN/tikv-server" --pd "127.0.0.1:$PD_C" --addr "127.0.0.1:${KV[$1]}"
        --status-addr "127.0.0.1:${ST[$1]}" --data-dir "$W/$1.data" --config "$2")
}

tidb_up() {
    [ -n "${MY[$1]:-}" ] || { MY[$1]=$(free_port); TS[$1]=$(free_port); }
    start_tidb "$1" "$PD_C" "${MY[$1]}" "${TS[$1]}" "$2" || { fail "tidb-server $1 starts"; verdict; }
    DPID[$1]=$LAST_PID
}

# use_cert CONFIG CERT_PREFIX: the daemon config's own certificate becomes CERTS/<prefix>.pem.
use_cert() {
    sed -i -E -e "s#^(cert-path|cluster-ssl-cert) = .*#\1 = \"$CERTS/$2.pem\"#" \
        -e "s#^(key-path|cluster-ssl-key) = .*#\1 = \"$CERTS/$2-key.pem\"#" "$1"
}

# dir_sum DIR: one checksum over every file's path and bytes (to show a dir left untouched).
dir_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs md5sum | md5sum | cut -c1-32); }

# tikvctl NAME CERT_PREFIX: TIKVCTL=(tikv-ctl --host=... with CERTS/<prefix>.pem).
tikvctl() {
    TIKVCTL=("$BIN/tikv-ctl" --host="127.0.0.1:${KV[$1]}" --ca-path="$CERTS/ca.pem"
        --cert-path="$CERTS/$2.pem" --key-path="$CERTS/$2-key.pem")
}
