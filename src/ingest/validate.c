/* validate.c - Relay's validation and normalization of parsed profiles (see validate.h) */
#include "ingest/validate.h"

#include "base/time.h"

#include <stdlib.h>
#include <string.h>

#define PAC_MASK 0x0000000FFFFFFFFFULL

static bool sample_is_idle(const struct kl_sample_data *d, const struct kl_sample *s)
{
    size_t n = kl_stack_count(d);
    return s->stack_id >= n || kl_stack_len(d, s->stack_id) == 0;
}

static void mark_sampled_threads(struct kl_sample_data *d)
{
    for (size_t i = 0; i < d->threads.len; i++)
        d->threads.items[i].sampled = false;
    for (size_t i = 0; i < d->queues.len; i++)
        d->queues.items[i].referenced = false;
    for (size_t i = 0; i < d->samples.len; i++) {
        struct kl_sample *s = &d->samples.items[i];
        d->threads.items[s->thread].sampled = true;
        if (s->queue >= 0)
            d->queues.items[s->queue].referenced = true;
    }
}

static int check_indexes(const struct kl_sample_data *d, struct kl_err *err)
{
    size_t nstacks = kl_stack_count(d);
    for (size_t i = 0; i < d->samples.len; i++)
        if (d->samples.items[i].stack_id >= nstacks)
            return kl_err_set(err, KL_R_PROFILING_MALFORMED_SAMPLES,
                              "sample %zu refers to stack %u of %zu", i,
                              d->samples.items[i].stack_id, nstacks);
    size_t nframes = d->frames.len;
    for (size_t i = 0; i < d->stack_frames.len; i++)
        if (d->stack_frames.items[i] >= nframes)
            return kl_err_set(err, KL_R_PROFILING_MALFORMED_STACKS,
                              "a stack refers to frame %u of %zu", d->stack_frames.items[i],
                              nframes);
    return 0;
}

static void strip_pac(struct kl_sample_data *d)
{
    for (size_t i = 0; i < d->frames.len; i++)
        if (d->frames.items[i].flags & KL_FRAME_HAS_ADDR)
            d->frames.items[i].instruction_addr &= PAC_MASK;
}

/* v1 steps 5-6 (also used for js_profile): per thread, drop idle samples before the first
 * and after the last non-idle sample (array order), then drop threads left with <= 1. */
static void trim_v1_samples(struct kl_sample_data *d)
{
    size_t nt = d->threads.len, ns = d->samples.len;
    if (ns == 0)
        return;
    size_t *first = malloc(nt * sizeof *first), *last = malloc(nt * sizeof *last);
    size_t *count = calloc(nt ? nt : 1, sizeof *count);
    kl_assert(first && last && count);
    for (size_t t = 0; t < nt; t++)
        first[t] = SIZE_MAX, last[t] = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        if (!sample_is_idle(d, s)) {
            if (first[s->thread] == SIZE_MAX)
                first[s->thread] = i;
            last[s->thread] = i;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        size_t t = s->thread;
        if (first[t] == SIZE_MAX || i < first[t] || i > last[t])
            continue;
        d->samples.items[w++] = *s;
        count[t]++;
    }
    d->samples.len = w;
    w = 0;
    for (size_t i = 0; i < d->samples.len; i++)
        if (count[d->samples.items[i].thread] > 1)
            d->samples.items[w++] = d->samples.items[i];
    d->samples.len = w;
    free(first);
    free(last);
    free(count);
}

static int cmp_sample_ts(const void *a, const void *b)
{
    const struct kl_sample *x = a, *y = b;
    if (x->ts_s < y->ts_s)
        return -1;
    if (x->ts_s > y->ts_s)
        return 1;
    /* stable: keep array order on ties (the index was stashed in ts_ns's place) */
    return 0;
}

/* A stable sort by (ts_s): merge sort on a scratch array. */
static void sort_samples_by_ts(struct kl_sample *s, size_t n)
{
    if (n < 2)
        return;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = s[i - 1].ts_s <= s[i].ts_s;
    if (sorted)
        return;
    struct kl_sample *tmp = malloc(n * sizeof *tmp);
    kl_assert(tmp);
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp_sample_ts(&s[j], &s[i]) < 0 ? s[j++] : s[i++];
            while (i < mid)
                tmp[k++] = s[i++];
            while (j < hi)
                tmp[k++] = s[j++];
        }
        memcpy(s, tmp, n * sizeof *s);
    }
    free(tmp);
}

/* v2 step 1: drop every sample of threads with fewer than 2 non-idle samples. */
static void trim_v2_samples(struct kl_sample_data *d)
{
    size_t nt = d->threads.len;
    size_t *count = calloc(nt ? nt : 1, sizeof *count);
    kl_assert(count);
    for (size_t i = 0; i < d->samples.len; i++)
        if (!sample_is_idle(d, &d->samples.items[i]))
            count[d->samples.items[i].thread]++;
    size_t w = 0;
    for (size_t i = 0; i < d->samples.len; i++)
        if (count[d->samples.items[i].thread] >= 2)
            d->samples.items[w++] = d->samples.items[i];
    d->samples.len = w;
    free(count);
}

static int validate_transaction(const struct kl_profile *p, struct kl_err *err)
{
    const struct kl_transaction *t = &p->transaction;
    if (!t->present)
        return kl_err_set(err, KL_R_PROFILING_NO_TRANSACTION_ASSOCIATED,
                          "the profile has no transaction");
    static const char nil[] = "00000000000000000000000000000000";
    if (kl_str_eq_c(t->id, nil) || kl_str_eq_c(t->trace_id, nil) || t->name.len == 0 ||
        (t->has_cpu_times && t->relative_cpu_start_ms > t->relative_cpu_end_ms))
        return kl_err_set(err, KL_R_PROFILING_INVALID_TRANSACTION_METADATA,
                          "transaction metadata is invalid (nil id or trace_id, empty name, "
                          "or cpu start after cpu end)");
    return 0;
}

static int validate_v1(struct kl_profile *p, struct kl_err *err)
{
    struct kl_sample_data *d = &p->data;
    if (kl_str_eq_c(p->platform, "cocoa") &&
        (!kl_str_is_set(p->os_build_number) || p->device_is_emulator == KL_UNSET ||
         !kl_str_is_set(p->device_locale) || !kl_str_is_set(p->device_manufacturer) ||
         !kl_str_is_set(p->device_model)))
        return kl_err_set(err, KL_R_PROFILING_INVALID_PROFILE_METADATA,
                          "a cocoa profile needs os.build_number and device is_emulator, "
                          "locale, manufacturer and model");
    if (validate_transaction(p, err) < 0)
        return -1;
    const struct kl_transaction *t = &p->transaction;
    if (t->relative_end_ns > 0) {
        size_t w = 0;
        for (size_t i = 0; i < d->samples.len; i++) {
            uint64_t ts = d->samples.items[i].ts_ns;
            if (ts >= t->relative_start_ns && ts <= t->relative_end_ns)
                d->samples.items[w++] = d->samples.items[i];
        }
        d->samples.len = w;
    }
    trim_v1_samples(d);
    if (d->samples.len == 0)
        return kl_err_set(err, KL_R_PROFILING_NOT_ENOUGH_SAMPLES,
                          "no samples left after trimming idle samples and single-sample "
                          "threads");
    if (check_indexes(d, err) < 0)
        return -1;
    if (d->samples.items[d->samples.len - 1].ts_ns > KL_MAX_PROFILE_DURATION_NS)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_TOO_LONG,
                          "the last sample is %llu ns after the start, over 30 s",
                          (unsigned long long)d->samples.items[d->samples.len - 1].ts_ns);
    if (kl_str_eq_c(p->platform, "cocoa") && (kl_str_eq_c(p->device_architecture, "arm64") ||
                                              kl_str_eq_c(p->device_architecture, "arm64e")))
        strip_pac(d);
    mark_sampled_threads(d);
    return 0;
}

/* Relay's v2 normalization; also used for a chunk's js_profile. */
static int validate_v2_data(struct kl_sample_data *d, bool cocoa, struct kl_err *err)
{
    trim_v2_samples(d);
    if (d->samples.len == 0)
        return kl_err_set(err, KL_R_PROFILING_NOT_ENOUGH_SAMPLES,
                          "no thread has 2 or more non-idle samples");
    if (check_indexes(d, err) < 0)
        return -1;
    sort_samples_by_ts(d->samples.items, d->samples.len);
    double span = d->samples.items[d->samples.len - 1].ts_s - d->samples.items[0].ts_s;
    if (span > (double)KL_MAX_CHUNK_DURATION_NS / 1e9)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_TOO_LONG,
                          "the chunk spans %.3f s, over 66 s", span);
    if (cocoa)
        strip_pac(d);
    mark_sampled_threads(d);
    return 0;
}

/* The base64 alphabet check Relay's decoder applies (standard alphabet, padding optional). */
static bool base64_ok(struct kl_str s)
{
    size_t n = s.len;
    while (n && s.ptr[n - 1] == '=')
        n--;
    if (s.len - n > 2 || n % 4 == 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return false;
    }
    return true;
}

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : 63;
}

/* Decode the first bytes of a base64 string (enough to read the trace's text header). */
static size_t b64_prefix(struct kl_str s, unsigned char *out, size_t max)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < s.len && o < max; i++) {
        if (s.ptr[i] == '=')
            break;
        acc = (acc << 6) | (uint32_t)b64val((unsigned char)s.ptr[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* The ART method trace (dmtrace) starts with a text header: "*version\n3\n" then key=value
 * lines, "elapsed-time-usec=N" among them. Until the binary decoder lands (a later issue) the
 * header gives the trace's duration for Relay's duration checks. */
static int check_art_trace(struct kl_profile *p, uint64_t max_ns, struct kl_err *err)
{
    if (!base64_ok(p->sampled_profile))
        return kl_err_set(err, KL_R_PROFILING_INVALID_BASE64_VALUE,
                          "sampled_profile is not valid base64");
    unsigned char head[4096];
    size_t n = b64_prefix(p->sampled_profile, head, sizeof head);
    struct kl_str h = kl_str_make((const char *)head, n);
    if (!kl_str_starts(h, "*version\n"))
        return kl_err_set(err, KL_R_PROFILING_INVALID_SAMPLED_PROFILE,
                          "sampled_profile is not an ART method trace (no *version header)");
    const char *key = "\nelapsed-time-usec=";
    const char *at = memmem(head, n, key, strlen(key));
    if (!at)
        return kl_err_set(err, KL_R_PROFILING_INVALID_SAMPLED_PROFILE,
                          "ART trace header has no elapsed-time-usec");
    at += strlen(key);
    const char *e = memchr(at, '\n', (size_t)((const char *)head + n - at));
    uint64_t usec;
    if (!e || !kl_parse_u64(kl_str_make(at, (size_t)(e - at)), &usec) || usec > UINT64_MAX / 1000)
        return kl_err_set(err, KL_R_PROFILING_INVALID_SAMPLED_PROFILE,
                          "ART trace header has a bad elapsed-time-usec");
    if (usec == 0)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_ZERO, "the trace's duration is zero");
    if (usec * 1000 > max_ns)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_TOO_LONG,
                          "the trace lasts %llu us, over the limit", (unsigned long long)usec);
    p->duration_ns = usec * 1000;
    return 0;
}

/* Android traces already decoded (stored form, or `profile` sent instead of
 * sampled_profile): the same checks on the events. */
static int check_android_events(struct kl_profile *p, uint64_t max_ns, struct kl_err *err)
{
    struct kl_android_trace *t = &p->android;
    if (!t->present || t->events.len == 0)
        return kl_err_set(err, KL_R_PROFILING_NOT_ENOUGH_SAMPLES, "the trace has no events");
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < t->events.len; i++) {
        const struct kl_android_event *e = &t->events.items[i];
        uint64_t ts = e->has_wall ? e->wall_ns : e->has_global ? e->global_ns : e->cpu_ns;
        lo = ts < lo ? ts : lo;
        hi = ts > hi ? ts : hi;
    }
    uint64_t dur = p->duration_ns ? p->duration_ns : hi - lo;
    if (dur > max_ns)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_TOO_LONG,
                          "the trace lasts %llu ns, over the limit", (unsigned long long)dur);
    if (dur == 0)
        return kl_err_set(err, KL_R_PROFILING_DURATION_IS_ZERO, "the trace's duration is zero");
    if (!p->duration_ns)
        p->duration_ns = dur;
    return 0;
}

static int validate_android(struct kl_profile *p, uint64_t max_ns, bool chunk, struct kl_err *err)
{
    if (!chunk && validate_transaction(p, err) < 0)
        return -1;
    if (p->js_data.present) {
        /* js_profile: like v1 steps 5-11 for transaction profiles, v2 for chunks */
        if (chunk) {
            if (validate_v2_data(&p->js_data, false, err) < 0)
                return -1;
        } else {
            trim_v1_samples(&p->js_data);
            if (check_indexes(&p->js_data, err) < 0)
                return -1;
            mark_sampled_threads(&p->js_data);
        }
    }
    if (kl_str_is_set(p->sampled_profile) && p->sampled_profile.len > 0) {
        if (check_art_trace(p, max_ns, err) < 0)
            return -1;
    } else if (check_android_events(p, max_ns, err) < 0) {
        return -1;
    }
    if (!chunk && p->build_id.len > 0 && !p->has_debug_meta) {
        struct kl_uuid u;
        if (!kl_uuid_parse(p->build_id, &u))
            return kl_err_set(err, KL_R_INVALID_BUILD_ID, "build_id '%.*s' is not a uuid",
                              (int)(p->build_id.len > 64 ? 64 : p->build_id.len), p->build_id.ptr);
        struct kl_image im;
        memset(&im, 0, sizeof im);
        im.type = KL_STR("proguard");
        char *h = kl_arena_alloc(p->arena, 37);
        kl_uuid_dashed(&u, h);
        im.uuid = kl_str_make(h, 36);
        kl_vec_push(p->arena, &p->images, im);
        p->has_debug_meta = true;
    }
    return 0;
}

int kl_validate_run(struct kl_profile *p, struct kl_err *err)
{
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
        return validate_v1(p, err);
    case KL_KIND_SAMPLE_V2:
        return validate_v2_data(&p->data, kl_str_eq_c(p->platform, "cocoa"), err);
    case KL_KIND_ANDROID:
        return validate_android(p, KL_MAX_PROFILE_DURATION_NS, false, err);
    case KL_KIND_ANDROID_CHUNK:
        return validate_android(p, KL_MAX_CHUNK_DURATION_NS, true, err);
    default:
        return kl_err_set(err, KL_R_PROFILING_PLATFORM_NOT_SUPPORTED, "unknown profile format");
    }
}
