/* metrics.c - Prometheus registry: lists under one mutex, values in atomics
 *
 * Doubles (gauges, histogram sums) are stored as their bit patterns in _Atomic uint64_t and
 * updated with a compare-and-swap loop, since C17 has no atomic floating-point add.
 */
#include "http/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define MAX_COLLECTORS 16
#define MAX_LABEL_PAIRS 8

struct kl_metric {
    struct kl_metric *next;
    struct kl_metric_family *family;
    char *labels;              /* rendered: name="value",name="value" ("" for none) */
    _Atomic uint64_t value;    /* counter count, or gauge bits */
    _Atomic uint64_t count;    /* histogram observations */
    _Atomic uint64_t sum_bits; /* histogram sum, double bits */
    _Atomic uint64_t *buckets; /* histogram: n_bounds counters (not cumulative) */
};

struct kl_metric_family {
    struct kl_metric_family *next;
    struct kl_metrics *reg; /* its lock guards the series list */
    char *name;
    char *help;
    enum kl_metric_type type;
    double bounds[KL_METRICS_MAX_BUCKETS];
    size_t n_bounds;
    struct kl_metric *series, **tail;
    size_t n_series;
    struct kl_metric overflow; /* past KL_METRICS_MAX_SERIES; never rendered */
    _Atomic uint64_t overflow_buckets[KL_METRICS_MAX_BUCKETS];
};

struct kl_metrics {
    pthread_mutex_t lock;
    struct kl_metric_family *families, **tail;
    struct {
        void (*fn)(struct kl_metrics *, void *);
        void *arg;
    } collectors[MAX_COLLECTORS];
    size_t n_collectors;
};

const double kl_metrics_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10,  30};
const size_t kl_metrics_latency_buckets_n =
    sizeof kl_metrics_latency_buckets / sizeof kl_metrics_latency_buckets[0];

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_dbl_add(_Atomic uint64_t *p, double delta)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static bool valid_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = kl_xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

struct kl_metrics *kl_metrics_new(void)
{
    struct kl_metrics *m = kl_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->families;
    return m;
}

static void free_series(struct kl_metric *s)
{
    free(s->labels);
    free(s->buckets);
    free(s);
}

void kl_metrics_free(struct kl_metrics *m)
{
    if (!m)
        return;
    struct kl_metric_family *f = m->families;
    while (f) {
        struct kl_metric_family *fn = f->next;
        struct kl_metric *s = f->series;
        while (s) {
            struct kl_metric *sn = s->next;
            free_series(s);
            s = sn;
        }
        free(f->overflow.labels);
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct kl_metric_family *family(struct kl_metrics *m, enum kl_metric_type type,
                                       const char *name, const char *help, const double *bounds,
                                       size_t n_bounds)
{
    kl_assert(m && valid_name(name));
    kl_assert(n_bounds <= KL_METRICS_MAX_BUCKETS);
    for (size_t i = 1; i < n_bounds; i++)
        kl_assert(bounds[i] > bounds[i - 1]);
    pthread_mutex_lock(&m->lock);
    struct kl_metric_family *f;
    for (f = m->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f) {
        kl_assert(f->type == type);
    } else {
        f = kl_xcalloc(1, sizeof *f);
        f->name = xstrdup(name);
        f->help = xstrdup(help ? help : "");
        f->type = type;
        f->reg = m;
        if (n_bounds)
            memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        f->n_bounds = n_bounds;
        f->tail = &f->series;
        f->overflow.family = f;
        f->overflow.labels = xstrdup("");
        f->overflow.buckets = f->overflow_buckets;
        *m->tail = f;
        m->tail = &f->next;
    }
    pthread_mutex_unlock(&m->lock);
    return f;
}

struct kl_metric_family *kl_metrics_counter(struct kl_metrics *m, const char *name,
                                            const char *help)
{
    return family(m, KL_METRIC_COUNTER, name, help, NULL, 0);
}

struct kl_metric_family *kl_metrics_gauge(struct kl_metrics *m, const char *name, const char *help)
{
    return family(m, KL_METRIC_GAUGE, name, help, NULL, 0);
}

struct kl_metric_family *kl_metrics_histogram(struct kl_metrics *m, const char *name,
                                              const char *help, const double *bounds,
                                              size_t n_bounds)
{
    return family(m, KL_METRIC_HISTOGRAM, name, help, bounds, n_bounds);
}

/* Label values escape \, " and newline, as the exposition format requires. */
static void put_label_value(struct kl_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            kl_buf_puts(b, "\\\\");
        else if (*v == '"')
            kl_buf_puts(b, "\\\"");
        else if (*v == '\n')
            kl_buf_puts(b, "\\n");
        else
            kl_buf_putc(b, *v);
    }
}

struct kl_metric *kl_metric_getv(struct kl_metric_family *f, const char *const *pairs,
                                 size_t n_pairs)
{
    if (!f)
        return NULL;
    struct kl_buf b;
    kl_buf_init(&b, 4096);
    for (size_t i = 0; i < n_pairs; i++) {
        kl_assert(valid_name(pairs[2 * i]));
        if (i)
            kl_buf_putc(&b, ',');
        kl_buf_puts(&b, pairs[2 * i]);
        kl_buf_puts(&b, "=\"");
        put_label_value(&b, pairs[2 * i + 1] ? pairs[2 * i + 1] : "");
        kl_buf_putc(&b, '"');
    }
    if (kl_err_is_set(&b.err)) {
        kl_buf_release(&b);
        return &f->overflow;
    }
    pthread_mutex_lock(&f->reg->lock);
    struct kl_metric *s;
    for (s = f->series; s; s = s->next)
        if (strcmp(s->labels, b.ptr) == 0)
            break;
    if (!s && f->n_series >= KL_METRICS_MAX_SERIES) {
        s = &f->overflow;
    } else if (!s) {
        s = kl_xcalloc(1, sizeof *s);
        s->family = f;
        size_t len;
        s->labels = kl_buf_detach(&b, &len);
        if (f->type == KL_METRIC_HISTOGRAM && f->n_bounds)
            s->buckets = kl_xcalloc(f->n_bounds, sizeof *s->buckets);
        *f->tail = s;
        f->tail = &s->next;
        f->n_series++;
    }
    pthread_mutex_unlock(&f->reg->lock);
    kl_buf_release(&b);
    return s;
}

struct kl_metric *kl_metric_get(struct kl_metric_family *f, ...)
{
    const char *pairs[2 * MAX_LABEL_PAIRS];
    size_t n = 0;
    va_list ap;
    va_start(ap, f);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        kl_assert(n < MAX_LABEL_PAIRS);
        pairs[2 * n] = k;
        pairs[2 * n + 1] = v;
        n++;
    }
    va_end(ap);
    return kl_metric_getv(f, pairs, n);
}

void kl_counter_add(struct kl_metric *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void kl_gauge_set(struct kl_metric *g, double v)
{
    if (g)
        atomic_store_explicit(&g->value, dbl_bits(v), memory_order_relaxed);
}

void kl_gauge_add(struct kl_metric *g, double delta)
{
    if (g)
        atomic_dbl_add(&g->value, delta);
}

void kl_histogram_observe(struct kl_metric *h, double v)
{
    if (!h)
        return;
    const struct kl_metric_family *f = h->family;
    for (size_t i = 0; i < f->n_bounds; i++) {
        if (v <= f->bounds[i]) {
            atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_dbl_add(&h->sum_bits, v);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t kl_counter_value(const struct kl_metric *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

double kl_gauge_value(const struct kl_metric *g)
{
    return g ? bits_dbl(atomic_load_explicit(&g->value, memory_order_relaxed)) : 0;
}

uint64_t kl_histogram_count(const struct kl_metric *h)
{
    return h ? atomic_load_explicit(&h->count, memory_order_relaxed) : 0;
}

void kl_metrics_on_collect(struct kl_metrics *m, void (*fn)(struct kl_metrics *, void *), void *arg)
{
    pthread_mutex_lock(&m->lock);
    kl_assert(m->n_collectors < MAX_COLLECTORS);
    m->collectors[m->n_collectors].fn = fn;
    m->collectors[m->n_collectors].arg = arg;
    m->n_collectors++;
    pthread_mutex_unlock(&m->lock);
}

static void put_help(struct kl_buf *b, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            kl_buf_puts(b, "\\\\");
        else if (*help == '\n')
            kl_buf_puts(b, "\\n");
        else
            kl_buf_putc(b, *help);
    }
}

/* Prometheus reads Go's float syntax: +Inf, -Inf, NaN. */
static void put_double(struct kl_buf *b, double v)
{
    if (v != v)
        kl_buf_puts(b, "NaN");
    else if (v > 1.7976931348623157e308)
        kl_buf_puts(b, "+Inf");
    else if (v < -1.7976931348623157e308)
        kl_buf_puts(b, "-Inf");
    else
        kl_buf_printf(b, "%.17g", v);
}

static void write_histogram(struct kl_buf *b, const struct kl_metric_family *f, struct kl_metric *s)
{
    uint64_t cum = 0;
    const char *sep = s->labels[0] ? "," : "";
    for (size_t i = 0; i < f->n_bounds; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        kl_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, sep, f->bounds[i],
                      (unsigned long long)cum);
    }
    uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
    if (count < cum) /* an observation between its bucket and count updates */
        count = cum;
    kl_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
                  (unsigned long long)count);
    kl_buf_printf(b, "%s_sum%s%s%s ", f->name, s->labels[0] ? "{" : "", s->labels,
                  s->labels[0] ? "}" : "");
    put_double(b, bits_dbl(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
    kl_buf_printf(b, "\n%s_count%s%s%s %llu\n", f->name, s->labels[0] ? "{" : "", s->labels,
                  s->labels[0] ? "}" : "", (unsigned long long)count);
}

int kl_metrics_write(struct kl_metrics *m, struct kl_buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    size_t n_coll = m->n_collectors;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n_coll; i++)
        m->collectors[i].fn(m, m->collectors[i].arg);

    pthread_mutex_lock(&m->lock);
    for (struct kl_metric_family *f = m->families; f; f = f->next) {
        kl_buf_printf(out, "# HELP %s ", f->name);
        put_help(out, f->help);
        kl_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (struct kl_metric *s = f->series; s; s = s->next) {
            if (f->type == KL_METRIC_HISTOGRAM) {
                write_histogram(out, f, s);
                continue;
            }
            kl_buf_puts(out, f->name);
            if (s->labels[0])
                kl_buf_printf(out, "{%s}", s->labels);
            kl_buf_putc(out, ' ');
            if (f->type == KL_METRIC_COUNTER)
                kl_buf_printf(out, "%llu", (unsigned long long)kl_counter_value(s));
            else
                put_double(out, kl_gauge_value(s));
            kl_buf_putc(out, '\n');
        }
    }
    pthread_mutex_unlock(&m->lock);
    return kl_err_is_set(&out->err) ? -1 : 0;
}
