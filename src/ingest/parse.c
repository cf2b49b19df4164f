/* parse.c - profile JSON -> struct kl_profile (see parse.h for the design)
 *
 * Hand-written dispatch over simdjson On-Demand values. The hot loops are samples (one
 * small object each, read from its text by scan_sample when it is a plain v1 sample),
 * stacks (bulk integer arrays, kl_json_arr_append_u32 and its raw scan) and frames.
 */
#include "ingest/parse.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/time.h"
#include "json/json.h"

struct ctx {
    struct kl_profile *p;
    size_t input_len;
    struct kl_json_doc *doc;
    struct kl_err *err;
    /* thread id -> index into the current sample data's threads */
    struct tmap {
        uint32_t *slots; /* thread index + 1; 0 = empty */
        size_t cap;
    } tmap;
    uint32_t last_thread;     /* cache: index of the last thread looked up */
    int32_t thread_queue[16]; /* cache: queue of the last sample of threads 0..15, -1 none */
    /* shape facts for the format decision */
    bool thread_id_number_seen; /* a sample thread id was a JSON number */
    bool thread_id_nonnum_seen; /* a sample thread id was a non-decimal string */
    bool sample_missing_elapsed, sample_missing_ts, sample_missing_stack, sample_missing_tid;
    bool seen_profile, seen_transaction, seen_transactions, seen_device, seen_os;
    bool seen_sampled_profile_key, seen_profile_methods;
    bool timestamp_is_number, timestamp_is_string;
    struct kl_str timestamp_str;
    bool frame_missing_addr_ok;
    struct kl_transaction legacy_tx; /* legacy Android top-level transaction fields */
    bool has_legacy_tx_fields;
    bool has_active_thread_id;
    uint64_t active_thread_id;
};

#define FAIL(c, ...) kl_json_fail((c)->doc, KL_R_PROFILING_INVALID_JSON, __VA_ARGS__)

/* ---------------------------------------------------------------------------------- */
/* scalars                                                                             */

/* A nullable object: 1 with it begun, 0 for null (the field is absent), -1 on error. */
static int opt_obj_begin(struct kl_json_val *v, struct kl_json_iter *it)
{
    int n = kl_json_is_null(v);
    if (n != 0)
        return n < 0 ? -1 : 0;
    return kl_json_obj_begin(v, it) < 0 ? -1 : 1;
}

/* Optional string: null -> absent. Interned when intern is set. */
static int opt_str(struct ctx *c, struct kl_json_val *v, struct kl_str *out, bool intern)
{
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (n > 0)
            *out = KL_STR_NULL;
        return n < 0 ? -1 : 0;
    }
    struct kl_str s;
    if (kl_json_get_str(v, &s) < 0)
        return -1;
    *out = intern ? kl_intern(&c->p->strings, s) : s;
    return 0;
}

static int req_str(struct ctx *c, struct kl_json_val *v, struct kl_str *out, const char *what)
{
    if (kl_json_type(v) != KL_JSON_STRING)
        return kl_err_is_set(c->err) ? -1 : FAIL(c, "invalid json: '%s' must be a string", what);
    return kl_json_get_str(v, out);
}

static int opt_bool(struct ctx *c, struct kl_json_val *v, uint8_t *out)
{
    (void)c;
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (n > 0)
            *out = KL_UNSET;
        return n < 0 ? -1 : 0;
    }
    bool b;
    if (kl_json_get_bool(v, &b) < 0)
        return -1;
    *out = kl_tri_from(b);
    return 0;
}

/* num-or-string u64; null -> *present = false */
static int opt_u64_lenient(struct ctx *c, struct kl_json_val *v, uint64_t *out, bool *present)
{
    (void)c;
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (present)
            *present = false;
        return n < 0 ? -1 : 0;
    }
    if (kl_json_get_u64_lenient(v, out) < 0)
        return -1;
    if (present)
        *present = true;
    return 0;
}

static int opt_u32(struct ctx *c, struct kl_json_val *v, uint32_t *out, bool *present,
                   const char *what)
{
    int n = kl_json_is_null(v);
    if (n != 0) {
        *present = false;
        return n < 0 ? -1 : 0;
    }
    uint64_t x;
    if (kl_json_get_u64(v, &x) < 0)
        return -1;
    if (x > UINT32_MAX)
        return FAIL(c, "invalid json: '%s' out of range", what);
    *out = (uint32_t)x;
    *present = true;
    return 0;
}

/* An id parsed as a UUID and kept as 32 lowercase hex (Relay's EventId form). */
static int uuid_field(struct ctx *c, struct kl_json_val *v, struct kl_str *out, const char *what)
{
    struct kl_str s;
    if (req_str(c, v, &s, what) < 0)
        return -1;
    struct kl_uuid u;
    if (!kl_uuid_parse(s, &u))
        return FAIL(c, "invalid json: '%s' is not a uuid: '%.*s'", what,
                    (int)(s.len > 64 ? 64 : s.len), s.ptr);
    char *h = kl_arena_alloc(c->p->arena, 33);
    kl_uuid_hex(&u, h);
    *out = kl_str_make(h, 32);
    return 0;
}

static int opt_uuid(struct ctx *c, struct kl_json_val *v, struct kl_str *out, const char *what)
{
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (n > 0)
            *out = KL_STR_NULL;
        return n < 0 ? -1 : 0;
    }
    return uuid_field(c, v, out, what);
}

/* A UUID kept in the dashed lowercase form (the uuid crate's Serialize), for image uuids. */
static int dashed_uuid(struct ctx *c, struct kl_json_val *v, struct kl_str *out, const char *what)
{
    struct kl_str s;
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (n > 0)
            *out = KL_STR_NULL;
        return n < 0 ? -1 : 0;
    }
    if (req_str(c, v, &s, what) < 0)
        return -1;
    struct kl_uuid u;
    if (!kl_uuid_parse(s, &u))
        return FAIL(c, "invalid json: '%s' is not a uuid", what);
    char *h = kl_arena_alloc(c->p->arena, 37);
    kl_uuid_dashed(&u, h);
    *out = kl_str_make(h, 36);
    return 0;
}

/* A debug id: a UUID plus an optional appendix (age), "uuid-appendix" or 33-40 hex
 * (breakpad form). Normalized to lowercase dashed uuid + "-appendix" when non-zero. */
static int debug_id_field(struct ctx *c, struct kl_json_val *v, struct kl_str *out)
{
    struct kl_str s;
    int n = kl_json_is_null(v);
    if (n != 0) {
        if (n > 0)
            *out = KL_STR_NULL;
        return n < 0 ? -1 : 0;
    }
    if (req_str(c, v, &s, "debug_id") < 0)
        return -1;
    struct kl_uuid u;
    struct kl_str rest = KL_STR_NULL;
    if (s.len >= 36 && kl_uuid_parse(kl_str_make(s.ptr, 36), &u)) {
        rest = kl_str_make(s.ptr + 36, s.len - 36);
        if (rest.len && (rest.ptr[0] == '-' || rest.ptr[0] == '.'))
            rest = kl_str_make(rest.ptr + 1, rest.len - 1);
        else if (rest.len)
            return FAIL(c, "invalid json: bad debug_id");
    } else if (s.len >= 32 && s.len <= 40 && kl_uuid_parse(kl_str_make(s.ptr, 32), &u)) {
        rest = kl_str_make(s.ptr + 32, s.len - 32);
    } else {
        return FAIL(c, "invalid json: bad debug_id");
    }
    uint64_t age = 0;
    if (rest.len && !kl_parse_hex_u64(rest, &age))
        return FAIL(c, "invalid json: bad debug_id appendix");
    char *h = kl_arena_alloc(c->p->arena, 64);
    kl_uuid_dashed(&u, h);
    size_t len = 36;
    if (age)
        len += (size_t)snprintf(h + 36, 28, "-%llx", (unsigned long long)age);
    *out = kl_str_make(h, len);
    return 0;
}

/* Relay's Addr: "0x..." hex string (or a plain number). */
static int addr_field(struct ctx *c, struct kl_json_val *v, uint64_t *out, bool *present)
{
    int n = kl_json_is_null(v);
    if (n != 0) {
        *present = false;
        return n < 0 ? -1 : 0;
    }
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_NUMBER) {
        *present = true;
        return kl_json_get_u64(v, out);
    }
    struct kl_str s;
    if (req_str(c, v, &s, "address") < 0)
        return -1;
    if (!kl_parse_hex_u64(s, out))
        return FAIL(c, "invalid json: bad address '%.*s'", (int)(s.len > 40 ? 40 : s.len), s.ptr);
    *present = true;
    return 0;
}

static int string_map(struct ctx *c, struct kl_json_val *v, kl_vec_kv *out, bool *has)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    *has = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (out->len >= KL_MAX_MAP_ENTRIES)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "too many map entries");
        struct kl_str s;
        if (kl_json_type(&x) == KL_JSON_NULL) {
            kl_json_is_null(&x);
            continue;
        }
        if (req_str(c, &x, &s, "map value") < 0)
            return -1;
        struct kl_kv kv = {k, s};
        kl_vec_push(c->p->arena, out, kv);
    }
    return n;
}

/* ---------------------------------------------------------------------------------- */
/* threads                                                                             */

static void tmap_reset(struct ctx *c)
{
    c->tmap.slots = NULL;
    c->tmap.cap = 0;
    c->last_thread = UINT32_MAX;
    for (size_t i = 0; i < sizeof c->thread_queue / sizeof c->thread_queue[0]; i++)
        c->thread_queue[i] = -1;
}

static void tmap_grow(struct ctx *c, struct kl_sample_data *d)
{
    size_t ncap = c->tmap.cap ? c->tmap.cap * 2 : 64;
    c->tmap.slots = kl_arena_calloc(c->p->arena, ncap, sizeof(uint32_t));
    c->tmap.cap = ncap;
    for (size_t i = 0; i < d->threads.len; i++) {
        struct kl_str id = d->threads.items[i].id;
        size_t j = kl_hash_bytes(id.ptr, id.len) & (ncap - 1);
        while (c->tmap.slots[j])
            j = (j + 1) & (ncap - 1);
        c->tmap.slots[j] = (uint32_t)i + 1;
    }
}

/* kl_str_eq for the short ids of the sample loop (thread ids, queue addresses), without a
 * call to memcmp: 8 bytes at a time, the last word overlapping. */
static inline bool id_eq(struct kl_str a, struct kl_str b)
{
    if (a.len != b.len)
        return false;
    if (a.len < 8) {
        for (size_t i = 0; i < a.len; i++)
            if (a.ptr[i] != b.ptr[i])
                return false;
        return true;
    }
    uint64_t x, y;
    for (size_t i = 0; i + 8 < a.len; i += 8) {
        memcpy(&x, a.ptr + i, 8);
        memcpy(&y, b.ptr + i, 8);
        if (x != y)
            return false;
    }
    memcpy(&x, a.ptr + a.len - 8, 8);
    memcpy(&y, b.ptr + a.len - 8, 8);
    return x == y;
}

/* Index of the thread with this id in d, created when new. -1 past the thread limit. */
static int64_t thread_index(struct ctx *c, struct kl_sample_data *d, struct kl_str id)
{
    if (c->last_thread < d->threads.len && id_eq(d->threads.items[c->last_thread].id, id))
        return c->last_thread;
    if (d->threads.len * 2 >= c->tmap.cap)
        tmap_grow(c, d);
    size_t j = kl_hash_bytes(id.ptr, id.len) & (c->tmap.cap - 1);
    while (c->tmap.slots[j]) {
        uint32_t ix = c->tmap.slots[j] - 1;
        if (id_eq(d->threads.items[ix].id, id))
            return c->last_thread = ix;
        j = (j + 1) & (c->tmap.cap - 1);
    }
    if (d->threads.len >= KL_MAX_THREADS)
        return -1;
    struct kl_thread t = {0};
    t.id = kl_intern(&c->p->strings, id);
    uint64_t num;
    if (kl_parse_u64(id, &num))
        t.id_num = num;
    kl_vec_push(c->p->arena, &d->threads, t);
    c->tmap.slots[j] = (uint32_t)d->threads.len;
    return c->last_thread = (uint32_t)(d->threads.len - 1);
}

/* ---------------------------------------------------------------------------------- */
/* samples, stacks, frames                                                             */

/* Unix seconds (finite, >= 0) to ns, saturating: Relay accepts any finite timestamp, the
 * model's ns fields hold up to year 2554 (u64) / 2262 (i64 timestamp_ns). */
static uint64_t secs_to_ns_u64(double s)
{
    double ns = s * 1e9;
    if (!(ns >= 0))
        return 0;
    if (ns >= 9223372036854775807.0)
        return INT64_MAX;
    return (uint64_t)ns;
}

/* How many elements to reserve for an array whose elements take at least min_bytes of JSON
 * each: what the whole input could hold, capped by the limit. */
static size_t reserve_hint(const struct ctx *c, size_t min_bytes, size_t limit)
{
    size_t n = c->input_len / min_bytes + 16;
    return n < limit ? n : limit;
}

/* A sample's thread id once read: x when it was a JSON number, else the string id. */
static int sample_thread(struct ctx *c, struct kl_sample_data *d, bool is_num, uint64_t x,
                         struct kl_str id, uint32_t *out)
{
    char tmp[24];
    if (is_num) {
        c->thread_id_number_seen = true;
        id = kl_str_make(tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)x));
    } else if (!kl_parse_u64(id, &x)) {
        c->thread_id_nonnum_seen = true;
    } else if (id.len > 1 && id.ptr[0] == '0') {
        /* v1 reads the id as a number: "0259" is thread 259 */
        id = kl_str_make(tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)x));
    }
    int64_t ix = thread_index(c, d, id);
    if (ix < 0)
        return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "more than %u threads",
                            KL_MAX_THREADS);
    *out = (uint32_t)ix;
    return 0;
}

static int parse_sample_thread_id(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v,
                                  uint32_t *out)
{
    enum kl_json_type t = kl_json_type(v);
    struct kl_str id = KL_STR_NULL;
    uint64_t x = 0;
    if (t == KL_JSON_NUMBER) {
        if (kl_json_get_u64(v, &x) < 0)
            return -1;
    } else if (t == KL_JSON_STRING) {
        if (kl_json_get_str(v, &id) < 0)
            return -1;
    } else {
        return kl_err_is_set(c->err) ? -1 : FAIL(c, "invalid json: bad thread_id");
    }
    return sample_thread(c, d, t == KL_JSON_NUMBER, x, id, out);
}

enum { S_STACK = 1, S_THREAD = 2, S_ELAPSED = 4, S_TS = 8, S_QUEUE = 16, S_STATE = 32 };

static int queue_index(struct ctx *c, struct kl_sample_data *d, struct kl_str addr)
{
    for (size_t i = d->queues.len; i-- > 0;)
        if (id_eq(d->queues.items[i].address, addr))
            return (int)i;
    if (d->queues.len >= KL_MAX_THREADS)
        return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "too many queues") - 1;
    struct kl_queue q = {kl_intern(&c->p->strings, addr), KL_STR_NULL, false};
    kl_vec_push(c->p->arena, &d->queues, q);
    return (int)d->queues.len - 1;
}

/* p[0..n) is lit (n >= 8 bytes, within the input). Compared 8 bytes at a time, the last
 * word overlapping, so that a constant n unrolls into a few loads (libc's memcmp is a
 * call). */
static inline bool at_key(const char *p, const char *end, const char *lit, size_t n)
{
    uint64_t x, y;
    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, p + i, 8);
        memcpy(&y, lit + i, 8);
        if (x != y)
            return false;
    }
    memcpy(&x, p + n - 8, 8);
    memcpy(&y, lit + n - 8, 8);
    return x == y;
}

/* A string thread id that sample_thread would take as it is (plain decimal, no leading
 * zero, fits u64, so no flag to set and no re-formatting) and that names one of the first
 * threads: OUT *ix, without hashing. */
static inline bool known_thread(const struct kl_sample_data *d, struct kl_str id, uint32_t *ix)
{
    if (id.len == 0 || id.len > 19 || (id.ptr[0] == '0' && id.len > 1))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < id.len; i++) {
        unsigned dg = (unsigned)(id.ptr[i] - '0');
        if (dg > 9)
            return false;
        x = x * 10 + dg;
    }
    /* candidates by number and length (cheap), confirmed by the text: a thread whose id is
     * not a number has id_num 0 */
    size_t n = d->threads.len < 16 ? d->threads.len : 16;
    for (size_t i = 0; i < n; i++) {
        const struct kl_thread *t = &d->threads.items[i];
        if (t->id_num == x && t->id.len == id.len && id_eq(t->id, id)) {
            *ix = (uint32_t)i;
            return true;
        }
    }
    return false;
}

/* "digits" at p (1 to 15 digits, leading zeros allowed as kl_parse_u64 allows them): the
 * bytes used, with *v; 0 for anything else. */
static inline size_t quoted_digits(const char *p, const char *end, uint64_t *v)
{
    static const uint64_t pow10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
    uint64_t x, y;
    unsigned n = kl__json_digits8(p + 1, &x);
    if (n == 8) {
        unsigned m = kl__json_digits8(p + 9, &y);
        if (m == 8)
            return 0;
        x = x * pow10[m] + (m ? y : 0);
        n += m;
    }
    if (n == 0 || (size_t)(end - p) <= n + 1 || p[n + 1] != '"')
        return 0;
    *v = x;
    return n + 2;
}

/* The fast path for one sample object (see "Raw scanning" in json/json.h): the object at p
 * is read from the text when it has only the keys of the v1 sample (stack_id, thread_id,
 * elapsed_since_start_ns, queue_address, state), each once, with plain integers and strings
 * without escapes. The values are collected first and applied only once the closing brace
 * was read, so a decline (0) leaves nothing behind and the general path reads the object
 * from scratch. 1 when read into *s (and the sample's threads and queues registered). */
static int scan_sample(struct ctx *c, struct kl_sample_data *d, const char *p, const char *end,
                       struct kl_sample *s, unsigned *seen_out)
{
    uint64_t stack = 0, tid_num = 0, elapsed = 0;
    struct kl_str tid = KL_STR_NULL, queue = KL_STR_NULL, state = KL_STR_NULL;
    bool tid_is_num = false;
    unsigned seen = 0;
    if (p >= end || *p != '{')
        return 0;
    p = kl_json_scan_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        /* Keys are matched with their closing quote and colon, so a key with an escape, a
         * longer key with one of these as prefix, or space before the colon all decline
         * or take the slow match below. */
        unsigned bit;
        if (p >= end || *p != '"')
            return 0;
        if (at_key(p, end, "\"stack_id\":", 11)) {
            bit = S_STACK;
            p += 11;
        } else if (at_key(p, end, "\"thread_id\":", 12)) {
            bit = S_THREAD;
            p += 12;
        } else if (at_key(p, end, "\"elapsed_since_start_ns\":", 25)) {
            bit = S_ELAPSED;
            p += 25;
        } else if (at_key(p, end, "\"queue_address\":", 16)) {
            bit = S_QUEUE;
            p += 16;
        } else if (at_key(p, end, "\"state\":", 8)) {
            bit = S_STATE;
            p += 8;
        } else {
            return 0;
        }
        if (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p = kl_json_scan_ws(p, end);
        if (p >= end)
            return 0;
        if (bit == S_STACK) {
            if (!kl_json_scan_u64(&p, end, &stack))
                return 0;
        } else if (bit == S_THREAD) {
            if (*p == '"') {
                if (!kl_json_scan_str(&p, end, &tid))
                    return 0;
            } else {
                if (!kl_json_scan_u64(&p, end, &tid_num))
                    return 0;
                tid_is_num = true;
            }
        } else if (bit == S_ELAPSED) {
            if (*p == '"') {
                /* kl_json_get_u64_lenient's string form: one optional '+', then digits;
                 * the common "1071996" is read in place */
                size_t used = quoted_digits(p, end, &elapsed);
                if (used) {
                    p += used;
                    goto value_done;
                }
                struct kl_str e;
                if (!kl_json_scan_str(&p, end, &e))
                    return 0;
                if (e.len && e.ptr[0] == '+')
                    e = kl_str_make(e.ptr + 1, e.len - 1);
                if (!kl_parse_u64(e, &elapsed))
                    return 0;
            } else if (!kl_json_scan_u64(&p, end, &elapsed)) {
                return 0;
            }
        } else {
            struct kl_str *str = bit == S_QUEUE ? &queue : &state;
            if (*p == '"') {
                if (!kl_json_scan_str(&p, end, str))
                    return 0;
            } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                p += 4;
            } else {
                return 0;
            }
        }
    value_done:
        if (seen & bit)
            return 0;
        seen |= bit;
        if (p < end && *p != ',' && *p != '}')
            p = kl_json_scan_ws(p, end);
        if (p >= end)
            return 0;
        if (*p == '}')
            break;
        if (*p != ',')
            return 0;
        p = kl_json_scan_ws(p + 1, end);
    }
done:
    /* Registering a thread or queue fails only at the count limits: near them, decline
     * before any side effect, and the general path reports the first failure in document
     * order. */
    if (d->threads.len >= KL_MAX_THREADS || d->queues.len >= KL_MAX_THREADS)
        return 0;
    if (seen & S_THREAD) {
        if ((tid_is_num || !known_thread(d, tid, &s->thread)) &&
            sample_thread(c, d, tid_is_num, tid_num, tid, &s->thread) < 0)
            return -1;
    }
    if (kl_str_is_set(queue)) {
        /* a thread mostly stays on its queue: try the one of its last sample first (queue
         * addresses are unique in d->queues, so a match is what queue_index would find) */
        uint32_t t = s->thread;
        bool cached = (seen & S_THREAD) && t < 16;
        int qi = cached ? c->thread_queue[t] : -1;
        if (qi < 0 || !id_eq(d->queues.items[qi].address, queue)) {
            qi = queue_index(c, d, queue);
            if (qi < 0)
                return -1;
            if (cached)
                c->thread_queue[t] = qi;
        }
        s->queue = qi;
    }
    s->stack_id = stack > UINT32_MAX ? UINT32_MAX : (uint32_t)stack;
    s->ts_ns = elapsed;
    if (kl_str_is_set(state))
        s->idle = kl_str_eq_c(state, "idle");
    *seen_out = seen;
    return 1;
}

static int parse_samples(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_json_val sv;
    int n;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    /* Reserve once from the input size (a sample takes >= ~45 bytes of JSON): growth by
     * doubling would copy and touch twice the memory. Untouched capacity costs no RSS. */
    if (d->samples.cap == 0)
        kl_vec_reserve(c->p->arena, &d->samples, reserve_hint(c, 45, KL_MAX_SAMPLES));
    bool fast = kl_json_fast_paths();
    while ((n = kl_json_arr_next(&it, &sv)) > 0) {
        if (d->samples.len >= KL_MAX_SAMPLES)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_SAMPLES, "more than %u samples",
                                KL_MAX_SAMPLES);
        struct kl_sample s = {0};
        s.queue = -1;
        unsigned seen = 0;
        struct kl_json_iter fi;
        struct kl_str k;
        struct kl_json_val fv;
        int m = 0;
        if (fast) {
            const char *end;
            const char *p = kl_json_raw(&sv, &end);
            int r = scan_sample(c, d, p, end, &s, &seen);
            if (r < 0)
                return -1;
            if (r > 0) {
                kl_json_scanned(&sv);
                goto sample_done;
            }
        }
        if (kl_json_obj_begin(&sv, &fi) < 0)
            return -1;
        while ((m = kl_json_obj_next(&fi, &k, &fv)) > 0) {
            unsigned bit = 0;
            if (kl_str_eq_c(k, "stack_id")) {
                bit = S_STACK;
                uint64_t x;
                if (kl_json_get_u64(&fv, &x) < 0)
                    return -1;
                s.stack_id = x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
            } else if (kl_str_eq_c(k, "thread_id")) {
                bit = S_THREAD;
                if (parse_sample_thread_id(c, d, &fv, &s.thread) < 0)
                    return -1;
            } else if (kl_str_eq_c(k, "elapsed_since_start_ns")) {
                bit = S_ELAPSED;
                if (kl_json_get_u64_lenient(&fv, &s.ts_ns) < 0)
                    return -1;
            } else if (kl_str_eq_c(k, "timestamp")) {
                bit = S_TS;
                if (kl_json_get_f64(&fv, &s.ts_s) < 0)
                    return -1;
                if (!isfinite(s.ts_s) || s.ts_s < 0)
                    return FAIL(c, "invalid json: sample timestamp out of range");
                s.ts_ns = secs_to_ns_u64(s.ts_s);
            } else if (kl_str_eq_c(k, "queue_address")) {
                bit = S_QUEUE;
                struct kl_str q;
                if (opt_str(c, &fv, &q, false) < 0)
                    return -1;
                if (kl_str_is_set(q)) {
                    int qi = queue_index(c, d, q);
                    if (qi < 0)
                        return -1;
                    s.queue = qi;
                }
            } else if (kl_str_eq_c(k, "state")) {
                bit = S_STATE;
                struct kl_str st;
                if (opt_str(c, &fv, &st, false) < 0)
                    return -1;
                s.idle = kl_str_eq_c(st, "idle");
            } else {
                continue;
            }
            if (seen & bit)
                return FAIL(c, "invalid json: duplicate field '%.*s' in a sample", (int)k.len,
                            k.ptr);
            seen |= bit;
        }
        if (m < 0)
            return -1;
    sample_done:
        if (!(seen & S_STACK))
            c->sample_missing_stack = true;
        if (!(seen & S_THREAD)) {
            /* v1 defaults to 0 nowhere: thread_id is required; remember and fail later */
            c->sample_missing_tid = true;
        }
        if (!(seen & S_ELAPSED))
            c->sample_missing_elapsed = true;
        if (!(seen & S_TS))
            c->sample_missing_ts = true;
        kl_vec_push(c->p->arena, &d->samples, s);
    }
    return n;
}

static int parse_stacks(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_json_val sv;
    int n;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    if (d->stack_frames.cap == 0) {
        kl_vec_reserve(c->p->arena, &d->stack_frames, reserve_hint(c, 3, KL_MAX_STACK_ENTRIES));
        kl_vec_reserve(c->p->arena, &d->stack_off, reserve_hint(c, 64, KL_MAX_STACKS));
    }
    kl_vec_push(c->p->arena, &d->stack_off, (uint32_t)d->stack_frames.len);
    while ((n = kl_json_arr_next(&it, &sv)) > 0) {
        if (d->stack_off.len > KL_MAX_STACKS)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_STACKS, "more than %u stacks",
                                KL_MAX_STACKS);
        size_t count;
        size_t room = d->stack_frames.len + KL_MAX_STACK_DEPTH;
        if (room > KL_MAX_STACK_ENTRIES)
            room = KL_MAX_STACK_ENTRIES;
        if (kl_json_arr_append_u32(&sv, c->p->arena, &d->stack_frames, room,
                                   KL_R_PROFILE_STACK_TOO_DEEP, &count) < 0)
            return -1;
        kl_vec_push(c->p->arena, &d->stack_off, (uint32_t)d->stack_frames.len);
    }
    return n;
}

static int parse_frame_data(struct ctx *c, struct kl_frame *f, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    f->flags |= KL_FRAME_HAS_DATA;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "deobfuscation_status"))
            r = opt_str(c, &x, &f->data_deobfuscation_status, true);
        else if (kl_str_eq_c(k, "symbolicator_status"))
            r = opt_str(c, &x, &f->data_symbolicator_status, true);
        else if (kl_str_eq_c(k, "symbolicated"))
            r = opt_bool(c, &x, &f->data_js_symbolicated);
        else if (kl_str_eq_c(k, "orig_in_app")) {
            uint64_t o;
            bool present = false;
            if (kl_json_type(&x) == KL_JSON_BOOL) {
                bool b;
                r = kl_json_get_bool(&x, &b);
                o = b, present = true;
            } else {
                r = opt_u64_lenient(c, &x, &o, &present);
            }
            if (present) {
                f->flags |= KL_FRAME_ORIG_IN_APP;
                f->orig_in_app = kl_tri_from(o != 0);
            }
        }
        if (r < 0)
            return -1;
    }
    return n;
}

static int parse_frames(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_json_val fv;
    int n;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_arr_next(&it, &fv)) > 0) {
        if (d->frames.len >= KL_MAX_FRAMES)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_FRAMES, "more than %u frames",
                                KL_MAX_FRAMES);
        struct kl_frame f;
        memset(&f, 0, sizeof f);
        struct kl_json_iter fi;
        struct kl_str k;
        struct kl_json_val x;
        int m;
        if (kl_json_obj_begin(&fv, &fi) < 0)
            return -1;
        while ((m = kl_json_obj_next(&fi, &k, &x)) > 0) {
            int r = 0;
            bool present = false;
            switch (k.len ? k.ptr[0] : 0) {
            case 'a':
                if (kl_str_eq_c(k, "abs_path"))
                    r = opt_str(c, &x, &f.abs_path, true);
                break;
            case 'c':
                if (kl_str_eq_c(k, "colno") || kl_str_eq_c(k, "column")) {
                    r = opt_u32(c, &x, &f.colno, &present, "colno");
                    if (present)
                        f.flags |= KL_FRAME_HAS_COLNO;
                }
                break;
            case 'd':
                if (kl_str_eq_c(k, "data"))
                    r = parse_frame_data(c, &f, &x);
                break;
            case 'f':
                if (kl_str_eq_c(k, "function"))
                    r = opt_str(c, &x, &f.function, true);
                else if (kl_str_eq_c(k, "filename") || kl_str_eq_c(k, "file"))
                    r = opt_str(c, &x, &f.filename, true);
                break;
            case 'i':
                if (kl_str_eq_c(k, "instruction_addr")) {
                    r = addr_field(c, &x, &f.instruction_addr, &present);
                    if (present)
                        f.flags |= KL_FRAME_HAS_ADDR;
                } else if (kl_str_eq_c(k, "in_app")) {
                    r = opt_bool(c, &x, &f.in_app);
                }
                break;
            case 'l':
                if (kl_str_eq_c(k, "lineno") || kl_str_eq_c(k, "line")) {
                    r = opt_u32(c, &x, &f.lineno, &present, "lineno");
                    if (present)
                        f.flags |= KL_FRAME_HAS_LINENO;
                } else if (kl_str_eq_c(k, "lang")) {
                    r = opt_str(c, &x, &f.lang, true);
                }
                break;
            case 'm':
                if (kl_str_eq_c(k, "module"))
                    r = opt_str(c, &x, &f.module, true);
                break;
            case 'n':
                if (kl_str_eq_c(k, "name"))
                    r = opt_str(c, &x, &f.function, true);
                break;
            case 'p':
                if (kl_str_eq_c(k, "package"))
                    r = opt_str(c, &x, &f.package, true);
                else if (kl_str_eq_c(k, "platform"))
                    r = opt_str(c, &x, &f.platform, true);
                break;
            case 's':
                if (kl_str_eq_c(k, "symbol"))
                    r = opt_str(c, &x, &f.symbol, true);
                else if (kl_str_eq_c(k, "sym_addr"))
                    r = opt_str(c, &x, &f.sym_addr, true);
                else if (kl_str_eq_c(k, "status"))
                    r = opt_str(c, &x, &f.status, true);
                break;
            default:
                break;
            }
            if (r < 0)
                return -1;
        }
        if (m < 0)
            return -1;
        kl_vec_push(c->p->arena, &d->frames, f);
    }
    return n;
}

static int parse_thread_metadata(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    d->has_thread_metadata = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int64_t ix = thread_index(c, d, k);
        if (ix < 0)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "more than %u threads",
                                KL_MAX_THREADS);
        struct kl_thread *t = &d->threads.items[ix];
        t->has_metadata = true;
        if (kl_json_is_null(&x) > 0)
            continue;
        struct kl_json_iter ti;
        struct kl_str tk;
        struct kl_json_val tv;
        int m;
        if (kl_json_obj_begin(&x, &ti) < 0)
            return -1;
        while ((m = kl_json_obj_next(&ti, &tk, &tv)) > 0) {
            if (kl_str_eq_c(tk, "name")) {
                if (opt_str(c, &tv, &t->name, true) < 0)
                    return -1;
            } else if (kl_str_eq_c(tk, "priority")) {
                if (kl_json_is_null(&tv) > 0)
                    continue;
                int64_t pr;
                if (kl_json_get_i64(&tv, &pr) < 0)
                    return -1;
                if (pr < INT32_MIN || pr > INT32_MAX)
                    return FAIL(c, "invalid json: thread priority out of range");
                t->priority = (int32_t)pr;
                t->has_priority = true;
            }
        }
        if (m < 0)
            return -1;
    }
    return n;
}

static int parse_queue_metadata(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    d->has_queue_metadata = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int qi = queue_index(c, d, k);
        if (qi < 0)
            return -1;
        struct kl_json_iter qi_it;
        struct kl_str qk;
        struct kl_json_val qv;
        int m;
        bool has_label = false;
        if (kl_json_obj_begin(&x, &qi_it) < 0)
            return -1;
        while ((m = kl_json_obj_next(&qi_it, &qk, &qv)) > 0) {
            if (kl_str_eq_c(qk, "label")) {
                if (req_str(c, &qv, &d->queues.items[qi].label, "label") < 0)
                    return -1;
                d->queues.items[qi].label = kl_intern(&c->p->strings, d->queues.items[qi].label);
                has_label = true;
            }
        }
        if (m < 0)
            return -1;
        if (!has_label)
            return FAIL(c, "invalid json: queue_metadata entry without label");
    }
    return n;
}

/* ---------------------------------------------------------------------------------- */
/* Android method trace                                                                */

static int parse_duration_obj(struct ctx *c, struct kl_json_val *v, uint64_t *ns, bool *present)
{
    int n = kl_json_is_null(v);
    if (n != 0) {
        *present = false;
        return n < 0 ? -1 : 0;
    }
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    uint64_t secs = 0, nanos = 0;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (kl_str_eq_c(k, "secs")) {
            if (kl_json_get_u64(&x, &secs) < 0)
                return -1;
        } else if (kl_str_eq_c(k, "nanos")) {
            if (kl_json_get_u64(&x, &nanos) < 0)
                return -1;
        }
    }
    if (n < 0)
        return -1;
    if (secs > UINT64_MAX / 1000000000ULL - 1)
        return FAIL(c, "invalid json: event time out of range");
    *ns = secs * 1000000000ULL + nanos;
    *present = true;
    return 0;
}

static int parse_event_time(struct ctx *c, struct kl_android_event *e, struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (kl_str_eq_c(k, "Monotonic")) {
            e->monotonic = true;
            struct kl_json_iter mi;
            struct kl_str mk;
            struct kl_json_val mv;
            int m;
            if (kl_json_obj_begin(&x, &mi) < 0)
                return -1;
            while ((m = kl_json_obj_next(&mi, &mk, &mv)) > 0) {
                if (kl_str_eq_c(mk, "wall")) {
                    if (parse_duration_obj(c, &mv, &e->wall_ns, &e->has_wall) < 0)
                        return -1;
                } else if (kl_str_eq_c(mk, "cpu")) {
                    if (parse_duration_obj(c, &mv, &e->cpu_ns, &e->has_cpu) < 0)
                        return -1;
                }
            }
            if (m < 0)
                return -1;
        } else if (kl_str_eq_c(k, "Global") || kl_str_eq_c(k, "global")) {
            if (parse_duration_obj(c, &x, &e->global_ns, &e->has_global) < 0)
                return -1;
        }
    }
    return n;
}

static int parse_android_events(struct ctx *c, struct kl_json_val *v)
{
    struct kl_android_trace *t = &c->p->android;
    struct kl_json_iter it;
    struct kl_json_val ev;
    int n;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_arr_next(&it, &ev)) > 0) {
        if (t->events.len >= KL_MAX_EVENTS)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_SAMPLES, "more than %u events",
                                KL_MAX_EVENTS);
        struct kl_android_event e;
        memset(&e, 0, sizeof e);
        struct kl_json_iter fi;
        struct kl_str k;
        struct kl_json_val x;
        int m;
        bool has_action = false;
        if (kl_json_obj_begin(&ev, &fi) < 0)
            return -1;
        while ((m = kl_json_obj_next(&fi, &k, &x)) > 0) {
            if (kl_str_eq_c(k, "action")) {
                struct kl_str a;
                if (req_str(c, &x, &a, "action") < 0)
                    return -1;
                if (kl_str_eq_c(a, "Enter"))
                    e.action = KL_ANDROID_ENTER;
                else if (kl_str_eq_c(a, "Exit"))
                    e.action = KL_ANDROID_EXIT;
                else if (kl_str_eq_c(a, "Unwind"))
                    e.action = KL_ANDROID_UNWIND;
                else
                    return FAIL(c, "invalid json: unknown event action");
                has_action = true;
            } else if (kl_str_eq_c(k, "thread_id")) {
                if (kl_json_get_u64(&x, &e.thread_id) < 0)
                    return -1;
            } else if (kl_str_eq_c(k, "method_id")) {
                if (kl_json_get_u64(&x, &e.method_id) < 0)
                    return -1;
                e.has_method_id = true;
            } else if (kl_str_eq_c(k, "time")) {
                if (parse_event_time(c, &e, &x) < 0)
                    return -1;
            }
        }
        if (m < 0)
            return -1;
        if (!has_action)
            return FAIL(c, "invalid json: event without action");
        kl_vec_push(c->p->arena, &t->events, e);
    }
    return n;
}

static int parse_android_method(struct ctx *c, struct kl_android_method *mt, struct kl_json_val *v,
                                int depth);

static int parse_android_methods_into(struct ctx *c, struct kl_json_val *v,
                                      struct kl_android_method **out, uint32_t *count, int depth)
{
    KL_VEC(struct kl_android_method) ms = {0};
    struct kl_json_iter it;
    struct kl_json_val mv;
    int n;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_arr_next(&it, &mv)) > 0) {
        if (ms.len >= KL_MAX_METHODS)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_FRAMES, "more than %u methods",
                                KL_MAX_METHODS);
        struct kl_android_method mt;
        if (parse_android_method(c, &mt, &mv, depth) < 0)
            return -1;
        kl_vec_push(c->p->arena, &ms, mt);
    }
    if (n < 0)
        return -1;
    *out = ms.items;
    *count = (uint32_t)ms.len;
    return 0;
}

static int parse_android_method(struct ctx *c, struct kl_android_method *mt, struct kl_json_val *v,
                                int depth)
{
    memset(mt, 0, sizeof *mt);
    struct kl_json_iter fi;
    struct kl_str k;
    struct kl_json_val x;
    int m;
    if (kl_json_obj_begin(v, &fi) < 0)
        return -1;
    while ((m = kl_json_obj_next(&fi, &k, &x)) > 0) {
        int r = 0;
        bool present = false;
        if (kl_str_eq_c(k, "id"))
            r = kl_json_get_u64(&x, &mt->id);
        else if (kl_str_eq_c(k, "class_name"))
            r = opt_str(c, &x, &mt->class_name, true);
        else if (kl_str_eq_c(k, "name"))
            r = opt_str(c, &x, &mt->name, true);
        else if (kl_str_eq_c(k, "signature"))
            r = opt_str(c, &x, &mt->signature, true);
        else if (kl_str_eq_c(k, "source_file"))
            r = opt_str(c, &x, &mt->source_file, true);
        else if (kl_str_eq_c(k, "platform"))
            r = opt_str(c, &x, &mt->platform, true);
        else if (kl_str_eq_c(k, "in_app"))
            r = opt_bool(c, &x, &mt->in_app);
        else if (kl_str_eq_c(k, "source_line")) {
            r = opt_u32(c, &x, &mt->source_line, &present, "source_line");
            mt->has_source_line = present;
        } else if (kl_str_eq_c(k, "data")) {
            struct kl_frame tmp;
            memset(&tmp, 0, sizeof tmp);
            r = parse_frame_data(c, &tmp, &x);
            mt->has_data = (tmp.flags & KL_FRAME_HAS_DATA) != 0;
            mt->data_deobfuscation_status = tmp.data_deobfuscation_status;
        } else if (kl_str_eq_c(k, "inline_frames") && depth == 0) {
            if (kl_json_is_null(&x) > 0)
                continue;
            r = parse_android_methods_into(c, &x, &mt->inline_frames, &mt->n_inline, 1);
        }
        if (r < 0)
            return -1;
    }
    return m;
}

/* ---------------------------------------------------------------------------------- */
/* "profile": sample data and/or an Android method trace                              */

static int parse_profile_obj(struct ctx *c, struct kl_sample_data *d, struct kl_json_val *v,
                             bool allow_android)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    tmap_reset(c);
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    d->present = true;
    bool android = false, sample = false;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "samples")) {
            r = parse_samples(c, d, &x);
            sample = true;
        } else if (kl_str_eq_c(k, "stacks")) {
            r = parse_stacks(c, d, &x);
            sample = true;
        } else if (kl_str_eq_c(k, "frames")) {
            r = parse_frames(c, d, &x);
            sample = true;
        } else if (kl_str_eq_c(k, "thread_metadata")) {
            r = parse_thread_metadata(c, d, &x);
        } else if (kl_str_eq_c(k, "queue_metadata")) {
            r = parse_queue_metadata(c, d, &x);
        } else if (allow_android && kl_str_eq_c(k, "methods")) {
            r = parse_android_methods_into(c, &x, &c->p->android.methods.items,
                                           (uint32_t *)&c->p->android.methods.len, 0);
            c->p->android.methods.cap = c->p->android.methods.len;
            android = true;
            c->seen_profile_methods = true;
        } else if (allow_android && kl_str_eq_c(k, "events")) {
            r = parse_android_events(c, &x);
            android = true;
        } else if (allow_android && kl_str_eq_c(k, "threads")) {
            struct kl_json_iter ti;
            struct kl_json_val tv;
            int m;
            android = true;
            if (kl_json_arr_begin(&x, &ti) < 0)
                return -1;
            while ((m = kl_json_arr_next(&ti, &tv)) > 0) {
                if (c->p->android.threads.len >= KL_MAX_THREADS)
                    return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "too many threads");
                struct kl_android_thread th = {0, KL_STR_NULL};
                struct kl_json_iter fi;
                struct kl_str fk;
                struct kl_json_val fv;
                int q;
                if (kl_json_obj_begin(&tv, &fi) < 0)
                    return -1;
                while ((q = kl_json_obj_next(&fi, &fk, &fv)) > 0) {
                    if (kl_str_eq_c(fk, "id")) {
                        if (kl_json_get_u64(&fv, &th.id) < 0)
                            return -1;
                    } else if (kl_str_eq_c(fk, "name")) {
                        if (opt_str(c, &fv, &th.name, true) < 0)
                            return -1;
                    }
                }
                if (q < 0)
                    return -1;
                kl_vec_push(c->p->arena, &c->p->android.threads, th);
            }
            r = m;
        } else if (allow_android && kl_str_eq_c(k, "clock")) {
            r = opt_str(c, &x, &c->p->android.clock, true);
            android = true;
        } else if (allow_android && kl_str_eq_c(k, "start_time")) {
            r = kl_json_get_u64_lenient(&x, &c->p->android.start_time);
            android = true;
        }
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (android && !sample) {
        d->present = false;
        c->p->android.present = true;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* top-level objects                                                                   */

static int parse_device(struct ctx *c, struct kl_json_val *v)
{
    struct kl_profile *p = c->p;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    bool has_arch = false;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    c->seen_device = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "architecture")) {
            r = req_str(c, &x, &p->device_architecture, "device.architecture");
            has_arch = true;
        } else if (kl_str_eq_c(k, "is_emulator"))
            r = opt_bool(c, &x, &p->device_is_emulator);
        else if (kl_str_eq_c(k, "locale"))
            r = opt_str(c, &x, &p->device_locale, false);
        else if (kl_str_eq_c(k, "manufacturer"))
            r = opt_str(c, &x, &p->device_manufacturer, false);
        else if (kl_str_eq_c(k, "model"))
            r = opt_str(c, &x, &p->device_model, false);
        else if (kl_str_eq_c(k, "classification"))
            r = opt_str(c, &x, &p->device_classification, false);
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (!has_arch)
        return FAIL(c, "invalid json: missing field 'device.architecture'");
    return 0;
}

static int parse_os(struct ctx *c, struct kl_json_val *v)
{
    struct kl_profile *p = c->p;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    c->seen_os = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "name"))
            r = req_str(c, &x, &p->os_name, "os.name");
        else if (kl_str_eq_c(k, "version"))
            r = req_str(c, &x, &p->os_version, "os.version");
        else if (kl_str_eq_c(k, "build_number"))
            r = opt_str(c, &x, &p->os_build_number, false);
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (!p->os_name.ptr || !p->os_version.ptr)
        return FAIL(c, "invalid json: 'os' needs name and version");
    return 0;
}

static int parse_name_version(struct ctx *c, struct kl_json_val *v, struct kl_str *name,
                              struct kl_str *version, bool *has, const char *what)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "name"))
            r = req_str(c, &x, name, what);
        else if (kl_str_eq_c(k, "version"))
            r = req_str(c, &x, version, what);
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (!name->ptr || !version->ptr)
        return FAIL(c, "invalid json: '%s' needs name and version", what);
    *has = true;
    return 0;
}

static int parse_transaction(struct ctx *c, struct kl_json_val *v, struct kl_transaction *t)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    memset(t, 0, sizeof *t);
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    bool has_id = false, has_name = false, has_trace = false;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        bool present = false;
        if (kl_str_eq_c(k, "id")) {
            r = uuid_field(c, &x, &t->id, "transaction.id");
            has_id = true;
        } else if (kl_str_eq_c(k, "name")) {
            r = req_str(c, &x, &t->name, "transaction.name");
            has_name = true;
        } else if (kl_str_eq_c(k, "trace_id")) {
            r = uuid_field(c, &x, &t->trace_id, "transaction.trace_id");
            has_trace = true;
        } else if (kl_str_eq_c(k, "active_thread_id"))
            r = opt_u64_lenient(c, &x, &t->active_thread_id, NULL);
        else if (kl_str_eq_c(k, "relative_start_ns"))
            r = opt_u64_lenient(c, &x, &t->relative_start_ns, NULL);
        else if (kl_str_eq_c(k, "relative_end_ns"))
            r = opt_u64_lenient(c, &x, &t->relative_end_ns, NULL);
        else if (kl_str_eq_c(k, "relative_cpu_start_ms")) {
            r = opt_u64_lenient(c, &x, &t->relative_cpu_start_ms, &present);
            t->has_cpu_times |= present;
        } else if (kl_str_eq_c(k, "relative_cpu_end_ms")) {
            r = opt_u64_lenient(c, &x, &t->relative_cpu_end_ms, &present);
            t->has_cpu_times |= present;
        } else if (kl_str_eq_c(k, "segment_id"))
            r = opt_str(c, &x, &t->segment_id, false);
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (!has_id || !has_name || !has_trace)
        return FAIL(c, "invalid json: transaction needs id, name and trace_id");
    t->present = true;
    return 0;
}

static int parse_measurements(struct ctx *c, struct kl_json_val *v)
{
    struct kl_profile *p = c->p;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    size_t total = 0;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    p->has_measurements = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (p->measurements.len >= KL_MAX_MAP_ENTRIES)
            return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "too many measurements");
        struct kl_measurement m = {k, KL_STR_NULL, NULL, 0};
        KL_VEC(struct kl_mvalue) vals = {0};
        struct kl_json_iter mi;
        struct kl_str mk;
        struct kl_json_val mv;
        int q;
        bool has_values = false;
        if (kl_json_obj_begin(&x, &mi) < 0)
            return -1;
        while ((q = kl_json_obj_next(&mi, &mk, &mv)) > 0) {
            if (kl_str_eq_c(mk, "unit")) {
                if (req_str(c, &mv, &m.unit, "measurement unit") < 0)
                    return -1;
            } else if (kl_str_eq_c(mk, "values")) {
                has_values = true;
                struct kl_json_iter ai;
                struct kl_json_val av;
                int r;
                if (kl_json_arr_begin(&mv, &ai) < 0)
                    return -1;
                while ((r = kl_json_arr_next(&ai, &av)) > 0) {
                    if (++total > KL_MAX_MEASUREMENT_VALUES)
                        return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS,
                                            "too many measurement values");
                    struct kl_mvalue mvv = {0, 0, 0};
                    struct kl_json_iter vi;
                    struct kl_str vk;
                    struct kl_json_val vv;
                    int s;
                    bool has_value = false;
                    if (kl_json_obj_begin(&av, &vi) < 0)
                        return -1;
                    while ((s = kl_json_obj_next(&vi, &vk, &vv)) > 0) {
                        if (kl_str_eq_c(vk, "elapsed_since_start_ns")) {
                            if (kl_json_get_u64_lenient(&vv, &mvv.t_ns) < 0)
                                return -1;
                        } else if (kl_str_eq_c(vk, "timestamp")) {
                            if (kl_json_get_f64(&vv, &mvv.t_s) < 0)
                                return -1;
                        } else if (kl_str_eq_c(vk, "value")) {
                            if (kl_json_get_f64(&vv, &mvv.value) < 0)
                                return -1;
                            has_value = true;
                        }
                    }
                    if (s < 0)
                        return -1;
                    if (!has_value)
                        return FAIL(c, "invalid json: measurement value without 'value'");
                    kl_vec_push(p->arena, &vals, mvv);
                }
                if (r < 0)
                    return -1;
            }
        }
        if (q < 0)
            return -1;
        if (!m.unit.ptr || !has_values)
            return FAIL(c, "invalid json: measurement needs unit and values");
        m.values = vals.items;
        m.n = vals.len;
        kl_vec_push(p->arena, &p->measurements, m);
    }
    return n;
}

static int parse_image(struct ctx *c, struct kl_json_val *v, struct kl_image *im)
{
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    memset(im, 0, sizeof *im);
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        if (kl_str_eq_c(k, "type"))
            r = opt_str(c, &x, &im->type, true);
        else if (kl_str_eq_c(k, "code_file") || kl_str_eq_c(k, "name"))
            r = opt_str(c, &x, &im->code_file, true);
        else if (kl_str_eq_c(k, "debug_id") || kl_str_eq_c(k, "id"))
            r = debug_id_field(c, &x, &im->debug_id);
        else if (kl_str_eq_c(k, "debug_file"))
            r = opt_str(c, &x, &im->debug_file, true);
        else if (kl_str_eq_c(k, "arch"))
            r = opt_str(c, &x, &im->arch, true);
        else if (kl_str_eq_c(k, "debug_status"))
            r = opt_str(c, &x, &im->debug_status, true);
        else if (kl_str_eq_c(k, "uuid") || kl_str_eq_c(k, "build_id"))
            r = dashed_uuid(c, &x, &im->uuid, "image uuid");
        else if (kl_str_eq_c(k, "image_addr"))
            r = addr_field(c, &x, &im->image_addr, &im->has_image_addr);
        else if (kl_str_eq_c(k, "image_vmaddr"))
            r = addr_field(c, &x, &im->image_vmaddr, &im->has_image_vmaddr);
        else if (kl_str_eq_c(k, "image_size"))
            r = opt_u64_lenient(c, &x, &im->image_size, &im->has_image_size);
        else if (kl_str_eq_c(k, "features")) {
            if (kl_json_is_null(&x) > 0)
                continue;
            struct kl_json_iter fi;
            struct kl_str fk;
            struct kl_json_val fv;
            int m;
            if (kl_json_obj_begin(&x, &fi) < 0)
                return -1;
            im->has_features = true;
            while ((m = kl_json_obj_next(&fi, &fk, &fv)) > 0) {
                bool *dst = NULL;
                if (kl_str_eq_c(fk, "has_debug_info"))
                    dst = &im->has_debug_info;
                else if (kl_str_eq_c(fk, "has_sources"))
                    dst = &im->has_sources;
                else if (kl_str_eq_c(fk, "has_symbols"))
                    dst = &im->has_symbols;
                else if (kl_str_eq_c(fk, "has_unwind_info"))
                    dst = &im->has_unwind_info;
                if (dst && kl_json_get_bool(&fv, dst) < 0)
                    return -1;
            }
            r = m;
        }
        if (r < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    if (!im->type.ptr)
        return FAIL(c, "invalid json: debug image without type");
    static const char *known[] = {"macho", "symbolic", "sourcemap", "proguard", "jvm",
                                  "elf",   "pe",       "pe_dotnet", "wasm",     "apple"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (kl_str_eq_c(im->type, known[i]))
            return 0;
    return FAIL(c, "invalid json: unknown debug image type '%.*s'",
                (int)(im->type.len > 32 ? 32 : im->type.len), im->type.ptr);
}

static int parse_debug_meta(struct ctx *c, struct kl_json_val *v)
{
    struct kl_profile *p = c->p;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n = opt_obj_begin(v, &it);
    if (n <= 0)
        return n;
    p->has_debug_meta = true;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (!kl_str_eq_c(k, "images") || kl_json_is_null(&x) > 0)
            continue;
        struct kl_json_iter ai;
        struct kl_json_val av;
        int m;
        if (kl_json_arr_begin(&x, &ai) < 0)
            return -1;
        while ((m = kl_json_arr_next(&ai, &av)) > 0) {
            if (p->images.len >= KL_MAX_IMAGES)
                return kl_json_fail(c->doc, KL_R_PROFILE_TOO_MANY_ITEMS, "too many images");
            struct kl_image im;
            if (parse_image(c, &av, &im) < 0)
                return -1;
            kl_vec_push(p->arena, &p->images, im);
        }
        if (m < 0)
            return -1;
    }
    return n;
}

static int parse_timestamp(struct ctx *c, struct kl_json_val *v)
{
    struct kl_profile *p = c->p;
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_NULL)
        return kl_json_is_null(v) < 0 ? -1 : 0;
    if (t == KL_JSON_NUMBER) {
        if (kl_json_get_f64(v, &p->timestamp_s) < 0)
            return -1;
        if (!isfinite(p->timestamp_s))
            return FAIL(c, "invalid json: bad timestamp");
        p->timestamp_ns = (int64_t)secs_to_ns_u64(p->timestamp_s);
        c->timestamp_is_number = true;
        p->has_timestamp = true;
        return 0;
    }
    struct kl_str s;
    if (req_str(c, v, &s, "timestamp") < 0)
        return -1;
    if (!kl_rfc3339_parse(s, &p->timestamp_ns))
        return FAIL(c, "invalid json: timestamp is not RFC 3339: '%.*s'",
                    (int)(s.len > 40 ? 40 : s.len), s.ptr);
    c->timestamp_is_string = true;
    p->has_timestamp = true;
    return 0;
}

enum top_bit {
    T_VERSION = 1 << 0,
    T_EVENT_ID = 1 << 1,
    T_PLATFORM = 1 << 2,
    T_TIMESTAMP = 1 << 3,
    T_PROFILE = 1 << 4,
    T_CHUNK_ID = 1 << 5,
    T_PROFILER_ID = 1 << 6,
    T_CLIENT_SDK = 1 << 7,
    T_RELEASE = 1 << 8,
};

static int parse_top(struct ctx *c, struct kl_json_val *root, unsigned *seen_out)
{
    struct kl_profile *p = c->p;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int n;
    unsigned seen = 0;
    if (kl_json_type(root) != KL_JSON_OBJECT)
        return kl_err_is_set(c->err) ? -1 : FAIL(c, "invalid json: profile is not an object");
    if (kl_json_obj_begin(root, &it) < 0)
        return -1;
    while ((n = kl_json_obj_next(&it, &k, &x)) > 0) {
        int r = 0;
        unsigned bit = 0;
        bool present = false;
        if (kl_str_eq_c(k, "profile")) {
            bit = T_PROFILE;
            enum kl_json_type t = kl_json_type(&x);
            if (t == KL_JSON_OBJECT)
                r = parse_profile_obj(c, &p->data, &x, true);
            else if (t == KL_JSON_NULL)
                r = kl_json_is_null(&x) < 0 ? -1 : 0;
            else if (t == KL_JSON_STRING)
                r = FAIL(c, "invalid json: 'profile' as a JSON string is the pre-2023 stored "
                            "format, which is not supported");
            else
                r = t == KL_JSON_ERROR ? -1 : FAIL(c, "invalid json: 'profile' is not an object");
            c->seen_profile = true;
        } else if (kl_str_eq_c(k, "version")) {
            bit = T_VERSION;
            r = opt_str(c, &x, &p->version, true);
        } else if (kl_str_eq_c(k, "event_id") || kl_str_eq_c(k, "profile_id")) {
            bit = T_EVENT_ID;
            r = opt_uuid(c, &x, &p->event_id, "event_id");
        } else if (kl_str_eq_c(k, "platform")) {
            bit = T_PLATFORM;
            r = req_str(c, &x, &p->platform, "platform");
            p->platform = kl_intern(&p->strings, p->platform);
        } else if (kl_str_eq_c(k, "timestamp")) {
            bit = T_TIMESTAMP;
            r = parse_timestamp(c, &x);
        } else if (kl_str_eq_c(k, "chunk_id")) {
            bit = T_CHUNK_ID;
            r = opt_uuid(c, &x, &p->chunk_id, "chunk_id");
        } else if (kl_str_eq_c(k, "profiler_id")) {
            bit = T_PROFILER_ID;
            r = opt_uuid(c, &x, &p->profiler_id, "profiler_id");
        } else if (kl_str_eq_c(k, "device")) {
            r = kl_json_is_null(&x) > 0 ? 0 : parse_device(c, &x);
        } else if (kl_str_eq_c(k, "os")) {
            r = kl_json_is_null(&x) > 0 ? 0 : parse_os(c, &x);
        } else if (kl_str_eq_c(k, "runtime")) {
            r = parse_name_version(c, &x, &p->runtime_name, &p->runtime_version, &p->has_runtime,
                                   "runtime");
        } else if (kl_str_eq_c(k, "client_sdk")) {
            bit = T_CLIENT_SDK;
            r = parse_name_version(c, &x, &p->sdk_name, &p->sdk_version, &p->has_client_sdk,
                                   "client_sdk");
        } else if (kl_str_eq_c(k, "release")) {
            bit = T_RELEASE;
            r = opt_str(c, &x, &p->release, false);
        } else if (kl_str_eq_c(k, "dist")) {
            r = opt_str(c, &x, &p->dist, false);
        } else if (kl_str_eq_c(k, "environment")) {
            r = opt_str(c, &x, &p->environment, false);
        } else if (kl_str_eq_c(k, "debug_meta")) {
            r = parse_debug_meta(c, &x);
        } else if (kl_str_eq_c(k, "measurements")) {
            r = parse_measurements(c, &x);
        } else if (kl_str_eq_c(k, "transaction")) {
            if (kl_json_is_null(&x) > 0)
                continue;
            c->seen_transaction = true;
            r = parse_transaction(c, &x, &p->transaction);
        } else if (kl_str_eq_c(k, "transactions")) {
            if (kl_json_is_null(&x) > 0)
                continue;
            struct kl_json_iter ai;
            struct kl_json_val av;
            int m;
            if (kl_json_arr_begin(&x, &ai) < 0)
                return -1;
            while ((m = kl_json_arr_next(&ai, &av)) > 0) {
                /* only the first one is used; the others must still be valid */
                struct kl_transaction t;
                if (parse_transaction(c, &av, &t) < 0)
                    return -1;
                if (!c->seen_transactions && !c->seen_transaction)
                    p->transaction = t;
                c->seen_transactions = true;
            }
            r = m;
        } else if (kl_str_eq_c(k, "transaction_metadata")) {
            r = string_map(c, &x, &p->tx_metadata, &p->has_tx_metadata);
        } else if (kl_str_eq_c(k, "transaction_tags")) {
            r = string_map(c, &x, &p->tx_tags, &p->has_tx_tags);
        } else if (kl_str_eq_c(k, "organization_id")) {
            r = opt_u64_lenient(c, &x, &p->organization_id, NULL);
        } else if (kl_str_eq_c(k, "project_id")) {
            r = opt_u64_lenient(c, &x, &p->project_id, NULL);
        } else if (kl_str_eq_c(k, "received")) {
            double d;
            if (kl_json_type(&x) == KL_JSON_NUMBER) {
                r = kl_json_get_f64(&x, &d);
                p->received = (int64_t)d;
            }
        } else if (kl_str_eq_c(k, "retention_days")) {
            int64_t d;
            if (kl_json_type(&x) == KL_JSON_NUMBER) {
                r = kl_json_get_i64(&x, &d);
                p->retention_days = (int32_t)d;
            }
        } else if (kl_str_eq_c(k, "sampled")) {
            uint8_t b = KL_UNSET;
            r = opt_bool(c, &x, &b);
            if (b != KL_UNSET)
                p->sampled = b == KL_TRUE;
        } else if (kl_str_eq_c(k, "js_profile")) {
            if (kl_json_is_null(&x) > 0)
                continue;
            r = parse_profile_obj(c, &p->js_data, &x, false);
        } else if (kl_str_eq_c(k, "sampled_profile")) {
            c->seen_sampled_profile_key = true;
            r = opt_str(c, &x, &p->sampled_profile, false);
        } else if (kl_str_eq_c(k, "android_api_level")) {
            r = opt_u32(c, &x, &p->android_api_level, &p->has_android_api_level,
                        "android_api_level");
        } else if (kl_str_eq_c(k, "build_id")) {
            r = opt_str(c, &x, &p->build_id, false);
        } else if (kl_str_eq_c(k, "device_cpu_frequencies")) {
            if (kl_json_is_null(&x) > 0)
                continue;
            size_t cnt;
            kl_vec_u32 fr = {0};
            r = kl_json_arr_append_u32(&x, p->arena, &fr, 4096, KL_R_PROFILE_TOO_MANY_ITEMS, &cnt);
            p->device_cpu_frequencies.items = fr.items;
            p->device_cpu_frequencies.len = fr.len;
            p->device_cpu_frequencies.cap = fr.cap;
        } else if (kl_str_eq_c(k, "device_is_emulator")) {
            r = opt_bool(c, &x, &p->device_is_emulator);
        } else if (kl_str_eq_c(k, "device_locale")) {
            r = opt_str(c, &x, &p->device_locale, false);
        } else if (kl_str_eq_c(k, "device_manufacturer")) {
            r = opt_str(c, &x, &p->device_manufacturer, false);
        } else if (kl_str_eq_c(k, "device_model")) {
            r = opt_str(c, &x, &p->device_model, false);
        } else if (kl_str_eq_c(k, "device_os_name")) {
            r = opt_str(c, &x, &p->os_name, false);
        } else if (kl_str_eq_c(k, "device_os_version")) {
            r = opt_str(c, &x, &p->os_version, false);
        } else if (kl_str_eq_c(k, "device_os_build_number")) {
            r = opt_str(c, &x, &p->os_build_number, false);
        } else if (kl_str_eq_c(k, "device_classification")) {
            r = opt_str(c, &x, &p->device_classification, false);
        } else if (kl_str_eq_c(k, "architecture")) {
            r = opt_str(c, &x, &p->device_architecture, false);
        } else if (kl_str_eq_c(k, "device_physical_memory_bytes")) {
            r = opt_u64_lenient(c, &x, &p->device_physical_memory_bytes, NULL);
        } else if (kl_str_eq_c(k, "version_code")) {
            r = opt_str(c, &x, &p->version_code, false);
        } else if (kl_str_eq_c(k, "version_name")) {
            r = opt_str(c, &x, &p->version_name, false);
        } else if (kl_str_eq_c(k, "duration_ns")) {
            r = opt_u64_lenient(c, &x, &p->duration_ns, NULL);
        } else if (kl_str_eq_c(k, "transaction_id")) {
            r = opt_uuid(c, &x, &c->legacy_tx.id, "transaction_id");
            c->has_legacy_tx_fields = true;
        } else if (kl_str_eq_c(k, "trace_id")) {
            r = opt_uuid(c, &x, &c->legacy_tx.trace_id, "trace_id");
            c->has_legacy_tx_fields = true;
        } else if (kl_str_eq_c(k, "transaction_name")) {
            r = opt_str(c, &x, &c->legacy_tx.name, false);
            c->has_legacy_tx_fields = true;
        } else if (kl_str_eq_c(k, "active_thread_id")) {
            r = opt_u64_lenient(c, &x, &c->active_thread_id, &present);
            c->has_active_thread_id = present;
        }
        if (r < 0)
            return -1;
        if (bit) {
            if (seen & bit)
                return FAIL(c, "invalid json: duplicate field '%.*s'", (int)k.len, k.ptr);
            seen |= bit;
        }
    }
    if (n < 0)
        return -1;
    *seen_out = seen;
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* format decision and required fields                                                 */

static int decide_kind(struct ctx *c, enum kl_item_type type, unsigned seen)
{
    struct kl_profile *p = c->p;
    bool has_version = kl_str_is_set(p->version) && p->version.len > 0;
    bool android = kl_str_eq_c(p->platform, "android");
    if (!(seen & T_PLATFORM))
        return FAIL(c, "invalid json: missing field 'platform'");
    bool chunk =
        type == KL_ITEM_PROFILE_CHUNK ||
        (type == KL_ITEM_AUTO && (kl_str_is_set(p->profiler_id) || kl_str_is_set(p->chunk_id)));
    if (chunk) {
        bool is_v2 = kl_str_eq_c(p->version, "2");
        bool is_trace = kl_str_eq_c(p->version, "2.android-trace");
        if (android && (is_v2 || is_trace || !has_version) &&
            (c->seen_sampled_profile_key || c->seen_profile_methods || p->android.present)) {
            p->kind = KL_KIND_ANDROID_CHUNK;
        } else if (is_v2) {
            p->kind = KL_KIND_SAMPLE_V2;
        } else {
            return kl_json_fail(c->doc, KL_R_PROFILING_PLATFORM_NOT_SUPPORTED,
                                "chunk version '%.*s' on platform '%.*s' is not supported",
                                (int)p->version.len, p->version.ptr ? p->version.ptr : "",
                                (int)p->platform.len, p->platform.ptr);
        }
    } else {
        if (kl_str_eq_c(p->version, "1")) {
            p->kind = KL_KIND_SAMPLE_V1;
        } else if (!has_version && android) {
            p->kind = KL_KIND_ANDROID;
        } else if (!has_version) {
            return kl_json_fail(c->doc, KL_R_PROFILING_PLATFORM_NOT_SUPPORTED,
                                "a profile without version must be platform 'android', not "
                                "'%.*s'",
                                (int)p->platform.len, p->platform.ptr);
        } else {
            return kl_json_fail(c->doc, KL_R_PROFILING_PLATFORM_NOT_SUPPORTED,
                                "profile version '%.*s' is not supported", (int)p->version.len,
                                p->version.ptr);
        }
    }
    return 0;
}

static int check_required(struct ctx *c, unsigned seen)
{
    struct kl_profile *p = c->p;
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
        if (!kl_str_is_set(p->event_id))
            return FAIL(c, "invalid json: missing field 'event_id'");
        if (!(seen & T_TIMESTAMP) || !c->timestamp_is_string)
            return FAIL(c, "invalid json: missing or non-RFC 3339 'timestamp'");
        if (!c->seen_device)
            return FAIL(c, "invalid json: missing field 'device'");
        if (!c->seen_os)
            return FAIL(c, "invalid json: missing field 'os'");
        if (!p->data.present)
            return FAIL(c, "invalid json: missing field 'profile'");
        if (c->sample_missing_elapsed || c->sample_missing_stack || c->sample_missing_tid)
            return FAIL(c, "invalid json: a sample lacks stack_id, thread_id or "
                           "elapsed_since_start_ns");
        if (c->thread_id_nonnum_seen)
            return FAIL(c, "invalid json: thread_id must be an integer");
        break;
    case KL_KIND_SAMPLE_V2:
        if (!kl_str_is_set(p->chunk_id) || !kl_str_is_set(p->profiler_id))
            return FAIL(c, "invalid json: a chunk needs chunk_id and profiler_id");
        if (!p->has_client_sdk)
            return FAIL(c, "invalid json: missing field 'client_sdk'");
        if (!p->data.present)
            return FAIL(c, "invalid json: missing field 'profile'");
        if (c->sample_missing_ts || c->sample_missing_stack || c->sample_missing_tid)
            return FAIL(c, "invalid json: a sample lacks stack_id, thread_id or timestamp");
        if (c->thread_id_number_seen)
            return FAIL(c, "invalid json: thread_id must be a string");
        break;
    case KL_KIND_ANDROID:
        if (!kl_str_is_set(p->event_id))
            return FAIL(c, "invalid json: missing field 'profile_id'");
        if (c->has_legacy_tx_fields && !p->transaction.present) {
            /* legacy top-level form: a transaction from the flat fields (spec §3.2) */
            if (kl_str_is_set(c->legacy_tx.name) && c->legacy_tx.name.len > 0) {
                p->transaction = c->legacy_tx;
                p->transaction.present = true;
                p->transaction.active_thread_id = c->active_thread_id;
            }
        }
        break;
    case KL_KIND_ANDROID_CHUNK:
        if (!kl_str_is_set(p->chunk_id) || !kl_str_is_set(p->profiler_id))
            return FAIL(c, "invalid json: a chunk needs chunk_id and profiler_id");
        if (!p->has_client_sdk)
            return FAIL(c, "invalid json: missing field 'client_sdk'");
        if (c->timestamp_is_number)
            p->has_timestamp = true;
        break;
    default:
        break;
    }
    return 0;
}

struct kl_profile *kl_profile_parse(struct kl_arena *a, const char *bytes, size_t len,
                                    enum kl_item_type type, struct kl_err *err)
{
    if (len > KL_MAX_PROFILE_BYTES) {
        kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT, "profile is %zu bytes, over %u", len,
                   KL_MAX_PROFILE_BYTES);
        return NULL;
    }
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.input_len = len;
    c.p = kl_profile_new(a);
    c.doc = kl_json_open(a, bytes, len, KL_R_PROFILING_INVALID_JSON, err);
    if (!c.doc)
        return NULL;
    struct kl_json_val root;
    unsigned seen = 0;
    if (kl_json_root(c.doc, &root) < 0 || parse_top(&c, &root, &seen) < 0 ||
        kl_json_finish(c.doc) < 0)
        return NULL;
    if (decide_kind(&c, type, seen) < 0 || check_required(&c, seen) < 0)
        return NULL;
    return c.p;
}
