/* test_occurrence.c - occurrence detection on hand-built call trees
 *
 * Trees are struct kl_calltree values written out node by node (pre-order, depth per node),
 * so these tests need only calltree.h, not the builder. Expected fingerprints are md5 hex
 * digests computed with python3 -c "import hashlib; print(hashlib.md5(b'...').hexdigest())";
 * each input string is written next to its digest.
 */
#include <string.h>

#include "base/arena.h"
#include "json/json.h"
#include "occurrence/occurrence.h"
#include "occurrence/occurrence_int.h"
#include "kl_test.h"

#define MS(x) ((uint64_t)(x)*1000000ULL)

struct tn {
    const char *name; /* NULL: unnamed frame */
    const char *pkg;
    uint32_t depth;
    uint64_t start_ns, end_ns;
    uint32_t samples;
    bool sys; /* not application code */
};

struct tthread {
    const char *id;
    bool active;
    const struct tn *nodes;
    uint32_t n;
};

/* One frame per node (duplicates are fine: detection compares strings). */
static struct kl_calltree *mk_tree(struct kl_arena *a, const struct tthread *th, uint32_t nth,
                                   uint64_t duration_ns)
{
    struct kl_calltree *t = kl_arena_calloc(a, 1, sizeof *t);
    uint32_t total = 0;
    for (uint32_t i = 0; i < nth; i++)
        total += th[i].n;
    t->frames = kl_arena_calloc(a, total + 1, sizeof *t->frames);
    t->nodes = kl_arena_calloc(a, total + 1, sizeof *t->nodes);
    t->threads = kl_arena_calloc(a, nth + 1, sizeof *t->threads);
    t->duration_ns = duration_ns;
    uint32_t k = 0;
    for (uint32_t i = 0; i < nth; i++) {
        t->threads[i] =
            (struct kl_cthread){kl_str_c(th[i].id), KL_STR_NULL, k, th[i].n, th[i].active};
        for (uint32_t j = 0; j < th[i].n; j++, k++) {
            const struct tn *n = &th[i].nodes[j];
            t->frames[k].name = n->name ? kl_str_c(n->name) : KL_STR("");
            t->frames[k].package = kl_str_c(n->pkg ? n->pkg : "");
            t->frames[k].path = KL_STR("");
            t->frames[k].flags = n->sys ? 0 : KL_CFRAME_APPLICATION;
            t->nodes[k] = (struct kl_cnode){k, n->depth, n->start_ns, n->end_ns, n->samples};
        }
    }
    t->n_frames = t->n_nodes = k;
    t->n_threads = nth;
    return t;
}

static struct kl_thread g_threads[2];

/* A sampled v1 profile: project 1, transaction "tx" on active thread 259; thread_metadata
 * names 259 "main" and 260 "worker". */
static struct kl_profile *mk_profile(struct kl_arena *a, const char *platform)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = KL_KIND_SAMPLE_V1;
    p->platform = kl_str_c(platform);
    p->sampled = true;
    p->project_id = 1;
    p->event_id = KL_STR("0123456789abcdef0123456789abcdef");
    p->received = 1700000000;
    p->transaction.present = true;
    p->transaction.name = KL_STR("tx");
    p->transaction.id = KL_STR("fedcba9876543210fedcba9876543210");
    p->transaction.active_thread_id = 259;
    g_threads[0] = (struct kl_thread){
        .id = KL_STR("259"), .id_num = 259, .name = KL_STR("main"), .has_metadata = true};
    g_threads[1] = (struct kl_thread){
        .id = KL_STR("260"), .id_num = 260, .name = KL_STR("worker"), .has_metadata = true};
    p->data.threads.items = g_threads;
    p->data.threads.len = p->data.threads.cap = 2;
    return p;
}

static uint32_t detect(struct kl_arena *a, const struct kl_profile *p, const struct kl_calltree *t,
                       unsigned flags, struct kl_occurrence **out)
{
    uint32_t n = 99;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_occurrences_detect_ex(a, p, t, flags, out, &n, &err), 0);
    return n;
}

static void test_md5(void)
{
    static const struct {
        const char *in, *hex;
    } cases[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        /* "a" * 100: crosses a block and pads into a second one */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaa",
         "36a92cc94a9e0fa21f625f8bfb007adf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl__md5 m;
        char hex[33];
        kl__md5_init(&m);
        /* fed in two pieces to exercise the streaming path */
        size_t len = strlen(cases[i].in), half = len / 2;
        kl__md5_update(&m, cases[i].in, half);
        kl__md5_update(&m, cases[i].in + half, len - half);
        kl__md5_hex(&m, hex);
        ASSERT_EQ_STR(hex, cases[i].hex);
    }
}

static void test_fmt_duration(void)
{
    static const struct {
        uint64_t ns;
        const char *out;
    } cases[] = {
        {0, "0ns"},         {4999, "0ns"},      {5000, "10\xc2\xb5s"}, {250000, "250\xc2\xb5s"},
        {16000000, "16ms"}, {16004999, "16ms"}, {16005000, "16.01ms"}, {1234560000, "1.23456s"},
        {2000000000, "2s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[48];
        kl_occurrence_fmt_duration(cases[i].ns, buf);
        ASSERT_EQ_STR(buf, cases[i].out);
    }
}

#define JSON_READ "+[NSJSONSerialization JSONObjectWithStream:options:error:]"
#define REGEX_NEW "+[NSRegularExpression regularExpressionWithPattern:options:error:]"
#define REGEX_INIT "-[NSRegularExpression initWithPattern:options:error:]"

/* cocoa: >= 16 ms and >= 4 samples, on the thread named "main" */
static void test_cocoa_thresholds(void)
{
    static const struct {
        uint64_t dur_ns;
        uint32_t samples;
        uint32_t want;
    } cases[] = {
        {MS(16) - 1, 4, 0}, {MS(16), 4, 1}, {MS(16) + 1, 4, 1}, {MS(16), 3, 0}, {MS(16), 5, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_arena a;
        kl_arena_init(&a);
        struct tn nodes[] = {
            {"main", "MyApp", 0, 0, MS(100), 10, false},
            {JSON_READ, "Foundation", 1, MS(10), MS(10) + cases[i].dur_ns, cases[i].samples, true},
        };
        struct tthread th = {"259", true, nodes, 2};
        struct kl_calltree *t = mk_tree(&a, &th, 1, MS(100));
        struct kl_profile *p = mk_profile(&a, "cocoa");
        struct kl_occurrence *o;
        uint32_t n = detect(&a, p, t, 0, &o);
        ASSERT_EQ_INT(n, cases[i].want);
        if (n == 1 && i == 1) {
            ASSERT_EQ_INT(o->type, 2003);
            ASSERT_EQ_STR(o->category, "json_decode");
            ASSERT_EQ_STR(o->title, "JSON Decoding on Main Thread");
            ASSERT_EQ_SLICE(o->subtitle, JSON_READ);
            ASSERT_EQ_SLICE(o->culprit, "tx");
            ASSERT_EQ_SLICE(o->package, "Foundation");
            ASSERT_EQ_U64(o->duration_ns, MS(16));
            ASSERT_EQ_U64(o->sample_count, 4);
            ASSERT_EQ_U64(o->profile_duration_ns, MS(100));
            /* "1JSON Decoding on Main Thread2003Foundation+[NSJSONSerialization
             *  JSONObjectWithStream:options:error:]" (one space, no line break) */
            ASSERT_EQ_STR(o->fingerprint, "17fcec8e924187bc32760e00a447000e");
            ASSERT_EQ_INT(o->n_stack, 2);
            ASSERT_EQ_SLICE(o->stack[0].function, "main");
            ASSERT_EQ_SLICE(o->stack[1].function, JSON_READ);
            ASSERT_EQ_INT(o->n_evidence_display, 3);
            ASSERT_EQ_STR(o->evidence_display[0].name, "Suspect function");
            ASSERT_TRUE(o->evidence_display[0].important);
            ASSERT_EQ_SLICE(o->evidence_display[1].value, "Foundation");
            ASSERT_EQ_SLICE(o->evidence_display[2].value,
                            "16ms (16.00% of the profile, found in 4 samples)");
            ASSERT_TRUE(!o->evidence_sample_count);
            ASSERT_EQ_INT(strlen(o->id), 32);
            ASSERT_EQ_INT(strlen(o->event_id), 32);
        }
        kl_arena_release(&a);
    }
}

/* cocoa rules look at the thread named "main" only: not the active thread, not a tree flag */
static void test_cocoa_main_thread_only(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {{JSON_READ, "Foundation", 0, 0, MS(50), 10, true}};
    struct tthread th[] = {{"260", true, nodes, 1}};
    struct kl_calltree *t = mk_tree(&a, th, 1, MS(100));
    struct kl_profile *p = mk_profile(&a, "cocoa");
    p->transaction.active_thread_id = 260; /* active, flagged, but not "main" */
    struct kl_occurrence *o;
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);

    /* no thread named "main": no fallback to the active thread */
    th[0].id = "259";
    t = mk_tree(&a, th, 1, MS(100));
    p = mk_profile(&a, "cocoa");
    g_threads[0].name = KL_STR("ui");
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);
    g_threads[0].name = KL_STR("main");
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 1);
    kl_arena_release(&a);
}

/* The deepest match on a path wins; once a child subtree matched, its later siblings are
 * not searched (vroomrs returns on the first matching child); other roots still are. */
static void test_deepest_match(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {
        {"main", "MyApp", 0, 0, MS(100), 20, false},
        {JSON_READ, "Foundation", 1, 0, MS(50), 10, true},
        {REGEX_NEW, "Foundation", 2, 0, MS(30), 6, true},
        {REGEX_INIT, "Foundation", 1, MS(50), MS(90), 8, true}, /* sibling: skipped */
        {"other", "MyApp", 0, MS(100), MS(200), 20, false},     /* second root */
        {REGEX_INIT, "Foundation", 1, MS(100), MS(140), 8, true},
    };
    struct tthread th = {"259", true, nodes, 6};
    struct kl_calltree *t = mk_tree(&a, &th, 1, MS(200));
    struct kl_profile *p = mk_profile(&a, "cocoa");
    struct kl_occurrence *o;
    uint32_t n = detect(&a, p, t, 0, &o);
    ASSERT_EQ_INT(n, 2);
    if (n == 2) {
        ASSERT_EQ_SLICE(o[0].subtitle, REGEX_NEW);
        ASSERT_EQ_INT(o[0].type, 2007);
        ASSERT_EQ_INT(o[0].n_stack, 3);
        ASSERT_EQ_INT(o[0].node, 2);
        /* "1Regex on Main Thread2007Foundation+[NSRegularExpression
         *  regularExpressionWithPattern:options:error:]" */
        ASSERT_EQ_STR(o[0].fingerprint, "098d17f87beb18c0a23e0b7757d64023");
        ASSERT_EQ_SLICE(o[1].subtitle, REGEX_INIT);
        ASSERT_EQ_INT(o[1].node, 5);
        ASSERT_EQ_U64(o[1].duration_ns, MS(40));
    }
    kl_arena_release(&a);
}

/* One finding per (package, function): the first one seen keeps its node and stack. */
static void test_one_per_key(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {
        {"a", "MyApp", 0, 0, MS(100), 20, false},
        {JSON_READ, "Foundation", 1, 0, MS(20), 4, true},
        {"b", "MyApp", 0, MS(100), MS(200), 20, false},
        {JSON_READ, "Foundation", 1, MS(100), MS(190), 18, true},
    };
    struct tthread th = {"259", true, nodes, 4};
    struct kl_calltree *t = mk_tree(&a, &th, 1, MS(200));
    struct kl_profile *p = mk_profile(&a, "cocoa");
    struct kl_occurrence *o;
    uint32_t n = detect(&a, p, t, 0, &o);
    ASSERT_EQ_INT(n, 1);
    if (n == 1) {
        ASSERT_EQ_INT(o->node, 1);
        ASSERT_EQ_U64(o->duration_ns, MS(20));
        ASSERT_EQ_SLICE(o->stack[0].function, "a");
    }
    kl_arena_release(&a);
}

/* Type-0 categories are dropped unless asked for. */
static void test_untyped(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {{"CFReadStreamRead", "CoreFoundation", 0, 0, MS(20), 5, true}};
    struct tthread th = {"259", true, nodes, 1};
    struct kl_calltree *t = mk_tree(&a, &th, 1, MS(100));
    struct kl_profile *p = mk_profile(&a, "cocoa");
    struct kl_occurrence *o;
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);
    ASSERT_TRUE(o == NULL);
    ASSERT_EQ_INT(detect(&a, p, t, KL_OCC_KEEP_UNTYPED, &o), 1);
    ASSERT_EQ_INT(o->type, 0);
    ASSERT_EQ_STR(o->category, "file_read");
    ASSERT_EQ_STR(o->title, "File I/O on Main Thread");
    kl_arena_release(&a);
}

/* node: node:fs *Sync on the active thread with >= 1 sample and any duration;
 * addSourceContext* (package "") on every thread from 100 ms. */
static void test_node(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn main_nodes[] = {
        {"handler", "app", 0, 0, MS(300), 30, false},
        {"readFileSync", "node:fs", 1, 0, 0, 1, true},     /* zero duration still counts */
        {"statSync", "node:fs", 1, MS(1), MS(2), 0, true}, /* no sample: too few */
    };
    struct tn worker_nodes[] = {
        {"writeFileSync", "node:fs", 0, 0, MS(50), 5, true}, /* not the active thread */
        {"addSourceContext", "", 0, MS(50), MS(150) - 1, 5, false},
        {"addSourceContextToFrames", "", 0, MS(150), MS(250), 5, false},
    };
    struct tthread th[] = {{"259", true, main_nodes, 3}, {"260", false, worker_nodes, 3}};
    struct kl_calltree *t = mk_tree(&a, th, 2, MS(300));
    struct kl_profile *p = mk_profile(&a, "node");
    p->project_id = 42;
    struct kl_occurrence *o;
    uint32_t n = detect(&a, p, t, KL_OCC_KEEP_UNTYPED, &o);
    ASSERT_EQ_INT(n, 2);
    if (n == 2) {
        ASSERT_EQ_SLICE(o[0].subtitle, "readFileSync");
        ASSERT_EQ_STR(o[0].category, "file_read");
        /* "42File I/O on Main Thread0node:fsreadFileSync" */
        ASSERT_EQ_STR(o[0].fingerprint, "b1faf1106f978031e13be07312b1d99f");
        ASSERT_EQ_SLICE(o[1].subtitle, "addSourceContextToFrames");
        ASSERT_EQ_STR(o[1].category, "source_context");
        ASSERT_EQ_STR(o[1].title, "Adding Source Context is slow");
        ASSERT_EQ_INT(o[1].thread, 1);
    }
    /* both are type 0: nothing by default */
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);
    kl_arena_release(&a);
}

#define GSON_FROM                                                                                  \
    "com.google.gson.Gson.fromJson(java.lang.String, java.lang.Class): java.lang.Object"
#define GSON_SHORT "Gson.fromJson(java.lang.String, java.lang.Class): java.lang.Object"

static struct kl_profile *mk_android(struct kl_arena *a)
{
    struct kl_profile *p = mk_profile(a, "android");
    p->kind = KL_KIND_ANDROID;
    p->data.threads.len = 0;
    return p;
}

/* android: active thread, >= 40 ms, >= 1 sample; names matched before '(' and reported
 * without the "package." prefix */
static void test_android(void)
{
    static const struct {
        uint64_t dur_ns;
        uint32_t samples;
        bool active;
        uint32_t want;
    } cases[] = {
        {MS(40) - 1, 1, true, 0}, {MS(40), 1, true, 1}, {MS(40) + 1, 1, true, 1},
        {MS(40), 0, true, 0},     {MS(40), 2, true, 1}, {MS(40), 1, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_arena a;
        kl_arena_init(&a);
        struct tn nodes[] = {
            {"com.example.MainActivity.onCreate(android.os.Bundle): void", "com.example", 0, 0,
             MS(100), 10, false},
            {GSON_FROM, "com.google.gson", 1, 0, cases[i].dur_ns, cases[i].samples, true},
        };
        struct tthread th = {"1", cases[i].active, nodes, 2};
        struct kl_calltree *t = mk_tree(&a, &th, 1, MS(100));
        struct kl_profile *p = mk_android(&a);
        struct kl_occurrence *o;
        uint32_t n = detect(&a, p, t, 0, &o);
        ASSERT_EQ_INT(n, cases[i].want);
        if (n == 1 && i == 1) {
            ASSERT_EQ_INT(o->type, 2003);
            ASSERT_EQ_SLICE(o->subtitle, GSON_SHORT);
            ASSERT_EQ_SLICE(o->frame_name, GSON_SHORT);
            ASSERT_EQ_SLICE(o->frame_package, "com.google.gson");
            ASSERT_EQ_SLICE(o->frame_module, "");
            /* "1JSON Decoding on Main Thread2003com.google.gsonGson.fromJson(
             *  java.lang.String, java.lang.Class): java.lang.Object" (no line break) */
            ASSERT_EQ_STR(o->fingerprint, "f9347c2a6993f27fee919afe8235c558");
            ASSERT_EQ_SLICE(o->stack[0].function, "MainActivity.onCreate(android.os.Bundle): void");
            ASSERT_EQ_SLICE(o->stack[1].function, GSON_SHORT);
            ASSERT_EQ_SLICE(o->evidence_display[2].value, "40ms (40.00% of the profile)");
            ASSERT_TRUE(o->evidence_sample_count);

            struct kl_buf b;
            kl_buf_init(&b, 1 << 20);
            ASSERT_EQ_INT(kl_occurrence_write_json(o, p, &b), 0);
            ASSERT_TRUE(strstr(b.ptr, "\"platform\":\"java\"") != NULL);
            ASSERT_TRUE(strstr(b.ptr, "\"sample_count\":null") == NULL);
            ASSERT_TRUE(strstr(b.ptr, "\"fingerprint\":[\"f9347c2a6993f27fee919afe8235c558\"]"));
            kl_buf_release(&b);
        }
        kl_arena_release(&a);
    }
}

/* A frozen frame ending at 700 ms that lasted 100 ms: margin max(5 ms, 10 ms) = 10 ms,
 * window [590, 710] ms, start limit 610 ms, minimum duration 50 ms. */
static struct kl_mvalue g_drop = {MS(700), 0, 100e6};

static struct kl_profile *mk_drop_profile(struct kl_arena *a, struct kl_mvalue *v, size_t n)
{
    struct kl_profile *p = mk_profile(a, "cocoa");
    struct kl_measurement *m = kl_arena_calloc(a, 2, sizeof *m);
    m[0].name = KL_STR("frame_renders");
    m[1] = (struct kl_measurement){KL_STR("frozen_frame_renders"), KL_STR("nanosecond"), v, n};
    p->measurements.items = m;
    p->measurements.len = p->measurements.cap = 2;
    return p;
}

/* The cause's name for one single-thread tree, or "" when none. */
static const char *drop_cause_of(const struct tn *nodes, uint32_t n, struct kl_occurrence *keep)
{
    static char name[64];
    struct kl_arena a;
    kl_arena_init(&a);
    struct tthread th = {"259", true, nodes, n};
    struct kl_calltree *t = mk_tree(&a, &th, 1, MS(1000));
    struct kl_profile *p = mk_drop_profile(&a, &g_drop, 1);
    struct kl_occurrence *o;
    uint32_t k = detect(&a, p, t, 0, &o);
    name[0] = '\0';
    if (k == 1) {
        snprintf(name, sizeof name, "%.*s", (int)o->subtitle.len, o->subtitle.ptr);
        if (keep)
            *keep = *o;
    }
    kl_arena_release(&a);
    return name;
}

static void test_frame_drop_window(void)
{
    static const struct {
        uint64_t start_ns, end_ns;
        bool ok;
    } cases[] = {
        {MS(590), MS(700), true}, {MS(590) - 1, MS(700), false}, /* starts before */
        {MS(610), MS(700), true}, {MS(610) + 1, MS(700), false}, /* after start limit */
        {MS(600), MS(710), true}, {MS(600), MS(710) + 1, false}, /* ends after */
        {MS(600), MS(650), true}, {MS(600), MS(650) - 1, false}, /* shorter than 50 % */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tn nodes[] = {
            {"main", "MyApp", 0, 0, MS(1000), 100, false}, /* too long */
            {"render", "MyApp", 1, cases[i].start_ns, cases[i].end_ns, 10, false},
        };
        ASSERT_EQ_STR(drop_cause_of(nodes, 2, NULL), cases[i].ok ? "render" : "");
    }
    /* system code and unnamed frames are never the cause */
    struct tn sys[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                       {"render", "UIKit", 1, MS(600), MS(700), 10, true},
                       {NULL, "MyApp", 1, MS(600), MS(700), 10, false}};
    ASSERT_EQ_STR(drop_cause_of(sys, 3, NULL), "");
}

static void test_frame_drop_choice(void)
{
    struct kl_occurrence o;
    /* a longer parent beats its child */
    struct tn longer_parent[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                                 {"render", "MyApp", 1, MS(595), MS(705), 11, false},
                                 {"layout", "MyApp", 2, MS(600), MS(700), 10, false}};
    ASSERT_EQ_STR(drop_cause_of(longer_parent, 3, &o), "render");
    /* "1Frame Drop2009MyApprender" */
    ASSERT_EQ_STR(o.fingerprint, "be23f3ca19bcd4147fe9115fa0fd6780");
    ASSERT_EQ_INT(o.type, 2009);
    ASSERT_EQ_STR(o.title, "Frame Drop");
    ASSERT_EQ_INT(o.n_evidence_display, 2);
    ASSERT_TRUE(!o.evidence_sample_count);
    ASSERT_EQ_INT(o.n_stack, 2);
    /* a child as long as its parent wins */
    struct tn equal_child[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                               {"render", "MyApp", 1, MS(600), MS(700), 10, false},
                               {"layout", "MyApp", 2, MS(600), MS(700), 10, false}};
    ASSERT_EQ_STR(drop_cause_of(equal_child, 3, NULL), "layout");
    /* among siblings' answers the longer wins, on a tie the deeper one */
    struct tn siblings[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                            {"x", "MyApp", 1, MS(600), MS(680), 8, false},
                            {"wrap", "UIKit", 1, MS(680), MS(770), 9, true},
                            {"z", "MyApp", 2, MS(600), MS(680), 8, false}};
    ASSERT_EQ_STR(drop_cause_of(siblings, 4, NULL), "z");
    struct tn longer_first[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                                {"x", "MyApp", 1, MS(600), MS(690), 9, false},
                                {"wrap", "UIKit", 1, MS(690), MS(770), 9, true},
                                {"z", "MyApp", 2, MS(600), MS(680), 8, false}};
    ASSERT_EQ_STR(drop_cause_of(longer_first, 4, NULL), "x");
    /* same length, same depth: the first */
    struct tn same[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                        {"x", "MyApp", 1, MS(600), MS(680), 8, false},
                        {"y", "MyApp", 1, MS(600), MS(680), 8, false}};
    ASSERT_EQ_STR(drop_cause_of(same, 3, NULL), "x");
}

/* >= 80 % unnamed frames on the cause's stack: skipped, and the next root is tried */
static void test_frame_drop_unnamed(void)
{
    /* 5 frames, 4 unnamed: 4 >= 5 * 0.8 -> skip root 1; root 2 gives "second" */
    struct tn skip[] = {{NULL, "a", 0, 0, MS(1000), 100, true},
                        {NULL, "a", 1, 0, MS(1000), 100, true},
                        {NULL, "a", 2, 0, MS(1000), 100, true},
                        {NULL, "a", 3, 0, MS(1000), 100, true},
                        {"first", "MyApp", 4, MS(600), MS(700), 10, false},
                        {"second", "MyApp", 0, MS(600), MS(700), 10, false}};
    ASSERT_EQ_STR(drop_cause_of(skip, 6, NULL), "second");
    ASSERT_EQ_STR(drop_cause_of(skip, 5, NULL), "");
    /* 4 frames, 3 unnamed: 3 < 4 * 0.8 -> kept */
    struct tn keep[] = {{NULL, "a", 0, 0, MS(1000), 100, true},
                        {NULL, "a", 1, 0, MS(1000), 100, true},
                        {NULL, "a", 2, 0, MS(1000), 100, true},
                        {"first", "MyApp", 3, MS(600), MS(700), 10, false}};
    ASSERT_EQ_STR(drop_cause_of(keep, 4, NULL), "first");
}

/* window start clamps at 0; one finding per measurement value; only the active thread */
static void test_frame_drop_values(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {{"main", "MyApp", 0, 0, MS(1000), 100, false},
                         {"early", "MyApp", 1, 0, MS(60), 6, false},
                         {"late", "MyApp", 1, MS(600), MS(700), 10, false}};
    struct tn other[] = {{"bg", "MyApp", 0, MS(600), MS(700), 10, false}};
    struct tthread th[] = {{"260", false, other, 1}, {"259", true, nodes, 3}};
    struct kl_calltree *t = mk_tree(&a, th, 2, MS(1000));
    /* end 50 ms, 100 ms long: start max(0, 50 - 100 - 10) = 0, limit 20 ms, end 60 ms */
    struct kl_mvalue v[] = {{MS(50), 0, 100e6}, {MS(700), 0, 100e6}};
    struct kl_profile *p = mk_drop_profile(&a, v, 2);
    struct kl_occurrence *o;
    uint32_t n = detect(&a, p, t, 0, &o);
    ASSERT_EQ_INT(n, 2);
    if (n == 2) {
        ASSERT_EQ_SLICE(o[0].subtitle, "early");
        ASSERT_EQ_SLICE(o[1].subtitle, "late");
        ASSERT_EQ_INT(o[1].thread, 1);
    }
    kl_arena_release(&a);
}

/* Only sampled transaction profiles; the JSON has Sentry's shape. */
static void test_gates_and_json(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[] = {{JSON_READ, "Foundation", 0, 0, MS(50), 10, true}};
    struct tthread th = {"259", true, nodes, 1};
    struct kl_calltree *t = mk_tree(&a, &th, 1, MS(100));
    struct kl_profile *p = mk_profile(&a, "cocoa");
    struct kl_occurrence *o;
    p->sampled = false;
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);
    p->sampled = true;
    p->kind = KL_KIND_SAMPLE_V2;
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 0);
    p->kind = KL_KIND_SAMPLE_V1;
    ASSERT_EQ_INT(detect(&a, p, t, 0, &o), 1);

    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    ASSERT_EQ_INT(kl_occurrence_write_json(o, p, &b), 0);
    static const char *want[] = {
        "\"culprit\":\"tx\"",
        "\"payload_type\":\"occurrence\"",
        "\"type\":2003",
        "\"level\":\"info\"",
        "\"resource_id\":null",
        "\"issue_title\":\"JSON Decoding on Main Thread\"",
        "\"fingerprint\":[\"17fcec8e924187bc32760e00a447000e\"]",
        "\"platform\":\"cocoa\"",
        "\"received\":\"2023-11-14T22:13:20Z\"",
        "\"debug_meta\":{}",
        "\"release\":null",
        "\"template_name\":\"profile\"",
        "\"sample_count\":null",
        "\"profile_id\":\"0123456789abcdef0123456789abcdef\"",
        "{\"name\":\"Duration\",\"value\":\"50ms (50.00% of the profile, found in 10 "
        "samples)\",\"important\":false}",
        "\"category\":\"json_decode\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(b.ptr, want[i]))
            KL_FAIL_("missing %s in %s", want[i], b.ptr);
    char *doc = kl_arena_calloc(&a, b.len + KL_PADDING, 1);
    memcpy(doc, b.ptr, b.len);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_json_validate(doc, b.len, KL_R_INTERNAL, &err), 0);
    kl_buf_release(&b);
    kl_arena_release(&a);
}

int main(void)
{
    KL_RUN(test_md5);
    KL_RUN(test_fmt_duration);
    KL_RUN(test_cocoa_thresholds);
    KL_RUN(test_cocoa_main_thread_only);
    KL_RUN(test_deepest_match);
    KL_RUN(test_one_per_key);
    KL_RUN(test_untyped);
    KL_RUN(test_node);
    KL_RUN(test_android);
    KL_RUN(test_frame_drop_window);
    KL_RUN(test_frame_drop_choice);
    KL_RUN(test_frame_drop_unnamed);
    KL_RUN(test_frame_drop_values);
    KL_RUN(test_gates_and_json);
    KL_TEST_DONE();
}
