/* auth.c - Sentry ingest auth: request headers, query, Basic, envelope dsn (see auth.h)
 *
 * The control flow follows Relay's auth_from_parts step by step, because the order decides
 * which error a client sees when several things are wrong at once (a bad X-Sentry-Auth plus a
 * query key is "bad x-sentry-auth header", not "multiple authorization payloads").
 */
#include "http/auth.h"

#include <string.h>

#include "http/http.h"

#define MSG_MISSING "missing authorization information"
#define MSG_MULTIPLE "multiple authorization payloads detected"
#define MSG_BAD_HEADER "bad x-sentry-auth header"
#define MSG_BAD_ENVELOPE "bad envelope authentication header"
#define MSG_BAD_PROJECT "bad project path parameter"
#define MSG_BAD_KEY "bad sentry DSN public key"

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static bool prefix_ci(struct kl_str s, const char *pre)
{
    size_t n = strlen(pre);
    if (s.len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.ptr[i]) != pre[i])
            return false;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static struct kl_str trim(struct kl_str s)
{
    while (s.len && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Rust's u16::from_str: optional '+', then digits, no overflow. */
static bool parse_u16(struct kl_str s, unsigned *out)
{
    if (s.len && s.ptr[0] == '+') {
        s.ptr++;
        s.len--;
    }
    uint64_t v;
    if (!kl_parse_u64(s, &v) || v > 65535)
        return false;
    *out = (unsigned)v;
    return true;
}

/* One key=value pair of the Sentry auth syntax (Relay's Auth::from_pairs). Unknown keys are
 * ignored; a later repeat wins. Returns -1 only for a bad sentry_version. */
static int auth_pair(struct kl_sentry_auth *out, struct kl_str k, struct kl_str v,
                     struct kl_err *err)
{
    if (kl_str_eq_c(k, "sentry_key")) {
        out->public_key = v;
    } else if (kl_str_eq_c(k, "sentry_client")) {
        out->client = v;
    } else if (kl_str_eq_c(k, "sentry_version")) {
        const char *dot = memchr(v.ptr, '.', v.len);
        struct kl_str major = dot ? kl_str_make(v.ptr, (size_t)(dot - v.ptr)) : v;
        if (!parse_u16(major, &out->version))
            return kl_err_set(err, KL_R_AUTH_BAD_HEADER, MSG_BAD_HEADER);
    }
    return 0;
}

static void auth_reset(struct kl_sentry_auth *out)
{
    memset(out, 0, sizeof *out);
    out->version = KL_SENTRY_PROTOCOL_VERSION;
}

int kl_sentry_auth_parse_header(struct kl_str value, struct kl_sentry_auth *out, struct kl_err *err)
{
    auth_reset(out);
    if (!value.ptr || !prefix_ci(value, "sentry "))
        return kl_err_set(err, KL_R_AUTH_BAD_HEADER, MSG_BAD_HEADER);
    const char *p = value.ptr + 7, *end = value.ptr + value.len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        struct kl_str item = kl_str_make(p, (size_t)(item_end - p));
        const char *eq = memchr(item.ptr, '=', item.len);
        if (eq) {
            /* Relay takes the text between the first and the second '=' as the value */
            const char *vend = memchr(eq + 1, '=', (size_t)(item_end - (eq + 1)));
            struct kl_str k = trim(kl_str_make(item.ptr, (size_t)(eq - item.ptr)));
            struct kl_str v =
                trim(kl_str_make(eq + 1, (size_t)((vend ? vend : item_end) - (eq + 1))));
            if (auth_pair(out, k, v, err) < 0)
                return -1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!out->public_key.ptr || out->public_key.len == 0)
        return kl_err_set(err, KL_R_AUTH_BAD_HEADER, MSG_BAD_HEADER);
    return 0;
}

/* application/x-www-form-urlencoded pairs, as Relay's Auth::from_querystring reads them. */
static int parse_query_auth(struct kl_arena *a, struct kl_str q, struct kl_sentry_auth *out,
                            struct kl_err *err)
{
    auth_reset(out);
    const char *p = q.ptr, *end = q.ptr + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        if (pend > p) {
            const char *eq = memchr(p, '=', (size_t)(pend - p));
            struct kl_str rk = kl_str_make(p, (size_t)((eq ? eq : pend) - p));
            struct kl_str rv = eq ? kl_str_make(eq + 1, (size_t)(pend - eq - 1)) : KL_STR("");
            size_t kn, vn;
            char *k = kl_http_url_decode(a, rk, true, &kn);
            char *v = kl_http_url_decode(a, rv, true, &vn);
            if (auth_pair(out, kl_str_make(k, kn), kl_str_make(v, vn), err) < 0)
                return -1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    if (!out->public_key.ptr || out->public_key.len == 0)
        return kl_err_set(err, KL_R_AUTH_BAD_HEADER, MSG_BAD_HEADER);
    return 0;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict standard base64 with padding (data_encoding::BASE64). NULL when invalid. */
static char *b64_decode(struct kl_arena *a, struct kl_str s, size_t *out_len)
{
    if (s.len == 0 || s.len % 4 != 0)
        return NULL;
    char *out = kl_arena_alloc(a, s.len / 4 * 3 + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s.ptr[i + j];
            if (c == '=' && i + 4 == s.len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64_val(c)) < 0) {
                return NULL;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (char)(w >> 16);
        if (pad < 2)
            out[n++] = (char)(w >> 8);
        if (pad < 1)
            out[n++] = (char)w;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Relay: "Basic " + base64("<key>:<anything>"); anything else is not auth at all. */
static bool basic_auth(struct kl_arena *a, struct kl_str value, struct kl_str *key)
{
    if (!value.ptr || !prefix_ci(value, "basic "))
        return false;
    size_t n;
    char *dec = b64_decode(a, kl_str_make(value.ptr + 6, value.len - 6), &n);
    if (!dec)
        return false;
    const char *colon = memchr(dec, ':', n);
    if (!colon || colon == dec)
        return false;
    *key = kl_str_make(dec, (size_t)(colon - dec));
    return true;
}

/* ProjectKey::parse: 32 ASCII characters (with_flags: ".flag.flag" may follow). */
static bool split_key(struct kl_str s, bool allow_flags, struct kl_str *key, struct kl_str *flags)
{
    const char *dot = allow_flags ? memchr(s.ptr, '.', s.len) : NULL;
    struct kl_str k = dot ? kl_str_make(s.ptr, (size_t)(dot - s.ptr)) : s;
    if (k.len != KL_SENTRY_KEY_LEN)
        return false;
    for (size_t i = 0; i < k.len; i++)
        if ((unsigned char)k.ptr[i] >= 0x80)
            return false;
    *key = k;
    if (flags)
        *flags = dot ? kl_str_make(dot + 1, (size_t)(s.ptr + s.len - dot - 1)) : KL_STR("");
    return true;
}

void kl_auth_input_from_req(const struct kl_req *req, struct kl_auth_input *in)
{
    in->x_sentry_auth = kl_req_header(req, "X-Sentry-Auth");
    in->authorization = kl_req_header(req, "Authorization");
    in->query = req->raw_query;
    in->project_id = kl_req_param(req, "project_id");
}

int kl_sentry_auth_from_parts(struct kl_arena *a, const struct kl_auth_input *in,
                              struct kl_sentry_auth *out, struct kl_err *err)
{
    auth_reset(out);
    uint64_t project_id = 0;
    if (in->project_id.ptr) {
        if (!kl_parse_u64(in->project_id, &project_id))
            return kl_err_set(err, KL_R_AUTH_BAD_PROJECT, MSG_BAD_PROJECT);
    }

    struct kl_sentry_auth found;
    auth_reset(&found);
    enum kl_auth_source src = KL_AUTH_NONE;
    if (in->x_sentry_auth.ptr && prefix_ci(in->x_sentry_auth, "sentry ")) {
        if (kl_sentry_auth_parse_header(in->x_sentry_auth, &found, err) < 0)
            return -1;
        src = KL_AUTH_X_SENTRY_AUTH;
    }
    if (in->authorization.ptr && prefix_ci(in->authorization, "sentry ")) {
        if (src != KL_AUTH_NONE)
            return kl_err_set(err, KL_R_AUTH_MULTIPLE, MSG_MULTIPLE);
        if (kl_sentry_auth_parse_header(in->authorization, &found, err) < 0)
            return -1;
        src = KL_AUTH_AUTHORIZATION;
    }
    struct kl_str basic_key;
    if (basic_auth(a, in->authorization, &basic_key)) {
        if (src != KL_AUTH_NONE)
            return kl_err_set(err, KL_R_AUTH_MULTIPLE, MSG_MULTIPLE);
        auth_reset(&found);
        found.public_key = basic_key;
        src = KL_AUTH_BASIC;
    }
    if (in->query.ptr && memmem(in->query.ptr, in->query.len, "sentry_", 7)) {
        if (src != KL_AUTH_NONE)
            return kl_err_set(err, KL_R_AUTH_MULTIPLE, MSG_MULTIPLE);
        if (parse_query_auth(a, in->query, &found, err) < 0)
            return -1;
        src = KL_AUTH_QUERY;
    }

    out->has_project_id = in->project_id.ptr != NULL;
    out->project_id = project_id;
    if (src == KL_AUTH_NONE)
        return 0;

    if (!split_key(found.public_key, true, &out->public_key, &out->key_flags))
        return kl_err_set(err, KL_R_AUTH_BAD_KEY, MSG_BAD_KEY);
    if (found.version > KL_SENTRY_PROTOCOL_VERSION)
        return kl_err_set(err, KL_R_AUTH_BAD_VERSION, "unsupported protocol version (%u)",
                          found.version);
    out->version = found.version;
    out->client = found.client;
    out->source = src;
    return 0;
}

int kl_sentry_dsn_parse(struct kl_str dsn, struct kl_str *public_key, uint64_t *project_id,
                        struct kl_err *err)
{
    if (!dsn.ptr)
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    const char *p = dsn.ptr, *end = dsn.ptr + dsn.len;
    const char *sep = memmem(p, dsn.len, "://", 3);
    if (!sep)
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    struct kl_str scheme = kl_str_make(p, (size_t)(sep - p));
    if (!(scheme.len == 4 && prefix_ci(scheme, "http")) &&
        !(scheme.len == 5 && prefix_ci(scheme, "https")))
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    p = sep + 3;
    if (p >= end)
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    /* the path ends at a query or fragment */
    for (const char *q = p; q < end; q++)
        if (*q == '?' || *q == '#') {
            end = q;
            break;
        }
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash ? slash : end;
    size_t at = 0; /* offset of the last '@' of the authority, plus one; 0: none */
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = (size_t)(q - p) + 1;
    if (at <= 1 || p + at == auth_end || !slash)
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    struct kl_str userinfo = kl_str_make(p, at - 1);
    const char *colon = memchr(userinfo.ptr, ':', userinfo.len);
    struct kl_str user =
        colon ? kl_str_make(userinfo.ptr, (size_t)(colon - userinfo.ptr)) : userinfo;
    if (user.len == 0)
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    const char *last = end;
    while (last > slash && last[-1] != '/')
        last--;
    if (!kl_parse_u64(kl_str_make(last, (size_t)(end - last)), project_id))
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    *public_key = user;
    return 0;
}

int kl_sentry_auth_with_dsn(struct kl_sentry_auth *auth, struct kl_str dsn, struct kl_err *err)
{
    struct kl_str key, dkey;
    uint64_t pid;
    if (auth->source != KL_AUTH_NONE) {
        if (!dsn.ptr)
            return 0;
        struct kl_err tmp = KL_ERR_INIT;
        if (kl_sentry_dsn_parse(dsn, &key, &pid, &tmp) < 0 || !split_key(key, false, &dkey, NULL))
            return kl_err_set(err, KL_R_ENVELOPE_MALFORMED, "invalid event envelope: bad dsn");
        if (!auth->has_project_id || pid != auth->project_id)
            return kl_err_set(err, KL_R_AUTH_HEADER_MISMATCH,
                              "invalid event envelope: project id header mismatch between "
                              "envelope and request");
        if (!kl_str_eq(dkey, auth->public_key))
            return kl_err_set(err, KL_R_AUTH_HEADER_MISMATCH,
                              "invalid event envelope: public key header mismatch between "
                              "envelope and request");
        return 0;
    }
    if (kl_sentry_dsn_parse(dsn, &key, &pid, err) < 0)
        return -1;
    if (!split_key(key, false, &dkey, NULL))
        return kl_err_set(err, KL_R_AUTH_BAD_ENVELOPE, MSG_BAD_ENVELOPE);
    if (auth->has_project_id && pid != auth->project_id)
        return kl_err_set(err, KL_R_AUTH_HEADER_MISMATCH,
                          "invalid event envelope: project id header mismatch between "
                          "envelope and request");
    auth->source = KL_AUTH_DSN;
    auth->public_key = dkey;
    auth->key_flags = KL_STR("");
    auth->has_project_id = true;
    auth->project_id = pid;
    return 0;
}

int kl_sentry_auth_require(const struct kl_sentry_auth *auth, struct kl_err *err)
{
    if (auth->source == KL_AUTH_NONE)
        return kl_err_set(err, KL_R_AUTH_MISSING, MSG_MISSING);
    return 0;
}

int kl_sentry_auth_resolve(struct kl_arena *a, const struct kl_auth_input *in, struct kl_str dsn,
                           struct kl_sentry_auth *out, struct kl_err *err)
{
    if (kl_sentry_auth_from_parts(a, in, out, err) < 0)
        return -1;
    return kl_sentry_auth_with_dsn(out, dsn, err);
}
