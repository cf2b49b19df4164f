/* test_http_auth.c - Sentry ingest auth: Relay's sources, precedence, conflicts, answers
 *
 * One table row per case: the raw inputs (headers, query, URL project id, envelope dsn) and
 * the expected result, either a reason with its HTTP status and Relay's message, or the
 * resolved key, source, version, client and project id.
 */
#include <stdbool.h>
#include <string.h>

#include "kl_test.h"

#include "base/arena.h"
#include "base/err.h"
#include "http/auth.h"

#define KEY "e12d836b15bb49d7bbf99e64295d995b"
#define KEY2 "0000000000000000000000000000000a"
#define DSN "https://" KEY "@o1.ingest.sentry.io/42"
#define NA ((const char *)0) /* absent */

/* error rows leave the success fields out */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct row {
    const char *name;
    const char *xsa, *authz, *query, *url_project;
    bool with_dsn; /* run kl_sentry_auth_with_dsn too */
    const char *dsn;
    /* expected */
    const char *reason; /* NA: success */
    int status;
    const char *msg; /* prefix of the message, NA: not checked */
    enum kl_auth_source src;
    const char *key;
    unsigned version;
    const char *client; /* NA: absent */
    unsigned long long project;
};

static const struct row rows[] = {
    /* the four request sources */
    {"x-sentry-auth",
     "Sentry sentry_key=" KEY ", sentry_version=7, sentry_client=sentry.javascript.browser/8.9.2",
     NA, NA, "42", false, NA, NA, 0, NA, KL_AUTH_X_SENTRY_AUTH, KEY, 7,
     "sentry.javascript.browser/8.9.2", 42},
    {"prefix case-insensitive, pairs trimmed, version major",
     "SENTRY sentry_key = " KEY " ,sentry_version=7.0", NA, NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 42},
    {"version defaults to 7", "Sentry sentry_key=" KEY, NA, NA, "1", false, NA, NA, 0, NA,
     KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 1},
    {"value stops at a second '='", "Sentry sentry_key=" KEY "=junk,foo,bar=", NA, NA, "1", false,
     NA, NA, 0, NA, KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 1},
    {"older protocol version", "Sentry sentry_key=" KEY ", sentry_version=5", NA, NA, "1", false,
     NA, NA, 0, NA, KL_AUTH_X_SENTRY_AUTH, KEY, 5, NA, 1},
    {"authorization: Sentry", NA, "Sentry sentry_key=" KEY ", sentry_version=7", NA, "42", false,
     NA, NA, 0, NA, KL_AUTH_AUTHORIZATION, KEY, 7, NA, 42},
    {"authorization: Basic", NA, "Basic ZTEyZDgzNmIxNWJiNDlkN2JiZjk5ZTY0Mjk1ZDk5NWI6", NA, "42",
     false, NA, NA, 0, NA, KL_AUTH_BASIC, KEY, 7, NA, 42},
    {"authorization: Basic with a secret", NA,
     "basic ZTEyZDgzNmIxNWJiNDlkN2JiZjk5ZTY0Mjk1ZDk5NWI6c2VjcmV0", NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_BASIC, KEY, 7, NA, 42},
    {"query", NA, NA,
     "sentry_key=" KEY "&sentry_version=7&sentry_client=sentry.javascript.browser%2F8.9.2", "42",
     false, NA, NA, 0, NA, KL_AUTH_QUERY, KEY, 7, "sentry.javascript.browser/8.9.2", 42},
    {"query with '+' and other params", NA, NA, "a=b&sentry_client=my+sdk&sentry_key=" KEY, "42",
     false, NA, NA, 0, NA, KL_AUTH_QUERY, KEY, 7, "my sdk", 42},
    {"key flags", "Sentry sentry_key=" KEY ".no-cache", NA, NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 42},

    /* not auth at all */
    {"nothing: not an error before the dsn step", NA, NA, NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_NONE, NA, 7, NA, 42},
    {"bearer is ignored", NA, "Bearer abc", "foo=bar", "42", false, NA, NA, 0, NA, KL_AUTH_NONE, NA,
     7, NA, 42},
    {"x-sentry-auth without the Sentry prefix is ignored", "Bearer " KEY, NA, NA, "42", false, NA,
     NA, 0, NA, KL_AUTH_NONE, NA, 7, NA, 42},
    {"basic without ':' is ignored", NA, "Basic YWJj", NA, "42", false, NA, NA, 0, NA, KL_AUTH_NONE,
     NA, 7, NA, 42},
    {"basic with an empty user is ignored", NA, "Basic Ong=", NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_NONE, NA, 7, NA, 42},
    {"basic with bad base64 is ignored", NA, "Basic !!!!", NA, "42", false, NA, NA, 0, NA,
     KL_AUTH_NONE, NA, 7, NA, 42},

    /* conflicts: Relay rejects a second source even when the key is the same */
    {"x-sentry-auth + query", "Sentry sentry_key=" KEY, NA, "sentry_key=" KEY, "42", false, NA,
     "auth.multiple", 401, "multiple authorization payloads detected"},
    {"x-sentry-auth + query with a different key", "Sentry sentry_key=" KEY, NA, "sentry_key=" KEY2,
     "42", false, NA, "auth.multiple", 401, NA},
    {"x-sentry-auth + authorization", "Sentry sentry_key=" KEY, "Sentry sentry_key=" KEY, NA, "42",
     false, NA, "auth.multiple", 401, NA},
    {"x-sentry-auth + basic", "Sentry sentry_key=" KEY,
     "Basic ZTEyZDgzNmIxNWJiNDlkN2JiZjk5ZTY0Mjk1ZDk5NWI6", NA, "42", false, NA, "auth.multiple",
     401, NA},
    {"authorization + query", NA, "Sentry sentry_key=" KEY, "sentry_version=7", "42", false, NA,
     "auth.multiple", 401, NA},
    {"basic + query", NA, "Basic ZTEyZDgzNmIxNWJiNDlkN2JiZjk5ZTY0Mjk1ZDk5NWI6", "sentry_key=" KEY,
     "42", false, NA, "auth.multiple", 401, NA},
    {"a bad header is reported before the conflict", "Sentry sentry_version=7", NA,
     "sentry_key=" KEY, "42", false, NA, "auth.bad_header", 401, "bad x-sentry-auth header"},

    /* malformed auth */
    {"header without a key", "Sentry sentry_version=7", NA, NA, "42", false, NA, "auth.bad_header",
     401, "bad x-sentry-auth header"},
    {"header with an empty key", "Sentry sentry_key=, sentry_version=7", NA, NA, "42", false, NA,
     "auth.bad_header", 401, NA},
    {"non-numeric version", "Sentry sentry_key=" KEY ", sentry_version=abc", NA, NA, "42", false,
     NA, "auth.bad_header", 401, NA},
    {"version past u16", "Sentry sentry_key=" KEY ", sentry_version=65536", NA, NA, "42", false, NA,
     "auth.bad_header", 401, NA},
    {"query mentions sentry_ but has no key", NA, NA, "x=sentry_thing", "42", false, NA,
     "auth.bad_header", 401, NA},
    {"query with an empty key", NA, NA, "sentry_key=&sentry_version=7", "42", false, NA,
     "auth.bad_header", 401, NA},
    {"newer protocol", "Sentry sentry_key=" KEY ", sentry_version=8", NA, NA, "42", false, NA,
     "auth.unsupported_version", 400, "unsupported protocol version (8)"},
    {"short key", "Sentry sentry_key=abc", NA, NA, "42", false, NA, "auth.bad_key", 400,
     "bad sentry DSN public key"},
    {"key too long", NA, NA, "sentry_key=" KEY "0", "42", false, NA, "auth.bad_key", 400, NA},
    {"non-ASCII key", NA, NA,
     "sentry_key=%C3%A9"
     "1234567890123456789012345678901",
     "42", false, NA, "auth.bad_key", 400, NA},
    {"bad project id", "Sentry sentry_key=" KEY, NA, NA, "abc", false, NA, "auth.bad_project", 400,
     "bad project path parameter"},
    {"negative project id", "Sentry sentry_key=" KEY, NA, NA, "-1", false, NA, "auth.bad_project",
     400, NA},

    /* the envelope dsn, when the request had no auth */
    {"dsn only", NA, NA, NA, "42", true, DSN, NA, 0, NA, KL_AUTH_DSN, KEY, 7, NA, 42},
    {"dsn with secret and port", NA, NA, NA, "42", true, "http://" KEY ":secret@localhost:9000/42",
     NA, 0, NA, KL_AUTH_DSN, KEY, 7, NA, 42},
    {"dsn with a path prefix", NA, NA, NA, "42", true, "https://" KEY "@example.com/sentry/42", NA,
     0, NA, KL_AUTH_DSN, KEY, 7, NA, 42},
    {"dsn on the legacy route without a project", NA, NA, NA, NA, true, DSN, NA, 0, NA, KL_AUTH_DSN,
     KEY, 7, NA, 42},
    {"no auth and no dsn", NA, NA, NA, "42", true, NA, "auth.bad_envelope", 401,
     "bad envelope authentication header"},
    {"dsn without a key", NA, NA, NA, "42", true, "https://o1.ingest.sentry.io/42",
     "auth.bad_envelope", 401, NA},
    {"dsn with a short key", NA, NA, NA, "42", true, "https://abc@o1.ingest.sentry.io/42",
     "auth.bad_envelope", 401, NA},
    {"dsn with a bad scheme", NA, NA, NA, "42", true, "ftp://" KEY "@host/42", "auth.bad_envelope",
     401, NA},
    {"dsn without a project", NA, NA, NA, "42", true, "https://" KEY "@host", "auth.bad_envelope",
     401, NA},
    {"dsn with a trailing slash", NA, NA, NA, "42", true, DSN "/", "auth.bad_envelope", 401, NA},
    {"dsn not a url", NA, NA, NA, "42", true, "hello", "auth.bad_envelope", 401, NA},
    {"dsn for another project than the url", NA, NA, NA, "43", true, DSN, "auth.header_mismatch",
     400, "invalid event envelope: project id header mismatch between envelope and request"},

    /* the envelope dsn next to request auth: it must agree */
    {"header and matching dsn", "Sentry sentry_key=" KEY, NA, NA, "42", true, DSN, NA, 0, NA,
     KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 42},
    {"header with flags and matching dsn", "Sentry sentry_key=" KEY ".no-cache", NA, NA, "42", true,
     DSN, NA, 0, NA, KL_AUTH_X_SENTRY_AUTH, KEY, 7, NA, 42},
    {"query and no dsn", NA, NA, "sentry_key=" KEY, "42", true, NA, NA, 0, NA, KL_AUTH_QUERY, KEY,
     7, NA, 42},
    {"header and dsn with another key", "Sentry sentry_key=" KEY2, NA, NA, "42", true, DSN,
     "auth.header_mismatch", 400,
     "invalid event envelope: public key header mismatch between envelope and request"},
    {"header and dsn with another project", "Sentry sentry_key=" KEY, NA, NA, "7", true, DSN,
     "auth.header_mismatch", 400, "invalid event envelope: project id header mismatch"},
    {"header on the legacy route and a dsn", "Sentry sentry_key=" KEY, NA, NA, NA, true, DSN,
     "auth.header_mismatch", 400, NA},
    {"header and a broken dsn", "Sentry sentry_key=" KEY, NA, NA, "42", true, "nonsense",
     "envelope.malformed", 400, "invalid event envelope"},
};

static struct kl_str opt(const char *s)
{
    return s ? kl_str_c(s) : KL_STR_NULL;
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_auth_input in = {opt(r->xsa), opt(r->authz), opt(r->query), opt(r->url_project)};
        struct kl_sentry_auth auth;
        struct kl_err err = KL_ERR_INIT;
        int rc = kl_sentry_auth_from_parts(&a, &in, &auth, &err);
        if (rc == 0 && r->with_dsn)
            rc = kl_sentry_auth_with_dsn(&auth, opt(r->dsn), &err);
        if (r->reason) {
            if (rc == 0) {
                KL_FAIL_("%s: expected %s, got success", r->name, r->reason);
            } else {
                if (strcmp(kl_reason_str(err.reason), r->reason) != 0)
                    KL_FAIL_("%s: reason %s, want %s (%s)", r->name, kl_reason_str(err.reason),
                             r->reason, err.msg);
                if (kl_reason_http_status(err.reason) != r->status)
                    KL_FAIL_("%s: status %d, want %d", r->name, kl_reason_http_status(err.reason),
                             r->status);
                if (r->msg && strncmp(err.msg, r->msg, strlen(r->msg)) != 0)
                    KL_FAIL_("%s: message \"%s\", want \"%s\"", r->name, err.msg, r->msg);
            }
        } else if (rc != 0) {
            KL_FAIL_("%s: unexpected %s (%s)", r->name, kl_reason_str(err.reason), err.msg);
        } else {
            if (auth.source != r->src)
                KL_FAIL_("%s: source %d, want %d", r->name, auth.source, r->src);
            if (r->key && !kl_str_eq_c(auth.public_key, r->key))
                KL_FAIL_("%s: key '%.*s'", r->name, (int)auth.public_key.len, auth.public_key.ptr);
            if (!r->key && auth.public_key.ptr)
                KL_FAIL_("%s: unexpected key", r->name);
            if (auth.version != r->version)
                KL_FAIL_("%s: version %u, want %u", r->name, auth.version, r->version);
            if (r->client ? !kl_str_eq_c(auth.client, r->client) : auth.client.ptr != NULL)
                KL_FAIL_("%s: client '%.*s'", r->name, (int)auth.client.len,
                         auth.client.ptr ? auth.client.ptr : "");
            if ((r->url_project || r->with_dsn) && auth.project_id != r->project)
                KL_FAIL_("%s: project %llu, want %llu", r->name,
                         (unsigned long long)auth.project_id, r->project);
        }
        kl_arena_release(&a);
    }
}

static void test_require_and_resolve(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_auth_input in = {KL_STR_NULL, KL_STR_NULL, KL_STR_NULL, KL_STR("42")};
    struct kl_sentry_auth auth;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_sentry_auth_from_parts(&a, &in, &auth, &err), 0);
    ASSERT_EQ_INT(kl_sentry_auth_require(&auth, &err), -1);
    ASSERT_EQ_STR(kl_reason_str(err.reason), "auth.missing");
    ASSERT_EQ_INT(kl_reason_http_status(err.reason), 401);
    ASSERT_EQ_STR(err.msg, "missing authorization information");

    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_sentry_auth_resolve(&a, &in, KL_STR(DSN), &auth, &err), 0);
    ASSERT_EQ_INT(auth.source, KL_AUTH_DSN);
    ASSERT_EQ_INT(kl_sentry_auth_require(&auth, &err), 0);

    in.x_sentry_auth = KL_STR("Sentry sentry_key=" KEY ".no-cache.other");
    ASSERT_EQ_INT(kl_sentry_auth_resolve(&a, &in, KL_STR_NULL, &auth, &err), 0);
    ASSERT_EQ_SLICE(auth.key_flags, "no-cache.other");
    ASSERT_EQ_SLICE(auth.public_key, KEY);
    kl_arena_release(&a);
}

static void test_parse_header_and_dsn(void)
{
    struct kl_sentry_auth auth;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_sentry_auth_parse_header(KL_STR("Sentry sentry_key=abc, sentry_version=7, "
                                                     "sentry_client=raven-python/6.0, "
                                                     "sentry_secret=s, sentry_timestamp=1"),
                                              &auth, &err),
                  0);
    ASSERT_EQ_SLICE(auth.public_key, "abc"); /* key length is checked later */
    ASSERT_EQ_SLICE(auth.client, "raven-python/6.0");
    ASSERT_EQ_INT(kl_sentry_auth_parse_header(KL_STR("Sentry"), &auth, &err), -1);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_sentry_auth_parse_header(KL_STR("Sentrykey=x"), &auth, &err), -1);

    struct kl_str key;
    uint64_t pid = 0;
    kl_err_clear(&err);
    ASSERT_EQ_INT(
        kl_sentry_dsn_parse(KL_STR("HTTPS://pub:sec@[::1]:9000/a/b/17?x=1"), &key, &pid, &err), 0);
    ASSERT_EQ_SLICE(key, "pub");
    ASSERT_EQ_U64(pid, 17);
    ASSERT_EQ_INT(kl_sentry_dsn_parse(KL_STR("https://pub@/17"), &key, &pid, &err), -1);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_sentry_dsn_parse(KL_STR("https://pub@host/x17"), &key, &pid, &err), -1);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_sentry_dsn_parse(KL_STR("https://"), &key, &pid, &err), -1);
}

int main(void)
{
    KL_RUN(test_table);
    KL_RUN(test_require_and_resolve);
    KL_RUN(test_parse_header_and_dsn);
    KL_TEST_DONE();
}
