/* buf.h - bounded growable byte buffer, optionally streaming to a sink
 *
 * What: struct kl_buf builds output (JSON, envelopes, files) with a maximum size given at
 * init; growing past it fails with KL_R_BUF_TOO_BIG instead of eating memory (curl dynbuf's
 * toobig). With a sink set, kl_buf_flush hands the bytes written so far to the sink and
 * empties the buffer, so a 30 MB document can be written through a 256 KiB buffer.
 *
 * Invariants (git strbuf): ptr is never NULL after init and always NUL-terminated at len.
 * Ownership: the buffer owns ptr (malloc'd); kl_buf_release frees it; kl_buf_detach hands it
 * to the caller (free()). Errors: KL_R_BUF_TOO_BIG, KL_R_IO_WRITE (from the sink); both are
 * sticky in buf->err so writers may check once at the end. Threads: one at a time.
 * Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_BUF_H
#define KL_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"

/* A sink takes bytes; returns 0 or -1 (filling err). */
typedef int kl_sink_fn(void *ctx, const char *p, size_t n, struct kl_err *err);

struct kl_buf {
    char *ptr;
    size_t len, cap;
    size_t max;       /* growth limit (bytes held at once) */
    kl_sink_fn *sink; /* NULL: keep everything in memory */
    void *sink_ctx;
    uint64_t flushed;  /* bytes already handed to the sink */
    struct kl_err err; /* first failure, sticky */
};

void kl_buf_init(struct kl_buf *b, size_t max);
void kl_buf_set_sink(struct kl_buf *b, kl_sink_fn *fn, void *ctx);
void kl_buf_release(struct kl_buf *b);
/* Take ownership of the bytes (free() them); the buffer is re-initialized empty. */
char *kl_buf_detach(struct kl_buf *b, size_t *len);
void kl_buf_reset(struct kl_buf *b);

/* Make room for n more bytes; -1 when it would exceed max (after a flush, with a sink). */
int kl_buf_reserve(struct kl_buf *b, size_t n);
int kl_buf_append(struct kl_buf *b, const void *p, size_t n);
int kl_buf_printf(struct kl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand everything to the sink (no-op without one). */
int kl_buf_flush(struct kl_buf *b);

static inline int kl_buf_putc(struct kl_buf *b, char c)
{
    if (b->len + 2 > b->cap && kl_buf_reserve(b, 1) < 0)
        return -1;
    b->ptr[b->len++] = c;
    b->ptr[b->len] = '\0';
    return 0;
}
static inline int kl_buf_puts(struct kl_buf *b, const char *s)
{
    return kl_buf_append(b, s, strlen(s));
}
static inline int kl_buf_put_str(struct kl_buf *b, struct kl_str s)
{
    return kl_buf_append(b, s.ptr, s.len);
}

/* A sink writing to a file descriptor (ctx = (void *)(intptr_t)fd). */
int kl_sink_fd(void *ctx, const char *p, size_t n, struct kl_err *err);

/* Read a whole file (or "-" for stdin) into a malloc'd buffer with 64 zero bytes of padding
 * after len (the JSON parser's requirement). Fails with KL_R_PROFILING_EXCEED_SIZE_LIMIT past
 * max bytes without reading the rest, KL_R_IO_READ otherwise. Caller frees *out. */
int kl_read_file(const char *path, size_t max, char **out, size_t *len, struct kl_err *err);

#define KL_PADDING 64

#endif
