/* test_validate.c - one case per rejection reason, through kl_process_run
 *
 * Each row is a small profile made up for the test (spec §2.2, §3.1-3.4) and the reason
 * Relay would give it; the accepted rows check what validation kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "kl_test.h"
#include "pipeline/process.h"

/* A valid cocoa v1 profile with holes for the parts a case changes. */
static char *v1(const char *device_extra, const char *transaction, const char *samples,
                const char *stacks, const char *frames)
{
    char *out = malloc(1 << 16);
    snprintf(out, 1 << 16,
             "{\"version\":\"1\",\"event_id\":\"41fed0925670468bb0457f61a74688ec\","
             "\"platform\":\"cocoa\",\"timestamp\":\"2022-09-01T09:45:00.000Z\","
             "\"device\":{\"architecture\":\"arm64e\"%s},"
             "\"os\":{\"name\":\"iOS\",\"version\":\"16.0\",\"build_number\":\"19H253\"},"
             "%s"
             "\"profile\":{\"samples\":%s,\"stacks\":%s,\"frames\":%s,"
             "\"thread_metadata\":{\"259\":{\"name\":\"main\",\"priority\":31},\"7\":{}}}}",
             device_extra, transaction, samples, stacks, frames);
    return out;
}

#define DEV ",\"is_emulator\":false,\"locale\":\"en_US\",\"manufacturer\":\"Apple\",\"model\":\"x\""
#define TX                                                                                         \
    "\"transaction\":{\"id\":\"30976f2ddbe04ac9b6bffe6e35d4710c\",\"name\":\"launch\","            \
    "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\",\"active_thread_id\":\"259\"},"
#define SAMPLES3                                                                                   \
    "[{\"stack_id\":0,\"thread_id\":\"259\",\"elapsed_since_start_ns\":\"10\"},"                   \
    "{\"stack_id\":1,\"thread_id\":\"259\",\"elapsed_since_start_ns\":\"20\"},"                    \
    "{\"stack_id\":0,\"thread_id\":\"259\",\"elapsed_since_start_ns\":\"30\"}]"
#define STACKS "[[0,1],[1]]"
#define FRAMES                                                                                     \
    "[{\"function\":\"foo\",\"instruction_addr\":\"0xa722447ffffffffc\"},"                         \
    "{\"function\":\"main\",\"instruction_addr\":\"0x100\"}]"

static char *v2(const char *samples, const char *platform)
{
    char *out = malloc(1 << 16);
    snprintf(out, 1 << 16,
             "{\"version\":\"2\",\"chunk_id\":\"0432a0a4c25f4697bf9f0a2fcbe6a814\","
             "\"profiler_id\":\"4d229f1d3807421ba62a5f8bc295d836\",\"platform\":\"%s\","
             "\"client_sdk\":{\"name\":\"sentry.python\",\"version\":\"2.0.0\"},"
             "\"profile\":{\"samples\":%s,\"stacks\":[[0],[]],\"frames\":[{\"function\":\"f\"}]}}",
             platform, samples);
    return out;
}

static char *android(const char *extra)
{
    char *out = malloc(1 << 16);
    snprintf(out, 1 << 16,
             "{\"platform\":\"android\",\"profile_id\":\"9bd24eb4-fd81-4a00-8dde-fd035d363570\","
             "\"android_api_level\":30,\"device_cpu_frequencies\":[1,2],"
             "\"device_is_emulator\":false,\"device_locale\":\"it\",\"device_manufacturer\":\"X\","
             "\"device_model\":\"Y\",\"device_os_name\":\"android\",\"device_os_version\":\"11\","
             "\"device_physical_memory_bytes\":\"100\",\"version_code\":\"2\","
             "\"version_name\":\"1.0\",\"transaction_id\":\"7687200252294dc2af6d472cd17a828d\","
             "\"trace_id\":\"eb5d1263c7924c6aac12b5bcf2132cf6\",\"transaction_name\":\"A\"%s}",
             extra);
    return out;
}

/* base64 of an ART trace header with the given elapsed time */
static char *art_b64(const char *elapsed)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "*version\n3\ndata-file-overflow=false\nclock=dual\nelapsed-time-usec=%s\n"
                     "*threads\n1\tmain\n*methods\n*end\nSLOW",
                     elapsed);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(512);
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)hdr[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)hdr[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)hdr[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = tbl[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = tbl[v & 63];
    }
    out[o] = '\0';
    return out;
}

struct result {
    int rc;
    char reason[80];
    size_t samples;
    int n_outcomes;
    struct kl_outcome outcomes[KL_MAX_OUTCOMES];
};

static struct result run(const char *json, size_t len, enum kl_item_type type)
{
    char *buf = malloc(len + KL_PADDING);
    memcpy(buf, json, len);
    memset(buf + len, 0, KL_PADDING);
    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.item_type = type;
    o.received = 1700000000;
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_process_result res;
    struct result r = {0};
    r.rc = kl_process_run(&a, buf, len, &o, &res);
    snprintf(r.reason, sizeof r.reason, "%s", kl_reason_str(res.err.reason));
    r.samples = res.profile ? res.profile->data.samples.len : 0;
    r.n_outcomes = res.n_outcomes;
    memcpy(r.outcomes, res.outcomes, sizeof r.outcomes);
    if (r.rc != 0 && getenv("KL_TEST_VERBOSE"))
        fprintf(stderr, "  (%s: %s)\n", r.reason, res.err.msg);
    kl_arena_release(&a);
    free(buf);
    return r;
}

static void expect(const char *json, enum kl_item_type type, const char *reason)
{
    struct result r = run(json, strlen(json), type);
    ASSERT_EQ_STR(r.reason, reason);
    if (reason[0]) {
        ASSERT_EQ_INT(r.rc, -1);
        ASSERT_TRUE(r.n_outcomes >= 1);
        ASSERT_EQ_INT(r.outcomes[0].outcome, KL_OUTCOME_INVALID);
    } else {
        ASSERT_EQ_INT(r.rc, 0);
    }
}

static void test_valid_v1(void)
{
    char *j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    struct result r = run(j, strlen(j), KL_ITEM_PROFILE);
    ASSERT_EQ_INT(r.rc, 0);
    ASSERT_EQ_INT(r.samples, 3);
    /* sampled transaction profile: profile + profile_indexed; duration 30-10 ns = 0 ms: none */
    ASSERT_EQ_INT(r.n_outcomes, 2);
    ASSERT_EQ_INT(r.outcomes[0].category, KL_CAT_PROFILE);
    ASSERT_EQ_INT(r.outcomes[1].category, KL_CAT_PROFILE_INDEXED);
    ASSERT_EQ_STR(r.outcomes[0].event_id, "41fed0925670468bb0457f61a74688ec");
    free(j);
}

static void test_invalid_json(void)
{
    char *j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    /* truncated */
    struct result r = run(j, strlen(j) - 5, KL_ITEM_PROFILE);
    ASSERT_EQ_STR(r.reason, "profiling_invalid_json");
    /* invalid UTF-8 in a string */
    char *bad = strdup(j);
    char *f = strstr(bad, "\"foo\"");
    f[1] = (char)0xC3, f[2] = (char)0x28;
    expect(bad, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(bad);
    free(j);
    /* lone surrogates */
    j = v1(DEV, TX, SAMPLES3, STACKS, "[{\"function\":\"a\\ud800\"},{\"function\":\"b\"}]");
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    j = v1(DEV, TX, SAMPLES3, STACKS, "[{\"function\":\"a\\udc00x\"},{\"function\":\"b\"}]");
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    j = v1(DEV, TX, SAMPLES3, STACKS, "[{\"function\":\"a\\ud800\\u0041\"},{\"function\":\"b\"}]");
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    /* a valid pair passes */
    j = v1(DEV, TX, SAMPLES3, STACKS, "[{\"function\":\"a\\ud83d\\ude00\"},{\"function\":\"b\"}]");
    expect(j, KL_ITEM_PROFILE, "");
    free(j);
    /* a number beyond 64 bits where an integer is required */
    j = v1(DEV, TX,
           "[{\"stack_id\":184467440737095516160,\"thread_id\":\"259\","
           "\"elapsed_since_start_ns\":\"10\"}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    /* thread id as a string of digits beyond 64 bits */
    j = v1(DEV, TX,
           "[{\"stack_id\":0,\"thread_id\":\"99999999999999999999999\","
           "\"elapsed_since_start_ns\":\"10\"}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    /* duplicate field */
    j = v1(
        DEV, TX,
        "[{\"stack_id\":0,\"stack_id\":1,\"thread_id\":\"259\",\"elapsed_since_start_ns\":\"1\"}]",
        STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(j);
    /* not an object, trailing garbage */
    expect("[1,2]", KL_ITEM_PROFILE, "profiling_invalid_json");
    j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    char *trail = malloc(strlen(j) + 8);
    snprintf(trail, strlen(j) + 8, "%s {}", j);
    expect(trail, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(trail);
    free(j);
    /* missing required fields: device.architecture, event_id */
    j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    char *noarch = strdup(j);
    memcpy(strstr(noarch, "\"architecture\""), "\"arkitecture\"", 13);
    expect(noarch, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(noarch);
    free(j);
}

static void test_depth(void)
{
    /* nesting deeper than 128 inside an unknown field is still refused, as serde_json does */
    size_t depth = 200;
    char *j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    size_t n = strlen(j);
    char *deep = malloc(n + 2 * depth + 16);
    size_t o = 0;
    memcpy(deep, "{\"x\":", 5);
    o = 5;
    for (size_t i = 0; i < depth; i++)
        deep[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[o++] = ']';
    deep[o++] = ',';
    memcpy(deep + o, j + 1, n - 1);
    o += n - 1;
    deep[o] = '\0';
    expect(deep, KL_ITEM_PROFILE, "profiling_invalid_json");
    free(deep);
    free(j);
}

static void test_platform_not_supported(void)
{
    expect("{\"platform\":\"python\",\"event_id\":\"41fed0925670468bb0457f61a74688ec\"}",
           KL_ITEM_PROFILE, "profiling_platform_not_supported");
    expect("{\"version\":\"7\",\"platform\":\"cocoa\"}", KL_ITEM_PROFILE,
           "profiling_platform_not_supported");
    expect("{\"version\":\"1\",\"platform\":\"cocoa\",\"chunk_id\":"
           "\"0432a0a4c25f4697bf9f0a2fcbe6a814\"}",
           KL_ITEM_PROFILE_CHUNK, "profiling_platform_not_supported");
}

static void test_profile_metadata(void)
{
    char *j = v1(",\"is_emulator\":false", TX, SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_profile_metadata");
    free(j);
}

static void test_transaction(void)
{
    char *j = v1(DEV, "", SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_no_transaction_associated");
    free(j);
    j = v1(DEV,
           "\"transaction\":{\"id\":\"30976f2ddbe04ac9b6bffe6e35d4710c\",\"name\":\"\","
           "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\"},",
           SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_transaction_metadata");
    free(j);
    j = v1(DEV,
           "\"transaction\":{\"id\":\"00000000000000000000000000000000\",\"name\":\"a\","
           "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\"},",
           SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_transaction_metadata");
    free(j);
    j = v1(DEV,
           "\"transaction\":{\"id\":\"30976f2ddbe04ac9b6bffe6e35d4710c\",\"name\":\"a\","
           "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\",\"relative_cpu_start_ms\":5,"
           "\"relative_cpu_end_ms\":4},",
           SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_transaction_metadata");
    free(j);
    /* legacy transactions[]: the first one is used */
    j = v1(DEV,
           "\"transactions\":[{\"id\":\"30976f2ddbe04ac9b6bffe6e35d4710c\",\"name\":\"a\","
           "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\"}],",
           SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "");
    free(j);
}

static void test_samples(void)
{
    /* one sample: its thread has <= 1 sample left -> nothing */
    char *j = v1(DEV, TX, "[{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":1}]", STACKS,
                 FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_not_enough_samples");
    free(j);
    /* an interior sample pointing past the stacks */
    j = v1(DEV, TX,
           "[{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":1},"
           "{\"stack_id\":9,\"thread_id\":1,\"elapsed_since_start_ns\":2},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":3}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_malformed_samples");
    free(j);
    /* at the edge it is trimmed as idle instead (Relay's order: trim, then check) */
    j = v1(DEV, TX,
           "[{\"stack_id\":9,\"thread_id\":1,\"elapsed_since_start_ns\":1},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":2},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":3}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "");
    free(j);
    /* a stack pointing past the frames */
    j = v1(DEV, TX, SAMPLES3, "[[0,1],[5]]", FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_malformed_stacks");
    free(j);
    /* last sample after 30 s */
    j = v1(DEV, TX,
           "[{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":1},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":\"30000000001\"}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_duration_is_too_long");
    free(j);
    /* exactly 30 s is fine */
    j = v1(DEV, TX,
           "[{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":1},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":\"30000000000\"}]",
           STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "");
    free(j);
}

static void test_v1_trimming(void)
{
    /* window [15, 25] keeps one sample of thread 259... which then has too few */
    char *j = v1(DEV,
                 "\"transaction\":{\"id\":\"30976f2ddbe04ac9b6bffe6e35d4710c\",\"name\":\"a\","
                 "\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\",\"relative_start_ns\":15,"
                 "\"relative_end_ns\":\"25\"},",
                 SAMPLES3, STACKS, FRAMES);
    expect(j, KL_ITEM_PROFILE, "profiling_not_enough_samples");
    free(j);
    /* idle samples at both ends of a thread go; the middle one stays */
    j = v1(DEV, TX,
           "[{\"stack_id\":2,\"thread_id\":1,\"elapsed_since_start_ns\":1},"
           "{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":2},"
           "{\"stack_id\":2,\"thread_id\":1,\"elapsed_since_start_ns\":3},"
           "{\"stack_id\":1,\"thread_id\":1,\"elapsed_since_start_ns\":4},"
           "{\"stack_id\":2,\"thread_id\":1,\"elapsed_since_start_ns\":5}]",
           "[[0,1],[1],[]]", FRAMES);
    struct result r = run(j, strlen(j), KL_ITEM_PROFILE);
    ASSERT_EQ_INT(r.rc, 0);
    ASSERT_EQ_INT(r.samples, 3);
    free(j);
}

static void test_v2(void)
{
    char *j = v2("[{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805788.5},"
                 "{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805788.4}]",
                 "python");
    struct result r = run(j, strlen(j), KL_ITEM_PROFILE_CHUNK);
    ASSERT_EQ_INT(r.rc, 0);
    ASSERT_EQ_INT(r.n_outcomes, 2);
    ASSERT_EQ_INT(r.outcomes[0].category, KL_CAT_PROFILE_CHUNK);
    ASSERT_EQ_INT(r.outcomes[1].category, KL_CAT_PROFILE_DURATION);
    /* int((x.5 - x.4) * 1000) in doubles near 1.7e9 is 99, as in Sentry's own formula */
    ASSERT_EQ_INT(r.outcomes[1].quantity, 99);
    free(j);
    /* a thread with one non-idle sample is dropped */
    j = v2("[{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805788.5},"
           "{\"stack_id\":1,\"thread_id\":\"1\",\"timestamp\":1710805788.6}]",
           "python");
    expect(j, KL_ITEM_PROFILE_CHUNK, "profiling_not_enough_samples");
    free(j);
    j = v2("[{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805700.0},"
           "{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805766.5}]",
           "python");
    expect(j, KL_ITEM_PROFILE_CHUNK, "profiling_duration_is_too_long");
    free(j);
    j = v2("[{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805700.0},"
           "{\"stack_id\":3,\"thread_id\":\"1\",\"timestamp\":1710805701.0},"
           "{\"stack_id\":0,\"thread_id\":\"1\",\"timestamp\":1710805702.0}]",
           "python");
    expect(j, KL_ITEM_PROFILE_CHUNK, "profiling_malformed_samples");
    free(j);
    /* v2 thread ids are strings */
    j = v2("[{\"stack_id\":0,\"thread_id\":1,\"timestamp\":1710805700.0},"
           "{\"stack_id\":0,\"thread_id\":1,\"timestamp\":1710805701.0}]",
           "python");
    expect(j, KL_ITEM_PROFILE_CHUNK, "profiling_invalid_json");
    free(j);
}

static void test_android(void)
{
    char *b64 = art_b64("1000000");
    char extra[1024];
    snprintf(extra, sizeof extra, ",\"sampled_profile\":\"%s\"", b64);
    char *j = android(extra);
    struct result r = run(j, strlen(j), KL_ITEM_PROFILE);
    ASSERT_EQ_INT(r.rc, 0);
    /* duration from the trace header: 1 s */
    ASSERT_EQ_INT(r.n_outcomes, 3);
    ASSERT_EQ_INT(r.outcomes[2].category, KL_CAT_PROFILE_DURATION_UI);
    ASSERT_EQ_INT(r.outcomes[2].quantity, 1000);
    free(j);
    free(b64);

    j = android(",\"sampled_profile\":\"***\"");
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_base64_value");
    free(j);
    j = android(",\"sampled_profile\":\"aGVsbG8gd29ybGQ\"");
    expect(j, KL_ITEM_PROFILE, "profiling_invalid_sampled_profile");
    free(j);
    b64 = art_b64("0");
    snprintf(extra, sizeof extra, ",\"sampled_profile\":\"%s\"", b64);
    j = android(extra);
    expect(j, KL_ITEM_PROFILE, "profiling_duration_is_zero");
    free(j);
    free(b64);
    b64 = art_b64("30000001");
    snprintf(extra, sizeof extra, ",\"sampled_profile\":\"%s\"", b64);
    j = android(extra);
    expect(j, KL_ITEM_PROFILE, "profiling_duration_is_too_long");
    free(j);
    free(b64);
    b64 = art_b64("1000");
    snprintf(extra, sizeof extra, ",\"sampled_profile\":\"%s\",\"build_id\":\"nope\"", b64);
    j = android(extra);
    expect(j, KL_ITEM_PROFILE, "invalid_build_id");
    free(j);
    free(b64);
    /* no transaction name: no transaction */
    j = android(",\"transaction_name\":\"\"");
    free(j);
}

static void test_size_limits(void)
{
    /* > 50 MiB: refused before parsing */
    size_t n = KL_MAX_PROFILE_BYTES + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    struct result r = run(big, n, KL_ITEM_PROFILE);
    ASSERT_EQ_STR(r.reason, "profiling_exceed_size_limit");
    free(big);

    /* 5,000,001 empty sample objects: refused at the count limit */
    size_t count = KL_MAX_SAMPLES + 1;
    const char *head = "{\"version\":\"1\",\"platform\":\"cocoa\",\"profile\":{\"samples\":[";
    size_t hl = strlen(head);
    char *doc = malloc(hl + count * 3 + 16);
    memcpy(doc, head, hl);
    size_t o = hl;
    for (size_t i = 0; i < count; i++) {
        memcpy(doc + o, "{},", 3);
        o += 3;
    }
    doc[o - 1] = ']';
    memcpy(doc + o, "}}", 3);
    o += 2;
    r = run(doc, o, KL_ITEM_PROFILE);
    ASSERT_EQ_STR(r.reason, "profile.too_many_samples");
    free(doc);

    /* one stack of 10^7 frames: refused at the depth limit */
    count = 10000000;
    head = "{\"version\":\"1\",\"platform\":\"cocoa\",\"profile\":{\"stacks\":[[";
    hl = strlen(head);
    doc = malloc(hl + count * 2 + 16);
    memcpy(doc, head, hl);
    o = hl;
    for (size_t i = 0; i < count; i++) {
        memcpy(doc + o, "0,", 2);
        o += 2;
    }
    doc[o - 1] = ']';
    memcpy(doc + o, "]}}", 4);
    o += 3;
    r = run(doc, o, KL_ITEM_PROFILE);
    ASSERT_EQ_STR(r.reason, "profile.stack_too_deep");
    free(doc);
}

static void test_unsampled(void)
{
    char *j = v1(DEV, TX, SAMPLES3, STACKS, FRAMES);
    size_t len = strlen(j);
    char *buf = malloc(len + KL_PADDING);
    memcpy(buf, j, len);
    memset(buf + len, 0, KL_PADDING);
    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.sampled = false;
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_process_result res;
    ASSERT_EQ_INT(kl_process_run(&a, buf, len, &o, &res), 0);
    ASSERT_EQ_INT(res.n_outcomes, 2);
    ASSERT_EQ_INT(res.outcomes[1].outcome, KL_OUTCOME_FILTERED);
    ASSERT_EQ_INT(res.outcomes[1].reason, KL_R_SAMPLED);
    ASSERT_EQ_INT(res.outcomes[1].category, KL_CAT_PROFILE_INDEXED);
    kl_arena_release(&a);
    free(buf);
    free(j);
}

int main(void)
{
    KL_RUN(test_valid_v1);
    KL_RUN(test_invalid_json);
    KL_RUN(test_depth);
    KL_RUN(test_platform_not_supported);
    KL_RUN(test_profile_metadata);
    KL_RUN(test_transaction);
    KL_RUN(test_samples);
    KL_RUN(test_v1_trimming);
    KL_RUN(test_v2);
    KL_RUN(test_android);
    KL_RUN(test_size_limits);
    KL_RUN(test_unsampled);
    KL_TEST_DONE();
}
