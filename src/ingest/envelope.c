/* envelope.c - Sentry envelope parser and writer (format and rules in envelope.h)
 *
 * The parser keeps an explicit end pointer and walks header line, payload, header line, ...
 * Each header line is copied into a padded arena buffer and read with the JSON reader; known
 * keys are type-checked the way Relay's serde structs would check them, others are skipped.
 * Every size is compared with its limit before the payload is copied.
 */
#include "ingest/envelope.h"

#include <string.h>

#include "base/time.h"
#include "base/vec.h"
#include "json/json.h"

void kl_envelope_limits_default(struct kl_envelope_limits *lim)
{
    lim->max_envelope_bytes = KL_ENVELOPE_MAX_BYTES;
    lim->max_profile_bytes = KL_ENVELOPE_MAX_PROFILE_BYTES;
    lim->max_event_bytes = KL_ENVELOPE_MAX_EVENT_BYTES;
    lim->max_item_bytes = KL_ENVELOPE_MAX_ITEM_BYTES;
    lim->max_items = KL_ENVELOPE_MAX_ITEMS;
}

/* JSON whitespace, which serde's stream deserializer skips before each header. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int trunc_len(size_t n)
{
    return n > 64 ? 64 : (int)n;
}

/* Open line[0..n) as a JSON document whose root must be an object. The line is copied so the
 * reader gets its padding. OUT: *it positioned before the first member. */
static struct kl_json_doc *open_header(struct kl_arena *a, const char *line, size_t n,
                                       const char *what, struct kl_json_iter *it,
                                       struct kl_err *err)
{
    /* Relay requires \n or EOF right after the JSON value; a header line ending in
     * whitespace (say "{}\r") is therefore malformed. */
    if (n == 0 || line[n - 1] != '}') {
        kl_err_set(err, KL_R_ENVELOPE_MALFORMED, "%s is not a JSON object followed by a newline",
                   what);
        return NULL;
    }
    char *copy = kl_arena_alloc(a, n + KL_PADDING);
    memcpy(copy, line, n);
    memset(copy + n, 0, KL_PADDING);
    struct kl_json_doc *d = kl_json_open(a, copy, n, KL_R_ENVELOPE_MALFORMED, err);
    if (!d)
        return NULL;
    struct kl_json_val root;
    if (kl_json_root(d, &root) < 0)
        return NULL;
    if (kl_json_type(&root) != KL_JSON_OBJECT) {
        kl_json_fail(d, KL_R_ENVELOPE_MALFORMED, "%s is not a JSON object", what);
        return NULL;
    }
    if (kl_json_obj_begin(&root, it) < 0)
        return NULL;
    return d;
}

/* A string or null (absent). */
static int get_opt_str(struct kl_json_val *v, struct kl_str *out)
{
    int r = kl_json_is_null(v);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return kl_json_get_str(v, out);
}

/* A u32 or null (absent), as serde reads Option<u32>. */
static int get_opt_u32(struct kl_json_doc *d, struct kl_json_val *v, const char *key, bool *has,
                       uint32_t *out)
{
    int r = kl_json_is_null(v);
    if (r != 0)
        return r < 0 ? -1 : 0;
    uint64_t x;
    if (kl_json_get_u64(v, &x) < 0)
        return -1;
    if (x > UINT32_MAX)
        return kl_json_fail(d, KL_R_ENVELOPE_MALFORMED, "item header '%s' out of range", key);
    *has = true;
    *out = (uint32_t)x;
    return 0;
}

/* Fail on a known key seen twice (serde: "duplicate field"); bit is the key's slot. */
static int once(struct kl_json_doc *d, unsigned *seen, unsigned bit, struct kl_str key)
{
    if (*seen & bit)
        return kl_json_fail(d, KL_R_ENVELOPE_MALFORMED, "duplicate header field '%.*s'",
                            trunc_len(key.len), key.ptr);
    *seen |= bit;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Envelope header                                                                        */

static int parse_sdk(struct kl_json_val *v, struct kl_envelope *e)
{
    struct kl_json_iter it;
    struct kl_str key;
    struct kl_json_val val;
    int r;

    /* Relay keeps "sdk" in its catch-all map, so any JSON value is accepted here. */
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_ERROR)
        return -1;
    if (t != KL_JSON_OBJECT)
        return kl_json_skip(v);
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((r = kl_json_obj_next(&it, &key, &val)) > 0) {
        struct kl_str *dst = NULL;
        if (kl_str_eq_c(key, "name"))
            dst = &e->sdk_name;
        else if (kl_str_eq_c(key, "version"))
            dst = &e->sdk_version;
        t = kl_json_type(&val);
        if (t == KL_JSON_ERROR)
            return -1;
        if (dst && t == KL_JSON_STRING) {
            if (kl_json_get_str(&val, dst) < 0)
                return -1;
        } else if (kl_json_skip(&val) < 0) {
            return -1;
        }
    }
    return r;
}

static int parse_envelope_header(struct kl_arena *a, const char *line, size_t n,
                                 struct kl_envelope *e, struct kl_err *err)
{
    struct kl_json_iter it;
    struct kl_str key;
    struct kl_json_val val;
    unsigned seen = 0;
    int r;

    struct kl_json_doc *d = open_header(a, line, n, "envelope header", &it, err);
    if (!d)
        return -1;
    while ((r = kl_json_obj_next(&it, &key, &val)) > 0) {
        if (kl_str_eq_c(key, "event_id")) {
            struct kl_uuid u;
            if (once(d, &seen, 1u, key) < 0 || get_opt_str(&val, &e->event_id) < 0)
                return -1;
            if (kl_str_is_set(e->event_id) && !kl_uuid_parse(e->event_id, &u))
                return kl_json_fail(d, KL_R_ENVELOPE_MALFORMED,
                                    "envelope header event_id '%.*s' is not a uuid",
                                    trunc_len(e->event_id.len), e->event_id.ptr);
        } else if (kl_str_eq_c(key, "dsn")) {
            if (once(d, &seen, 2u, key) < 0 || get_opt_str(&val, &e->dsn) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "sent_at")) {
            int64_t ns;
            if (once(d, &seen, 4u, key) < 0 || get_opt_str(&val, &e->sent_at) < 0)
                return -1;
            if (kl_str_is_set(e->sent_at) && !kl_rfc3339_parse(e->sent_at, &ns))
                return kl_json_fail(d, KL_R_ENVELOPE_MALFORMED,
                                    "envelope header sent_at '%.*s' is not a timestamp",
                                    trunc_len(e->sent_at.len), e->sent_at.ptr);
        } else if (kl_str_eq_c(key, "sdk")) {
            if (once(d, &seen, 8u, key) < 0 || parse_sdk(&val, e) < 0)
                return -1;
        } else if (kl_json_skip(&val) < 0) {
            return -1;
        }
    }
    if (r < 0)
        return -1;
    return kl_json_finish(d);
}

/* ------------------------------------------------------------------------------------ */
/* Item header                                                                            */

static int parse_item_header(struct kl_arena *a, const char *line, size_t n,
                             struct kl_envelope_item *item, struct kl_err *err)
{
    struct kl_json_iter it;
    struct kl_str key;
    struct kl_json_val val;
    unsigned seen = 0;
    int r;

    struct kl_json_doc *d = open_header(a, line, n, "item header", &it, err);
    if (!d)
        return -1;
    while ((r = kl_json_obj_next(&it, &key, &val)) > 0) {
        if (kl_str_eq_c(key, "type")) {
            if (once(d, &seen, 1u, key) < 0 || kl_json_get_str(&val, &item->type) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "length")) {
            if (once(d, &seen, 2u, key) < 0 ||
                get_opt_u32(d, &val, "length", &item->has_length, &item->length) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "content_type")) {
            if (once(d, &seen, 4u, key) < 0 || get_opt_str(&val, &item->content_type) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "filename")) {
            if (once(d, &seen, 8u, key) < 0 || get_opt_str(&val, &item->filename) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "platform")) {
            if (once(d, &seen, 16u, key) < 0 || get_opt_str(&val, &item->platform) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "profile_type")) {
            if (once(d, &seen, 32u, key) < 0 || get_opt_str(&val, &item->profile_type) < 0)
                return -1;
        } else if (kl_str_eq_c(key, "sampled")) {
            /* serde: a plain bool with a default, so null is a type error */
            bool b;
            if (once(d, &seen, 64u, key) < 0 || kl_json_get_bool(&val, &b) < 0)
                return -1;
            item->sampled = b ? KL_OPT_TRUE : KL_OPT_FALSE;
        } else if (kl_str_eq_c(key, "meta_length")) {
            if (once(d, &seen, 128u, key) < 0 ||
                get_opt_u32(d, &val, "meta_length", &item->has_meta_length, &item->meta_length) < 0)
                return -1;
        } else if (kl_json_skip(&val) < 0) {
            return -1;
        }
    }
    if (r < 0)
        return -1;
    if (kl_json_finish(d) < 0)
        return -1;
    if (!kl_str_is_set(item->type))
        return kl_err_set(err, KL_R_ENVELOPE_MALFORMED, "item header has no 'type'");
    return 0;
}

/* Relay's per-type item size limit (utils/sizes.rs). */
static size_t item_limit(const struct kl_envelope_limits *lim, struct kl_str type)
{
    if (kl_str_eq_c(type, "profile") || kl_str_eq_c(type, "profile_chunk"))
        return lim->max_profile_bytes;
    if (kl_str_eq_c(type, "event") || kl_str_eq_c(type, "transaction"))
        return lim->max_event_bytes;
    return lim->max_item_bytes;
}

/* ------------------------------------------------------------------------------------ */
/* Parser                                                                                 */

struct kl_envelope *kl_envelope_parse(struct kl_arena *a, const char *buf, size_t len,
                                      const struct kl_envelope_limits *lim, struct kl_err *err)
{
    struct kl_envelope_limits def;
    if (!lim) {
        kl_envelope_limits_default(&def);
        lim = &def;
    }
    if (len > lim->max_envelope_bytes) {
        kl_err_set(err, KL_R_ENVELOPE_TOO_LARGE, "envelope of %zu bytes exceeds %zu", len,
                   lim->max_envelope_bytes);
        return NULL;
    }

    const char *end = buf + len;
    const char *p = skip_ws(buf, end);
    if (p == end) {
        kl_err_set(err, KL_R_ENVELOPE_MALFORMED, "missing envelope header");
        return NULL;
    }

    struct kl_envelope *e = kl_arena_calloc(a, 1, sizeof *e);
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    if (parse_envelope_header(a, p, (size_t)(line_end - p), e, err) < 0)
        return NULL;
    p = nl ? nl + 1 : end;

    KL_VEC(struct kl_envelope_item) items = {NULL, 0, 0};
    for (;;) {
        p = skip_ws(p, end);
        if (p == end)
            break;
        if (items.len >= lim->max_items) {
            kl_err_set(err, KL_R_ENVELOPE_TOO_LARGE, "envelope has more than %zu items",
                       lim->max_items);
            return NULL;
        }
        struct kl_envelope_item item;
        memset(&item, 0, sizeof item);

        nl = memchr(p, '\n', (size_t)(end - p));
        line_end = nl ? nl : end;
        if (parse_item_header(a, p, (size_t)(line_end - p), &item, err) < 0)
            return NULL;

        /* The last header needs no newline, so the payload may start at EOF. */
        const char *ps = nl ? nl + 1 : end;
        size_t avail = (size_t)(end - ps);
        size_t plen;
        if (item.has_length) {
            plen = item.length;
            if (plen > avail) {
                kl_err_set(err, KL_R_ENVELOPE_MALFORMED,
                           "item %zu: length %zu runs past the end of the envelope (%zu left)",
                           items.len, plen, avail);
                return NULL;
            }
            if (plen < avail && ps[plen] != '\n') {
                kl_err_set(err, KL_R_ENVELOPE_MALFORMED,
                           "item %zu: missing newline after payload of %zu bytes", items.len, plen);
                return NULL;
            }
        } else {
            const char *pe = memchr(ps, '\n', avail);
            plen = pe ? (size_t)(pe - ps) : avail;
        }

        size_t max = item_limit(lim, item.type);
        if (plen > max) {
            kl_err_set(err, KL_R_ENVELOPE_TOO_LARGE,
                       "item %zu ('%.*s'): payload of %zu bytes exceeds %zu", items.len,
                       trunc_len(item.type.len), item.type.ptr, plen, max);
            return NULL;
        }
        char *copy = kl_arena_alloc(a, plen + KL_PADDING);
        if (plen)
            memcpy(copy, ps, plen);
        memset(copy + plen, 0, KL_PADDING);
        item.payload = copy;
        item.payload_len = plen;
        kl_vec_push(a, &items, item);

        p = ps + plen;
        if (p < end)
            p++; /* the payload's newline */
    }
    e->items = items.items;
    e->n_items = items.len;
    return e;
}

const struct kl_envelope_item *kl_envelope_find_item(const struct kl_envelope *e, const char *type)
{
    for (size_t i = 0; i < e->n_items; i++)
        if (kl_str_eq_c(e->items[i].type, type))
            return &e->items[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                                 */

static void put_opt_str(struct kl_jw *w, const char *key, struct kl_str s)
{
    if (!kl_str_is_set(s))
        return;
    kl_jw_key(w, key);
    kl_jw_str(w, s);
}

int kl_envelope_write(const struct kl_envelope *e, struct kl_buf *out)
{
    struct kl_jw w;

    kl_jw_init(&w, out);
    kl_jw_obj_begin(&w);
    put_opt_str(&w, "event_id", e->event_id);
    put_opt_str(&w, "dsn", e->dsn);
    put_opt_str(&w, "sent_at", e->sent_at);
    if (kl_str_is_set(e->sdk_name) || kl_str_is_set(e->sdk_version)) {
        kl_jw_key(&w, "sdk");
        kl_jw_obj_begin(&w);
        put_opt_str(&w, "name", e->sdk_name);
        put_opt_str(&w, "version", e->sdk_version);
        kl_jw_obj_end(&w);
    }
    kl_jw_obj_end(&w);
    kl_buf_putc(out, '\n');

    for (size_t i = 0; i < e->n_items; i++) {
        const struct kl_envelope_item *it = &e->items[i];
        kl_jw_init(&w, out);
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "type");
        kl_jw_str(&w, kl_str_is_set(it->type) ? it->type : KL_STR(""));
        kl_jw_key(&w, "length");
        kl_jw_u64(&w, it->payload_len);
        put_opt_str(&w, "content_type", it->content_type);
        put_opt_str(&w, "filename", it->filename);
        put_opt_str(&w, "platform", it->platform);
        put_opt_str(&w, "profile_type", it->profile_type);
        if (it->sampled != KL_OPT_ABSENT) {
            kl_jw_key(&w, "sampled");
            kl_jw_bool(&w, it->sampled == KL_OPT_TRUE);
        }
        if (it->has_meta_length) {
            kl_jw_key(&w, "meta_length");
            kl_jw_u64(&w, it->meta_length);
        }
        kl_jw_obj_end(&w);
        kl_buf_putc(out, '\n');
        if (it->payload_len)
            kl_buf_append(out, it->payload, it->payload_len);
        kl_buf_putc(out, '\n');
    }
    return kl_err_is_set(&out->err) ? -1 : 0;
}
