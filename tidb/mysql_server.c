/* mysql_server.c — TiDB's MySQL port. See mysql_server.h. */
#include "mysql_server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

#define LOGIN_TIMEOUT_SEC 10 /* MySQL's connect_timeout: the whole login, TLS included */
#define INSECURE_MSG                                                                          \
    "Connections using insecure transport are prohibited while --require_secure_transport=ON."

enum state {
    ST_HELLO,   /* greeted; waiting for the SSLRequest or the HandshakeResponse41 */
    ST_TLS,     /* upgraded; waiting for the HandshakeResponse41 over TLS */
    ST_AUTH,    /* a worker checks the login */
    ST_COMMAND, /* logged in */
};

struct session {
    struct mysql_server *srv;
    struct session *next, *prev;
    struct bufferevent *bev;
    enum state state;
    bool busy;    /* a job on a worker */
    bool in_read; /* inside on_read */
    bool dead;    /* closed: freed once neither of those holds */
    bool closing; /* sending its last packets */
    uint8_t scramble[MYSQL_SCRAMBLE_LEN];
    struct mysql_buf scratch;
    struct exec_session ex;
    char peer[64];
};

enum job_kind { JOB_AUTH, JOB_QUERY, JOB_INIT_DB };

struct job {
    struct job *next;
    struct session *s;
    enum job_kind kind;
    uint8_t seq;
    uint8_t *payload;
    size_t len;
    /* login */
    char user[MYSQL_USER_MAX + 1];
    uint8_t auth[256];
    size_t auth_len;
    char db[MYSQL_DB_MAX + 1];
    /* result */
    struct mysql_buf out;
    bool close_after;
};

struct job_queue {
    struct job *head, *tail;
};

struct mysql_server {
    struct event_base *base;
    struct conn_listener *listener;
    struct tls_ctx *tls;
    bool require_secure;
    const struct exec_server *exec;
    struct session sessions; /* list head */
    unsigned long nsessions;
    uint32_t next_id;
    /* workers */
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_queue todo, done;
    bool stopping;
    int pipe_rd, pipe_wr;
    struct event *done_ev;
    bool bootstrapped; /* under mu */
    struct timeval login_timeout;
};

static void on_read(struct bufferevent *bev, void *arg);
static void read_packets(struct session *s, struct evbuffer *in);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void queue_push(struct job_queue *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *queue_pop(struct job_queue *q)
{
    struct job *j = q->head;
    if (j && !(q->head = j->next))
        q->tail = NULL;
    return j;
}

static void job_free(struct job *j)
{
    mysql_buf_free(&j->out);
    free(j->payload);
    free(j);
}

/* ---- sessions ----------------------------------------------------------------------------- */

static void session_free(struct session *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->srv->nsessions--;
    if (s->bev)
        bufferevent_free(s->bev);
    mysql_buf_free(&s->scratch);
    free(s);
}

/* Closes now, or once the job in flight comes back or on_read returns (never frees the
 * session under a caller that still uses it). */
static void session_close(struct session *s)
{
    s->dead = true;
    if (!s->busy && !s->in_read)
        session_free(s);
}

static void send_buf(struct session *s, const struct mysql_buf *b)
{
    if (!s->dead && b->len)
        bufferevent_write(s->bev, b->data, b->len);
}

static void send_err(struct session *s, uint8_t seq, uint16_t code, const char *msg)
{
    struct mysql_buf b;
    mysql_buf_init(&b);
    mysql_write_err(&b, &seq, code, msg);
    send_buf(s, &b);
    mysql_buf_free(&b);
}

static void send_ok(struct session *s, uint8_t seq)
{
    struct mysql_buf b;
    mysql_buf_init(&b);
    mysql_write_ok(&b, &seq, 0, 0, MYSQL_SERVER_STATUS_AUTOCOMMIT, 0, NULL);
    send_buf(s, &b);
    mysql_buf_free(&b);
}

/* Closes once what is queued has been sent. */
static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (!s->dead && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        session_close(s);
}

static void close_after_send(struct session *s)
{
    s->closing = true;
    bufferevent_setcb(s->bev, NULL, on_drained, on_event, s);
    bufferevent_disable(s->bev, EV_READ);
    on_drained(s->bev, s);
}

/* ---- workers ------------------------------------------------------------------------------- */

static const char *host_of(const char *peer, char *out, size_t len)
{
    snprintf(out, len, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = '\0';
    if (out[0] == '[') { /* [::1]:port */
        memmove(out, out + 1, strlen(out));
        char *br = strchr(out, ']');
        if (br)
            *br = '\0';
    }
    return out;
}

static bool ensure_bootstrap(struct mysql_server *srv, char *err, size_t errlen)
{
    pthread_mutex_lock(&srv->mu);
    bool done = srv->bootstrapped;
    pthread_mutex_unlock(&srv->mu);
    if (done)
        return true;
    if (catalog_bootstrap(srv->exec->catalog, err, errlen) != 0)
        return false;
    pthread_mutex_lock(&srv->mu);
    srv->bootstrapped = true;
    pthread_mutex_unlock(&srv->mu);
    return true;
}

static bool require_met(const struct cat_user *u, const struct exec_session *ex)
{
    switch (u->require) {
    case CAT_REQ_NONE:
        return true;
    case CAT_REQ_SSL:
        return ex->tls;
    case CAT_REQ_X509:
        return ex->tls && ex->cert_verified;
    case CAT_REQ_SPECIFIED:
        return ex->tls && ex->cert_verified &&
               (!u->subject[0] || strcmp(u->subject, ex->subject) == 0) &&
               (!u->issuer[0] || strcmp(u->issuer, ex->issuer) == 0);
    }
    return false;
}

/* The login: the account, its password, its REQUIRE, the initial database. */
static void run_auth(struct job *j)
{
    struct session *s = j->s;
    struct mysql_server *srv = s->srv;
    struct exec_session *ex = &s->ex;
    char err[300], host[64], denied[MYSQL_USER_MAX + 160];
    struct cat_user u;
    uint8_t seq = j->seq;
    host_of(s->peer, host, sizeof host);
    snprintf(denied, sizeof denied, "Access denied for user '%s'@'%s' (using password: %s)",
             j->user, host, j->auth_len ? "YES" : "NO");
    j->close_after = true;
    if (!ensure_bootstrap(srv, err, sizeof err)) {
        log_warnx("login of '%s' from %s: the catalog is not reachable: %s", j->user, s->peer, err);
        mysql_write_err(&j->out, &seq, MYSQL_ER_UNKNOWN_ERROR, err);
        return;
    }
    int rc = catalog_match_user(srv->exec->catalog, j->user, host, &u, err, sizeof err);
    if (rc < 0) {
        mysql_write_err(&j->out, &seq, MYSQL_ER_UNKNOWN_ERROR, err);
        return;
    }
    const char *why = rc == 1 ? "no such account"
                      : !mysql_native_password_verify(s->scramble, j->auth, j->auth_len, u.auth)
                          ? "wrong password"
                      : !require_met(&u, ex) ? "the account's REQUIRE is not met"
                                             : NULL;
    if (why) {
        log_warnx("refused login of '%s' from %s (TLS %s%s): %s", j->user, s->peer,
                  ex->tls ? "on" : "off", ex->cert_verified ? ", client certificate" : "", why);
        mysql_write_err(&j->out, &seq, MYSQL_ER_ACCESS_DENIED_ERROR, denied);
        return;
    }
    snprintf(ex->user, sizeof ex->user, "%.*s", CAT_NAME_MAX, j->user); /* accounts: <= 32 */
    snprintf(ex->client_host, sizeof ex->client_host, "%s", host);
    snprintf(ex->account_host, sizeof ex->account_host, "%s", u.host);
    if (j->db[0]) {
        rc = strlen(j->db) > CAT_NAME_MAX ? 1
                                          : catalog_db_exists(srv->exec->catalog, j->db, err,
                                                              sizeof err);
        if (rc != 0) {
            char msg[MYSQL_DB_MAX + 32];
            snprintf(msg, sizeof msg, "Unknown database '%s'", j->db);
            mysql_write_err(&j->out, &seq, rc < 0 ? MYSQL_ER_UNKNOWN_ERROR : MYSQL_ER_BAD_DB_ERROR,
                            rc < 0 ? err : msg);
            return;
        }
        snprintf(ex->db, sizeof ex->db, "%.*s", CAT_NAME_MAX, j->db);
    }
    j->close_after = false;
    log_info("login of '%s'@'%s' from %s (TLS %s)", j->user, u.host, s->peer,
             ex->tls ? ex->tls_version : "off");
    mysql_write_ok(&j->out, &seq, 0, 0, MYSQL_SERVER_STATUS_AUTOCOMMIT, 0, NULL);
}

static void run_job(struct job *j)
{
    switch (j->kind) {
    case JOB_AUTH:
        run_auth(j);
        break;
    case JOB_QUERY:
        executor_query(&j->s->ex, (const char *)j->payload, j->len, j->seq, &j->out);
        break;
    case JOB_INIT_DB: {
        char db[MYSQL_DB_MAX + 1];
        snprintf(db, sizeof db, "%.*s", (int)(j->len < MYSQL_DB_MAX ? j->len : MYSQL_DB_MAX),
                 (const char *)j->payload);
        executor_use(&j->s->ex, db, j->seq, &j->out);
        break;
    }
    }
}

static void *worker_main(void *arg)
{
    struct mysql_server *srv = arg;
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        while (!srv->todo.head && !srv->stopping)
            pthread_cond_wait(&srv->cv, &srv->mu);
        struct job *j = queue_pop(&srv->todo);
        if (!j)
            break;
        pthread_mutex_unlock(&srv->mu);
        run_job(j);
        pthread_mutex_lock(&srv->mu);
        /* one wake-up per batch: a loop that has not yet taken the queue will see this job */
        bool wake = !srv->done.head;
        queue_push(&srv->done, j);
        char one = 1;
        if (wake && write(srv->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
            log_warn("mysql server: cannot wake the event loop");
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void submit(struct session *s, struct job *j)
{
    struct mysql_server *srv = s->srv;
    j->s = s;
    mysql_buf_init(&j->out);
    s->busy = true;
    pthread_mutex_lock(&srv->mu);
    queue_push(&srv->todo, j);
    pthread_cond_signal(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct mysql_server *srv = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) == (ssize_t)sizeof buf) /* a short read: drained */
        ;
    pthread_mutex_lock(&srv->mu);
    struct job *j = srv->done.head;
    srv->done.head = srv->done.tail = NULL;
    pthread_mutex_unlock(&srv->mu);
    while (j) {
        struct job *next = j->next;
        struct session *s = j->s;
        s->busy = false;
        if (s->dead) {
            session_close(s);
        } else {
            send_buf(s, &j->out);
            if (j->kind == JOB_AUTH && !j->close_after)
                s->state = ST_COMMAND;
            if (j->close_after)
                close_after_send(s);
            else
                on_read(s->bev, s); /* what the client sent meanwhile */
        }
        job_free(j);
        j = next;
    }
}

/* ---- the protocol on the loop ---------------------------------------------------------------- */

static void fill_tls(struct session *s)
{
    const struct tls_peer *p = tls_bev_peer(s->bev);
    if (!p)
        return;
    struct exec_session *ex = &s->ex;
    ex->tls = true;
    snprintf(ex->tls_version, sizeof ex->tls_version, "%s", p->version);
    /* MySQL servers and clients name suites as OpenSSL does */
    snprintf(ex->tls_cipher, sizeof ex->tls_cipher, "%s", tls_suite_openssl_name(p->suite));
    ex->cert_verified = p->cert_verified;
    snprintf(ex->subject, sizeof ex->subject, "%s", p->subject);
    snprintf(ex->issuer, sizeof ex->issuer, "%s", p->issuer);
}

static void upgrade(struct session *s)
{
    /* The login deadline moves to the TLS bufferevent: left on the socket's, it would close
     * any session whose socket stays quiet for that long (an idle client, a long DROP). */
    bufferevent_set_timeouts(s->bev, NULL, NULL);
    struct bufferevent *tls = tls_bev_starttls(s->srv->tls, s->srv->base, s->bev, NULL);
    if (!tls) {
        log_warnx("cannot start TLS for %s: out of memory", s->peer);
        session_close(s);
        return;
    }
    s->bev = tls;
    s->state = ST_TLS;
    bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    bufferevent_set_timeouts(s->bev, &s->srv->login_timeout, NULL);
}

/* The client's first packet (or, after TLS, its second). True when it asks for TLS: the
 * caller drains the SSLRequest, then upgrades. */
static bool on_hello(struct session *s, const struct mysql_packet *p)
{
    struct mysql_client_hello h;
    char err[256];
    if (mysql_parse_client_hello(p->payload, p->len, &h, err, sizeof err) != 0) {
        log_warnx("bad handshake from %s: %s", s->peer, err);
        send_err(s, p->next_seq, MYSQL_ER_HANDSHAKE_ERROR, "Bad handshake");
        close_after_send(s);
        return false;
    }
    if (h.ssl_request) {
        if (s->srv->tls && s->state == ST_HELLO)
            return true;
        send_err(s, p->next_seq, MYSQL_ER_HANDSHAKE_ERROR,
                 s->srv->tls ? "Bad handshake" : "SSL connection error: the server does not "
                                                 "offer SSL");
        close_after_send(s);
        return false;
    }
    if (s->srv->require_secure && !s->ex.tls) {
        log_warnx("refused plaintext login of '%s' from %s: require-secure-transport is on",
                  h.user, s->peer);
        send_err(s, p->next_seq, MYSQL_ER_SECURE_TRANSPORT_REQUIRED, INSECURE_MSG);
        close_after_send(s);
        return false;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        close_after_send(s);
        return false;
    }
    j->kind = JOB_AUTH;
    j->seq = p->next_seq;
    snprintf(j->user, sizeof j->user, "%s", h.user);
    j->auth_len = h.auth_len < sizeof j->auth ? h.auth_len : sizeof j->auth;
    memcpy(j->auth, h.auth, j->auth_len);
    if (h.has_db)
        snprintf(j->db, sizeof j->db, "%s", h.db);
    s->state = ST_AUTH;
    bufferevent_set_timeouts(s->bev, NULL, NULL); /* the login's own answer may take longer */
    submit(s, j);
    return false;
}

static void on_command(struct session *s, const struct mysql_packet *p)
{
    uint8_t cmd = p->len ? p->payload[0] : 0xff;
    struct mysql_buf b;
    uint8_t seq = p->next_seq;
    switch (cmd) {
    case MYSQL_COM_QUIT:
        session_close(s);
        return;
    case MYSQL_COM_PING: case MYSQL_COM_RESET_CONNECTION:
        send_ok(s, seq);
        return;
    case MYSQL_COM_SET_OPTION: case MYSQL_COM_FIELD_LIST:
        mysql_buf_init(&b);
        mysql_write_eof(&b, &seq, 0, MYSQL_SERVER_STATUS_AUTOCOMMIT);
        send_buf(s, &b);
        mysql_buf_free(&b);
        return;
    case MYSQL_COM_QUERY: case MYSQL_COM_INIT_DB: {
        struct job *j = calloc(1, sizeof *j);
        if (!j || !(j->payload = malloc(p->len))) {
            free(j);
            send_err(s, seq, 1037, "Out of memory");
            return;
        }
        memcpy(j->payload, p->payload + 1, p->len - 1);
        j->len = p->len - 1;
        j->kind = cmd == MYSQL_COM_QUERY ? JOB_QUERY : JOB_INIT_DB;
        j->seq = seq;
        submit(s, j);
        return;
    }
    default: {
        char name[48], msg[96];
        snprintf(msg, sizeof msg, "Unknown command %s",
                 mysql_command_name(cmd, name, sizeof name));
        send_err(s, seq, MYSQL_ER_UNKNOWN_COM_ERROR, msg);
        return;
    }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    s->in_read = true;
    read_packets(s, bufferevent_get_input(bev));
    s->in_read = false;
    if (s->dead)
        session_close(s);
}

static void read_packets(struct session *s, struct evbuffer *in)
{
    while (!s->dead && !s->busy && !s->closing && s->state != ST_AUTH) {
        size_t n = evbuffer_get_length(in);
        const uint8_t *data = n ? evbuffer_pullup(in, -1) : NULL;
        struct mysql_packet p;
        char err[256];
        enum mysql_read_status rs =
            data ? mysql_packet_read(data, n, MYSQL_MAX_COMMAND_DEFAULT, &s->scratch, &p, err,
                                     sizeof err)
                 : MYSQL_READ_MORE;
        if (rs == MYSQL_READ_MORE)
            return;
        if (rs == MYSQL_READ_ERROR) {
            log_warnx("closing %s: %s", s->peer, err);
            session_close(s);
            return;
        }
        bool tls = false;
        if (s->state == ST_COMMAND)
            on_command(s, &p); /* copies what it keeps */
        else
            tls = on_hello(s, &p);
        if (s->dead)
            return;
        evbuffer_drain(in, p.consumed);
        if (tls) {
            upgrade(s); /* what follows the SSLRequest is the ClientHello: TLS reads it */
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) { /* the TLS upgrade completed */
        fill_tls(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        log_warnx("closing %s: no login within %d s", s->peer, LOGIN_TIMEOUT_SEC);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        session_close(s);
}

static void greet(struct session *s)
{
    uint8_t rnd[MYSQL_SCRAMBLE_LEN];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        session_close(s);
        return;
    }
    mysql_scramble_make(rnd, s->scramble);
    struct mysql_handshake hs = {
        .server_version = s->srv->exec->version,
        .conn_id = s->ex.conn_id,
        .caps = mysql_server_caps(s->srv->tls != NULL),
        .charset = MYSQL_CHARSET_UTF8MB4_GENERAL_CI,
        .status = MYSQL_SERVER_STATUS_AUTOCOMMIT,
    };
    memcpy(hs.scramble, s->scramble, sizeof hs.scramble);
    struct mysql_buf b;
    uint8_t seq = 0;
    char err[128];
    mysql_buf_init(&b);
    if (mysql_write_handshake(&b, &seq, &hs, err, sizeof err) == 0)
        send_buf(s, &b);
    mysql_buf_free(&b);
}

static void on_accept(struct bufferevent *bev, const struct conn_peer *peer, void *arg)
{
    struct mysql_server *srv = arg;
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        bufferevent_free(bev);
        return;
    }
    s->srv = srv;
    s->bev = bev;
    s->ex.server = srv->exec;
    s->ex.conn_id = ++srv->next_id;
    snprintf(s->peer, sizeof s->peer, "%s", peer->addr);
    mysql_buf_init(&s->scratch);
    s->next = srv->sessions.next;
    s->prev = &srv->sessions;
    srv->sessions.next->prev = s;
    srv->sessions.next = s;
    srv->nsessions++;
    bufferevent_setcb(bev, on_read, NULL, on_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_set_timeouts(bev, &srv->login_timeout, NULL); /* until logged in */
    greet(s);
}

/* ---- life cycle ------------------------------------------------------------------------------- */

static int start_workers(struct mysql_server *srv, unsigned n, char *err, size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    srv->pipe_rd = fds[0];
    srv->pipe_wr = fds[1];
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    srv->done_ev = event_new(srv->base, fds[0], EV_READ | EV_PERSIST, on_jobs_done, srv);
    srv->threads = calloc(n, sizeof *srv->threads);
    if (!srv->done_ev || !srv->threads || event_add(srv->done_ev, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; srv->nthreads < n; srv->nthreads++) {
        if (pthread_create(&srv->threads[srv->nthreads], NULL, worker_main, srv) != 0) {
            snprintf(err, errlen, "cannot start a session worker");
            return -1;
        }
    }
    return 0;
}

struct mysql_server *mysql_server_new(const struct mysql_server_opts *o, char *err,
                                      size_t errlen)
{
    struct mysql_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->base = o->base;
    srv->tls = o->tls;
    srv->require_secure = o->require_secure;
    srv->exec = o->exec;
    srv->sessions.next = srv->sessions.prev = &srv->sessions;
    srv->pipe_rd = srv->pipe_wr = -1;
    srv->login_timeout = (struct timeval){LOGIN_TIMEOUT_SEC, 0};
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    if (start_workers(srv, o->workers ? o->workers : MYSQL_SERVER_WORKERS, err, errlen) != 0 ||
        !(srv->listener = conn_listen(o->base, o->host, o->port, NULL, on_accept, srv, err,
                                      errlen))) {
        mysql_server_free(srv);
        return NULL;
    }
    return srv;
}

int mysql_server_port(const struct mysql_server *s)
{
    return conn_listener_port(s->listener);
}

unsigned long mysql_server_connections(const struct mysql_server *s)
{
    return s->nsessions;
}

void mysql_server_free(struct mysql_server *srv)
{
    if (!srv)
        return;
    conn_listener_free(srv->listener);
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    for (unsigned i = 0; i < srv->nthreads; i++)
        pthread_join(srv->threads[i], NULL); /* they finish what they run, then see stopping */
    struct job *j;
    while ((j = queue_pop(&srv->todo)))
        job_free(j);
    while ((j = queue_pop(&srv->done)))
        job_free(j);
    while (srv->sessions.next != &srv->sessions) {
        srv->sessions.next->busy = false;
        session_free(srv->sessions.next);
    }
    if (srv->done_ev)
        event_free(srv->done_ev);
    if (srv->pipe_rd >= 0) {
        close(srv->pipe_rd);
        close(srv->pipe_wr);
    }
    free(srv->threads);
    pthread_cond_destroy(&srv->cv);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
