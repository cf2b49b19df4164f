/* occurrence_int.h - internals shared by the occurrence module's files; no other module
 * includes this.
 *
 * tables.c holds the detection jobs and the category table as data (transcribed from
 * vroomrs src/occurrence/detect_frame.rs and mod.rs); occurrence.c holds all logic;
 * md5.c is a compact RFC 1321 MD5 for the issue fingerprints.
 */
#ifndef KL_OCCURRENCE_OCCURRENCE_INT_H
#define KL_OCCURRENCE_OCCURRENCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Categories of detected frames, in the order of kl__occ_categories[]. */
enum kl__occ_category {
    KL__OCC_BASE64_DECODE,
    KL__OCC_BASE64_ENCODE,
    KL__OCC_COMPRESSION,
    KL__OCC_CORE_DATA_BLOCK,
    KL__OCC_CORE_DATA_MERGE,
    KL__OCC_CORE_DATA_READ,
    KL__OCC_CORE_DATA_WRITE,
    KL__OCC_DECOMPRESSION,
    KL__OCC_FILE_READ,
    KL__OCC_FILE_WRITE,
    KL__OCC_FRAME_DROP,
    KL__OCC_HTTP,
    KL__OCC_IMAGE_DECODE,
    KL__OCC_IMAGE_ENCODE,
    KL__OCC_JSON_DECODE,
    KL__OCC_JSON_ENCODE,
    KL__OCC_ML_MODEL_INFERENCE,
    KL__OCC_ML_MODEL_LOAD,
    KL__OCC_REGEX,
    KL__OCC_SQL,
    KL__OCC_SOURCE_CONTEXT,
    KL__OCC_THREAD_WAIT,
    KL__OCC_VIEW_INFLATION,
    KL__OCC_VIEW_LAYOUT,
    KL__OCC_VIEW_RENDER,
    KL__OCC_VIEW_UPDATE,
    KL__OCC_XPC,
    KL__OCC_N_CATEGORIES
};

struct kl__occ_category_info {
    const char *name;  /* "json_decode" */
    const char *title; /* issue title */
    uint32_t type;     /* issue type; 0 = not sent to Sentry */
};

/* Which threads a job looks at. */
enum kl__occ_thread {
    KL__OCC_ACTIVE_THREAD, /* the transaction's active thread */
    KL__OCC_MAIN_THREAD,   /* cocoa: the thread named "main"; none elsewhere */
    KL__OCC_ALL_THREADS,
};

struct kl__occ_rule {
    const char *package;  /* module_or_package, compared exactly */
    const char *function; /* compared exactly (Android: the name before its first '(') */
    uint8_t category;     /* enum kl__occ_category */
};

/* A job's rules are matched through a hash table of twice this many slots (occurrence.c);
 * tables.c checks every job against it at compile time. */
#define KL__OCC_MAX_RULES_PER_JOB 512

struct kl__occ_job {
    const char *platform; /* profile platform the job runs for */
    uint8_t thread;       /* enum kl__occ_thread */
    bool strip_signature; /* Android: match on the name up to the first '(' */
    uint64_t min_duration_ns;
    uint32_t min_samples;
    const struct kl__occ_rule *rules;
    uint32_t n_rules;
};

extern const struct kl__occ_category_info kl__occ_categories[KL__OCC_N_CATEGORIES];
extern const struct kl__occ_job kl__occ_jobs[];
extern const uint32_t kl__occ_n_jobs;

/* MD5 of data[0..len) as 32 lowercase hex digits plus NUL. Streaming form for the
 * fingerprint's concatenation. */
struct kl__md5 {
    uint32_t h[4];
    uint64_t total; /* bytes fed */
    uint8_t block[64];
    size_t fill;
};
void kl__md5_init(struct kl__md5 *m);
void kl__md5_update(struct kl__md5 *m, const void *data, size_t len);
void kl__md5_hex(struct kl__md5 *m, char out[33]);

#endif
