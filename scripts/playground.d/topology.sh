# shellcheck shell=bash
# `scripts/playground topology`: the live TLS links of the running playground, as text and as
# Graphviz DOT (rendered to SVG and PNG when `dot` is installed). Derived from what the
# daemons expose, nothing else:
#   - pd-ctl member/health and store: PD members, each store's state and last heartbeat;
#   - each TiKV's GET /status: its Raft role, each peer's link (up, down, refused, idle) and
#     membership, and the callers it refused ("refused_callers");
#   - TiDB's GET /status: it answers, and its connection count;
#   - the JSON tls_handshake lines every daemon writes to its log: for a connection it dialed
#     ("direction":"out") the listener's CN and the result, for one it accepted ("in") the
#     caller's CN and the result. A dialer's own CN is that of the cert its config names.
# Needs common.sh.

# pg_tp_handshakes LOG NAME: one line per link NAME dialed and per kind of caller it accepted:
#   out|NAME|PEER_ADDR|PEER_CN|RESULT|TIME|REASON|VERSION|RESUMED|N_OK|N_FAIL
#   in|NAME|ROLE|CALLER_CN|RESULT|TIME|REASON|N_OK|N_FAIL
pg_tp_handshakes() {
    [ -f "$1" ] || return 0
    grep -F '"event":"tls_handshake"' "$1" | awk -v name="$2" -v today="$(date -u +%Y/%m/%d)" '
    function get(k,   re, s) {
        re = "\"" k "\":\"([^\"\\\\]|\\\\.)*\""
        if (!match($0, re)) return ""
        s = substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5)
        gsub(/\\"/, "\"", s)
        return s
    }
    {
        dir = get("direction"); res = get("result"); t = get("time"); sub(/\.[0-9]+ \+.*/, "", t)
        if (index(t, today " ") == 1) t = substr(t, length(today) + 2)
        r = ($0 ~ /"resumed":true/) ? "resumed" : "full"
        if (dir == "out") { k = get("peer") } else { k = get("role") "|" (get("peer_cn") == "" ? "(none)" : get("peer_cn")) }
        k = dir "|" k
        if (!(k in last)) order[++n] = k
        if (dir == "out") last[k] = get("peer_cn") "|" res "|" t "|" get("reason") "|" get("version") "|" r
        else last[k] = res "|" t "|" get("reason")
        if (res == "ok") ok[k]++; else bad[k]++
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, p, "|")
            if (p[1] == "out") print "out|" name "|" p[2] "|" last[k] "|" ok[k] + 0 "|" bad[k] + 0
            else print "in|" name "|" p[2] "|" p[3] "|" last[k] "|" ok[k] + 0 "|" bad[k] + 0
        }
    }'
}

# pg_tp_names: NAME_OF[port] for every port of the playground.
pg_tp_names() {
    local i
    declare -gA NAME_OF=()
    for ((i = 0; i < NPD; i++)); do NAME_OF[${PD_C[$i]}]=pd$((i + 1)) NAME_OF[${PD_P[$i]}]=pd$((i + 1)); done
    for ((i = 0; i < NTIKV; i++)); do NAME_OF[${KV[$i]}]=tikv$((i + 1)) NAME_OF[${ST[$i]}]=tikv$((i + 1)); done
    NAME_OF[$MY]=tidb NAME_OF[$TS]=tidb
}

pg_tp_name_of() { local p=${1##*:}; echo "${NAME_OF[$p]:-$1}"; }

# JSON objects with no nested object, one a line (enough for pd-ctl's and /status's output).
pg_tp_objects() { tr -d '\n' | grep -o '{[^{}]*}'; }

# pg_tp_collect TMP: the live facts, one file each, under TMP.
pg_tp_collect() {
    local tmp=$1 i
    $(pg_pdctl_cmd) health >"$tmp/health" 2>&1
    $(pg_pdctl_cmd) member leader show 2>/dev/null | pg_json_str name >"$tmp/leader"
    $(pg_pdctl_cmd) store >"$tmp/stores" 2>&1
    $(pg_pdctl_cmd) region 1 >"$tmp/region" 2>&1
    for ((i = 0; i < NTIKV; i++)); do
        pg_curl client "https://127.0.0.1:${ST[$i]}/status" >"$tmp/tikv$((i + 1))" 2>&1
    done
    pg_curl client "https://127.0.0.1:$TS/status" >"$tmp/tidb" 2>&1
    : >"$tmp/hs"
    for ((i = 1; i <= NPD; i++)); do pg_tp_handshakes "$LOGS/pd$i.log" "pd$i" >>"$tmp/hs"; done
    for ((i = 1; i <= NTIKV; i++)); do pg_tp_handshakes "$LOGS/tikv$i.log" "tikv$i" >>"$tmp/hs"; done
    pg_tp_handshakes "$LOGS/tidb.log" tidb >>"$tmp/hs"
}

# pg_tp_nodes TMP: NAME|LABEL lines, each component with its live state.
pg_tp_nodes() {
    local tmp=$1 i name st role line
    for ((i = 0; i < NPD; i++)); do
        name=pd$((i + 1))
        if grep -q "\"https://127.0.0.1:${PD_C[$i]}\"" "$tmp/health" &&
            pg_tp_objects <"$tmp/health" | grep "127.0.0.1:${PD_C[$i]}" | grep -q '"health": true'; then
            st="healthy"
            [ "$(cat "$tmp/leader")" = "$name" ] && st="healthy, PD leader"
        else st="not answering"; fi
        echo "$name|$name PD :${PD_C[$i]}/:${PD_P[$i]} $(pg_cert_cn "$CERTS/pd-server.pem") - $st"
    done
    for ((i = 0; i < NTIKV; i++)); do
        name=tikv$((i + 1))
        line=$(pg_tp_objects <"$tmp/stores" | grep "\"address\": \"127.0.0.1:${KV[$i]}\"")
        st=$(pg_json_str state_name <<<"$line")
        role=$(sed -n '/"replication"/,$p' "$tmp/$name" | pg_json_str role)
        echo "$name|$name TiKV :${KV[$i]}/:${ST[$i]} $(pg_cert_cn "$CERTS/tikv-server.pem") - store $(grep -o '"id": [0-9]*' <<<"$line" | grep -o '[0-9]*$') ${st:-unknown to PD}, region 1 ${role:-(no /status)}"
    done
    if grep -q '"version"' "$tmp/tidb"; then
        st="answering, $(grep -o '"connections":[0-9]*' "$tmp/tidb" | grep -o '[0-9]*$') MySQL connections"
    else st="not answering"; fi
    echo "tidb|tidb TiDB :$MY/:$TS $(pg_cert_cn "$CERTS/tidb-server.pem") - $st"
}

# The CN a component presents when it dials (its config's cert).
pg_tp_own_cn() {
    case $1 in
    pd*) pg_cert_cn "$CERTS/pd-server.pem" ;;
    tikv*) pg_cert_cn "$CERTS/tikv-server.pem" ;;
    tidb) pg_cert_cn "$CERTS/tidb-server.pem" ;;
    esac
}

# pg_tp_state TMP FROM TO: what the live sources say about the link FROM -> TO.
pg_tp_state() {
    local tmp=$1 from=$2 to=$3 obj id
    case $from:$to in
    tikv*:pd*)
        obj=$(pg_tp_objects <"$tmp/stores" | grep "\"address\": \"127.0.0.1:${KV[$((${from#tikv} - 1))]}\"")
        id=$(grep -o '"id": [0-9]*' <<<"$obj" | grep -o '[0-9]*$')
        echo "store ${id:-?} $(pg_json_str state_name <<<"$obj") in PD (heartbeats)" ;;
    tikv*:tikv*)
        obj=$(sed -n '/"replication"/,$p' "$tmp/$from" | pg_tp_objects |
            grep "\"address\": \"127.0.0.1:${KV[$((${to#tikv} - 1))]}\"")
        echo "Raft link $(pg_json_str link <<<"$obj"), $(pg_json_str member <<<"$obj")$(r=$(pg_json_str reason <<<"$obj"); [ -n "$r" ] && echo ": $r")" ;;
    pd*:pd*) echo "PD peer RPCs (leader: $(cat "$tmp/leader"))" ;;
    tidb:pd*) echo "TSO, regions (TiDB exposes no link state)" ;;
    tidb:tikv*) echo "KV requests (TiDB exposes no link state)" ;;
    *) echo "" ;;
    esac
}

# pg_tp_edges TMP: EDGE lines: FROM|TO|DIALER_CN|LISTENER_CN|STATE|LAST|COLOR
pg_tp_edges() {
    local tmp=$1 kind name peer pcn res t reason ver resumed nok nfail to last color i
    while IFS='|' read -r kind name peer pcn res t reason ver resumed nok nfail; do
        [ "$kind" = out ] || continue
        to=$(pg_tp_name_of "$peer")
        if [ "$res" = ok ]; then
            last="last handshake ok $t ($ver, $resumed); $nok ok, $nfail failed"
            color=darkgreen
        else
            last="last handshake FAILED $t: $reason; $nok ok, $nfail failed"
            color=red
        fi
        echo "$name|$to|$(pg_tp_own_cn "$name")|${pcn:-?}|$(pg_tp_state "$tmp" "$name" "$to")|$last|$color"
    done <"$tmp/hs"
    # Raft peers with no handshake in the dialer's log yet (idle, or refused before TLS)
    for ((i = 1; i <= NTIKV; i++)); do
        sed -n '/"peers"/,/refused_callers/p' "$tmp/tikv$i" | pg_tp_objects | while read -r obj; do
            to=$(pg_tp_name_of "$(pg_json_str address <<<"$obj")")
            grep -q "^out|tikv$i|127.0.0.1:${KV[$((${to#tikv} - 1))]}|" "$tmp/hs" && continue
            echo "tikv$i|$to|$(pg_tp_own_cn tikv)|(not dialed)|$(pg_tp_state "$tmp" "tikv$i" "$to")|no connection dialed yet|gray"
        done
    done
}

# pg_tp_callers TMP: inbound handshakes other than cluster members' successes, summed per
# caller CN and component kind: CALLER_CN|KIND|NAMES|ROLE|N_OK|N_FAIL|LAST_RESULT|TIME|REASON
pg_tp_callers() {
    local kind name role cn res t reason nok nfail i obj
    {
        while IFS='|' read -r kind name role cn res t reason nok nfail; do
            [ "$kind" = in ] || continue
            case $cn in PD-Server | TiKV-Server | TiDB-Server) [ "$nfail" -eq 0 ] && continue ;; esac
            [ "$role" = tidb-mysql ] && cn="MySQL: $cn"
            echo "$cn|$name|$role|$nok|$nfail|$res|$t|$reason"
        done <"$1/hs"
        for ((i = 1; i <= NTIKV; i++)); do
            sed -n '/refused_callers/,$p' "$1/tikv$i" | pg_tp_objects | while read -r obj; do
                echo "$(pg_json_str cn <<<"$obj")|tikv$i|raft|0|1|refused|now|Raft messages from $(pg_json_str address <<<"$obj") refused (CN not in cert-allowed-cn)"
            done
        done
    } | awk -F'|' -v OFS='|' '
        { kind = $2; sub(/[0-9]+$/, "", kind); k = $1 "|" kind "|" $3
          if (!(k in ok)) order[++n] = k
          if (index("," names[k] ",", "," $2 ",") == 0) names[k] = names[k] (names[k] == "" ? "" : ",") $2
          ok[k] += $4; bad[k] += $5
          if (!(k in t) || $7 >= t[k]) { t[k] = $7; res[k] = $6; why[k] = $8 } }
        END { for (i = 1; i <= n; i++) { k = order[i]; split(k, p, "|")
              print p[1], p[2], names[k], p[3], ok[k], bad[k], res[k], t[k], why[k] } }'
}

pg_tp_text() {
    local tmp=$1 name label from to dcn lcn state last color cn role nok nfail res t reason
    pg_step "Components (live: pd-ctl health/store, each /status)"
    while IFS='|' read -r name label; do pg_say "  $label"; done <"$tmp/nodes"
    pg_step "TLS links between components (dialer -> listener; CN each presented; state; last result)"
    while IFS='|' read -r from to dcn lcn state last color; do
        printf '  %-6s -> %-6s %s -> %s   %s\n  %17s %s\n' "$from" "$to" "$dcn" "$lcn" "$state" "" "$last"
    done <"$tmp/edges"
    pg_step "Other callers the daemons saw (inbound handshakes in their logs, per caller CN)"
    [ -s "$tmp/callers" ] || pg_say "  (none yet)"
    while IFS='|' read -r cn kind to role nok nfail res t reason; do
        printf '  %-22s -> %-17s %3s ok, %3s refused; last %s %s%s\n' "$cn" "$to" "$nok" "$nfail" \
            "$res" "$t" "${reason:+: $reason}"
    done <"$tmp/callers"
    pg_say "  (TiKV lets any cert of the CA complete the handshake and checks the CN per request,"
    pg_say "   so a CN outside its list shows here as ok handshakes; \`matrix\` shows the refusal)"
}

# Graphviz: one cluster per component kind, components as boxes, callers seen in the logs as
# ellipses with one edge per component kind; green ok, red refused, orange both, gray idle.
pg_tp_dot() {
    local tmp=$1 name label from to dcn lcn state last color cn kind role nok nfail res t reason k
    echo 'digraph tisim_playground {'
    echo "  rankdir=TB; compound=true; newrank=true;"
    echo '  node [fontname="Helvetica", fontsize=10]; edge [fontname="Helvetica", fontsize=8];'
    for k in pd tikv tidb; do
        printf '  subgraph cluster_%s {\n    label="%s"; style=rounded; color=gray50;\n' "$k" \
            "$(pg_tp_cluster_label "$k")"
        while IFS='|' read -r name label; do
            [ "${name%%[0-9]*}" = "$k" ] || continue
            printf '    "%s" [shape=box, style=rounded, label="%s"];\n' "$name" "${label// - /\\n}"
        done <"$tmp/nodes"
        echo '  }'
    done
    while IFS='|' read -r from to dcn lcn state last color; do
        printf '  "%s" -> "%s" [color=%s, label="%s -> %s\\n%s\\n%s"];\n' "$from" "$to" "$color" \
            "$dcn" "$lcn" "${state//\"/\'}" "$(sed 's/^last handshake //; s/;.*//; s/ (TLS[^)]*)//' <<<"${last//\"/\'}")"
    done <"$tmp/edges"
    echo '  subgraph cluster_callers { label="other callers (from the logs)"; style=dashed; color=gray50;'
    cut -d'|' -f1 "$tmp/callers" | sort -u | while read -r cn; do
        printf '    "%s" [shape=ellipse];\n' "$cn"
    done
    echo '  }'
    while IFS='|' read -r cn kind to role nok nfail res t reason; do
        color=darkgreen
        [ "$nfail" -gt 0 ] && color=$([ "$nok" -gt 0 ] && echo orange || echo red)
        printf '  "%s" -> "%s" [lhead=cluster_%s, color=%s, style=dashed, label="%s ok, %s refused"];\n' \
            "$cn" "${to%%,*}" "$kind" "$color" "$nok" "$nfail"
    done <"$tmp/callers"
    echo '}'
}

# The allow-list a kind of component applies, as its cluster's label.
pg_tp_cluster_label() {
    case $1 in
    pd) echo "PD - cert-allowed-cn $(pg_conf_list "$CONF/pd1.toml" cert-allowed-cn | tr -d '"')" ;;
    tikv) echo "TiKV - cert-allowed-cn $(pg_conf_list "$CONF/tikv1.toml" cert-allowed-cn | tr -d '"')" ;;
    tidb) echo "TiDB - cluster-verify-cn $(pg_conf_list "$CONF/tidb.toml" cluster-verify-cn | tr -d '"')" ;;
    esac
}

# pg_topology [DOTFILE]: prints the text view, writes DOT (DOTFILE or DIR/topology.dot).
pg_topology() {
    local dotf=${1:-$D/topology.dot} tmp fmt
    pg_running_pid >/dev/null || pg_warn "no playground process runs on $D; showing what answers"
    tmp=$(mktemp -d) || pg_die "mktemp failed"
    pg_tp_names
    pg_tp_collect "$tmp"
    pg_tp_nodes "$tmp" >"$tmp/nodes"
    pg_tp_edges "$tmp" >"$tmp/edges"
    pg_tp_callers "$tmp" >"$tmp/callers"
    pg_tp_text "$tmp"
    pg_tp_dot "$tmp" >"$dotf" || pg_die "cannot write $dotf"
    pg_say ""
    pg_say "Graphviz: $dotf"
    if command -v dot >/dev/null; then
        for fmt in svg png; do
            dot -T"$fmt" "$dotf" -o "${dotf%.dot}.$fmt" && pg_say "rendered: ${dotf%.dot}.$fmt"
        done
    else
        pg_say "(install graphviz to render it: dot -Tsvg $dotf -o topology.svg)"
    fi
    rm -rf "$tmp"
}
