/* json_simdjson.cpp - the C API of json.h over simdjson's On-Demand parser
 *
 * The project's only C++ file (see json.h for the design). Every function catches nothing:
 * simdjson is used in its error-code style (no exceptions), and every failure is turned into
 * a kl_err on the doc. Handles are placement-constructed into the opaque bytes of the C
 * structs; the static_asserts keep the sizes honest when simdjson changes.
 */
#include <simdjson.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

extern "C" {
#include "json/json.h"
}

using namespace simdjson;

struct kl_json_doc {
    ondemand::parser *parser; /* from the thread's pool, returned when the doc is freed */
    ondemand::document doc;
    struct kl_err *err;
    enum kl_reason syntax_reason;
    const char *buf;
    size_t len;
};

static_assert(sizeof(ondemand::value) <= sizeof(((kl_json_val *)0)->opaque), "value size");
static_assert(sizeof(ondemand::object_iterator) <= sizeof(((kl_json_iter *)0)->opaque),
              "object iterator size");
static_assert(sizeof(ondemand::array_iterator) <= sizeof(((kl_json_iter *)0)->opaque),
              "array iterator size");

static inline ondemand::value &V(kl_json_val *v)
{
    return *std::launder(reinterpret_cast<ondemand::value *>(static_cast<void *>(v->opaque)));
}
static inline ondemand::object_iterator &OI(kl_json_iter *it)
{
    return *std::launder(
        reinterpret_cast<ondemand::object_iterator *>(static_cast<void *>(it->opaque)));
}
static inline ondemand::array_iterator &AI(kl_json_iter *it)
{
    return *std::launder(
        reinterpret_cast<ondemand::array_iterator *>(static_cast<void *>(it->opaque)));
}

static int fail_code(kl_json_doc *d, error_code e, const char *what)
{
    return kl_err_set(d->err, d->syntax_reason, "invalid json: %s: %s", what, error_message(e));
}

/* Parsers are reused per thread: allocating one sizes its structural index to the input,
 * and first-touching those pages again for every document cost ~15% of a parse. A thread
 * keeps up to two (a profile and its transaction event may be open together), and only
 * parsers sized for documents up to KL_JSON_POOL_MAX_BYTES, so a worker that once saw a
 * huge profile does not hold its memory forever. */
#define KL_JSON_POOL_MAX_BYTES (64u * 1024 * 1024)

struct parser_pool {
    ondemand::parser *free[2] = {nullptr, nullptr};
    ~parser_pool()
    {
        delete free[0];
        delete free[1];
    }
};
static thread_local parser_pool pool;

static ondemand::parser *parser_get(size_t len)
{
    for (auto &slot : pool.free) {
        if (slot && slot->capacity() >= len) {
            ondemand::parser *p = slot;
            slot = nullptr;
            return p;
        }
    }
    ondemand::parser *p = new (std::nothrow) ondemand::parser(0xFFFFFFFFu);
    if (!p)
        kl_assert(!"out of memory");
    return p;
}

static void parser_put(ondemand::parser *p)
{
    if (p->capacity() <= KL_JSON_POOL_MAX_BYTES) {
        for (auto &slot : pool.free) {
            if (!slot) {
                slot = p;
                return;
            }
        }
    }
    delete p;
}

static void doc_free(void *p)
{
    kl_json_doc *d = static_cast<kl_json_doc *>(p);
    if (d->parser)
        parser_put(d->parser);
    delete d;
}

extern "C" struct kl_json_doc *kl_json_open(struct kl_arena *a, const char *buf, size_t len,
                                            enum kl_reason syntax_reason, struct kl_err *err)
{
    if (len >= 0xFFFFFFFFu) {
        kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT, "json document too large");
        return NULL;
    }
    kl_json_doc *d = new (std::nothrow) kl_json_doc();
    if (!d)
        kl_assert(!"out of memory");
    kl_arena_on_release(a, doc_free, d);
    d->err = err;
    d->syntax_reason = syntax_reason;
    d->buf = buf;
    d->len = len;
    d->parser = parser_get(len);
    error_code e = d->parser->capacity() >= len && d->parser->max_depth() == KL_JSON_MAX_DEPTH
                       ? SUCCESS
                       : d->parser->allocate(len < 4096 ? 4096 : len, KL_JSON_MAX_DEPTH);
    if (e) {
        fail_code(d, e, "allocating parser");
        return NULL;
    }
    e = d->parser->iterate(buf, len, len + KL_PADDING).get(d->doc);
    if (e) {
        fail_code(d, e, "document");
        return NULL;
    }
    return d;
}

extern "C" struct kl_err *kl_json_err(struct kl_json_doc *d)
{
    return d->err;
}

extern "C" int kl_json_fail(struct kl_json_doc *d, enum kl_reason r, const char *fmt, ...)
{
    if (kl_err_is_set(d->err))
        return -1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kl_err_set(d->err, r, "%s", msg);
}

extern "C" int kl_json_root(struct kl_json_doc *d, struct kl_json_val *out)
{
    out->doc = d;
    out->consumed = false;
    ondemand::json_type t;
    error_code e = d->doc.type().get(t);
    if (e)
        return fail_code(d, e, "root");
    if (t != ondemand::json_type::object && t != ondemand::json_type::array)
        return kl_err_set(d->err, d->syntax_reason, "invalid json: root is not an object");
    new (out->opaque) ondemand::value();
    e = d->doc.get_value().get(V(out));
    if (e)
        return fail_code(d, e, "root");
    return 0;
}

extern "C" int kl_json_finish(struct kl_json_doc *d)
{
    if (kl_err_is_set(d->err))
        return -1;
    const char *loc = nullptr;
    if (d->doc.current_location().get(loc) == SUCCESS)
        return kl_err_set(d->err, d->syntax_reason,
                          "invalid json: trailing content after the document");
    return 0;
}

extern "C" enum kl_json_type kl_json_type(struct kl_json_val *v)
{
    ondemand::json_type t;
    error_code e = V(v).type().get(t);
    if (e) {
        fail_code(v->doc, e, "value");
        return KL_JSON_ERROR;
    }
    switch (t) {
    case ondemand::json_type::array:
        return KL_JSON_ARRAY;
    case ondemand::json_type::object:
        return KL_JSON_OBJECT;
    case ondemand::json_type::number:
        return KL_JSON_NUMBER;
    case ondemand::json_type::string:
        return KL_JSON_STRING;
    case ondemand::json_type::boolean:
        return KL_JSON_BOOL;
    case ondemand::json_type::null:
        return KL_JSON_NULL;
    }
    fail_code(v->doc, INCORRECT_TYPE, "value");
    return KL_JSON_ERROR;
}

/* serde_json rejects escapes that do not form valid UTF-16 (a lone or reversed surrogate);
 * simdjson 3.0.1 accepts some of them (a high surrogate followed by a non-surrogate \u
 * escape), so strings with "\u" escapes are checked here against their raw text. */
static bool surrogates_ok(const char *p, const char *end)
{
    while (p < end) {
        const char *bs = static_cast<const char *>(memchr(p, '\\', (size_t)(end - p)));
        if (!bs || bs + 1 >= end)
            return true;
        if (bs[1] != 'u') {
            p = bs + 2;
            continue;
        }
        if (end - bs < 6)
            return false;
        unsigned cp = 0;
        for (int i = 2; i < 6; i++) {
            char c = bs[i];
            cp <<= 4;
            if (c >= '0' && c <= '9')
                cp |= (unsigned)(c - '0');
            else if ((c | 32) >= 'a' && (c | 32) <= 'f')
                cp |= (unsigned)((c | 32) - 'a' + 10);
            else
                return false;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            const char *q = bs + 6;
            if (end - q < 6 || q[0] != '\\' || q[1] != 'u')
                return false;
            unsigned lo = 0;
            for (int i = 2; i < 6; i++) {
                char c = q[i];
                lo <<= 4;
                if (c >= '0' && c <= '9')
                    lo |= (unsigned)(c - '0');
                else if ((c | 32) >= 'a' && (c | 32) <= 'f')
                    lo |= (unsigned)((c | 32) - 'a' + 10);
                else
                    return false;
            }
            if (lo < 0xDC00 || lo > 0xDFFF)
                return false;
            p = q + 6;
        } else {
            p = bs + 6;
        }
    }
    return true;
}

static int check_raw_string(kl_json_doc *d, const char *s)
{
    /* s points just after the opening quote, into the input */
    const char *end = d->buf + d->len;
    const char *q = s;
    /* find the closing quote: skip escaped characters */
    while (q < end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q > end)
        q = end;
    if (memchr(s, '\\', (size_t)(q - s)) && !surrogates_ok(s, q))
        return kl_err_set(d->err, d->syntax_reason,
                          "invalid json: lone or mismatched surrogate in \\u escape");
    return 0;
}

/* Walk a value the caller left unread, the way serde_json's IgnoredAny would: every scalar
 * parsed, strings checked, nesting bounded by KL_JSON_MAX_DEPTH (depth counted from the
 * document root, as serde counts it). */
static int walk(kl_json_doc *d, ondemand::value v)
{
    int32_t depth = v.current_depth();
    if (depth > KL_JSON_MAX_DEPTH)
        return kl_err_set(d->err, d->syntax_reason, "invalid json: nesting deeper than %d",
                          KL_JSON_MAX_DEPTH);
    ondemand::json_type t;
    error_code e = v.type().get(t);
    if (e)
        return fail_code(d, e, "value");
    switch (t) {
    case ondemand::json_type::object: {
        ondemand::object obj;
        if ((e = v.get_object().get(obj)))
            return fail_code(d, e, "object");
        for (auto field : obj) {
            ondemand::field f;
            if ((e = std::move(field).get(f)))
                return fail_code(d, e, "object field");
            if (check_raw_string(d, reinterpret_cast<const char *>(f.key().raw())) < 0)
                return -1;
            if (walk(d, f.value()) < 0)
                return -1;
        }
        return 0;
    }
    case ondemand::json_type::array: {
        ondemand::array arr;
        if ((e = v.get_array().get(arr)))
            return fail_code(d, e, "array");
        for (auto elem : arr) {
            ondemand::value x;
            if ((e = std::move(elem).get(x)))
                return fail_code(d, e, "array element");
            if (walk(d, x) < 0)
                return -1;
        }
        return 0;
    }
    case ondemand::json_type::string: {
        std::string_view tok = v.raw_json_token();
        if (memchr(tok.data(), '\\', tok.size()) && check_raw_string(d, tok.data() + 1) < 0)
            return -1;
        std::string_view sv;
        if ((e = v.get_string().get(sv)))
            return fail_code(d, e, "string");
        return 0;
    }
    case ondemand::json_type::number: {
        double x;
        if ((e = v.get_double().get(x)))
            return fail_code(d, e, "number");
        return 0;
    }
    case ondemand::json_type::boolean: {
        bool b;
        if ((e = v.get_bool().get(b)))
            return fail_code(d, e, "boolean");
        return 0;
    }
    case ondemand::json_type::null: {
        bool n;
        if ((e = v.is_null().get(n)) || !n)
            return fail_code(d, e ? e : INCORRECT_TYPE, "null");
        return 0;
    }
    }
    return fail_code(d, INCORRECT_TYPE, "value");
}

static int check_unread(kl_json_iter *it)
{
    kl_json_val *last = it->last;
    it->last = NULL;
    if (!last || last->consumed)
        return 0;
    last->consumed = true;
    return walk(it->doc, V(last));
}

extern "C" int kl_json_get_str(struct kl_json_val *v, struct kl_str *out)
{
    v->consumed = true;
    kl_json_doc *d = v->doc;
    std::string_view tok = V(v).raw_json_token();
    if (tok.size() >= 2 && tok[0] == '"') {
        /* the common case, no escapes: a slice of the input, no copy */
        const char *q = static_cast<const char *>(memchr(tok.data() + 1, '"', tok.size() - 1));
        if (q && !memchr(tok.data() + 1, '\\', (size_t)(q - tok.data() - 1))) {
            ondemand::raw_json_string raw;
            error_code e = V(v).get_raw_json_string().get(raw);
            if (e)
                return fail_code(d, e, "expected a string");
            out->ptr = tok.data() + 1;
            out->len = (size_t)(q - tok.data() - 1);
            return 0;
        }
        if (check_raw_string(d, tok.data() + 1) < 0)
            return -1;
    }
    std::string_view sv;
    error_code e = V(v).get_string().get(sv);
    if (e)
        return fail_code(d, e, "expected a string");
    out->ptr = sv.data();
    out->len = sv.size();
    return 0;
}

extern "C" int kl_json_get_u64(struct kl_json_val *v, uint64_t *out)
{
    v->consumed = true;
    error_code e = V(v).get_uint64().get(*out);
    if (e)
        return fail_code(v->doc, e, "expected a non-negative integer");
    return 0;
}

extern "C" int kl_json_get_i64(struct kl_json_val *v, int64_t *out)
{
    v->consumed = true;
    error_code e = V(v).get_int64().get(*out);
    if (e)
        return fail_code(v->doc, e, "expected an integer");
    return 0;
}

extern "C" int kl_json_get_f64(struct kl_json_val *v, double *out)
{
    v->consumed = true;
    error_code e = V(v).get_double().get(*out);
    if (e)
        return fail_code(v->doc, e, "expected a number");
    return 0;
}

extern "C" int kl_json_get_bool(struct kl_json_val *v, bool *out)
{
    v->consumed = true;
    error_code e = V(v).get_bool().get(*out);
    if (e)
        return fail_code(v->doc, e, "expected a boolean");
    return 0;
}

extern "C" int kl_json_is_null(struct kl_json_val *v)
{
    bool n;
    error_code e = V(v).is_null().get(n);
    if (e)
        return fail_code(v->doc, e, "value");
    if (n)
        v->consumed = true;
    return n ? 1 : 0;
}

extern "C" int kl_json_get_u64_lenient(struct kl_json_val *v, uint64_t *out)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_STRING) {
        struct kl_str s;
        if (kl_json_get_str(v, &s) < 0)
            return -1;
        if (s.len && s.ptr[0] == '+')
            s = kl_str_make(s.ptr + 1, s.len - 1);
        if (!kl_parse_u64(s, out))
            return kl_err_set(v->doc->err, v->doc->syntax_reason,
                              "invalid json: expected a non-negative integer in a string");
        return 0;
    }
    if (t == KL_JSON_ERROR)
        return -1;
    return kl_json_get_u64(v, out);
}

extern "C" int kl_json_get_number_text(struct kl_json_val *v, struct kl_str *out)
{
    v->consumed = true;
    std::string_view sv = V(v).raw_json_token();
    size_t n = sv.size();
    while (n && (sv[n - 1] == ' ' || sv[n - 1] == '\n' || sv[n - 1] == '\r' || sv[n - 1] == '\t'))
        n--;
    out->ptr = sv.data();
    out->len = n;
    return 0;
}

extern "C" int kl_json_skip(struct kl_json_val *v)
{
    /* On-Demand skips unread values when the parent iterator advances; taking the type
     * here makes a value that is not even a token start fail now rather than later. */
    (void)v;
    return 0;
}

extern "C" int kl_json_obj_begin(struct kl_json_val *v, struct kl_json_iter *it)
{
    v->consumed = true;
    kl_json_doc *d = v->doc;
    it->doc = d;
    it->state = 0;
    it->last = NULL;
    ondemand::object obj;
    error_code e = V(v).get_object().get(obj);
    if (e)
        return fail_code(d, e, "expected an object");
    new (it->opaque) ondemand::object_iterator();
    e = obj.begin().get(OI(it));
    if (e)
        return fail_code(d, e, "object");
    return 0;
}

extern "C" int kl_json_obj_next(struct kl_json_iter *it, struct kl_str *key,
                                struct kl_json_val *val)
{
    kl_json_doc *d = it->doc;
    if (it->state == 2)
        return 0;
    ondemand::object_iterator &oi = OI(it);
    if (check_unread(it) < 0)
        return -1;
    if (it->state == 1)
        ++oi;
    it->state = 1;
    if (!(oi != oi)) {
        it->state = 2;
        return kl_err_is_set(d->err) ? -1 : 0;
    }
    ondemand::field f;
    error_code e = (*oi).get(f);
    if (e)
        return fail_code(d, e, "object field");
    const char *raw = reinterpret_cast<const char *>(f.key().raw());
    /* Keys are short: a byte loop beats two memchr calls. simdjson's stage 1 validated the
     * string, so a closing quote exists before the end of the input. */
    const char *q = raw;
    while (*q != '"' && *q != '\\')
        q++;
    if (*q == '"') {
        key->ptr = raw; /* no escapes: a slice of the input */
        key->len = (size_t)(q - raw);
    } else {
        if (check_raw_string(d, raw) < 0)
            return -1;
        std::string_view sv;
        e = f.unescaped_key().get(sv);
        if (e)
            return fail_code(d, e, "object key");
        key->ptr = sv.data();
        key->len = sv.size();
    }
    val->doc = d;
    val->consumed = false;
    new (val->opaque) ondemand::value(f.value());
    it->last = val;
    return 1;
}

extern "C" int kl_json_arr_begin(struct kl_json_val *v, struct kl_json_iter *it)
{
    v->consumed = true;
    kl_json_doc *d = v->doc;
    it->doc = d;
    it->state = 0;
    it->last = NULL;
    ondemand::array arr;
    error_code e = V(v).get_array().get(arr);
    if (e)
        return fail_code(d, e, "expected an array");
    new (it->opaque) ondemand::array_iterator();
    e = arr.begin().get(AI(it));
    if (e)
        return fail_code(d, e, "array");
    return 0;
}

extern "C" int kl_json_arr_next(struct kl_json_iter *it, struct kl_json_val *val)
{
    kl_json_doc *d = it->doc;
    if (it->state == 2)
        return 0;
    ondemand::array_iterator &ai = AI(it);
    if (check_unread(it) < 0)
        return -1;
    if (it->state == 1)
        ++ai;
    it->state = 1;
    if (!(ai != ai)) {
        it->state = 2;
        return kl_err_is_set(d->err) ? -1 : 0;
    }
    val->doc = d;
    val->consumed = false;
    new (val->opaque) ondemand::value();
    error_code e = (*ai).get(V(val));
    if (e)
        return fail_code(d, e, "array element");
    it->last = val;
    return 1;
}

static thread_local bool fast_paths = true;

extern "C" void kl_json_set_fast_paths(bool on)
{
    fast_paths = on;
}

extern "C" bool kl_json_fast_paths(void)
{
    return fast_paths;
}

extern "C" const char *kl_json_raw(struct kl_json_val *v, const char **end)
{
    kl_json_doc *d = v->doc;
    *end = d->buf + d->len;
    return V(v).raw_json_token().data();
}

extern "C" void kl_json_scanned(struct kl_json_val *v)
{
    v->consumed = true;
}

/* The fast path of kl_json_arr_append_u32: "[1,2,3]" read from the text (see "Raw
 * scanning" in json.h). 1 when the whole array was read and appended, 0 when declined with
 * out as it was (the general path then reads it and reports any error). */
static int scan_u32_array(kl_json_val *v, struct kl_arena *a, kl_vec_u32 *out, size_t max_total,
                          size_t *count)
{
    const char *end;
    const char *p = kl_json_raw(v, &end);
    if (p >= end || *p != '[')
        return 0;
    p = kl_json_scan_ws(p + 1, end);
    size_t len0 = out->len;
    if (p < end && *p == ']') {
        *count = 0;
        return 1;
    }
    for (;;) {
        uint64_t x;
        if (!kl_json_scan_u64(&p, end, &x) || out->len >= max_total)
            break;
        if (out->len == out->cap)
            kl__vec_grow(a, (void **)&out->items, &out->cap, sizeof(uint32_t), out->len + 1);
        out->items[out->len++] = x > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)x;
        /* kl_json_scan_u64 stopped on a byte inside the input */
        if (*p == ',') {
            p++;
            if (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p = kl_json_scan_ws(p, end);
            continue;
        }
        p = kl_json_scan_ws(p, end);
        if (p < end && *p == ']') {
            *count = out->len - len0;
            return 1;
        }
        if (p >= end || *p != ',')
            break;
        p = kl_json_scan_ws(p + 1, end);
    }
    out->len = len0;
    return 0;
}

extern "C" int kl_json_arr_append_u32(struct kl_json_val *v, struct kl_arena *a, kl_vec_u32 *out,
                                      size_t max_total, enum kl_reason limit_reason, size_t *count)
{
    v->consumed = true;
    kl_json_doc *d = v->doc;
    if (fast_paths && scan_u32_array(v, a, out, max_total, count))
        return 0;
    ondemand::array arr;
    error_code e = V(v).get_array().get(arr);
    if (e)
        return fail_code(d, e, "expected an array");
    size_t n = 0;
    for (auto elem : arr) {
        uint64_t x;
        e = elem.get_uint64().get(x);
        if (e)
            return fail_code(d, e, "expected a non-negative integer");
        if (out->len >= max_total)
            return kl_err_set(d->err, limit_reason, "array over its limit of %zu elements",
                              max_total);
        if (out->len == out->cap)
            kl__vec_grow(a, (void **)&out->items, &out->cap, sizeof(uint32_t), out->len + 1);
        out->items[out->len++] = x > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)x;
        n++;
    }
    *count = n;
    return 0;
}

/* Full validation with simdjson's DOM parser (every value checked, nothing kept): the
 * ceiling the benchmarks compare kiln's whole pipeline against, and a strict check for
 * callers that must reject malformed JSON even in values they skip. */
extern "C" int kl_json_validate(const char *buf, size_t len, enum kl_reason syntax_reason,
                                struct kl_err *err)
{
    static thread_local dom::parser parser(0xFFFFFFFFu);
    if (parser.capacity() < len) {
        error_code e = parser.allocate(len, KL_JSON_MAX_DEPTH);
        if (e)
            return kl_err_set(err, syntax_reason, "invalid json: %s", error_message(e));
    }
    dom::element root;
    error_code e = parser.parse(reinterpret_cast<const uint8_t *>(buf), len, false).get(root);
    if (e)
        return kl_err_set(err, syntax_reason, "invalid json: %s", error_message(e));
    return 0;
}
