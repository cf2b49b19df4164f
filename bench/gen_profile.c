/* gen_profile.c - deterministic generator of realistic Cocoa profiles for the benchmarks
 *
 * Writes one Sentry sample-format-v1 transaction profile (or, with --chunk, one sample-v2
 * continuous chunk) as compact JSON, shaped like what sentry-cocoa sends: macho images,
 * device/os/transaction metadata, measurements, and a call tree whose stacks share root
 * chains (start -> main -> UIApplicationMain -> run loop, thread_start -> dispatch ...) and
 * branch into app code and system leaves. Stack and frame ids are numbered in order of first
 * appearance, as the SDK assigns them.
 *
 * Sizes (argument): small ~100 KB (2 threads, 2 s at 101 Hz), medium ~2 MB (4 threads, 30 s
 * at 101 Hz), large ~30 MB (8 threads, 30 s at ~800 Hz). Every sample stays below 30 s of
 * elapsed time and inside [relative_start_ns, relative_end_ns], so Relay's window and
 * duration checks keep the whole profile and it runs through the full pipeline.
 *
 * Determinism: the output depends only on the size, the --chunk flag and --seed. The PRNG
 * is our own (splitmix64), nothing reads the clock, and all numbers are printed from
 * integers, so the bytes are the same on every machine.
 *
 * Standalone on purpose: it uses only libc, so test documents can be made even while
 * libkiln is being edited.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* PRNG                                                                                  */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. The modulo bias is irrelevant here. */
static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)(rng_next() % n);
}

/* Uniform in [lo, hi]. */
static uint32_t rng_range(uint32_t lo, uint32_t hi)
{
    return lo + rng_below(hi - lo + 1);
}

/* true with probability pct/100. */
static bool rng_pct(uint32_t pct)
{
    return rng_below(100) < pct;
}

/* An index in [0, n) skewed towards 0 (u^2), for hot stacks and popular images. */
static uint32_t rng_skewed(uint32_t n)
{
    uint64_t u = rng_next() >> 32; /* 32 bits */
    uint64_t sq = (u * u) >> 32;
    return (uint32_t)((sq * n) >> 32);
}

/* ------------------------------------------------------------------------------------ */
/* Output                                                                                */

struct out {
    FILE *f;
    char *buf;
    size_t len, cap;
    uint64_t total;
};

static void out_flush(struct out *o)
{
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) {
        perror("gen_profile: write");
        exit(1);
    }
    o->total += o->len;
    o->len = 0;
}

static void putn(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        out_flush(o);
        if (n > o->cap) {
            if (fwrite(s, 1, n, o->f) != n) {
                perror("gen_profile: write");
                exit(1);
            }
            o->total += n;
            return;
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    putn(o, s, strlen(s));
}

static void putc_(struct out *o, char c)
{
    putn(o, &c, 1);
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    putn(o, tmp + i, sizeof(tmp) - (size_t)i);
}

/* A JSON string; our generated strings never need escaping except the quote itself. */
static void put_qstr(struct out *o, const char *s)
{
    putc_(o, '"');
    puts_(o, s);
    putc_(o, '"');
}

static void put_qu64(struct out *o, uint64_t v)
{
    putc_(o, '"');
    put_u64(o, v);
    putc_(o, '"');
}

/* "0x" + 16 lowercase hex digits, as sentry-cocoa formats addresses. */
static void put_qhex(struct out *o, uint64_t v)
{
    char tmp[21];
    snprintf(tmp, sizeof(tmp), "0x%016" PRIx64, v);
    put_qstr(o, tmp);
}

/* A fixed-point number from an integer in thousandths: 12345 -> 12.345, 82000 -> 82.0. */
static void put_milli(struct out *o, uint64_t milli)
{
    char tmp[32];
    uint64_t frac = milli % 1000;
    if (frac == 0)
        snprintf(tmp, sizeof(tmp), "%" PRIu64 ".0", milli / 1000);
    else if (frac % 100 == 0)
        snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%" PRIu64, milli / 1000, frac / 100);
    else if (frac % 10 == 0)
        snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%02" PRIu64, milli / 1000, frac / 10);
    else
        snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%03" PRIu64, milli / 1000, frac);
    puts_(o, tmp);
}

/* Unix seconds with microseconds, from integer microseconds (v2 timestamps). */
static void put_unix_us(struct out *o, uint64_t us)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
    puts_(o, tmp);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fputs("gen_profile: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xcalloc(n, 1);
    memcpy(p, s, n);
    return p;
}

/* ------------------------------------------------------------------------------------ */
/* Parameters per size                                                                   */

struct params {
    const char *name;
    uint64_t seed;
    uint32_t threads;
    uint32_t hz;          /* samples per second per thread */
    uint32_t duration_ms; /* sampling runs from ~1 ms to duration_ms (< 30 s) */
    uint32_t chunk_ms;    /* the same for --chunk (< 66 s): v2 samples are shorter */
    uint32_t frames;      /* distinct frames */
    uint32_t stacks;      /* distinct stacks */
    uint32_t depth_min, depth_max;
    uint32_t images;
};

static const struct params sizes[] = {
    {"small", 0x5eed0001, 2, 101, 2000, 2600, 215, 120, 12, 40, 30},
    {"medium", 0x5eed0002, 4, 101, 29990, 40000, 2200, 1500, 20, 80, 150},
    {"large", 0x5eed0003, 8, 800, 29990, 41000, 16000, 16000, 30, 120, 400},
};

/* 2024-05-14T10:22:31.512346Z */
#define BASE_UNIX_S 1715682151ULL
#define BASE_FRAC_US 512346ULL
#define BASE_RFC3339 "2024-05-14T10:22:31.512346Z"

/* ------------------------------------------------------------------------------------ */
/* Images                                                                                */

struct image {
    char *code_file;
    char debug_id[37];
    uint64_t addr, size;
    bool in_app;
    const char *short_name; /* last path component, for function names */
};

static const char *const sys_frameworks[] = {
    "UIKitCore",    "CoreFoundation",    "Foundation",   "QuartzCore",       "CoreGraphics",
    "CoreText",     "ImageIO",           "CFNetwork",    "Network",          "AVFoundation",
    "CoreData",     "CoreMedia",         "Metal",        "AGXMetalG14",      "CoreImage",
    "WebKit",       "JavaScriptCore",    "Security",     "GraphicsServices", "SwiftUI",
    "Combine",      "CoreAnimation",     "MapKit",       "Photos",           "StoreKit",
    "CoreLocation", "UserNotifications", "AudioToolbox", "VideoToolbox",     "Accelerate",
};
static const char *const sys_dylibs[] = {
    "libsystem_kernel.dylib", "libsystem_pthread.dylib",
    "libdispatch.dylib",      "libobjc.A.dylib",
    "libswiftCore.dylib",     "libsystem_malloc.dylib",
    "libc++.1.dylib",         "libsystem_platform.dylib",
    "libsqlite3.dylib",       "libz.1.dylib",
    "libxpc.dylib",           "libswiftFoundation.dylib",
};
static const char *const app_frameworks[] = {
    "Sentry",  "Kingfisher", "Alamofire", "SnapKit", "Lottie", "Realm",
    "RxSwift", "Firebase",   "GRDB",      "Nuke",    "Moya",   "PromiseKit",
};

#define APP_NAME "TrendingMovies"
#define APP_BUNDLE                                                                                 \
    "/private/var/containers/Bundle/Application/C3511752-DD67-4FE8-9DA2-ACE18ADFAA61/"             \
    "TrendingMovies.app"

static void make_debug_id(char out[37])
{
    static const char hex[] = "0123456789ABCDEF";
    int j = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[j++] = '-';
        out[j++] = hex[rng_below(16)];
    }
    out[j] = '\0';
}

static const char *last_component(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Image 0 is the app, then its embedded frameworks (in-app), then system libraries in the
 * dyld shared cache region. */
static struct image *make_images(uint32_t n, uint32_t *n_app)
{
    struct image *im = xcalloc(n, sizeof(*im));
    char path[512];
    uint32_t n_fw = sizeof(app_frameworks) / sizeof(app_frameworks[0]);
    uint32_t apps = 1 + (n / 10 < n_fw ? n / 10 : n_fw);
    uint64_t app_addr = 0x0000000102570000ULL, sys_addr = 0x0000000180000000ULL;
    size_t n_sysfw = sizeof(sys_frameworks) / sizeof(sys_frameworks[0]);
    size_t n_dylib = sizeof(sys_dylibs) / sizeof(sys_dylibs[0]);

    for (uint32_t i = 0; i < n; i++) {
        struct image *m = &im[i];
        if (i == 0) {
            snprintf(path, sizeof(path), "%s/%s", APP_BUNDLE, APP_NAME);
            m->size = 0x1a4000 + (uint64_t)rng_below(0x100) * 0x4000;
        } else if (i < apps) {
            snprintf(path, sizeof(path), "%s/Frameworks/%s.framework/%s", APP_BUNDLE,
                     app_frameworks[i - 1], app_frameworks[i - 1]);
            m->size = 0x40000 + (uint64_t)rng_below(0x80) * 0x4000;
        } else {
            uint32_t k = i - apps;
            if (k < n_dylib) {
                snprintf(path, sizeof(path), "/usr/lib/system/%s", sys_dylibs[k]);
            } else if (k < n_dylib + n_sysfw) {
                const char *fw = sys_frameworks[k - n_dylib];
                snprintf(path, sizeof(path), "/System/Library/%sFrameworks/%s.framework/%s",
                         (k % 3 == 0) ? "Private" : "", fw, fw);
            } else {
                /* the long tail of private frameworks a real app loads */
                static const char *const syl[] = {"Core",  "Media", "Ui",   "Device", "Text",
                                                  "Kit",   "Pro",   "Sync", "Cloud",  "Asset",
                                                  "Graph", "Lang",  "Font", "Net",    "Power"};
                char fw[64];
                snprintf(fw, sizeof(fw), "%s%s%s%u", syl[rng_below(15)], syl[rng_below(15)],
                         syl[rng_below(15)], k);
                snprintf(path, sizeof(path), "/System/Library/PrivateFrameworks/%s.framework/%s",
                         fw, fw);
            }
            m->size = 0x8000 + (uint64_t)rng_below(0x200) * 0x4000;
        }
        m->code_file = xstrdup(path);
        m->short_name = last_component(m->code_file);
        m->in_app = i < apps;
        make_debug_id(m->debug_id);
        if (m->in_app) {
            m->addr = app_addr;
            app_addr += (m->size + 0xffff) & ~0xffffULL;
        } else {
            m->addr = sys_addr;
            sys_addr += (m->size + 0x3fff) & ~0x3fffULL;
        }
    }
    *n_app = apps;
    return im;
}

/* ------------------------------------------------------------------------------------ */
/* Frames                                                                                */

struct frame {
    char *function;
    uint64_t addr; /* with pointer-auth bits on some, as arm64e devices report them */
    uint32_t image;
    bool in_app;
};

static const char *const nouns[] = {
    "Movie",   "Poster",  "Image",  "Cache",  "Layout",    "Cell",   "Feed",    "Session",
    "Request", "Decoder", "Render", "Scroll", "Text",      "Font",   "Gesture", "Animation",
    "Network", "Store",   "Record", "Query",  "Thumbnail", "Blur",   "Color",   "Path",
    "Token",   "Buffer",  "Stream", "Player", "Asset",     "Review", "Rating",  "Search",
};
static const char *const verbs[] = {
    "load",   "decode",  "render",     "update", "apply",   "fetch",   "configure", "prepare",
    "layout", "compute", "invalidate", "draw",   "parse",   "resolve", "merge",     "observe",
    "handle", "process", "schedule",   "encode", "measure", "reload",  "commit",    "flush",
};
static const char *const objc_prefix[] = {"UI", "NS", "CA", "CF", "AV", "MK", "WK", "_UI"};
static const char *const kinds[] = {"ViewController", "View",    "Manager", "Provider",
                                    "Coordinator",    "Service", "Layer",   "Controller"};

/* Functions at the roots of the call trees, per thread kind, root first. */
struct root_fn {
    const char *function;
    int image; /* -1: the app; -2: app framework; otherwise an index into sys_dylibs, or
                  100 + an index into sys_frameworks */
};

static const struct root_fn root_main[] = {
    {"start", 100 + 0},
    {"main", -1},
    {"UIApplicationMain", 100 + 0},
    {"-[UIApplication _run]", 100 + 0},
    {"GSEventRunModal", 100 + 18},
    {"CFRunLoopRunSpecific", 100 + 1},
    {"__CFRunLoopRun", 100 + 1},
};
static const struct root_fn root_worker[] = {
    {"start_wqthread", 1},
    {"_pthread_wqthread", 1},
    {"_dispatch_workloop_worker_thread", 2},
    {"_dispatch_root_queue_drain_deferred_wlh", 2},
    {"_dispatch_lane_invoke", 2},
    {"_dispatch_lane_serial_drain", 2},
    {"_dispatch_client_callout", 2},
};
static const struct root_fn root_thread[] = {
    {"thread_start", 1},
    {"_pthread_start", 1},
    {"__NSThread__start__", 100 + 2},
    {"-[NSThread main]", 100 + 2},
    {"-[UIEventFetcher threadMain]", 100 + 0},
    {"CFRunLoopRunSpecific", 100 + 1},
};

/* System leaf functions: where sampled threads usually are. */
static const char *const sys_leaves[] = {
    "mach_msg2_trap",
    "mach_msg2_internal",
    "mach_msg_overwrite",
    "__psynch_cvwait",
    "__ulock_wait",
    "semaphore_wait_trap",
    "objc_msgSend",
    "objc_retain",
    "objc_release",
    "swift_retain",
    "swift_release",
    "swift_beginAccess",
    "_platform_memmove",
    "malloc_zone_malloc",
    "nanov2_allocate",
    "free_tiny",
    "__CFRunLoopServiceMachPort",
    "__CFRunLoopDoSources0",
    "__CFRUNLOOP_IS_CALLING_OUT_TO_A_SOURCE0_PERFORM_FUNCTION__",
    "CA::Transaction::commit()",
    "CA::Layer::layout_and_display_if_needed(CA::Transaction*)",
    "CA::Context::commit_transaction(CA::Transaction*, double, double*)",
    "-[CALayer layoutSublayers]",
    "-[UIView(CALayerDelegate) layoutSublayersOfLayer:]",
    "CGContextDrawImage",
    "ImageIO_Malloc",
    "vImageBoxConvolve_ARGB8888",
    "tcp_input",
    "nw_connection_receive_internal",
    "sqlite3VdbeExec",
};

static void make_function(char *out, size_t n, const struct image *im, bool in_app, uint32_t i)
{
    const char *no = nouns[rng_below(sizeof(nouns) / sizeof(nouns[0]))];
    const char *no2 = nouns[rng_below(sizeof(nouns) / sizeof(nouns[0]))];
    const char *vb = verbs[rng_below(sizeof(verbs) / sizeof(verbs[0]))];
    const char *kd = kinds[rng_below(sizeof(kinds) / sizeof(kinds[0]))];
    uint32_t style = rng_below(6);

    if (in_app) {
        switch (style) {
        case 0:
            snprintf(out, n, "-[%s%s %s%s:completion:]", no, kd, vb, no2);
            break;
        case 1:
            snprintf(out, n, "closure #%u in %s%s.%s%s(_:)", 1 + rng_below(3), no, kd, vb, no2);
            break;
        case 2:
            snprintf(out, n, "%s.%s%sWith%s(_:for:)", im->short_name, vb, no, no2);
            break;
        case 3:
            snprintf(out, n, "specialized %s%s.%s(_:)", no, kd, vb);
            break;
        case 4:
            snprintf(out, n, "%s%s.%s%s() async throws", no, kd, vb, no2);
            break;
        default:
            snprintf(out, n, "+[%s%s shared%s%u]", no, kd, no2, i);
            break;
        }
    } else {
        const char *px = objc_prefix[rng_below(sizeof(objc_prefix) / sizeof(objc_prefix[0]))];
        switch (style) {
        case 0:
        case 1:
            snprintf(out, n, "-[%s%s%s _%s%s:]", px, no, kd, vb, no2);
            break;
        case 2:
            snprintf(out, n, "__%s%s_block_invoke_%u", vb, no, 1 + rng_below(4));
            break;
        case 3:
            snprintf(out, n, "%s::%s::%s%s()", im->short_name, no, vb, no2);
            break;
        case 4:
            snprintf(out, n, "%s%s%s", px, no, vb);
            break;
        default:
            snprintf(out, n, "%s",
                     sys_leaves[rng_below(sizeof(sys_leaves) / sizeof(sys_leaves[0]))]);
            break;
        }
    }
}

static uint64_t frame_addr(const struct image *im)
{
    uint64_t off = 0x1000 + ((uint64_t)rng_below((uint32_t)(im->size - 0x1000) / 4) * 4);
    uint64_t a = im->addr + off;
    /* arm64e: about a third of return addresses carry pointer-auth bits in the high bits;
     * Relay masks them off with 0x0000000FFFFFFFFF. */
    if (rng_pct(33))
        a |= ((uint64_t)rng_range(1, 0x7fffff) << 40);
    return a;
}

static uint32_t root_image(int spec, uint32_t n_app, uint32_t n_images)
{
    size_t n_dylib = sizeof(sys_dylibs) / sizeof(sys_dylibs[0]);
    if (spec == -1)
        return 0;
    if (spec == -2)
        return n_app > 1 ? 1 : 0;
    if (spec >= 100) {
        uint32_t i = n_app + (uint32_t)n_dylib + (uint32_t)(spec - 100);
        return i < n_images ? i : n_images - 1;
    }
    return n_app + (uint32_t)spec < n_images ? n_app + (uint32_t)spec : n_images - 1;
}

struct model {
    const struct params *prm;
    struct image *images;
    uint32_t n_images, n_app_images;
    struct frame *frames;
    uint32_t n_frames;
    uint32_t *app_frames, n_app_frames; /* indices into frames */
    uint32_t *sys_frames, n_sys_frames;
    uint32_t root_first[3], root_len[3]; /* frames of the three root chains */

    /* stacks, root first while building; written leaf first */
    uint32_t *stack_off; /* n_stacks + 1 */
    uint32_t *stack_frames;
    uint32_t n_stacks;
    uint32_t *stack_thread; /* which thread a stack belongs to */

    /* threads */
    uint32_t n_threads;
    uint64_t *thread_id;
    uint32_t *thread_kind; /* 0 main, 1 runloop thread, 2 dispatch worker */
    int32_t *thread_queue; /* default queue index, -1 none */

    /* samples */
    uint32_t n_samples;
    uint64_t *s_elapsed;
    uint32_t *s_stack;
    uint32_t *s_thread;
    int32_t *s_queue;
};

static void add_root_chain(struct model *m, int kind, const struct root_fn *fns, uint32_t n)
{
    m->root_first[kind] = m->n_frames;
    m->root_len[kind] = n;
    for (uint32_t i = 0; i < n; i++) {
        struct frame *f = &m->frames[m->n_frames++];
        f->image = root_image(fns[i].image, m->n_app_images, m->n_images);
        f->in_app = m->images[f->image].in_app;
        f->function = xstrdup(fns[i].function);
        f->addr = frame_addr(&m->images[f->image]);
    }
}

static void make_frames(struct model *m)
{
    const struct params *p = m->prm;
    char name[256];
    m->frames = xcalloc(p->frames + 32, sizeof(*m->frames));
    m->app_frames = xcalloc(p->frames + 32, sizeof(uint32_t));
    m->sys_frames = xcalloc(p->frames + 32, sizeof(uint32_t));
    add_root_chain(m, 0, root_main, sizeof(root_main) / sizeof(root_main[0]));
    add_root_chain(m, 1, root_thread, sizeof(root_thread) / sizeof(root_thread[0]));
    add_root_chain(m, 2, root_worker, sizeof(root_worker) / sizeof(root_worker[0]));
    while (m->n_frames < p->frames) {
        struct frame *f = &m->frames[m->n_frames];
        /* ~40 % of frames are the app's own code (app binary plus embedded frameworks) */
        if (rng_pct(40))
            f->image = rng_pct(70) ? 0 : rng_below(m->n_app_images);
        else
            f->image = m->n_app_images + rng_skewed(m->n_images - m->n_app_images);
        f->in_app = m->images[f->image].in_app;
        make_function(name, sizeof(name), &m->images[f->image], f->in_app, m->n_frames);
        f->function = xstrdup(name);
        f->addr = frame_addr(&m->images[f->image]);
        if (f->in_app)
            m->app_frames[m->n_app_frames++] = m->n_frames;
        else
            m->sys_frames[m->n_sys_frames++] = m->n_frames;
        m->n_frames++;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Threads, stacks and samples                                                           */

static void make_threads(struct model *m)
{
    uint32_t n = m->prm->threads;
    m->n_threads = n;
    m->thread_id = xcalloc(n, sizeof(uint64_t));
    m->thread_kind = xcalloc(n, sizeof(uint32_t));
    m->thread_queue = xcalloc(n, sizeof(int32_t));
    for (uint32_t t = 0; t < n; t++) {
        if (t == 0) {
            m->thread_id[t] = 259; /* the main thread's mach port, as on real devices */
            m->thread_kind[t] = 0;
            m->thread_queue[t] = 0;
        } else {
            m->thread_id[t] = 5000 + (uint64_t)t * 4099 + rng_below(4000);
            m->thread_kind[t] = (t == 1 && n > 2) ? 1 : 2;
            m->thread_queue[t] = m->thread_kind[t] == 1 ? -1 : (int32_t)(1 + (t - 1) % 5);
        }
    }
}

/* Build stacks as a call tree: stack i extends a prefix (root side) of an earlier stack of
 * the same thread, so real-looking root chains are shared, then grows app frames in the
 * middle and system frames towards the leaf up to its target depth. */
static void make_stacks(struct model *m)
{
    const struct params *p = m->prm;
    uint32_t n = p->stacks;
    size_t cap = (size_t)n * p->depth_max;
    uint32_t *tmp = xcalloc(p->depth_max + 1, sizeof(uint32_t));
    uint32_t **by_thread = xcalloc(m->n_threads, sizeof(uint32_t *));
    uint32_t *by_thread_n = xcalloc(m->n_threads, sizeof(uint32_t));

    for (uint32_t t = 0; t < m->n_threads; t++)
        by_thread[t] = xcalloc(n, sizeof(uint32_t));
    m->stack_off = xcalloc(n + 1, sizeof(uint32_t));
    m->stack_frames = xcalloc(cap, sizeof(uint32_t));
    m->stack_thread = xcalloc(n, sizeof(uint32_t));

    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = i % m->n_threads;
        uint32_t kind = m->thread_kind[t];
        /* depth: triangular between min and max, so mid-depth stacks dominate */
        uint32_t target =
            (rng_range(p->depth_min, p->depth_max) + rng_range(p->depth_min, p->depth_max)) / 2;
        uint32_t len = 0;
        if (by_thread_n[t] > 0 && rng_pct(90)) {
            uint32_t parent = by_thread[t][rng_skewed(by_thread_n[t])];
            uint32_t plen = m->stack_off[parent + 1] - m->stack_off[parent];
            uint32_t keep = m->root_len[kind] + rng_below(plen - m->root_len[kind] + 1);
            if (keep > target)
                keep = target;
            memcpy(tmp, m->stack_frames + m->stack_off[parent], keep * sizeof(uint32_t));
            len = keep;
        } else {
            for (uint32_t k = 0; k < m->root_len[kind]; k++)
                tmp[len++] = m->root_first[kind] + k;
        }
        if (len < m->root_len[kind])
            len = m->root_len[kind];
        while (len < target) {
            uint32_t to_leaf = target - len;
            bool sys = to_leaf <= 4 ? rng_pct(80) : rng_pct(35);
            if (sys || m->n_app_frames == 0)
                tmp[len++] = m->sys_frames[rng_below(m->n_sys_frames)];
            else
                tmp[len++] = m->app_frames[rng_below(m->n_app_frames)];
        }
        m->stack_off[i] = (uint32_t)used;
        memcpy(m->stack_frames + used, tmp, len * sizeof(uint32_t));
        used += len;
        m->stack_thread[i] = t;
        by_thread[t][by_thread_n[t]++] = i;
    }
    m->stack_off[n] = (uint32_t)used;
    m->n_stacks = n;

    for (uint32_t t = 0; t < m->n_threads; t++)
        free(by_thread[t]);
    free(by_thread);
    free(by_thread_n);
    free(tmp);
}

/* Samples tick by tick, every thread once per tick (as the Cocoa sampler does), so they
 * come out in time order. Each thread stays on its current stack for a while, introduces
 * its not-yet-seen stacks at a pace that uses all of them by the end, and otherwise returns
 * to hot stacks. */
static void make_samples(struct model *m)
{
    const struct params *p = m->prm;
    uint64_t period_ns = 1000000000ULL / p->hz;
    uint32_t ticks = (uint32_t)((uint64_t)(p->duration_ms - 2) * 1000000ULL / period_ns);
    uint64_t max_elapsed = (uint64_t)p->duration_ms * 1000000ULL;
    uint32_t T = m->n_threads;
    uint32_t **own = xcalloc(T, sizeof(uint32_t *));
    uint32_t *own_n = xcalloc(T, sizeof(uint32_t));
    uint32_t *next_new = xcalloc(T, sizeof(uint32_t));
    uint32_t *cur = xcalloc(T, sizeof(uint32_t));

    for (uint32_t t = 0; t < T; t++)
        own[t] = xcalloc(m->n_stacks, sizeof(uint32_t));
    for (uint32_t i = 0; i < m->n_stacks; i++) {
        uint32_t t = m->stack_thread[i];
        own[t][own_n[t]++] = i;
    }

    m->n_samples = ticks * T;
    m->s_elapsed = xcalloc(m->n_samples, sizeof(uint64_t));
    m->s_stack = xcalloc(m->n_samples, sizeof(uint32_t));
    m->s_thread = xcalloc(m->n_samples, sizeof(uint32_t));
    m->s_queue = xcalloc(m->n_samples, sizeof(int32_t));

    uint32_t k = 0;
    for (uint32_t tick = 0; tick < ticks; tick++) {
        uint64_t base = 1000000ULL + (uint64_t)tick * period_ns + rng_below(150000);
        for (uint32_t t = 0; t < T; t++, k++) {
            uint32_t remaining = ticks - tick;
            uint32_t unseen = own_n[t] - next_new[t];
            uint32_t pick;
            if (next_new[t] == 0 ||
                (unseen > 0 && rng_below(remaining) < unseen * 3 + (unseen >= remaining))) {
                pick = own[t][next_new[t]++];
            } else if (rng_pct(65)) {
                pick = cur[t];
            } else {
                pick = own[t][rng_skewed(next_new[t])];
            }
            cur[t] = pick;
            uint64_t e = base + (uint64_t)t * 4000 + rng_below(3000);
            if (e > max_elapsed)
                e = max_elapsed;
            m->s_elapsed[k] = e;
            m->s_stack[k] = pick;
            m->s_thread[k] = t;
            m->s_queue[k] = m->thread_queue[t];
            /* worker threads hop between dispatch queues */
            if (m->thread_kind[t] == 2 && rng_pct(20))
                m->s_queue[k] = (int32_t)(1 + rng_below(5));
        }
    }
    for (uint32_t t = 0; t < T; t++)
        free(own[t]);
    free(own);
    free(own_n);
    free(next_new);
    free(cur);
}

/* Number stacks by first appearance in the samples, and frames by first appearance in the
 * stacks (leaf first), as the SDK does. Unreferenced ones keep their relative order at the
 * end. */
static void renumber(struct model *m, uint32_t **stack_order, uint32_t **frame_order,
                     uint32_t **frame_new)
{
    uint32_t *snew = xcalloc(m->n_stacks, sizeof(uint32_t));
    uint32_t *sord = xcalloc(m->n_stacks, sizeof(uint32_t));
    uint32_t *fnew = xcalloc(m->n_frames, sizeof(uint32_t));
    uint32_t *ford = xcalloc(m->n_frames, sizeof(uint32_t));
    uint32_t ns = 0, nf = 0;

    for (uint32_t i = 0; i < m->n_stacks; i++)
        snew[i] = UINT32_MAX;
    for (uint32_t i = 0; i < m->n_samples; i++) {
        uint32_t s = m->s_stack[i];
        if (snew[s] == UINT32_MAX) {
            snew[s] = ns;
            sord[ns++] = s;
        }
    }
    for (uint32_t i = 0; i < m->n_stacks; i++)
        if (snew[i] == UINT32_MAX) {
            snew[i] = ns;
            sord[ns++] = i;
        }
    for (uint32_t i = 0; i < m->n_samples; i++)
        m->s_stack[i] = snew[m->s_stack[i]];

    for (uint32_t i = 0; i < m->n_frames; i++)
        fnew[i] = UINT32_MAX;
    for (uint32_t j = 0; j < m->n_stacks; j++) {
        uint32_t s = sord[j];
        for (uint32_t q = m->stack_off[s + 1]; q-- > m->stack_off[s];) {
            uint32_t f = m->stack_frames[q];
            if (fnew[f] == UINT32_MAX) {
                fnew[f] = nf;
                ford[nf++] = f;
            }
        }
    }
    for (uint32_t i = 0; i < m->n_frames; i++)
        if (fnew[i] == UINT32_MAX) {
            fnew[i] = nf;
            ford[nf++] = i;
        }
    free(snew);
    *stack_order = sord;
    *frame_order = ford;
    *frame_new = fnew;
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                               */

static const char *const queue_labels[] = {
    "com.apple.main-thread",
    "com.apple.root.default-qos",
    "com.apple.network.connections",
    "com.example.TrendingMovies.imagecache.decode",
    "NSOperationQueue 0x283d4c0e0 (QOS: UTILITY)",
    "com.apple.root.user-initiated-qos.cooperative",
};
#define N_QUEUES 6

static uint64_t queue_addr(int32_t q)
{
    return q == 0 ? 0x0000000102adc700ULL : 0x000000016d8fb180ULL + (uint64_t)q * 0x2c0c0;
}

static void put_hex32(struct out *o)
{
    char id[33];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++)
        id[i] = hex[rng_below(16)];
    id[32] = '\0';
    put_qstr(o, id);
}

static void write_images(struct out *o, const struct model *m)
{
    puts_(o, "\"debug_meta\":{\"images\":[");
    for (uint32_t i = 0; i < m->n_images; i++) {
        const struct image *im = &m->images[i];
        if (i)
            putc_(o, ',');
        puts_(o, "{\"type\":\"macho\",\"debug_id\":");
        put_qstr(o, im->debug_id);
        puts_(o, ",\"image_addr\":");
        put_qhex(o, im->addr);
        if (i == 0) {
            puts_(o, ",\"image_vmaddr\":");
            put_qhex(o, 0x0000000100000000ULL);
        }
        puts_(o, ",\"image_size\":");
        put_u64(o, im->size);
        puts_(o, ",\"code_file\":");
        put_qstr(o, im->code_file);
        putc_(o, '}');
    }
    puts_(o, "]}");
}

/* One measurement series; v1 writes elapsed_since_start_ns (integer), v2 timestamp (unix
 * seconds, float). Values in thousandths. */
static void write_series(struct out *o, bool chunk, const char *name, const char *unit,
                         uint64_t every_ms, uint64_t duration_ms, uint64_t lo_milli,
                         uint64_t hi_milli, uint32_t keep_pct)
{
    bool first = true;
    put_qstr(o, name);
    puts_(o, ":{\"unit\":");
    put_qstr(o, unit);
    puts_(o, ",\"values\":[");
    for (uint64_t t = every_ms; t < duration_ms; t += every_ms) {
        if (!rng_pct(keep_pct))
            continue;
        uint64_t ns = t * 1000000ULL + rng_below(900000);
        uint64_t v = lo_milli + (uint64_t)(rng_next() % (hi_milli - lo_milli + 1));
        if (!first)
            putc_(o, ',');
        first = false;
        if (chunk) {
            puts_(o, "{\"timestamp\":");
            put_unix_us(o, BASE_UNIX_S * 1000000ULL + BASE_FRAC_US + ns / 1000);
        } else {
            puts_(o, "{\"elapsed_since_start_ns\":");
            put_u64(o, ns);
        }
        puts_(o, ",\"value\":");
        put_milli(o, v);
        putc_(o, '}');
    }
    puts_(o, "]}");
}

static void write_measurements(struct out *o, const struct model *m, bool chunk)
{
    uint64_t d = m->prm->duration_ms;
    puts_(o, "\"measurements\":{");
    write_series(o, chunk, "cpu_usage", "percent", 100, d, 2000, 98000, 100);
    putc_(o, ',');
    write_series(o, chunk, "memory_footprint", "byte", 100, d, 120000000000ULL, 240000000000ULL,
                 100);
    putc_(o, ',');
    write_series(o, chunk, "cpu_energy_usage", "nanojoule", 100, d, 1000000, 900000000, 100);
    putc_(o, ',');
    write_series(o, chunk, "screen_frame_rates", chunk ? "hertz" : "hz", 1000, d, 60000, 120000,
                 100);
    putc_(o, ',');
    write_series(o, chunk, "slow_frame_renders", "nanosecond", 50, d, 17000000000ULL,
                 699000000000ULL, 10);
    putc_(o, ',');
    write_series(o, chunk, "frozen_frame_renders", "nanosecond", 1000, d, 700000000000ULL,
                 2100000000000ULL, 10);
    putc_(o, '}');
}

static void write_thread_metadata(struct out *o, const struct model *m)
{
    puts_(o, "\"thread_metadata\":{");
    for (uint32_t t = 0; t < m->n_threads; t++) {
        if (t)
            putc_(o, ',');
        put_qu64(o, m->thread_id[t]);
        putc_(o, ':');
        if (m->thread_kind[t] == 0)
            puts_(o, "{\"name\":\"main\",\"priority\":31}");
        else if (m->thread_kind[t] == 1)
            puts_(o, "{\"name\":\"com.apple.uikit.eventfetch-thread\",\"priority\":31}");
        else if (t % 3 == 0)
            puts_(o, "{\"name\":\"com.apple.NSURLConnectionLoader\",\"priority\":47}");
        else
            puts_(o, "{\"priority\":31}");
    }
    putc_(o, '}');
}

static void write_profile_body(struct out *o, struct model *m, bool chunk)
{
    uint32_t *sord, *ford, *fnew;
    renumber(m, &sord, &ford, &fnew);

    puts_(o, "\"profile\":{\"samples\":[");
    for (uint32_t i = 0; i < m->n_samples; i++) {
        if (i)
            putc_(o, ',');
        puts_(o, "{\"stack_id\":");
        put_u64(o, m->s_stack[i]);
        puts_(o, ",\"thread_id\":");
        put_qu64(o, m->thread_id[m->s_thread[i]]);
        if (chunk) {
            puts_(o, ",\"timestamp\":");
            put_unix_us(o, BASE_UNIX_S * 1000000ULL + BASE_FRAC_US + m->s_elapsed[i] / 1000);
        } else {
            puts_(o, ",\"elapsed_since_start_ns\":");
            put_qu64(o, m->s_elapsed[i]);
            if (m->s_queue[i] >= 0) {
                puts_(o, ",\"queue_address\":");
                put_qhex(o, queue_addr(m->s_queue[i]));
            }
        }
        putc_(o, '}');
    }
    puts_(o, "],\"stacks\":[");
    for (uint32_t j = 0; j < m->n_stacks; j++) {
        uint32_t s = sord[j];
        if (j)
            putc_(o, ',');
        putc_(o, '[');
        /* stored root first; Sentry's order is leaf first */
        for (uint32_t q = m->stack_off[s + 1]; q-- > m->stack_off[s];) {
            put_u64(o, fnew[m->stack_frames[q]]);
            if (q > m->stack_off[s])
                putc_(o, ',');
        }
        putc_(o, ']');
    }
    puts_(o, "],\"frames\":[");
    for (uint32_t j = 0; j < m->n_frames; j++) {
        const struct frame *f = &m->frames[ford[j]];
        if (j)
            putc_(o, ',');
        puts_(o, "{\"function\":");
        put_qstr(o, f->function);
        puts_(o, ",\"instruction_addr\":");
        put_qhex(o, f->addr);
        puts_(o, ",\"package\":");
        put_qstr(o, m->images[f->image].code_file);
        puts_(o, f->in_app ? ",\"in_app\":true}" : ",\"in_app\":false}");
    }
    puts_(o, "],");
    write_thread_metadata(o, m);
    if (!chunk) {
        bool seen[N_QUEUES] = {false};
        bool first = true;
        for (uint32_t i = 0; i < m->n_samples; i++)
            if (m->s_queue[i] >= 0)
                seen[m->s_queue[i]] = true;
        puts_(o, ",\"queue_metadata\":{");
        for (int q = 0; q < N_QUEUES; q++) {
            if (!seen[q])
                continue;
            if (!first)
                putc_(o, ',');
            first = false;
            put_qhex(o, queue_addr(q));
            puts_(o, ":{\"label\":");
            put_qstr(o, queue_labels[q]);
            putc_(o, '}');
        }
        putc_(o, '}');
    }
    putc_(o, '}');
    free(sord);
    free(ford);
    free(fnew);
}

static void write_v1(struct out *o, struct model *m)
{
    uint64_t last = m->s_elapsed[m->n_samples - 1];
    puts_(o, "{\"version\":\"1\",\"platform\":\"cocoa\",\"event_id\":");
    put_hex32(o);
    puts_(o, ",\"timestamp\":\"" BASE_RFC3339 "\"");
    puts_(o, ",\"release\":\"com.example.TrendingMovies@2.4.1+317\"");
    puts_(o, ",\"environment\":\"production\"");
    puts_(o, ",\"device\":{\"architecture\":\"arm64e\",\"is_emulator\":false,"
             "\"locale\":\"en_US\",\"manufacturer\":\"Apple\",\"model\":\"iPhone15,3\"}");
    puts_(o, ",\"os\":{\"name\":\"iOS\",\"version\":\"17.4.1\",\"build_number\":\"21E237\"}");
    puts_(o, ",\"transaction\":{\"id\":");
    put_hex32(o);
    puts_(o, ",\"name\":\"TrendingMovies.MoviesViewController\",\"trace_id\":");
    put_hex32(o);
    puts_(o, ",\"active_thread_id\":\"259\",\"relative_start_ns\":\"500500\"");
    puts_(o, ",\"relative_end_ns\":");
    put_qu64(o, last + 2000000 < 30000000000ULL ? last + 2000000 : last);
    puts_(o, "},");
    write_images(o, m);
    putc_(o, ',');
    write_measurements(o, m, false);
    putc_(o, ',');
    write_profile_body(o, m, false);
    puts_(o, "}\n");
}

static void write_v2(struct out *o, struct model *m)
{
    puts_(o, "{\"version\":\"2\",\"platform\":\"cocoa\",\"chunk_id\":");
    put_hex32(o);
    puts_(o, ",\"profiler_id\":");
    put_hex32(o);
    puts_(o, ",\"release\":\"com.example.TrendingMovies@2.4.1+317\"");
    puts_(o, ",\"environment\":\"production\"");
    puts_(o, ",\"client_sdk\":{\"name\":\"sentry.cocoa\",\"version\":\"8.36.0\"},");
    write_images(o, m);
    putc_(o, ',');
    write_measurements(o, m, true);
    putc_(o, ',');
    write_profile_body(o, m, true);
    puts_(o, "}\n");
}

static void model_free(struct model *m)
{
    for (uint32_t i = 0; i < m->n_images; i++)
        free(m->images[i].code_file);
    for (uint32_t i = 0; i < m->n_frames; i++)
        free(m->frames[i].function);
    free(m->images);
    free(m->frames);
    free(m->app_frames);
    free(m->sys_frames);
    free(m->stack_off);
    free(m->stack_frames);
    free(m->stack_thread);
    free(m->thread_id);
    free(m->thread_kind);
    free(m->thread_queue);
    free(m->s_elapsed);
    free(m->s_stack);
    free(m->s_thread);
    free(m->s_queue);
}

/* ------------------------------------------------------------------------------------ */

static void usage(void)
{
    fputs("usage: gen_profile [--chunk] [--seed N] small|medium|large [-o FILE]\n"
          "  writes a deterministic Cocoa sample-v1 profile (or a v2 chunk) as compact JSON\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const struct params *p = NULL;
    const char *path = NULL;
    bool chunk = false, have_seed = false;
    uint64_t seed = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--chunk") == 0) {
            chunk = true;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 0);
            if (*end)
                usage();
            have_seed = true;
        } else {
            for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
                if (strcmp(argv[i], sizes[k].name) == 0)
                    p = &sizes[k];
            if (!p)
                usage();
        }
    }
    if (!p)
        usage();

    rng_state = (have_seed ? seed : p->seed) ^ (chunk ? 0xc4u : 0);
    struct params prm = *p;
    if (chunk)
        prm.duration_ms = prm.chunk_ms;
    p = &prm;

    struct model m = {0};
    m.prm = p;
    m.n_images = p->images;
    m.images = make_images(p->images, &m.n_app_images);
    make_frames(&m);
    make_threads(&m);
    make_stacks(&m);
    make_samples(&m);

    struct out o = {0};
    o.f = stdout;
    if (path && strcmp(path, "-") != 0) {
        o.f = fopen(path, "wb");
        if (!o.f) {
            perror(path);
            return 1;
        }
    }
    o.cap = 1 << 20;
    o.buf = xcalloc(o.cap, 1);
    if (chunk)
        write_v2(&o, &m);
    else
        write_v1(&o, &m);
    out_flush(&o);
    free(o.buf);
    if (o.f != stdout ? fclose(o.f) != 0 : fflush(o.f) != 0) {
        perror("gen_profile: close");
        return 1;
    }
    fprintf(stderr,
            "gen_profile: %s%s: %" PRIu64 " bytes, %u samples, %u stacks, %u frames, "
            "%u images, %u threads\n",
            p->name, chunk ? " (chunk)" : "", o.total, m.n_samples, m.n_stacks, m.n_frames,
            m.n_images, m.n_threads);
    model_free(&m);
    return 0;
}
