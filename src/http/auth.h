/* auth.h - Sentry ingest authentication, with Relay's precedence, conflicts and answers
 *
 * What: find the project's public key (DSN key) of an ingest request the way Relay's
 * RequestMeta extractor does (relay-server/src/extractors/request_meta.rs and
 * endpoints/envelope.rs), and report failures with Relay's status codes and texts.
 *
 * Sources, in Relay's order; finding a second one is an error, even with the same key:
 *   1. X-Sentry-Auth: Sentry sentry_key=<k>, sentry_version=7, sentry_client=<c>
 *   2. Authorization: Sentry ...           (same syntax)
 *   3. Authorization: Basic base64(<k>:)   (the key as user name)
 *   4. the query string, when it contains "sentry_" anywhere: ?sentry_key=<k>&sentry_version=7
 *   5. only when 1-4 found nothing: the envelope header's "dsn" (https://<k>@host/<project>)
 * A header counts only when it starts with "sentry " (case-insensitive); a Basic header
 * counts only when it decodes to "<user>:<...>". In the "Sentry" syntax pairs are split on
 * ',' then '=' and trimmed; pairs without '=' are skipped; sentry_version keeps what precedes
 * the first '.' and must be a u16.
 *
 * Answers (status, reason, message = Relay's error text):
 *   401 auth.missing       "missing authorization information"
 *   401 auth.multiple      "multiple authorization payloads detected"
 *   401 auth.bad_header    "bad x-sentry-auth header"        (no key, bad version; also for
 *                                                             the query form, as in Relay)
 *   401 auth.bad_envelope  "bad envelope authentication header" (no request auth and no or
 *                                                             a bad dsn in the envelope)
 *   400 auth.bad_project   "bad project path parameter"      (URL project id not a u64)
 *   400 auth.bad_key       "bad sentry DSN public key"       (key not 32 ASCII chars; flags
 *                                                             after '.' are allowed)
 *   400 auth.unsupported_version "unsupported protocol version (N)"  (N > 7)
 *   400 auth.header_mismatch "invalid event envelope: project id header mismatch between
 *        envelope and request" (or "public key"): the envelope's dsn disagrees with the
 *        request's auth or with the URL's project id. Relay answers this 400 with detail
 *        "invalid event envelope" and the mismatch as its cause.
 * Deliberate difference: when the key comes only from the envelope dsn, Relay ignores the
 * URL's project id at the endpoint (and drops the envelope later, asynchronously, when the
 * key's project differs). kiln rejects a dsn project id that differs from the URL's at once.
 *
 * Model: struct kl_auth_input holds the raw strings (so parsing is pure and testable);
 * kl_auth_input_from_req fills it from a request. kl_sentry_auth_from_parts does steps 1-4
 * and the path/key/version checks that do not need the body; kl_sentry_auth_with_dsn does
 * step 5 and the envelope-vs-request checks once the envelope header is parsed.
 * Ownership: slices in struct kl_sentry_auth point into the input strings or into arena a.
 * Errors: the reasons above, never logged. Threads: pure, reentrant.
 * Limits: header and query sizes are bounded by the HTTP layer (MHD's connection memory).
 * Tests: tests/unit/test_http_auth.c.
 */
#ifndef KL_HTTP_AUTH_H
#define KL_HTTP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"

struct kl_req;

/* Relay's relay_event_schema::protocol::PROTOCOL_VERSION; newer is rejected. */
#define KL_SENTRY_PROTOCOL_VERSION 7
#define KL_SENTRY_KEY_LEN 32

enum kl_auth_source {
    KL_AUTH_NONE = 0,
    KL_AUTH_X_SENTRY_AUTH,
    KL_AUTH_AUTHORIZATION,
    KL_AUTH_BASIC,
    KL_AUTH_QUERY,
    KL_AUTH_DSN,
};

struct kl_auth_input {
    struct kl_str x_sentry_auth; /* header value; absent: ptr NULL */
    struct kl_str authorization; /* header value; absent: ptr NULL */
    struct kl_str query;         /* raw query string after '?', not decoded; absent: NULL */
    struct kl_str project_id;    /* URL path parameter; absent (legacy /api/store/): NULL */
};

struct kl_sentry_auth {
    enum kl_auth_source source;
    struct kl_str public_key; /* the 32 characters, flags after '.' removed */
    struct kl_str key_flags;  /* what followed the first '.', e.g. "no-cache"; may be empty */
    unsigned version;         /* sentry_version; KL_SENTRY_PROTOCOL_VERSION when not sent */
    struct kl_str client;     /* sentry_client; absent: ptr NULL */
    bool has_project_id;
    uint64_t project_id; /* from the URL, or from the dsn when that was the source */
};

/* Fill in from a request: the two headers, the raw query and the "project_id" param. */
void kl_auth_input_from_req(const struct kl_req *req, struct kl_auth_input *in);

/* Steps 1-4 plus the project-id, key and version checks. Missing auth is not an error here:
 * it returns 0 with out->source == KL_AUTH_NONE, because the envelope's dsn may still
 * supply it (call kl_sentry_auth_with_dsn). Returns 0 or -1. OUT: *out. */
int kl_sentry_auth_from_parts(struct kl_arena *a, const struct kl_auth_input *in,
                              struct kl_sentry_auth *out, struct kl_err *err);

/* Step 5 and the envelope checks. dsn is the envelope header's "dsn" (ptr NULL when the
 * header had none). With request auth: a present dsn must parse and agree with the auth's key
 * and the URL's project id. Without: the dsn becomes the auth (401 auth.bad_envelope when
 * absent or bad) and must agree with the URL's project id. Returns 0 or -1. */
int kl_sentry_auth_with_dsn(struct kl_sentry_auth *auth, struct kl_str dsn, struct kl_err *err);

/* For endpoints without an envelope: 401 auth.missing ("missing authorization information")
 * when kl_sentry_auth_from_parts found nothing. Returns 0 or -1. */
int kl_sentry_auth_require(const struct kl_sentry_auth *auth, struct kl_err *err);

/* Both steps for callers that have the dsn at hand. */
int kl_sentry_auth_resolve(struct kl_arena *a, const struct kl_auth_input *in, struct kl_str dsn,
                           struct kl_sentry_auth *out, struct kl_err *err);

/* Parse "Sentry k=v, k=v" (the value of X-Sentry-Auth or Authorization). The prefix must be
 * "sentry" followed by a space (case-insensitive). Fills public_key (unchecked), version,
 * client. Returns 0 or -1 (auth.bad_header). */
int kl_sentry_auth_parse_header(struct kl_str value, struct kl_sentry_auth *out,
                                struct kl_err *err);

/* Parse a DSN "<scheme>://<public_key>[:<secret>]@<host>[:port]/[path/]<project_id>".
 * Returns 0 or -1 (auth.bad_envelope). OUT: *public_key (slice of dsn), *project_id. */
int kl_sentry_dsn_parse(struct kl_str dsn, struct kl_str *public_key, uint64_t *project_id,
                        struct kl_err *err);

#endif
