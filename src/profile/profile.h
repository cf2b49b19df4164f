/* profile.h - the profile model every format loads into
 *
 * What: one in-memory model for Sentry's sample format v1 (transaction profiles), sample
 * format v2 (continuous chunks), legacy Android transaction profiles and Android trace
 * chunks, and for what later importers (Chrome trace, V8, pprof...) produce. Parsers fill it,
 * validation and normalization edit it in place, writers (stored form, speedscope) read it.
 *
 * Model:
 *   struct kl_profile        metadata (ids, platform, device, os, release, transaction...)
 *     .data                  struct kl_sample_data: the sampled part
 *        .frames[]           struct kl_frame; strings interned (equal strings, equal ptr)
 *        .stack_frames[]     all stacks' frame indices, flat, leaf first (Sentry's order)
 *        .stack_off[]        stack i = stack_frames[stack_off[i] .. stack_off[i+1])
 *        .samples[]          struct kl_sample: time, stack index, thread index, queue index
 *        .threads[]          struct kl_thread: id as sent + metadata (name, priority)
 *        .queues[]           struct kl_queue: cocoa dispatch queue address -> label
 *     .js_data               React Native's embedded js_profile (Android), same shape
 *     .android               decoded ART method trace (methods, events, threads)
 *     .measurements[]        named series of (time, value)
 *     .images[]              debug_meta.images
 *     .transaction           the transaction the profile belongs to (v1, legacy Android)
 *     .tx_metadata/.tx_tags  string maps merged from the transaction event (spec §3.8)
 *   Times: v1 samples carry ns since `timestamp`; v2 samples carry unix seconds as sent
 *   (ts_s, kept exactly for output) and ts_ns = ts_s*1e9 truncated (for ordering and trees).
 *
 * Why: stacks as one flat index array (CSR) instead of an array of arrays: one allocation,
 * cache-friendly walks, and 4 bytes per entry; samples are 32-byte records. A 242k-sample,
 * 20k-stack profile is ~15 MB in this form against ~30 MB of JSON.
 *
 * Ownership: everything lives in the arena given to the parser (p->arena), including the
 * interned strings; slices may also point into the JSON doc's string buffer, which the same
 * arena keeps alive. Release the arena to free the profile.
 * Invariants after validation (kl_validate_run): every sample's stack < stack count, every
 * stack entry < frame count, every sample's thread < thread count.
 * Errors/threads: plain data; one thread at a time.
 * Limits: the KL_MAX_* constants below, enforced by the parsers before allocating.
 * Tests: tests/unit/test_validate.c, tests/unit/test_normalize.c, tests/golden/.
 */
#ifndef KL_PROFILE_PROFILE_H
#define KL_PROFILE_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/str.h"
#include "base/vec.h"

/* Limits on one profile. Relay's item limit is 50 MiB of JSON; these bound what that can
 * hold in the worst case so a hostile document cannot make us allocate more than a few
 * times its own size. */
#define KL_MAX_PROFILE_BYTES (50u * 1024 * 1024) /* Relay's max_profile_size for one item */
#define KL_MAX_SAMPLES 5000000u
#define KL_MAX_STACKS 5000000u
#define KL_MAX_STACK_ENTRIES 25000000u /* sum of all stack lengths */
#define KL_MAX_STACK_DEPTH 65536u      /* frames in one stack */
#define KL_MAX_FRAMES 2000000u
#define KL_MAX_THREADS 100000u
#define KL_MAX_MEASUREMENT_VALUES 2000000u
#define KL_MAX_IMAGES 100000u
#define KL_MAX_METHODS 2000000u
#define KL_MAX_EVENTS 10000000u
#define KL_MAX_MAP_ENTRIES 100000u /* tags, metadata maps, measurements */

enum kl_profile_kind {
    KL_KIND_UNKNOWN = 0,
    KL_KIND_SAMPLE_V1,     /* "version":"1" transaction profile */
    KL_KIND_SAMPLE_V2,     /* "version":"2" continuous chunk */
    KL_KIND_ANDROID,       /* legacy Android transaction profile (no version) */
    KL_KIND_ANDROID_CHUNK, /* Android trace chunk ("2"/"2.android-trace" + sampled_profile) */
};

/* Tri-state for optional booleans (in_app, is_emulator...). */
enum kl_tri { KL_UNSET = 0, KL_FALSE = 1, KL_TRUE = 2 };

static inline enum kl_tri kl_tri_from(bool b)
{
    return b ? KL_TRUE : KL_FALSE;
}

enum kl_frame_flags {
    KL_FRAME_HAS_ADDR = 1 << 0,
    KL_FRAME_HAS_LINENO = 1 << 1,
    KL_FRAME_HAS_COLNO = 1 << 2,
    KL_FRAME_HAS_DATA = 1 << 3,    /* the frame had a "data" object */
    KL_FRAME_ORIG_IN_APP = 1 << 4, /* data.orig_in_app was recorded (in-app rules) */
};

struct kl_frame {
    struct kl_str function;
    struct kl_str module;
    struct kl_str package;
    struct kl_str filename;
    struct kl_str abs_path;
    struct kl_str platform; /* per-frame platform; filled from the profile's if absent */
    struct kl_str lang;
    struct kl_str symbol;
    struct kl_str sym_addr;
    struct kl_str status;                    /* symbolicator status ("symbolicated"...) */
    struct kl_str data_deobfuscation_status; /* data.deobfuscation_status */
    struct kl_str data_symbolicator_status;  /* data.symbolicator_status */
    uint64_t instruction_addr;
    uint32_t lineno;
    uint32_t colno;
    uint8_t flags;                /* enum kl_frame_flags */
    uint8_t in_app;               /* enum kl_tri */
    uint8_t data_js_symbolicated; /* enum kl_tri: data.symbolicated */
    uint8_t orig_in_app;          /* enum kl_tri, with KL_FRAME_ORIG_IN_APP */
};

struct kl_sample {
    uint64_t ts_ns;    /* v1: elapsed_since_start_ns; v2: (uint64)(ts_s * 1e9) */
    double ts_s;       /* v2: timestamp, unix seconds, as sent */
    uint32_t stack_id; /* index into stacks; UINT32_MAX = out of any range */
    uint32_t thread;   /* index into threads */
    int32_t queue;     /* index into queues, -1 = none */
    uint8_t idle;      /* state "idle" (set by normalization) */
};

struct kl_thread {
    struct kl_str id;   /* as the key of thread_metadata: decimal for v1, as sent for v2 */
    uint64_t id_num;    /* v1 numeric id */
    struct kl_str name; /* thread_metadata name, absent if ptr NULL */
    int32_t priority;
    bool has_priority;
    bool has_metadata; /* listed in thread_metadata */
    bool sampled;      /* referenced by at least one kept sample */
};

struct kl_queue {
    struct kl_str address; /* "0x0000000102adc700" as sent */
    struct kl_str label;
    bool referenced;
};

typedef KL_VEC(struct kl_frame) kl_vec_frame;
typedef KL_VEC(struct kl_sample) kl_vec_sample;
typedef KL_VEC(struct kl_thread) kl_vec_thread;
typedef KL_VEC(struct kl_queue) kl_vec_queue;

struct kl_sample_data {
    bool present;
    kl_vec_frame frames;
    kl_vec_u32 stack_frames; /* flat, leaf first */
    kl_vec_u32 stack_off;    /* stack count + 1 entries when non-empty */
    kl_vec_sample samples;
    kl_vec_thread threads;
    kl_vec_queue queues;
    bool has_thread_metadata; /* the key was present (written back even when emptied) */
    bool has_queue_metadata;
};

static inline size_t kl_stack_count(const struct kl_sample_data *d)
{
    return d->stack_off.len ? d->stack_off.len - 1 : 0;
}
static inline uint32_t kl_stack_len(const struct kl_sample_data *d, size_t i)
{
    return d->stack_off.items[i + 1] - d->stack_off.items[i];
}
static inline const uint32_t *kl_stack_at(const struct kl_sample_data *d, size_t i)
{
    return d->stack_frames.items + d->stack_off.items[i];
}

struct kl_mvalue {
    uint64_t t_ns; /* v1 flavor: elapsed_since_start_ns */
    double t_s;    /* v2 flavor: timestamp, unix seconds */
    double value;
};

struct kl_measurement {
    struct kl_str name;
    struct kl_str unit;
    struct kl_mvalue *values;
    size_t n;
};

struct kl_image {
    struct kl_str type; /* macho, symbolic, sourcemap, proguard, jvm, elf, pe... */
    struct kl_str code_file;
    struct kl_str debug_id; /* normalized: lowercase dashed (+ appendix) */
    struct kl_str debug_file;
    struct kl_str arch;
    struct kl_str debug_status;
    struct kl_str uuid; /* proguard/jvm: lowercase dashed */
    uint64_t image_addr, image_vmaddr, image_size;
    bool has_image_addr, has_image_vmaddr, has_image_size;
    bool has_features;
    bool has_debug_info, has_sources, has_symbols, has_unwind_info;
};

struct kl_transaction {
    bool present;
    struct kl_str id;       /* 32 lowercase hex */
    struct kl_str trace_id; /* 32 lowercase hex */
    struct kl_str name;
    struct kl_str segment_id;
    uint64_t active_thread_id;
    uint64_t relative_start_ns, relative_end_ns;
    uint64_t relative_cpu_start_ms, relative_cpu_end_ms;
    bool has_cpu_times;
};

struct kl_kv {
    struct kl_str key, value;
};
typedef KL_VEC(struct kl_kv) kl_vec_kv;

/* ---- decoded Android method trace (spec §3.5) ---- */

enum kl_android_action { KL_ANDROID_ENTER = 0, KL_ANDROID_EXIT = 1, KL_ANDROID_UNWIND = 2 };

struct kl_android_method {
    uint64_t id;
    struct kl_str class_name, name, signature, source_file, platform;
    struct kl_str data_deobfuscation_status;
    uint32_t source_line;
    bool has_source_line;
    bool has_data;
    uint8_t in_app;                          /* enum kl_tri */
    struct kl_android_method *inline_frames; /* deobfuscation result, callee first */
    uint32_t n_inline;
};

struct kl_android_event {
    uint64_t method_id;
    uint64_t thread_id;
    uint64_t wall_ns, cpu_ns, global_ns;
    uint8_t action; /* enum kl_android_action */
    bool has_method_id;
    bool has_wall, has_cpu, has_global;
    bool monotonic; /* time was {"Monotonic":...} rather than {"Global":...} */
};

struct kl_android_thread {
    uint64_t id;
    struct kl_str name;
};

struct kl_android_trace {
    bool present;
    struct kl_str clock; /* Global | Cpu | Wall | Dual */
    uint64_t start_time;
    KL_VEC(struct kl_android_method) methods;
    KL_VEC(struct kl_android_event) events;
    KL_VEC(struct kl_android_thread) threads;
};

/* ---- the profile ---- */

struct kl_profile {
    struct kl_arena *arena;
    struct kl_intern strings;
    enum kl_profile_kind kind;

    struct kl_str version;     /* as sent: "1", "2", "2.android-trace", or absent */
    struct kl_str event_id;    /* 32 lowercase hex (v1 event_id / Android profile_id) */
    struct kl_str chunk_id;    /* chunks */
    struct kl_str profiler_id; /* chunks */
    struct kl_str platform;
    struct kl_str release, dist, environment;

    int64_t timestamp_ns; /* v1/Android: RFC 3339 start; chunks: from timestamp_s */
    double timestamp_s;   /* Android chunk: unix seconds as sent */
    bool has_timestamp;

    /* device / os / runtime (v1 nested objects; legacy Android flat device_* fields) */
    struct kl_str device_architecture, device_locale, device_manufacturer, device_model;
    struct kl_str device_classification;
    uint8_t device_is_emulator; /* enum kl_tri */
    struct kl_str os_name, os_version, os_build_number;
    bool has_runtime;
    struct kl_str runtime_name, runtime_version;
    bool has_client_sdk;
    struct kl_str sdk_name, sdk_version;

    /* legacy Android */
    uint32_t android_api_level;
    bool has_android_api_level;
    struct kl_str build_id;
    KL_VEC(uint32_t) device_cpu_frequencies;
    uint64_t device_physical_memory_bytes;
    struct kl_str version_code, version_name;
    uint64_t duration_ns;          /* Android: trace elapsed time */
    struct kl_str sampled_profile; /* base64 ART trace, kept until the decoder lands */

    struct kl_transaction transaction;
    kl_vec_kv tx_metadata; /* transaction_metadata */
    kl_vec_kv tx_tags;     /* transaction_tags */
    bool has_tx_metadata, has_tx_tags;

    struct kl_sample_data data;    /* "profile" for sample formats */
    struct kl_sample_data js_data; /* Android js_profile */
    struct kl_android_trace android;

    KL_VEC(struct kl_measurement) measurements;
    bool has_measurements;
    KL_VEC(struct kl_image) images;
    bool has_debug_meta;

    /* added by processing (spec §5.1, §5.7) */
    uint64_t organization_id, project_id;
    int64_t received; /* unix seconds */
    int32_t retention_days;
    bool sampled;
};

/* A fresh, empty profile in arena a. */
struct kl_profile *kl_profile_new(struct kl_arena *a);

/* Whether the platform is one of Sentry's "UI" platforms (cocoa, android, javascript),
 * which selects the *_ui outcome categories. */
bool kl_platform_is_ui(struct kl_str platform);

/* Whether the profile is a continuous chunk (has profiler_id / chunk kinds). */
static inline bool kl_profile_is_chunk(const struct kl_profile *p)
{
    return p->kind == KL_KIND_SAMPLE_V2 || p->kind == KL_KIND_ANDROID_CHUNK;
}

/* The id outcomes are keyed on: chunk_id for chunks, else the profile's event id. */
struct kl_str kl_profile_outcome_id(const struct kl_profile *p);

/* Look up a string in a kv map (NULL ptr when absent). */
struct kl_str kl_kv_find(const kl_vec_kv *m, const char *key);
/* Set key to value in m, replacing an existing entry. Strings are borrowed. */
void kl_kv_set(struct kl_arena *a, kl_vec_kv *m, struct kl_str key, struct kl_str value);

#endif
