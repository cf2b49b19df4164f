/* err.h - one error type with a stable, machine-readable reason
 *
 * What: struct kl_err carries the first failure of an operation: a stable reason id
 * (declared once in err_reasons.def), its HTTP status, and a human message with context.
 *
 * Model: actions return 0 or -1 and fill *err; constructors and parsers return NULL and
 * fill *err; _find returns NULL with no error; predicates return bool. kl_err_set returns
 * -1 so a failing path is one line: `return kl_err_set(err, KL_R_..., "what %s", x);`.
 * The first error set wins: later calls do not overwrite it, so the root cause survives
 * unwinding. A NULL err is allowed and ignored.
 *
 * Why: outcomes, HTTP answers and logs all key on the reason string, so it must never
 * depend on message wording. Relay's reason strings are used verbatim where they exist.
 *
 * Errors: none of its own. Threads: an err belongs to one thread. Limits: msg is cut at
 * 255 bytes. Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_ERR_H
#define KL_BASE_ERR_H

#include <stdbool.h>
#include <stddef.h>

enum kl_reason {
    KL_R_NONE = 0,
#define KL_REASON(id, str, status) KL_R_##id,
#include "base/err_reasons.def"
#undef KL_REASON
    KL_R__COUNT
};

struct kl_err {
    enum kl_reason reason; /* KL_R_NONE while no error was set */
    char msg[256];         /* human detail, lower-case, no trailing period */
};

#define KL_ERR_INIT                                                                                \
    {                                                                                              \
        KL_R_NONE,                                                                                 \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Set the error if none is set yet. Always returns -1. */
int kl_err_set(struct kl_err *err, enum kl_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear to "no error". */
void kl_err_clear(struct kl_err *err);

static inline bool kl_err_is_set(const struct kl_err *err)
{
    return err && err->reason != KL_R_NONE;
}

/* The stable reason string ("" for KL_R_NONE). */
const char *kl_reason_str(enum kl_reason r);
/* The HTTP status that goes with a reason (500 for unknown). */
int kl_reason_http_status(enum kl_reason r);
/* Find a reason by its string; KL_R_NONE when unknown. */
enum kl_reason kl_reason_find(const char *s, size_t len);

/* Assertions are for our bugs, never for input: on in release builds. */
/* Memory kept for reuse (the arena block cache, the buffer spare) is poisoned under
 * AddressSanitizer while it is idle, so a use after release is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define KL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KL_ASAN 1
#endif
#endif
#ifdef KL_ASAN
#include <sanitizer/asan_interface.h>
#define KL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define KL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define KL_POISON(p, n) ((void)(p), (void)(n))
#define KL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define kl_assert(cond) ((cond) ? (void)0 : kl_assert_fail(#cond, __FILE__, __LINE__))
__attribute__((noreturn)) void kl_assert_fail(const char *what, const char *file, int line);

/* Out-of-memory policy: abort with a message (we are a service, see STYLE B4). */
void *kl_xmalloc(size_t n);
void *kl_xcalloc(size_t n, size_t size);
void *kl_xrealloc(void *p, size_t n);

#endif
