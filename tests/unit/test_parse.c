/* test_parse.c - the profile parser's raw fast paths (samples, stacks) against its general
 * path: every document is processed with the fast paths on and off, and the outcome, the
 * reason, the message and the stored form (whose sample writer has a fast path too) must be
 * identical */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "json/json.h"
#include "kl_test.h"
#include "output/stored.h"
#include "pipeline/process.h"

/* A valid cocoa v1 profile; %s = extra sample objects (each followed by a comma), then
 * the stacks array. */
static const char doc_fmt[] =
    "{\"version\":\"1\",\"platform\":\"cocoa\",\"event_id\":\"41fed0925670468bb0457f61a74688ec\","
    "\"timestamp\":\"2022-09-01T09:45:00.000Z\",\"os\":{\"name\":\"iOS\",\"version\":\"16.0\","
    "\"build_number\":\"19H253\"},\"device\":{\"architecture\":\"arm64e\",\"is_emulator\":false,"
    "\"locale\":\"en_US\",\"manufacturer\":\"Apple\",\"model\":\"iPhone14,3\"},\"transaction\":{"
    "\"id\":\"a9db794978f2c557a8a9372a87997b9b\",\"name\":\"t\",\"trace_id\":"
    "\"65ad4f5b2098be22f3aeeb95ba6ac4c4\",\"active_thread_id\":\"1\",\"relative_start_ns\":\"0\","
    "\"relative_end_ns\":\"90000000\"},\"profile\":{\"samples\":[%s"
    "{\"stack_id\":0,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"10000000\","
    "\"queue_address\":\"0x10\"},{\"stack_id\":1,\"thread_id\":\"2\",\"elapsed_since_start_ns\":"
    "\"20000000\"},{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"30000000\","
    "\"queue_address\":\"0x10\"},{\"stack_id\":0,\"thread_id\":\"2\",\"elapsed_since_start_ns\":"
    "\"40000000\",\"state\":\"idle\"}],\"stacks\":%s,\"frames\":[{\"instruction_addr\":\"0x1\"},"
    "{\"instruction_addr\":\"0x2\"}],\"queue_metadata\":{\"0x10\":{\"label\":\"q\"}},"
    "\"thread_metadata\":{\"1\":{\"name\":\"main\"}}}}";

/* Process json (of n bytes, or cut at n) and describe the result: rc, reason, message and
 * stored form. Caller frees. */
static char *run(const char *json, size_t n, bool fast)
{
    char *buf = malloc(n + KL_PADDING);
    memcpy(buf, json, n);
    memset(buf + n, 0, KL_PADDING);
    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.received = 1700000000;
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_process_result res;
    kl_json_set_fast_paths(fast);
    int rc = kl_process_run(&a, buf, n, &o, &res);
    struct kl_buf out;
    kl_buf_init(&out, 1u << 24);
    kl_buf_printf(&out, "rc=%d reason=%s msg=%s\n", rc, kl_reason_str(res.err.reason), res.err.msg);
    if (rc == 0) {
        struct kl_err err = KL_ERR_INIT;
        kl_profile_write_stored(res.profile, &out, &err);
    }
    kl_json_set_fast_paths(true);
    kl_arena_release(&a);
    free(buf);
    return kl_buf_detach(&out, NULL);
}

static int compare(const char *json, size_t n, const char *what)
{
    char *fast = run(json, n, true), *slow = run(json, n, false);
    int same = strcmp(fast, slow) == 0;
    if (!same)
        KL_FAIL_("%s:\n    fast:    %.300s\n    general: %.300s", what, fast, slow);
    free(fast);
    free(slow);
    return same;
}

static char *make_doc(const char *samples, const char *stacks)
{
    size_t n = sizeof doc_fmt + strlen(samples) + strlen(stacks);
    char *d = malloc(n);
    snprintf(d, n, doc_fmt, samples, stacks);
    return d;
}

static void test_base_document(void)
{
    char *d = make_doc("", "[[0,1],[1]]");
    char *r = run(d, strlen(d), true);
    ASSERT_TRUE(strncmp(r, "rc=0 ", 5) == 0);
    ASSERT_TRUE(strstr(r, "\"samples\":[{\"stack_id\":0,\"thread_id\":1,\"elapsed_since_start_ns\":"
                          "10000000,\"queue_address\":\"0x10\"},") != NULL);
    ASSERT_TRUE(strstr(r, "\"state\":\"idle\"}],\"stacks\":[[0,1],[1]]") != NULL);
    free(r);
    free(d);
}

/* One extra sample object in front of the regular ones: canonical forms the fast path
 * takes, and everything it must leave to the general path. */
static void test_sample_variants(void)
{
    static const char *samples[] = {
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"2\",\"elapsed_since_start_ns\":\"5000000\","
        "\"queue_address\":\"0x20\",\"state\":\"idle\"},",
        "{ \"stack_id\" : 1 , \"thread_id\" : \"1\" ,\n\t\"elapsed_since_start_ns\" : \"5\" },",
        "{\"stack_id\":1,\"thread_id\":1,\"elapsed_since_start_ns\":5000000},",
        "{\"stack_id\":1,\"thread_id\":\"3\",\"elapsed_since_start_ns\":\"5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"01\",\"elapsed_since_start_ns\":\"5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"abc\",\"elapsed_since_start_ns\":\"5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"\",\"elapsed_since_start_ns\":\"5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"99999999999999999999\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":-1,\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":1.0,\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":null,\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":\"\\u0031\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"+5000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"0005000000\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"1234567890123456\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"18446744073709551615\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"18446744073709551616\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":18446744073709551616},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"-5\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5x\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":5e6},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":5.0},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":null},",
        "{\"stack_id\":01,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":-0,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":4294967296,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":\"1\",\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"other\":[1,{}]},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"other\":[1,}]},",
        "{\"\\u0073tack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"timestamp\":1.5},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"queue_address\":"
        "null},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"queue_address\":5}"
        ",",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"queue_address\":"
        "\"\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"queue_address\":"
        "\"a\\\"b\\\\c\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"state\":null},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"state\":\"run\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"state\":\"busy\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"state\":\"idle\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"state\":true},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"",
        "{\"stack_id\":1,\"thread_id\":\"1\" \"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\"1},",
        "{\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"elapsed_since_start_ns\":\"5\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\"},",
        /* the thread and queue caches: a non-numeric id of the same length and number (0) as
         * a later numeric one; a thread switching queues */
        "{\"stack_id\":1,\"thread_id\":\"a\",\"elapsed_since_start_ns\":\"5\"},"
        "{\"stack_id\":1,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"6\"},"
        "{\"stack_id\":1,\"thread_id\":\"a\",\"elapsed_since_start_ns\":\"7\"},",
        "{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\",\"queue_address\":"
        "\"0x20\"},{\"stack_id\":0,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"6\","
        "\"queue_address\":\"0x10\"},{\"stack_id\":0,\"thread_id\":\"1\",\"elapsed_since_start_"
        "ns\":"
        "\"7\",\"queue_address\":\"0x20\"},",
        "{},",
        "{ },",
        "[],",
        "1,",
        "null,",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char *d = make_doc(samples[i], "[[0,1],[1]]");
        char what[400];
        snprintf(what, sizeof what, "sample %s", samples[i]);
        compare(d, strlen(d), what);
        free(d);
    }
}

static void test_stack_variants(void)
{
    static const char *stacks[] = {
        "[[0,1],[1]]",
        "[[0,1],[1],[]]",
        "[ [ 0 , 1 ] ,\n [ 1 ] ]",
        "[[0,1],[1],[5]]",
        "[[0,1],[1],[4294967296]]",
        "[[0,1],[1],[01]]",
        "[[0,1],[1],[-0]]",
        "[[0,1],[1],[1e0]]",
        "[[0,1],[1],[1.0]]",
        "[[0,1],[1],[\"1\"]]",
        "[[0,1],[1],[null]]",
        "[[0,1],[1],[1,]]",
        "[[0,1],[1],[,1]]",
        "[[0,1],[1],[1 1]]",
        "[[0,1],[1],[99999999999999999999]]",
        "[[0,1],[1],{}]",
        "[[0,1],[1],1]",
    };
    for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
        char *d = make_doc("", stacks[i]);
        char what[200];
        snprintf(what, sizeof what, "stacks %s", stacks[i]);
        compare(d, strlen(d), what);
        free(d);
    }
}

/* Threads created by thread_metadata before the samples: a non-numeric id ("a", id number 0)
 * must not be taken for the sample thread "0", nor "007" for "7". */
static void test_metadata_threads(void)
{
    static const char *meta[] = {
        "\"thread_metadata\":{\"a\":{\"name\":\"x\"},\"1\":{\"name\":\"main\"}}",
        "\"thread_metadata\":{\"007\":{\"name\":\"x\"},\"1\":{\"name\":\"main\"}}",
    };
    static const char *extra[] = {
        "{\"stack_id\":1,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"5\"},"
        "{\"stack_id\":0,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"6\"},",
        "{\"stack_id\":1,\"thread_id\":\"7\",\"elapsed_since_start_ns\":\"5\"},"
        "{\"stack_id\":0,\"thread_id\":\"7\",\"elapsed_since_start_ns\":\"6\"},",
    };
    for (size_t i = 0; i < 2; i++) {
        /* the metadata moved to the front of "profile", before the samples */
        char *d = make_doc(extra[i], "[[0,1],[1]]");
        const char *old = ",\"thread_metadata\":{\"1\":{\"name\":\"main\"}}";
        const char *prof = "\"profile\":{";
        char *at = strstr(d, old);
        ASSERT_TRUE(at != NULL);
        memmove(at, at + strlen(old), strlen(at + strlen(old)) + 1);
        char *pp = strstr(d, prof) + strlen(prof);
        size_t n = strlen(d) + strlen(meta[i]) + 2;
        char *e = malloc(n);
        snprintf(e, n, "%.*s%s,%s", (int)(pp - d), d, meta[i], pp);
        char *r = run(e, strlen(e), true);
        ASSERT_TRUE(strncmp(r, "rc=0 ", 5) == 0);
        ASSERT_TRUE(strstr(r, "\"thread_metadata\":{\"1\":{\"name\":\"main\"}}") != NULL);
        free(r);
        compare(e, strlen(e), meta[i]);
        free(e);
        free(d);
    }
}

/* The document cut at every byte through its samples and stacks. */
static void test_truncation(void)
{
    char *d = make_doc("{\"stack_id\":1,\"thread_id\":\"1\",\"elapsed_since_start_ns\":\"5\"},",
                       "[[0,1],[1]]");
    size_t from = (size_t)(strstr(d, "\"samples\"") - d),
           to = (size_t)(strstr(d, "\"frames\"") - d);
    for (size_t n = from; n <= to; n++) {
        char what[64];
        snprintf(what, sizeof what, "cut at %zu", n);
        if (!compare(d, n, what))
            break;
    }
    free(d);
}

int main(void)
{
    KL_RUN(test_base_document);
    KL_RUN(test_sample_variants);
    KL_RUN(test_stack_variants);
    KL_RUN(test_metadata_threads);
    KL_RUN(test_truncation);
    KL_TEST_DONE();
}
