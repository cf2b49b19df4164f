/* test_flamegraph.c - flamegraph aggregation, writers and diffs on hand-built call trees
 *
 * Trees are written by hand as struct kl_calltree values (times in ms below, ns in the
 * trees). Expected numbers are computed by hand in the comments next to each check.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/flamegraph.h"
#include "kl_test.h"

#define MS 1000000ull

struct tn {
    uint32_t frame, depth;
    uint64_t s_ms, e_ms;
    uint32_t sc;
};

static const char *const NAMES[] = {"main", "a", "b", "c", "idle"};

/* One tree; frames are NAMES (package "app", application + aggregatable, fingerprint i + 1).
 * Threads: nodes [0, split) inactive thread "1" (if split > 0), [split, nn) active "2". */
static struct kl_calltree *mk(struct kl_arena *a, const struct tn *nodes, uint32_t nn,
                              uint32_t split)
{
    struct kl_calltree *t = kl_arena_calloc(a, 1, sizeof *t);
    t->n_frames = 5;
    t->frames = kl_arena_calloc(a, 5, sizeof *t->frames);
    for (uint32_t i = 0; i < 5; i++) {
        t->frames[i].name = kl_str_c(NAMES[i]);
        t->frames[i].package = KL_STR("app");
        t->frames[i].path = KL_STR("/src/app.py");
        t->frames[i].line = 10 + i;
        t->frames[i].flags = KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE;
        t->frames[i].fingerprint = i + 1;
    }
    t->n_nodes = nn;
    t->nodes = kl_arena_calloc(a, nn, sizeof *t->nodes);
    for (uint32_t i = 0; i < nn; i++)
        t->nodes[i] = (struct kl_cnode){nodes[i].frame, nodes[i].depth, nodes[i].s_ms * MS,
                                        nodes[i].e_ms * MS, nodes[i].sc};
    t->n_threads = split ? 2 : 1;
    t->threads = kl_arena_calloc(a, 2, sizeof *t->threads);
    uint32_t k = 0;
    if (split)
        t->threads[k++] = (struct kl_cthread){KL_STR("1"), KL_STR("worker"), 0, split, false};
    t->threads[k] = (struct kl_cthread){KL_STR("2"), KL_STR("main"), split, nn - split, true};
    return t;
}

/* T1: main[0,100) 10 > a[0,60) 6 > b[0,40) 4 ; main > c[60,90) 3 */
static const struct tn T1[] = {
    {0, 0, 0, 100, 10}, {1, 1, 0, 60, 6}, {2, 2, 0, 40, 4}, {3, 1, 60, 90, 3}};
/* T2: main[0,50) 5 > a[0,30) 3 > c[0,10) 1 ; main > b[30,50) 2 */
static const struct tn T2[] = {
    {0, 0, 0, 50, 5}, {1, 1, 0, 30, 3}, {3, 2, 0, 10, 1}, {2, 1, 30, 50, 2}};
/* T3: inactive thread idle[0,10) 1; active main[0,20) 2 > a[0,20) 2 */
static const struct tn T3[] = {{4, 0, 0, 10, 1}, {0, 0, 0, 20, 2}, {1, 1, 0, 20, 2}};

static struct kl_fg_example ex_profile(const char *id)
{
    return (struct kl_fg_example){.project_id = 7,
                                  .profile_id = kl_str_c(id),
                                  .start_ns = 1700000000000000000LL,
                                  .end_ns = 1700000001500000000LL};
}

static void add3(struct kl_flamegraph *fg, struct kl_arena *a, int which_mask)
{
    static const char *const ids[] = {"p1", "p2", "p3"};
    const struct tn *ts[] = {T1, T2, T3};
    const uint32_t ns[] = {4, 4, 3}, splits[] = {0, 0, 1};
    for (int i = 0; i < 3; i++) {
        if (!(which_mask & (1 << i)))
            continue;
        struct kl_fg_example ex = ex_profile(ids[i]);
        struct kl_fg_add how = {.threads = KL_CALLTREE_ACTIVE, .example = &ex};
        struct kl_err err = KL_ERR_INIT;
        ASSERT_EQ_INT(kl_flamegraph_add(fg, mk(a, ts[i], ns[i], splits[i]), &how, &err), 0);
    }
}

static uint32_t find(struct kl_flamegraph *fg, const char *p0, const char *p1, const char *p2)
{
    const char *path[3] = {p0, p1, p2};
    uint32_t n = p2 ? 3 : p1 ? 2 : 1;
    return kl_flamegraph_find(fg, path, n, "app");
}

static char *render(int kind, struct kl_flamegraph *fg, int arg)
{
    struct kl_buf b;
    kl_buf_init(&b, 1 << 24);
    struct kl_err err = KL_ERR_INIT;
    int rc;
    if (kind == 0) {
        struct kl_fg_speedscope_opts o = {.max_samples = (uint32_t)arg, .metrics = true};
        rc = kl_flamegraph_write_speedscope(fg, &o, &b, &err);
    } else if (kind == 1) {
        rc = kl_flamegraph_write_collapsed(fg, (enum kl_fg_weight)arg, &b, &err);
    } else {
        struct kl_fg_svg_opts o = {.title = "Flame <test>", .weight = KL_FG_WEIGHT_SAMPLES};
        rc = kl_flamegraph_write_svg(fg, &o, &b, &err);
    }
    ASSERT_EQ_INT(rc, 0);
    size_t len;
    return kl_buf_detach(&b, &len);
}

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            KL_FAIL_("missing %s in %.2000s", (needle), (hay));                                    \
    } while (0)

static void test_merge_counts(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(&(struct kl_fg_options){.metrics = true});
    add3(fg, &a, 7);
    ASSERT_EQ_INT(kl_flamegraph_n_nodes(fg), 6);
    ASSERT_EQ_INT(kl_flamegraph_n_examples(fg), 3);
    ASSERT_EQ_INT(find(fg, "idle", NULL, NULL), KL_FG_ROOT); /* inactive thread left out */
    struct {
        const char *p0, *p1, *p2;
        uint64_t occ, samples, dur_ms, self_ms;
        uint32_t n_ex, ex[3];
    } rows[] = {
        /* main: 3 trees, 10+5+2, 100+50+20, self 10+0+0; only T1 has samples ending here */
        {"main", NULL, NULL, 3, 17, 170, 10, 1, {0}},
        /* a: 6+3+2, 60+30+20, self 20+20+20; every tree ends samples in a */
        {"main", "a", NULL, 3, 11, 110, 60, 3, {0, 1, 2}},
        {"main", "a", "b", 1, 4, 40, 40, 1, {0}},
        {"main", "a", "c", 1, 1, 10, 10, 1, {1}},
        {"main", "c", NULL, 1, 3, 30, 30, 1, {0}},
        {"main", "b", NULL, 1, 2, 20, 20, 1, {1}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint32_t id = find(fg, rows[i].p0, rows[i].p1, rows[i].p2);
        ASSERT_TRUE(id != KL_FG_ROOT);
        if (id == KL_FG_ROOT)
            continue;
        struct kl_fg_node n;
        kl_flamegraph_node(fg, id, &n);
        ASSERT_EQ_U64(n.occurrences, rows[i].occ);
        ASSERT_EQ_U64(n.sample_count, rows[i].samples);
        ASSERT_EQ_U64(n.duration_ns, rows[i].dur_ms * MS);
        ASSERT_EQ_U64(n.self_ns, rows[i].self_ms * MS);
        ASSERT_EQ_INT(n.n_examples, rows[i].n_ex);
        for (uint32_t j = 0; j < rows[i].n_ex; j++)
            ASSERT_EQ_INT(kl_flamegraph_node_example(fg, id, j), rows[i].ex[j]);
    }
    /* frame infos: main [100,50,20] -> p75 = sorted[ceil(2.25)-1 = 2] = 100;
     * a [60,30,20]; b [40,20] -> index ceil(1.5)-1 = 1 -> 40; c [30,10] -> 30 */
    struct kl_fg_frame_info *fi;
    kl_flamegraph_frame_infos(fg, &a, &fi);
    ASSERT_EQ_INT(kl_flamegraph_n_frames(fg), 4);
    const uint64_t exp[4][6] = {{3, 170, 10, 100, 100, 100},
                                {3, 110, 60, 60, 60, 60},
                                {2, 60, 60, 40, 40, 40},
                                {2, 40, 40, 30, 30, 30}};
    for (uint32_t f = 0; f < 4; f++) {
        ASSERT_TRUE(kl_str_eq_c(kl_flamegraph_frame(fg, f)->name, NAMES[f]));
        ASSERT_EQ_U64(fi[f].count, exp[f][0]);
        ASSERT_EQ_U64(fi[f].weight, exp[f][1] * MS);
        ASSERT_EQ_U64(fi[f].sum_self_ns, exp[f][2] * MS);
        ASSERT_EQ_U64(fi[f].p75_ns, exp[f][3] * MS);
        ASSERT_EQ_U64(fi[f].p95_ns, exp[f][4] * MS);
        ASSERT_EQ_U64(fi[f].p99_ns, exp[f][5] * MS);
    }
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

/* 20 calls of x under r with durations 1..20 ms in shuffled order: nearest rank gives
 * p75 = sorted[ceil(15)-1] = 15, p95 = sorted[ceil(19)-1] = 19, p99 = sorted[ceil(19.8)-1] =
 * 20; a "sys" (system) child is left out of function metrics. */
static void test_percentiles(void)
{
    static const uint32_t d[20] = {7,  3, 20, 1,  15, 9,  12, 2,  19, 5,
                                   18, 4, 11, 16, 6,  14, 8,  17, 10, 13};
    struct kl_arena a;
    kl_arena_init(&a);
    struct tn nodes[22];
    uint64_t t = 0;
    nodes[0] = (struct tn){0, 0, 0, 210 + 5, 21};
    for (int i = 0; i < 20; i++) {
        nodes[1 + i] = (struct tn){1, 1, t, t + d[i], 1};
        t += d[i];
    }
    nodes[21] = (struct tn){2, 1, t, t + 5, 1};
    struct kl_calltree *tr = mk(&a, nodes, 22, 0);
    tr->frames[2].flags = KL_CFRAME_AGGREGATABLE; /* "b" is a system frame here */
    struct kl_flamegraph *fg = kl_flamegraph_new(&(struct kl_fg_options){.metrics = true});
    struct kl_fg_example ex = ex_profile("px");
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_flamegraph_add(fg, tr, &(struct kl_fg_add){.example = &ex}, &err), 0);
    struct kl_fg_frame_info *fi;
    kl_flamegraph_frame_infos(fg, &a, &fi);
    ASSERT_EQ_U64(fi[1].count, 20);
    ASSERT_EQ_U64(fi[1].weight, 210 * MS);
    ASSERT_EQ_U64(fi[1].p75_ns, 15 * MS);
    ASSERT_EQ_U64(fi[1].p95_ns, 19 * MS);
    ASSERT_EQ_U64(fi[1].p99_ns, 20 * MS);
    /* function metrics over the self times 1..20 ms: same percentiles, avg 10.5 ms, sum 210,
     * count 20; b is a system function: filtered */
    struct kl_fg_function *fns;
    uint32_t n;
    kl_flamegraph_functions(fg, &a, 0, &fns, &n);
    ASSERT_EQ_INT(n, 1);
    if (n == 1) {
        ASSERT_EQ_SLICE(fns[0].name, "a");
        ASSERT_EQ_U64(fns[0].p75_ns, 15 * MS);
        ASSERT_EQ_U64(fns[0].p95_ns, 19 * MS);
        ASSERT_EQ_U64(fns[0].p99_ns, 20 * MS);
        ASSERT_TRUE(fns[0].avg_ns == 10.5 * MS);
        ASSERT_EQ_U64(fns[0].sum_ns, 210 * MS);
        ASSERT_EQ_U64(fns[0].count, 20);
        ASSERT_EQ_INT(fns[0].worst, 0);
    }
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_function_metrics(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(&(struct kl_fg_options){.metrics = true});
    add3(fg, &a, 7);
    /* per tree (depth >= 1, self = duration - children): T1 a 20 (6 samples), b 40 (4),
     * c 30 (3); T2 a 20 (3), c 10 (1: dropped, <= 1 sample), b 20 (2); T3 a 20 (2).
     * a: [20,20,20] sum 60 count 11; b: [40,20] sum 60 count 6 -> tie, fingerprint 2 < 3;
     * c: [30] sum 30 count 3. */
    struct kl_fg_function *fns;
    uint32_t n;
    kl_flamegraph_functions(fg, &a, 0, &fns, &n);
    ASSERT_EQ_INT(n, 3);
    if (n == 3) {
        ASSERT_EQ_SLICE(fns[0].name, "a");
        ASSERT_EQ_SLICE(fns[1].name, "b");
        ASSERT_EQ_SLICE(fns[2].name, "c");
        ASSERT_EQ_U64(fns[0].sum_ns, 60 * MS);
        ASSERT_EQ_U64(fns[0].count, 11);
        ASSERT_EQ_U64(fns[0].p75_ns, 20 * MS);
        ASSERT_EQ_INT(fns[0].n_examples, 3);
        ASSERT_EQ_INT(fns[0].worst, 0); /* equal sums: the first keeps it */
        ASSERT_EQ_U64(fns[1].sum_ns, 60 * MS);
        ASSERT_EQ_U64(fns[1].count, 6);
        ASSERT_EQ_U64(fns[1].p75_ns, 40 * MS); /* [20,40]: index ceil(1.5)-1 = 1 */
        ASSERT_TRUE(fns[1].avg_ns == 30.0 * MS);
        ASSERT_EQ_INT(fns[1].worst, 0);
        ASSERT_EQ_INT(fns[1].n_examples, 2);
        ASSERT_EQ_U64(fns[2].count, 3);
        ASSERT_EQ_INT(fns[2].n_examples, 1);
        ASSERT_EQ_INT(fns[2].fingerprint, 4);
        ASSERT_TRUE(fns[2].in_app);
    }
    kl_flamegraph_functions(fg, &a, 2, &fns, &n);
    ASSERT_EQ_INT(n, 2);
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

/* functions_per_profile 1: each profile keeps only its best function. T1: b (self 40);
 * T2: a and b tie at 20 -> a (fingerprint 2 < 3); T3: a 20. So a: [20, 20] sum 40, count
 * 3 + 2 = 5, examples p2, p3; b: [40] sum 40, count 4, example p1; c never kept. */
static void test_functions_per_profile(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_fg_options opt = {.metrics = true, .functions_per_profile = 1};
    struct kl_flamegraph *fg = kl_flamegraph_new(&opt);
    add3(fg, &a, 7);
    struct kl_fg_function *fns;
    uint32_t n;
    kl_flamegraph_functions(fg, &a, 0, &fns, &n);
    ASSERT_EQ_INT(n, 2);
    if (n == 2) {
        ASSERT_EQ_SLICE(fns[0].name, "a");
        ASSERT_EQ_U64(fns[0].sum_ns, 40 * MS);
        ASSERT_EQ_U64(fns[0].count, 5);
        ASSERT_EQ_INT(fns[0].n_examples, 2);
        ASSERT_EQ_INT(fns[0].examples[0], 1);
        ASSERT_EQ_INT(fns[0].examples[1], 2);
        ASSERT_EQ_SLICE(fns[1].name, "b");
        ASSERT_EQ_U64(fns[1].sum_ns, 40 * MS);
        ASSERT_EQ_U64(fns[1].count, 4);
        ASSERT_EQ_INT(fns[1].n_examples, 1);
        ASSERT_EQ_INT(fns[1].worst, 0);
    }
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_speedscope(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(&(struct kl_fg_options){.metrics = true});
    add3(fg, &a, 7);
    char *s = render(0, fg, 0);
    /* post-order samples: main/a/b 4, main/a/c 1, main/a 11-5 = 6 (60 ms), main/c 3,
     * main/b 2, main 17-16 = 1 (10 ms); frames main 0, a 1, b 2, c 3 */
    ASSERT_CONTAINS(s, "\"endValue\":17");
    ASSERT_CONTAINS(s, "\"samples\":[[0,1,2],[0,1,3],[0,1],[0,3],[0,2],[0]]");
    ASSERT_CONTAINS(s, "\"samples_examples\":[[0],[1],[0,1,2],[0],[1],[0]]");
    ASSERT_CONTAINS(s, "\"weights\":[4,1,6,3,2,1]");
    ASSERT_CONTAINS(s, "\"sample_counts\":[4,1,6,3,2,1]");
    ASSERT_CONTAINS(s, "\"sample_durations_ns\":[40000000,10000000,60000000,30000000,"
                       "20000000,10000000]");
    ASSERT_CONTAINS(s, "\"type\":\"sampled\",\"unit\":\"count\"");
    ASSERT_CONTAINS(s, "{\"name\":\"main\",\"image\":\"app\",\"path\":\"/src/app.py\","
                       "\"file\":\"app.py\",\"line\":10,\"is_application\":true,"
                       "\"fingerprint\":1}");
    ASSERT_CONTAINS(s, "\"frame_infos\":[{\"count\":3,\"weight\":170000000,\"sumDuration\":"
                       "170000000,\"sumSelfTime\":10000000,\"p75Duration\":100000000,"
                       "\"p95Duration\":100000000,\"p99Duration\":100000000},");
    ASSERT_CONTAINS(s, "\"profiles\":[{\"project_id\":7,\"profile_id\":\"p1\","
                       "\"start\":1700000000.0,\"end\":1700000001.5},");
    ASSERT_CONTAINS(s, "\"metrics\":[{\"name\":\"a\",\"package\":\"app\",\"fingerprint\":2,"
                       "\"in_app\":true,\"p75\":20000000,\"p95\":20000000,\"p99\":20000000,"
                       "\"avg\":20000000.0,\"sum\":60000000,\"count\":11,\"worst\":{");
    free(s);
    /* vroom's cap as an option: the 2 largest (6, then 4) stay, in depth-first order;
     * endValue still counts every sample */
    s = render(0, fg, 2);
    ASSERT_CONTAINS(s, "\"samples\":[[0,1,2],[0,1]]");
    ASSERT_CONTAINS(s, "\"weights\":[4,6]");
    ASSERT_CONTAINS(s, "\"endValue\":17");
    free(s);
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_collapsed(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(NULL);
    add3(fg, &a, 7);
    char *s = render(1, fg, KL_FG_WEIGHT_SAMPLES);
    ASSERT_EQ_STR(s, "main 1\nmain;a 6\nmain;a;b 4\nmain;a;c 1\nmain;c 3\nmain;b 2\n");
    free(s);
    s = render(1, fg, KL_FG_WEIGHT_NS);
    ASSERT_EQ_STR(s, "main 10000000\nmain;a 60000000\nmain;a;b 40000000\nmain;a;c 10000000\n"
                     "main;c 30000000\nmain;b 20000000\n");
    free(s);
    kl_flamegraph_free(fg);
    /* all threads: the inactive thread's "idle" root appears */
    fg = kl_flamegraph_new(NULL);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_flamegraph_add(fg, mk(&a, T3, 3, 1),
                                    &(struct kl_fg_add){.threads = KL_CALLTREE_ALL}, &err),
                  0);
    s = render(1, fg, KL_FG_WEIGHT_SAMPLES);
    ASSERT_EQ_STR(s, "idle 1\nmain;a 2\n");
    free(s);
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_slice(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    /* m[0,100) 10 > a[0,40) 4 ; b[40,80) 4 > c[70,80) 1 ; d[80,100) 2 > e[85,95) 1
     * slice [25,75): m 50 ms -> min(ceil(5), 10) = 5; a 15 ms -> min(2, 4) = 2;
     * b 35 ms -> min(4, 4) = 4; c 5 ms -> 1; d, e outside */
    static const struct tn ch[] = {{0, 0, 0, 100, 10}, {1, 1, 0, 40, 4},   {2, 1, 40, 80, 4},
                                   {3, 2, 70, 80, 1},  {4, 1, 80, 100, 2}, {1, 2, 85, 95, 1}};
    struct kl_calltree *t = mk(&a, ch, 6, 0);
    struct kl_flamegraph *fg = kl_flamegraph_new(NULL);
    struct kl_fg_example ex = {.project_id = 3,
                               .profiler_id = KL_STR("prof"),
                               .chunk_id = KL_STR("chunk"),
                               .start_ns = 25 * MS,
                               .end_ns = 75 * MS};
    struct kl_fg_add how = {.threads = KL_CALLTREE_ALL,
                            .slice = true,
                            .slice_start_ns = 25 * MS,
                            .slice_end_ns = 75 * MS,
                            .example = &ex};
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_flamegraph_add(fg, t, &how, &err), 0);
    ASSERT_EQ_INT(kl_flamegraph_n_nodes(fg), 4);
    uint32_t m = find(fg, "main", NULL, NULL), b = find(fg, "main", "b", NULL);
    struct kl_fg_node n;
    kl_flamegraph_node(fg, m, &n);
    ASSERT_EQ_U64(n.duration_ns, 50 * MS);
    ASSERT_EQ_U64(n.sample_count, 5);
    ASSERT_EQ_U64(n.self_ns, 0);
    ASSERT_EQ_INT(n.n_examples, 0); /* 5 samples, children 2 + 4 */
    kl_flamegraph_node(fg, b, &n);
    ASSERT_EQ_U64(n.duration_ns, 35 * MS);
    ASSERT_EQ_U64(n.sample_count, 4);
    ASSERT_EQ_U64(n.self_ns, 30 * MS);
    ASSERT_EQ_INT(n.n_examples, 1);
    /* chunk example: one per thread, carrying the thread id */
    ASSERT_EQ_INT(kl_flamegraph_n_examples(fg), 1);
    ASSERT_EQ_SLICE(kl_flamegraph_example(fg, 0)->thread_id, "2");
    ASSERT_EQ_SLICE(kl_flamegraph_example(fg, 0)->chunk_id, "chunk");
    char *s = render(1, fg, KL_FG_WEIGHT_SAMPLES);
    ASSERT_EQ_STR(s, "main;a 2\nmain;b 3\nmain;b;c 1\n");
    free(s);
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_merge_equals_sequential(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_fg_options opt = {.metrics = true};
    struct kl_flamegraph *one = kl_flamegraph_new(&opt), *x = kl_flamegraph_new(&opt),
                         *y = kl_flamegraph_new(&opt);
    add3(one, &a, 7);
    add3(x, &a, 1);
    add3(y, &a, 6);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_flamegraph_merge(x, y, &err), 0);
    for (int kind = 0; kind < 3; kind++) {
        for (int w = 0; w < 2; w++) {
            char *s1 = render(kind, one, kind == 0 ? 0 : w);
            char *s2 = render(kind, x, kind == 0 ? 0 : w);
            ASSERT_EQ_STR(s1, s2);
            free(s1);
            free(s2);
        }
    }
    kl_flamegraph_free(one);
    kl_flamegraph_free(x);
    kl_flamegraph_free(y);
    kl_arena_release(&a);
}

/* Paths new to a non-empty accumulator, each called twice in one tree (kl_flamegraph_add
 * creates a new path once per tree, in pre-order, however many calls share it):
 *   R: main[0,100) 10 > idle[0,30) 3 > c[0,10) 1 ; main > idle[40,70) 3 > c[40,60) 2 ;
 *      root b[100,120) 2 > c[100,110) 1 ; root b[130,140) 1 > c[130,140) 1
 * after T1 (main, main/a, main/a/b, main/c = ids 0..3): main/idle 4, main/idle/c 5, b 6,
 * b/c 7. main: 2 calls, 10+10 samples, 100+100 ms, self (100-60-30)+(100-30-30) = 50;
 * main/idle: 2, 3+3, 30+30, self (30-10)+(30-20) = 30; main/idle/c: 2, 1+2, 10+20;
 * b: 2, 2+1, 20+10, self 10+0; b/c: 2, 1+1, 10+10. The same trees merged from two
 * accumulators (no resolving: each add goes into an empty one) give the same output. */
static void test_new_paths_twice(void)
{
    static const struct tn R[] = {{0, 0, 0, 100, 10},  {4, 1, 0, 30, 3},    {3, 2, 0, 10, 1},
                                  {4, 1, 40, 70, 3},   {3, 2, 40, 60, 2},   {2, 0, 100, 120, 2},
                                  {3, 1, 100, 110, 1}, {2, 0, 130, 140, 1}, {3, 1, 130, 140, 1}};
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_fg_options opt = {.metrics = true};
    struct kl_flamegraph *fg = kl_flamegraph_new(&opt), *x = kl_flamegraph_new(&opt),
                         *y = kl_flamegraph_new(&opt);
    struct kl_err err = KL_ERR_INIT;
    struct kl_fg_example e1 = ex_profile("p1"), e2 = ex_profile("r");
    ASSERT_EQ_INT(
        kl_flamegraph_add(fg, mk(&a, T1, 4, 0), &(struct kl_fg_add){.example = &e1}, &err), 0);
    ASSERT_EQ_INT(kl_flamegraph_add(fg, mk(&a, R, 9, 0), &(struct kl_fg_add){.example = &e2}, &err),
                  0);
    ASSERT_EQ_INT(kl_flamegraph_n_nodes(fg), 8);
    struct {
        const char *p0, *p1, *p2;
        uint32_t id;
        uint64_t occ, samples, dur_ms, self_ms;
    } rows[] = {
        {"main", NULL, NULL, 0, 2, 20, 200, 50}, {"main", "idle", NULL, 4, 2, 6, 60, 30},
        {"main", "idle", "c", 5, 2, 3, 30, 30},  {"b", NULL, NULL, 6, 2, 3, 30, 10},
        {"b", "c", NULL, 7, 2, 2, 20, 20},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint32_t id = find(fg, rows[i].p0, rows[i].p1, rows[i].p2);
        ASSERT_EQ_INT(id, rows[i].id);
        if (id == KL_FG_ROOT)
            continue;
        struct kl_fg_node n;
        kl_flamegraph_node(fg, id, &n);
        ASSERT_EQ_U64(n.occurrences, rows[i].occ);
        ASSERT_EQ_U64(n.sample_count, rows[i].samples);
        ASSERT_EQ_U64(n.duration_ns, rows[i].dur_ms * MS);
        ASSERT_EQ_U64(n.self_ns, rows[i].self_ms * MS);
    }
    ASSERT_EQ_INT(kl_flamegraph_add(x, mk(&a, T1, 4, 0), &(struct kl_fg_add){.example = &e1}, &err),
                  0);
    ASSERT_EQ_INT(kl_flamegraph_add(y, mk(&a, R, 9, 0), &(struct kl_fg_add){.example = &e2}, &err),
                  0);
    ASSERT_EQ_INT(kl_flamegraph_merge(x, y, &err), 0);
    for (int kind = 0; kind < 3; kind++) {
        char *s1 = render(kind, fg, 0), *s2 = render(kind, x, 0);
        ASSERT_EQ_STR(s1, s2);
        free(s1);
        free(s2);
    }
    kl_flamegraph_free(fg);
    kl_flamegraph_free(x);
    kl_flamegraph_free(y);
    kl_arena_release(&a);
}

static void test_diff(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fa = kl_flamegraph_new(NULL), *fb = kl_flamegraph_new(NULL);
    add3(fa, &a, 1);
    add3(fb, &a, 2);
    struct kl_fg_diff *d = kl_fg_diff_new(fa, fb, KL_FG_WEIGHT_SAMPLES);
    uint64_t ta, tb;
    kl_fg_diff_totals(d, &ta, &tb);
    ASSERT_EQ_U64(ta, 10);
    ASSERT_EQ_U64(tb, 5);
    ASSERT_EQ_INT(kl_fg_diff_n_nodes(d), 6);
    /* union ids: A's main, main/a, main/a/b, main/c, then B's main/a/c, main/b */
    struct kl_fg_diff_node x;
    kl_fg_diff_node(d, 1, &x); /* main/a: 6 vs 3, both 60% of their totals */
    ASSERT_EQ_SLICE(x.name, "a");
    ASSERT_EQ_U64(x.a, 6);
    ASSERT_EQ_U64(x.b, 3);
    ASSERT_EQ_INT(x.diff, -3);
    ASSERT_TRUE(x.rel_change == 0.0);
    kl_fg_diff_node(d, 2, &x); /* main/a/b: 4 vs 0 */
    ASSERT_EQ_INT(x.diff, -4);
    ASSERT_TRUE(x.share_a == 0.4 && x.share_b == 0 && x.rel_change == -1.0);
    kl_fg_diff_node(d, 5, &x); /* main/b: new in B, 2 of 5 */
    ASSERT_EQ_SLICE(x.name, "b");
    ASSERT_EQ_U64(x.a, 0);
    ASSERT_EQ_U64(x.b, 2);
    ASSERT_TRUE(x.share_b == 0.4 && x.rel_change != x.rel_change);

    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_fg_diff_write_collapsed(d, &b, &err), 0);
    ASSERT_EQ_STR(b.ptr, "main 1 0\nmain;a 2 2\nmain;a;b 4 0\nmain;a;c 0 1\nmain;c 3 0\n"
                         "main;b 0 2\n");
    kl_buf_reset(&b);
    ASSERT_EQ_INT(kl_fg_diff_write_json(d, &b, &err), 0);
    ASSERT_CONTAINS(b.ptr, "\"unit\":\"count\",\"total_a\":10,\"total_b\":5");
    ASSERT_CONTAINS(b.ptr, "{\"frame\":2,\"parent\":1,\"depth\":2,\"a\":4,\"b\":0,\"self_a\":4,"
                           "\"self_b\":0,\"diff\":-4,\"share_a\":0.4,\"share_b\":0.0,"
                           "\"rel_change\":-1.0}");
    ASSERT_CONTAINS(b.ptr, "{\"frame\":3,\"parent\":1,\"depth\":2,\"a\":0,\"b\":1,\"self_a\":0,"
                           "\"self_b\":1,\"diff\":1,\"share_a\":0.0,\"share_b\":0.2,"
                           "\"rel_change\":null}");
    kl_buf_reset(&b);
    ASSERT_EQ_INT(kl_fg_diff_write_svg(d, NULL, false, &b, &err), 0);
    ASSERT_CONTAINS(b.ptr, "fill=\"rgb(250,250,250)\""); /* main/a: same share -> white */
    ASSERT_CONTAINS(b.ptr, "fill=\"rgb(255,40,40)\"");   /* main/b: new -> full red */
    ASSERT_CONTAINS(b.ptr, "change new");
    kl_buf_release(&b);
    kl_fg_diff_free(d);
    kl_flamegraph_free(fa);
    kl_flamegraph_free(fb);
    kl_arena_release(&a);
}

/* Loose XML check: one <svg>, tags balanced (CDATA, comments and <?...?> skipped). */
static bool xml_balanced(const char *s, int *n_svg)
{
    const char *stack[256];
    size_t lens[256];
    int sp = 0;
    *n_svg = 0;
    for (const char *p = s; (p = strchr(p, '<')) != NULL;) {
        if (!strncmp(p, "<![CDATA[", 9)) {
            p = strstr(p, "]]>");
            if (!p)
                return false;
            continue;
        }
        if (!strncmp(p, "<?", 2) || !strncmp(p, "<!--", 4)) {
            p = strchr(p, '>');
            if (!p)
                return false;
            continue;
        }
        const char *end = strchr(p, '>');
        if (!end)
            return false;
        bool closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nl = strcspn(name, " \t\n/>");
        if (closing) {
            if (sp == 0 || lens[sp - 1] != nl || strncmp(stack[sp - 1], name, nl))
                return false;
            sp--;
        } else if (end[-1] != '/') {
            if (sp == 256)
                return false;
            if (nl == 3 && !strncmp(name, "svg", 3))
                (*n_svg)++;
            stack[sp] = name;
            lens[sp++] = nl;
        }
        p = end + 1;
    }
    return sp == 0;
}

static void test_svg(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(NULL);
    add3(fg, &a, 7);
    /* a frame whose name needs escaping */
    static const struct tn odd[] = {{0, 0, 0, 40, 4}, {1, 1, 0, 30, 3}};
    struct kl_calltree *t = mk(&a, odd, 2, 0);
    t->frames[1].name = KL_STR("std::vector<int>::push&\"back\"");
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_flamegraph_add(fg, t, NULL, &err), 0);
    char *s = render(2, fg, 0);
    int n_svg;
    ASSERT_TRUE(xml_balanced(s, &n_svg));
    ASSERT_EQ_INT(n_svg, 1);
    ASSERT_CONTAINS(s, ">Flame &lt;test&gt;</text>");
    for (int i = 0; i < 4; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "data-n=\"%s\"", NAMES[i]);
        ASSERT_CONTAINS(s, needle);
    }
    ASSERT_CONTAINS(s, "data-n=\"std::vector&lt;int&gt;::push&amp;&quot;back&quot;\"");
    ASSERT_CONTAINS(s, "<script");
    ASSERT_CONTAINS(s, "function search()");
    ASSERT_CONTAINS(s, "function zoom(");
    ASSERT_TRUE(!strstr(s, "href=")); /* nothing external */
    /* main spans the full width: 21 samples = 1180 px */
    ASSERT_CONTAINS(s, "<rect x=\"10.00\" y=\"");
    ASSERT_CONTAINS(s, "width=\"1180.00\"");
    free(s);
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

static void test_errors(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_flamegraph *fg = kl_flamegraph_new(NULL);
    static const struct tn bad_depth[] = {{0, 0, 0, 10, 1}, {1, 2, 0, 10, 1}};
    static const struct tn bad_frame[] = {{0, 0, 0, 10, 1}, {9, 1, 0, 10, 1}};
    static const struct tn bad_time[] = {{0, 0, 10, 5, 1}};
    const struct tn *cases[] = {bad_depth, bad_frame, bad_time};
    const uint32_t ns[] = {2, 2, 1};
    for (int i = 0; i < 3; i++) {
        struct kl_err err = KL_ERR_INIT;
        ASSERT_EQ_INT(kl_flamegraph_add(fg, mk(&a, cases[i], ns[i], 0), NULL, &err), -1);
        ASSERT_EQ_INT(err.reason, KL_R_CALLTREE_CORRUPT);
    }
    kl_flamegraph_free(fg);
    kl_arena_release(&a);
}

int main(void)
{
    KL_RUN(test_merge_counts);
    KL_RUN(test_percentiles);
    KL_RUN(test_function_metrics);
    KL_RUN(test_functions_per_profile);
    KL_RUN(test_speedscope);
    KL_RUN(test_collapsed);
    KL_RUN(test_slice);
    KL_RUN(test_merge_equals_sequential);
    KL_RUN(test_new_paths_twice);
    KL_RUN(test_diff);
    KL_RUN(test_svg);
    KL_RUN(test_errors);
    KL_TEST_DONE();
}
