/* test_http_server.c - the HTTP server on 127.0.0.1:0, driven by a raw-socket client
 *
 * Every test speaks HTTP/1.1 bytes over a TCP socket, so framing edge cases (limits, chunked
 * bodies, duplicate Content-Length, Content-Length plus chunked) are exercised exactly as a
 * client or an attacker would send them (the model is nginx-tests body_chunked.t).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "kl_test.h"

#include "base/buf.h"
#include "base/hash.h"
#include "http/auth.h"
#include "http/http.h"
#include "http/metrics.h"
#include "ingest/envelope.h"

#define LIMIT ((size_t)1024 * 1024) /* body bytes on the wire */
#define DECODED_LIMIT ((size_t)4 * 1024 * 1024)
#define KEY "e12d836b15bb49d7bbf99e64295d995b"

/* ------------------------------------------------------------------------------------ */
/* Test routes                                                                            */

static int h_echo(struct kl_req *req)
{
    char out[256];
    int n = snprintf(
        out, sizeof out,
        "{\"len\":%zu,\"wire\":%zu,\"hash\":\"%016llx\",\"pad\":%d,\"enc\":\"%s\"}", req->body_len,
        req->wire_len, (unsigned long long)kl_fnv1a64(req->body, req->body_len),
        req->body[req->body_len] == 0 && req->body[req->body_len + KL_PADDING - 1] == 0,
        kl_encoding_name(req->encoding));
    return kl_http_reply_json(req, 200, out, (size_t)n);
}

static int h_slow(struct kl_req *req)
{
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    return kl_http_reply_json(req, 200, "{\"slow\":true}", 13);
}

static int h_params(struct kl_req *req)
{
    struct kl_str a = kl_req_param(req, "a"), b = kl_req_param(req, "b");
    struct kl_str q = kl_req_query(req, "q");
    char out[512];
    int n = snprintf(out, sizeof out, "%.*s|%.*s|%.*s|%s", (int)a.len, a.ptr, (int)b.len, b.ptr,
                     (int)q.len, q.ptr ? q.ptr : "", req->method);
    kl_http_add_header(req, "Retry-After", "60");
    return kl_http_reply(req, 200, "text/plain", out, (size_t)n);
}

static int h_fail(struct kl_req *req)
{
    return kl_err_set(&req->err, KL_R_HTTP_OVERLOADED, "queue is full");
}

/* The ingest shape the lead will write: auth from the request, envelope, dsn check. */
static int h_envelope(struct kl_req *req)
{
    struct kl_auth_input in;
    struct kl_sentry_auth auth;
    kl_auth_input_from_req(req, &in);
    if (kl_sentry_auth_from_parts(req->arena, &in, &auth, &req->err) < 0)
        return -1;
    struct kl_str dsn = KL_STR_NULL;
    if (req->body_len) {
        struct kl_envelope *env =
            kl_envelope_parse(req->arena, req->body, req->body_len, NULL, &req->err);
        if (!env && auth.source != KL_AUTH_NONE)
            return -1;
        if (env)
            dsn = env->dsn;
        kl_err_clear(&req->err);
    }
    if (kl_sentry_auth_with_dsn(&auth, dsn, &req->err) < 0)
        return -1;
    char out[256];
    int n = snprintf(out, sizeof out, "{\"key\":\"%.*s\",\"project\":%llu,\"source\":%d}",
                     (int)auth.public_key.len, auth.public_key.ptr,
                     (unsigned long long)auth.project_id, (int)auth.source);
    return kl_http_reply_json(req, 200, out, (size_t)n);
}

static const struct kl_route routes[] = {
    {"POST", "/echo", h_echo, 0, NULL, NULL},
    {"PUT", "/echo", h_echo, 0, NULL, NULL},
    {"GET", "/slow", h_slow, 0, NULL, NULL},
    {"GET", "/params/{a}/x/{b}", h_params, 0, "params", NULL},
    {"GET", "/fail", h_fail, 0, NULL, NULL},
    {"POST", "/api/{project_id}/envelope/", h_envelope, KL_ROUTE_CORS, "envelope", NULL},
    {"GET", "/health", kl_http_handle_health, 0, NULL, NULL},
    {"GET", "/metrics", kl_http_handle_metrics, 0, NULL, NULL},
};

static struct kl_http_server *srv;
static struct kl_metrics *metrics;
static uint16_t port;

/* ------------------------------------------------------------------------------------ */
/* Raw client                                                                             */

struct resp {
    int status; /* 0: no answer (connection closed or timed out) */
    char head[8192];
    char *body;
    size_t body_len;
};

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *resp_header(const struct resp *r, const char *name)
{
    static __thread char val[1024];
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= sizeof val)
                l = sizeof val - 1;
            memcpy(val, v, l);
            val[l] = 0;
            return val;
        }
    }
    return NULL;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

static __thread bool head_only; /* the answer to HEAD has no body */

/* Read one response (Content-Length framed, as MHD answers buffers). */
static int read_resp(int fd, struct resp *r)
{
    memset(r, 0, sizeof *r);
    size_t hn = 0;
    char *end = NULL;
    while (!end) {
        if (hn + 1 >= sizeof r->head)
            return -1;
        ssize_t got = recv(fd, r->head + hn, 1, 0);
        if (got <= 0)
            return -1;
        hn++;
        r->head[hn] = 0;
        if (hn >= 4 && memcmp(r->head + hn - 4, "\r\n\r\n", 4) == 0)
            end = r->head + hn;
    }
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    const char *cl = resp_header(r, "Content-Length");
    size_t len = cl && !head_only ? strtoull(cl, NULL, 10) : 0;
    r->body = calloc(1, len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t g = recv(fd, r->body + got, len - got, 0);
        if (g <= 0)
            return -1;
        got += (size_t)g;
    }
    r->body_len = len;
    return 0;
}

/* Send head (and body), read the answer; the connection is closed after. */
static void roundtrip(const char *head, const void *body, size_t n, struct resp *r)
{
    int fd = dial();
    memset(r, 0, sizeof *r);
    if (fd < 0)
        return;
    send_all(fd, head, strlen(head));
    if (n)
        send_all(fd, body, n); /* may fail when the server answered early: fine */
    if (read_resp(fd, r) < 0)
        r->status = 0;
    close(fd);
}

static void post(const char *path, const char *extra_headers, const void *body, size_t n,
                 struct resp *r)
{
    char head[2048];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
             path, n, extra_headers ? extra_headers : "");
    roundtrip(head, body, n, r);
}

static void get(const char *path, const char *method, struct resp *r)
{
    char head[1024];
    snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method,
             path);
    head_only = strcmp(method, "HEAD") == 0;
    roundtrip(head, NULL, 0, r);
    head_only = false;
}

static bool body_has(const struct resp *r, const char *s)
{
    return r->body && strstr(r->body, s) != NULL;
}

/* Pseudo-random text that compresses a little, like JSON. */
static char *make_body(size_t n, uint32_t seed)
{
    char *p = malloc(n + 1);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = "{}[],:\"abcdefghijklmnopqrstuvwxyz0123456789"[(x >> 16) % 43];
    }
    p[n] = 0;
    return p;
}

static void expect_echo(const struct resp *r, const char *plain, size_t n)
{
    char want[64];
    snprintf(want, sizeof want, "\"len\":%zu,", n);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_TRUE(body_has(r, want));
    snprintf(want, sizeof want, "\"hash\":\"%016llx\"", (unsigned long long)kl_fnv1a64(plain, n));
    ASSERT_TRUE(body_has(r, want));
    ASSERT_TRUE(body_has(r, "\"pad\":1"));
}

/* ------------------------------------------------------------------------------------ */
/* Tests                                                                                  */

static void test_plain_post(void)
{
    char *b = make_body(100000, 1);
    struct resp r;
    post("/echo", NULL, b, 100000, &r);
    expect_echo(&r, b, 100000);
    ASSERT_TRUE(body_has(&r, "\"enc\":\"identity\""));
    ASSERT_TRUE(resp_header(&r, "X-Request-Id") && strlen(resp_header(&r, "X-Request-Id")) == 32);
    ASSERT_EQ_STR(resp_header(&r, "Content-Type"), "application/json");
    resp_free(&r);
    post("/echo", NULL, "", 0, &r); /* empty body: padded, len 0 */
    expect_echo(&r, "", 0);
    resp_free(&r);
    free(b);
}

static void test_content_length_limits(void)
{
    char *b = make_body(LIMIT + 1, 2);
    struct resp r;
    post("/echo", NULL, b, LIMIT - 1, &r);
    expect_echo(&r, b, LIMIT - 1);
    resp_free(&r);
    post("/echo", NULL, b, LIMIT, &r);
    expect_echo(&r, b, LIMIT);
    resp_free(&r);
    /* limit + 1: answered from the headers alone, before any body byte is read */
    char head[256];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
             LIMIT + 1);
    roundtrip(head, NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 413);
    ASSERT_TRUE(body_has(&r, "\"reason\":\"http.body_too_large\""));
    ASSERT_TRUE(body_has(&r, "\"detail\":"));
    resp_free(&r);
    /* and with the body sent anyway */
    post("/echo", NULL, b, LIMIT + 1, &r);
    ASSERT_EQ_INT(r.status, 413);
    resp_free(&r);
    /* a huge declared length */
    roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999\r\n\r\n", NULL, 0,
              &r);
    ASSERT_EQ_INT(r.status, 413);
    resp_free(&r);
    free(b);
}

static void chunked_send(int fd, const char *b, size_t n, size_t step)
{
    char line[64];
    for (size_t off = 0; off < n;) {
        size_t k = n - off < step ? n - off : step;
        snprintf(line, sizeof line, "%zx\r\n", k);
        send_all(fd, line, strlen(line));
        send_all(fd, b + off, k);
        send_all(fd, "\r\n", 2);
        off += k;
        step = step * 3 / 2 + 1; /* vary chunk sizes */
    }
    send_all(fd, "0\r\n\r\n", 5);
}

static void chunked_post(const char *path, const char *extra, const char *b, size_t n,
                         struct resp *r)
{
    int fd = dial();
    char head[512];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n%s\r\n", path,
             extra ? extra : "");
    send_all(fd, head, strlen(head));
    chunked_send(fd, b, n, 1000);
    if (read_resp(fd, r) < 0)
        r->status = 0;
    close(fd);
}

static void test_chunked(void)
{
    char *b = make_body(LIMIT + 64 * 1024, 3);
    struct resp r;
    chunked_post("/echo", NULL, b, 300000, &r);
    expect_echo(&r, b, 300000);
    resp_free(&r);
    chunked_post("/echo", NULL, b, LIMIT, &r); /* exactly at the limit */
    expect_echo(&r, b, LIMIT);
    resp_free(&r);
    /* over the limit, counted as it arrives: 413 once the (bounded) rest is drained */
    chunked_post("/echo", NULL, b, LIMIT + 1, &r);
    ASSERT_EQ_INT(r.status, 413);
    ASSERT_TRUE(body_has(&r, "http.body_too_large"));
    resp_free(&r);
    free(b);
}

static void test_chunked_endless(void)
{
    /* a client that keeps streaming far past the limit is cut off, not buffered */
    size_t n = LIMIT * 4;
    char *b = make_body(n, 4);
    struct resp r;
    chunked_post("/echo", NULL, b, n, &r);
    ASSERT_TRUE(r.status == 0 || r.status == 413);
    resp_free(&r);
    free(b);
}

static size_t gz(const char *in, size_t n, char *out, size_t cap, int window_bits)
{
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static void test_encodings(void)
{
    size_t n = 500000, cap = n + 4096;
    char *b = make_body(n, 5), *c = malloc(cap);
    struct resp r;
    size_t cn = gz(b, n, c, cap, 15 + 16);
    post("/echo", "Content-Encoding: gzip\r\n", c, cn, &r);
    expect_echo(&r, b, n);
    ASSERT_TRUE(body_has(&r, "\"enc\":\"gzip\""));
    resp_free(&r);

    cn = gz(b, n, c, cap, 15); /* zlib-wrapped deflate */
    post("/echo", "Content-Encoding: deflate\r\n", c, cn, &r);
    expect_echo(&r, b, n);
    resp_free(&r);
    cn = gz(b, n, c, cap, -15); /* raw deflate */
    post("/echo", "Content-Encoding: deflate\r\n", c, cn, &r);
    expect_echo(&r, b, n);
    resp_free(&r);

    cn = ZSTD_compress(c, cap, b, n, 3);
    post("/echo", "Content-Encoding: zstd\r\n", c, cn, &r);
    expect_echo(&r, b, n);
    ASSERT_TRUE(body_has(&r, "\"enc\":\"zstd\""));
    resp_free(&r);
    /* zstd through a chunked request */
    chunked_post("/echo", "Content-Encoding: zstd\r\n", c, cn, &r);
    expect_echo(&r, b, n);
    resp_free(&r);

    /* what sentry-ruby 5.x and sentry-java Android 2.0 send: identity */
    post("/echo", "Content-Encoding: UTF-8\r\n", b, 1000, &r);
    expect_echo(&r, b, 1000);
    resp_free(&r);

    /* corrupt gzip */
    post("/echo", "Content-Encoding: gzip\r\n", b, 1000, &r);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_TRUE(body_has(&r, "envelope.bad_compression"));
    resp_free(&r);
    free(b);
    free(c);
}

static void test_bombs_and_unsupported(void)
{
    size_t n = DECODED_LIMIT * 2, cap = 1 << 20;
    char *zeros = calloc(1, n), *c = malloc(cap);
    struct resp r;
    size_t cn = gz(zeros, n, c, cap, 15 + 16);
    ASSERT_TRUE(cn < LIMIT);
    post("/echo", "Content-Encoding: gzip\r\n", c, cn, &r);
    ASSERT_EQ_INT(r.status, 413);
    ASSERT_TRUE(body_has(&r, "\"reason\":\"envelope.too_large\""));
    resp_free(&r);
    cn = ZSTD_compress(c, cap, zeros, n, 19);
    post("/echo", "Content-Encoding: zstd\r\n", c, cn, &r);
    ASSERT_EQ_INT(r.status, 413);
    resp_free(&r);
    /* exactly at the decoded limit passes */
    cn = gz(zeros, DECODED_LIMIT, c, cap, 15 + 16);
    post("/echo", "Content-Encoding: gzip\r\n", c, cn, &r);
    expect_echo(&r, zeros, DECODED_LIMIT);
    resp_free(&r);

    post("/echo", "Content-Encoding: br\r\n", "x", 1, &r);
    ASSERT_EQ_INT(r.status, 415);
    ASSERT_TRUE(body_has(&r, "envelope.unsupported_encoding"));
    resp_free(&r);
    post("/echo", "Content-Encoding: gzip, gzip\r\n", "x", 1, &r);
    ASSERT_EQ_INT(r.status, 415);
    resp_free(&r);
    free(zeros);
    free(c);
}

static void test_smuggling(void)
{
    struct resp r;
    /* two different Content-Length values: rejected (400), never split into requests */
    roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n"
              "hello",
              NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_TRUE(body_has(&r, "conflicting Content-Length headers"));
    resp_free(&r);
    /* the same value twice is one length (RFC 9110 8.6) */
    roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n"
              "Connection: close\r\n\r\nhello",
              NULL, 0, &r);
    expect_echo(&r, "hello", 5);
    resp_free(&r);
    /* chunked plus Content-Length: rejected */
    roundtrip(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
        "\r\n5\r\nhello\r\n0\r\n\r\n",
        NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_TRUE(body_has(&r, "both Content-Length and Transfer-Encoding"));
    resp_free(&r);
    /* a bad Content-Length: MHD itself answers 400 (its own HTML page) */
    roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello", NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 400);
    resp_free(&r);
    /* truncated body: the client goes away; the server must not answer or crash */
    int fd = dial();
    const char *h = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc";
    send_all(fd, h, strlen(h));
    shutdown(fd, SHUT_WR);
    ASSERT_TRUE(read_resp(fd, &r) < 0 || r.status >= 400);
    resp_free(&r);
    close(fd);
}

static void test_routing(void)
{
    struct resp r;
    get("/nope", "GET", &r);
    ASSERT_EQ_INT(r.status, 404);
    ASSERT_TRUE(body_has(&r, "\"error\":{\"reason\":\"http.not_found\""));
    ASSERT_EQ_STR(resp_header(&r, "Content-Type"), "application/json");
    resp_free(&r);
    get("/echo", "GET", &r);
    ASSERT_EQ_INT(r.status, 405);
    ASSERT_TRUE(body_has(&r, "http.method_not_allowed"));
    ASSERT_EQ_STR(resp_header(&r, "Allow"), "POST, PUT");
    resp_free(&r);
    get("/params/one/x/t%20wo?q=a+b%26c&z", "GET", &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_STR(r.body, "one|t wo|a b&c|GET");
    ASSERT_EQ_STR(resp_header(&r, "Retry-After"), "60");
    resp_free(&r);
    get("/params/one/x/two/", "GET", &r); /* trailing slash tolerated */
    ASSERT_EQ_INT(r.status, 200);
    resp_free(&r);
    get("/params/one/x", "GET", &r);
    ASSERT_EQ_INT(r.status, 404);
    resp_free(&r);
    get("/api/42/envelope", "POST", &r); /* pattern has the slash, request not */
    ASSERT_TRUE(r.status == 401);
    resp_free(&r);
    get("/health", "GET", &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_STR(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    get("/health", "HEAD", &r);
    ASSERT_EQ_INT(r.status, 200);
    resp_free(&r);
    get("/fail", "GET", &r);
    ASSERT_EQ_INT(r.status, 503);
    ASSERT_TRUE(body_has(&r,
                         "{\"detail\":\"queue is full\",\"error\":{\"reason\":\"http.overloaded\","
                         "\"message\":\"queue is full\"}}"));
    resp_free(&r);
}

static void test_cors(void)
{
    struct resp r;
    roundtrip("OPTIONS /api/42/envelope/ HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
              "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: "
              "content-type,sentry-trace,baggage\r\nConnection: close\r\n\r\n",
              NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_STR(resp_header(&r, "Access-Control-Allow-Origin"), "*");
    ASSERT_TRUE(strstr(resp_header(&r, "Access-Control-Allow-Methods"), "POST") != NULL);
    const char *ah = resp_header(&r, "Access-Control-Allow-Headers");
    ASSERT_TRUE(ah && strstr(ah, "sentry-trace") && strstr(ah, "baggage") &&
                strstr(ah, "x-sentry-auth") && strstr(ah, "content-type") &&
                strstr(ah, "content-encoding"));
    ASSERT_EQ_STR(resp_header(&r, "Access-Control-Max-Age"), "3600");
    resp_free(&r);
    /* OPTIONS elsewhere is not CORS */
    get("/echo", "OPTIONS", &r);
    ASSERT_EQ_INT(r.status, 405);
    resp_free(&r);
    /* answers on the ingest route carry the CORS headers, errors included; any content type */
    static const char env[] = "{\"dsn\":\"https://" KEY "@o1.ingest.sentry.io/42\"}\n"
                              "{\"type\":\"profile\",\"length\":2}\n{}\n";
    post("/api/42/envelope/", "Content-Type: text/plain;charset=UTF-8\r\n", env, sizeof env - 1,
         &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_STR(resp_header(&r, "Access-Control-Allow-Origin"), "*");
    ASSERT_EQ_STR(resp_header(&r, "Access-Control-Expose-Headers"),
                  "x-sentry-error, x-sentry-rate-limits, retry-after");
    resp_free(&r);
    post("/api/42/envelope/", NULL, "", 0, &r);
    ASSERT_EQ_INT(r.status, 401);
    ASSERT_EQ_STR(resp_header(&r, "Access-Control-Allow-Origin"), "*");
    resp_free(&r);
}

static void test_ingest_auth(void)
{
    static const char env[] = "{\"dsn\":\"https://" KEY "@o1.ingest.sentry.io/42\"}\n"
                              "{\"type\":\"profile\",\"length\":2}\n{}\n";
    static const char nodsn[] = "{}\n{\"type\":\"profile\",\"length\":2}\n{}\n";
    struct resp r;
    post("/api/42/envelope/", NULL, env, sizeof env - 1, &r); /* dsn only */
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_TRUE(body_has(&r, "\"key\":\"" KEY "\",\"project\":42,\"source\":5"));
    resp_free(&r);
    post("/api/42/envelope/?sentry_key=" KEY "&sentry_version=7", NULL, nodsn, sizeof nodsn - 1,
         &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_TRUE(body_has(&r, "\"source\":4"));
    resp_free(&r);
    post("/api/42/envelope/", "X-Sentry-Auth: Sentry sentry_key=" KEY ", sentry_version=7\r\n", env,
         sizeof env - 1, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_TRUE(body_has(&r, "\"source\":1"));
    resp_free(&r);
    post("/api/43/envelope/", NULL, env, sizeof env - 1, &r); /* dsn's project is 42 */
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_TRUE(body_has(&r, "auth.header_mismatch"));
    ASSERT_TRUE(body_has(&r, "project id header mismatch between envelope and request"));
    resp_free(&r);
    post("/api/42/envelope/?sentry_key=" KEY,
         "X-Sentry-Auth: Sentry sentry_key=" KEY ", sentry_version=7\r\n", env, sizeof env - 1, &r);
    ASSERT_EQ_INT(r.status, 401);
    ASSERT_TRUE(body_has(&r, "multiple authorization payloads detected"));
    resp_free(&r);
    post("/api/42/envelope/", NULL, nodsn, sizeof nodsn - 1, &r);
    ASSERT_EQ_INT(r.status, 401);
    ASSERT_TRUE(body_has(&r, "bad envelope authentication header"));
    resp_free(&r);
    post("/api/abc/envelope/", NULL, env, sizeof env - 1, &r);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_TRUE(body_has(&r, "bad project path parameter"));
    resp_free(&r);
}

static void test_keepalive(void)
{
    int fd = dial();
    const char *req = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    struct resp r;
    for (int i = 0; i < 3; i++) {
        send_all(fd, req, strlen(req));
        ASSERT_EQ_INT(read_resp(fd, &r), 0);
        ASSERT_EQ_INT(r.status, 200);
        resp_free(&r);
    }
    /* a POST with a body, then another request on the same connection */
    const char *p = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    send_all(fd, p, strlen(p));
    ASSERT_EQ_INT(read_resp(fd, &r), 0);
    expect_echo(&r, "abc", 3);
    resp_free(&r);
    send_all(fd, req, strlen(req));
    ASSERT_EQ_INT(read_resp(fd, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    resp_free(&r);
    close(fd);
}

#define N_THREADS 8
#define PER_THREAD 25

static void *conc_worker(void *arg)
{
    intptr_t ok = 0;
    int fds[PER_THREAD];
    char *b = make_body(20000, (uint32_t)(uintptr_t)arg);
    char head[256];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n");
    for (int i = 0; i < PER_THREAD; i++)
        fds[i] = dial();
    for (int i = 0; i < PER_THREAD; i++) {
        if (fds[i] < 0)
            continue;
        send_all(fds[i], head, strlen(head));
        send_all(fds[i], b, 20000);
    }
    char want[64];
    snprintf(want, sizeof want, "\"hash\":\"%016llx\"", (unsigned long long)kl_fnv1a64(b, 20000));
    for (int i = 0; i < PER_THREAD; i++) {
        struct resp r;
        if (fds[i] >= 0 && read_resp(fds[i], &r) == 0 && r.status == 200 && body_has(&r, want))
            ok++;
        resp_free(&r);
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(b);
    return (void *)ok;
}

static void test_concurrent_200(void)
{
    pthread_t t[N_THREADS];
    for (intptr_t i = 0; i < N_THREADS; i++)
        pthread_create(&t[i], NULL, conc_worker, (void *)(i + 100));
    intptr_t total = 0;
    for (int i = 0; i < N_THREADS; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        total += (intptr_t)ok;
    }
    ASSERT_EQ_INT(total, N_THREADS * PER_THREAD);
}

static void test_metrics_endpoint(void)
{
    struct resp r;
    /* MHD reports a request done a little after its answer left: let the last ones land */
    for (int i = 0; i < 1000 && kl_http_in_flight(srv) > 0; i++) {
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    get("/metrics", "GET", &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_TRUE(body_has(&r, "# TYPE kiln_http_requests_total counter"));
    ASSERT_TRUE(body_has(&r, "kiln_http_requests_total{route=\"/echo\",status=\"200\"}"));
    ASSERT_TRUE(body_has(&r, "kiln_http_requests_total{route=\"unmatched\",status=\"404\"}"));
    ASSERT_TRUE(body_has(&r, "kiln_http_requests_total{route=\"/echo\",status=\"413\"}"));
    ASSERT_TRUE(
        body_has(&r, "kiln_http_request_duration_seconds_bucket{route=\"/slow\",le=\"+Inf\"}") ||
        body_has(&r, "kiln_http_request_duration_seconds_bucket{route=\"/echo\",le=\"+Inf\"}"));
    /* at least this request (a half-closed client may linger, see the report on MHD) */
    const char *g = r.body ? strstr(r.body, "\nkiln_http_in_flight ") : NULL;
    ASSERT_TRUE(g && strtod(g + 21, NULL) >= 1);
    ASSERT_TRUE(strncmp(resp_header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0);
    resp_free(&r);
}

static void test_metrics_registry(void)
{
    struct kl_metrics *m = kl_metrics_new();
    struct kl_metric_family *c = kl_metrics_counter(m, "kiln_items_total", "items by type");
    ASSERT_TRUE(kl_metrics_counter(m, "kiln_items_total", "again") == c);
    kl_counter_add(kl_metric_get(c, "type", "profile", NULL), 2);
    kl_counter_add(kl_metric_get(c, "type", "profile", NULL), 3);
    kl_counter_add(kl_metric_get(c, "type", "we\"ird\\\n", NULL), 1);
    struct kl_metric *g = kl_metric_get(kl_metrics_gauge(m, "kiln_queue_depth", "jobs"), NULL);
    kl_gauge_set(g, 7);
    kl_gauge_add(g, -2.5);
    static const double b[] = {0.1, 1, 10};
    struct kl_metric *h = kl_metric_get(
        kl_metrics_histogram(m, "kiln_latency_seconds", "latency", b, 3), "stage", "parse", NULL);
    kl_histogram_observe(h, 0.05);
    kl_histogram_observe(h, 0.5);
    kl_histogram_observe(h, 100);
    kl_counter_add(NULL, 1); /* no-ops */
    kl_histogram_observe(kl_metric_get(NULL, NULL), 1);
    struct kl_buf out;
    kl_buf_init(&out, 1 << 20);
    ASSERT_EQ_INT(kl_metrics_write(m, &out), 0);
    const char *want = "# HELP kiln_items_total items by type\n"
                       "# TYPE kiln_items_total counter\n"
                       "kiln_items_total{type=\"profile\"} 5\n"
                       "kiln_items_total{type=\"we\\\"ird\\\\\\n\"} 1\n"
                       "# HELP kiln_queue_depth jobs\n"
                       "# TYPE kiln_queue_depth gauge\n"
                       "kiln_queue_depth 4.5\n"
                       "# HELP kiln_latency_seconds latency\n"
                       "# TYPE kiln_latency_seconds histogram\n"
                       "kiln_latency_seconds_bucket{stage=\"parse\",le=\"0.1\"} 1\n"
                       "kiln_latency_seconds_bucket{stage=\"parse\",le=\"1\"} 2\n"
                       "kiln_latency_seconds_bucket{stage=\"parse\",le=\"10\"} 2\n"
                       "kiln_latency_seconds_bucket{stage=\"parse\",le=\"+Inf\"} 3\n"
                       "kiln_latency_seconds_sum{stage=\"parse\"} 100.55\n"
                       "kiln_latency_seconds_count{stage=\"parse\"} 3\n";
    ASSERT_EQ_STR(out.ptr, want);
    kl_buf_release(&out);
    ASSERT_EQ_INT(kl_histogram_count(h), 3);
    kl_metrics_free(m);
}

struct slow_arg {
    int status;
};

static void *slow_client(void *arg)
{
    struct slow_arg *a = arg;
    struct resp r;
    get("/slow", "GET", &r);
    a->status = r.status;
    resp_free(&r);
    return NULL;
}

/* Stop waits for the in-flight request, answers it, then refuses new connections. Run on
 * its own server in thread-per-connection mode, so both threading modes are exercised. */
static void test_graceful_stop(void)
{
    struct kl_http_config cfg = {0};
    cfg.thread_per_connection = true;
    struct kl_err err = KL_ERR_INIT;
    struct kl_http_server *s2 =
        kl_http_start(&cfg, routes, sizeof routes / sizeof routes[0], NULL, &err);
    ASSERT_TRUE(s2 != NULL);
    if (!s2)
        return;
    uint16_t saved = port;
    port = kl_http_port(s2);
    struct slow_arg a = {0};
    pthread_t t;
    pthread_create(&t, NULL, slow_client, &a);
    for (int i = 0; i < 200 && kl_http_in_flight(s2) == 0; i++) {
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    ASSERT_EQ_INT(kl_http_in_flight(s2), 1);
    kl_http_stop(s2);
    pthread_join(t, NULL);
    ASSERT_EQ_INT(a.status, 200);
    ASSERT_TRUE(dial() < 0);
    port = saved;
}

static void test_bind_errors(void)
{
    struct kl_http_config cfg = {0};
    cfg.addr = "not-an-ip";
    struct kl_err err = KL_ERR_INIT;
    ASSERT_TRUE(kl_http_start(&cfg, routes, 1, NULL, &err) == NULL);
    ASSERT_EQ_STR(kl_reason_str(err.reason), "cli.usage");
    kl_err_clear(&err);
    cfg.addr = "127.0.0.1";
    cfg.port = port; /* taken */
    ASSERT_TRUE(kl_http_start(&cfg, routes, 1, NULL, &err) == NULL);
    ASSERT_TRUE(kl_err_is_set(&err));
}

static void test_route_match_table(void)
{
    static const struct {
        const char *pattern, *path;
        bool match;
        const char *param; /* value of the first param, if any */
    } cases[] = {
        {"/api/{project_id}/envelope/", "/api/42/envelope/", true, "42"},
        {"/api/{project_id}/envelope/", "/api/42/envelope", true, "42"},
        {"/api/{project_id}/envelope", "/api/42/envelope/", true, "42"},
        {"/api/{project_id}/envelope/", "/api//envelope/", false, NULL},
        {"/api/{project_id}/envelope/", "/api/42/store/", false, NULL},
        {"/api/{project_id}/envelope/", "/api/42/envelope/x", false, NULL},
        {"/api/{project_id}/envelope/", "/api/4%32/envelope/", true, "42"},
        {"/health", "/health", true, NULL},
        {"/health", "/healthz", false, NULL},
        {"/", "/", true, NULL},
        {"/", "/x", false, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_http_kv params[KL_HTTP_MAX_PARAMS];
        size_t n = 0;
        bool m = kl_http_route_match(&a, cases[i].pattern, kl_str_c(cases[i].path), params, &n);
        if (m != cases[i].match)
            KL_FAIL_("case %zu: %s vs %s", i, cases[i].pattern, cases[i].path);
        if (m && cases[i].param) {
            ASSERT_EQ_INT(n, 1);
            ASSERT_EQ_SLICE(params[0].value, cases[i].param);
        }
        kl_arena_release(&a);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    metrics = kl_metrics_new();
    struct kl_http_config cfg = {0};
    cfg.addr = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.max_body_bytes = LIMIT;
    cfg.max_decoded_bytes = DECODED_LIMIT;
    cfg.metrics = metrics;
    struct kl_err err = KL_ERR_INIT;
    srv = kl_http_start(&cfg, routes, sizeof routes / sizeof routes[0], NULL, &err);
    if (!srv) {
        fprintf(stderr, "cannot start: %s\n", err.msg);
        return 1;
    }
    port = kl_http_port(srv);
    ASSERT_TRUE(port != 0);

    KL_RUN(test_route_match_table);
    KL_RUN(test_plain_post);
    KL_RUN(test_content_length_limits);
    KL_RUN(test_chunked);
    KL_RUN(test_chunked_endless);
    KL_RUN(test_encodings);
    KL_RUN(test_bombs_and_unsupported);
    KL_RUN(test_smuggling);
    KL_RUN(test_routing);
    KL_RUN(test_cors);
    KL_RUN(test_ingest_auth);
    KL_RUN(test_keepalive);
    KL_RUN(test_concurrent_200);
    KL_RUN(test_metrics_endpoint);
    KL_RUN(test_metrics_registry);
    KL_RUN(test_graceful_stop);
    KL_RUN(test_bind_errors);

    kl_http_stop(srv);
    kl_metrics_free(metrics);
    KL_TEST_DONE();
}
