/* span.c - span items (v1 and v2) and the transaction as linked spans (see span.h) */
#include "ingest/span.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "json/json.h"

static const enum kl_reason skip_reasons[KL_SPAN_SKIP__COUNT] = {
    KL_R_SPAN_NOT_OBJECT,    KL_R_SPAN_MISSING_ID,       KL_R_SPAN_BAD_ID,
    KL_R_SPAN_BAD_TIMESTAMP, KL_R_SPAN_END_BEFORE_START,
};

const char *kl_span_skip_reason(enum kl_span_skip k)
{
    return k < KL_SPAN_SKIP__COUNT ? kl_reason_str(skip_reasons[k]) : "";
}

void kl_span_set_init(struct kl_span_set *s, struct kl_arena *a)
{
    memset(s, 0, sizeof *s);
    s->a = a;
}

bool kl_span_is_hex(struct kl_str s, size_t n)
{
    if (!s.ptr || s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* ---- reading values without ever failing the document on a type mismatch ---- */

/* A field as read: absent, present with a usable value, or present but unusable. */
enum state { ABSENT = 0, OK, BAD };

struct field {
    enum state st;
    struct kl_str s;
};

/* String, or null (absent); anything else is BAD and skipped. -1 on a JSON error. */
static int read_str(struct kl_json_val *v, struct field *f)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_ERROR)
        return -1;
    if (t == KL_JSON_STRING) {
        if (kl_json_get_str(v, &f->s) < 0)
            return -1;
        f->st = OK;
        return 0;
    }
    f->st = t == KL_JSON_NULL ? ABSENT : BAD;
    return kl_json_skip(v);
}

/* A thread id: a string, or an integer kept as its decimal text (SDKs send both). */
static int read_thread_id(struct kl_json_val *v, struct field *f)
{
    enum kl_json_type t = kl_json_type(v);
    if (t != KL_JSON_NUMBER)
        return read_str(v, f);
    struct kl_str n;
    if (kl_json_get_number_text(v, &n) < 0)
        return -1;
    f->st = BAD;
    if (n.len == 0)
        return 0;
    for (size_t i = 0; i < n.len; i++)
        if (n.ptr[i] < '0' || n.ptr[i] > '9')
            return 0;
    f->st = OK;
    f->s = n;
    return 0;
}

/* The latest start or end accepted, in unix seconds: the year 2255, so that ns still fit in
 * an int64 (its limit is 9.22e9 s). */
#define MAX_UNIX_S 9000000000LL

/* Plain decimal seconds ("1700000001.25") to ns exactly, as a double would not (its 53 bits
 * hold ~256 ns steps at today's epoch); false for other forms (exponents, signs, too large),
 * which go through strtod. Fraction digits past the ninth are dropped (truncated). */
static bool decimal_ns(struct kl_str n, int64_t *ns)
{
    size_t i = 0;
    int64_t sec = 0, frac = 0;
    for (; i < n.len && n.ptr[i] >= '0' && n.ptr[i] <= '9'; i++) {
        if (i >= 10)
            return false;
        sec = sec * 10 + (n.ptr[i] - '0');
    }
    if (i == 0 || sec >= MAX_UNIX_S)
        return false;
    if (i < n.len) {
        if (n.ptr[i] != '.' || i + 1 == n.len)
            return false;
        int digits = 0;
        for (i++; i < n.len; i++) {
            if (n.ptr[i] < '0' || n.ptr[i] > '9')
                return false;
            if (digits < 9) {
                frac = frac * 10 + (n.ptr[i] - '0');
                digits++;
            }
        }
        for (; digits < 9; digits++)
            frac *= 10;
    }
    *ns = sec * 1000000000LL + frac;
    return true;
}

struct when {
    enum state st;
    int64_t ns;
};

/* Unix seconds (float) or RFC 3339. The number is converted from its text so that a value
 * the reader cannot hold as a double (1e400) is a bad timestamp, not a bad document. */
static int read_time(struct kl_json_val *v, struct when *w)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_ERROR)
        return -1;
    w->st = BAD;
    if (t == KL_JSON_NUMBER) {
        struct kl_str n;
        if (kl_json_get_number_text(v, &n) < 0)
            return -1;
        if (decimal_ns(n, &w->ns)) {
            w->st = OK;
            return 0;
        }
        char buf[64];
        if (n.len == 0 || n.len >= sizeof buf)
            return 0;
        memcpy(buf, n.ptr, n.len);
        buf[n.len] = '\0';
        char *end;
        double d = strtod(buf, &end);
        if (*end == '\0' && isfinite(d) && d >= 0 && d < (double)MAX_UNIX_S) {
            w->ns = (int64_t)llround(d * 1e9);
            w->st = OK;
        }
        return 0;
    }
    if (t == KL_JSON_STRING) {
        struct kl_str s;
        if (kl_json_get_str(v, &s) < 0)
            return -1;
        if (kl_rfc3339_parse(s, &w->ns) && w->ns >= 0 && w->ns / 1000000000LL < MAX_UNIX_S)
            w->st = OK;
        return 0;
    }
    if (t == KL_JSON_NULL)
        w->st = ABSENT;
    return kl_json_skip(v);
}

static int read_bool(struct kl_json_val *v, bool *out)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_ERROR)
        return -1;
    if (t == KL_JSON_BOOL)
        return kl_json_get_bool(v, out);
    return kl_json_skip(v);
}

/* ---- one span's fields, then the checks ---- */

struct raw {
    struct field trace_id, span_id, parent_span_id, segment_id, profiler_id;
    struct field name, op, description, segment_name, thread_id, thread_name;
    struct field environment, release;
    struct when start, end;
    bool is_segment;
};

/* Attribute and data keys shared by both shapes (v2 attributes, v1 data). */
static struct field *attr_slot(struct raw *r, struct kl_str k, bool *thread)
{
    *thread = false;
    if (kl_str_eq_c(k, "sentry.profiler_id"))
        return &r->profiler_id;
    if (kl_str_eq_c(k, "thread.id")) {
        *thread = true;
        return &r->thread_id;
    }
    if (kl_str_eq_c(k, "thread.name"))
        return &r->thread_name;
    if (kl_str_eq_c(k, "sentry.segment.id"))
        return &r->segment_id;
    if (kl_str_eq_c(k, "sentry.segment.name"))
        return &r->segment_name;
    if (kl_str_eq_c(k, "sentry.environment") || kl_str_eq_c(k, "environment"))
        return &r->environment;
    if (kl_str_eq_c(k, "sentry.release") || kl_str_eq_c(k, "release"))
        return &r->release;
    return NULL;
}

/* v2 attributes: {"key": {"type": "...", "value": ...}}; v1 data: {"key": value}. */
static int read_attrs(struct kl_json_val *v, struct raw *r, bool typed)
{
    if (kl_json_type(v) != KL_JSON_OBJECT)
        return kl_json_type(v) == KL_JSON_ERROR ? -1 : kl_json_skip(v);
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int rc;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((rc = kl_json_obj_next(&it, &k, &x)) > 0) {
        bool thread;
        struct field *f = attr_slot(r, k, &thread);
        if (!f)
            continue; /* left unread: skipped (and checked) by the iterator */
        if (!typed) {
            if ((thread ? read_thread_id(&x, f) : read_str(&x, f)) < 0)
                return -1;
            continue;
        }
        if (kl_json_type(&x) != KL_JSON_OBJECT) {
            if (kl_json_skip(&x) < 0)
                return -1;
            continue;
        }
        struct kl_json_iter ai;
        struct kl_str ak;
        struct kl_json_val av;
        int q;
        if (kl_json_obj_begin(&x, &ai) < 0)
            return -1;
        while ((q = kl_json_obj_next(&ai, &ak, &av)) > 0)
            if (kl_str_eq_c(ak, "value") &&
                (thread ? read_thread_id(&av, f) : read_str(&av, f)) < 0)
                return -1;
        if (q < 0)
            return -1;
    }
    return rc;
}

/* One key of a span object (either shape). Returns -1 on a JSON error. */
static int span_key(struct kl_json_val *x, struct kl_str k, struct raw *r, bool v2)
{
    if (kl_str_eq_c(k, "trace_id"))
        return read_str(x, &r->trace_id);
    if (kl_str_eq_c(k, "span_id"))
        return read_str(x, &r->span_id);
    if (kl_str_eq_c(k, "parent_span_id"))
        return read_str(x, &r->parent_span_id);
    if (kl_str_eq_c(k, "is_segment"))
        return read_bool(x, &r->is_segment);
    if (kl_str_eq_c(k, "start_timestamp"))
        return read_time(x, &r->start);
    if (kl_str_eq_c(k, v2 ? "end_timestamp" : "timestamp"))
        return read_time(x, &r->end);
    if (v2) {
        if (kl_str_eq_c(k, "name"))
            return read_str(x, &r->name);
        if (kl_str_eq_c(k, "attributes"))
            return read_attrs(x, r, true);
        return kl_json_skip(x);
    }
    if (kl_str_eq_c(k, "segment_id"))
        return read_str(x, &r->segment_id);
    if (kl_str_eq_c(k, "description"))
        return read_str(x, &r->description);
    if (kl_str_eq_c(k, "op"))
        return read_str(x, &r->op);
    if (kl_str_eq_c(k, "data"))
        return read_attrs(x, r, false);
    return kl_json_skip(x);
}

static struct kl_str lower_copy(struct kl_arena *a, struct kl_str s)
{
    char *p = kl_arena_alloc(a, s.len + 1);
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        p[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    p[s.len] = '\0';
    return kl_str_make(p, s.len);
}

/* 32 hex or a dashed uuid, as 32 lowercase hex. */
static bool uuid_hex(struct kl_arena *a, struct kl_str s, struct kl_str *out)
{
    struct kl_uuid u;
    if (!kl_uuid_parse(s, &u))
        return false;
    char *p = kl_arena_alloc(a, 33);
    kl_uuid_hex(&u, p);
    *out = kl_str_make(p, 32);
    return true;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static struct kl_str cut(struct kl_str s, size_t max)
{
    if (!s.ptr || s.len <= max)
        return s;
    size_t n = max;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80)
        n--;
    return kl_str_make(s.ptr, n);
}

static struct kl_str opt_str(const struct field *f, size_t max)
{
    return f->st == OK ? cut(f->s, max) : KL_STR_NULL;
}

/* An optional id: absent (null, "" or missing) is fine, present must be n hex digits. */
static bool opt_id(struct kl_arena *a, const struct field *f, size_t n, struct kl_str *out)
{
    *out = KL_STR_NULL;
    if (f->st == ABSENT || (f->st == OK && f->s.len == 0))
        return true;
    if (f->st == BAD)
        return false;
    if (n == 32)
        return uuid_hex(a, f->s, out);
    if (!kl_span_is_hex(f->s, n))
        return false;
    *out = lower_copy(a, f->s);
    return true;
}

/* Check r and fill sp; returns -1 (and the skip reason in *why) when the span is invalid. */
static int finish(struct kl_arena *a, const struct raw *r, bool v2, struct kl_span *sp,
                  enum kl_span_skip *why)
{
    memset(sp, 0, sizeof *sp);
    if (r->trace_id.st == ABSENT || r->span_id.st == ABSENT) {
        *why = KL_SPAN_SKIP_MISSING_ID;
        return -1;
    }
    if (r->trace_id.st != OK || !uuid_hex(a, r->trace_id.s, &sp->trace_id) || r->span_id.st != OK ||
        !kl_span_is_hex(r->span_id.s, 16) ||
        !opt_id(a, &r->parent_span_id, 16, &sp->parent_span_id) ||
        !opt_id(a, &r->segment_id, 16, &sp->segment_id) ||
        !opt_id(a, &r->profiler_id, 32, &sp->profiler_id)) {
        *why = KL_SPAN_SKIP_BAD_ID;
        return -1;
    }
    sp->span_id = lower_copy(a, r->span_id.s);
    /* the transaction's times come from tx_event.h, which bounds them less tightly */
    if (r->start.st != OK || r->end.st != OK || r->start.ns < 0 || r->end.ns < 0 ||
        r->start.ns >= MAX_UNIX_S * 1000000000LL || r->end.ns >= MAX_UNIX_S * 1000000000LL) {
        *why = KL_SPAN_SKIP_BAD_TIMESTAMP;
        return -1;
    }
    if (r->end.ns < r->start.ns) {
        *why = KL_SPAN_SKIP_END_BEFORE_START;
        return -1;
    }
    sp->start_ns = r->start.ns;
    sp->end_ns = r->end.ns;
    sp->is_segment =
        r->is_segment || (sp->segment_id.ptr && kl_str_eq(sp->segment_id, sp->span_id));
    if (sp->is_segment)
        sp->segment_id = sp->span_id;
    if (v2)
        sp->name = opt_str(&r->name, KL_SPAN_MAX_STR);
    else
        sp->name = r->description.st == OK ? opt_str(&r->description, KL_SPAN_MAX_STR)
                                           : opt_str(&r->op, KL_SPAN_MAX_STR);
    sp->segment_name = opt_str(&r->segment_name, KL_SPAN_MAX_STR);
    if (!sp->segment_name.ptr && sp->is_segment)
        sp->segment_name = sp->name;
    if (r->thread_id.st == OK && r->thread_id.s.len > 0 &&
        r->thread_id.s.len <= KL_SPAN_MAX_THREAD_ID) {
        sp->thread_id = r->thread_id.s;
        sp->thread_name = opt_str(&r->thread_name, KL_SPAN_MAX_STR);
    }
    sp->environment = opt_str(&r->environment, KL_SPAN_MAX_STR);
    sp->release = opt_str(&r->release, KL_SPAN_MAX_STR);
    sp->own_profiler = sp->profiler_id.ptr != NULL;
    return 0;
}

/* Everything parse_item appends goes through here: the limits are checked before the array
 * grows. */
static int add(struct kl_span_set *s, struct kl_json_doc *doc, const struct raw *r, bool v2,
               uint32_t item)
{
    struct kl_span sp;
    enum kl_span_skip why;
    if (finish(s->a, r, v2, &sp, &why) < 0) {
        s->skipped[why]++;
        return 0;
    }
    if (s->spans.len >= KL_SPAN_MAX_SPANS)
        return kl_json_fail(doc, KL_R_SPAN_TOO_MANY, "more than %d spans in one envelope",
                            KL_SPAN_MAX_SPANS);
    sp.item = item;
    kl_vec_push(s->a, &s->spans, sp);
    return 0;
}

static int parse_container(struct kl_span_set *s, struct kl_json_doc *doc, struct kl_json_val *v,
                           uint32_t item)
{
    struct kl_json_iter it;
    struct kl_json_val x;
    int rc;
    size_t n = 0;
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    while ((rc = kl_json_arr_next(&it, &x)) > 0) {
        if (++n > KL_SPAN_MAX_ITEMS)
            return kl_json_fail(doc, KL_R_SPAN_TOO_MANY, "more than %d spans in one item",
                                KL_SPAN_MAX_ITEMS);
        enum kl_json_type t = kl_json_type(&x);
        if (t == KL_JSON_ERROR)
            return -1;
        if (t != KL_JSON_OBJECT) {
            s->skipped[KL_SPAN_SKIP_NOT_OBJECT]++;
            if (kl_json_skip(&x) < 0)
                return -1;
            continue;
        }
        struct raw r;
        memset(&r, 0, sizeof r);
        struct kl_json_iter si;
        struct kl_str k;
        struct kl_json_val f;
        int q;
        if (kl_json_obj_begin(&x, &si) < 0)
            return -1;
        while ((q = kl_json_obj_next(&si, &k, &f)) > 0)
            if (span_key(&f, k, &r, true) < 0)
                return -1;
        if (q < 0 || add(s, doc, &r, true, item) < 0)
            return -1;
    }
    return rc;
}

int kl_span_set_parse_item(struct kl_span_set *s, const char *bytes, size_t len, uint32_t item,
                           struct kl_err *err)
{
    size_t keep = s->spans.len;
    uint32_t skipped[KL_SPAN_SKIP__COUNT];
    memcpy(skipped, s->skipped, sizeof skipped);
    struct kl_json_doc *doc = kl_json_open(s->a, bytes, len, KL_R_SPAN_INVALID_JSON, err);
    if (!doc)
        return -1;
    struct kl_json_val root, x;
    struct kl_json_iter it;
    struct kl_str k;
    int rc = -1;
    if (kl_json_root(doc, &root) < 0)
        goto out_undo;
    if (kl_json_type(&root) != KL_JSON_OBJECT) {
        kl_json_fail(doc, KL_R_SPAN_INVALID_JSON, "a span item is a JSON object");
        goto out_undo;
    }
    /* One pass: the keys of a v1 span, unless an "items" array makes it a v2 container
     * (a v1 span has no "items"); the container's spans are added as they are read. */
    struct raw r;
    memset(&r, 0, sizeof r);
    bool container = false;
    if (kl_json_obj_begin(&root, &it) < 0)
        goto out_undo;
    while ((rc = kl_json_obj_next(&it, &k, &x)) > 0) {
        int e;
        if (kl_str_eq_c(k, "items") && kl_json_type(&x) == KL_JSON_ARRAY) {
            container = true;
            e = parse_container(s, doc, &x, item);
        } else {
            e = span_key(&x, k, &r, false);
        }
        if (e < 0) {
            rc = -1;
            break;
        }
    }
    if (rc < 0 || kl_json_finish(doc) < 0)
        goto out_undo;
    if (!container && add(s, doc, &r, false, item) < 0)
        goto out_undo;
    return 0;
out_undo:
    s->spans.len = keep;
    memcpy(s->skipped, skipped, sizeof skipped);
    if (!kl_err_is_set(err))
        kl_err_set(err, KL_R_SPAN_INVALID_JSON, "span item unreadable");
    return -1;
}

bool kl_span_set_add_transaction(struct kl_span_set *s, const struct kl_tx_event *ev, uint32_t item)
{
    if (!ev || s->spans.len >= KL_SPAN_MAX_SPANS)
        return false;
    struct raw r;
    memset(&r, 0, sizeof r);
    struct field *fs[] = {&r.trace_id,  &r.span_id,     &r.profiler_id, &r.name,
                          &r.thread_id, &r.thread_name, &r.environment, &r.release};
    const struct kl_str vs[] = {ev->trace_id,  ev->span_id,     ev->profiler_id, ev->transaction,
                                ev->thread_id, ev->thread_name, ev->environment, ev->release};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        fs[i]->st = vs[i].ptr ? OK : ABSENT;
        fs[i]->s = vs[i];
    }
    r.start.st = ev->has_start ? OK : ABSENT;
    r.start.ns = ev->start_ns;
    r.end.st = ev->has_end ? OK : ABSENT;
    r.end.ns = ev->end_ns;
    r.is_segment = true;
    struct kl_span sp;
    enum kl_span_skip why;
    if (finish(s->a, &r, true, &sp, &why) < 0)
        return false;
    sp.item = item;
    kl_vec_push(s->a, &s->spans, sp);
    return true;
}

/* ---- linking ---- */

static int cmp_seg(const void *x, const void *y)
{
    const struct kl_span *a = *(const struct kl_span *const *)x,
                         *b = *(const struct kl_span *const *)y;
    int c = kl_str_cmp(a->span_id, b->span_id);
    return c ? c : kl_str_cmp(a->trace_id, b->trace_id);
}

static const struct kl_span *find_segment(const struct kl_span **segs, size_t n,
                                          const struct kl_span *sp)
{
    struct kl_span key;
    memset(&key, 0, sizeof key);
    key.span_id = sp->segment_id;
    key.trace_id = sp->trace_id;
    const struct kl_span *kp = &key;
    const struct kl_span **hit = bsearch(&kp, segs, n, sizeof *segs, cmp_seg);
    return hit ? *hit : NULL;
}

size_t kl_span_set_link(struct kl_span_set *s)
{
    size_t n_seg = 0, linked = 0;
    for (size_t i = 0; i < s->spans.len; i++)
        n_seg += s->spans.items[i].is_segment;
    const struct kl_span **segs = n_seg ? kl_arena_alloc(s->a, n_seg * sizeof *segs) : NULL;
    n_seg = 0;
    for (size_t i = 0; i < s->spans.len; i++)
        if (s->spans.items[i].is_segment)
            segs[n_seg++] = &s->spans.items[i];
    if (n_seg > 1)
        qsort(segs, n_seg, sizeof *segs, cmp_seg);
    for (size_t i = 0; i < s->spans.len; i++) {
        struct kl_span *sp = &s->spans.items[i];
        const struct kl_span *seg =
            !sp->is_segment && sp->segment_id.ptr && n_seg ? find_segment(segs, n_seg, sp) : NULL;
        if (seg) {
            if (!sp->profiler_id.ptr)
                sp->profiler_id = seg->profiler_id;
            if (!sp->thread_id.ptr) {
                sp->thread_id = seg->thread_id;
                sp->thread_name = seg->thread_name;
            } else if (!sp->thread_name.ptr && seg->thread_id.ptr &&
                       kl_str_eq(sp->thread_id, seg->thread_id)) {
                sp->thread_name = seg->thread_name;
            }
            if (!sp->segment_name.ptr)
                sp->segment_name = seg->segment_name.ptr ? seg->segment_name : seg->name;
            if (!sp->environment.ptr)
                sp->environment = seg->environment;
            if (!sp->release.ptr)
                sp->release = seg->release;
        }
        linked += sp->profiler_id.ptr != NULL;
    }
    return linked;
}
