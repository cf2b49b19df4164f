/* stored.c - stored-form JSON writer (see stored.h) */
#include "output/stored.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "json/json.h"

static void key_str(struct kl_jw *w, const char *k, struct kl_str s)
{
    kl_jw_key(w, k);
    kl_jw_str(w, s);
}
static void key_opt_str(struct kl_jw *w, const char *k, struct kl_str s)
{
    if (s.ptr)
        key_str(w, k, s);
}
/* Option<String> without skip_serializing_if: null when absent */
static void key_u64(struct kl_jw *w, const char *k, uint64_t v)
{
    kl_jw_key(w, k);
    kl_jw_u64(w, v);
}
static void key_hex(struct kl_jw *w, const char *k, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    do {
        *--p = hex[v & 15];
        v >>= 4;
    } while (v);
    *--p = 'x';
    *--p = '0';
    key_str(w, k, kl_str_make(p, (size_t)(e - p)));
}
static void key_bool(struct kl_jw *w, const char *k, bool v)
{
    kl_jw_key(w, k);
    kl_jw_bool(w, v);
}
static void key_tri(struct kl_jw *w, const char *k, uint8_t t)
{
    if (t != KL_UNSET)
        key_bool(w, k, t == KL_TRUE);
}

static void write_client_sdk(struct kl_jw *w, const struct kl_profile *p, bool null_if_absent)
{
    if (!p->has_client_sdk) {
        if (null_if_absent) {
            kl_jw_key(w, "client_sdk");
            kl_jw_null(w);
        }
        return;
    }
    kl_jw_key(w, "client_sdk");
    kl_jw_obj_begin(w);
    key_str(w, "name", p->sdk_name);
    key_str(w, "version", p->sdk_version);
    kl_jw_obj_end(w);
}

static void write_debug_meta(struct kl_jw *w, const struct kl_profile *p)
{
    if (p->images.len == 0)
        return;
    kl_jw_key(w, "debug_meta");
    kl_jw_obj_begin(w);
    kl_jw_key(w, "images");
    kl_jw_arr_begin(w);
    for (size_t i = 0; i < p->images.len; i++) {
        const struct kl_image *im = &p->images.items[i];
        kl_jw_obj_begin(w);
        key_opt_str(w, "arch", im->arch);
        key_opt_str(w, "code_file", im->code_file);
        key_opt_str(w, "debug_id", im->debug_id);
        key_opt_str(w, "debug_file", im->debug_file);
        key_opt_str(w, "debug_status", im->debug_status);
        if (im->has_features) {
            kl_jw_key(w, "features");
            kl_jw_obj_begin(w);
            key_bool(w, "has_debug_info", im->has_debug_info);
            key_bool(w, "has_sources", im->has_sources);
            key_bool(w, "has_symbols", im->has_symbols);
            key_bool(w, "has_unwind_info", im->has_unwind_info);
            kl_jw_obj_end(w);
        }
        if (im->has_image_addr)
            key_hex(w, "image_addr", im->image_addr);
        if (im->has_image_size)
            key_u64(w, "image_size", im->image_size);
        if (im->has_image_vmaddr)
            key_hex(w, "image_vmaddr", im->image_vmaddr);
        key_opt_str(w, "type", im->type);
        key_opt_str(w, "uuid", im->uuid);
        kl_jw_obj_end(w);
    }
    kl_jw_arr_end(w);
    kl_jw_obj_end(w);
}

static void write_measurements(struct kl_jw *w, const struct kl_profile *p, bool chunk)
{
    if (!p->has_measurements)
        return;
    kl_jw_key(w, "measurements");
    kl_jw_obj_begin(w);
    for (size_t i = 0; i < p->measurements.len; i++) {
        const struct kl_measurement *m = &p->measurements.items[i];
        kl_jw_key_str(w, m->name);
        kl_jw_obj_begin(w);
        key_str(w, "unit", m->unit);
        kl_jw_key(w, "values");
        kl_jw_arr_begin(w);
        for (size_t j = 0; j < m->n; j++) {
            kl_jw_obj_begin(w);
            if (chunk) {
                kl_jw_key(w, "timestamp");
                kl_jw_f64(w, m->values[j].t_s);
            } else {
                key_u64(w, "elapsed_since_start_ns", m->values[j].t_ns);
            }
            kl_jw_key(w, "value");
            kl_jw_f64(w, m->values[j].value);
            kl_jw_obj_end(w);
        }
        kl_jw_arr_end(w);
        kl_jw_obj_end(w);
    }
    kl_jw_obj_end(w);
}

static void write_kv(struct kl_jw *w, const char *k, const kl_vec_kv *m)
{
    kl_jw_key(w, k);
    kl_jw_obj_begin(w);
    for (size_t i = 0; i < m->len; i++) {
        kl_jw_key_str(w, m->items[i].key);
        kl_jw_str(w, m->items[i].value);
    }
    kl_jw_obj_end(w);
}

static void write_frame(struct kl_jw *w, const struct kl_frame *f)
{
    kl_jw_obj_begin(w);
    if (f->flags & KL_FRAME_HAS_COLNO)
        key_u64(w, "colno", f->colno);
    if (f->flags & (KL_FRAME_HAS_DATA | KL_FRAME_ORIG_IN_APP)) {
        kl_jw_key(w, "data");
        kl_jw_obj_begin(w);
        key_opt_str(w, "deobfuscation_status", f->data_deobfuscation_status);
        key_opt_str(w, "symbolicator_status", f->data_symbolicator_status);
        key_tri(w, "symbolicated", f->data_js_symbolicated);
        if (f->flags & KL_FRAME_ORIG_IN_APP)
            key_u64(w, "orig_in_app", f->orig_in_app == KL_TRUE);
        kl_jw_obj_end(w);
    }
    key_opt_str(w, "filename", f->filename);
    key_opt_str(w, "function", f->function);
    key_tri(w, "in_app", f->in_app);
    if (f->flags & KL_FRAME_HAS_ADDR)
        key_hex(w, "instruction_addr", f->instruction_addr);
    key_opt_str(w, "lang", f->lang);
    if (f->flags & KL_FRAME_HAS_LINENO)
        key_u64(w, "lineno", f->lineno);
    key_opt_str(w, "module", f->module);
    key_opt_str(w, "package", f->package);
    key_opt_str(w, "abs_path", f->abs_path);
    key_opt_str(w, "status", f->status);
    key_opt_str(w, "sym_addr", f->sym_addr);
    key_opt_str(w, "symbol", f->symbol);
    key_opt_str(w, "platform", f->platform);
    kl_jw_obj_end(w);
}

/* Fragments are copied 16 bytes at a time, so up to 15 bytes past their end are read and
 * written (and kl_fmt_u64_wide writes up to 8 bytes past its digits, within the 20 reserved
 * per number): both buffers are reserved with this much room to spare. A constant-size
 * memcpy is a pair of vector moves; a variable one is a call. */
#define FRAG_SLACK 16

static inline void copy_frag(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16)
        memcpy(dst + i, src + i, 16);
}

/* The samples of a v1 profile, byte for byte what the general loop below writes, but each
 * sample as one in-place write: the text that depends only on the thread
 * (,"thread_id":N,"elapsed_since_start_ns":) and on the queue (,"queue_address":"...") is
 * built once per thread and queue, so a sample costs two integers and three copies (192k
 * samples in the 30 MB benchmark profile). -1 (nothing written) when the scratch text
 * would be unreasonably large; the caller then writes the general way. */
static int write_v1_samples(struct kl_jw *w, const struct kl_sample_data *d)
{
    static const char tid_key[] = ",\"thread_id\":", ts_key[] = ",\"elapsed_since_start_ns\":",
                      q_key[] = ",\"queue_address\":", idle[] = ",\"state\":\"idle\"";
    size_t nt = d->threads.len, nq = d->queues.len;
    struct kl_buf frag;
    kl_buf_init(&frag, (size_t)64 << 20);
    size_t *off = kl_xmalloc((nt + nq + 1) * sizeof *off);
    for (size_t i = 0; i < nt; i++) {
        char num[24];
        off[i] = frag.len;
        kl_buf_append(&frag, tid_key, sizeof tid_key - 1);
        kl_buf_append(&frag, num, kl_fmt_u64(d->threads.items[i].id_num, num));
        kl_buf_append(&frag, ts_key, sizeof ts_key - 1);
    }
    for (size_t i = 0; i < nq; i++) {
        off[nt + i] = frag.len;
        struct kl_jw fw;
        kl_jw_init(&fw, &frag);
        kl_buf_append(&frag, q_key, sizeof q_key - 1);
        fw.after_key = true;
        kl_jw_str(&fw, d->queues.items[i].address);
    }
    off[nt + nq] = frag.len;
    kl_buf_reserve(&frag, FRAG_SLACK);
    if (kl_err_is_set(&frag.err)) {
        free(off);
        kl_buf_release(&frag);
        return -1;
    }
    for (size_t i = 0; i < d->samples.len; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        const char *tf = frag.ptr + off[s->thread];
        size_t tn = off[s->thread + 1] - off[s->thread];
        const char *qf = NULL;
        size_t qn = 0;
        if (s->queue >= 0) {
            qf = frag.ptr + off[nt + (size_t)s->queue];
            qn = off[nt + (size_t)s->queue + 1] - off[nt + (size_t)s->queue];
        }
        char *p = kl_jw_raw_begin(w, 12 + 20 + tn + 20 + qn + sizeof idle + 1 + FRAG_SLACK);
        if (!p)
            break;
        memcpy(p, "{\"stack_id\":", 12);
        p += 12;
        p += kl_fmt_u64_wide(s->stack_id, p);
        copy_frag(p, tf, tn);
        p += tn;
        p += kl_fmt_u64_wide(s->ts_ns, p);
        if (qn) {
            copy_frag(p, qf, qn);
            p += qn;
        }
        if (s->idle) {
            memcpy(p, idle, sizeof idle - 1);
            p += sizeof idle - 1;
        }
        *p++ = '}';
        kl_jw_raw_end(w, p);
    }
    free(off);
    kl_buf_release(&frag);
    return 0;
}

/* frames, samples, stacks, thread/queue metadata of one sample-data block */
static void write_sample_data(struct kl_jw *w, const struct kl_sample_data *d, bool chunk)
{
    kl_jw_obj_begin(w);
    kl_jw_key(w, "frames");
    kl_jw_arr_begin(w);
    for (size_t i = 0; i < d->frames.len; i++)
        write_frame(w, &d->frames.items[i]);
    kl_jw_arr_end(w);

    if (!chunk && d->has_queue_metadata) {
        kl_jw_key(w, "queue_metadata");
        kl_jw_obj_begin(w);
        for (size_t i = 0; i < d->queues.len; i++) {
            const struct kl_queue *q = &d->queues.items[i];
            if (!q->referenced || !q->label.ptr)
                continue;
            kl_jw_key_str(w, q->address);
            kl_jw_obj_begin(w);
            key_str(w, "label", q->label);
            kl_jw_obj_end(w);
        }
        kl_jw_obj_end(w);
    }

    kl_jw_key(w, "samples");
    kl_jw_arr_begin(w);
    if (!chunk && kl_json_fast_paths() && write_v1_samples(w, d) == 0)
        goto samples_done;
    for (size_t i = 0; i < d->samples.len; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        const struct kl_thread *t = &d->threads.items[s->thread];
        kl_jw_obj_begin(w);
        key_u64(w, "stack_id", s->stack_id);
        kl_jw_key(w, "thread_id");
        if (chunk)
            kl_jw_str(w, t->id);
        else
            kl_jw_u64(w, t->id_num);
        if (chunk) {
            kl_jw_key(w, "timestamp");
            kl_jw_f64(w, s->ts_s);
        } else {
            key_u64(w, "elapsed_since_start_ns", s->ts_ns);
            if (s->queue >= 0)
                key_str(w, "queue_address", d->queues.items[s->queue].address);
        }
        if (s->idle)
            key_str(w, "state", KL_STR("idle"));
        kl_jw_obj_end(w);
    }
samples_done:
    kl_jw_arr_end(w);

    kl_jw_key(w, "stacks");
    kl_jw_arr_begin(w);
    size_t ns = kl_stack_count(d);
    if (kl_json_fast_paths() && ns > 0) {
        /* stack entries are frame indices: their text comes from a table of 0..frames-1 */
        struct kl_jw_numtab tab;
        kl_jw_numtab_init(&tab, d->frames.len > UINT32_MAX ? UINT32_MAX : (uint32_t)d->frames.len);
        for (size_t i = 0; i < ns; i++)
            kl_jw_u32_array_tab(w, kl_stack_at(d, i), kl_stack_len(d, i), &tab);
        kl_jw_numtab_release(&tab);
    } else {
        for (size_t i = 0; i < ns; i++)
            kl_jw_u32_array(w, kl_stack_at(d, i), kl_stack_len(d, i));
    }
    kl_jw_arr_end(w);

    bool any_meta = false;
    for (size_t i = 0; i < d->threads.len && !any_meta; i++)
        any_meta = d->threads.items[i].has_metadata && d->threads.items[i].sampled;
    if (d->has_thread_metadata || any_meta) {
        kl_jw_key(w, "thread_metadata");
        kl_jw_obj_begin(w);
        for (size_t i = 0; i < d->threads.len; i++) {
            const struct kl_thread *t = &d->threads.items[i];
            if (!t->has_metadata || !t->sampled)
                continue;
            kl_jw_key_str(w, t->id);
            kl_jw_obj_begin(w);
            key_opt_str(w, "name", t->name);
            if (t->has_priority) {
                kl_jw_key(w, "priority");
                kl_jw_i64(w, t->priority);
            }
            kl_jw_obj_end(w);
        }
        kl_jw_obj_end(w);
    }
    kl_jw_obj_end(w);
}

static void write_processing_fields(struct kl_jw *w, const struct kl_profile *p, bool chunk)
{
    key_u64(w, "organization_id", p->organization_id);
    key_u64(w, "project_id", p->project_id);
    kl_jw_key(w, "received");
    if (chunk)
        kl_jw_f64(w, (double)p->received);
    else
        kl_jw_i64(w, p->received);
    kl_jw_key(w, "retention_days");
    kl_jw_i64(w, p->retention_days);
}

static void write_timestamp(struct kl_jw *w, const struct kl_profile *p)
{
    char ts[48];
    size_t n = kl_rfc3339_format(p->timestamp_ns, ts);
    key_str(w, "timestamp", kl_str_make(ts, n));
}

static void write_v1(struct kl_jw *w, const struct kl_profile *p)
{
    kl_jw_obj_begin(w);
    write_client_sdk(w, p, true);
    write_debug_meta(w, p);
    kl_jw_key(w, "device");
    kl_jw_obj_begin(w);
    key_str(w, "architecture", p->device_architecture);
    key_opt_str(w, "classification", p->device_classification);
    key_tri(w, "is_emulator", p->device_is_emulator);
    key_opt_str(w, "locale", p->device_locale);
    key_opt_str(w, "manufacturer", p->device_manufacturer);
    key_opt_str(w, "model", p->device_model);
    kl_jw_obj_end(w);
    kl_jw_key_str_or_null(w, "environment", p->environment);
    key_str(w, "event_id", p->event_id);
    write_measurements(w, p, false);
    kl_jw_key(w, "os");
    kl_jw_obj_begin(w);
    key_str(w, "name", p->os_name);
    key_str(w, "version", p->os_version);
    key_opt_str(w, "build_number", p->os_build_number);
    kl_jw_obj_end(w);
    key_u64(w, "organization_id", p->organization_id);
    key_str(w, "platform", p->platform);
    key_u64(w, "project_id", p->project_id);
    kl_jw_key(w, "received");
    kl_jw_i64(w, p->received);
    key_opt_str(w, "release", p->release);
    key_opt_str(w, "dist", p->dist);
    kl_jw_key(w, "retention_days");
    kl_jw_i64(w, p->retention_days);
    if (p->has_runtime) {
        kl_jw_key(w, "runtime");
        kl_jw_obj_begin(w);
        key_str(w, "name", p->runtime_name);
        key_str(w, "version", p->runtime_version);
        kl_jw_obj_end(w);
    }
    kl_jw_key(w, "profile");
    write_sample_data(w, &p->data, false);
    key_bool(w, "sampled", p->sampled);
    write_timestamp(w, p);
    const struct kl_transaction *t = &p->transaction;
    kl_jw_key(w, "transaction");
    kl_jw_obj_begin(w);
    key_u64(w, "active_thread_id", t->active_thread_id);
    key_str(w, "id", t->id);
    key_str(w, "name", t->name);
    key_u64(w, "relative_end_ns", t->relative_end_ns);
    key_u64(w, "relative_start_ns", t->relative_start_ns);
    if (t->has_cpu_times) {
        key_u64(w, "relative_cpu_end_ms", t->relative_cpu_end_ms);
        key_u64(w, "relative_cpu_start_ms", t->relative_cpu_start_ms);
    }
    key_str(w, "trace_id", t->trace_id);
    key_opt_str(w, "segment_id", t->segment_id);
    kl_jw_obj_end(w);
    if (p->has_tx_metadata)
        write_kv(w, "transaction_metadata", &p->tx_metadata);
    if (p->tx_tags.len)
        write_kv(w, "transaction_tags", &p->tx_tags);
    key_str(w, "version", p->version);
    kl_jw_obj_end(w);
}

static void write_v2(struct kl_jw *w, const struct kl_profile *p)
{
    kl_jw_obj_begin(w);
    key_str(w, "chunk_id", p->chunk_id);
    key_str(w, "profiler_id", p->profiler_id);
    write_debug_meta(w, p);
    write_client_sdk(w, p, true);
    kl_jw_key_str_or_null(w, "environment", p->environment);
    key_str(w, "platform", p->platform);
    key_opt_str(w, "release", p->release);
    key_str(w, "version", p->version);
    kl_jw_key(w, "profile");
    write_sample_data(w, &p->data, true);
    write_processing_fields(w, p, true);
    write_measurements(w, p, true);
    kl_jw_obj_end(w);
}

static void write_duration(struct kl_jw *w, const char *k, uint64_t ns)
{
    kl_jw_key(w, k);
    kl_jw_obj_begin(w);
    key_u64(w, "secs", ns / 1000000000ULL);
    key_u64(w, "nanos", ns % 1000000000ULL);
    kl_jw_obj_end(w);
}

static void write_method(struct kl_jw *w, const struct kl_android_method *m, bool with_inline)
{
    kl_jw_obj_begin(w);
    key_opt_str(w, "class_name", m->class_name);
    if (m->has_data || m->data_deobfuscation_status.ptr) {
        kl_jw_key(w, "data");
        kl_jw_obj_begin(w);
        key_opt_str(w, "deobfuscation_status", m->data_deobfuscation_status);
        kl_jw_obj_end(w);
    }
    key_u64(w, "id", m->id);
    key_opt_str(w, "name", m->name);
    key_opt_str(w, "signature", m->signature);
    key_opt_str(w, "source_file", m->source_file);
    if (m->has_source_line)
        key_u64(w, "source_line", m->source_line);
    key_tri(w, "in_app", m->in_app);
    key_opt_str(w, "platform", m->platform);
    if (with_inline && m->n_inline) {
        kl_jw_key(w, "inline_frames");
        kl_jw_arr_begin(w);
        for (uint32_t i = 0; i < m->n_inline; i++)
            write_method(w, &m->inline_frames[i], false);
        kl_jw_arr_end(w);
    }
    kl_jw_obj_end(w);
}

static void write_android_trace(struct kl_jw *w, const struct kl_android_trace *t)
{
    static const char *actions[] = {"Enter", "Exit", "Unwind"};
    kl_jw_obj_begin(w);
    key_opt_str(w, "clock", t->clock);
    kl_jw_key(w, "events");
    kl_jw_arr_begin(w);
    for (size_t i = 0; i < t->events.len; i++) {
        const struct kl_android_event *e = &t->events.items[i];
        kl_jw_obj_begin(w);
        key_str(w, "action", kl_str_c(actions[e->action % 3]));
        key_u64(w, "thread_id", e->thread_id);
        if (e->has_method_id)
            key_u64(w, "method_id", e->method_id);
        kl_jw_key(w, "time");
        kl_jw_obj_begin(w);
        if (e->has_global)
            write_duration(w, "Global", e->global_ns);
        if (e->monotonic || e->has_wall || e->has_cpu) {
            kl_jw_key(w, "Monotonic");
            kl_jw_obj_begin(w);
            if (e->has_wall)
                write_duration(w, "wall", e->wall_ns);
            if (e->has_cpu)
                write_duration(w, "cpu", e->cpu_ns);
            kl_jw_obj_end(w);
        }
        kl_jw_obj_end(w);
        kl_jw_obj_end(w);
    }
    kl_jw_arr_end(w);
    kl_jw_key(w, "methods");
    kl_jw_arr_begin(w);
    for (size_t i = 0; i < t->methods.len; i++)
        write_method(w, &t->methods.items[i], true);
    kl_jw_arr_end(w);
    key_u64(w, "start_time", t->start_time);
    kl_jw_key(w, "threads");
    kl_jw_arr_begin(w);
    for (size_t i = 0; i < t->threads.len; i++) {
        kl_jw_obj_begin(w);
        key_u64(w, "id", t->threads.items[i].id);
        key_opt_str(w, "name", t->threads.items[i].name);
        kl_jw_obj_end(w);
    }
    kl_jw_arr_end(w);
    kl_jw_obj_end(w);
}

static void write_android(struct kl_jw *w, const struct kl_profile *p)
{
    bool chunk = p->kind == KL_KIND_ANDROID_CHUNK;
    kl_jw_obj_begin(w);
    if (chunk) {
        key_str(w, "chunk_id", p->chunk_id);
        key_str(w, "profiler_id", p->profiler_id);
    } else {
        if (p->has_android_api_level)
            key_u64(w, "android_api_level", p->android_api_level);
        if (p->transaction.present)
            key_u64(w, "active_thread_id", p->transaction.active_thread_id);
        key_opt_str(w, "build_id", p->build_id);
    }
    write_client_sdk(w, p, false);
    write_debug_meta(w, p);
    if (!chunk) {
        key_str(w, "device_classification",
                p->device_classification.ptr ? p->device_classification : KL_STR(""));
        if (p->device_cpu_frequencies.len) {
            kl_jw_key(w, "device_cpu_frequencies");
            kl_jw_arr_begin(w);
            for (size_t i = 0; i < p->device_cpu_frequencies.len; i++)
                kl_jw_u64(w, p->device_cpu_frequencies.items[i]);
            kl_jw_arr_end(w);
        }
        key_tri(w, "device_is_emulator", p->device_is_emulator);
        key_str(w, "device_locale", p->device_locale.ptr ? p->device_locale : KL_STR(""));
        key_str(w, "device_manufacturer",
                p->device_manufacturer.ptr ? p->device_manufacturer : KL_STR(""));
        key_str(w, "device_model", p->device_model.ptr ? p->device_model : KL_STR(""));
        key_str(w, "device_os_name", p->os_name.ptr ? p->os_name : KL_STR(""));
        key_str(w, "device_os_version", p->os_version.ptr ? p->os_version : KL_STR(""));
        key_opt_str(w, "device_os_build_number", p->os_build_number);
        if (p->device_physical_memory_bytes)
            key_u64(w, "device_physical_memory_bytes", p->device_physical_memory_bytes);
    }
    key_u64(w, "duration_ns", p->duration_ns);
    key_opt_str(w, "environment", p->environment);
    key_str(w, "platform", p->platform);
    if (p->android.present) {
        kl_jw_key(w, "profile");
        write_android_trace(w, &p->android);
    }
    if (p->js_data.present) {
        kl_jw_key(w, "js_profile");
        write_sample_data(w, &p->js_data, chunk);
    }
    if (kl_str_is_set(p->sampled_profile) && !p->android.present)
        key_str(w, "sampled_profile", p->sampled_profile);
    if (!chunk)
        key_str(w, "profile_id", p->event_id);
    key_opt_str(w, "release", p->release);
    key_opt_str(w, "dist", p->dist);
    if (chunk) {
        kl_jw_key(w, "timestamp");
        kl_jw_f64(w, p->timestamp_s);
        key_opt_str(w, "version", p->version);
        write_measurements(w, p, true);
        write_processing_fields(w, p, true);
    } else {
        write_measurements(w, p, false);
        write_processing_fields(w, p, false);
        key_bool(w, "sampled", p->sampled);
        if (p->has_timestamp)
            write_timestamp(w, p);
        key_opt_str(w, "trace_id", p->transaction.trace_id);
        key_opt_str(w, "transaction_id", p->transaction.id);
        if (p->has_tx_metadata)
            write_kv(w, "transaction_metadata", &p->tx_metadata);
        key_str(w, "transaction_name", p->transaction.name.ptr ? p->transaction.name : KL_STR(""));
        if (p->tx_tags.len)
            write_kv(w, "transaction_tags", &p->tx_tags);
        key_str(w, "version_code", p->version_code.ptr ? p->version_code : KL_STR(""));
        key_str(w, "version_name", p->version_name.ptr ? p->version_name : KL_STR(""));
    }
    kl_jw_obj_end(w);
}

int kl_profile_write_stored(const struct kl_profile *p, struct kl_buf *out, struct kl_err *err)
{
    struct kl_jw w;
    kl_jw_init(&w, out);
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
        write_v1(&w, p);
        break;
    case KL_KIND_SAMPLE_V2:
        write_v2(&w, p);
        break;
    case KL_KIND_ANDROID:
    case KL_KIND_ANDROID_CHUNK:
        write_android(&w, p);
        break;
    default:
        return kl_err_set(err, KL_R_INTERNAL, "cannot write a profile of unknown kind");
    }
    if (kl_err_is_set(&out->err)) {
        kl_err_set(err, out->err.reason, "%s", out->err.msg);
        return -1;
    }
    return 0;
}
