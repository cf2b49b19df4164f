/* buf.c - bounded growable buffer and whole-file reading */
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char empty_buf[1];

void kl_buf_init(struct kl_buf *b, size_t max)
{
    b->ptr = empty_buf;
    b->len = b->cap = 0;
    b->max = max;
    b->sink = NULL;
    b->sink_ctx = NULL;
    b->flushed = 0;
    kl_err_clear(&b->err);
}

void kl_buf_set_sink(struct kl_buf *b, kl_sink_fn *fn, void *ctx)
{
    b->sink = fn;
    b->sink_ctx = ctx;
}

void kl_buf_release(struct kl_buf *b)
{
    if (b->cap)
        free(b->ptr);
    b->ptr = empty_buf;
    b->len = b->cap = 0;
}

char *kl_buf_detach(struct kl_buf *b, size_t *len)
{
    char *p = b->cap ? b->ptr : kl_xcalloc(1, 1);
    if (len)
        *len = b->len;
    b->ptr = empty_buf;
    b->len = b->cap = 0;
    return p;
}

void kl_buf_reset(struct kl_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->ptr[0] = '\0';
}

int kl_buf_flush(struct kl_buf *b)
{
    if (!b->sink || b->len == 0)
        return kl_err_is_set(&b->err) ? -1 : 0;
    if (kl_err_is_set(&b->err))
        return -1;
    if (b->sink(b->sink_ctx, b->ptr, b->len, &b->err) < 0)
        return -1;
    b->flushed += b->len;
    kl_buf_reset(b);
    return 0;
}

int kl_buf_reserve(struct kl_buf *b, size_t n)
{
    if (kl_err_is_set(&b->err))
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    if (b->sink && b->len > 0) {
        if (kl_buf_flush(b) < 0)
            return -1;
        if (n + 1 <= b->cap)
            return 0;
    }
    if (b->len + n > b->max)
        return kl_err_set(&b->err, KL_R_BUF_TOO_BIG, "output exceeds %zu bytes", b->max);
    size_t want = b->len + n + 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap < ((size_t)1 << 62) ? cap * 2 : want;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if (b->cap == 0) {
        b->ptr = kl_xmalloc(cap);
        b->ptr[0] = '\0';
    } else {
        b->ptr = kl_xrealloc(b->ptr, cap);
    }
    b->cap = cap;
    return 0;
}

int kl_buf_append(struct kl_buf *b, const void *p, size_t n)
{
    if (kl_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int kl_buf_printf(struct kl_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return kl_err_set(&b->err, KL_R_INTERNAL, "printf failed");
    if ((size_t)n < sizeof tmp)
        return kl_buf_append(b, tmp, (size_t)n);
    if (kl_buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int kl_sink_fd(void *ctx, const char *p, size_t n, struct kl_err *err)
{
    int fd = (int)(intptr_t)ctx;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return kl_err_set(err, KL_R_IO_WRITE, "write failed: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kl_read_file(const char *path, size_t max, char **out, size_t *len, struct kl_err *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kl_err_set(err, KL_R_IO_READ, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 64 * 1024;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > max) {
            if (!is_stdin)
                close(fd);
            return kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT,
                              "'%s' is %lld bytes, over the limit of %zu", path,
                              (long long)st.st_size, max);
        }
        cap = (size_t)st.st_size + 1;
    }
    char *p = kl_xmalloc(cap + KL_PADDING);
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(p);
                if (!is_stdin)
                    close(fd);
                return kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT,
                                  "'%s' is over the limit of %zu bytes", path, max);
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            p = kl_xrealloc(p, cap + KL_PADDING);
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(p);
            if (!is_stdin)
                close(fd);
            return kl_err_set(err, KL_R_IO_READ, "cannot read '%s': %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!is_stdin)
        close(fd);
    if (n > max) {
        free(p);
        return kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT,
                          "'%s' is over the limit of %zu bytes", path, max);
    }
    memset(p + n, 0, KL_PADDING);
    *out = p;
    *len = n;
    return 0;
}
