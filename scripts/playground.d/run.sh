# shellcheck shell=bash
# Starting, watching and stopping the playground's daemons. Every daemon is a child of the
# playground's shell (started with setpriv --pdeathsig TERM when setpriv has it, so even a
# playground killed with -9 takes them along); its NAME and PID go to the dir's pids file
# for `down`. Needs common.sh.

PG_NAMES=()
PG_PIDS=()
PG_GONE=()
PG_DEATHSIG=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
    PG_DEATHSIG=(setpriv --pdeathsig TERM --)
fi

# pg_start NAME CMD...: runs CMD in the background (stdout/stderr in logs/NAME.out). Called
# in the playground's own shell, never a subshell: the daemon's parent must be the
# playground for the death signal to mean anything.
pg_start() {
    local name=$1
    shift
    "${PG_DEATHSIG[@]}" "$@" >"$LOGS/$name.out" 2>&1 9>&- &
    PG_NAMES+=("$name")
    PG_PIDS+=("$!")
    echo "$name $!" >>"$PIDS_F"
}

pg_start_pds() {
    local i init=() IFS=,
    for ((i = 0; i < NPD; i++)); do init+=("pd$((i + 1))=https://127.0.0.1:${PD_P[$i]}"); done
    unset IFS
    for ((i = 0; i < NPD; i++)); do
        local extra=()
        [ "$NPD" -gt 1 ] && extra=(--initial-cluster "$(IFS=,; echo "${init[*]}")")
        pg_start "pd$((i + 1))" "$PG_BIN/pd-server" --name "pd$((i + 1))" \
            --data-dir "$DATA/pd$((i + 1))" --client-urls "https://127.0.0.1:${PD_C[$i]}" \
            --peer-urls "https://127.0.0.1:${PD_P[$i]}" --config "$CONF/pd$((i + 1)).toml" \
            --log-file "$LOGS/pd$((i + 1)).log" "${extra[@]}"
    done
}

pg_start_tikvs() {
    local i
    for ((i = 0; i < NTIKV; i++)); do
        pg_start "tikv$((i + 1))" "$PG_BIN/tikv-server" --pd "$(pg_pd_endpoints)" \
            --addr "127.0.0.1:${KV[$i]}" --status-addr "127.0.0.1:${ST[$i]}" \
            --data-dir "$DATA/tikv$((i + 1))" --config "$CONF/tikv$((i + 1)).toml" \
            --log-file "$LOGS/tikv$((i + 1)).log"
    done
}

pg_start_tidb() {
    pg_start tidb "$PG_BIN/tidb-server" --store tikv --path "$(pg_pd_endpoints)" -P "$MY" \
        --status "$TS" --config "$CONF/tidb.toml" --log-file "$LOGS/tidb.log"
}

# --- readiness

pg_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# pg_check_children: dies, with the log's tail, when a daemon has exited during start-up.
pg_check_children() {
    local i
    for i in "${!PG_PIDS[@]}"; do
        kill -0 "${PG_PIDS[$i]}" 2>/dev/null && continue
        local n=${PG_NAMES[$i]}
        pg_warn "$n exited during start-up; the end of its output:"
        tail -n 5 "$LOGS/$n.out" "$LOGS/$n.log" 2>/dev/null | sed 's/^/    /' >&2
        pg_die "$n did not start (logs in $LOGS)"
    done
}

# pg_wait WHAT SECONDS CMD...: runs CMD every 50 ms until it succeeds.
pg_wait() {
    local what=$1 secs=$2 deadline=$(($(pg_now_ms) + $2 * 1000))
    shift 2
    until "$@" >/dev/null 2>&1; do
        pg_check_children
        [ "$(pg_now_ms)" -lt "$deadline" ] || pg_die "not ready after $secs s: $what (logs in $LOGS)"
        sleep 0.05
    done
}

pg_pd_up() { $(pg_pdctl_cmd) member leader show | grep -q '"name"'; }

pg_stores_up() {
    local out
    out=$($(pg_pdctl_cmd) store) || return 1
    [ "$(grep -c '"state_name": "Up"' <<<"$out")" -eq "$NTIKV" ]
}

# The region's leader has every other replica PD placed as a voter with its link up.
pg_region_ready() {
    local reg want peers leader i st
    reg=$($(pg_pdctl_cmd) region 1) || return 1
    want=$((NTIKV < 3 ? NTIKV : 3))
    peers=$(sed -n '/"peers"/,/]/p' <<<"$reg" | grep -c '"store_id"')
    [ "$peers" -eq "$want" ] || return 1
    leader=$(sed -n '/"leader"/,/}/p' <<<"$reg" | pg_json_str address)
    for ((i = 0; i < NTIKV; i++)); do
        [ "$leader" = "127.0.0.1:${KV[$i]}" ] && st=${ST[$i]}
    done
    [ -n "${st:-}" ] || return 1
    reg=$(pg_curl client "https://127.0.0.1:$st/status") || return 1
    [ "$(grep -c '"member": "voter"' <<<"$reg")" -eq $((want - 1)) ] &&
        [ "$(grep -c '"link": "up"' <<<"$reg")" -ge $((want - 1)) ]
}

# TiDB answers over TLS; the demo account and table exist (idempotent).
pg_tidb_ready() {
    $(pg_mariadb_oneway) --connect-timeout=5 -N -e "
CREATE USER IF NOT EXISTS 'app'@'%' REQUIRE SUBJECT '/CN=app-client' AND ISSUER '/CN=tisim MySQL CA';
CREATE DATABASE IF NOT EXISTS playground;
CREATE TABLE IF NOT EXISTS playground.notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200));
SELECT 1"
}

# pg_up_cluster: starts everything and waits until healthy; prints the timings.
pg_up_cluster() {
    local t0 t_pd t_kv t_reg t_db
    : >"$PIDS_F"
    mkdir -p "$DATA" "$LOGS" || pg_die "cannot create $DATA or $LOGS"
    t0=$(pg_now_ms)
    pg_start_pds
    pg_wait "PD has a leader (pd-ctl member leader show)" 30 pg_pd_up
    t_pd=$(pg_now_ms)
    pg_start_tikvs
    pg_start_tidb
    pg_wait "all $NTIKV stores Up in pd-ctl store" 30 pg_stores_up
    t_kv=$(pg_now_ms)
    pg_wait "region 1 has its voters, links up (pd-ctl region 1, the leader's /status)" 60 pg_region_ready
    t_reg=$(pg_now_ms)
    pg_wait "TiDB answers SELECT 1 over TLS (mariadb)" 30 pg_tidb_ready
    t_db=$(pg_now_ms)
    PG_READY_MS=$((t_db - t0))
    printf 'ready in %d.%02d s: PD leader %d ms, stores Up %d ms, region voters %d ms, TiDB over TLS %d ms (each from the start)\n' \
        $((PG_READY_MS / 1000)) $((PG_READY_MS % 1000 / 10)) $((t_pd - t0)) $((t_kv - t0)) \
        $((t_reg - t0)) $((t_db - t0))
}

# --- stopping

# pg_stop_all: TERM to every daemon still running (TiDB, stores, then PD), KILL after 10 s;
# says what it stopped. Safe to call twice.
pg_stop_all() {
    local i stopped=() gone=() deadline
    [ ${#PG_PIDS[@]} -gt 0 ] || return 0
    for ((i = ${#PG_PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PG_PIDS[$i]}" 2>/dev/null; done
    deadline=$((SECONDS + 10))
    for i in "${!PG_PIDS[@]}"; do
        if [ -n "${PG_GONE[$i]:-}" ]; then
            gone+=("${PG_NAMES[$i]}")
            continue
        fi
        while kill -0 "${PG_PIDS[$i]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.05
        done
        if kill -0 "${PG_PIDS[$i]}" 2>/dev/null; then
            kill -KILL "${PG_PIDS[$i]}" 2>/dev/null
            pg_warn "${PG_NAMES[$i]} ignored SIGTERM for 10 s; killed it"
        fi
        wait "${PG_PIDS[$i]}" 2>/dev/null
        stopped+=("${PG_NAMES[$i]} (${PG_PIDS[$i]})")
    done
    PG_PIDS=() PG_NAMES=() PG_GONE=()
    : >"$PIDS_F"
    rm -f "$PIDF"
    pg_say "playground: stopped ${#stopped[@]} processes: ${stopped[*]}${gone:+ (${gone[*]} had exited before)}"
}

# pg_supervise: until a signal; says when a daemon exits on its own, ends when none is left.
pg_supervise() {
    local i left
    while :; do
        wait -n 2>/dev/null
        left=0
        for i in "${!PG_PIDS[@]}"; do
            if kill -0 "${PG_PIDS[$i]}" 2>/dev/null; then
                left=$((left + 1))
            elif [ -z "${PG_GONE[$i]:-}" ]; then
                PG_GONE[i]=1
                pg_warn "${PG_NAMES[$i]} (pid ${PG_PIDS[$i]}) exited; its log: $LOGS/${PG_NAMES[$i]}.log"
            fi
        done
        [ "$left" -gt 0 ] || pg_die "every process has exited"
    done
}

# pg_kill_leftovers: daemons of an earlier run on this dir whose playground died; stops them.
pg_kill_leftovers() {
    local name pid found=()
    [ -f "$PIDS_F" ] || return 0
    while read -r name pid; do
        pg_alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null && found+=("$name ($pid)")
    done <"$PIDS_F"
    [ ${#found[@]} -gt 0 ] || return 0
    for _ in $(seq 100); do
        local any=""
        while read -r name pid; do pg_alive "$pid" && any=1; done <"$PIDS_F"
        [ -z "$any" ] && break
        sleep 0.1
    done
    pg_say "playground: stopped leftovers of an earlier run: ${found[*]}"
    : >"$PIDS_F"
}

# pg_down: `scripts/playground down`: asks the running playground to stop, waits for it.
pg_down() {
    local pid name dpid had=()
    [ -f "$PIDS_F" ] && while read -r name dpid; do
        pg_alive "$dpid" && had+=("$name ($dpid)")
    done <"$PIDS_F"
    if pid=$(pg_running_pid); then
        kill -TERM "$pid" || pg_die "cannot signal the playground (pid $pid)"
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && pg_die "the playground (pid $pid) is still running after 15 s"
        pg_say "playground: stopped the playground on $D (pid $pid) and its ${#had[@]} processes: ${had[*]}"
    else
        pg_say "playground: none running on $D"
    fi
    pg_kill_leftovers
}
