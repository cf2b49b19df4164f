/* http.h - the HTTP edge of `kiln serve`: server, route table, requests, responses
 *
 * What: kl_http_start runs a libmicrohttpd 0.9.x daemon on an address and port, matches each
 * request against a static route table, buffers and decompresses the body within limits,
 * and calls the route's handler with a struct kl_req. Handlers answer with the kl_http_reply*
 * helpers; errors are rendered at this edge as
 *   {"detail":"<message>","error":{"reason":"<reason>","message":"<message>"}}
 * with the reason's HTTP status (STYLE B5; "detail" is the field Relay's ApiErrorResponse
 * uses, so tools written against Relay find the same text).
 *
 * Model:
 *   struct kl_route       one row of the table: method, pattern, handler, flags, metric name.
 *                         Patterns are literal segments and "{name}" segments (one segment,
 *                         non-empty); a trailing slash on either side is ignored, as Sentry's
 *                         URLs are. HEAD matches GET routes.
 *   struct kl_http_server opaque; one MHD daemon.
 *   struct kl_req         one request: method, path, path params, query params, headers,
 *                         body, a request id, an arena, and the response being built.
 * Request flow: URI seen -> state + arena allocated -> headers complete: route match
 * (404/405/CORS preflight answered here), Content-Length checked (413 before any body byte
 * is read), Content-Encoding checked (415) -> body pieces appended, counted against
 * max_body_bytes as they arrive (chunked bodies too) -> body complete: decoded with
 * kl_decompress within max_decoded_bytes (413 envelope.too_large, 400 bad_compression)
 * -> handler -> response queued -> arena released when MHD reports the request done.
 * Memory: every body byte held (the raw buffer as it grows, then the decoded copy) is
 * reserved first from one budget shared by all connections (max_inflight_bytes); a request
 * that does not fit gets 503 http.overloaded with Retry-After and its body is dropped, so
 * many large uploads at once cannot exhaust memory. The decoded copy is reserved at the
 * decoder's first allocation (kl_decompress_size_hint) and settled on its real size; only a
 * body that outgrows its hint (deflate without a size, a lying ISIZE) briefly holds more,
 * at most max_decoded_bytes.
 *
 * Threads (dependency-bench.md §7, measured here): MHD's internal polling threads with epoll
 * and a pool of `threads` (default 2) was the fastest libmicrohttpd mode, 34k req/s of 100 KB
 * POSTs on 2 cores. Handlers run on those pool threads: they must not block for long (kiln's
 * ingest handler only enqueues). `thread_per_connection` switches to one thread per
 * connection (poll), for handlers that must block.
 *
 * Why libmicrohttpd: the simplest correct API of the three measured, with limits, timeouts,
 * chunked decoding and 100-continue built in; LGPL, linked dynamically.
 *
 * Ownership: everything reachable from a kl_req (params, headers copies, body, response)
 * lives in req->arena and dies after the response has been sent. The route table, config
 * and app pointer are borrowed and must outlive the server.
 * Errors: kl_http_start: KL_R_INTERNAL (cannot bind/listen), KL_R_USAGE (bad address).
 * Requests: KL_R_HTTP_* , KL_R_ENVELOPE_TOO_LARGE, KL_R_ENVELOPE_DECOMPRESS,
 * KL_R_ENVELOPE_UNSUPPORTED_ENCODING, and whatever handlers set. Never logs.
 * Limits: struct kl_http_config (body bytes on the wire, decoded bytes, connections,
 * timeout); KL_HTTP_MAX_PARAMS path params, KL_HTTP_MAX_QUERY query params.
 * Tests: tests/unit/test_http_server.c (real server on 127.0.0.1:0, raw sockets),
 * tests/unit/test_http_auth.c (auth.h).
 */
#ifndef KL_HTTP_HTTP_H
#define KL_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/decompress.h"
#include "base/err.h"
#include "base/str.h"

struct kl_metrics;

/* Relay's defaults: limits.max_envelope_size (200 MiB) for the body as received and
 * decoded. */
#define KL_HTTP_DEFAULT_MAX_BODY ((size_t)200 * 1024 * 1024)
#define KL_HTTP_DEFAULT_THREADS 2
#define KL_HTTP_DEFAULT_TIMEOUT_S 30
#define KL_HTTP_DEFAULT_MAX_CONNECTIONS 1000
#define KL_HTTP_DEFAULT_MAX_INFLIGHT ((size_t)1 << 30) /* reliability.md: 1 GiB in flight */
#define KL_HTTP_MAX_PARAMS 8
#define KL_HTTP_MAX_QUERY 32
#define KL_HTTP_MAX_EXTRA_HEADERS 16

struct kl_http_config {
    const char *addr;           /* IPv4 or IPv6 literal; NULL: "127.0.0.1" */
    uint16_t port;              /* 0: ephemeral, see kl_http_port */
    unsigned threads;           /* pool size; 0: KL_HTTP_DEFAULT_THREADS */
    bool thread_per_connection; /* instead of the pool */
    size_t max_body_bytes;      /* as received (compressed); 0: KL_HTTP_DEFAULT_MAX_BODY */
    size_t max_decoded_bytes;   /* after Content-Encoding; 0: KL_HTTP_DEFAULT_MAX_BODY */
    unsigned timeout_s;         /* idle connection timeout; 0: KL_HTTP_DEFAULT_TIMEOUT_S */
    unsigned max_connections;   /* 0: KL_HTTP_DEFAULT_MAX_CONNECTIONS */
    size_t max_inflight_bytes;  /* request bodies held at once, as received and decoded,
                                   across all connections: beyond it 503 http.overloaded
                                   with Retry-After; 0: KL_HTTP_DEFAULT_MAX_INFLIGHT */
    unsigned drain_timeout_ms;  /* kl_http_stop waits this long for in-flight requests;
                                   0: 10000 */
    struct kl_metrics *metrics; /* optional: requests by route and status, latency */
};

/* Route flags. */
#define KL_ROUTE_CORS 1u /* browser ingest: OPTIONS preflight, Access-Control-* on answers */

struct kl_req;
typedef int kl_route_fn(struct kl_req *req);
/* Optional admission check, called when the headers are complete: -1 with req->err set
 * refuses the request before its body is decoded (the body is read and dropped, then the
 * error is answered with any headers the check added, e.g. Retry-After). Cheap refusals
 * under overload: a 429 then costs no inflate. */
typedef int kl_admit_fn(struct kl_req *req);

/* A handler returns 0 after replying with a kl_http_reply* helper, or -1 with req->err set
 * (the server renders it). Returning 0 without a reply answers 500. */
struct kl_route {
    const char *method;  /* "GET", "POST", ... (exact, upper case) */
    const char *pattern; /* "/api/{project_id}/envelope/" */
    kl_route_fn *handler;
    unsigned flags;     /* KL_ROUTE_* */
    const char *name;   /* metrics label; NULL: the pattern */
    kl_admit_fn *admit; /* optional, see kl_admit_fn */
};

struct kl_http_kv {
    struct kl_str name;
    struct kl_str value;
};

struct kl_http_header {
    const char *name;  /* arena copy, NUL-terminated */
    const char *value; /* arena copy */
};

struct kl_http_conn;

struct kl_req {
    struct kl_arena *arena; /* per request; released after the response is sent */
    void *app;              /* from kl_http_start */
    const struct kl_route *route;
    const char *method;      /* "GET", "POST", ... */
    struct kl_str path;      /* percent-decoded, without the query */
    struct kl_str raw_query; /* as received after '?', not decoded; absent: ptr NULL */
    struct kl_http_kv params[KL_HTTP_MAX_PARAMS]; /* {name} segments, decoded */
    size_t n_params;
    struct kl_http_kv query[KL_HTTP_MAX_QUERY]; /* form-decoded ('+' is a space) */
    size_t n_query;
    const char *body; /* decoded; KL_PADDING zero bytes after body_len; never NULL */
    size_t body_len;
    size_t wire_len;           /* bytes received before decoding */
    const char *wire;          /* those bytes as received (== body for identity); valid
                                  until the response is sent */
    enum kl_encoding encoding; /* from Content-Encoding */
    char id[33];               /* request id, 32 hex + NUL (also sent as X-Request-Id) */
    int64_t start_ns;          /* kl_monotonic_ns when the request line arrived */
    struct kl_err err;         /* a handler's failure, rendered by the server */

    /* response, built by the kl_http_reply* helpers */
    int status; /* 0 until a reply is set */
    const char *resp_type;
    const char *resp_body;
    size_t resp_len;
    struct kl_http_header resp_headers[KL_HTTP_MAX_EXTRA_HEADERS];
    size_t n_resp_headers;

    struct kl_http_conn *conn; /* server internals */
};

struct kl_http_server;

/* Start listening and serving. routes[0..n) and cfg, app must outlive the server. Returns
 * the server or NULL with *err set. */
struct kl_http_server *kl_http_start(const struct kl_http_config *cfg,
                                     const struct kl_route *routes, size_t n, void *app,
                                     struct kl_err *err);

/* The bound port (the ephemeral one when cfg->port was 0). */
uint16_t kl_http_port(const struct kl_http_server *s);

/* Graceful stop: stop accepting, wait up to drain_timeout_ms for requests being received or
 * handled to finish and their answers to be sent, then close every connection and free the
 * server. NULL is a no-op. */
void kl_http_stop(struct kl_http_server *s);

/* Requests currently between "request line seen" and "answer sent". */
unsigned kl_http_in_flight(const struct kl_http_server *s);

/* ---- request accessors ------------------------------------------------------------- */

/* A request header by case-insensitive name; the first one if repeated. Absent: ptr NULL.
 * The value lives as long as the request. */
struct kl_str kl_req_header(const struct kl_req *req, const char *name);
/* A path parameter ("project_id"); absent: ptr NULL. */
struct kl_str kl_req_param(const struct kl_req *req, const char *name);
/* The first query parameter with this name, decoded; absent: ptr NULL. */
struct kl_str kl_req_query(const struct kl_req *req, const char *name);

/* ---- responses --------------------------------------------------------------------- */

/* Set the answer: status, Content-Type and body (copied into the arena). Returns 0. */
int kl_http_reply(struct kl_req *req, int status, const char *content_type, const char *body,
                  size_t len);
/* The same with "application/json". */
int kl_http_reply_json(struct kl_req *req, int status, const char *json, size_t len);
/* Add a response header (copied), e.g. Retry-After or X-Sentry-Rate-Limits. Returns 0, or
 * -1 past KL_HTTP_MAX_EXTRA_HEADERS. */
int kl_http_add_header(struct kl_req *req, const char *name, const char *value);
/* Render err as the JSON error body with its reason's status. Returns 0. */
int kl_http_reply_error(struct kl_req *req, const struct kl_err *err);
/* The same with an explicit status (e.g. 429 with a reason of the caller's). */
int kl_http_reply_error_status(struct kl_req *req, int status, const struct kl_err *err);

/* ---- stock handlers ---------------------------------------------------------------- */

/* GET /health: 200 {"status":"ok"}. */
int kl_http_handle_health(struct kl_req *req);
/* GET /metrics: Prometheus text from the server's cfg->metrics (404 without one). */
int kl_http_handle_metrics(struct kl_req *req);

/* ---- routing (exposed for tests) --------------------------------------------------- */

/* Whether path matches pattern; on a match fills params (decoded into a) and *n_params. */
bool kl_http_route_match(struct kl_arena *a, const char *pattern, struct kl_str path,
                         struct kl_http_kv *params, size_t *n_params);

/* Decode %XX (and '+' as a space when form is true) into a, NUL-terminated. Never NULL: a
 * bad escape is kept literally, as browsers and Rust's url crate do. OUT: *out_len. */
char *kl_http_url_decode(struct kl_arena *a, struct kl_str s, bool form, size_t *out_len);

#endif
