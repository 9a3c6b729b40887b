#!/usr/bin/env sysbench
-- The cost of a new MySQL connection, for scripts/bench: each event opens a connection (TCP,
-- the SSLRequest and TLS handshake with sysbench's client cert under --mysql-ssl=on, the
-- login), runs SELECT 1, reads its result and closes. sysbench's latency per event is the
-- time from connect to first result (plus the close, which sends COM_QUIT and returns).
function thread_init()
    drv = sysbench.sql.driver()
end

function event()
    local con = drv:connect()
    con:query("SELECT 1")
    con:disconnect()
end
