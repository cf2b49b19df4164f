/* err.c - reason table and error setting */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *str;
    int status;
} reasons[] = {
    [KL_R_NONE] = {"", 200},
#define KL_REASON(id, s, st) [KL_R_##id] = {s, st},
#include "base/err_reasons.def"
#undef KL_REASON
};

int kl_err_set(struct kl_err *err, enum kl_reason r, const char *fmt, ...)
{
    if (!err || err->reason != KL_R_NONE)
        return -1;
    err->reason = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void kl_err_clear(struct kl_err *err)
{
    if (err) {
        err->reason = KL_R_NONE;
        err->msg[0] = '\0';
    }
}

const char *kl_reason_str(enum kl_reason r)
{
    if ((unsigned)r >= KL_R__COUNT)
        return "internal";
    return reasons[r].str;
}

int kl_reason_http_status(enum kl_reason r)
{
    if ((unsigned)r >= KL_R__COUNT)
        return 500;
    return reasons[r].status;
}

enum kl_reason kl_reason_find(const char *s, size_t len)
{
    for (int i = 1; i < KL_R__COUNT; i++)
        if (strlen(reasons[i].str) == len && memcmp(reasons[i].str, s, len) == 0)
            return (enum kl_reason)i;
    return KL_R_NONE;
}

void kl_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "kiln: assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}

static void oom(size_t n)
{
    fprintf(stderr, "kiln: out of memory allocating %zu bytes\n", n);
    abort();
}

void *kl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *kl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *kl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}
