/* server.c - libmicrohttpd daemon, routing, bounded body intake, responses (see http.h)
 *
 * MHD calls the access handler several times per request: once when the headers are in
 * (upload_data_size == 0, first call), once per body piece (upload_data_size > 0), and a
 * last time when the body is complete (upload_data_size == 0 again). Per-request state
 * (struct kl_http_conn) is created earlier, in the URI log callback, so the raw URI (with
 * its undecoded query) is kept, and freed in the request-completed callback, which MHD runs
 * after the answer was sent or the connection died.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/time.h"
#include "http/metrics.h"

/* A client that keeps sending after its body went over the limit while MHD could not answer
 * yet is read and discarded for this many more bytes, then disconnected. */
#define DISCARD_SLACK ((size_t)1024 * 1024)
#define INITIAL_BODY_CAP ((size_t)64 * 1024)
#define CONNECTION_MEMORY ((size_t)64 * 1024)
#define CORS_ALLOW_HEADERS                                                                         \
    "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, "    \
    "authentication, authorization, content-encoding, transfer-encoding, sentry-trace, baggage"
#define CORS_EXPOSE_HEADERS "x-sentry-error, x-sentry-rate-limits, retry-after"

struct kl_http_server {
    struct MHD_Daemon *d;
    struct kl_http_config cfg; /* with defaults filled in */
    const struct kl_route *routes;
    size_t n_routes;
    void *app;
    uint16_t port;
    _Atomic unsigned in_flight;
    _Atomic size_t budget_used; /* body bytes reserved by all connections (max_inflight) */
    _Atomic bool stopping;
    struct kl_metric_family *m_requests;
    struct kl_metric_family *m_latency;
    struct kl_metric_family *m_body_bytes;
    struct kl_metric *m_in_flight;
};

struct kl_http_conn {
    struct kl_http_server *srv;
    struct MHD_Connection *mc;
    struct kl_arena arena;
    struct kl_req req;
    const char *raw_uri; /* arena copy */
    bool started;        /* first access-handler call done */
    bool answered;       /* a response was queued */
    bool discarding;     /* over the limit, answer pending: drop body bytes */
    size_t discarded;
    struct kl_err pending; /* answer to give once MHD allows it */
    char *buf;             /* raw body (malloc), KL_PADDING spare bytes after cap */
    size_t len, cap;
    size_t reserved; /* bytes of the server's in-flight budget this request holds */
};

/* Take n bytes of the in-flight budget for c; false (nothing taken) when they do not fit. */
static bool budget_take(struct kl_http_conn *c, size_t n)
{
    struct kl_http_server *s = c->srv;
    size_t used = atomic_load(&s->budget_used);
    do {
        if (n > s->cfg.max_inflight_bytes || used > s->cfg.max_inflight_bytes - n)
            return false;
    } while (!atomic_compare_exchange_weak(&s->budget_used, &used, used + n));
    c->reserved += n;
    return true;
}

static void budget_give(struct kl_http_conn *c, size_t n)
{
    if (n > c->reserved)
        n = c->reserved;
    atomic_fetch_sub(&c->srv->budget_used, n);
    c->reserved -= n;
}

static void overloaded(struct kl_http_conn *c, struct kl_err *e)
{
    kl_err_set(e, KL_R_HTTP_OVERLOADED,
               "the server holds %zu bytes of request bodies (limit %zu); retry later",
               atomic_load(&c->srv->budget_used), c->srv->cfg.max_inflight_bytes);
    kl_http_add_header(&c->req, "Retry-After", "1");
}

/* ==================================================================================== */
/* Small helpers                                                                         */

char *kl_http_url_decode(struct kl_arena *a, struct kl_str s, bool form, size_t *out_len)
{
    char *out = kl_arena_alloc(a, s.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '%' && i + 2 < s.len && kl_hex_digit(s.ptr[i + 1]) >= 0 &&
            kl_hex_digit(s.ptr[i + 2]) >= 0) {
            out[n++] = (char)(kl_hex_digit(s.ptr[i + 1]) << 4 | kl_hex_digit(s.ptr[i + 2]));
            i += 2;
        } else if (c == '+' && form) {
            out[n++] = ' ';
        } else {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

/* Next non-empty '/'-separated segment of [*p, end); false at the end. Empty segments
 * ("//", a trailing '/') are skipped, which makes matching trailing-slash tolerant. */
static bool next_segment(const char **p, const char *end, struct kl_str *seg)
{
    while (*p < end && **p == '/')
        (*p)++;
    if (*p >= end)
        return false;
    const char *s = *p;
    while (*p < end && **p != '/')
        (*p)++;
    *seg = kl_str_make(s, (size_t)(*p - s));
    return true;
}

bool kl_http_route_match(struct kl_arena *a, const char *pattern, struct kl_str path,
                         struct kl_http_kv *params, size_t *n_params)
{
    const char *pp = pattern, *pend = pattern + strlen(pattern);
    const char *sp = path.ptr, *send = path.ptr + path.len;
    size_t np = 0;
    for (;;) {
        struct kl_str pseg, sseg;
        bool more_p = next_segment(&pp, pend, &pseg);
        bool more_s = next_segment(&sp, send, &sseg);
        if (!more_p || !more_s) {
            if (more_p || more_s)
                return false;
            break;
        }
        size_t dn;
        char *dec = kl_http_url_decode(a, sseg, false, &dn);
        if (pseg.len >= 2 && pseg.ptr[0] == '{' && pseg.ptr[pseg.len - 1] == '}') {
            if (dn == 0 || np >= KL_HTTP_MAX_PARAMS)
                return false;
            params[np].name = kl_str_make(pseg.ptr + 1, pseg.len - 2);
            params[np].value = kl_str_make(dec, dn);
            np++;
        } else if (!kl_str_eq(pseg, kl_str_make(dec, dn))) {
            return false;
        }
    }
    *n_params = np;
    return true;
}

static void json_escape(struct kl_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            kl_buf_putc(b, '\\');
            kl_buf_putc(b, (char)c);
        } else if (c < 0x20) {
            kl_buf_printf(b, "\\u%04x", c);
        } else {
            kl_buf_putc(b, (char)c);
        }
    }
}

static void parse_query(struct kl_req *req)
{
    struct kl_str q = req->raw_query;
    if (!q.ptr)
        return;
    const char *p = q.ptr, *end = q.ptr + q.len;
    while (p && p < end && req->n_query < KL_HTTP_MAX_QUERY) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        if (pend > p) {
            const char *eq = memchr(p, '=', (size_t)(pend - p));
            struct kl_str k = kl_str_make(p, (size_t)((eq ? eq : pend) - p));
            struct kl_str v = eq ? kl_str_make(eq + 1, (size_t)(pend - eq - 1)) : KL_STR("");
            struct kl_http_kv *kv = &req->query[req->n_query++];
            size_t n;
            kv->name.ptr = kl_http_url_decode(req->arena, k, true, &n);
            kv->name.len = n;
            kv->value.ptr = kl_http_url_decode(req->arena, v, true, &n);
            kv->value.len = n;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
}

/* ==================================================================================== */
/* Request accessors and response helpers                                                */

struct kl_str kl_req_header(const struct kl_req *req, const char *name)
{
    const char *v = MHD_lookup_connection_value(req->conn->mc, MHD_HEADER_KIND, name);
    return v ? kl_str_c(v) : KL_STR_NULL;
}

struct kl_str kl_req_param(const struct kl_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++)
        if (kl_str_eq_c(req->params[i].name, name))
            return req->params[i].value;
    return KL_STR_NULL;
}

struct kl_str kl_req_query(const struct kl_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_query; i++)
        if (kl_str_eq_c(req->query[i].name, name))
            return req->query[i].value;
    return KL_STR_NULL;
}

int kl_http_reply(struct kl_req *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    req->status = status;
    req->resp_type = kl_arena_strndup(req->arena, content_type, strlen(content_type));
    req->resp_body = kl_arena_strndup(req->arena, body ? body : "", body ? len : 0);
    req->resp_len = body ? len : 0;
    return 0;
}

int kl_http_reply_json(struct kl_req *req, int status, const char *json, size_t len)
{
    return kl_http_reply(req, status, "application/json", json, len);
}

int kl_http_add_header(struct kl_req *req, const char *name, const char *value)
{
    if (req->n_resp_headers >= KL_HTTP_MAX_EXTRA_HEADERS)
        return -1;
    struct kl_http_header *h = &req->resp_headers[req->n_resp_headers++];
    h->name = kl_arena_strndup(req->arena, name, strlen(name));
    h->value = kl_arena_strndup(req->arena, value, strlen(value));
    return 0;
}

int kl_http_reply_error_status(struct kl_req *req, int status, const struct kl_err *err)
{
    struct kl_buf b;
    kl_buf_init(&b, 4096);
    const char *msg = err->msg[0] ? err->msg : kl_reason_str(err->reason);
    kl_buf_puts(&b, "{\"detail\":\"");
    json_escape(&b, msg);
    kl_buf_puts(&b, "\",\"error\":{\"reason\":\"");
    json_escape(&b, kl_reason_str(err->reason));
    kl_buf_puts(&b, "\",\"message\":\"");
    json_escape(&b, msg);
    kl_buf_puts(&b, "\"}}");
    kl_http_reply_json(req, status, b.ptr, b.len);
    kl_buf_release(&b);
    return 0;
}

int kl_http_reply_error(struct kl_req *req, const struct kl_err *err)
{
    return kl_http_reply_error_status(req, kl_reason_http_status(err->reason), err);
}

int kl_http_handle_health(struct kl_req *req)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return kl_http_reply_json(req, 200, ok, sizeof ok - 1);
}

int kl_http_handle_metrics(struct kl_req *req)
{
    struct kl_metrics *m = req->conn->srv->cfg.metrics;
    if (!m)
        return kl_err_set(&req->err, KL_R_HTTP_NOT_FOUND, "no metrics registry");
    struct kl_buf b;
    kl_buf_init(&b, (size_t)64 * 1024 * 1024);
    if (kl_metrics_write(m, &b) < 0) {
        kl_err_set(&req->err, b.err.reason, "%s", b.err.msg);
        kl_buf_release(&b);
        return -1;
    }
    kl_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len);
    kl_buf_release(&b);
    return 0;
}

/* ==================================================================================== */
/* Answering                                                                             */

static bool method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

static enum MHD_Result queue(struct kl_http_conn *c)
{
    struct kl_req *r = &c->req;
    if (r->status == 0) {
        struct kl_err e = KL_ERR_INIT;
        kl_err_set(&e, KL_R_INTERNAL, "handler did not answer");
        kl_http_reply_error(r, &e);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->resp_len, (void *)(r->resp_body ? r->resp_body : ""), MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (r->resp_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->route && (r->route->flags & KL_ROUTE_CORS)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    }
    for (size_t i = 0; i < r->n_resp_headers; i++)
        MHD_add_response_header(resp, r->resp_headers[i].name, r->resp_headers[i].value);
    if (atomic_load(&c->srv->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        c->answered = true;
    return ret;
}

static enum MHD_Result answer_error(struct kl_http_conn *c, const struct kl_err *e)
{
    kl_http_reply_error(&c->req, e);
    return queue(c);
}

/* ==================================================================================== */
/* Headers complete: route, limits, encoding                                             */

struct clen_scan {
    const char *first;
    bool conflict;
};

static enum MHD_Result scan_clen(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct clen_scan *sc = cls;
    if (!key || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (!sc->first)
        sc->first = value ? value : "";
    else if (!value || strcmp(sc->first, value) != 0)
        sc->conflict = true;
    return MHD_YES;
}

static enum MHD_Result on_headers(struct kl_http_conn *c, const char *method)
{
    struct kl_http_server *s = c->srv;
    struct kl_req *r = &c->req;
    struct kl_err e = KL_ERR_INIT;
    r->method = kl_arena_strndup(r->arena, method, strlen(method));

    const char *uri = c->raw_uri ? c->raw_uri : "/";
    const char *qm = strchr(uri, '?');
    struct kl_str raw_path = kl_str_make(uri, qm ? (size_t)(qm - uri) : strlen(uri));
    size_t dn;
    r->path.ptr = kl_http_url_decode(r->arena, raw_path, false, &dn);
    r->path.len = dn;
    if (qm)
        r->raw_query = kl_str_c(qm + 1);
    parse_query(r);

    /* route: the first row whose pattern and method match; remember the methods of rows
     * whose pattern matched for 405/Allow and CORS preflight */
    char allow[128] = "";
    size_t allow_len = 0;
    bool path_matched = false, cors = false;
    const struct kl_route *cors_route = NULL;
    bool head = method_is(method, "HEAD");
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct kl_route *rt = &s->routes[i];
        struct kl_http_kv params[KL_HTTP_MAX_PARAMS];
        size_t np = 0;
        if (!kl_http_route_match(r->arena, rt->pattern, raw_path, params, &np))
            continue;
        path_matched = true;
        if (method_is(method, rt->method) || (head && method_is(rt->method, "GET"))) {
            r->route = rt;
            memcpy(r->params, params, np * sizeof params[0]);
            r->n_params = np;
            break;
        }
        if (rt->flags & KL_ROUTE_CORS) {
            cors = true;
            cors_route = rt;
        }
        if (!strstr(allow, rt->method)) {
            int w = snprintf(allow + allow_len, sizeof allow - allow_len, "%s%s",
                             allow_len ? ", " : "", rt->method);
            if (w > 0 && (size_t)w < sizeof allow - allow_len)
                allow_len += (size_t)w;
        }
    }
    if (!r->route) {
        if (!path_matched) {
            kl_err_set(&e, KL_R_HTTP_NOT_FOUND, "no route for '%.200s'", r->path.ptr);
            return answer_error(c, &e);
        }
        if (cors && method_is(method, "OPTIONS")) {
            r->route = cors_route;
            kl_http_reply(r, 200, "text/plain", "", 0);
            kl_http_add_header(r, "Access-Control-Allow-Methods", allow);
            kl_http_add_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
            kl_http_add_header(r, "Access-Control-Max-Age", "3600");
            return queue(c);
        }
        kl_http_add_header(r, "Allow", allow);
        kl_err_set(&e, KL_R_HTTP_METHOD_NOT_ALLOWED, "method '%.16s' not allowed on '%.200s'",
                   method, r->path.ptr);
        return answer_error(c, &e);
    }

    /* framing: one Content-Length, and not together with Transfer-Encoding (request
     * smuggling; nginx answers 400 to both) */
    struct clen_scan scan = {NULL, false};
    MHD_get_connection_values(c->mc, MHD_HEADER_KIND, scan_clen, &scan);
    const char *clen = scan.first;
    const char *te =
        MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (scan.conflict) {
        kl_err_set(&e, KL_R_HTTP_BAD_REQUEST, "conflicting Content-Length headers");
        return answer_error(c, &e);
    }
    if (clen && te) {
        kl_err_set(&e, KL_R_HTTP_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        return answer_error(c, &e);
    }
    if (clen) {
        uint64_t n;
        if (!kl_parse_u64(kl_str_c(clen), &n)) {
            kl_err_set(&e, KL_R_HTTP_BAD_REQUEST, "bad Content-Length");
            return answer_error(c, &e);
        }
        if (n > s->cfg.max_body_bytes) {
            kl_err_set(&e, KL_R_HTTP_BODY_TOO_LARGE,
                       "request body of %llu bytes is over the limit of %zu bytes",
                       (unsigned long long)n, s->cfg.max_body_bytes);
            return answer_error(c, &e);
        }
        c->cap = (size_t)n;
        /* the whole declared body is reserved now, so a refusal comes before any byte is
         * read (as the 413 does) */
        if (!budget_take(c, (size_t)n)) {
            overloaded(c, &e);
            return answer_error(c, &e);
        }
    }

    struct kl_str ce = kl_req_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (ce.ptr && kl_encoding_from_header(ce, &r->encoding, &e) < 0)
        return answer_error(c, &e);
    if (r->route->admit) {
        kl_err_clear(&r->err);
        if (r->route->admit(r) < 0) {
            if (!kl_err_is_set(&r->err))
                kl_err_set(&r->err, KL_R_INTERNAL, "admission refused without a reason");
            c->pending = r->err;
            c->discarding = true; /* read and drop the body, then answer */
        }
    }
    return MHD_YES;
}

/* ==================================================================================== */
/* Body intake                                                                           */

static void over_limit(struct kl_http_conn *c)
{
    kl_err_set(&c->pending, KL_R_HTTP_BODY_TOO_LARGE, "request body is over the limit of %zu bytes",
               c->srv->cfg.max_body_bytes);
    c->discarding = true;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

static enum MHD_Result on_body(struct kl_http_conn *c, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (c->discarding) {
        c->discarded += n;
        return c->discarded > DISCARD_SLACK ? MHD_NO : MHD_YES;
    }
    size_t max = c->srv->cfg.max_body_bytes;
    if (n > max - c->len) {
        /* MHD 0.9.75 refuses a response while the body is still arriving (measured:
         * MHD_queue_response returns MHD_NO), so the 413 is given when the body ends, and a
         * client still sending DISCARD_SLACK bytes later is disconnected instead */
        over_limit(c);
        c->discarded = n;
        return MHD_YES;
    }
    if (c->len + n > c->cap || !c->buf) {
        size_t want = c->cap ? c->cap : INITIAL_BODY_CAP;
        while (want < c->len + n)
            want = want > max / 2 ? max : want * 2;
        size_t held = c->reserved; /* only the raw body is reserved while it arrives */
        if (want > held && !budget_take(c, want - held)) {
            overloaded(c, &c->pending);
            c->discarding = true;
            c->discarded = n;
            free(c->buf);
            c->buf = NULL;
            budget_give(c, c->reserved);
            c->len = c->cap = 0;
            return MHD_YES;
        }
        c->buf = kl_xrealloc(c->buf, want + KL_PADDING);
        c->cap = want;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return MHD_YES;
}

static enum MHD_Result on_complete(struct kl_http_conn *c)
{
    struct kl_http_server *s = c->srv;
    struct kl_req *r = &c->req;
    if (kl_err_is_set(&c->pending))
        return answer_error(c, &c->pending);

    r->wire_len = c->len;
    r->wire = c->buf ? c->buf : "";
    if (r->encoding == KL_ENC_IDENTITY) {
        if (c->len > s->cfg.max_decoded_bytes) {
            struct kl_err e = KL_ERR_INIT;
            kl_err_set(&e, KL_R_ENVELOPE_TOO_LARGE, "body of %zu bytes is over the limit of %zu",
                       c->len, s->cfg.max_decoded_bytes);
            return answer_error(c, &e);
        }
        if (!c->buf) {
            char *z = kl_arena_calloc(r->arena, 1, KL_PADDING);
            r->body = z;
        } else {
            memset(c->buf + c->len, 0, KL_PADDING);
            r->body = c->buf;
        }
        r->body_len = c->len;
    } else {
        char *out;
        size_t out_len;
        struct kl_err e = KL_ERR_INIT;
        const char *in = c->buf ? c->buf : "";
        size_t hint = kl_decompress_size_hint(r->encoding, in, c->len, s->cfg.max_decoded_bytes);
        if (!budget_take(c, hint)) {
            overloaded(c, &e);
            return answer_error(c, &e);
        }
        if (kl_decompress(r->arena, r->encoding, in, c->len, s->cfg.max_decoded_bytes, &out,
                          &out_len, &e) < 0)
            return answer_error(c, &e);
        /* settle the reservation on the real size */
        if (out_len < hint)
            budget_give(c, hint - out_len);
        else if (out_len > hint && !budget_take(c, out_len - hint)) {
            overloaded(c, &e);
            return answer_error(c, &e);
        }
        r->body = out;
        r->body_len = out_len;
    }

    kl_err_clear(&r->err);
    int rc = r->route->handler(r);
    if (rc < 0 || kl_err_is_set(&r->err)) {
        if (!kl_err_is_set(&r->err))
            kl_err_set(&r->err, KL_R_INTERNAL, "handler failed without a reason");
        kl_http_reply_error(r, &r->err);
    }
    return queue(c);
}

/* ==================================================================================== */
/* MHD callbacks                                                                         */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct kl_http_server *s = cls;
    struct kl_http_conn *c = kl_xcalloc(1, sizeof *c);
    c->srv = s;
    c->mc = mc;
    kl_arena_init(&c->arena);
    c->raw_uri = kl_arena_strndup(&c->arena, uri ? uri : "/", uri ? strlen(uri) : 1);
    struct kl_req *r = &c->req;
    r->arena = &c->arena;
    r->app = s->app;
    r->conn = c;
    r->method = "";
    r->body = "";
    r->start_ns = kl_monotonic_ns();
    struct kl_uuid id;
    kl_uuid_v4(&id);
    kl_uuid_hex(&id, r->id);
    atomic_fetch_add(&s->in_flight, 1);
    kl_gauge_add(s->m_in_flight, 1);
    return c;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct kl_http_conn *c = *con_cls;
    if (!c)
        return MHD_NO;
    c->mc = mc;
    if (!c->started) {
        c->started = true;
        return on_headers(c, method);
    }
    if (c->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size)
        return on_body(c, upload_data, upload_data_size);
    return on_complete(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)mc;
    struct kl_http_server *s = cls;
    struct kl_http_conn *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    struct kl_req *r = &c->req;
    if (s->m_requests) {
        const char *route =
            r->route ? (r->route->name ? r->route->name : r->route->pattern) : "unmatched";
        char status[16];
        if (c->answered && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            snprintf(status, sizeof status, "%d", r->status);
        else
            snprintf(status, sizeof status, "%s", "aborted");
        kl_counter_add(kl_metric_get(s->m_requests, "route", route, "status", status, NULL), 1);
        double secs = (double)(kl_monotonic_ns() - r->start_ns) / 1e9;
        kl_histogram_observe(kl_metric_get(s->m_latency, "route", route, NULL), secs);
        kl_counter_add(kl_metric_get(s->m_body_bytes, "route", route, NULL), c->len);
    }
    free(c->buf);
    kl_arena_release(&c->arena);
    budget_give(c, c->reserved);
    free(c);
    kl_gauge_add(s->m_in_flight, -1);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ==================================================================================== */
/* Lifecycle                                                                             */

struct kl_http_server *kl_http_start(const struct kl_http_config *cfg,
                                     const struct kl_route *routes, size_t n, void *app,
                                     struct kl_err *err)
{
    struct kl_http_server *s = kl_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.addr)
        s->cfg.addr = "127.0.0.1";
    if (!s->cfg.threads)
        s->cfg.threads = KL_HTTP_DEFAULT_THREADS;
    if (!s->cfg.max_body_bytes)
        s->cfg.max_body_bytes = KL_HTTP_DEFAULT_MAX_BODY;
    if (!s->cfg.max_decoded_bytes)
        s->cfg.max_decoded_bytes = KL_HTTP_DEFAULT_MAX_BODY;
    if (!s->cfg.timeout_s)
        s->cfg.timeout_s = KL_HTTP_DEFAULT_TIMEOUT_S;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = KL_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!s->cfg.max_inflight_bytes)
        s->cfg.max_inflight_bytes = KL_HTTP_DEFAULT_MAX_INFLIGHT;
    if (!s->cfg.drain_timeout_ms)
        s->cfg.drain_timeout_ms = 10000;
    s->routes = routes;
    s->n_routes = n;
    s->app = app;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (strchr(s->cfg.addr, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(s->cfg.port);
        if (inet_pton(AF_INET6, s->cfg.addr, &a6->sin6_addr) != 1)
            goto bad_addr;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(s->cfg.port);
        if (inet_pton(AF_INET, s->cfg.addr, &a4->sin_addr) != 1)
            goto bad_addr;
    }
    unsigned pool = s->cfg.threads;
    if (s->cfg.thread_per_connection) {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
        pool = 0;
    } else if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) {
        flags |= MHD_USE_EPOLL;
    } else {
        flags |= MHD_USE_POLL;
    }

    if (s->cfg.metrics) {
        s->m_requests = kl_metrics_counter(s->cfg.metrics, "kiln_http_requests_total",
                                           "HTTP requests answered, by route and status");
        s->m_latency =
            kl_metrics_histogram(s->cfg.metrics, "kiln_http_request_duration_seconds",
                                 "time from request line to answer sent, by route",
                                 kl_metrics_latency_buckets, kl_metrics_latency_buckets_n);
        s->m_body_bytes = kl_metrics_counter(s->cfg.metrics, "kiln_http_request_body_bytes_total",
                                             "request body bytes received, by route");
        s->m_in_flight = kl_metric_get(kl_metrics_gauge(s->cfg.metrics, "kiln_http_in_flight",
                                                        "requests being received or handled"),
                                       NULL);
    }

    struct MHD_OptionItem opts[12];
    size_t no = 0;
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.timeout_s, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, NULL};
    opts[no++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s};
    if (pool > 1)
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, pool, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->d = MHD_start_daemon(flags, s->cfg.port, NULL, NULL, on_access, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!s->d) {
        kl_err_set(err, KL_R_INTERNAL, "cannot listen on '%s' port %u: %s", s->cfg.addr,
                   (unsigned)s->cfg.port, strerror(errno));
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return s;

bad_addr:
    kl_err_set(err, KL_R_USAGE, "bad listen address '%s'", s->cfg.addr);
    free(s);
    return NULL;
}

uint16_t kl_http_port(const struct kl_http_server *s)
{
    return s->port;
}

unsigned kl_http_in_flight(const struct kl_http_server *s)
{
    return atomic_load(&((struct kl_http_server *)s)->in_flight);
}

void kl_http_stop(struct kl_http_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->d);
    int64_t deadline = kl_monotonic_ns() + (int64_t)s->cfg.drain_timeout_ms * 1000000;
    while (atomic_load(&s->in_flight) > 0 && kl_monotonic_ns() < deadline) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    free(s);
}
