/* kl_test.h - tiny TAP-style test helpers: assertion macros that print both sides.
 *
 * A test file defines functions `static void test_x(void)` and lists them in main with
 * KL_RUN(test_x). Failures print "not ok" lines with file:line and both values, and the
 * process exits 1 at the end; "ok N - name" otherwise. KL_SKIP_ALL prints a skip line for
 * tests whose inputs (../shared/corpus) are absent: ctest sees exit code 77 as skipped.
 */
#ifndef KL_TEST_H
#define KL_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kl_test_failures;
static int kl_test_count;
static int kl_test_cur_failed;

#define KL_FAIL_(...)                                                                              \
    do {                                                                                           \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                     \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        kl_test_cur_failed = 1;                                                                    \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            KL_FAIL_("expected true: %s", #c);                                                     \
    } while (0)
#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            KL_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                                    \
    } while (0)
#define ASSERT_EQ_U64(a, b)                                                                        \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            KL_FAIL_("%s == %s: %llu != %llu", #a, #b, a_, b_);                                    \
    } while (0)
#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            KL_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",                     \
                     b_ ? b_ : "(null)");                                                          \
    } while (0)
/* compare a struct kl_str with a C string */
#define ASSERT_EQ_SLICE(s, lit)                                                                    \
    do {                                                                                           \
        struct kl_str s_ = (s);                                                                    \
        const char *l_ = (lit);                                                                    \
        if (!s_.ptr || s_.len != strlen(l_) || memcmp(s_.ptr, l_, s_.len) != 0)                    \
            KL_FAIL_("%s == \"%s\": got \"%.*s\"%s", #s, l_, (int)s_.len, s_.ptr ? s_.ptr : "",    \
                     s_.ptr ? "" : " (absent)");                                                   \
    } while (0)

#define KL_RUN(fn)                                                                                 \
    do {                                                                                           \
        kl_test_cur_failed = 0;                                                                    \
        fn();                                                                                      \
        kl_test_count++;                                                                           \
        if (kl_test_cur_failed) {                                                                  \
            kl_test_failures++;                                                                    \
            printf("not ok %d - %s\n", kl_test_count, #fn);                                        \
        } else {                                                                                   \
            printf("ok %d - %s\n", kl_test_count, #fn);                                            \
        }                                                                                          \
    } while (0)

#define KL_TEST_DONE()                                                                             \
    do {                                                                                           \
        printf("1..%d\n", kl_test_count);                                                          \
        return kl_test_failures ? 1 : 0;                                                           \
    } while (0)

#define KL_SKIP_ALL(why)                                                                           \
    do {                                                                                           \
        printf("1..0 # SKIP %s\n", why);                                                           \
        return 77;                                                                                 \
    } while (0)

/* The shared corpus directory (../shared/corpus relative to the source tree), or NULL. */
#ifndef KL_CORPUS_DIR
#define KL_CORPUS_DIR ""
#endif

#endif
