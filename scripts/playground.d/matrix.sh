# shellcheck shell=bash
# `scripts/playground matrix`: every certificate the playground holds (and none at all) is
# tried against every port of the running cluster with the real clients, and a table says
# who was let in and, for a refusal, which layer decided:
#   no:TLS   the TLS handshake (a CN outside PD's or TiDB's status list, a CA the server
#            does not trust, no certificate where one is required)
#   no:CN    TiKV's per-request check (UNAUTHENTICATED: Common name check fail ...)
#   no:403   an HTTP 403 after the handshake (TiKV status paths, PD's peer RPCs)
#   no:1045  the MySQL login (the account's REQUIRE), no:3159 plaintext refused
# Needs common.sh.

# Columns: a key, a header, and what is asked there.
PG_MX_COLS=(pd peer kv kvst dbst myroot myapp)
declare -A PG_MX_HEAD=([pd]="PD" [peer]="PD-peer" [kv]="TiKV-KV" [kvst]="TiKV-st"
    [dbst]="TiDB-st" [myroot]="My-root" [myapp]="My-app")
declare -A PG_MX_WHAT=(
    [pd]="PD client port: GET /pd/api/v1/health"
    [peer]="PD peer port: POST /pd/peer/v1/vote with an empty body (400 = let in)"
    [kv]="TiKV KV port: tikv-ctl status (openssl s_client without a cert)"
    [kvst]="TiKV status port: GET /config (CN-checked; 404 = let in; /status, /metrics are open to the CA)"
    [dbst]="TiDB status port: GET /status"
    [myroot]="TiDB MySQL port as root (no REQUIRE): mariadb -e 'SELECT 1'"
    [myapp]="TiDB MySQL port as app (REQUIRE SUBJECT '/CN=app-client'): mariadb -e 'SELECT 1'"
)

# The callers: a cert prefix under D ("" for none).
PG_MX_CALLERS=(certs/pd-server certs/tikv-server certs/tidb-server certs/client certs/intruder
    mysql-certs/client "")

# pg_mx_https WHO URL [curl args]: prints STATUS|MESSAGE for an HTTPS call as WHO.
pg_mx_https() {
    local who=$1 url=$2 code rc=0 body
    shift 2
    local cert=()
    [ -n "$who" ] && cert=(--cert "$D/$who.pem" --key "$D/$who-key.pem")
    body=$(mktemp)
    code=$(curl -sS --max-time 5 --cacert "$CERTS/ca.pem" "${cert[@]}" -o "$body" \
        -w '%{http_code}' "$@" "$url" 2>"$body.err") || rc=$?
    local msg
    msg=$(tr '\n' ' ' <"$body.err"; tr '\n' ' ' <"$body" | cut -c1-160)
    rm -f "$body" "$body.err"
    case $rc:$code in
    7:* | 28:*) echo "down|$msg" ;;
    0:2?? | 0:400 | 0:404) echo "yes|HTTP $code" ;;
    0:403) echo "403|HTTP 403 $msg" ;;
    0:*) echo "other|HTTP $code $msg" ;;
    *) echo "tls|$msg" ;;
    esac
}

# pg_mx_kv WHO PORT: TiKV's KV port, with tikv-ctl (or openssl without a cert).
pg_mx_kv() {
    local who=$1 port=$2 out rc=0
    if [ -z "$who" ]; then
        out=$(timeout 5 openssl s_client -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.pem" \
            -brief </dev/null 2>&1)
        if grep -q "CONNECTION ESTABLISHED" <<<"$out"; then echo "yes|handshake completed"
        elif grep -q "errno=111" <<<"$out"; then echo "down|openssl: connection refused"; else
            echo "tls|openssl: $(grep -m1 -o 'alert [a-z ]*' <<<"$out" | head -n 1)"; fi
        return
    fi
    out=$("$PG_BIN/tikv-ctl" --host="127.0.0.1:$port" --ca-path="$CERTS/ca.pem" \
        --cert-path="$D/$who.pem" --key-path="$D/$who-key.pem" status 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then echo "yes|tikv-ctl status answered"
    elif grep -q UNAUTHENTICATED <<<"$out"; then echo "cn|$out"
    elif grep -qi 'not reachable\|connection refused' <<<"$out"; then echo "down|$out"
    else echo "tls|$out"; fi
}

# pg_mx_mysql WHO USER: a login over TLS (the client trusts the MySQL CA).
pg_mx_mysql() {
    local who=$1 user=$2 out rc=0 cert=()
    [ -n "$who" ] && cert=(--ssl-cert="$D/$who.pem" --ssl-key="$D/$who-key.pem")
    out=$(mariadb -h 127.0.0.1 -P "$MY" -u "$user" --connect-timeout=5 \
        --ssl-ca="$MYCERTS/ca.pem" --ssl-verify-server-cert "${cert[@]}" -N -e 'SELECT 1' 2>&1) || rc=$?
    out=$(tr '\n' ' ' <<<"$out")
    case $rc:$out in
    0:*) echo "yes|logged in" ;;
    *"ERROR 2026"*) echo "tls|$out" ;;
    *"ERROR 1045"*) echo "1045|$out" ;;
    *"ERROR 3159"*) echo "3159|$out" ;;
    *"ERROR 2002"* | *"ERROR 2003"*) echo "down|$out" ;;
    *) echo "other|$out" ;;
    esac
}

# pg_mx_probe_caller WHO: COL|INSTANCE|STATUS|MESSAGE lines for every port.
pg_mx_probe_caller() {
    local who=$1 i
    for ((i = 0; i < NPD; i++)); do
        echo "pd|pd$((i + 1))|$(pg_mx_https "$who" "https://127.0.0.1:${PD_C[$i]}/pd/api/v1/health")"
        echo "peer|pd$((i + 1))|$(pg_mx_https "$who" "https://127.0.0.1:${PD_P[$i]}/pd/peer/v1/vote" -X POST -d '{}')"
    done
    for ((i = 0; i < NTIKV; i++)); do
        echo "kv|tikv$((i + 1))|$(pg_mx_kv "$who" "${KV[$i]}")"
        echo "kvst|tikv$((i + 1))|$(pg_mx_https "$who" "https://127.0.0.1:${ST[$i]}/config")"
    done
    echo "dbst|tidb|$(pg_mx_https "$who" "https://127.0.0.1:$TS/status")"
    echo "myroot|tidb|$(pg_mx_mysql "$who" root)"
    echo "myapp|tidb|$(pg_mx_mysql "$who" app)"
}

# pg_mx_cell FILE COL: one cell: the status all instances agree on, else "mixed".
pg_mx_cell() {
    local s
    s=$(awk -F'|' -v c="$2" '$1 == c { print $3 }' "$1" | sort -u)
    case $s in
    *$'\n'*) echo mixed ;;
    yes | down | other) echo "$s" ;;
    "") echo "?" ;;
    *) echo "no:${s^^}" ;;
    esac
}

pg_mx_label() { # CN of the caller's cert, or (none)
    if [ -z "$1" ]; then echo "(none)"; else pg_cert_cn "$D/$1.pem" | tr ' ' '_'; fi
}

pg_matrix() {
    local tmp who n=0 c line
    pg_running_pid >/dev/null || pg_warn "no playground process runs on $D; probing its ports anyway"
    tmp=$(mktemp -d) || pg_die "mktemp failed"
    for who in "${PG_MX_CALLERS[@]}"; do
        pg_mx_probe_caller "$who" >"$tmp/$n" &
        n=$((n + 1))
    done
    wait
    pg_step "Auth matrix of $D: each caller's certificate (rows) against each port (columns)"
    line=$(printf '%-16s %-11s' "caller CN" "expires")
    for c in "${PG_MX_COLS[@]}"; do line+=$(printf ' %-8s' "${PG_MX_HEAD[$c]}"); done
    pg_say "$line"
    n=0
    for who in "${PG_MX_CALLERS[@]}"; do
        line=$(printf '%-16s %-11s' "$(pg_mx_label "$who")" "$([ -n "$who" ] && pg_cert_end "$D/$who.pem" || echo -)")
        for c in "${PG_MX_COLS[@]}"; do line+=$(printf ' %-8s' "$(pg_mx_cell "$tmp/$n" "$c")"); done
        pg_say "$line"
        n=$((n + 1))
    done
    pg_mx_legend
    pg_mx_reasons "$tmp"
    rm -rf "$tmp"
}

pg_mx_legend() {
    local c
    pg_say ""
    pg_say "yes = let in; no:TLS = refused in the TLS handshake; no:CN = TiKV's per-request CN check"
    pg_say "(UNAUTHENTICATED); no:403 = HTTP 403 after the handshake; no:1045 = MySQL login refused"
    pg_say "(the account's REQUIRE); mixed = the instances differ (see below). Ports asked:"
    for c in "${PG_MX_COLS[@]}"; do pg_say "  $(printf '%-8s' "${PG_MX_HEAD[$c]}") ${PG_MX_WHAT[$c]}"; done
    pg_say "Certificates: $(for w in "${PG_MX_CALLERS[@]}"; do [ -n "$w" ] && printf '%s=%s.pem ' "$(pg_mx_label "$w")" "$w"; done)"
}

# What each refusal looked like: one line per port and message, with the callers that got it.
pg_mx_reasons() {
    local tmp=$1 n=0 who
    pg_say ""
    pg_say "Why (what each refused client was told):"
    for who in "${PG_MX_CALLERS[@]}"; do
        awk -F'|' -v who="$(pg_mx_label "$who")" -v OFS='\t' '$3 != "yes" {
            msg = $4; for (i = 5; i <= NF; i++) msg = msg "|" $i
            gsub(/  +/, " ", msg); sub(/ +$/, "", msg); print $1, msg, who }' "$tmp/$n"
        n=$((n + 1))
    done | awk -F'\t' '
        { k = $1 "\t" $2
          if (!(k in who)) { who[k] = $3; order[++n] = k }
          else if (index(", " who[k] ", ", ", " $3 ", ") == 0) who[k] = who[k] ", " $3 }
        END { for (i = 1; i <= n; i++) { split(order[i], p, "\t")
              printf "  %-8s %s:\n           %s\n", p[1], who[order[i]], substr(p[2], 1, 180) } }' |
        sed 's/^  pd      /  PD      /; s/^  peer    /  PD-peer /; s/^  kv      /  TiKV-KV /;
             s/^  kvst    /  TiKV-st /; s/^  dbst    /  TiDB-st /; s/^  myroot  /  My-root /;
             s/^  myapp   /  My-app  /'
}
