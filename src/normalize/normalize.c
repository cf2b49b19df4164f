/* normalize.c - in_app rules, package trimming and the per-kind stack trims
 *
 * The order of the steps follows Sentry's processing: its task fills device classification
 * and frame platforms first, then vroomrs normalizes frames and trims stacks. The rules are
 * written from the spec (§5.7, §5.8, §6.1, §6.2) and checked against vroomrs' behaviour.
 */
#include "normalize/normalize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/vec.h"
#include "normalize/normalize_int.h"

/* ------------------------------------------------------------------------------------ */
/* Small string helpers                                                                 */

static bool str_has(struct kl_str s, const char *needle)
{
    return s.len > 0 && kl_str_contains(s, needle);
}

/* Whether s ends with ".dylib", ".so", ".a", ".dll" or ".exe"; OUT: *ext_len. */
static bool has_package_ext(struct kl_str s, size_t *ext_len)
{
    static const char *const exts[] = {".dylib", ".so", ".a", ".dll", ".exe"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        if (kl_str_ends(s, exts[i])) {
            *ext_len = strlen(exts[i]);
            return true;
        }
    }
    return false;
}

/* "X:\" (any ASCII letter, either case) or "\\" at the start selects '\' as separator. */
static bool is_windows_path(struct kl_str s)
{
    if (s.len >= 2 && s.ptr[0] == '\\' && s.ptr[1] == '\\')
        return true;
    if (s.len >= 3 && s.ptr[1] == ':' && s.ptr[2] == '\\') {
        char c = s.ptr[0];
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    return false;
}

/* The JavaScript vendor pattern: contains "node_modules" or starts with "@moz-extension"
 * or "chrome-extension". */
static bool is_js_system_path(struct kl_str s)
{
    return str_has(s, "node_modules") || kl_str_starts(s, "@moz-extension") ||
           kl_str_starts(s, "chrome-extension");
}

/* ------------------------------------------------------------------------------------ */
/* Package trimming and module_or_package                                               */

/* The last separator-delimited component; when it is empty, the one before; when that is
 * empty too, the whole path. Then one known library extension is cut off the end. */
struct kl_str kl_package_trim(struct kl_str pkg)
{
    if (!pkg.ptr)
        return KL_STR("");
    char sep = is_windows_path(pkg) ? '\\' : '/';

    size_t last = pkg.len; /* start of the last component */
    while (last > 0 && pkg.ptr[last - 1] != sep)
        last--;
    struct kl_str name = kl_str_make(pkg.ptr + last, pkg.len - last);

    if (name.len == 0 && last > 0) {
        /* Path ends with a separator: take the component before it. */
        size_t end = last - 1, start = end;
        while (start > 0 && pkg.ptr[start - 1] != sep)
            start--;
        name = kl_str_make(pkg.ptr + start, end - start);
    }
    if (name.len == 0)
        name = pkg;

    size_t ext;
    if (has_package_ext(name, &ext))
        name.len -= ext;
    return name;
}

struct kl_str kl_frame_module_or_package(const struct kl_frame *f)
{
    if (f->module.len > 0)
        return f->module;
    if (f->package.len > 0)
        return kl_package_trim(f->package);
    return KL_STR("");
}

/* ------------------------------------------------------------------------------------ */
/* in_app rules per platform (§6.1)                                                      */

bool kl_frame_is_main(const struct kl_frame *f)
{
    if (!kl_str_eq_c(f->status, "symbolicated"))
        return false;
    return kl_str_eq_c(f->function, "main") || kl_str_eq_c(f->function, "UIApplicationMain");
}

static bool is_node_app(const struct kl_frame *f)
{
    if (!kl_str_is_set(f->abs_path))
        return true;
    return !kl_str_starts(f->abs_path, "node:") && !str_has(f->abs_path, "node_modules");
}

static bool is_javascript_app(const struct kl_frame *f)
{
    if (kl_str_starts(f->function, "["))
        return false;
    /* A filename that resolved into node_modules is vendor code whatever abs_path says
     * (an unresolved CDN URL, say). */
    if (kl_str_is_set(f->filename) && is_js_system_path(f->filename))
        return false;
    if (!kl_str_is_set(f->abs_path) || f->abs_path.len == 0)
        return true;
    return !is_js_system_path(f->abs_path);
}

/* iOS keeps applications under these paths; system libraries live elsewhere. */
static bool is_cocoa_app_package(struct kl_str p)
{
    return kl_str_starts(p, "/private/var/containers") || kl_str_starts(p, "/var/containers") ||
           str_has(p, "/Developer/Xcode/DerivedData") ||
           str_has(p, "/data/Containers/Bundle/Application") || str_has(p, ".app");
}

static bool is_cocoa_app(const struct kl_frame *f)
{
    /* main sits in the app's binary but holds no user code */
    if (kl_frame_is_main(f))
        return false;
    struct kl_str mp = kl_frame_module_or_package(f);
    if (kl_str_eq_c(mp, "Sentry") || kl_str_eq_c(mp, "hermes"))
        return false;
    return kl_str_is_set(f->package) && is_cocoa_app_package(f->package);
}

static bool is_rust_app(const struct kl_frame *f)
{
    struct kl_str p = f->package;
    if (!kl_str_is_set(p))
        return false;
    return !str_has(p, "/library/std/src/") && !kl_str_starts(p, "/usr/lib/system/") &&
           !kl_str_starts(p, "/rustc/") && !kl_str_starts(p, "/usr/local/rustup/") &&
           !kl_str_starts(p, "/usr/local/cargo/");
}

static bool is_python_app(const struct kl_frame *f)
{
    struct kl_str a = f->abs_path;
    if (kl_str_is_set(a) && (str_has(a, "/site-packages/") || str_has(a, "/dist-packages/") ||
                             str_has(a, "\\site-packages\\") || str_has(a, "\\dist-packages\\") ||
                             kl_str_starts(a, "/usr/local/")))
        return false;
    if (!kl_str_is_set(f->module))
        return true;
    /* First dotted segment of the module (the whole module when it has no dot). */
    struct kl_str top = f->module;
    const char *dot = top.len ? memchr(top.ptr, '.', top.len) : NULL;
    if (dot)
        top.len = (size_t)(dot - top.ptr);
    if (kl_str_eq_c(top, "sentry_sdk"))
        return false;
    return !kl__normalize_is_python_stdlib(top);
}

static bool is_php_app(const struct kl_frame *f)
{
    return !kl_str_is_set(f->abs_path) || !str_has(f->abs_path, "/vendor/");
}

/* OS and runtime locations on Android, written with or without a leading '/'. */
static bool is_android_system_package(struct kl_str p)
{
    struct kl_str n = p;
    if (kl_str_starts(n, "/")) {
        n.ptr++;
        n.len--;
    }
    return kl_str_starts(n, "system/") || kl_str_starts(n, "vendor/") ||
           kl_str_starts(n, "apex/") || kl_str_eq_c(p, "[vdso]") || kl_str_eq_c(p, "[stack]") ||
           kl_str_starts(p, "[anon:dalvik-");
}

/* Platform, runtime and Sentry SDK class namespaces: everything else (the app, androidx,
 * bundled libraries) counts as application code. */
static bool is_android_system_class(struct kl_str name)
{
    static const char *const prefixes[] = {
        "java.",   "javax.",   "kotlin.", "kotlinx.", "android.",   "com.android.",
        "dalvik.", "libcore.", "sun.",    "jdk.",     "io.sentry.",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (kl_str_starts(name, prefixes[i]))
            return true;
    return false;
}

static bool is_android_app(const struct kl_frame *f)
{
    if (f->in_app != KL_UNSET)
        return f->in_app == KL_TRUE;
    if (kl_str_is_set(f->package) && is_android_system_package(f->package))
        return false;
    struct kl_str cls = f->module.len > 0 ? f->module : f->function;
    return !is_android_system_class(cls);
}

bool kl_frame_is_application(const struct kl_frame *f, struct kl_str profile_platform)
{
    struct kl_str fp = kl_str_is_set(f->platform) ? f->platform : profile_platform;

    if (kl_str_eq_c(fp, "node"))
        return is_node_app(f);
    if (kl_str_eq_c(fp, "javascript"))
        return is_javascript_app(f);
    if (kl_str_eq_c(fp, "cocoa"))
        return is_cocoa_app(f);
    if (kl_str_eq_c(fp, "rust"))
        return is_rust_app(f);
    if (kl_str_eq_c(fp, "python"))
        return is_python_app(f);
    if (kl_str_eq_c(fp, "php"))
        return is_php_app(f);
    if ((kl_str_eq_c(fp, "java") || kl_str_eq_c(fp, "native") || kl_str_eq_c(fp, "android")) &&
        kl_str_eq_c(profile_platform, "android"))
        return is_android_app(f);
    return false;
}

bool kl_frame_is_synthetic_android(const struct kl_frame *f)
{
    if (!kl_str_is_set(f->package))
        return false;
    return kl_str_ends(f->package, "libart.so") ||
           (kl_str_starts(f->package, "<anonymous") && f->function.len == 0);
}

/* ------------------------------------------------------------------------------------ */
/* Frames                                                                                */

/* Status, then platform, then in_app: the in_app rules read the first two. The SDK's
 * in_app is trusted only for frames of the profile's own platform; hybrid frames (React
 * Native's static libraries, marked in_app when symbolicated) get our rules. */
static void normalize_frames(struct kl_profile *p, struct kl_sample_data *d, struct kl_str platform)
{
    struct kl_str plat = kl_intern(&p->strings, platform);
    for (size_t i = 0; i < d->frames.len; i++) {
        struct kl_frame *f = &d->frames.items[i];
        if (f->data_symbolicator_status.len > 0)
            f->status = f->data_symbolicator_status;
        if (!kl_str_is_set(f->platform))
            f->platform = plat;
        if (f->in_app != KL_UNSET && kl_str_eq(f->platform, platform))
            continue;
        f->in_app = kl_tri_from(kl_frame_is_application(f, platform));
    }
}

/* ------------------------------------------------------------------------------------ */
/* CSR stack rewriting                                                                   */

/* A stack filter reads in[0..n) and writes the kept entries to out, in order, returning
 * how many it wrote (or -1 with err set). out may alias in at the same or a lower address:
 * filters must read in[i] before writing out[j] for j <= i, which a front-to-back copy
 * does. */
typedef long stack_filter_fn(void *ctx, const uint32_t *in, uint32_t n, uint32_t *out,
                             struct kl_err *err);

/* Run fn over every stack, compacting stack_frames and rewriting stack_off in place.
 * Stacks never grow here, so the write cursor never overtakes the read cursor. */
static int rewrite_stacks(struct kl_sample_data *d, stack_filter_fn *fn, void *ctx,
                          struct kl_err *err)
{
    size_t ns = kl_stack_count(d);
    if (ns == 0)
        return 0;
    uint32_t *off = d->stack_off.items;
    uint32_t *fr = d->stack_frames.items;
    uint32_t w = off[0];
    uint32_t read_start = off[0];
    for (size_t s = 0; s < ns; s++) {
        uint32_t read_end = off[s + 1];
        long kept = fn(ctx, fr + read_start, read_end - read_start, fr + w, err);
        if (kept < 0)
            return -1;
        w += (uint32_t)kept;
        off[s + 1] = w;
        read_start = read_end;
    }
    d->stack_frames.len = w;
    return 0;
}

/* ---- cocoa: main trim ---- */

struct main_trim {
    const struct kl_sample_data *d;
    uint32_t main_idx;
};

/* Keep everything from the leaf up to main; root-side of main keep only frames the
 * symbolicator resolved (drops unsymbolicated dyld/start frames). main is looked for among
 * the 10 root-most entries only, and a stack whose root already is main is left alone. */
static long main_trim_stack(void *ctx, const uint32_t *in, uint32_t n, uint32_t *out,
                            struct kl_err *err)
{
    const struct main_trim *mt = ctx;
    uint32_t until = n > 10 ? n - 10 : 0;
    uint32_t msi = n;
    for (uint32_t i = n; i-- > until;) {
        if (in[i] == mt->main_idx) {
            msi = i;
            break;
        }
    }
    uint32_t w = 0;
    if (n == 0 || msi >= n - 1) {
        for (uint32_t i = 0; i < n; i++)
            out[w++] = in[i];
        return w;
    }
    for (uint32_t i = 0; i <= msi; i++)
        out[w++] = in[i];
    for (uint32_t i = msi + 1; i < n; i++) {
        uint32_t fi = in[i];
        if (fi >= mt->d->frames.len)
            return kl_err_set(err, KL_R_PROFILING_MALFORMED_STACKS,
                              "frame index %u out of range (%zu frames)", fi, mt->d->frames.len);
        if (kl_str_eq_c(mt->d->frames.items[fi].data_symbolicator_status, "symbolicated"))
            out[w++] = fi;
    }
    return w;
}

/* The frame trimmed on is the LAST frame named main (function only, no status check),
 * as vroomrs does; vroom Go took the first. */
static int trim_cocoa_main(struct kl_sample_data *d, struct kl_err *err)
{
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < d->frames.len; i++)
        if (kl_str_eq_c(d->frames.items[i].function, "main"))
            found = i;
    if (found == SIZE_MAX)
        return 0;
    struct main_trim mt = {d, (uint32_t)found};
    return rewrite_stacks(d, main_trim_stack, &mt, err);
}

/* ---- python: <module> trim ---- */

static long module_trim_stack(void *ctx, const uint32_t *in, uint32_t n, uint32_t *out,
                              struct kl_err *err)
{
    (void)err;
    uint32_t module_idx = *(const uint32_t *)ctx;
    if (n > 0 && in[n - 1] == module_idx)
        n--;
    for (uint32_t i = 0; i < n; i++)
        out[i] = in[i];
    return n;
}

/* The script body frame ("<module>" in "<string>") as a root carries no information. */
static int trim_python_module(struct kl_sample_data *d, struct kl_err *err)
{
    for (size_t i = 0; i < d->frames.len; i++) {
        const struct kl_frame *f = &d->frames.items[i];
        if (kl_str_eq_c(f->filename, "<string>") && kl_str_eq_c(f->function, "<module>")) {
            uint32_t idx = (uint32_t)i;
            return rewrite_stacks(d, module_trim_stack, &idx, err);
        }
    }
    return 0;
}

/* ---- android sample chunks: synthetic frames ---- */

#define DROPPED UINT32_MAX

struct reindex {
    const uint32_t *map; /* old frame index -> new index, or DROPPED */
    size_t n_old;
};

/* Indices past the old frame count are kept as they are: they stay out of range after
 * compaction (the count only shrinks), so later stages still reject them. */
static long reindex_stack(void *ctx, const uint32_t *in, uint32_t n, uint32_t *out,
                          struct kl_err *err)
{
    (void)err;
    const struct reindex *r = ctx;
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fi = in[i];
        if (fi < r->n_old) {
            if (r->map[fi] == DROPPED)
                continue;
            out[w++] = r->map[fi];
        } else {
            out[w++] = fi;
        }
    }
    return w;
}

/* ART interpreter frames and unnamed anonymous mappings are noise to developers (sentry-java
 * drops the same ones from tombstones). Remove them from the frame list and every stack.
 * Samples address stacks, not frames, so they are untouched; a stack may become empty. */
static int drop_synthetic_android(struct kl_sample_data *d, struct kl_err *err)
{
    size_t n = d->frames.len;
    if (n == 0)
        return 0;
    uint32_t *map = kl_xmalloc(n * sizeof *map);
    uint32_t kept = 0;
    for (size_t i = 0; i < n; i++)
        map[i] = kl_frame_is_synthetic_android(&d->frames.items[i]) ? DROPPED : kept++;
    int rc = 0;
    if (kept != n) {
        struct reindex r = {map, n};
        rc = rewrite_stacks(d, reindex_stack, &r, err);
        for (size_t i = 0; i < n; i++)
            if (map[i] != DROPPED)
                d->frames.items[map[i]] = d->frames.items[i];
        d->frames.len = kept;
    }
    free(map);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Idle stack replacement (v1)                                                           */

struct thread_rank {
    uint64_t id;
    uint32_t thread; /* index into threads */
};

static int cmp_thread_rank(const void *a, const void *b)
{
    const struct thread_rank *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->thread < y->thread ? -1 : x->thread > y->thread;
}

/* Append a stack holding the root-side frames that stacks a and b share (same frame
 * indices, compared from the root end). Returns the new stack's id via *out. */
static int append_common_stack(struct kl_arena *arena, struct kl_sample_data *d, uint32_t a,
                               uint32_t b, uint32_t *out, struct kl_err *err)
{
    uint32_t la = kl_stack_len(d, a), lb = kl_stack_len(d, b);
    const uint32_t *sa = kl_stack_at(d, a), *sb = kl_stack_at(d, b);
    uint32_t k = 0;
    while (k < la && k < lb && sa[la - 1 - k] == sb[lb - 1 - k])
        k++;

    size_t ns = kl_stack_count(d);
    if (ns + 1 > KL_MAX_STACKS)
        return kl_err_set(err, KL_R_PROFILE_TOO_MANY_STACKS,
                          "idle replacement would make more than %u stacks", KL_MAX_STACKS);
    if (d->stack_frames.len + k > KL_MAX_STACK_ENTRIES)
        return kl_err_set(err, KL_R_PROFILE_TOO_MANY_STACKS,
                          "idle replacement would make more than %u stack entries",
                          KL_MAX_STACK_ENTRIES);

    /* Offsets, not pointers: the reserve below may move stack_frames. */
    size_t src = d->stack_off.items[a] + (la - k);
    kl_vec_reserve(arena, &d->stack_frames, k);
    uint32_t *fr = d->stack_frames.items;
    size_t dst = d->stack_frames.len;
    for (uint32_t i = 0; i < k; i++)
        fr[dst + i] = fr[src + i];
    d->stack_frames.len += k;
    kl_vec_push(arena, &d->stack_off, (uint32_t)d->stack_frames.len);
    *out = (uint32_t)ns;
    return 0;
}

static bool is_active(const struct kl_sample_data *d, uint32_t stack)
{
    return kl_stack_len(d, stack) > 0;
}

/* One thread's samples, in original order (idx[0..m)). An empty stack means the thread was
 * idle. Every idle sample is marked; a run of idle samples between two active ones gets a
 * new stack made of what the active stacks on either side have in common at the root (even
 * when that is nothing); idle samples before the first or after the last active one keep
 * their empty stack. */
static int replace_idle_thread(struct kl_arena *arena, struct kl_sample_data *d,
                               const uint32_t *idx, size_t m, struct kl_err *err)
{
    struct kl_sample *smp = d->samples.items;
    uint32_t prev = UINT32_MAX;
    size_t i = 0;
    while (i < m) {
        struct kl_sample *s = &smp[idx[i]];
        if (is_active(d, s->stack_id)) {
            prev = s->stack_id;
            i++;
            continue;
        }
        s->idle = 1;
        if (prev == UINT32_MAX) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < m && !is_active(d, smp[idx[j]].stack_id))
            j++;
        if (j == m) {
            for (; i < m; i++)
                smp[idx[i]].idle = 1;
            break;
        }
        uint32_t common = 0;
        if (append_common_stack(arena, d, prev, smp[idx[j]].stack_id, &common, err) < 0)
            return -1;
        for (; i < j; i++) {
            smp[idx[i]].stack_id = common;
            smp[idx[i]].idle = 1;
        }
    }
    return 0;
}

/* Threads are handled in ascending numeric id (samples of threads sharing an id form one
 * group), samples in their original order: that fixes the ids the new stacks get. */
static int replace_idle_stacks(struct kl_arena *arena, struct kl_sample_data *d, struct kl_err *err)
{
    size_t n = d->samples.len, nt = d->threads.len, ns = kl_stack_count(d);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        if (s->stack_id >= ns)
            return kl_err_set(err, KL_R_PROFILING_MALFORMED_SAMPLES,
                              "sample %zu: stack %u out of range (%zu stacks)", i, s->stack_id, ns);
        if (s->thread >= nt)
            return kl_err_set(err, KL_R_PROFILING_MALFORMED_SAMPLES,
                              "sample %zu: thread %u out of range (%zu threads)", i, s->thread, nt);
    }

    struct thread_rank *tr = kl_xmalloc(nt * sizeof *tr);
    uint32_t *rank = kl_xmalloc(nt * sizeof *rank);
    size_t *start = kl_xcalloc(nt + 1, sizeof *start);
    uint32_t *order = kl_xmalloc(n * sizeof *order);

    for (size_t t = 0; t < nt; t++)
        tr[t] = (struct thread_rank){d->threads.items[t].id_num, (uint32_t)t};
    qsort(tr, nt, sizeof *tr, cmp_thread_rank);
    uint32_t r = 0;
    for (size_t t = 0; t < nt; t++) {
        if (t > 0 && tr[t].id != tr[t - 1].id)
            r++;
        rank[tr[t].thread] = r;
    }
    size_t nranks = nt ? (size_t)r + 1 : 0;

    /* Counting sort by rank keeps the original order within a thread. */
    for (size_t i = 0; i < n; i++)
        start[rank[d->samples.items[i].thread] + 1]++;
    for (size_t k = 0; k < nranks; k++)
        start[k + 1] += start[k];
    size_t *fill = kl_xmalloc((nranks + 1) * sizeof *fill);
    memcpy(fill, start, (nranks + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        order[fill[rank[d->samples.items[i].thread]]++] = (uint32_t)i;

    int rc = 0;
    for (size_t k = 0; k < nranks && rc == 0; k++)
        rc = replace_idle_thread(arena, d, order + start[k], start[k + 1] - start[k], err);

    free(fill);
    free(order);
    free(start);
    free(rank);
    free(tr);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Profile-level steps                                                                   */

/* §5.7: Sentry copies the transaction's device.class tag, as a class name, onto cocoa and
 * android transaction profiles (not onto version "2" sample chunks). */
static void classify_device(struct kl_profile *p)
{
    if (!kl_str_eq_c(p->platform, "cocoa") && !kl_str_eq_c(p->platform, "android"))
        return;
    if (p->kind == KL_KIND_SAMPLE_V2 || kl_str_eq_c(p->version, "2"))
        return;
    struct kl_str tag = kl_kv_find(&p->tx_tags, "device.class");
    if (!kl_str_is_set(tag))
        return;
    const char *cls = "unknown";
    if (kl_str_eq_c(tag, "1"))
        cls = "low";
    else if (kl_str_eq_c(tag, "2"))
        cls = "medium";
    else if (kl_str_eq_c(tag, "3"))
        cls = "high";
    p->device_classification = kl_intern(&p->strings, kl_str_c(cls));
}

/* §5.8 for Android method traces: methods without a platform get the profile's. */
static void fill_method_platforms(struct kl_profile *p)
{
    struct kl_str plat = kl_intern(&p->strings, p->platform);
    for (size_t i = 0; i < p->android.methods.len; i++) {
        struct kl_android_method *m = &p->android.methods.items[i];
        if (!kl_str_is_set(m->platform))
            m->platform = plat;
    }
}

static int normalize_v1_data(struct kl_profile *p, struct kl_sample_data *d, struct kl_str platform,
                             struct kl_err *err)
{
    normalize_frames(p, d, platform);
    if (kl_str_eq_c(platform, "cocoa")) {
        if (trim_cocoa_main(d, err) < 0)
            return -1;
    } else if (kl_str_eq_c(platform, "python")) {
        if (trim_python_module(d, err) < 0)
            return -1;
    }
    return replace_idle_stacks(p->arena, d, err);
}

static int normalize_v2(struct kl_profile *p, struct kl_err *err)
{
    struct kl_sample_data *d = &p->data;
    if (kl_str_eq_c(p->platform, "android") && drop_synthetic_android(d, err) < 0)
        return -1;
    normalize_frames(p, d, p->platform);
    if (kl_str_eq_c(p->platform, "python"))
        return trim_python_module(d, err);
    return 0;
}

/* The React Native JS thread is normalized as a javascript v1 profile of its own; the
 * ProGuard mapping id becomes a debug image, but only where an image list exists. */
static int normalize_android(struct kl_profile *p, struct kl_err *err)
{
    fill_method_platforms(p);
    if (p->js_data.present && normalize_v1_data(p, &p->js_data, KL_STR("javascript"), err) < 0)
        return -1;
    if (p->build_id.len > 0 && p->has_debug_meta) {
        struct kl_image img = {0};
        img.type = kl_intern(&p->strings, KL_STR("proguard"));
        img.uuid = p->build_id;
        kl_vec_push(p->arena, &p->images, img);
    }
    p->build_id = KL_STR_NULL;
    return 0;
}

int kl_normalize_run(struct kl_profile *p, struct kl_err *err)
{
    classify_device(p);
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
        return normalize_v1_data(p, &p->data, p->platform, err);
    case KL_KIND_SAMPLE_V2:
        return normalize_v2(p, err);
    case KL_KIND_ANDROID:
        return normalize_android(p, err);
    case KL_KIND_ANDROID_CHUNK:
        fill_method_platforms(p);
        return 0;
    case KL_KIND_UNKNOWN:
        break;
    }
    return kl_err_set(err, KL_R_INTERNAL, "cannot normalize a profile of unknown kind %d",
                      (int)p->kind);
}
