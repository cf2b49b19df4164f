/* log.h - one-line key=value logs, at the edges only
 *
 * What: kl_log(level, ctx, fmt, ...) writes "ts=... level=... id=... stage=... <fmt>" to
 * stderr as one line. The level is checked before the arguments are evaluated. Only cli/,
 * server and pipeline edges log; library modules fill struct kl_err instead (STYLE B5).
 * Never log payloads or credentials. Threads: safe (one write(2) per line).
 */
#ifndef KL_BASE_LOG_H
#define KL_BASE_LOG_H

enum kl_log_level { KL_LOG_DEBUG, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR };

struct kl_log_ctx {
    const char *id;    /* request or job id, or NULL */
    const char *stage; /* what was being done ("parse", "store"), or NULL */
};

extern enum kl_log_level kl_log_min_level;

#define kl_log(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= kl_log_min_level)                                                           \
            kl_log_write((level), (ctx), __VA_ARGS__);                                             \
    } while (0)

void kl_log_write(enum kl_log_level level, const struct kl_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
