/* Unit tests for tlsdial: the blocking HTTPS client of the ctl tools.
 *
 * Servers: the real `openssl s_server -WWW` (child process, requires a client cert with
 * -Verify 1) and a small blocking mbedTLS server thread whose verify callback refuses client
 * CNs outside its allow-list (mbedTLS then sends access_denied), which can also speak plain
 * HTTP. Certificates come from certgen in a temp dir. Every child is killed in teardown. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "testutil.h"
#include "tlsdial.h"
#include "x509util.h"

#define TIMEOUT_MS 5000

static char g_dir[256];
static char g_www[300];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}


/* ---------------------------------------------------------------------------------------- */
/* Child processes: tracked so that teardown (and atexit) kill every one.                   */

#define MAX_CHILDREN 8
static pid_t g_children[MAX_CHILDREN];

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Starts `openssl s_server -WWW` in g_www with cert/key (names in g_dir), requiring a client
 * certificate from ca.pem. Returns the port, or -1. */
static int start_s_server(const char *cert, const char *key)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port < 0)
            return -1;
        char accept_arg[32], certp[300], keyp[300], cap[300], logp[300];
        snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", port);
        path_of(certp, sizeof certp, cert);
        path_of(keyp, sizeof keyp, key);
        path_of(cap, sizeof cap, "ca.pem");
        snprintf(logp, sizeof logp, "%s/s_server-%d.log", g_dir, port);
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            int devnull = open("/dev/null", O_RDONLY);
            if (fd < 0 || devnull < 0 || chdir(g_www) != 0)
                _exit(127);
            dup2(devnull, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            execlp("openssl", "openssl", "s_server", "-WWW", "-accept", accept_arg, "-cert",
                   certp, "-key", keyp, "-CAfile", cap, "-Verify", "1", "-tls1_2", (char *)NULL);
            _exit(127);
        }
        int slot = 0;
        while (slot < MAX_CHILDREN && g_children[slot] > 0)
            slot++;
        if (slot == MAX_CHILDREN) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        g_children[slot] = pid;
        for (int i = 0; i < 500; i++) { /* up to 10 s */
            if (file_contains(logp, "ACCEPT"))
                return port;
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                g_children[slot] = 0;
                break; /* died (port taken?): try another port */
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (g_children[slot] > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            g_children[slot] = 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* A blocking mbedTLS (or plain) server thread                                             */

struct mini_server {
    bool tls;
    const char *allowed_cn; /* client CN the verify callback accepts */
    const char *response;   /* the raw HTTP response written for every request */
    int port;
    volatile bool stop;
    pthread_t thread;
    mbedtls_net_context listen;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static int mini_verify(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const struct mini_server *s = p;
    if (depth == 0) {
        char cn[128];
        x509_subject_cn(crt, cn, sizeof cn);
        if (strcmp(cn, s->allowed_cn) != 0)
            *flags |= MBEDTLS_X509_BADCERT_OTHER;
    }
    return 0;
}

static void mini_serve_one(struct mini_server *s, mbedtls_net_context *c)
{
    mbedtls_ssl_context ssl;
    mbedtls_ssl_init(&ssl);
    char req[8192];
    size_t len = 0;
    if (s->tls) {
        if (mbedtls_ssl_setup(&ssl, &s->conf) != 0)
            goto out;
        mbedtls_ssl_set_bio(&ssl, c, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
        int r;
        while ((r = mbedtls_ssl_handshake(&ssl)) != 0)
            if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
                goto out;
    }
    while (len < sizeof req - 1) {
        int n = s->tls ? mbedtls_ssl_read(&ssl, (unsigned char *)req + len, sizeof req - 1 - len)
                       : mbedtls_net_recv_timeout(c, (unsigned char *)req + len,
                                                  sizeof req - 1 - len, 5000);
        if (n <= 0)
            goto out;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
        if (!s->tls && (req[0] < 'A' || req[0] > 'Z'))
            break; /* not HTTP (a TLS ClientHello?): answer 400 at once, as a real server */
    }
    const char *answer = (!s->tls && (req[0] < 'A' || req[0] > 'Z'))
                             ? "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n"
                             : s->response;
    const unsigned char *resp = (const unsigned char *)answer;
    size_t rlen = strlen(answer), off = 0;
    while (off < rlen) {
        int n = s->tls ? mbedtls_ssl_write(&ssl, resp + off, rlen - off)
                       : mbedtls_net_send(c, resp + off, rlen - off);
        if (n <= 0)
            goto out;
        off += (size_t)n;
    }
    if (s->tls)
        mbedtls_ssl_close_notify(&ssl);
out:
    mbedtls_ssl_free(&ssl);
}

static void *mini_main(void *arg)
{
    struct mini_server *s = arg;
    while (!s->stop) {
        struct pollfd pfd = {.fd = s->listen.fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        mbedtls_net_context c;
        mbedtls_net_init(&c);
        if (mbedtls_net_accept(&s->listen, &c, NULL, 0, NULL) == 0)
            mini_serve_one(s, &c);
        mbedtls_net_free(&c);
    }
    return NULL;
}

static int mini_start(struct mini_server *s)
{
    char err[160];
    mbedtls_net_init(&s->listen);
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_x509_crt_init(&s->ca);
    mbedtls_x509_crt_init(&s->crt);
    mbedtls_pk_init(&s->key);
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    if (s->tls) {
        char ca[300], crt[300], key[300];
        path_of(ca, sizeof ca, "ca.pem");
        path_of(crt, sizeof crt, "server.pem");
        path_of(key, sizeof key, "server-key.pem");
        if (mbedtls_x509_crt_parse_file(&s->ca, ca) != 0 ||
            mbedtls_x509_crt_parse_file(&s->crt, crt) != 0 ||
            mbedtls_pk_parse_keyfile(&s->key, key, NULL) != 0 ||
            mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, NULL, 0) != 0 ||
            mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
                                        MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT) != 0)
            return -1;
        tls_conf_defaults(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
        mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&s->conf, &s->ca, NULL);
        mbedtls_ssl_conf_verify(&s->conf, mini_verify, s);
        mbedtls_ssl_conf_read_timeout(&s->conf, 5000);
        if (mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key) != 0)
            return -1;
    }
    if (mbedtls_net_bind(&s->listen, "127.0.0.1", "0", MBEDTLS_NET_PROTO_TCP) != 0)
        return -1;
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    if (getsockname(s->listen.fd, (struct sockaddr *)&a, &l) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    s->stop = false;
    (void)err;
    if (pthread_create(&s->thread, NULL, mini_main, s) != 0) {
        s->port = 0;
        return -1;
    }
    return 0;
}

static void mini_stop(struct mini_server *s)
{
    if (s->port > 0) {
        s->stop = true;
        pthread_join(s->thread, NULL);
        s->port = 0;
    }
    mbedtls_net_free(&s->listen);
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_x509_crt_free(&s->ca);
    mbedtls_x509_crt_free(&s->crt);
    mbedtls_pk_free(&s->key);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
}

/* ---------------------------------------------------------------------------------------- */
/* Certificates                                                                              */

static int make_leaf(const char *cn, char *const *sans, size_t n_sans,
                     const struct certgen_pair *issuer, const char *name)
{
    char err[256], c[300], k[300], kn[128];
    struct certgen_req req = {.cn = cn, .sans = sans, .n_sans = n_sans};
    struct certgen_pair *p = NULL;
    snprintf(kn, sizeof kn, "%s-key.pem", name);
    char cn_file[128];
    snprintf(cn_file, sizeof cn_file, "%s.pem", name);
    path_of(c, sizeof c, cn_file);
    path_of(k, sizeof k, kn);
    int r = certgen_make(&req, issuer, &p, err, sizeof err);
    if (r == 0)
        r = certgen_write(p, c, k, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "certgen %s: %s\n", name, err);
    certgen_free(p);
    return r;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup_all(void)
{
    kill_children();
    if (g_dir[0]) {
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        g_dir[0] = '\0';
    }
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    atexit(cleanup_all);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tisim-tlsdial-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_www, sizeof g_www, "%s/www", g_dir);
    if (mkdir(g_www, 0700) != 0)
        return -1;
    char p[400];
    snprintf(p, sizeof p, "%s/hello.txt", g_www);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs("hello from s_server\n", f);
    fclose(f);

    char err[256];
    struct certgen_pair *ca = NULL, *ca2 = NULL;
    struct certgen_req careq = {.cn = "tisim test CA", .is_ca = true};
    struct certgen_req ca2req = {.cn = "another CA", .is_ca = true};
    char cap[300], cakp[300], ca2p[300], ca2kp[300];
    path_of(cap, sizeof cap, "ca.pem");
    path_of(cakp, sizeof cakp, "ca-key.pem");
    path_of(ca2p, sizeof ca2p, "ca2.pem");
    path_of(ca2kp, sizeof ca2kp, "ca2-key.pem");
    if (certgen_make(&careq, NULL, &ca, err, sizeof err) != 0 ||
        certgen_write(ca, cap, cakp, err, sizeof err) != 0 ||
        certgen_make(&ca2req, NULL, &ca2, err, sizeof err) != 0 ||
        certgen_write(ca2, ca2p, ca2kp, err, sizeof err) != 0) {
        fprintf(stderr, "certgen CA: %s\n", err);
        certgen_free(ca);
        certgen_free(ca2);
        return -1;
    }
    char *server_sans[] = {"127.0.0.1", "::1", "localhost"};
    char *dns_only[] = {"localhost"};
    int r = make_leaf("PD-Server", server_sans, 3, ca, "server") |
            make_leaf("PD-Server", dns_only, 1, ca, "dnsonly") |
            make_leaf("PD-Server", server_sans, 3, ca2, "other-ca") |
            make_leaf("PD-Control", NULL, 0, ca, "client") |
            make_leaf("Intruder", NULL, 0, ca, "intruder");
    certgen_free(ca);
    certgen_free(ca2);
    return r ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cleanup_all();
    return 0;
}

static int test_teardown(void **state)
{
    struct mini_server *s = *state;
    if (s) {
        mini_stop(s);
        free(s);
        *state = NULL;
    }
    kill_children();
    return 0;
}

static struct tls_files files_of(const char *ca, const char *cert, const char *key,
                                 char bufs[3][300])
{
    struct tls_files f = {NULL, NULL, NULL};
    if (ca) {
        path_of(bufs[0], 300, ca);
        f.ca_path = bufs[0];
    }
    if (cert) {
        path_of(bufs[1], 300, cert);
        f.cert_path = bufs[1];
    }
    if (key) {
        path_of(bufs[2], 300, key);
        f.key_path = bufs[2];
    }
    return f;
}

static int get(const char *host, int port, const char *path, const struct tls_files *f,
               struct https_response *resp, char *err, size_t errlen)
{
    char url[128];
    snprintf(url, sizeof url, "https://%s:%d", host, port);
    return https_request(url, "GET", path, NULL, f, TIMEOUT_MS, resp, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP parsing (no network)                                                                */

static void test_parse_content_length(void **state)
{
    (void)state;
    struct https_response r;
    char err[200];
    const char *full = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    assert_int_equal(http_response_parse(full, 20, false, &r, err, sizeof err), 0);
    assert_int_equal(http_response_parse(full, strlen(full), false, &r, err, sizeof err), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    https_response_free(&r);
    /* truncated at close */
    assert_int_equal(http_response_parse(full, 40, true, &r, err, sizeof err), -1);
    assert_contains(err, "closed before the whole response");
}

static void test_parse_chunked(void **state)
{
    (void)state;
    struct https_response r;
    char err[200];
    const char *full = "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n";
    size_t n = strlen(full);
    for (size_t i = 0; i < n - 5; i++) /* every prefix short of the last chunk */
        assert_int_equal(http_response_parse(full, i, false, &r, err, sizeof err), 0);
    assert_int_equal(http_response_parse(full, n, false, &r, err, sizeof err), 1);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "hello 0123456789");
    assert_int_equal(r.body_len, 16);
    https_response_free(&r);
    const char *bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_int_equal(http_response_parse(bad, strlen(bad), false, &r, err, sizeof err), -1);
    assert_contains(err, "chunked");
}

static void test_parse_close_and_interim(void **state)
{
    (void)state;
    struct https_response r;
    char err[200];
    const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 ok\nContent-type: text/plain\n\nbody";
    assert_int_equal(http_response_parse(s, strlen(s), false, &r, err, sizeof err), 0);
    assert_int_equal(http_response_parse(s, strlen(s), true, &r, err, sizeof err), 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "body");
    https_response_free(&r);
    assert_int_equal(http_response_parse("", 0, true, &r, err, sizeof err), -1);
    assert_contains(err, "without a response");
    assert_int_equal(http_response_parse("SSH-2.0-x\r\n", 11, false, &r, err, sizeof err), -1);
    assert_contains(err, "not an HTTP response");
    const char tls_alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    assert_int_equal(http_response_parse(tls_alert, 7, true, &r, err, sizeof err), -1);
    assert_contains(err, "https://");
    const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n";
    assert_int_equal(http_response_parse(big, strlen(big), false, &r, err, sizeof err), -1);
    assert_contains(err, "too large");
}

static void test_bad_url_and_files(void **state)
{
    (void)state;
    struct https_response r;
    char err[300], b[3][300];
    assert_int_equal(https_request("ftp://x:1", "GET", "/", NULL, NULL, 100, &r, err, sizeof err),
                     -1);
    assert_contains(err, "scheme");
    struct tls_files f = files_of("missing-ca.pem", NULL, NULL, b);
    assert_int_equal(https_request("https://127.0.0.1:1", "GET", "/", NULL, &f, 100, &r, err,
                                   sizeof err), -1);
    assert_contains(err, "cannot read CA file");
    assert_contains(err, "missing-ca.pem");
    f = files_of("ca.pem", "client.pem", "intruder-key.pem", b);
    assert_int_equal(https_request("https://127.0.0.1:1", "GET", "/", NULL, &f, 100, &r, err,
                                   sizeof err), -1);
    assert_contains(err, "does not belong");
    assert_null(strstr(err, "PRIVATE")); /* never key material */
    f = files_of("ca.pem", "client.pem", NULL, b);
    assert_int_equal(https_request("https://127.0.0.1:1", "GET", "/", NULL, &f, 100, &r, err,
                                   sizeof err), -1);
    assert_contains(err, "key");
    assert_int_equal(https_request("https://127.0.0.1:1", "GET", "/", NULL, NULL, 100, &r, err,
                                   sizeof err), -1);
    assert_contains(err, "CA");
}

/* ---------------------------------------------------------------------------------------- */
/* Against openssl s_server                                                                  */

static void test_good_and_no_client_cert(void **state)
{
    (void)state;
    int port = start_s_server("server.pem", "server-key.pem");
    assert_true(port > 0);
    char err[300], b[3][300];
    struct https_response r;
    struct tls_files good = files_of("ca.pem", "client.pem", "client-key.pem", b);
    int rc = get("127.0.0.1", port, "/hello.txt", &good, &r, err, sizeof err);
    if (rc != 0)
        print_error("good request failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello from s_server\n");
    https_response_free(&r);

    char b2[3][300];
    struct tls_files nocert = files_of("ca.pem", NULL, NULL, b2);
    assert_int_equal(get("127.0.0.1", port, "/hello.txt", &nocert, &r, err, sizeof err), -1);
    assert_contains(err, "requires a client certificate");
    assert_null(strchr(err, '\n'));

    /* Plain HTTP against a TLS port says so. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(https_request(url, "GET", "/hello.txt", NULL, NULL, TIMEOUT_MS, &r, err,
                                   sizeof err), -1);
    assert_contains(err, "https://");
}

static void test_untrusted_server(void **state)
{
    (void)state;
    int port = start_s_server("other-ca.pem", "other-ca-key.pem");
    assert_true(port > 0);
    char err[300], b[3][300];
    struct https_response r;
    /* Good: a client that trusts the server's CA (ca2) gets through (s_server still checks
     * our cert against ca.pem). */
    struct tls_files trusts = files_of("ca2.pem", "client.pem", "client-key.pem", b);
    int rc = get("127.0.0.1", port, "/hello.txt", &trusts, &r, err, sizeof err);
    if (rc != 0)
        print_error("good request failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 200);
    https_response_free(&r);
    /* Bad: our CA did not sign it. */
    struct tls_files ours = files_of("ca.pem", "client.pem", "client-key.pem", b);
    assert_int_equal(get("127.0.0.1", port, "/hello.txt", &ours, &r, err, sizeof err), -1);
    assert_contains(err, "not trusted");
    assert_contains(err, "ca.pem");
}

static void test_host_mismatch(void **state)
{
    (void)state;
    /* The cert names only DNS:localhost. */
    int port = start_s_server("dnsonly.pem", "dnsonly-key.pem");
    assert_true(port > 0);
    char err[300], b[3][300];
    struct https_response r;
    struct tls_files f = files_of("ca.pem", "client.pem", "client-key.pem", b);
    int rc = get("localhost", port, "/hello.txt", &f, &r, err, sizeof err);
    if (rc != 0)
        print_error("good request failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 200);
    https_response_free(&r);
    assert_int_equal(get("127.0.0.1", port, "/hello.txt", &f, &r, err, sizeof err), -1);
    assert_contains(err, "does not match host 127.0.0.1");
}

static void test_connection_refused(void **state)
{
    (void)state;
    int port = start_s_server("server.pem", "server-key.pem");
    assert_true(port > 0);
    char err[300], b[3][300];
    struct https_response r;
    struct tls_files f = files_of("ca.pem", "client.pem", "client-key.pem", b);
    assert_int_equal(get("127.0.0.1", port, "/hello.txt", &f, &r, err, sizeof err), 0);
    https_response_free(&r);
    int closed = free_port();
    assert_true(closed > 0);
    assert_int_equal(get("127.0.0.1", closed, "/", &f, &r, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d", closed);
    assert_contains(err, want);
    assert_contains(err, "refused");
}

/* ---------------------------------------------------------------------------------------- */
/* Against the mbedTLS server thread                                                         */

static void test_cn_refused(void **state)
{
    struct mini_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    *state = s;
    s->tls = true;
    s->allowed_cn = "PD-Control";
    s->response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_int_equal(mini_start(s), 0);
    char err[300], b[3][300];
    struct https_response r;
    struct tls_files good = files_of("ca.pem", "client.pem", "client-key.pem", b);
    int rc = get("127.0.0.1", s->port, "/pd/api/v1/health", &good, &r, err, sizeof err);
    if (rc != 0)
        print_error("good request failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    https_response_free(&r);

    char b2[3][300];
    struct tls_files bad = files_of("ca.pem", "intruder.pem", "intruder-key.pem", b2);
    assert_int_equal(get("127.0.0.1", s->port, "/", &bad, &r, err, sizeof err), -1);
    assert_contains(err, "refused our certificate");
    assert_contains(err, "Common Name");
    assert_contains(err, "access_denied");
}

static void test_plain_http(void **state)
{
    struct mini_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    *state = s;
    s->tls = false;
    s->response = "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
                  "{\"tso\":1234}";
    assert_int_equal(mini_start(s), 0);
    char url[64], err[300], b[3][300];
    struct https_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    int rc = https_request(url, "POST", "/pd/api/v1/tso", NULL, NULL, TIMEOUT_MS, &r, err,
                           sizeof err);
    if (rc != 0)
        print_error("good request failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"tso\":1234}");
    https_response_free(&r);
    /* https:// against a plaintext server */
    struct tls_files f = files_of("ca.pem", "client.pem", "client-key.pem", b);
    assert_int_equal(get("127.0.0.1", s->port, "/", &f, &r, err, sizeof err), -1);
    assert_contains(err, "plain HTTP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_content_length),
        cmocka_unit_test(test_parse_chunked),
        cmocka_unit_test(test_parse_close_and_interim),
        cmocka_unit_test_teardown(test_bad_url_and_files, test_teardown),
        cmocka_unit_test_teardown(test_good_and_no_client_cert, test_teardown),
        cmocka_unit_test_teardown(test_untrusted_server, test_teardown),
        cmocka_unit_test_teardown(test_host_mismatch, test_teardown),
        cmocka_unit_test_teardown(test_connection_refused, test_teardown),
        cmocka_unit_test_teardown(test_cn_refused, test_teardown),
        cmocka_unit_test_teardown(test_plain_http, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
