/* test_speedscope.c - speedscope output: hand-built profiles, written, read back, checked
 *
 * Each test builds a small profile by hand (no JSON parser involved), writes it with
 * kl_speedscope_write, reads the output back into a small tree with the json.h reader and
 * compares it with values worked out by hand in the comments. Every output also goes
 * through check_loadable, which applies the rules speedscope's importer enforces
 * (samples/weights lengths, frame indexes in range, evented O/C nesting, time order).
 */
#include <stdarg.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "json/json.h"
#include "output/speedscope.h"
#include "profile/profile.h"

#include "kl_test.h"

/* ---------------------------------------------------------------------------------- */
/* A tiny JSON tree built from the streaming reader                                    */

struct jnode {
    enum kl_json_type type;
    struct kl_str s; /* string value, or number text */
    bool b;
    size_t n;
    struct kl_str *keys; /* objects */
    struct jnode *kids;
};

typedef KL_VEC(struct jnode) vec_jnode;
typedef KL_VEC(struct kl_str) vec_str;

static int build(struct kl_arena *a, struct kl_json_val *v, struct jnode *out)
{
    memset(out, 0, sizeof *out);
    out->type = kl_json_type(v);
    switch (out->type) {
    case KL_JSON_NULL:
        return kl_json_is_null(v) == 1 ? 0 : -1;
    case KL_JSON_BOOL:
        return kl_json_get_bool(v, &out->b);
    case KL_JSON_NUMBER:
        return kl_json_get_number_text(v, &out->s);
    case KL_JSON_STRING:
        return kl_json_get_str(v, &out->s);
    case KL_JSON_ARRAY:
    case KL_JSON_OBJECT: {
        struct kl_json_iter it;
        vec_jnode kids = {0};
        vec_str keys = {0};
        bool obj = out->type == KL_JSON_OBJECT;
        if ((obj ? kl_json_obj_begin(v, &it) : kl_json_arr_begin(v, &it)) < 0)
            return -1;
        for (;;) {
            struct kl_json_val kv;
            struct kl_str key = {0};
            int r = obj ? kl_json_obj_next(&it, &key, &kv) : kl_json_arr_next(&it, &kv);
            if (r < 0)
                return -1;
            if (r == 0)
                break;
            struct jnode child;
            if (build(a, &kv, &child) < 0)
                return -1;
            kl_vec_push(a, &kids, child);
            if (obj)
                kl_vec_push(a, &keys, key);
        }
        out->n = kids.len;
        out->kids = kids.items;
        out->keys = keys.items;
        return 0;
    }
    default:
        return -1;
    }
}

static const struct jnode *get(const struct jnode *n, const char *key)
{
    if (!n || n->type != KL_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (kl_str_eq_c(n->keys[i], key))
            return &n->kids[i];
    return NULL;
}

static const struct jnode *at(const struct jnode *n, size_t i)
{
    if (!n || n->type != KL_JSON_ARRAY || i >= n->n)
        return NULL;
    return &n->kids[i];
}

static size_t len_of(const struct jnode *n)
{
    return n && (n->type == KL_JSON_ARRAY || n->type == KL_JSON_OBJECT) ? n->n : (size_t)-1;
}

/* A number as u64; UINT64_MAX when absent or not a non-negative integer. */
static uint64_t u64_of(const struct jnode *n)
{
    uint64_t v;
    if (!n || n->type != KL_JSON_NUMBER || !kl_parse_u64(n->s, &v))
        return UINT64_MAX;
    return v;
}

/* A string as a C string (in a static ring, fine for assertions); "(absent)" if missing. */
static const char *str_of(const struct jnode *n)
{
    static char ring[8][256];
    static int k;
    if (!n || n->type != KL_JSON_STRING)
        return "(absent)";
    char *b = ring[k++ & 7];
    size_t m = n->s.len < 255 ? n->s.len : 255;
    memcpy(b, n->s.ptr, m);
    b[m] = '\0';
    return b;
}

static int bool_of(const struct jnode *n)
{
    if (!n || n->type != KL_JSON_BOOL)
        return -1;
    return n->b;
}

/* The integer array n as text "[a,b,c]" for compact comparisons. */
static const char *ints_of(const struct jnode *n)
{
    static char ring[8][512];
    static int k;
    char *b = ring[k++ & 7];
    size_t o = 0;
    if (!n || n->type != KL_JSON_ARRAY)
        return "(not an array)";
    b[o++] = '[';
    for (size_t i = 0; i < n->n && o < 480; i++)
        o += (size_t)snprintf(b + o, 512 - o, "%s%.*s", i ? "," : "", (int)n->kids[i].s.len,
                              n->kids[i].s.ptr);
    b[o++] = ']';
    b[o] = '\0';
    return b;
}

/* The events of an evented profile as "O0@100 C0@200 ...". */
static const char *events_of(const struct jnode *prof)
{
    static char b[4096];
    size_t o = 0;
    const struct jnode *ev = get(prof, "events");
    b[0] = '\0';
    for (size_t i = 0; i < len_of(ev) && o < 4000; i++) {
        const struct jnode *e = at(ev, i);
        o +=
            (size_t)snprintf(b + o, sizeof b - o, "%s%s%" PRIu64 "@%" PRIu64, i ? " " : "",
                             str_of(get(e, "type")), u64_of(get(e, "frame")), u64_of(get(e, "at")));
    }
    return b;
}

/* ---------------------------------------------------------------------------------- */
/* Writing and reading back                                                             */

struct out {
    struct kl_arena arena;
    struct kl_buf buf;
    struct jnode root;
    struct kl_err err;
    int rc;
};

/* What speedscope's importer checks (file-format-spec.ts, importSpeedscopeProfile). */
static void check_loadable(const struct jnode *root)
{
    ASSERT_EQ_STR(str_of(get(root, "$schema")),
                  "https://www.speedscope.app/file-format-schema.json");
    ASSERT_EQ_STR(str_of(get(root, "exporter")), "kiln");
    ASSERT_TRUE(get(root, "name") && get(root, "name")->type == KL_JSON_STRING);
    const struct jnode *frames = get(get(root, "shared"), "frames");
    const struct jnode *profs = get(root, "profiles");
    ASSERT_TRUE(frames && frames->type == KL_JSON_ARRAY);
    ASSERT_TRUE(profs && profs->type == KL_JSON_ARRAY);
    if (!frames || !profs)
        return;
    for (size_t i = 0; i < frames->n; i++)
        ASSERT_TRUE(get(at(frames, i), "name") != NULL);
    if (profs->n)
        ASSERT_TRUE(u64_of(get(root, "activeProfileIndex")) < profs->n);
    for (size_t i = 0; i < profs->n; i++) {
        const struct jnode *pr = at(profs, i);
        const char *type = str_of(get(pr, "type"));
        ASSERT_EQ_STR(str_of(get(pr, "unit")), "nanoseconds");
        ASSERT_TRUE(get(pr, "name") && get(pr, "name")->type == KL_JSON_STRING);
        uint64_t start = u64_of(get(pr, "startValue")), end = u64_of(get(pr, "endValue"));
        ASSERT_TRUE(start != UINT64_MAX && end != UINT64_MAX && start <= end);
        if (strcmp(type, "sampled") == 0) {
            const struct jnode *s = get(pr, "samples"), *w = get(pr, "weights");
            ASSERT_EQ_U64(len_of(s), len_of(w));
            uint64_t total = 0;
            for (size_t k = 0; k < len_of(w); k++)
                total += u64_of(at(w, k));
            ASSERT_EQ_U64(total, end - start);
            for (size_t k = 0; k < len_of(s); k++)
                for (size_t j = 0; j < len_of(at(s, k)); j++)
                    ASSERT_TRUE(u64_of(at(at(s, k), j)) < frames->n);
        } else {
            ASSERT_EQ_STR(type, "evented");
            const struct jnode *ev = get(pr, "events");
            uint64_t stack[512], last = start;
            size_t depth = 0;
            for (size_t k = 0; k < len_of(ev); k++) {
                const struct jnode *e = at(ev, k);
                uint64_t f = u64_of(get(e, "frame")), t = u64_of(get(e, "at"));
                ASSERT_TRUE(f < frames->n);
                ASSERT_TRUE(t >= last && t <= end);
                last = t;
                if (strcmp(str_of(get(e, "type")), "O") == 0) {
                    if (depth < 512)
                        stack[depth++] = f;
                } else {
                    ASSERT_EQ_STR(str_of(get(e, "type")), "C");
                    ASSERT_TRUE(depth > 0);
                    if (depth > 0)
                        ASSERT_EQ_U64(stack[--depth], f);
                }
            }
            ASSERT_EQ_U64(depth, 0);
        }
    }
}

/* Write p, parse the output back into o->root. p must live in o->arena. */
static void write_out(struct out *o, const struct kl_profile *p, size_t max)
{
    kl_buf_init(&o->buf, max);
    kl_err_clear(&o->err);
    o->rc = kl_speedscope_write(p, &o->buf, &o->err);
    memset(&o->root, 0, sizeof o->root);
    if (o->rc < 0)
        return;
    ASSERT_TRUE(kl_buf_reserve(&o->buf, KL_PADDING) == 0);
    memset(o->buf.ptr + o->buf.len, 0, KL_PADDING);
    struct kl_err jerr = KL_ERR_INIT;
    struct kl_json_doc *d =
        kl_json_open(&o->arena, o->buf.ptr, o->buf.len, KL_R_PROFILING_INVALID_JSON, &jerr);
    struct kl_json_val v;
    ASSERT_TRUE(d != NULL);
    if (!d || kl_json_root(d, &v) < 0 || build(&o->arena, &v, &o->root) < 0 ||
        kl_json_finish(d) < 0) {
        KL_FAIL_("output does not parse back: %s (%s)", jerr.msg, o->buf.ptr);
        return;
    }
    check_loadable(&o->root);
}

static void out_release(struct out *o)
{
    kl_buf_release(&o->buf);
    kl_arena_release(&o->arena);
}

/* ---------------------------------------------------------------------------------- */
/* Building profiles by hand                                                            */

static void add_stack(struct kl_profile *p, int n, ...)
{
    struct kl_sample_data *d = &p->data;
    va_list ap;
    if (d->stack_off.len == 0)
        kl_vec_push(p->arena, &d->stack_off, 0u);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        kl_vec_push(p->arena, &d->stack_frames, (uint32_t)va_arg(ap, int));
    va_end(ap);
    kl_vec_push(p->arena, &d->stack_off, (uint32_t)d->stack_frames.len);
}

static void add_sample(struct kl_profile *p, uint64_t ts_ns, uint32_t stack, uint32_t thread,
                       int32_t queue)
{
    struct kl_sample s = {0};
    s.ts_ns = ts_ns;
    s.ts_s = (double)ts_ns / 1e9;
    s.stack_id = stack;
    s.thread = thread;
    s.queue = queue;
    kl_vec_push(p->arena, &p->data.samples, s);
}

static struct kl_frame mkframe(const char *function, const char *file, uint32_t line)
{
    struct kl_frame f = {0};
    f.function = kl_str_c(function);
    f.filename = kl_str_c(file);
    f.lineno = line;
    if (line)
        f.flags |= KL_FRAME_HAS_LINENO;
    return f;
}

/* v1 profile used by several tests.
 *
 * frames: 0 main   main.c:10  addr 0x1000  package /usr/lib/libfoo.dylib  in_app  sym_addr set
 *         1 work   work.c:20  module app   not in_app, symbolicated without sym_addr (inline)
 *         2 ""     addr 0xabc
 *         3 work   work.c:20  (same file/function/line/no address as 1: deduplicated)
 *         4 idle   x.c:1
 * stacks (leaf first): s0 [1 0]   s1 [2 3 0]   s2 [4]
 * threads: 0 = id 259 (active, no metadata), 1 = id 7 "worker" priority 31, 2 = id 9
 * queues:  0 = com.apple.main-thread
 * samples (array order):  ts20 s1 A | ts2 s0 A q0 | ts0 s2 B | ts50 s0 A | ts15 s2 B |
 *                         ts40 s0 C q0 | ts30 s2 C q0
 * time order: 0 B s2, 2 A s0, 15 B s2, 20 A s1, 30 C s2, 40 C s0, 50 A s0
 * profiles by first sample: B (0), A (1, active), C (2)
 * frames numbered in that walk, root to leaf: idle=0, main=1, work=2, unknown=3 */
static struct kl_profile *v1_profile(struct kl_arena *a)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = KL_KIND_SAMPLE_V1;
    p->version = KL_STR("1");
    p->event_id = KL_STR("a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5");
    p->platform = KL_STR("cocoa");
    p->release = KL_STR("app@1.0");
    p->os_name = KL_STR("iOS");
    p->os_version = KL_STR("17.0");
    p->device_model = KL_STR("iPhone15,2");
    p->device_architecture = KL_STR("arm64e");
    p->timestamp_ns = 1700000000LL * 1000000000LL;
    p->has_timestamp = true;
    p->project_id = 42;
    p->organization_id = 7;
    p->received = 1700000001;
    p->transaction.present = true;
    p->transaction.name = KL_STR("tx/name");
    p->transaction.id = KL_STR("11111111111111111111111111111111");
    p->transaction.trace_id = KL_STR("22222222222222222222222222222222");
    p->transaction.active_thread_id = 259;

    struct kl_sample_data *d = &p->data;
    d->present = true;
    struct kl_frame f0 = mkframe("main", "main.c", 10);
    f0.instruction_addr = 0x1000;
    f0.flags |= KL_FRAME_HAS_ADDR;
    f0.package = KL_STR("/usr/lib/libfoo.dylib");
    f0.in_app = KL_TRUE;
    f0.status = KL_STR("symbolicated");
    f0.sym_addr = KL_STR("0x1000");
    struct kl_frame f1 = mkframe("work", "work.c", 20);
    f1.module = KL_STR("app");
    f1.in_app = KL_FALSE;
    f1.data_symbolicator_status = KL_STR("symbolicated");
    struct kl_frame f2 = mkframe("", NULL, 0);
    f2.instruction_addr = 0xabc;
    f2.flags |= KL_FRAME_HAS_ADDR;
    struct kl_frame f3 = mkframe("work", "work.c", 20);
    f3.module = KL_STR("app");
    struct kl_frame f4 = mkframe("idle", "x.c", 1);
    kl_vec_push(a, &d->frames, f0);
    kl_vec_push(a, &d->frames, f1);
    kl_vec_push(a, &d->frames, f2);
    kl_vec_push(a, &d->frames, f3);
    kl_vec_push(a, &d->frames, f4);
    add_stack(p, 2, 1, 0);
    add_stack(p, 3, 2, 3, 0);
    add_stack(p, 1, 4);

    struct kl_thread ta = {0}, tb = {0}, tc = {0};
    ta.id = KL_STR("259");
    ta.id_num = 259;
    tb.id = KL_STR("7");
    tb.id_num = 7;
    tb.name = KL_STR("worker");
    tb.priority = 31;
    tb.has_priority = true;
    tb.has_metadata = true;
    tc.id = KL_STR("9");
    tc.id_num = 9;
    kl_vec_push(a, &d->threads, ta);
    kl_vec_push(a, &d->threads, tb);
    kl_vec_push(a, &d->threads, tc);
    struct kl_queue q = {KL_STR("0x0000000102adc700"), KL_STR("com.apple.main-thread"), true};
    kl_vec_push(a, &d->queues, q);

    add_sample(p, 20, 1, 0, -1);
    add_sample(p, 2, 0, 0, 0);
    add_sample(p, 0, 2, 1, -1);
    add_sample(p, 50, 0, 0, -1);
    add_sample(p, 15, 2, 1, -1);
    add_sample(p, 40, 0, 2, 0);
    add_sample(p, 30, 2, 2, 0);
    return p;
}

/* ---------------------------------------------------------------------------------- */
/* Tests                                                                                */

static void test_v1_profiles(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    write_out(&o, v1_profile(&o.arena), 1 << 20);
    ASSERT_EQ_INT(o.rc, 0);
    const struct jnode *r = &o.root, *profs = get(r, "profiles");
    ASSERT_EQ_U64(len_of(profs), 3);
    ASSERT_EQ_U64(u64_of(get(r, "activeProfileIndex")), 1);

    const struct jnode *b = at(profs, 0), *pa = at(profs, 1), *c = at(profs, 2);
    /* B: samples at 0 and 15, both s2 = [idle] */
    ASSERT_EQ_STR(str_of(get(b, "type")), "sampled");
    ASSERT_EQ_STR(str_of(get(b, "name")), "worker");
    ASSERT_EQ_U64(u64_of(get(b, "threadID")), 7);
    ASSERT_EQ_U64(u64_of(get(b, "priority")), 31);
    ASSERT_EQ_INT(bool_of(get(b, "isMainThread")), 0);
    ASSERT_EQ_STR(ints_of(at(get(b, "samples"), 0)), "[0]");
    ASSERT_EQ_STR(ints_of(at(get(b, "samples"), 1)), "[0]");
    ASSERT_EQ_STR(ints_of(get(b, "weights")), "[15,0]");
    ASSERT_EQ_U64(u64_of(get(b, "startValue")), 0);
    ASSERT_EQ_U64(u64_of(get(b, "endValue")), 15);
    /* A: 2 s0, 20 s1, 50 s0; root->leaf main,work / main,work,unknown */
    ASSERT_EQ_STR(str_of(get(pa, "name")), "com.apple.main-thread");
    ASSERT_EQ_U64(u64_of(get(pa, "threadID")), 259);
    ASSERT_TRUE(get(pa, "priority") == NULL);
    ASSERT_EQ_INT(bool_of(get(pa, "isMainThread")), 1);
    ASSERT_EQ_U64(len_of(get(pa, "samples")), 3);
    ASSERT_EQ_STR(ints_of(at(get(pa, "samples"), 0)), "[1,2]");
    ASSERT_EQ_STR(ints_of(at(get(pa, "samples"), 1)), "[1,2,3]");
    ASSERT_EQ_STR(ints_of(at(get(pa, "samples"), 2)), "[1,2]");
    ASSERT_EQ_STR(ints_of(get(pa, "weights")), "[18,30,0]");
    ASSERT_EQ_U64(u64_of(get(pa, "startValue")), 2);
    ASSERT_EQ_U64(u64_of(get(pa, "endValue")), 50);
    /* C: no metadata name; its queue is the main queue but C is not the active thread */
    ASSERT_EQ_STR(str_of(get(c, "name")), "");
    ASSERT_EQ_U64(u64_of(get(c, "threadID")), 9);
    ASSERT_EQ_STR(ints_of(at(get(c, "samples"), 0)), "[0]");
    ASSERT_EQ_STR(ints_of(at(get(c, "samples"), 1)), "[1,2]");
    ASSERT_EQ_STR(ints_of(get(c, "weights")), "[10,0]");
    ASSERT_EQ_STR(str_of(get(c, "type")), "sampled");
    ASSERT_EQ_STR(str_of(get(c, "unit")), "nanoseconds");
    out_release(&o);
}

static void test_v1_frames(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    write_out(&o, v1_profile(&o.arena), 1 << 20);
    const struct jnode *fr = get(get(&o.root, "shared"), "frames");
    ASSERT_EQ_U64(len_of(fr), 4); /* 5 input frames, 1 duplicate */
    const struct jnode *idle = at(fr, 0), *mn = at(fr, 1), *wk = at(fr, 2), *un = at(fr, 3);
    ASSERT_EQ_STR(str_of(get(idle, "name")), "idle");
    ASSERT_EQ_STR(str_of(get(idle, "file")), "x.c");
    ASSERT_EQ_U64(u64_of(get(idle, "line")), 1);
    ASSERT_TRUE(get(idle, "image") == NULL);
    ASSERT_EQ_INT(bool_of(get(idle, "is_application")), 0); /* in_app unset */
    ASSERT_EQ_STR(str_of(get(mn, "name")), "main");
    ASSERT_EQ_STR(str_of(get(mn, "image")), "libfoo");
    ASSERT_EQ_STR(str_of(get(mn, "file")), "main.c");
    ASSERT_EQ_U64(u64_of(get(mn, "line")), 10);
    ASSERT_EQ_INT(bool_of(get(mn, "is_application")), 1);
    ASSERT_TRUE(get(mn, "inline") == NULL);
    /* FNV-1 64 of "libfoo:main" = 0x...991d2f3b, low 32 bits, computed offline */
    ASSERT_EQ_U64(u64_of(get(mn, "fingerprint")), 2568101051u);
    ASSERT_EQ_STR(str_of(get(wk, "name")), "work");
    ASSERT_EQ_STR(str_of(get(wk, "image")), "app");
    ASSERT_EQ_INT(bool_of(get(wk, "inline")), 1);
    ASSERT_EQ_INT(bool_of(get(wk, "is_application")), 0);
    ASSERT_EQ_STR(str_of(get(un, "name")), "unknown (0xabc)");
    ASSERT_TRUE(get(un, "file") == NULL);
    out_release(&o);
}

static void test_v1_top_level(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    write_out(&o, v1_profile(&o.arena), 1 << 20);
    const struct jnode *r = &o.root, *m = get(r, "metadata");
    ASSERT_EQ_U64(u64_of(get(r, "durationNS")), 50);
    ASSERT_EQ_STR(str_of(get(r, "platform")), "cocoa");
    ASSERT_EQ_STR(str_of(get(r, "profileID")), "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5");
    ASSERT_TRUE(get(r, "chunkID") == NULL);
    ASSERT_TRUE(get(r, "androidClock") == NULL);
    ASSERT_TRUE(get(r, "images") == NULL);
    ASSERT_TRUE(get(r, "measurements") == NULL);
    ASSERT_EQ_U64(u64_of(get(r, "projectID")), 42);
    ASSERT_EQ_STR(str_of(get(r, "transactionName")), "tx/name");
    ASSERT_EQ_STR(str_of(get(r, "name")), "tx/name");
    ASSERT_EQ_STR(str_of(get(r, "version")), "app@1.0");
    ASSERT_EQ_STR(str_of(get(m, "version")), "app@1.0");
    ASSERT_EQ_STR(str_of(get(m, "deviceOSName")), "iOS");
    ASSERT_EQ_STR(str_of(get(m, "deviceModel")), "iPhone15,2");
    ASSERT_EQ_STR(str_of(get(m, "architecture")), "arm64e");
    ASSERT_EQ_STR(str_of(get(m, "transactionID")), "11111111111111111111111111111111");
    ASSERT_EQ_STR(str_of(get(m, "traceID")), "22222222222222222222222222222222");
    ASSERT_EQ_STR(str_of(get(m, "timestamp")), "2023-11-14T22:13:20Z");
    ASSERT_EQ_STR(str_of(get(m, "received")), "2023-11-14T22:13:21Z");
    ASSERT_EQ_U64(u64_of(get(m, "organizationID")), 7);
    ASSERT_EQ_U64(u64_of(get(m, "projectID")), 42);
    ASSERT_EQ_U64(u64_of(get(m, "durationNS")), 50);
    ASSERT_EQ_INT(bool_of(get(m, "sampled")), 1);
    out_release(&o);
}

/* Images and measurements are copied through when present. */
static void test_v1_images_measurements(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    struct kl_profile *p = v1_profile(&o.arena);
    struct kl_image im = {0};
    im.type = KL_STR("macho");
    im.debug_id = KL_STR("32420279-25e2-34e6-8bc7-8a006a8f2425");
    im.code_file = KL_STR("/private/var/containers/Bundle/Application/X/App.app/App");
    im.image_addr = 0x100000000;
    im.has_image_addr = true;
    im.image_size = 4096;
    kl_vec_push(&o.arena, &p->images, im);
    struct kl_mvalue *vals = kl_arena_alloc(&o.arena, 2 * sizeof *vals);
    vals[0] = (struct kl_mvalue){10, 0, 12.5};
    vals[1] = (struct kl_mvalue){20, 0, 3};
    struct kl_measurement me = {KL_STR("cpu_usage"), KL_STR("percent"), vals, 2};
    kl_vec_push(&o.arena, &p->measurements, me);
    p->has_measurements = true;
    write_out(&o, p, 1 << 20);
    const struct jnode *img = at(get(&o.root, "images"), 0);
    ASSERT_EQ_STR(str_of(get(img, "type")), "macho");
    ASSERT_EQ_STR(str_of(get(img, "image_addr")), "0x100000000");
    ASSERT_EQ_U64(u64_of(get(img, "image_size")), 4096);
    ASSERT_TRUE(get(img, "image_vmaddr") == NULL);
    const struct jnode *cpu = get(get(&o.root, "measurements"), "cpu_usage");
    ASSERT_EQ_STR(str_of(get(cpu, "unit")), "percent");
    ASSERT_EQ_U64(len_of(get(cpu, "values")), 2);
    ASSERT_EQ_U64(u64_of(get(at(get(cpu, "values"), 1), "elapsed_since_start_ns")), 20);
    const struct jnode *v0 = get(at(get(cpu, "values"), 0), "value");
    ASSERT_TRUE(v0 && v0->type == KL_JSON_NUMBER && kl_str_eq_c(v0->s, "12.5"));
    out_release(&o);
}

/* module_or_package for the "image" key (spec §6.1): one single-frame profile per row. */
static void test_image_names(void)
{
    static const struct {
        const char *module, *package, *image; /* image NULL: key absent */
    } rows[] = {
        {NULL, "/usr/lib/libfoo.dylib", "libfoo"},
        {NULL, "/usr/lib/system/libsystem_c.so", "libsystem_c"},
        {NULL, "libstatic.a", "libstatic"},
        {NULL, "C:\\Windows\\System32\\kernel32.dll", "kernel32"},
        {NULL, "\\\\server\\share\\app.exe", "app"},
        {NULL, "c:/mixed/path/x.dll", "x"},
        {NULL, "/a/b/", "b"},
        {NULL, "/System/Library/Frameworks/UIKit.framework/UIKit", "UIKit"},
        {NULL, "x.a.b", "x.a.b"},
        {NULL, "/", "/"},
        {"my.module", "/usr/lib/libfoo.dylib", "my.module"},
        {NULL, NULL, NULL},
        {"", "", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct out o = {0};
        kl_arena_init(&o.arena);
        struct kl_profile *p = kl_profile_new(&o.arena);
        p->kind = KL_KIND_SAMPLE_V1;
        p->data.present = true;
        struct kl_frame f = mkframe("fn", "f.c", 1);
        f.module = kl_str_c(rows[i].module);
        f.package = kl_str_c(rows[i].package);
        kl_vec_push(&o.arena, &p->data.frames, f);
        add_stack(p, 1, 0);
        struct kl_thread t = {0};
        kl_vec_push(&o.arena, &p->data.threads, t);
        add_sample(p, 0, 0, 0, -1);
        add_sample(p, 10, 0, 0, -1);
        write_out(&o, p, 1 << 16);
        const struct jnode *fr = at(get(get(&o.root, "shared"), "frames"), 0);
        if (rows[i].image)
            ASSERT_EQ_STR(str_of(get(fr, "image")), rows[i].image);
        else
            ASSERT_TRUE(get(fr, "image") == NULL);
        out_release(&o);
    }
}

/* v2: absolute unix-ns times become relative to the first sample; string thread ids; the
 * thread named "main" is active.
 * samples (t0 = 1700000000 s): +0 ms worker s0, +10 ms main s1, +25 ms worker s1,
 *                              +40 ms main s0, +41 ms worker s0
 * worker (id "12"): start 0, end 41e6, weights [25e6, 16e6, 0]
 * main   (id "3"):  start 10e6, end 40e6, weights [30e6, 0]  -> profile 1, active */
static void test_v2_chunk(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    struct kl_arena *a = &o.arena;
    struct kl_profile *p = kl_profile_new(a);
    p->kind = KL_KIND_SAMPLE_V2;
    p->version = KL_STR("2");
    p->chunk_id = KL_STR("c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0");
    p->profiler_id = KL_STR("f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0");
    p->platform = KL_STR("python");
    p->release = KL_STR("backend@2");
    p->data.present = true;
    kl_vec_push(a, &p->data.frames, mkframe("handler", "app.py", 3));
    kl_vec_push(a, &p->data.frames, mkframe("query", "db.py", 9));
    add_stack(p, 1, 0);
    add_stack(p, 2, 1, 0);
    struct kl_thread w = {0}, m = {0};
    w.id = KL_STR("12");
    w.name = KL_STR("worker");
    m.id = KL_STR("3");
    m.name = KL_STR("main");
    kl_vec_push(a, &p->data.threads, w);
    kl_vec_push(a, &p->data.threads, m);
    uint64_t t0 = 1700000000ULL * 1000000000ULL, ms = 1000000;
    add_sample(p, t0 + 40 * ms, 0, 1, -1);
    add_sample(p, t0, 0, 0, -1);
    add_sample(p, t0 + 10 * ms, 1, 1, -1);
    add_sample(p, t0 + 25 * ms, 1, 0, -1);
    add_sample(p, t0 + 41 * ms, 0, 0, -1);
    write_out(&o, p, 1 << 20);
    ASSERT_EQ_INT(o.rc, 0);
    const struct jnode *r = &o.root, *profs = get(r, "profiles");
    ASSERT_EQ_U64(len_of(profs), 2);
    ASSERT_EQ_U64(u64_of(get(r, "activeProfileIndex")), 1);
    ASSERT_EQ_STR(str_of(get(r, "chunkID")), "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0");
    ASSERT_TRUE(get(r, "profileID") == NULL);
    ASSERT_EQ_U64(u64_of(get(r, "durationNS")), 41 * ms);
    ASSERT_EQ_STR(str_of(get(r, "name")), "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0");
    const struct jnode *pw = at(profs, 0), *pm = at(profs, 1);
    ASSERT_EQ_U64(u64_of(get(pw, "threadID")), 12);
    ASSERT_EQ_STR(str_of(get(pw, "name")), "worker");
    ASSERT_EQ_INT(bool_of(get(pw, "isMainThread")), 0);
    ASSERT_EQ_U64(u64_of(get(pw, "startValue")), 0);
    ASSERT_EQ_U64(u64_of(get(pw, "endValue")), 41 * ms);
    ASSERT_EQ_STR(ints_of(get(pw, "weights")), "[25000000,16000000,0]");
    ASSERT_EQ_STR(ints_of(at(get(pw, "samples"), 1)), "[0,1]");
    ASSERT_EQ_U64(u64_of(get(pm, "threadID")), 3);
    ASSERT_EQ_INT(bool_of(get(pm, "isMainThread")), 1);
    ASSERT_EQ_U64(u64_of(get(pm, "startValue")), 10 * ms);
    ASSERT_EQ_STR(ints_of(get(pm, "weights")), "[30000000,0]");
    ASSERT_EQ_STR(ints_of(at(get(pm, "samples"), 0)), "[0,1]");
    ASSERT_EQ_STR(ints_of(at(get(pm, "samples"), 1)), "[0]");
    out_release(&o);
}

/* ---- Android ---- */

static struct kl_android_method mkmethod(uint64_t id, const char *cls, const char *name,
                                         const char *sig, const char *file, uint32_t line)
{
    struct kl_android_method m = {0};
    m.id = id;
    m.class_name = kl_str_c(cls);
    m.name = kl_str_c(name);
    m.signature = kl_str_c(sig);
    m.source_file = kl_str_c(file);
    m.source_line = line;
    m.has_source_line = line != 0;
    return m;
}

static void add_event(struct kl_profile *p, uint64_t tid, uint64_t mid, int action,
                      uint64_t wall_ns)
{
    struct kl_android_event e = {0};
    e.thread_id = tid;
    e.method_id = mid;
    e.has_method_id = true;
    e.action = (uint8_t)action;
    e.wall_ns = wall_ns;
    e.has_wall = true;
    e.monotonic = true;
    kl_vec_push(p->arena, &p->android.events, e);
}

/* methods: 1 MainActivity.onCreate -> frame 0; 2 java.lang.Thread.run -> frame 1;
 *          3 with inline_frames [Util.inner (callee), Util.outer] -> frames 2, 3;
 *          4 Foo.<init> -> frame 4; 99 undefined -> frame 5 "unknown (id 99)" on first use
 * threads listed: 2 worker, 1 main  -> profiles [worker, main], active 1
 * worker: 50 Enter 2, 80 Exit 2                         -> O1@50 C1@80
 * main:   100 Enter 1, 200 Enter 3, 300 Exit 3, 350 Enter 4, 400 Enter 99,
 *         500 Exit 1 (closes 99, 4, 1), 600 Exit 2 (not open: dropped),
 *         700 Enter 2 (left open: closed at the end, 700)
 *   -> O0@100 O3@200 O2@200 C2@300 C3@300 O4@350 O5@400 C5@500 C4@500 C0@500 O1@700 C1@700 */
static struct kl_profile *android_profile(struct kl_arena *a)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = KL_KIND_ANDROID;
    p->platform = KL_STR("android");
    p->event_id = KL_STR("abababababababababababababababab");
    p->version_name = KL_STR("1.2");
    p->version_code = KL_STR("42");
    p->release = KL_STR("ignored@9");
    p->duration_ns = 1000;
    p->android_api_level = 33;
    p->has_android_api_level = true;
    p->transaction.present = true;
    p->transaction.name = KL_STR("MainActivity");
    struct kl_android_trace *t = &p->android;
    t->present = true;
    t->clock = KL_STR("Dual");
    kl_vec_push(a, &t->methods,
                mkmethod(1, "com.example.MainActivity", "onCreate", "(Landroid/os/Bundle;)V",
                         "MainActivity.java", 42));
    kl_vec_push(a, &t->methods, mkmethod(2, "java.lang.Thread", "run", "()V", "Thread.java", 0));
    struct kl_android_method m3 = mkmethod(3, "a.b", "c", "()V", "SourceFile", 0);
    m3.inline_frames = kl_arena_calloc(a, 2, sizeof *m3.inline_frames);
    m3.inline_frames[0] = mkmethod(3, "com.example.Util", "inner", "()V", "Util.kt", 7);
    m3.inline_frames[1] = mkmethod(3, "com.example.Util", "outer", "()V", "Util.kt", 3);
    m3.n_inline = 2;
    kl_vec_push(a, &t->methods, m3);
    kl_vec_push(a, &t->methods, mkmethod(4, "com.example.Foo", "<init>", "()V", "Foo.java", 0));
    struct kl_android_thread th2 = {2, KL_STR("worker")}, th1 = {1, KL_STR("main")};
    kl_vec_push(a, &t->threads, th2);
    kl_vec_push(a, &t->threads, th1);
    add_event(p, 2, 2, KL_ANDROID_ENTER, 50);
    add_event(p, 2, 2, KL_ANDROID_EXIT, 80);
    add_event(p, 1, 1, KL_ANDROID_ENTER, 100);
    add_event(p, 1, 3, KL_ANDROID_ENTER, 200);
    add_event(p, 1, 3, KL_ANDROID_EXIT, 300);
    add_event(p, 1, 4, KL_ANDROID_ENTER, 350);
    add_event(p, 1, 99, KL_ANDROID_ENTER, 400);
    add_event(p, 1, 1, KL_ANDROID_UNWIND, 500);
    add_event(p, 1, 2, KL_ANDROID_EXIT, 600);
    add_event(p, 1, 2, KL_ANDROID_ENTER, 700);
    return p;
}

static void test_android_events(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    write_out(&o, android_profile(&o.arena), 1 << 20);
    ASSERT_EQ_INT(o.rc, 0);
    const struct jnode *r = &o.root, *profs = get(r, "profiles");
    ASSERT_EQ_U64(len_of(profs), 2);
    ASSERT_EQ_U64(u64_of(get(r, "activeProfileIndex")), 1);
    ASSERT_EQ_STR(str_of(get(r, "androidClock")), "Dual");
    const struct jnode *w = at(profs, 0), *m = at(profs, 1);
    ASSERT_EQ_STR(str_of(get(w, "type")), "evented");
    ASSERT_EQ_STR(str_of(get(w, "name")), "worker");
    ASSERT_EQ_U64(u64_of(get(w, "threadID")), 2);
    ASSERT_EQ_STR(events_of(w), "O1@50 C1@80");
    ASSERT_EQ_U64(u64_of(get(w, "startValue")), 50);
    ASSERT_EQ_U64(u64_of(get(w, "endValue")), 80);
    ASSERT_EQ_STR(str_of(get(m, "name")), "main");
    ASSERT_EQ_U64(u64_of(get(m, "threadID")), 1);
    ASSERT_EQ_STR(events_of(m), "O0@100 O3@200 O2@200 C2@300 C3@300 O4@350 O5@400 C5@500 "
                                "C4@500 C0@500 O1@700 C1@700");
    ASSERT_EQ_U64(u64_of(get(m, "startValue")), 100);
    ASSERT_EQ_U64(u64_of(get(m, "endValue")), 700);
    ASSERT_EQ_STR(str_of(get(m, "unit")), "nanoseconds");
    out_release(&o);
}

static void test_android_frames_and_metadata(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    write_out(&o, android_profile(&o.arena), 1 << 20);
    const struct jnode *r = &o.root, *fr = get(get(r, "shared"), "frames");
    ASSERT_EQ_U64(len_of(fr), 6);
    const struct jnode *f0 = at(fr, 0);
    ASSERT_EQ_STR(str_of(get(f0, "name")),
                  "com.example.MainActivity.onCreate(Landroid/os/Bundle;)V");
    ASSERT_EQ_STR(str_of(get(f0, "image")), "com.example");
    ASSERT_EQ_STR(str_of(get(f0, "file")), "MainActivity.java");
    ASSERT_EQ_U64(u64_of(get(f0, "line")), 42);
    ASSERT_EQ_INT(bool_of(get(f0, "is_application")), 1);
    /* FNV-1 64 of "com.example:com.example.MainActivity.onCreate(Landroid/os/Bundle;)V",
     * low 32 bits, computed offline */
    ASSERT_EQ_U64(u64_of(get(f0, "fingerprint")), 1199822011u);
    ASSERT_EQ_STR(str_of(get(at(fr, 1), "name")), "java.lang.Thread.run()V");
    ASSERT_EQ_STR(str_of(get(at(fr, 1), "image")), "java.lang");
    ASSERT_EQ_INT(bool_of(get(at(fr, 1), "is_application")), 0);
    ASSERT_EQ_STR(str_of(get(at(fr, 2), "name")), "inner");
    ASSERT_EQ_STR(str_of(get(at(fr, 2), "image")), "com.example.Util");
    ASSERT_EQ_INT(bool_of(get(at(fr, 2), "inline")), 1);
    ASSERT_EQ_U64(u64_of(get(at(fr, 2), "line")), 7);
    ASSERT_EQ_STR(str_of(get(at(fr, 3), "name")), "outer");
    ASSERT_EQ_STR(str_of(get(at(fr, 4), "name")), "com.example.Foo()V");
    ASSERT_EQ_STR(str_of(get(at(fr, 5), "name")), "unknown (id 99)");
    ASSERT_EQ_STR(str_of(get(at(fr, 5), "file")), "unknown");
    ASSERT_EQ_STR(str_of(get(at(fr, 5), "image")), "unknown");
    ASSERT_EQ_INT(bool_of(get(at(fr, 5), "is_application")), 0);
    /* legacy Android: version from version_name/code, duration from the trace */
    ASSERT_EQ_STR(str_of(get(r, "version")), "1.2 (42)");
    ASSERT_EQ_STR(str_of(get(get(r, "metadata"), "version")), "1.2 (42)");
    ASSERT_EQ_U64(u64_of(get(get(r, "metadata"), "androidAPILevel")), 33);
    ASSERT_EQ_U64(u64_of(get(r, "durationNS")), 1000);
    ASSERT_EQ_STR(str_of(get(r, "profileID")), "abababababababababababababababab");
    ASSERT_EQ_STR(str_of(get(r, "transactionName")), "MainActivity");
    out_release(&o);
}

/* Wall clock going backwards (vroom's repair): 100, 200, 150, 250 on one thread.
 * At 150 (< max 200 and < previous 200): 200 + 1 s. At 250: that + (250 - 150). */
static void test_android_wall_repair(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    struct kl_profile *p = kl_profile_new(&o.arena);
    p->kind = KL_KIND_ANDROID_CHUNK;
    p->chunk_id = KL_STR("cccccccccccccccccccccccccccccccc");
    struct kl_android_trace *t = &p->android;
    t->present = true;
    t->clock = KL_STR("Wall");
    kl_vec_push(&o.arena, &t->methods, mkmethod(1, "a.B", "c", "()V", "B.java", 0));
    kl_vec_push(&o.arena, &t->methods, mkmethod(2, "a.B", "d", "()V", "B.java", 0));
    struct kl_android_thread th = {5, KL_STR("main")};
    kl_vec_push(&o.arena, &t->threads, th);
    add_event(p, 5, 1, KL_ANDROID_ENTER, 100);
    add_event(p, 5, 2, KL_ANDROID_ENTER, 200);
    add_event(p, 5, 2, KL_ANDROID_EXIT, 150);
    add_event(p, 5, 1, KL_ANDROID_EXIT, 250);
    write_out(&o, p, 1 << 16);
    ASSERT_EQ_INT(o.rc, 0);
    const struct jnode *m = at(get(&o.root, "profiles"), 0);
    ASSERT_EQ_STR(events_of(m), "O0@100 O1@200 C1@1000000200 C0@1000000300");
    ASSERT_EQ_U64(u64_of(get(m, "endValue")), 1000000300);
    /* chunk: duration is the last event time; chunkID, no profileID */
    ASSERT_EQ_U64(u64_of(get(&o.root, "durationNS")), 1000000300);
    ASSERT_EQ_STR(str_of(get(&o.root, "chunkID")), "cccccccccccccccccccccccccccccccc");
    out_release(&o);
}

/* 130 nested enters: the 129th and 130th pass the depth limit (128) and are dropped, and
 * so are the matching first two exits; the last exit finds an empty stack. */
static void test_android_depth_limit(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    struct kl_profile *p = kl_profile_new(&o.arena);
    p->kind = KL_KIND_ANDROID;
    struct kl_android_trace *t = &p->android;
    t->present = true;
    t->clock = KL_STR("Global");
    t->start_time = 1000;
    kl_vec_push(&o.arena, &t->methods, mkmethod(1, "a.B", "rec", "()V", "B.java", 0));
    struct kl_android_thread th = {1, KL_STR("main")};
    kl_vec_push(&o.arena, &t->threads, th);
    for (int i = 0; i < 260; i++) {
        struct kl_android_event e = {0};
        e.thread_id = 1;
        e.method_id = 1;
        e.action = i < 130 ? KL_ANDROID_ENTER : KL_ANDROID_EXIT;
        e.global_ns = 1000 + (uint64_t)i * 10; /* at = global - start_time */
        kl_vec_push(&o.arena, &t->events, e);
    }
    write_out(&o, p, 1 << 20);
    ASSERT_EQ_INT(o.rc, 0);
    const struct jnode *m = at(get(&o.root, "profiles"), 0), *ev = get(m, "events");
    ASSERT_EQ_U64(len_of(ev), 256);
    ASSERT_EQ_STR(str_of(get(at(ev, 127), "type")), "O");
    ASSERT_EQ_U64(u64_of(get(at(ev, 127), "at")), 1270);
    /* first processed exit is event 131 (at 1310) */
    ASSERT_EQ_STR(str_of(get(at(ev, 128), "type")), "C");
    ASSERT_EQ_U64(u64_of(get(at(ev, 128), "at")), 1310);
    ASSERT_EQ_U64(u64_of(get(at(ev, 255), "at")), 2580);
    ASSERT_EQ_U64(u64_of(get(m, "startValue")), 0);
    ASSERT_EQ_U64(u64_of(get(m, "endValue")), 2590);
    out_release(&o);
}

static void test_errors(void)
{
    struct {
        int what;
        enum kl_reason reason;
    } rows[] = {
        {0, KL_R_PROFILING_MALFORMED_SAMPLES},       /* stack_id out of range */
        {1, KL_R_PROFILING_MALFORMED_STACKS},        /* frame index out of range */
        {2, KL_R_PROFILING_MALFORMED_SAMPLES},       /* thread index out of range */
        {3, KL_R_PROFILING_INVALID_SAMPLED_PROFILE}, /* nothing to render */
        {4, KL_R_BUF_TOO_BIG},                       /* output over the buffer's max */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct out o = {0};
        kl_arena_init(&o.arena);
        struct kl_profile *p = v1_profile(&o.arena);
        size_t max = 1 << 20;
        switch (rows[i].what) {
        case 0:
            p->data.samples.items[3].stack_id = 3;
            break;
        case 1:
            p->data.stack_frames.items[0] = 5;
            break;
        case 2:
            p->data.samples.items[0].thread = 3;
            break;
        case 3:
            p->data.present = false;
            break;
        case 4:
            max = 100;
            break;
        }
        write_out(&o, p, max);
        ASSERT_EQ_INT(o.rc, -1);
        ASSERT_EQ_STR(kl_reason_str(o.err.reason), kl_reason_str(rows[i].reason));
        out_release(&o);
    }
}

/* An empty but present sample set still makes a loadable document. */
static void test_empty(void)
{
    struct out o = {0};
    kl_arena_init(&o.arena);
    struct kl_profile *p = kl_profile_new(&o.arena);
    p->kind = KL_KIND_SAMPLE_V1;
    p->data.present = true;
    write_out(&o, p, 1 << 16);
    ASSERT_EQ_INT(o.rc, 0);
    ASSERT_EQ_U64(len_of(get(&o.root, "profiles")), 0);
    ASSERT_EQ_U64(u64_of(get(&o.root, "activeProfileIndex")), 0);
    ASSERT_TRUE(get(&o.root, "durationNS") == NULL);
    ASSERT_EQ_STR(str_of(get(&o.root, "name")), "kiln");
    out_release(&o);
}

int main(void)
{
    KL_RUN(test_v1_profiles);
    KL_RUN(test_v1_frames);
    KL_RUN(test_v1_top_level);
    KL_RUN(test_v1_images_measurements);
    KL_RUN(test_image_names);
    KL_RUN(test_v2_chunk);
    KL_RUN(test_android_events);
    KL_RUN(test_android_frames_and_metadata);
    KL_RUN(test_android_wall_repair);
    KL_RUN(test_android_depth_limit);
    KL_RUN(test_errors);
    KL_RUN(test_empty);
    KL_TEST_DONE();
}
