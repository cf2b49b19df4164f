/* test_normalize.c - in_app rules, package trimming and the stack trims of normalize/
 *
 * Profiles are built by hand (no JSON). Every expected value was worked out from the spec
 * (§5.7, §5.8, §6.1, §6.2) and vroomrs' behaviour, not by running the code under test.
 */
#include "kl_test.h"

#include "base/arena.h"
#include "base/err.h"
#include "base/vec.h"
#include "normalize/normalize.h"
#include "normalize/normalize_int.h"
#include "profile/profile.h"

/* A brace initializer for a struct kl_str from a literal (usable in static tables). */
#define S(lit)                                                                                     \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

/* ------------------------------------------------------------------------------------ */
/* Builders                                                                               */

static struct kl_profile *mk(struct kl_arena *a, enum kl_profile_kind kind, const char *platform)
{
    struct kl_profile *p = kl_profile_new(a);
    p->kind = kind;
    if (platform)
        p->platform = kl_intern(&p->strings, kl_str_c(platform));
    p->data.present = true;
    return p;
}

static uint32_t add_frame(struct kl_profile *p, struct kl_sample_data *d, struct kl_frame f)
{
    kl_vec_push(p->arena, &d->frames, f);
    return (uint32_t)(d->frames.len - 1);
}

static void add_stack(struct kl_profile *p, struct kl_sample_data *d, const uint32_t *ids, size_t n)
{
    if (d->stack_off.len == 0)
        kl_vec_push(p->arena, &d->stack_off, 0u);
    for (size_t i = 0; i < n; i++)
        kl_vec_push(p->arena, &d->stack_frames, ids[i]);
    kl_vec_push(p->arena, &d->stack_off, (uint32_t)d->stack_frames.len);
}

#define IDS(...)                                                                                   \
    (const uint32_t[]){__VA_ARGS__}, sizeof((uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t)
#define STACK(p, d, ...) add_stack((p), (d), IDS(__VA_ARGS__))
#define STACK_EMPTY(p, d) add_stack((p), (d), NULL, 0)

static uint32_t add_thread(struct kl_profile *p, struct kl_sample_data *d, uint64_t id)
{
    struct kl_thread t = {0};
    t.id_num = id;
    kl_vec_push(p->arena, &d->threads, t);
    return (uint32_t)(d->threads.len - 1);
}

static void add_sample(struct kl_profile *p, struct kl_sample_data *d, uint32_t stack,
                       uint32_t thread)
{
    struct kl_sample s = {0};
    s.stack_id = stack;
    s.thread = thread;
    s.queue = -1;
    s.ts_ns = d->samples.len * 10000000ull;
    kl_vec_push(p->arena, &d->samples, s);
}

/* Whether stack i holds exactly want[0..n); prints both sides otherwise. */
static bool stack_is(const struct kl_sample_data *d, size_t i, const uint32_t *want, size_t n,
                     int line)
{
    if (i >= kl_stack_count(d)) {
        fprintf(stderr, "  FAIL line %d: stack %zu missing (%zu stacks)\n", line, i,
                kl_stack_count(d));
        return false;
    }
    uint32_t len = kl_stack_len(d, i);
    const uint32_t *got = kl_stack_at(d, i);
    bool ok = len == n;
    for (size_t k = 0; ok && k < n; k++)
        ok = got[k] == want[k];
    if (!ok) {
        fprintf(stderr, "  FAIL line %d: stack %zu = [", line, i);
        for (uint32_t k = 0; k < len; k++)
            fprintf(stderr, "%s%u", k ? "," : "", got[k]);
        fprintf(stderr, "], want [");
        for (size_t k = 0; k < n; k++)
            fprintf(stderr, "%s%u", k ? "," : "", want[k]);
        fprintf(stderr, "]\n");
    }
    return ok;
}

#define ASSERT_STACK(d, i, ...) ASSERT_TRUE(stack_is((d), (i), IDS(__VA_ARGS__), __LINE__))
#define ASSERT_STACK_EMPTY(d, i) ASSERT_TRUE(stack_is((d), (i), NULL, 0, __LINE__))

/* The CSR arrays are consistent: offsets ascend from 0 and end at stack_frames.len. */
static bool csr_ok(const struct kl_sample_data *d)
{
    if (d->stack_off.len == 0)
        return d->stack_frames.len == 0;
    if (d->stack_off.items[0] != 0)
        return false;
    for (size_t i = 1; i < d->stack_off.len; i++)
        if (d->stack_off.items[i] < d->stack_off.items[i - 1])
            return false;
    return d->stack_off.items[d->stack_off.len - 1] == d->stack_frames.len;
}

/* ------------------------------------------------------------------------------------ */
/* §6.1 in_app rules, one row per rule and outcome                                        */

struct app_case {
    const char *name;
    const char *profile_platform;
    struct kl_frame f;
    bool want;
};

#define APP_OCK "/var/containers/Bundle/Application/00000000-0000-0000-0000-000000000000/App.app"

static const struct app_case app_cases[] = {
    /* node */
    {"node: no abs_path", "node", {.platform = S("node")}, true},
    {"node: empty abs_path", "node", {.platform = S("node"), .abs_path = S("")}, true},
    {"node: app file", "node", {.platform = S("node"), .abs_path = S("/home/u/app/app.js")}, true},
    {"node: node_modules",
     "node",
     {.platform = S("node"), .abs_path = S("/home/u/app/node_modules/express/lib/express.js")},
     false},
    {"node: node: builtin",
     "node",
     {.platform = S("node"), .abs_path = S("node:internal/process/task_queues")},
     false},
    {"node: platform from the profile", "node", {.abs_path = S("/srv/app.js")}, true},

    /* javascript */
    {"js: empty frame", "javascript", {.platform = S("javascript")}, true},
    {"js: app path",
     "javascript",
     {.platform = S("javascript"), .abs_path = S("/home/u/app/app.js")},
     true},
    {"js: bracketed function",
     "javascript",
     {.platform = S("javascript"), .function = S("[Native] functionPrototypeApply")},
     false},
    {"js: node_modules path",
     "javascript",
     {.platform = S("javascript"), .abs_path = S("/home/u/app/node_modules/react/index.js")},
     false},
    {"js: moz extension",
     "javascript",
     {.platform = S("javascript"), .abs_path = S("@moz-extension://0000/app.js")},
     false},
    {"js: chrome extension",
     "javascript",
     {.platform = S("javascript"), .abs_path = S("chrome-extension://0000/app.js")},
     false},
    {"js: extension name not at the start",
     "javascript",
     {.platform = S("javascript"), .abs_path = S("https://cdn.example.com/chrome-extension/a.js")},
     true},
    {"js: filename in node_modules beats a CDN abs_path",
     "javascript",
     {.platform = S("javascript"),
      .filename = S("webpack:///node_modules/react-dom/cjs/react-dom.js"),
      .abs_path = S("https://cdn.example.com/vendors.1234.js")},
     false},
    {"js: filename starting with chrome-extension",
     "javascript",
     {.platform = S("javascript"), .filename = S("chrome-extension://x/y.js")},
     false},
    {"js: app filename, empty abs_path",
     "javascript",
     {.platform = S("javascript"), .filename = S("app.js"), .abs_path = S("")},
     true},

    /* cocoa */
    {"cocoa: /private/var/containers",
     "cocoa",
     {.platform = S("cocoa"),
      .package = S("/private/var/containers/Bundle/Application/0000/App.app/App")},
     true},
    {"cocoa: /var/containers",
     "cocoa",
     {.platform = S("cocoa"), .package = S(APP_OCK "/App")},
     true},
    {"cocoa: Xcode DerivedData",
     "cocoa",
     {.platform = S("cocoa"),
      .package = S("/Users/me/Library/Developer/Xcode/DerivedData/App-abc/Build/App")},
     true},
    {"cocoa: simulator bundle",
     "cocoa",
     {.platform = S("cocoa"),
      .package = S("/Users/runner/Library/Developer/CoreSimulator/Devices/0000/data/Containers/"
                   "Bundle/Application/0000/iOS-Swift.app/Frameworks/libasan.dylib")},
     true},
    {"cocoa: .app anywhere",
     "cocoa",
     {.platform = S("cocoa"), .package = S("/Applications/Foo.app/Contents/MacOS/Foo")},
     true},
    {"cocoa: system library",
     "cocoa",
     {.platform = S("cocoa"), .package = S("/usr/lib/system/libsystem_kernel.dylib")},
     false},
    {"cocoa: no package", "cocoa", {.platform = S("cocoa"), .function = S("foo")}, false},
    {"cocoa: symbolicated main",
     "cocoa",
     {.platform = S("cocoa"),
      .function = S("main"),
      .status = S("symbolicated"),
      .package = S(APP_OCK "/App")},
     false},
    {"cocoa: symbolicated UIApplicationMain",
     "cocoa",
     {.platform = S("cocoa"),
      .function = S("UIApplicationMain"),
      .status = S("symbolicated"),
      .package = S(APP_OCK "/App")},
     false},
    {"cocoa: main must be symbolicated",
     "cocoa",
     {.platform = S("cocoa"), .function = S("main"), .package = S(APP_OCK "/App")},
     true},
    {"cocoa: Sentry framework",
     "cocoa",
     {.platform = S("cocoa"),
      .function = S("symbolicate_internal"),
      .package = S(APP_OCK "/Frameworks/Sentry.framework/Sentry")},
     false},
    {"cocoa: hermes framework",
     "cocoa",
     {.platform = S("cocoa"), .package = S(APP_OCK "/Frameworks/hermes.framework/hermes")},
     false},
    {"cocoa: module Sentry",
     "cocoa",
     {.platform = S("cocoa"), .module = S("Sentry"), .package = S(APP_OCK "/App")},
     false},

    /* rust */
    {"rust: no package", "rust", {.platform = S("rust"), .function = S("main")}, false},
    {"rust: empty package", "rust", {.platform = S("rust"), .package = S("")}, true},
    {"rust: app binary",
     "rust",
     {.platform = S("rust"), .package = S("/home/u/proj/target/release/app")},
     true},
    {"rust: std",
     "rust",
     {.platform = S("rust"), .package = S("/build/library/std/src/thread/mod.rs")},
     false},
    {"rust: /usr/lib/system",
     "rust",
     {.platform = S("rust"), .package = S("/usr/lib/system/libdyld.dylib")},
     false},
    {"rust: /rustc",
     "rust",
     {.platform = S("rust"), .package = S("/rustc/90b35a6/library/core/src/ops.rs")},
     false},
    {"rust: rustup",
     "rust",
     {.platform = S("rust"), .package = S("/usr/local/rustup/toolchains/x/lib/libstd.so")},
     false},
    {"rust: cargo registry",
     "rust",
     {.platform = S("rust"), .package = S("/usr/local/cargo/registry/src/tokio-1.0/lib.rs")},
     false},

    /* python */
    {"py: empty frame", "python", {.platform = S("python")}, true},
    {"py: app module",
     "python",
     {.platform = S("python"),
      .module = S("app.utils"),
      .filename = S("app/utils.py"),
      .abs_path = S("/home/u/app/app/utils.py")},
     true},
    {"py: __main__", "python", {.platform = S("python"), .module = S("__main__")}, true},
    {"py: empty module", "python", {.platform = S("python"), .module = S("")}, true},
    {"py: site-packages unix",
     "python",
     {.platform = S("python"), .abs_path = S("/opt/lib/python3.10/site-packages/urllib3/req.py")},
     false},
    {"py: site-packages dos",
     "python",
     {.platform = S("python"),
      .abs_path = S("C:\\Python310\\lib\\site-packages\\urllib3\\request.py")},
     false},
    {"py: dist-packages unix",
     "python",
     {.platform = S("python"), .abs_path = S("/opt/lib/python3/dist-packages/urllib3/req.py")},
     false},
    {"py: dist-packages dos",
     "python",
     {.platform = S("python"), .abs_path = S("C:\\Python310\\lib\\dist-packages\\x\\y.py")},
     false},
    {"py: /usr/local",
     "python",
     {.platform = S("python"), .abs_path = S("/usr/local/bin/gunicorn")},
     false},
    {"py: stdlib dotted",
     "python",
     {.platform = S("python"), .module = S("multiprocessing.pool")},
     false},
    {"py: stdlib os", "python", {.platform = S("python"), .module = S("os")}, false},
    {"py: stdlib first entry",
     "python",
     {.platform = S("python"), .module = S("__future__")},
     false},
    {"py: stdlib last entry", "python", {.platform = S("python"), .module = S("zoneinfo")}, false},
    {"py: prefix of a stdlib name is not stdlib",
     "python",
     {.platform = S("python"), .module = S("osx.tools")},
     true},
    {"py: sentry_sdk",
     "python",
     {.platform = S("python"), .module = S("sentry_sdk.profiler")},
     false},
    {"py: sentry_sdk only as a whole segment",
     "python",
     {.platform = S("python"), .module = S("sentry_sdkx")},
     true},

    /* php */
    {"php: no abs_path", "php", {.platform = S("php")}, true},
    {"php: app file",
     "php",
     {.platform = S("php"), .abs_path = S("/var/www/app/src/Controller.php")},
     true},
    {"php: vendor",
     "php",
     {.platform = S("php"), .abs_path = S("/var/www/app/vendor/laravel/framework/a.php")},
     false},

    /* java / native / android frames in an android profile */
    {"android: java stdlib",
     "android",
     {.platform = S("java"), .module = S("java.util.HashMap")},
     false},
    {"android: app class",
     "android",
     {.platform = S("java"), .module = S("com.example.Main")},
     true},
    {"android: androidx ships with the app",
     "android",
     {.platform = S("java"), .module = S("androidx.recyclerview.widget.RecyclerView")},
     true},
    {"android: javax", "android", {.platform = S("java"), .module = S("javax.net.ssl.X")}, false},
    {"android: kotlin",
     "android",
     {.platform = S("java"), .module = S("kotlin.collections.A")},
     false},
    {"android: kotlinx",
     "android",
     {.platform = S("java"), .module = S("kotlinx.coroutines.B")},
     false},
    {"android: android.",
     "android",
     {.platform = S("java"), .module = S("android.view.View")},
     false},
    {"android: com.android.",
     "android",
     {.platform = S("java"), .module = S("com.android.internal.os.ZygoteInit")},
     false},
    {"android: dalvik",
     "android",
     {.platform = S("java"), .module = S("dalvik.system.VMStack")},
     false},
    {"android: libcore",
     "android",
     {.platform = S("java"), .module = S("libcore.io.Linux")},
     false},
    {"android: sun",
     "android",
     {.platform = S("java"), .module = S("sun.nio.ch.FileChannel")},
     false},
    {"android: jdk",
     "android",
     {.platform = S("java"), .module = S("jdk.internal.misc.Unsafe")},
     false},
    {"android: io.sentry",
     "android",
     {.platform = S("java"), .module = S("io.sentry.transport.AsyncHttpTransport")},
     false},
    {"android: jit cache package does not sway a module",
     "android",
     {.platform = S("java"),
      .module = S("com.example.Main"),
      .package = S("[anon_shmem:dalvik-jit-code-cache]")},
     true},
    {"android: class from function when module is empty",
     "android",
     {.platform = S("android"), .module = S(""), .function = S("android.os.Handler.dispatch")},
     false},
    {"android: app class from function",
     "android",
     {.platform = S("android"), .function = S("com.example.Home.onCreate")},
     true},
    {"android: bare native symbol",
     "android",
     {.platform = S("native"), .function = S("malloc")},
     true},
    {"android: empty frame", "android", {.platform = S("native")}, true},
    {"android: system/ package",
     "android",
     {.platform = S("native"), .package = S("system/lib64/libhwui.so")},
     false},
    {"android: /system/ package",
     "android",
     {.platform = S("native"), .package = S("/system/framework/framework.jar")},
     false},
    {"android: vendor/ package",
     "android",
     {.platform = S("native"), .package = S("vendor/lib64/libGLESv2_enc.so")},
     false},
    {"android: apex/ package",
     "android",
     {.platform = S("native"), .package = S("apex/com.android.runtime/lib64/bionic/libc.so")},
     false},
    {"android: [vdso]", "android", {.platform = S("native"), .package = S("[vdso]")}, false},
    {"android: [stack]", "android", {.platform = S("native"), .package = S("[stack]")}, false},
    {"android: dalvik heap",
     "android",
     {.platform = S("native"), .package = S("[anon:dalvik-LinearAlloc]")},
     false},
    {"android: only one leading slash is stripped",
     "android",
     {.platform = S("native"), .package = S("//system/lib64/libc.so"), .function = S("f")},
     true},
    {"android: vendorx is not vendor/",
     "android",
     {.platform = S("native"), .package = S("/vendorx/lib/libfoo.so"), .function = S("f")},
     true},
    {"android: app native library",
     "android",
     {.platform = S("native"), .package = S("/data/app/com.example/lib/arm64/libapp.so")},
     true},
    {"android: SDK in_app=false wins",
     "android",
     {.platform = S("java"), .module = S("com.example.Main"), .in_app = KL_FALSE},
     false},
    {"android: SDK in_app=true wins",
     "android",
     {.platform = S("native"), .package = S("system/lib64/libc.so"), .in_app = KL_TRUE},
     true},
    {"android: frame platform from the profile",
     "android",
     {.module = S("com.example.Main")},
     true},

    /* anything else */
    {"java frame outside an android profile",
     "java",
     {.platform = S("java"), .module = S("com.example.Main")},
     false},
    {"java frame in a cocoa profile",
     "cocoa",
     {.platform = S("java"), .module = S("com.example.Main")},
     false},
    {"go", "go", {.platform = S("go"), .function = S("main.main")}, false},
    {"ruby, platform from profile", "ruby", {.function = S("foo")}, false},
    {"csharp", "csharp", {.platform = S("csharp"), .abs_path = S("/app/Program.cs")}, false},
};

static void test_in_app_rules(void)
{
    for (size_t i = 0; i < sizeof app_cases / sizeof app_cases[0]; i++) {
        const struct app_case *c = &app_cases[i];
        bool got = kl_frame_is_application(&c->f, kl_str_c(c->profile_platform));
        if (got != c->want)
            KL_FAIL_("%s: got %d, want %d", c->name, got, c->want);
    }
}

/* ------------------------------------------------------------------------------------ */
/* §6.1 module_or_package                                                                 */

static void test_module_or_package(void)
{
    static const struct {
        struct kl_frame f;
        const char *want;
    } cases[] = {
        {{.module = S("foo"), .package = S("/bar/bar")}, "foo"},
        {{.module = S(""), .package = S("/usr/lib/libfoo.dylib")}, "libfoo"},
        {{.package = S("/usr/lib/libc.so")}, "libc"},
        {{.package = S("/usr/lib/libz.a")}, "libz"},
        {{.package = S("/opt/app/bin/app.exe")}, "app"},
        {{.package = S("/Applications/App.app/Contents/Frameworks/Foo.framework/Foo")}, "Foo"},
        {{.package = S("C:\\Windows\\System32\\kernel32.dll")}, "kernel32"},
        {{.package = S("c:\\Program Files\\App\\app.exe")}, "app"},
        {{.package = S("\\\\server\\share\\lib.dll")}, "lib"},
        {{.package = S("C:/libs/y.dll")}, "y"},         /* no backslash: unix separators */
        {{.package = S("/a/b\\c.dll")}, "b\\c"},        /* not windows: '\' is a name byte */
        {{.package = S("/usr/lib/foo/")}, "foo"},       /* trailing slash */
        {{.package = S("C:\\libs\\bar.dll\\")}, "bar"}, /* trailing backslash */
        {{.package = S("foo/")}, "foo"},
        {{.package = S("/")}, "/"}, /* nothing before: the whole path */
        {{.package = S("a//")}, "a//"},
        {{.package = S("noslash.so")}, "noslash"},
        {{.package = S("/lib/libfoo.so.1")}, "libfoo.so.1"}, /* extension only at the end */
        {{.package = S("/lib/foo.dylib.a")}, "foo.dylib"},   /* one extension removed */
        {{.package = S("/lib/FOO.SO")}, "FOO.SO"},           /* case-sensitive */
        {{.package = S("/lib/.so")}, ""},
        {{.package = S("/lib/libfoo.sox")}, "libfoo.sox"},
        {{.package = S("")}, ""},
        {{.function = S("f")}, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_str got = kl_frame_module_or_package(&cases[i].f);
        if (!got.ptr || got.len != strlen(cases[i].want) ||
            memcmp(got.ptr, cases[i].want, got.len) != 0)
            KL_FAIL_("case %zu: got \"%.*s\", want \"%s\"", i, (int)got.len, got.ptr ? got.ptr : "",
                     cases[i].want);
    }
    ASSERT_EQ_SLICE(kl_package_trim(KL_STR("/System/Library/Frameworks/UIKit.framework/UIKit")),
                    "UIKit");
}

static void test_predicates(void)
{
    struct kl_frame main_sym = {.function = S("main"), .status = S("symbolicated")};
    struct kl_frame uimain = {.function = S("UIApplicationMain"), .status = S("symbolicated")};
    struct kl_frame main_raw = {.function = S("main")};
    struct kl_frame other = {.function = S("mainly"), .status = S("symbolicated")};
    ASSERT_TRUE(kl_frame_is_main(&main_sym));
    ASSERT_TRUE(kl_frame_is_main(&uimain));
    ASSERT_TRUE(!kl_frame_is_main(&main_raw));
    ASSERT_TRUE(!kl_frame_is_main(&other));

    static const struct {
        struct kl_frame f;
        bool want;
    } syn[] = {
        {{.package = S("apex/com.android.art/lib64/libart.so")}, true},
        {{.package = S("/apex/com.android.art/lib64/libart.so")}, true},
        {{.package = S("apex/com.android.art/lib64/libjavacore.so")}, false},
        {{.package = S("system/lib64/libhwui.so")}, false},
        {{.package = S("<anonymous:7f8a0000>")}, true},
        {{.package = S("<anonymous:7f8a0000>"), .function = S("")}, true},
        {{.package = S("<anonymous:7f8a0000>"), .function = S("doWork")}, false},
        {{.function = S("libart.so")}, false},
        {{.in_app = KL_UNSET}, false},
    };
    for (size_t i = 0; i < sizeof syn / sizeof syn[0]; i++)
        if (kl_frame_is_synthetic_android(&syn[i].f) != syn[i].want)
            KL_FAIL_("synthetic case %zu: want %d", i, syn[i].want);

    ASSERT_TRUE(kl__normalize_python_stdlib_sorted());
}

/* ------------------------------------------------------------------------------------ */
/* Frame normalization through kl_normalize_run (v1)                                      */

static void test_frame_fields(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "cocoa");
    struct kl_sample_data *d = &p->data;
    /* 0: status from data; no platform; app package -> in_app true */
    add_frame(p, d,
              (struct kl_frame){.function = S("foo"),
                                .package = S(APP_OCK "/App"),
                                .data_symbolicator_status = S("symbolicated")});
    /* 1: empty data status leaves status absent */
    add_frame(p, d,
              (struct kl_frame){.function = S("bar"),
                                .package = S("/usr/lib/libobjc.A.dylib"),
                                .data_symbolicator_status = S("")});
    /* 2: SDK in_app kept: same platform as the profile, even though the rules say system */
    add_frame(p, d,
              (struct kl_frame){.platform = S("cocoa"),
                                .package = S("/usr/lib/libobjc.A.dylib"),
                                .in_app = KL_TRUE});
    /* 3: React Native JS frame in a cocoa profile: SDK in_app ignored, js rules apply */
    add_frame(p, d,
              (struct kl_frame){.platform = S("javascript"),
                                .abs_path = S("app:///node_modules/react/index.js"),
                                .in_app = KL_TRUE});
    /* 4: symbolicated main in the app: status filled first, then main is system */
    add_frame(p, d,
              (struct kl_frame){.function = S("main"),
                                .package = S(APP_OCK "/App"),
                                .data_symbolicator_status = S("symbolicated")});
    /* 5: preset status kept when data has none */
    add_frame(p, d, (struct kl_frame){.function = S("baz"), .status = S("missing")});
    STACK(p, d, 0, 1, 2, 3, 4, 5);
    uint32_t t = add_thread(p, d, 1);
    add_sample(p, d, 0, t);
    add_sample(p, d, 0, t);

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    struct kl_frame *f = d->frames.items;
    ASSERT_EQ_SLICE(f[0].status, "symbolicated");
    ASSERT_EQ_SLICE(f[0].platform, "cocoa");
    ASSERT_EQ_INT(f[0].in_app, KL_TRUE);
    ASSERT_TRUE(!kl_str_is_set(f[1].status));
    ASSERT_EQ_SLICE(f[1].platform, "cocoa");
    ASSERT_EQ_INT(f[1].in_app, KL_FALSE);
    ASSERT_EQ_INT(f[2].in_app, KL_TRUE);
    ASSERT_EQ_SLICE(f[3].platform, "javascript");
    ASSERT_EQ_INT(f[3].in_app, KL_FALSE);
    ASSERT_EQ_SLICE(f[4].status, "symbolicated");
    ASSERT_EQ_INT(f[4].in_app, KL_FALSE);
    ASSERT_EQ_SLICE(f[5].status, "missing");
    ASSERT_EQ_INT(f[5].in_app, KL_FALSE); /* no package */
    /* filled platforms are the interned copy */
    ASSERT_TRUE(f[0].platform.ptr == f[1].platform.ptr);
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* §6.2 cocoa main trim                                                                   */

static void test_cocoa_main_trim(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "cocoa");
    struct kl_sample_data *d = &p->data;
    add_frame(p, d,
              (struct kl_frame){.function = S("leaf"),
                                .data_symbolicator_status = S("symbolicated")}); /* 0 */
    add_frame(p, d,
              (struct kl_frame){.function = S("main"),
                                .data_symbolicator_status = S("symbolicated")}); /* 1 */
    add_frame(p, d, (struct kl_frame){.function = S("start")});                  /* 2: raw */
    add_frame(p, d,
              (struct kl_frame){.function = S("dyld_start"),
                                .data_symbolicator_status = S("symbolicated")}); /* 3 */
    add_frame(p, d, (struct kl_frame){.function = S("other")});                  /* 4 */

    STACK(p, d, 0, 1, 2, 3);                         /* s0 -> [0,1,3] */
    STACK(p, d, 0, 1);                               /* s1: main is the root -> as is */
    STACK(p, d, 4);                                  /* s2: no main -> as is */
    STACK_EMPTY(p, d);                               /* s3 */
    STACK(p, d, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2); /* s4: main 11 from the root -> as is */
    STACK(p, d, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3);    /* s5: main 10th from root -> [0,1,3] */
    STACK(p, d, 1, 2, 4, 3);                         /* s6: main at the leaf -> [1,3] */
    /* no samples: idle replacement has nothing to do */

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(kl_stack_count(d), 7);
    ASSERT_STACK(d, 0, 0, 1, 3);
    ASSERT_STACK(d, 1, 0, 1);
    ASSERT_STACK(d, 2, 4);
    ASSERT_STACK_EMPTY(d, 3);
    ASSERT_STACK(d, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2);
    ASSERT_STACK(d, 5, 0, 1, 3);
    ASSERT_STACK(d, 6, 1, 3);
    ASSERT_TRUE(csr_ok(d));
    ASSERT_EQ_U64(d->stack_frames.len, 3 + 2 + 1 + 0 + 12 + 3 + 2);
    kl_arena_release(&a);
}

/* The frame trimmed on is the last one named main, symbolicated or not. */
static void test_cocoa_main_trim_last_main(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "cocoa");
    struct kl_sample_data *d = &p->data;
    add_frame(p, d, (struct kl_frame){.function = S("leaf")}); /* 0 */
    add_frame(p, d,
              (struct kl_frame){.function = S("main"),
                                .data_symbolicator_status = S("symbolicated")}); /* 1 */
    add_frame(p, d, (struct kl_frame){.function = S("start")});                  /* 2 */
    add_frame(p, d, (struct kl_frame){.function = S("main")});                   /* 3 */
    STACK(p, d, 0, 1, 2); /* main here is not the one trimmed on */
    STACK(p, d, 0, 3, 2); /* -> [0,3] */

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_STACK(d, 0, 0, 1, 2);
    ASSERT_STACK(d, 1, 0, 3);
    ASSERT_TRUE(csr_ok(d));
    kl_arena_release(&a);
}

/* Main trim is for cocoa only. */
static void test_main_trim_cocoa_only(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "rust");
    struct kl_sample_data *d = &p->data;
    add_frame(p, d, (struct kl_frame){.function = S("main")});
    add_frame(p, d, (struct kl_frame){.function = S("start")});
    STACK(p, d, 0, 1);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_STACK(d, 0, 0, 1);
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* §6.2 python module trim                                                                */

static void build_python(struct kl_profile *p)
{
    struct kl_sample_data *d = &p->data;
    add_frame(p, d,
              (struct kl_frame){.filename = S("<string>"),
                                .function = S("<module>"),
                                .module = S("__main__")});                                /* 0 */
    add_frame(p, d, (struct kl_frame){.module = S("app.util"), .function = S("foobar")}); /* 1 */
    add_frame(p, d,
              (struct kl_frame){.filename = S("<string>"), .function = S("<module>")}); /* 2 */
    STACK(p, d, 1, 0); /* s0 -> [1] */
    STACK(p, d, 0);    /* s1 -> [] */
    STACK(p, d, 0, 1); /* s2: root is not the module frame */
    STACK(p, d, 1, 2); /* s3: only the first <module> frame is trimmed on */
    STACK_EMPTY(p, d); /* s4 */
    uint32_t t = add_thread(p, d, 1);
    add_sample(p, d, 0, t);
    add_sample(p, d, 1, t);
    add_sample(p, d, 0, t);
}

static void test_python_module_trim_v1(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "python");
    build_python(p);
    struct kl_sample_data *d = &p->data;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    /* s1 became empty, so sample 1 is idle between two samples on s0=[1]: common [1] */
    ASSERT_EQ_U64(kl_stack_count(d), 6);
    ASSERT_STACK(d, 0, 1);
    ASSERT_STACK_EMPTY(d, 1);
    ASSERT_STACK(d, 2, 0, 1);
    ASSERT_STACK(d, 3, 1, 2);
    ASSERT_STACK_EMPTY(d, 4);
    ASSERT_STACK(d, 5, 1);
    ASSERT_EQ_INT(d->samples.items[1].stack_id, 5);
    ASSERT_EQ_INT(d->samples.items[1].idle, 1);
    ASSERT_EQ_INT(d->samples.items[0].idle, 0);
    ASSERT_TRUE(csr_ok(d));
    ASSERT_EQ_INT(d->frames.items[0].in_app, KL_TRUE); /* __main__ is not stdlib */
    kl_arena_release(&a);
}

static void test_python_module_trim_v2(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V2, "python");
    p->version = KL_STR("2");
    build_python(p);
    struct kl_sample_data *d = &p->data;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    /* same trims, but chunks get no idle replacement */
    ASSERT_EQ_U64(kl_stack_count(d), 5);
    ASSERT_STACK(d, 0, 1);
    ASSERT_STACK_EMPTY(d, 1);
    ASSERT_STACK(d, 2, 0, 1);
    ASSERT_STACK(d, 3, 1, 2);
    ASSERT_STACK_EMPTY(d, 4);
    ASSERT_EQ_INT(d->samples.items[1].stack_id, 1);
    ASSERT_EQ_INT(d->samples.items[1].idle, 0);
    ASSERT_TRUE(csr_ok(d));
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* §6.2 idle stack replacement (v1)                                                       */

/* Frames 0..4, stacks S0=[] S1=[0,1,2] S2=[3,1,2] S3=[4]. */
static void build_idle_base(struct kl_profile *p)
{
    struct kl_sample_data *d = &p->data;
    static const char *const names[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        add_frame(p, d, (struct kl_frame){.function = kl_str_c(names[i])});
    STACK_EMPTY(p, d);
    STACK(p, d, 0, 1, 2);
    STACK(p, d, 3, 1, 2);
    STACK(p, d, 4);
}

static void test_idle_replacement_threads(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "node");
    struct kl_sample_data *d = &p->data;
    build_idle_base(p);
    uint32_t t7 = add_thread(p, d, 7); /* index 0 */
    uint32_t t3 = add_thread(p, d, 3); /* index 1, but handled first (lower id) */
    static const struct {
        uint32_t stack;
        int thread; /* 7 or 3 */
    } in[] = {
        {0, 7}, /* 0: leading idle */
        {1, 7}, /* 1 */
        {0, 3}, /* 2: leading idle */
        {0, 7}, /* 3: middle idle */
        {0, 7}, /* 4: middle idle */
        {1, 3}, /* 5 */
        {2, 7}, /* 6 */
        {0, 3}, /* 7: middle idle */
        {3, 3}, /* 8 */
        {0, 7}, /* 9: trailing idle */
        {0, 3}, /* 10: trailing idle */
        {0, 7}, /* 11: trailing idle */
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        add_sample(p, d, in[i].stack, in[i].thread == 7 ? t7 : t3);

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);

    /* thread 3 first: S1 .. S3 share nothing -> stack 4 = [];
     * then thread 7: S1 .. S2 share [1,2] -> stack 5 = [1,2] */
    ASSERT_EQ_U64(kl_stack_count(d), 6);
    ASSERT_STACK_EMPTY(d, 4);
    ASSERT_STACK(d, 5, 1, 2);
    ASSERT_STACK(d, 1, 0, 1, 2); /* existing stacks untouched */
    ASSERT_STACK(d, 2, 3, 1, 2);
    static const uint32_t want_stack[] = {0, 1, 0, 5, 5, 1, 2, 4, 3, 0, 0, 0};
    static const uint8_t want_idle[] = {1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1};
    ASSERT_EQ_U64(d->samples.len, 12);
    for (size_t i = 0; i < 12; i++) {
        if (d->samples.items[i].stack_id != want_stack[i])
            KL_FAIL_("sample %zu: stack %u, want %u", i, d->samples.items[i].stack_id,
                     want_stack[i]);
        if (d->samples.items[i].idle != want_idle[i])
            KL_FAIL_("sample %zu: idle %u, want %u", i, d->samples.items[i].idle, want_idle[i]);
        ASSERT_EQ_U64(d->samples.items[i].ts_ns, i * 10000000ull); /* order kept */
    }
    ASSERT_TRUE(csr_ok(d));
    kl_arena_release(&a);
}

/* Every idle run gets its own appended stack, even when an equal one exists. */
static void test_idle_replacement_runs(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "node");
    struct kl_sample_data *d = &p->data;
    build_idle_base(p);
    uint32_t t = add_thread(p, d, 1);
    static const uint32_t in[] = {1, 0, 2, 0, 0, 1, 0, 1};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        add_sample(p, d, in[i], t);

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    /* runs: [1] between S1,S2 -> 4=[1,2]; [3,4] between S2,S1 -> 5=[1,2];
     * [6] between S1,S1 -> 6=[0,1,2] (the whole stack) */
    ASSERT_EQ_U64(kl_stack_count(d), 7);
    ASSERT_STACK(d, 4, 1, 2);
    ASSERT_STACK(d, 5, 1, 2);
    ASSERT_STACK(d, 6, 0, 1, 2);
    static const uint32_t want_stack[] = {1, 4, 2, 5, 5, 1, 6, 1};
    static const uint8_t want_idle[] = {0, 1, 0, 1, 1, 0, 1, 0};
    for (size_t i = 0; i < 8; i++) {
        ASSERT_EQ_INT(d->samples.items[i].stack_id, want_stack[i]);
        ASSERT_EQ_INT(d->samples.items[i].idle, want_idle[i]);
    }
    ASSERT_TRUE(csr_ok(d));
    kl_arena_release(&a);
}

/* A thread that is idle throughout: every sample marked, nothing appended. */
static void test_idle_only_thread(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V1, "node");
    struct kl_sample_data *d = &p->data;
    build_idle_base(p);
    uint32_t t = add_thread(p, d, 1);
    add_sample(p, d, 0, t);
    add_sample(p, d, 0, t);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(kl_stack_count(d), 4);
    ASSERT_EQ_INT(d->samples.items[0].idle, 1);
    ASSERT_EQ_INT(d->samples.items[1].idle, 1);
    ASSERT_EQ_INT(d->samples.items[1].stack_id, 0);
    kl_arena_release(&a);
}

/* Chunks keep their idle samples as they are. */
static void test_no_idle_replacement_v2(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V2, "node");
    p->version = KL_STR("2");
    struct kl_sample_data *d = &p->data;
    build_idle_base(p);
    uint32_t t = add_thread(p, d, 1);
    add_sample(p, d, 1, t);
    add_sample(p, d, 0, t);
    add_sample(p, d, 2, t);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(kl_stack_count(d), 4);
    ASSERT_EQ_INT(d->samples.items[1].stack_id, 0);
    ASSERT_EQ_INT(d->samples.items[1].idle, 0);
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* §6.2 Android sample chunks: synthetic frames dropped, stacks reindexed                 */

static void build_android_chunk(struct kl_profile *p)
{
    struct kl_sample_data *d = &p->data;
    add_frame(p, d, (struct kl_frame){.function = S("app")}); /* 0 -> 0 */
    add_frame(p, d,
              (struct kl_frame){.package = S("apex/com.android.art/lib64/libart.so")}); /* 1 x */
    add_frame(p, d, (struct kl_frame){.package = S("system/lib64/libhwui.so")});        /* 2 -> 1 */
    add_frame(p, d,
              (struct kl_frame){.package = S("/apex/com.android.art/lib64/libart.so")}); /* 3 x */
    add_frame(p, d, (struct kl_frame){.function = S("app2")});                /* 4 -> 2 */
    add_frame(p, d, (struct kl_frame){.package = S("<anonymous:7f8a0000>")}); /* 5 x */
    add_frame(p, d,
              (struct kl_frame){.package = S("<anonymous:7f8a0000>"),
                                .function = S("doWork")}); /* 6 -> 3 */
    add_frame(p, d, (struct kl_frame){.package = S("<anonymous:1>"), .function = S("")}); /* 7 x */
    STACK(p, d, 0, 1, 2, 3, 4); /* -> [0,1,2] */
    STACK(p, d, 1, 3);          /* -> [] */
    STACK(p, d, 2);             /* -> [1] */
    STACK(p, d, 5, 6, 7, 0);    /* -> [3,0] */
    STACK(p, d, 0, 99, 8);      /* out-of-range ids kept as they are */
    uint32_t t = add_thread(p, d, 1);
    add_sample(p, d, 0, t);
    add_sample(p, d, 1, t);
    add_sample(p, d, 2, t);
}

static void test_android_synthetic_drop(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V2, "android");
    p->version = KL_STR("2");
    build_android_chunk(p);
    struct kl_sample_data *d = &p->data;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);

    ASSERT_EQ_U64(d->frames.len, 4);
    ASSERT_EQ_SLICE(d->frames.items[0].function, "app");
    ASSERT_EQ_SLICE(d->frames.items[1].package, "system/lib64/libhwui.so");
    ASSERT_EQ_SLICE(d->frames.items[2].function, "app2");
    ASSERT_EQ_SLICE(d->frames.items[3].function, "doWork");
    ASSERT_EQ_U64(kl_stack_count(d), 5);
    ASSERT_STACK(d, 0, 0, 1, 2);
    ASSERT_STACK_EMPTY(d, 1);
    ASSERT_STACK(d, 2, 1);
    ASSERT_STACK(d, 3, 3, 0);
    ASSERT_STACK(d, 4, 0, 99, 8);
    ASSERT_TRUE(csr_ok(d));
    /* samples address stacks: untouched, and no idle replacement for chunks */
    ASSERT_EQ_INT(d->samples.items[0].stack_id, 0);
    ASSERT_EQ_INT(d->samples.items[1].stack_id, 1);
    ASSERT_EQ_INT(d->samples.items[1].idle, 0);
    ASSERT_EQ_INT(d->samples.items[2].stack_id, 2);
    /* then the frames were normalized as android frames */
    ASSERT_EQ_SLICE(d->frames.items[0].platform, "android");
    ASSERT_EQ_INT(d->frames.items[0].in_app, KL_TRUE);
    ASSERT_EQ_INT(d->frames.items[1].in_app, KL_FALSE);
    ASSERT_EQ_INT(d->frames.items[3].in_app, KL_TRUE);
    kl_arena_release(&a);
}

static void test_android_drop_only_on_android(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V2, "cocoa");
    p->version = KL_STR("2");
    build_android_chunk(p);
    struct kl_sample_data *d = &p->data;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(d->frames.len, 8);
    ASSERT_STACK(d, 0, 0, 1, 2, 3, 4);
    ASSERT_STACK(d, 3, 5, 6, 7, 0);
    kl_arena_release(&a);
}

/* No synthetic frame: nothing moves. */
static void test_android_drop_noop(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_SAMPLE_V2, "android");
    struct kl_sample_data *d = &p->data;
    add_frame(p, d, (struct kl_frame){.function = S("app")});
    add_frame(p, d, (struct kl_frame){.package = S("system/lib64/libhwui.so")});
    STACK(p, d, 0, 1);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(d->frames.len, 2);
    ASSERT_STACK(d, 0, 0, 1);
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* Legacy Android: methods, js_profile, proguard image                                    */

static void test_android_legacy(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_ANDROID, "android");
    p->data.present = false;
    p->android.present = true;
    struct kl_android_method m0 = {.id = 1, .class_name = S("com.example.A"), .name = S("f")};
    struct kl_android_method m1 = {.id = 2, .name = S("g"), .platform = S("java")};
    kl_vec_push(&a, &p->android.methods, m0);
    kl_vec_push(&a, &p->android.methods, m1);

    struct kl_sample_data *js = &p->js_data;
    js->present = true;
    add_frame(p, js, (struct kl_frame){.function = S("[Native] functionPrototypeApply")}); /* 0 */
    add_frame(p, js,
              (struct kl_frame){.function = S("render"),
                                .abs_path = S("app:///index.android.bundle")}); /* 1 */
    STACK(p, js, 0);                                                            /* S0 */
    STACK_EMPTY(p, js);                                                         /* S1 */
    STACK(p, js, 1, 0);                                                         /* S2 */
    uint32_t t = add_thread(p, js, 1);
    add_sample(p, js, 2, t);
    add_sample(p, js, 1, t);
    add_sample(p, js, 0, t);

    struct kl_image img = {.type = S("proguard"), .uuid = S("other")};
    kl_vec_push(&a, &p->images, img);
    p->has_debug_meta = true;
    p->build_id = KL_STR("a1bd-e45t");
    kl_kv_set(&a, &p->tx_tags, KL_STR("device.class"), KL_STR("2"));
    p->has_tx_tags = true;

    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);

    ASSERT_EQ_SLICE(p->android.methods.items[0].platform, "android");
    ASSERT_EQ_SLICE(p->android.methods.items[1].platform, "java");

    ASSERT_EQ_SLICE(js->frames.items[0].platform, "javascript");
    ASSERT_EQ_INT(js->frames.items[0].in_app, KL_FALSE);
    ASSERT_EQ_SLICE(js->frames.items[1].platform, "javascript");
    ASSERT_EQ_INT(js->frames.items[1].in_app, KL_TRUE);
    /* idle between S2=[1,0] and S0=[0]: common root [0] appended as stack 3 */
    ASSERT_EQ_U64(kl_stack_count(js), 4);
    ASSERT_STACK(js, 3, 0);
    ASSERT_EQ_INT(js->samples.items[1].stack_id, 3);
    ASSERT_EQ_INT(js->samples.items[1].idle, 1);

    ASSERT_EQ_U64(p->images.len, 2);
    ASSERT_EQ_SLICE(p->images.items[1].type, "proguard");
    ASSERT_EQ_SLICE(p->images.items[1].uuid, "a1bd-e45t");
    ASSERT_TRUE(!kl_str_is_set(p->build_id));
    ASSERT_EQ_SLICE(p->device_classification, "medium");
    kl_arena_release(&a);
}

static void test_android_legacy_build_id(void)
{
    struct kl_arena a;

    /* no debug_meta: no image list to append to; build_id still dropped */
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_ANDROID, "android");
    p->build_id = KL_STR("a1bd-e45t");
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(p->images.len, 0);
    ASSERT_TRUE(!kl_str_is_set(p->build_id));
    kl_arena_release(&a);

    /* empty build_id: nothing appended */
    kl_arena_init(&a);
    p = mk(&a, KL_KIND_ANDROID, "android");
    p->has_debug_meta = true;
    p->build_id = KL_STR("");
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(p->images.len, 0);
    ASSERT_TRUE(!kl_str_is_set(p->build_id));
    kl_arena_release(&a);

    /* empty image list present: the proguard image becomes its only entry */
    kl_arena_init(&a);
    p = mk(&a, KL_KIND_ANDROID, "android");
    p->has_debug_meta = true;
    p->build_id = KL_STR("a1bd-e45t");
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_U64(p->images.len, 1);
    ASSERT_EQ_SLICE(p->images.items[0].type, "proguard");
    ASSERT_EQ_SLICE(p->images.items[0].uuid, "a1bd-e45t");
    kl_arena_release(&a);
}

static void test_android_chunk_methods(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_ANDROID_CHUNK, "android");
    p->version = KL_STR("2.android-trace");
    p->build_id = KL_STR("a1bd-e45t");
    p->has_debug_meta = true;
    struct kl_android_method m0 = {.id = 1, .class_name = S("com.example.A"), .name = S("f")};
    kl_vec_push(&a, &p->android.methods, m0);
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), 0);
    ASSERT_EQ_SLICE(p->android.methods.items[0].platform, "android");
    /* chunks keep build_id and get no image */
    ASSERT_EQ_SLICE(p->build_id, "a1bd-e45t");
    ASSERT_EQ_U64(p->images.len, 0);
    kl_arena_release(&a);
}

/* ------------------------------------------------------------------------------------ */
/* §5.7 device classification                                                             */

static void test_device_classification(void)
{
    static const struct {
        const char *platform;
        enum kl_profile_kind kind;
        const char *version; /* NULL: absent */
        const char *tag;     /* NULL: no device.class tag */
        const char *want;    /* NULL: left unset */
    } cases[] = {
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "1", "low"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "2", "medium"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "3", "high"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "4", "unknown"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "0", "unknown"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "", "unknown"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", "high", "unknown"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", " 1", "unknown"},
        {"cocoa", KL_KIND_SAMPLE_V1, "1", NULL, NULL},
        {"android", KL_KIND_ANDROID, NULL, "3", "high"},
        {"android", KL_KIND_ANDROID, NULL, "1", "low"},
        {"android", KL_KIND_ANDROID, NULL, NULL, NULL},
        {"android", KL_KIND_ANDROID_CHUNK, "2.android-trace", "1", "low"},
        {"android", KL_KIND_ANDROID_CHUNK, "2", "1", NULL},
        {"cocoa", KL_KIND_SAMPLE_V2, "2", "1", NULL},
        {"android", KL_KIND_SAMPLE_V2, "2", "3", NULL},
        {"python", KL_KIND_SAMPLE_V1, "1", "1", NULL},
        {"javascript", KL_KIND_SAMPLE_V1, "1", "2", NULL},
        {"node", KL_KIND_SAMPLE_V1, "1", "3", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_profile *p = mk(&a, cases[i].kind, cases[i].platform);
        if (cases[i].version)
            p->version = kl_str_c(cases[i].version);
        kl_kv_set(&a, &p->tx_tags, KL_STR("environment"), KL_STR("prod"));
        if (cases[i].tag)
            kl_kv_set(&a, &p->tx_tags, KL_STR("device.class"), kl_str_c(cases[i].tag));
        p->has_tx_tags = true;
        struct kl_err err = KL_ERR_INIT;
        if (kl_normalize_run(p, &err) != 0)
            KL_FAIL_("case %zu: run failed: %s", i, err.msg);
        struct kl_str got = p->device_classification;
        if (!cases[i].want) {
            if (kl_str_is_set(got))
                KL_FAIL_("case %zu: got \"%.*s\", want unset", i, (int)got.len, got.ptr);
        } else if (!kl_str_eq_c(got, cases[i].want)) {
            KL_FAIL_("case %zu: got \"%.*s\", want \"%s\"", i, (int)got.len,
                     got.ptr ? got.ptr : "(unset)", cases[i].want);
        }
        kl_arena_release(&a);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                 */

static void test_errors(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = mk(&a, KL_KIND_UNKNOWN, "cocoa");
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_normalize_run(p, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_INTERNAL);
    kl_arena_release(&a);

    kl_arena_init(&a);
    p = mk(&a, KL_KIND_SAMPLE_V1, "node");
    build_idle_base(p);
    uint32_t t = add_thread(p, &p->data, 1);
    add_sample(p, &p->data, 1, t);
    add_sample(p, &p->data, UINT32_MAX, t);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_normalize_run(p, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_PROFILING_MALFORMED_SAMPLES);
    kl_arena_release(&a);

    kl_arena_init(&a);
    p = mk(&a, KL_KIND_SAMPLE_V1, "node");
    build_idle_base(p);
    add_thread(p, &p->data, 1);
    add_sample(p, &p->data, 1, 5);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_normalize_run(p, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_PROFILING_MALFORMED_SAMPLES);
    kl_arena_release(&a);

    /* cocoa main trim must read the frames root-side of main */
    kl_arena_init(&a);
    p = mk(&a, KL_KIND_SAMPLE_V1, "cocoa");
    add_frame(p, &p->data, (struct kl_frame){.function = S("main")});
    STACK(p, &p->data, 0, 7);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_normalize_run(p, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_PROFILING_MALFORMED_STACKS);
    kl_arena_release(&a);
}

int main(void)
{
    KL_RUN(test_in_app_rules);
    KL_RUN(test_module_or_package);
    KL_RUN(test_predicates);
    KL_RUN(test_frame_fields);
    KL_RUN(test_cocoa_main_trim);
    KL_RUN(test_cocoa_main_trim_last_main);
    KL_RUN(test_main_trim_cocoa_only);
    KL_RUN(test_python_module_trim_v1);
    KL_RUN(test_python_module_trim_v2);
    KL_RUN(test_idle_replacement_threads);
    KL_RUN(test_idle_replacement_runs);
    KL_RUN(test_idle_only_thread);
    KL_RUN(test_no_idle_replacement_v2);
    KL_RUN(test_android_synthetic_drop);
    KL_RUN(test_android_drop_only_on_android);
    KL_RUN(test_android_drop_noop);
    KL_RUN(test_android_legacy);
    KL_RUN(test_android_legacy_build_id);
    KL_RUN(test_android_chunk_methods);
    KL_RUN(test_device_classification);
    KL_RUN(test_errors);
    KL_TEST_DONE();
}
