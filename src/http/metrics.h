/* metrics.h - a small Prometheus registry: counters, gauges, fixed-bucket histograms
 *
 * What: named metric families with label sets, updated from any thread and rendered in
 * the Prometheus text exposition format (version 0.0.4) for GET /metrics. The HTTP server
 * counts its own requests here; the rest of kiln adds its items (items by type, queue depth,
 * outcomes by reason, processing latency) through the same calls.
 *
 * Model: struct kl_metrics owns a list of families (name, help, type, histogram bounds);
 * each family owns a list of series, one per distinct label set. A series is found or
 * created by kl_metric_get(family, "label", "value", ..., NULL) and stays at the same
 * address until kl_metrics_free, so hot paths may look a series up once and keep the
 * pointer. Values are atomics: updates take no lock. Creating a family or a series takes
 * the registry's mutex; so does rendering.
 *
 * Why not a hash map or a client library: a service like kiln has tens of series (routes ×
 * statuses, item types, reasons), so a list scan under a mutex is cheaper to read and to
 * trust; libprom is not packaged in Debian 12.
 *
 * Ownership: the registry owns families and series; names, help and label strings are
 * copied. Pointers returned stay valid until kl_metrics_free.
 * Invariants: a family name is unique; asking again for the same name and type returns the
 * existing family (a different type is our bug: kl_assert). Label names are fixed by the
 * first series of a family only by convention, not checked.
 * Errors: none; rendering reports the buffer's error (KL_R_BUF_TOO_BIG).
 * Threads: everything is thread-safe. Limits: KL_METRICS_MAX_SERIES series per family;
 * past it kl_metric_get returns a per-family overflow series that is counted but not
 * rendered (cardinality cannot grow without bound from client input).
 * Tests: tests/unit/test_http_server.c (rendering, concurrent updates, /metrics route).
 */
#ifndef KL_HTTP_METRICS_H
#define KL_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KL_METRICS_MAX_SERIES 1000
#define KL_METRICS_MAX_BUCKETS 32

enum kl_metric_type { KL_METRIC_COUNTER, KL_METRIC_GAUGE, KL_METRIC_HISTOGRAM };

struct kl_metrics;
struct kl_metric_family;
struct kl_metric;

struct kl_metrics *kl_metrics_new(void);
void kl_metrics_free(struct kl_metrics *m);

/* Find or create a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]* (asserted). For a
 * histogram, bounds are the upper bounds of the buckets, strictly increasing, at most
 * KL_METRICS_MAX_BUCKETS (copied; +Inf is implicit). */
struct kl_metric_family *kl_metrics_counter(struct kl_metrics *m, const char *name,
                                            const char *help);
struct kl_metric_family *kl_metrics_gauge(struct kl_metrics *m, const char *name, const char *help);
struct kl_metric_family *kl_metrics_histogram(struct kl_metrics *m, const char *name,
                                              const char *help, const double *bounds,
                                              size_t n_bounds);

/* Find or create the series with these labels: name/value pairs, NULL-terminated
 * (kl_metric_get(f, "route", "/health", "status", "200", NULL)). Label values are escaped
 * on output. f may be NULL (returns NULL; every update accepts NULL as a no-op). */
struct kl_metric *kl_metric_get(struct kl_metric_family *f, ...) __attribute__((sentinel));
/* The same with an array of 2*n_pairs strings. */
struct kl_metric *kl_metric_getv(struct kl_metric_family *f, const char *const *pairs,
                                 size_t n_pairs);

void kl_counter_add(struct kl_metric *c, uint64_t n);
void kl_gauge_set(struct kl_metric *g, double v);
void kl_gauge_add(struct kl_metric *g, double delta);
void kl_histogram_observe(struct kl_metric *h, double v);

/* Read back (tests, health checks). */
uint64_t kl_counter_value(const struct kl_metric *c);
double kl_gauge_value(const struct kl_metric *g);
uint64_t kl_histogram_count(const struct kl_metric *h);

/* Register fn(m, arg) to run before each render, e.g. to set a queue-depth gauge from the
 * queue. Callbacks run in registration order, outside the registry's lock. At most 16. */
void kl_metrics_on_collect(struct kl_metrics *m, void (*fn)(struct kl_metrics *, void *),
                           void *arg);

/* Append the text exposition of every family to out. Returns 0 or -1 (out->err). */
int kl_metrics_write(struct kl_metrics *m, struct kl_buf *out);

/* Default latency buckets in seconds (5 ms .. 30 s), for kl_metrics_histogram. */
extern const double kl_metrics_latency_buckets[];
extern const size_t kl_metrics_latency_buckets_n;

#endif
