/* test_calltree.c - call trees, self times, function metrics and the binary form
 *
 * Each test builds a small profile by hand (no JSON involved) and compares the tree with
 * values worked out by hand in the comments. Times are plain ns unless a comment says ms.
 * The last test runs every profile of the shared corpus that `kiln process` accepts
 * through the builder and checks structural invariants and the encode/decode round trip.
 * With KL_CALLTREE_SEED_DIR set, the encoded trees are also written there as fuzz seeds.
 */
#include <dirent.h>
#include <stdarg.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "calltree/calltree.h"
#include "pipeline/process.h"
#include "profile/profile.h"

#include "kl_test.h"

#define MS 1000000ULL

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

static void add_sample(struct kl_profile *p, uint64_t ts_ns, uint32_t stack, uint32_t thread)
{
    struct kl_sample s = {0};
    s.ts_ns = ts_ns;
    s.ts_s = (double)ts_ns / 1e9;
    s.stack_id = stack;
    s.thread = thread;
    s.queue = -1;
    kl_vec_push(p->arena, &p->data.samples, s);
}

/* v2: ts_s as sent, ts_ns derived as the parser does */
static void add_sample_v2(struct kl_profile *p, double ts_s, uint32_t stack, uint32_t thread)
{
    struct kl_sample s = {0};
    s.ts_s = ts_s;
    s.ts_ns = (uint64_t)(ts_s * 1e9);
    s.stack_id = stack;
    s.thread = thread;
    s.queue = -1;
    kl_vec_push(p->arena, &p->data.samples, s);
}

static void add_frame(struct kl_profile *p, const char *function, const char *module,
                      const char *platform)
{
    struct kl_frame f = {0};
    f.function = kl_str_c(function);
    f.module = kl_str_c(module);
    f.platform = kl_str_c(platform);
    kl_vec_push(p->arena, &p->data.frames, f);
}

static void add_thread(struct kl_profile *p, const char *id, const char *name)
{
    struct kl_thread t = {0};
    t.id = kl_str_c(id);
    kl_parse_u64(t.id, &t.id_num);
    t.name = kl_str_c(name);
    t.has_metadata = name != NULL;
    kl_vec_push(p->arena, &p->data.threads, t);
}

static struct kl_profile *v1_new(struct kl_arena *a, const char *platform, uint64_t active)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = KL_KIND_SAMPLE_V1;
    p->platform = kl_str_c(platform);
    p->timestamp_ns = 1700000000LL * 1000000000LL;
    p->transaction.present = true;
    p->transaction.active_thread_id = active;
    p->data.present = true;
    return p;
}

struct want_node {
    const char *name;
    uint32_t depth;
    uint64_t start, end;
    uint32_t samples;
};

static void check_nodes(const struct kl_calltree *t, uint32_t thread, const struct want_node *w,
                        uint32_t n)
{
    if (!t || thread >= t->n_threads) {
        KL_FAIL_("no thread %u", thread);
        return;
    }
    const struct kl_cthread *th = &t->threads[thread];
    ASSERT_EQ_U64(th->n_nodes, n);
    for (uint32_t i = 0; i < n && i < th->n_nodes; i++) {
        const struct kl_cnode *nd = &t->nodes[th->first_node + i];
        ASSERT_EQ_SLICE(t->frames[nd->frame].name, w[i].name);
        ASSERT_EQ_U64(nd->depth, w[i].depth);
        ASSERT_EQ_U64(nd->start_ns, w[i].start);
        ASSERT_EQ_U64(nd->end_ns, w[i].end);
        ASSERT_EQ_U64(nd->sample_count, w[i].samples);
    }
}

/* The node of thread th at position i. */
static uint32_t node_at(const struct kl_calltree *t, uint32_t th, uint32_t i)
{
    return t->threads[th].first_node + i;
}

/* ---------------------------------------------------------------------------------- */
/* Sample formats                                                                       */

/* frames a=0, b=1, c=2 (python, module m); stacks leaf first: s0 [b a], s1 [c a], s2 [a].
 * Samples (pushed out of order) at t=0,10,20,30 with stacks s0,s0,s1,s2. The last sample
 * only supplies the end of the one before it, so:
 *   t=0  [a b]: a [0,10) 1, b [0,10) 1
 *   t=10 [a b]: a ends at 10 = t, same frame: a [0,20) 2; b likewise [0,20) 2
 *   t=20 [a c]: a [0,30) 3; b's last child... c is new under a: c [20,30) 1
 *   t=30 [a]:   last sample, no node.
 * Self times: a = 30 - 20 - 10 = 0, b = 20, c = 10. */
static void test_v1_basic(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = v1_new(&a, "python", 1);
    add_frame(p, "a", "m", "python");
    add_frame(p, "b", "m", "python");
    add_frame(p, "c", "m", "python");
    add_stack(p, 2, 1, 0);
    add_stack(p, 2, 2, 0);
    add_stack(p, 1, 0);
    add_thread(p, "1", NULL);
    add_sample(p, 20, 1, 0);
    add_sample(p, 0, 0, 0);
    add_sample(p, 30, 2, 0);
    add_sample(p, 10, 0, 0);

    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t != NULL);
    if (!t)
        goto out;
    ASSERT_EQ_U64(t->n_threads, 1);
    ASSERT_EQ_SLICE(t->threads[0].id, "1");
    ASSERT_TRUE(t->threads[0].active);
    ASSERT_TRUE(!t->android);
    ASSERT_EQ_U64(t->duration_ns, 30);
    ASSERT_EQ_INT(t->start_unix_ns, 1700000000LL * 1000000000LL);
    static const struct want_node w[] = {
        {"a", 0, 0, 30, 3},
        {"b", 1, 0, 20, 2},
        {"c", 1, 20, 30, 1},
    };
    check_nodes(t, 0, w, 3);
    ASSERT_EQ_U64(kl_calltree_self_ns(t, 0), 0);
    ASSERT_EQ_U64(kl_calltree_self_ns(t, 1), 20);
    ASSERT_EQ_U64(kl_calltree_self_ns(t, 2), 10);
    /* three distinct frames, in-app by default (in_app unset) and aggregatable (python) */
    ASSERT_EQ_U64(t->n_frames, 3);
    for (uint32_t i = 0; i < t->n_frames; i++) {
        ASSERT_EQ_U64(t->frames[i].flags, KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE);
        ASSERT_EQ_SLICE(t->frames[i].package, "m");
    }
out:
    kl_arena_release(&a);
}

/* Idle samples: t=0 [a b], t=10 [] (idle), t=20 [a b], t=30 [a].
 *   t=0:  a [0,10) 1, b [0,10) 1
 *   t=10: empty stack, no node (it only ends the sample before)
 *   t=20: the last root a ends at 10 != 20, so a new root: a [20,30) 1, b [20,30) 1
 * Also: a frame with in_app false is a system frame; the same function in two frames with
 * different lines gives two cframes but still one node when the merge key (module,
 * function, address) is equal. */
static void test_v1_idle_gap(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = v1_new(&a, "python", 1);
    add_frame(p, "a", "m", "python");
    add_frame(p, "b", "m", "python");
    p->data.frames.items[1].in_app = KL_FALSE;
    add_stack(p, 2, 1, 0);
    add_stack(p, 0);
    add_stack(p, 1, 0);
    add_thread(p, "1", NULL);
    add_sample(p, 0, 0, 0);
    add_sample(p, 10, 1, 0);
    add_sample(p, 20, 0, 0);
    add_sample(p, 30, 2, 0);
    p->data.samples.items[1].idle = 1;

    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    static const struct want_node w[] = {
        {"a", 0, 0, 10, 1},
        {"b", 1, 0, 10, 1},
        {"a", 0, 20, 30, 1},
        {"b", 1, 20, 30, 1},
    };
    check_nodes(t, 0, w, 4);
    if (t) {
        ASSERT_EQ_U64(t->n_frames, 2);
        ASSERT_EQ_U64(t->frames[t->nodes[1].frame].flags, KL_CFRAME_AGGREGATABLE);
        ASSERT_EQ_U64(t->nodes[0].frame, t->nodes[2].frame); /* deduplicated */
    }
    kl_arena_release(&a);
}

/* Threads: ids 1 (active), 2 "worker", 3 "main" (cocoa main thread), 4 (one sample).
 * Frames x=0, y=1 (cocoa, module M, no symbolicator status -> not aggregatable).
 *   thread 1: t=0 [x], t=5 [x]          -> x [0,5) 1
 *   thread 2: t=1 [y], t=2 [y], t=9 [x] -> y [1,9) 2
 *   thread 3: t=3 [x y]... stack s1 = [y x] (leaf y), t=3, t=7 -> x [3,7) 1, y [3,7) 1
 *   thread 4: one sample, nothing (it would only supply an end time)
 * ACTIVE (cocoa): threads 1 and 3, in profile order. ALL: 1, 2, 3. */
static void test_v1_threads(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = v1_new(&a, "cocoa", 1);
    add_frame(p, "x", "M", "cocoa");
    add_frame(p, "y", "M", "cocoa");
    add_stack(p, 1, 0);
    add_stack(p, 2, 1, 0);
    add_stack(p, 1, 1);
    add_thread(p, "1", NULL);
    add_thread(p, "2", "worker");
    add_thread(p, "3", "main");
    add_thread(p, "4", NULL);
    add_sample(p, 0, 0, 0);
    add_sample(p, 1, 2, 1);
    add_sample(p, 2, 2, 1);
    add_sample(p, 3, 1, 2);
    add_sample(p, 4, 0, 3);
    add_sample(p, 5, 0, 0);
    add_sample(p, 7, 1, 2);
    add_sample(p, 9, 0, 1);

    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 2);
    if (t && t->n_threads == 2) {
        ASSERT_EQ_SLICE(t->threads[0].id, "1");
        ASSERT_EQ_SLICE(t->threads[1].id, "3");
        ASSERT_EQ_SLICE(t->threads[1].name, "main");
        ASSERT_TRUE(t->threads[0].active && t->threads[1].active);
        static const struct want_node w1[] = {{"x", 0, 0, 5, 1}};
        static const struct want_node w3[] = {{"x", 0, 3, 7, 1}, {"y", 1, 3, 7, 1}};
        check_nodes(t, 0, w1, 1);
        check_nodes(t, 1, w3, 2);
        ASSERT_EQ_U64(t->frames[0].flags, KL_CFRAME_APPLICATION); /* cocoa, unsymbolicated */
    }
    t = kl_calltree_build(&a, p, KL_CALLTREE_ALL, &err);
    ASSERT_TRUE(t && t->n_threads == 3);
    if (t && t->n_threads == 3) {
        ASSERT_EQ_SLICE(t->threads[1].id, "2");
        ASSERT_EQ_SLICE(t->threads[1].name, "worker");
        ASSERT_TRUE(!t->threads[1].active);
        static const struct want_node w2[] = {{"y", 0, 1, 9, 2}};
        check_nodes(t, 1, w2, 1);
        ASSERT_EQ_U64(t->duration_ns, 9);
    }
    /* on another platform the "main" thread is not special */
    p->platform = KL_STR("python");
    t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 1);
    kl_arena_release(&a);
}

/* Bad indexes: a stack id past the stacks, a frame id past the frames. The last sample of
 * a thread is not checked (vroomrs only reads its time). */
static void test_v1_bad_index(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = v1_new(&a, "python", 1);
    add_frame(p, "a", "m", "python");
    add_stack(p, 1, 0);
    add_stack(p, 1, 5);
    add_thread(p, "1", NULL);
    add_sample(p, 0, 0, 0);
    add_sample(p, 10, 7, 0); /* last: never read */
    struct kl_err err = KL_ERR_INIT;
    ASSERT_TRUE(kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err) != NULL);
    p->data.samples.items[1].ts_ns = 20;
    add_sample(p, 10, 7, 0);
    ASSERT_TRUE(kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err) == NULL);
    ASSERT_EQ_INT(err.reason, KL_R_CALLTREE_BAD_INDEX);
    kl_err_clear(&err);
    p->data.samples.items[2].stack_id = 1; /* frame 5 of 1 */
    ASSERT_TRUE(kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err) == NULL);
    ASSERT_EQ_INT(err.reason, KL_R_CALLTREE_BAD_INDEX);
    kl_arena_release(&a);
}

/* v2 chunk, two threads, unix-second timestamps exactly representable (x.0 and x.5 at
 * 1.7e9 s; their ns products are exact doubles too). T = 1700000000 s.
 *   thread "1": T+0 [a b], T+0.5 [a b], T+1.0 [a]
 *   thread "2": T+0.5 [c], T+1.5 [c]
 * Times are relative to the first sample (T+0): thread 1: a [0,1e9) 2, b [0,1e9) 2;
 * thread 2: c [5e8,1.5e9) 1. start_unix_ns = T in ns, duration 1.5e9. Both threads are
 * built for ACTIVE (chunks build all); thread "1" is named "main", so it is flagged. */
static void test_v2_chunk(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = kl_profile_new(&a);
    p->kind = KL_KIND_SAMPLE_V2;
    p->platform = KL_STR("python");
    p->data.present = true;
    add_frame(p, "a", "m", "python");
    add_frame(p, "b", "m", "python");
    add_frame(p, "c", "m", "python");
    add_stack(p, 2, 1, 0);
    add_stack(p, 1, 0);
    add_stack(p, 1, 2);
    add_thread(p, "1", "main");
    add_thread(p, "2", NULL);
    const double T = 1700000000.0;
    add_sample_v2(p, T + 1.5, 2, 1);
    add_sample_v2(p, T + 0.5, 0, 0);
    add_sample_v2(p, T + 0.5, 2, 1);
    add_sample_v2(p, T + 1.0, 1, 0);
    add_sample_v2(p, T, 0, 0);

    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 2);
    if (t && t->n_threads == 2) {
        ASSERT_EQ_INT(t->start_unix_ns, 1700000000LL * 1000000000LL);
        ASSERT_EQ_U64(t->duration_ns, 1500000000ULL);
        static const struct want_node w1[] = {{"a", 0, 0, 1000000000ULL, 2},
                                              {"b", 1, 0, 1000000000ULL, 2}};
        static const struct want_node w2[] = {{"c", 0, 500000000ULL, 1500000000ULL, 1}};
        check_nodes(t, 0, w1, 2);
        check_nodes(t, 1, w2, 1);
        ASSERT_TRUE(t->threads[0].active && !t->threads[1].active);
    }
    kl_arena_release(&a);
}

/* ---------------------------------------------------------------------------------- */
/* Android method traces                                                                */

static void add_method(struct kl_profile *p, uint64_t id, const char *cls, const char *name,
                       const char *sig, const char *file)
{
    struct kl_android_method m = {0};
    m.id = id;
    m.class_name = kl_str_c(cls);
    m.name = kl_str_c(name);
    m.signature = kl_str_c(sig);
    m.source_file = kl_str_c(file);
    m.platform = KL_STR("android");
    kl_vec_push(p->arena, &p->android.methods, m);
}

static void add_event(struct kl_profile *p, int action, uint64_t thread, uint64_t method,
                      uint64_t wall_ns)
{
    struct kl_android_event e = {0};
    e.action = (uint8_t)action;
    e.thread_id = thread;
    e.method_id = method;
    e.has_method_id = true;
    e.monotonic = true;
    e.has_wall = true;
    e.wall_ns = wall_ns;
    kl_vec_push(p->arena, &p->android.events, e);
}

static void add_athread(struct kl_profile *p, uint64_t id, const char *name)
{
    struct kl_android_thread t = {id, kl_str_c(name)};
    kl_vec_push(p->arena, &p->android.threads, t);
}

static struct kl_profile *android_new(struct kl_arena *a, enum kl_profile_kind kind)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = kind;
    p->platform = KL_STR("android");
    p->timestamp_ns = 1700000000LL * 1000000000LL;
    p->android.present = true;
    p->android.clock = KL_STR("Dual");
    add_method(p, 1, "com.example.App", "onCreate", "()V", "com/example/App.java");
    add_method(p, 2, "com.example.Util", "<init>", "()V", "Util.java");
    add_method(p, 3, "java.lang.String", "length", "()I", "");
    add_athread(p, 1, "main");
    add_athread(p, 2, "worker");
    return p;
}

#define ENTER KL_ANDROID_ENTER
#define EXIT KL_ANDROID_EXIT
#define UNWIND KL_ANDROID_UNWIND

/* Main thread 1 (times in ms), thread 2 interleaved:
 *    0 enter 1            -> A = App.onCreate opens at 0
 *    5 (thread 2) enter 1, 25 (thread 2) exit 1
 *   10 enter 2            -> U = Util.<init> (named "com.example.Util()V") under A
 *   12 enter 3            -> S = String.length under U
 *   15 exit 3             -> S closes at 15: [12,15) ceil(3/10)=1 sample
 *   30 exit 2             -> U [10,30) 2 samples
 *   40 enter 99 (unknown) -> "unknown.unknown" under A
 *   45 exit 77 (unmatched: 77 is not on the stack) -> closes unknown and A at 45, keeps
 *                            both on the stack (vroomrs truncates nothing then)
 *   50 unwind 99          -> unknown closes again at 50: [40,50) 1 sample; popped
 *   60 exit 1             -> A closes again at 60: [0,60) 6 samples; popped
 *   70 enter 1            -> a second root A at 70, closed at the end at the max time 70:
 *                            [70,70) 0 samples
 * Thread 2 (ALL only): A [5,25) 2 samples. */
static struct kl_profile *android_trace(struct kl_arena *a, enum kl_profile_kind kind)
{
    struct kl_profile *p = android_new(a, kind);
    add_event(p, ENTER, 1, 1, 0);
    add_event(p, ENTER, 2, 1, 5 * MS);
    add_event(p, ENTER, 1, 2, 10 * MS);
    add_event(p, ENTER, 1, 3, 12 * MS);
    add_event(p, EXIT, 1, 3, 15 * MS);
    add_event(p, EXIT, 2, 1, 25 * MS);
    add_event(p, EXIT, 1, 2, 30 * MS);
    add_event(p, ENTER, 1, 99, 40 * MS);
    add_event(p, EXIT, 1, 77, 45 * MS);
    add_event(p, UNWIND, 1, 99, 50 * MS);
    add_event(p, EXIT, 1, 1, 60 * MS);
    add_event(p, ENTER, 1, 1, 70 * MS);
    p->duration_ns = 70 * MS;
    return p;
}

static void test_android_trace(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = android_trace(&a, KL_KIND_ANDROID_CHUNK);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 1 && t->android);
    static const struct want_node w[] = {
        {"com.example.App.onCreate()V", 0, 0, 60 * MS, 6},
        {"com.example.Util()V", 1, 10 * MS, 30 * MS, 2},
        {"java.lang.String.length()I", 2, 12 * MS, 15 * MS, 1},
        {"unknown.unknown", 1, 40 * MS, 50 * MS, 1},
        {"com.example.App.onCreate()V", 0, 70 * MS, 70 * MS, 0},
    };
    check_nodes(t, 0, w, 5);
    if (t && t->n_threads == 1) {
        ASSERT_EQ_SLICE(t->threads[0].id, "1");
        ASSERT_EQ_SLICE(t->threads[0].name, "main");
        ASSERT_TRUE(t->threads[0].active);
        ASSERT_EQ_INT(t->start_unix_ns, 1700000000LL * 1000000000LL);
        const struct kl_cframe *app = &t->frames[t->nodes[node_at(t, 0, 0)].frame];
        const struct kl_cframe *str = &t->frames[t->nodes[node_at(t, 0, 2)].frame];
        const struct kl_cframe *unk = &t->frames[t->nodes[node_at(t, 0, 3)].frame];
        ASSERT_EQ_SLICE(app->package, "com.example");
        ASSERT_EQ_SLICE(app->path, "com/example/App.java");
        ASSERT_EQ_U64(app->flags, KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE);
        ASSERT_EQ_SLICE(str->package, "java.lang");
        ASSERT_TRUE(!kl_str_is_set(str->path));
        ASSERT_EQ_U64(str->flags, KL_CFRAME_AGGREGATABLE); /* java.: system */
        ASSERT_EQ_SLICE(unk->package, "unknown");
        ASSERT_EQ_U64(unk->flags, KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE);
        ASSERT_EQ_U64(t->nodes[0].frame, t->nodes[4].frame);
        /* self: A = 60 - 20 (U) - 10 (unknown) = 30 ms; U = 20 - 3 = 17 ms */
        ASSERT_EQ_U64(kl_calltree_self_ns(t, 0), 30 * MS);
        ASSERT_EQ_U64(kl_calltree_self_ns(t, 1), 17 * MS);
    }
    t = kl_calltree_build(&a, p, KL_CALLTREE_ALL, &err);
    ASSERT_TRUE(t && t->n_threads == 2);
    if (t && t->n_threads == 2) {
        static const struct want_node w2[] = {
            {"com.example.App.onCreate()V", 0, 5 * MS, 25 * MS, 2}};
        check_nodes(t, 1, w2, 1);
        ASSERT_EQ_SLICE(t->threads[1].id, "2");
        ASSERT_EQ_SLICE(t->threads[1].name, "worker");
        ASSERT_TRUE(!t->threads[1].active);
    }
    /* the same trace as a legacy profile: same tree; over 15 s: no tree at all */
    p->kind = KL_KIND_ANDROID;
    t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    check_nodes(t, 0, w, 5);
    p->duration_ns = KL_CALLTREE_ANDROID_MAX_NS;
    t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 1);
    p->duration_ns = KL_CALLTREE_ANDROID_MAX_NS + 1;
    t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_threads == 0 && t->n_nodes == 0);
    kl_arena_release(&a);
}

/* Wall time going backwards (thread 1 is main):
 *   enter 1 @100, enter 2 @200, exit 2 @150, exit 1 @300
 * The third event is the first regression (150 < 200). State then: max 200, latest 200.
 *   @150: below both -> max + 1 s = 1000000200; max = 1000000200, latest = 150
 *   @300: max + (300 - 150) = 1000000350
 * Tree: A [100, 1000000350): 1000000250 ns -> ceil(100.000025) = 101 samples;
 *       U [200, 1000000200): exactly 1 s -> 100 samples. */
static void test_android_wall_fix(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = android_new(&a, KL_KIND_ANDROID_CHUNK);
    add_event(p, ENTER, 1, 1, 100);
    add_event(p, ENTER, 1, 2, 200);
    add_event(p, EXIT, 1, 2, 150);
    add_event(p, EXIT, 1, 1, 300);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    static const struct want_node w[] = {
        {"com.example.App.onCreate()V", 0, 100, 1000000350ULL, 101},
        {"com.example.Util()V", 1, 200, 1000000200ULL, 100},
    };
    check_nodes(t, 0, w, 2);
    /* the Cpu clock is never "fixed": cpu times here are all 0 */
    p->android.clock = KL_STR("Cpu");
    t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    static const struct want_node wc[] = {
        {"com.example.App.onCreate()V", 0, 0, 0, 0},
        {"com.example.Util()V", 1, 0, 0, 0},
    };
    check_nodes(t, 0, wc, 2);
    kl_arena_release(&a);
}

/* 130 nested enters (methods 1..130, method i at time i), then 130 exits in reverse at
 * 1000 + k: only the first 128 levels get nodes (depths 0..127); the two exits of the
 * ignored levels are skipped, so each node i (depth i-1) closes at 1000 + (130 - i). */
static void test_android_depth(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = kl_profile_new(&a);
    p->kind = KL_KIND_ANDROID_CHUNK;
    p->android.present = true;
    p->android.clock = KL_STR("Wall");
    add_athread(p, 7, "main");
    for (uint64_t i = 1; i <= 130; i++) {
        add_method(p, i, "a.B", "m", "()V", "");
        add_event(p, ENTER, 7, i, i);
    }
    for (uint64_t k = 0; k < 130; k++)
        add_event(p, EXIT, 7, 130 - k, 1000 + k);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_nodes == 128);
    if (t && t->n_nodes == 128) {
        ASSERT_EQ_U64(t->n_frames, 1);
        for (uint32_t i = 0; i < 128; i++) {
            ASSERT_EQ_U64(t->nodes[i].depth, i);
            ASSERT_EQ_U64(t->nodes[i].start_ns, i + 1);
            ASSERT_EQ_U64(t->nodes[i].end_ns, 1000 + (130 - (i + 1)));
        }
    }
    kl_arena_release(&a);
}

/* ---------------------------------------------------------------------------------- */
/* Function metrics                                                                     */

static uint32_t fnv_key(const char *pkg, const char *fn)
{
    /* an independent FNV-1a 64 over pkg ":" fn, cut to 32 bits */
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *parts[3] = {pkg, ":", fn};
    for (int k = 0; k < 3; k++)
        for (const char *s = parts[k]; *s; s++) {
            h ^= (unsigned char)*s;
            h *= 0x100000001b3ULL;
        }
    return (uint32_t)h;
}

static void test_fingerprint(void)
{
    /* vroomrs's test constants */
    ASSERT_EQ_U64(fnv_key("foo", "foo"), 2655321105u);
    ASSERT_EQ_U64(fnv_key("bar", "bar"), 1766712469u);
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = v1_new(&a, "python", 1);
    add_frame(p, "foo", "foo", "python");
    add_stack(p, 1, 0);
    add_thread(p, "1", NULL);
    add_sample(p, 0, 0, 0);
    add_sample(p, 1, 0, 0);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ACTIVE, &err);
    ASSERT_TRUE(t && t->n_frames == 1);
    if (t && t->n_frames == 1)
        ASSERT_EQ_U64(t->frames[0].fingerprint, 2655321105u);
    kl_arena_release(&a);
}

static struct kl_cframe mk_cframe(const char *name, const char *pkg, uint32_t flags)
{
    struct kl_cframe f = {0};
    f.name = kl_str_c(name);
    f.package = kl_str_c(pkg);
    f.flags = flags;
    f.fingerprint = fnv_key(pkg, name);
    return f;
}

#define APP (KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE)
#define SYS KL_CFRAME_AGGREGATABLE

/* A tree made by hand (frames: main, foo, sys, bar, baz app/sys as marked, and an unnamed
 * frame that is not aggregatable):
 *   thread "1":  n0 main d0 [0,100) 10
 *                n1 foo  d1 [0,60)  6
 *                n2 sys  d2 [0,40)  4   (system)
 *                n3 bar  d3 [0,10)  1
 *                n4 foo  d1 [60,100) 4
 *   thread "2":  n5 main d0 [0,70)  7
 *                n6 foo  d1 [0,50)  5
 *                n7 bar  d2 [0,20)  1
 *                n8 baz  d1 [50,60) 1
 *                n9 ""   d1 [60,70) 3   (not aggregatable)
 * Bottom-up, (app, sys) returned per node:
 *   n3 bar: leaf app, self 10, returns (10, 0)
 *   n2 sys: CA 10 CS 0, system self 40-10-0 = 30, app = 10, returns (10, 30)
 *   n1 foo: CA 10 CS 30, app self 60-10 = 50 (system child time does not count),
 *           returns (60, 0)
 *   n4 foo: self 40;  n7 bar: self 20;  n6 foo: 50 - 20 = 30;  n8 baz: 10;
 *   n0, n5: depth 0, never recorded; n9: not aggregatable.
 * Functions (post-order of records: bar, sys, foo, foo, bar, foo, baz):
 *   foo: self [50,40,30] total [60,40,50] sum 120, samples 6+4+5 = 15, max 50 on "1"
 *   bar: self [10,20] total [10,20] sum 30, samples 2, max 20 on thread "2"
 *   sys: self [30] total [40] sum 30, samples 4, system
 *   baz: samples 1 -> dropped
 * Sorted by sum: foo 120, then bar and sys tie at 30 and keep their first-record order. */
static void test_function_metrics(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_cframe frames[] = {
        mk_cframe("main", "app", APP), mk_cframe("foo", "foo", APP), mk_cframe("sys", "libc", SYS),
        mk_cframe("bar", "bar", APP),  mk_cframe("baz", "baz", APP), mk_cframe("", "x", APP & ~SYS),
    };
    struct kl_cnode nodes[] = {
        {0, 0, 0, 100, 10}, {1, 1, 0, 60, 6},  {2, 2, 0, 40, 4}, {3, 3, 0, 10, 1},
        {1, 1, 60, 100, 4}, {0, 0, 0, 70, 7},  {1, 1, 0, 50, 5}, {3, 2, 0, 20, 1},
        {4, 1, 50, 60, 1},  {5, 1, 60, 70, 3},
    };
    struct kl_cthread threads[] = {
        {KL_STR("1"), KL_STR_NULL, 0, 5, true},
        {KL_STR("2"), KL_STR_NULL, 5, 5, false},
    };
    struct kl_calltree t = {frames, 6, nodes, 10, threads, 2, 0, 100, false};
    ASSERT_EQ_U64(frames[1].fingerprint, 2655321105u);

    struct kl_function_metric *m;
    uint32_t n;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_function_metrics(&a, &t, false, 100, &m, &n, &err), 0);
    ASSERT_EQ_U64(n, 3);
    if (n == 3) {
        ASSERT_EQ_SLICE(m[0].function, "foo");
        ASSERT_EQ_SLICE(m[0].package, "foo");
        ASSERT_EQ_U64(m[0].fingerprint, 2655321105u);
        ASSERT_TRUE(m[0].in_app);
        ASSERT_EQ_U64(m[0].n, 3);
        ASSERT_EQ_U64(m[0].self_times_ns[0], 50);
        ASSERT_EQ_U64(m[0].self_times_ns[1], 40);
        ASSERT_EQ_U64(m[0].self_times_ns[2], 30);
        ASSERT_EQ_U64(m[0].total_times_ns[0], 60);
        ASSERT_EQ_U64(m[0].total_times_ns[1], 40);
        ASSERT_EQ_U64(m[0].total_times_ns[2], 50);
        ASSERT_EQ_U64(m[0].sum_self_time_ns, 120);
        ASSERT_EQ_U64(m[0].sample_count, 15);
        ASSERT_EQ_U64(m[0].max_duration_ns, 50);
        ASSERT_EQ_SLICE(m[0].thread_id, "1");

        ASSERT_EQ_SLICE(m[1].function, "bar");
        ASSERT_EQ_U64(m[1].fingerprint, 1766712469u);
        ASSERT_EQ_U64(m[1].n, 2);
        ASSERT_EQ_U64(m[1].self_times_ns[0], 10);
        ASSERT_EQ_U64(m[1].self_times_ns[1], 20);
        ASSERT_EQ_U64(m[1].sum_self_time_ns, 30);
        ASSERT_EQ_U64(m[1].sample_count, 2);
        ASSERT_EQ_U64(m[1].max_duration_ns, 20);
        ASSERT_EQ_SLICE(m[1].thread_id, "2");

        ASSERT_EQ_SLICE(m[2].function, "sys");
        ASSERT_EQ_SLICE(m[2].package, "libc");
        ASSERT_TRUE(!m[2].in_app);
        ASSERT_EQ_U64(m[2].self_times_ns[0], 30);
        ASSERT_EQ_U64(m[2].total_times_ns[0], 40);
        ASSERT_EQ_U64(m[2].sample_count, 4);
    }
    /* system functions filtered: foo, bar */
    ASSERT_EQ_INT(kl_function_metrics(&a, &t, true, 100, &m, &n, &err), 0);
    ASSERT_EQ_U64(n, 2);
    if (n == 2) {
        ASSERT_EQ_SLICE(m[0].function, "foo");
        ASSERT_EQ_SLICE(m[1].function, "bar");
    }
    /* top 1 */
    ASSERT_EQ_INT(kl_function_metrics(&a, &t, false, 1, &m, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    if (n == 1)
        ASSERT_EQ_SLICE(m[0].function, "foo");
    /* a system frame's self time counts its application descendants too: make sys an
     * application frame and bar below it loses nothing, but sys's self becomes
     * 40 - 10 = 30 as before while foo's becomes 60 - 40 = 20 (now all app time). */
    frames[2].flags = APP;
    ASSERT_EQ_INT(kl_function_metrics(&a, &t, true, 0, &m, &n, &err), 0);
    ASSERT_EQ_U64(n, 3);
    if (n == 3) {
        ASSERT_EQ_SLICE(m[0].function, "foo");
        ASSERT_EQ_U64(m[0].self_times_ns[0], 20);
        ASSERT_EQ_U64(m[0].sum_self_time_ns, 90);
    }
    kl_arena_release(&a);
}

/* ---------------------------------------------------------------------------------- */
/* Binary form                                                                          */

static bool trees_equal(const struct kl_calltree *x, const struct kl_calltree *y)
{
    if (x->n_frames != y->n_frames || x->n_nodes != y->n_nodes || x->n_threads != y->n_threads ||
        x->start_unix_ns != y->start_unix_ns || x->duration_ns != y->duration_ns ||
        x->android != y->android)
        return false;
    for (uint32_t i = 0; i < x->n_frames; i++) {
        const struct kl_cframe *a = &x->frames[i], *b = &y->frames[i];
        if (!kl_str_eq(a->name, b->name) || !kl_str_eq(a->package, b->package) ||
            !kl_str_eq(a->path, b->path) || kl_str_is_set(a->path) != kl_str_is_set(b->path) ||
            a->line != b->line || a->flags != b->flags || a->fingerprint != b->fingerprint)
            return false;
    }
    for (uint32_t i = 0; i < x->n_nodes; i++) {
        const struct kl_cnode *a = &x->nodes[i], *b = &y->nodes[i];
        if (a->frame != b->frame || a->depth != b->depth || a->start_ns != b->start_ns ||
            a->end_ns != b->end_ns || a->sample_count != b->sample_count)
            return false;
    }
    for (uint32_t i = 0; i < x->n_threads; i++) {
        const struct kl_cthread *a = &x->threads[i], *b = &y->threads[i];
        if (!kl_str_eq(a->id, b->id) || !kl_str_eq(a->name, b->name) ||
            kl_str_is_set(a->name) != kl_str_is_set(b->name) || a->first_node != b->first_node ||
            a->n_nodes != b->n_nodes || a->active != b->active)
            return false;
    }
    return true;
}

static void write_seed(const char *name, const char *p, size_t n)
{
    const char *dir = getenv("KL_CALLTREE_SEED_DIR");
    if (!dir)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Encode, decode, compare, re-encode: the same bytes. */
static void roundtrip(const struct kl_calltree *t, const char *seed)
{
    struct kl_buf b, b2;
    kl_buf_init(&b, 1u << 30);
    kl_buf_init(&b2, 1u << 30);
    ASSERT_EQ_INT(kl_calltree_encode(t, &b), 0);
    if (seed)
        write_seed(seed, b.ptr, b.len);
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *d = kl_calltree_decode(&a, b.ptr, b.len, &err);
    ASSERT_TRUE(d != NULL);
    if (!d)
        fprintf(stderr, "  decode: %s\n", err.msg);
    if (d) {
        ASSERT_TRUE(trees_equal(t, d));
        ASSERT_EQ_INT(kl_calltree_encode(d, &b2), 0);
        ASSERT_TRUE(b.len == b2.len && memcmp(b.ptr, b2.ptr, b.len) == 0);
    }
    kl_buf_release(&b);
    kl_buf_release(&b2);
    kl_arena_release(&a);
}

static void test_codec_roundtrip(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_profile *p = android_trace(&a, KL_KIND_ANDROID_CHUNK);
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ALL, &err);
    ASSERT_TRUE(t != NULL);
    if (t)
        roundtrip(t, "android_trace.bin");

    p = v1_new(&a, "cocoa", 1);
    add_frame(p, "x", "M", "cocoa");
    add_frame(p, "y", NULL, "cocoa");
    p->data.frames.items[1].abs_path = KL_STR("/a/b.m");
    p->data.frames.items[1].lineno = 12;
    p->data.frames.items[1].flags = KL_FRAME_HAS_LINENO;
    add_stack(p, 2, 1, 0);
    add_stack(p, 1, 0);
    add_thread(p, "1", NULL);
    add_thread(p, "3", "main");
    add_sample(p, 0, 0, 0);
    add_sample(p, 10, 1, 0);
    add_sample(p, 20, 0, 0);
    add_sample(p, 3, 0, 1);
    add_sample(p, 9, 0, 1);
    t = kl_calltree_build(&a, p, KL_CALLTREE_ALL, &err);
    ASSERT_TRUE(t != NULL);
    if (t)
        roundtrip(t, "v1_two_threads.bin");

    /* empty tree */
    struct kl_calltree empty = {0};
    roundtrip(&empty, "empty.bin");
    kl_arena_release(&a);
}

static int decode_reason(const char *p, size_t n)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_decode(&a, p, n, &err);
    int r = t ? 0 : (int)err.reason;
    kl_arena_release(&a);
    return r;
}

/* ---- a blob written field by field, as calltree.h documents KCT2 ---- */

enum fkind { VAR, RAW, U32, OVERLONG };
struct fld {
    enum fkind kind;
    uint64_t v;    /* VAR, U32, OVERLONG (v with one needless 0x80 .. 0x00 byte) */
    const char *s; /* RAW */
};

/* The hand tree H: start_unix_ns 1000, duration 30, thread "1" named "main" (active):
 *   a[0,30) 3 samples > b[0,10) 1 ; a > b[20,30) 1
 * frames a (package "p", no path, line 0, application + aggregatable, fingerprint
 * 0x11223344) and b ("p", "/x.c", line 7, application, 0x55667788). Strings by first
 * reference: a 0, p 1, b 2, /x.c 3, 1 4, main 5. Nodes: a: frame 0, up 0, start 0 - 0,
 * duration 30, 3; b: 1, up 0 (a first child), start 0 - a's start 0, 10, 1; b: 1, up 1,
 * start 20 - the previous depth-1 node's end 10 = +10 (zigzag 20), 10, 1. */
enum {
    H_MAGIC,
    H_FLAGS,
    H_START,
    H_DUR,
    H_NSTR,
    H_NFR,
    H_NNODE,
    H_NTH,
    H_S0L,
    H_S0,
    H_S1L,
    H_S1,
    H_S2L,
    H_S2,
    H_S3L,
    H_S3,
    H_S4L,
    H_S4,
    H_S5L,
    H_S5,
    H_F0NAME,
    H_F0PKG,
    H_F0PATH,
    H_F0LINE,
    H_F0FLAGS,
    H_F0FP,
    H_F1NAME,
    H_F1PKG,
    H_F1PATH,
    H_F1LINE,
    H_F1FLAGS,
    H_F1FP,
    H_TID,
    H_TNAME,
    H_TN,
    H_TACT,
    H_N0F,
    H_N0UP,
    H_N0S,
    H_N0D,
    H_N0C,
    H_N1F,
    H_N1UP,
    H_N1S,
    H_N1D,
    H_N1C,
    H_N2F,
    H_N2UP,
    H_N2S,
    H_N2D,
    H_N2C,
    H_FIELDS
};

static const struct fld H[H_FIELDS] = {
    {RAW, 0, "KCT2"},     {VAR, 0, 0},          {VAR, 2000, 0}, {VAR, 30, 0},  {VAR, 6, 0},
    {VAR, 2, 0},          {VAR, 3, 0},          {VAR, 1, 0},    {VAR, 1, 0},   {RAW, 0, "a"},
    {VAR, 1, 0},          {RAW, 0, "p"},        {VAR, 1, 0},    {RAW, 0, "b"}, {VAR, 4, 0},
    {RAW, 0, "/x.c"},     {VAR, 1, 0},          {RAW, 0, "1"},  {VAR, 4, 0},   {RAW, 0, "main"},
    {VAR, 0, 0},          {VAR, 1, 0},          {VAR, 0, 0},    {VAR, 0, 0},   {VAR, 3, 0},
    {U32, 0x11223344, 0}, {VAR, 2, 0},          {VAR, 1, 0},    {VAR, 4, 0},   {VAR, 7, 0},
    {VAR, 1, 0},          {U32, 0x55667788, 0}, {VAR, 4, 0},    {VAR, 6, 0},   {VAR, 3, 0},
    {VAR, 1, 0},          {VAR, 0, 0},          {VAR, 0, 0},    {VAR, 0, 0},   {VAR, 30, 0},
    {VAR, 3, 0},          {VAR, 1, 0},          {VAR, 0, 0},    {VAR, 0, 0},   {VAR, 10, 0},
    {VAR, 1, 0},          {VAR, 1, 0},          {VAR, 1, 0},    {VAR, 20, 0},  {VAR, 10, 0},
    {VAR, 1, 0},
};

/* Serialize fields f[0..n) into out (big enough). Returns the length. */
static size_t put_fields(const struct fld *f, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = f[i].v;
        switch (f[i].kind) {
        case RAW:
            memcpy(out + len, f[i].s, strlen(f[i].s));
            len += strlen(f[i].s);
            break;
        case U32:
            for (int k = 0; k < 4; k++)
                out[len++] = (char)(v >> (8 * k));
            break;
        case VAR:
        case OVERLONG:
            while (v >= 0x80) {
                out[len++] = (char)(v | 0x80);
                v >>= 7;
            }
            if (f[i].kind == OVERLONG) {
                out[len++] = (char)(v | 0x80);
                out[len++] = 0;
            } else {
                out[len++] = (char)v;
            }
            break;
        }
    }
    return len;
}

/* H with field i replaced by x, decoded: 0 when accepted, else the reason. */
static int decode_h_with(int i, struct fld x)
{
    struct fld f[H_FIELDS];
    memcpy(f, H, sizeof f);
    if (i >= 0)
        f[i] = x;
    char buf[512];
    size_t n = put_fields(f, H_FIELDS, buf);
    return decode_reason(buf, n);
}

static struct fld var(uint64_t v)
{
    return (struct fld){VAR, v, NULL};
}

/* The KCT2 layout, byte for byte: encoding H gives exactly the hand-written fields, and
 * decoding them gives H back. */
static void test_codec_layout(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_calltree t = {0};
    struct kl_cframe fr[2] = {
        {KL_STR("a"), KL_STR("p"), KL_STR_NULL, 0, KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE,
         0x11223344},
        {KL_STR("b"), KL_STR("p"), KL_STR("/x.c"), 7, KL_CFRAME_APPLICATION, 0x55667788}};
    struct kl_cnode nodes[3] = {{0, 0, 0, 30, 3}, {1, 1, 0, 10, 1}, {1, 1, 20, 30, 1}};
    struct kl_cthread th = {KL_STR("1"), KL_STR("main"), 0, 3, true};
    t.frames = fr;
    t.n_frames = 2;
    t.nodes = nodes;
    t.n_nodes = 3;
    t.threads = &th;
    t.n_threads = 1;
    t.start_unix_ns = 1000;
    t.duration_ns = 30;
    char want[512];
    size_t n = put_fields(H, H_FIELDS, want);
    struct kl_buf b;
    kl_buf_init(&b, 1u << 20);
    ASSERT_EQ_INT(kl_calltree_encode(&t, &b), 0);
    write_seed("hand_layout.bin", want, n);
    ASSERT_EQ_INT(b.len, n);
    ASSERT_TRUE(b.len == n && memcmp(b.ptr, want, n) == 0);
    kl_buf_release(&b);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *d = kl_calltree_decode(&a, want, n, &err);
    ASSERT_TRUE(d != NULL && trees_equal(&t, d));
    /* a negative start delta (a child starting before its parent) and a start before the
     * unix epoch round-trip too */
    nodes[1].start_ns = 0;
    nodes[0].start_ns = 0;
    t.start_unix_ns = -5;
    nodes[2].start_ns = 5; /* 5 - 10 = -5 */
    roundtrip(&t, NULL);
    /* trees the form cannot hold are refused when encoding */
    kl_buf_init(&b, 1u << 20);
    nodes[2].depth = 3;
    ASSERT_EQ_INT(kl_calltree_encode(&t, &b), -1);
    ASSERT_EQ_INT(b.err.reason, KL_R_CALLTREE_CORRUPT);
    kl_buf_release(&b);
    kl_arena_release(&a);
}

/* Truncations and targeted corruptions of a valid blob; every byte flipped in turn must
 * either be rejected or decode to a tree that re-encodes to the flipped bytes. */
static void test_codec_corrupt(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_profile *p = android_trace(&a, KL_KIND_ANDROID_CHUNK);
    struct kl_calltree *t = kl_calltree_build(&a, p, KL_CALLTREE_ALL, &err);
    struct kl_buf b;
    kl_buf_init(&b, 1u << 20);
    ASSERT_TRUE(t && kl_calltree_encode(t, &b) == 0);
    size_t n = b.len;
    char *blob = malloc(n);
    memcpy(blob, b.ptr, n);
    kl_buf_release(&b);
    ASSERT_EQ_INT(decode_reason(blob, n), 0);

    for (size_t len = 0; len < n; len++)
        if (decode_reason(blob, len) != KL_R_CALLTREE_CORRUPT) {
            KL_FAIL_("truncated to %zu bytes: not rejected", len);
            break;
        }
    char *c = malloc(n + 4);
    /* a trailing byte */
    memcpy(c, blob, n);
    c[n] = 0;
    ASSERT_EQ_INT(decode_reason(c, n + 1), KL_R_CALLTREE_CORRUPT);
    /* bad magic */
    memcpy(c, blob, n);
    c[0] = 'X';
    ASSERT_EQ_INT(decode_reason(c, n), KL_R_CALLTREE_CORRUPT);
    /* a KCT1 blob (the fixed-width form before) is refused, not misread */
    memcpy(c, blob, n);
    c[3] = '1';
    ASSERT_EQ_INT(decode_reason(c, n), KL_R_CALLTREE_CORRUPT);

    /* targeted corruptions of the hand-written blob H (fields as test_codec_layout) */
    ASSERT_EQ_INT(decode_h_with(-1, var(0)), 0);
    static const struct {
        int field;
        uint64_t v;
    } bad[] = {
        {H_FLAGS, 2},          /* unknown flag */
        {H_NSTR, 0xffffffffu}, /* huge counts: refused before allocating */
        {H_NFR, 0x7fffffffu},
        {H_NTH, 0xffffffffu},
        {H_NNODE, KL_CALLTREE_MAX_NODES + 1}, /* over the node limit */
        {H_NNODE, 0xffffffffffull},           /* over 32 bits */
        {H_NSTR, 7},                          /* one string too many */
        {H_NSTR, 5},                          /* one too few: the rest misparses */
        {H_S0L, 200},                         /* a string running past the end */
        {H_F0NAME, 1},                        /* first reference skips string 0 */
        {H_F1NAME, 9},                        /* no such string */
        {H_F0PATH, 7},                        /* path (index + 1) out of range */
        {H_F0FLAGS, 4},                       /* unknown frame flag */
        {H_F0LINE, 0x100000000ull},           /* line over 32 bits */
        {H_TNAME, 0},                         /* thread name absent: "main" unreferenced */
        {H_TN, 2},                            /* a node outside every thread */
        {H_TN, 4},                            /* more nodes than the tree has */
        {H_TACT, 2},                          /* active is 0 or 1 */
        {H_N0UP, 1},                          /* a thread's first node is a root */
        {H_N2UP, 3},                          /* up past the root */
        {H_N1F, 2},                           /* frame out of range */
        {H_N2D, UINT64_MAX},                  /* ends past the end of time */
        {H_N0C, 0x100000000ull},              /* sample count over 32 bits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (decode_h_with(bad[i].field, var(bad[i].v)) != KL_R_CALLTREE_CORRUPT)
            KL_FAIL_("field %d = %llu: not rejected", bad[i].field, (unsigned long long)bad[i].v);
    /* duplicate string ("b" spelled "a"), and a varint longer than it needs to be */
    ASSERT_EQ_INT(decode_h_with(H_S2, (struct fld){RAW, 0, "a"}), KL_R_CALLTREE_CORRUPT);
    ASSERT_EQ_INT(decode_h_with(H_NFR, (struct fld){OVERLONG, 2, NULL}), KL_R_CALLTREE_CORRUPT);
    ASSERT_EQ_INT(decode_h_with(H_N0D, (struct fld){OVERLONG, 30, NULL}), KL_R_CALLTREE_CORRUPT);
    /* a fingerprint is taken as stored (calltree_codec.c): any value decodes */
    ASSERT_EQ_INT(decode_h_with(H_F0FP, (struct fld){U32, 1, NULL}), 0);

    /* every single-byte change: rejected, or a valid tree that re-encodes to it */
    for (size_t i = 0; i < n; i++) {
        memcpy(c, blob, n);
        c[i] ^= 0x41;
        struct kl_arena d;
        kl_arena_init(&d);
        struct kl_err e2 = KL_ERR_INIT;
        struct kl_calltree *x = kl_calltree_decode(&d, c, n, &e2);
        if (!x) {
            if (e2.reason != KL_R_CALLTREE_CORRUPT)
                KL_FAIL_("byte %zu: reason %d", i, (int)e2.reason);
        } else {
            struct kl_buf again;
            kl_buf_init(&again, 1u << 20);
            kl_calltree_encode(x, &again);
            if (again.len != n || memcmp(again.ptr, c, n) != 0)
                KL_FAIL_("byte %zu: accepted but re-encodes differently", i);
            kl_buf_release(&again);
        }
        kl_arena_release(&d);
    }
    free(c);
    free(blob);
    kl_arena_release(&a);
}

/* ---------------------------------------------------------------------------------- */
/* The shared corpus                                                                    */

static void check_invariants(const char *name, const struct kl_calltree *t)
{
    uint32_t covered = 0;
    for (uint32_t ti = 0; ti < t->n_threads; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        if (th->first_node != covered)
            KL_FAIL_("%s: thread %u does not follow the previous one", name, ti);
        covered += th->n_nodes;
        uint64_t roots = 0;
        uint32_t stack[1024];
        uint32_t sp = 0;
        for (uint32_t i = th->first_node; i < th->first_node + th->n_nodes; i++) {
            const struct kl_cnode *n = &t->nodes[i];
            if (n->start_ns > n->end_ns)
                KL_FAIL_("%s: node %u ends before it starts", name, i);
            if (i == th->first_node ? n->depth != 0 : n->depth > t->nodes[i - 1].depth + 1)
                KL_FAIL_("%s: node %u depth %u", name, i, n->depth);
            if (n->frame >= t->n_frames)
                KL_FAIL_("%s: node %u frame", name, i);
            while (sp > n->depth)
                sp--;
            if (sp > 0) {
                const struct kl_cnode *par = &t->nodes[stack[sp - 1]];
                if (n->start_ns < par->start_ns || n->end_ns > par->end_ns)
                    KL_FAIL_("%s: node %u outside its parent", name, i);
            } else {
                roots += n->end_ns - n->start_ns;
            }
            if (sp < 1024)
                stack[sp++] = i;
            if (kl_calltree_self_ns(t, i) > n->end_ns - n->start_ns)
                KL_FAIL_("%s: node %u self time", name, i);
        }
        if (roots > t->duration_ns)
            KL_FAIL_("%s: thread %u roots last %llu > profile %llu", name, ti,
                     (unsigned long long)roots, (unsigned long long)t->duration_ns);
    }
    if (covered != t->n_nodes)
        KL_FAIL_("%s: nodes outside threads", name);
}

static void test_corpus(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sentry", KL_CORPUS_DIR);
    DIR *d = opendir(dir);
    if (!d) {
        printf("# corpus %s absent, skipped\n", dir);
        return;
    }
    struct dirent *de;
    int built = 0;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *buf;
        size_t len;
        struct kl_err err = KL_ERR_INIT;
        if (kl_read_file(path, KL_MAX_PROFILE_BYTES, &buf, &len, &err) < 0)
            continue;
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_process_opts o;
        kl_process_opts_init(&o);
        o.received = 1714557601;
        struct kl_process_result res;
        if (kl_process_run(&a, buf, len, &o, &res) == 0) {
            for (int w = 0; w < 2; w++) {
                struct kl_calltree *t = kl_calltree_build(
                    &a, res.profile, w ? KL_CALLTREE_ALL : KL_CALLTREE_ACTIVE, &err);
                if (!t) {
                    KL_FAIL_("%s: %s", de->d_name, err.msg);
                    continue;
                }
                built++;
                check_invariants(de->d_name, t);
                roundtrip(t, NULL);
                struct kl_function_metric *m;
                uint32_t n;
                ASSERT_EQ_INT(kl_function_metrics(&a, t, w == 1, 100, &m, &n, &err), 0);
                for (uint32_t i = 0; i < n; i++) {
                    if (m[i].sample_count <= 1 || m[i].n == 0)
                        KL_FAIL_("%s: function %u kept", de->d_name, i);
                    if (i > 0 && m[i].sum_self_time_ns > m[i - 1].sum_self_time_ns)
                        KL_FAIL_("%s: functions not sorted", de->d_name);
                    if (w == 1 && !m[i].in_app)
                        KL_FAIL_("%s: system function kept", de->d_name);
                }
                printf("# %s %s: %u threads, %u nodes, %u frames, %u functions\n", de->d_name,
                       w ? "all" : "active", t->n_threads, t->n_nodes, t->n_frames, n);
            }
        }
        kl_arena_release(&a);
        free(buf);
    }
    closedir(d);
    ASSERT_TRUE(built > 0);
}

int main(void)
{
    KL_RUN(test_v1_basic);
    KL_RUN(test_v1_idle_gap);
    KL_RUN(test_v1_threads);
    KL_RUN(test_v1_bad_index);
    KL_RUN(test_v2_chunk);
    KL_RUN(test_android_trace);
    KL_RUN(test_android_wall_fix);
    KL_RUN(test_android_depth);
    KL_RUN(test_fingerprint);
    KL_RUN(test_function_metrics);
    KL_RUN(test_codec_roundtrip);
    KL_RUN(test_codec_layout);
    KL_RUN(test_codec_corrupt);
    KL_RUN(test_corpus);
    KL_TEST_DONE();
}
