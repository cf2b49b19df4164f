/* log.c - one-line logs to stderr */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "base/time.h"

enum kl_log_level kl_log_min_level = KL_LOG_INFO;

void kl_log_write(enum kl_log_level level, const struct kl_log_ctx *ctx, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048], ts[48];
    kl_rfc3339_format(kl_now_ns() / 1000000 * 1000000, ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s", ts, names[level & 3]);
    if (ctx && ctx->id)
        n += snprintf(line + n, sizeof line - (size_t)n, " id=%s", ctx->id);
    if (ctx && ctx->stage)
        n += snprintf(line + n, sizeof line - (size_t)n, " stage=%s", ctx->stage);
    if (n < (int)sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n += m < 0 ? 0 : m;
    }
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}
