/* queue.c - durable ingest queue: group commit into append-only segments, lazy retire log
 *
 * Locks: q->mu guards everything in struct kl_queue below "under mu". q->rlog_mu serializes
 * retire.log writes, segment deletion and retire.log compaction; when both are held, rlog_mu
 * is taken first. The committer thread does all segment writes and fdatasyncs without holding
 * mu; the current segment (q->cur) is never deleted, so it may use it unlocked.
 */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/str.h"

#define REC_MAGIC "KLQ1"
#define RET_MAGIC "KLR1"
#define KIND_ITEM 1
#define HDR 32        /* record header without the fixed metadata */
#define META_FIXED 48 /* fixed metadata fields */
#define RET_ENTRY 16
#define SCAN_CHUNK (1u << 20) /* crc scratch buffer at recovery */
#define IOV_CHUNK 1024        /* IOV_MAX on Linux */
#define SEG_NAME_LEN 28       /* "seg-" + 20 digits + ".log" */
/* ids skipped after recovery cut a tail: more than any tail could have held */
#define ID_JUMP (1ull << 32)
/* retire.log is rewritten once it holds this many entries more than twice the useful ones */
#define RLOG_SLACK 65536

enum ent_state { ENT_READY, ENT_TAKEN, ENT_RETIRED };

struct ent {
    uint64_t id;
    uint64_t off; /* record start in the segment */
    uint32_t meta_len;
    uint32_t payload_len;
    uint8_t state; /* enum ent_state */
};

struct seg {
    uint64_t first_id; /* from the file name; every id in it is >= this */
    int fd;
    uint64_t size;    /* bytes of valid records (the append offset for the current one) */
    struct ent *ents; /* by id */
    size_t n, cap;
    size_t n_retired;
    int pins; /* takers reading from fd right now: no deletion while > 0 */
    bool cut; /* recovery cut a bad tail off this segment */
};

/* One appender, on its own stack, queued for the committer. */
struct waiter {
    struct waiter *next;
    unsigned char hdr[KL_QUEUE_HEADER_BYTES];
    const void *blob;
    size_t blob_len;
    const void *payload;
    size_t len;
    uint64_t id;
    uint64_t bytes;
    uint32_t meta_len;
    int state;  /* 0 queued, 1 durable, -1 failed */
    int err_no; /* for the failure message */
    const char *what;
};

struct kl_queue {
    pthread_mutex_t mu;
    pthread_cond_t commit_cv; /* committer: appenders queued, or shutdown */
    pthread_cond_t done_cv;   /* appenders: a batch finished */
    pthread_cond_t take_cv;   /* takers: records ready, or shutdown (CLOCK_MONOTONIC) */
    pthread_mutex_t rlog_mu;
    pthread_t committer;
    bool committer_started;

    struct kl_queue_limits lim;
    int dir_fd;
    int lock_fd;
    int rlog_fd;           /* retire.log, O_APPEND; under rlog_mu */
    uint64_t rlog_entries; /* under rlog_mu */

    /* under mu */
    bool shut, joining, broken;
    struct seg **segs; /* by first_id; segs[nsegs - 1] == cur */
    size_t nsegs, segs_cap;
    struct seg *cur;
    uint64_t next_id;
    struct waiter *pend_head, *pend_tail;
    uint64_t *ready; /* ring of ids in id order */
    size_t ready_head, ready_len, ready_cap;
    uint64_t held_records, held_bytes;
    struct kl_queue_stats st;
};

/* ---------------------------------------------------------------- encoding */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t crc_z(uint32_t crc, const void *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}

/* The record crc covers the body first and the header fields last, so that appenders can
 * checksum their payload before they hold the lock that assigns the id. */
static uint32_t crc_finish(uint32_t body_crc, const unsigned char *hdr)
{
    return crc_z(body_crc, hdr + 8, HDR - 8);
}

static uint64_t ent_bytes(const struct ent *e)
{
    return HDR + (uint64_t)e->meta_len + e->payload_len;
}

static void seg_name(char out[SEG_NAME_LEN + 1], uint64_t first_id)
{
    snprintf(out, SEG_NAME_LEN + 1, "seg-%020" PRIu64 ".log", first_id);
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO; /* shorter than its header says */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---------------------------------------------------------------- segments and lookups */

static void seg_push_ent(struct seg *s, struct ent e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ents = kl_xrealloc(s->ents, s->cap * sizeof *s->ents);
    }
    s->ents[s->n++] = e;
}

static void seg_free(struct seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->ents);
    free(s);
}

static void segs_push(struct kl_queue *q, struct seg *s)
{
    if (q->nsegs == q->segs_cap) {
        q->segs_cap = q->segs_cap ? q->segs_cap * 2 : 16;
        q->segs = kl_xrealloc(q->segs, q->segs_cap * sizeof *q->segs);
    }
    q->segs[q->nsegs++] = s;
}

static void ready_push(struct kl_queue *q, uint64_t id)
{
    if (q->ready_len == q->ready_cap) {
        size_t ncap = q->ready_cap ? q->ready_cap * 2 : 1024;
        uint64_t *n = kl_xmalloc(ncap * sizeof *n);
        for (size_t i = 0; i < q->ready_len; i++)
            n[i] = q->ready[(q->ready_head + i) % q->ready_cap];
        free(q->ready);
        q->ready = n;
        q->ready_cap = ncap;
        q->ready_head = 0;
    }
    q->ready[(q->ready_head + q->ready_len) % q->ready_cap] = id;
    q->ready_len++;
}

static uint64_t ready_pop(struct kl_queue *q)
{
    uint64_t id = q->ready[q->ready_head];
    q->ready_head = (q->ready_head + 1) % q->ready_cap;
    q->ready_len--;
    return id;
}

/* Under mu. The entry for id and its segment, or NULL (deleted or never durable). */
static struct ent *find_ent(struct kl_queue *q, uint64_t id, struct seg **seg_out)
{
    size_t lo = 0, hi = q->nsegs;
    while (lo < hi) { /* first segment with first_id > id */
        size_t mid = lo + (hi - lo) / 2;
        if (q->segs[mid]->first_id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    struct seg *s = q->segs[lo - 1];
    size_t a = 0, b = s->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (s->ents[mid].id < id)
            a = mid + 1;
        else
            b = mid;
    }
    if (a == s->n || s->ents[a].id != id)
        return NULL;
    *seg_out = s;
    return &s->ents[a];
}

static bool seg_deletable(const struct kl_queue *q, const struct seg *s)
{
    return s != q->cur && s->pins == 0 && s->n_retired == s->n;
}

static int fsync_dir(struct kl_queue *q)
{
    return fsync(q->dir_fd);
}

/* ---------------------------------------------------------------- retire log */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void retire_entry(unsigned char e[RET_ENTRY], uint64_t id)
{
    put_u64(e, id);
    memcpy(e + 8, RET_MAGIC, 4);
    put_u32(e + 12, crc_z(0, e, 12));
}

/* Read retire.log into a sorted, deduplicated array (malloc'd). A torn or bad entry ends the
 * log: entries are only ever appended, so everything after it is the torn tail. */
static int load_retired(struct kl_queue *q, uint64_t **out, size_t *n_out, struct kl_err *err)
{
    *out = NULL;
    *n_out = 0;
    int fd = openat(q->dir_fd, "retire.log", O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot open 'retire.log': %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot stat 'retire.log': %s", strerror(errno));
    }
    size_t n = (size_t)st.st_size / RET_ENTRY;
    unsigned char *buf = kl_xmalloc(n * RET_ENTRY + 1);
    if (n > 0 && pread_full(fd, buf, n * RET_ENTRY, 0) < 0) {
        int e = errno;
        close(fd);
        free(buf);
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot read 'retire.log': %s", strerror(e));
    }
    close(fd);
    uint64_t *ids = kl_xmalloc((n + 1) * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *e = buf + i * RET_ENTRY;
        if (memcmp(e + 8, RET_MAGIC, 4) != 0 || get_u32(e + 12) != crc_z(0, e, 12))
            break;
        ids[k++] = get_u64(e);
    }
    free(buf);
    qsort(ids, k, sizeof *ids, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (m == 0 || ids[m - 1] != ids[i])
            ids[m++] = ids[i];
    *out = ids;
    *n_out = m;
    return 0;
}

/* Under rlog_mu. Rewrite retire.log with only the retired ids of segments still on disk
 * (the rest are useless once their segment is gone): write a temp file, fdatasync, rename,
 * fsync the directory. On failure the old log stays in use. */
static int rlog_compact(struct kl_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = 0;
    for (size_t i = 0; i < q->nsegs; i++)
        n += q->segs[i]->n_retired;
    unsigned char *buf = kl_xmalloc(n * RET_ENTRY + 1);
    size_t k = 0;
    for (size_t i = 0; i < q->nsegs; i++) {
        const struct seg *s = q->segs[i];
        for (size_t j = 0; j < s->n && k < n; j++)
            if (s->ents[j].state == ENT_RETIRED)
                retire_entry(buf + RET_ENTRY * k++, s->ents[j].id);
    }
    pthread_mutex_unlock(&q->mu);

    int fd =
        openat(q->dir_fd, "retire.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (write_full(fd, buf, k * RET_ENTRY) < 0 || fdatasync(fd) < 0 ||
        renameat(q->dir_fd, "retire.tmp", q->dir_fd, "retire.log") < 0)
        goto fail_close;
    fsync_dir(q); /* best effort: the log is lazy anyway (see queue.h) */
    if (q->rlog_fd >= 0)
        close(q->rlog_fd);
    q->rlog_fd = fd;
    q->rlog_entries = k;
    free(buf);
    return 0;
fail_close:
    close(fd);
    unlinkat(q->dir_fd, "retire.tmp", 0);
fail:
    free(buf);
    return -1;
}

/* Under rlog_mu. Delete every fully retired segment that is not current and not being read,
 * then compact retire.log if it is mostly dead entries. */
static void collect_locked(struct kl_queue *q)
{
    struct seg *dead[64];
    size_t ndead = 0;
    uint64_t live_retired = 0;
    pthread_mutex_lock(&q->mu);
    size_t k = 0;
    for (size_t i = 0; i < q->nsegs; i++) {
        struct seg *s = q->segs[i];
        if (ndead < 64 && seg_deletable(q, s)) {
            dead[ndead++] = s;
            continue;
        }
        live_retired += s->n_retired;
        q->segs[k++] = s;
    }
    q->nsegs = k;
    q->st.segments_deleted += ndead;
    pthread_mutex_unlock(&q->mu);

    for (size_t i = 0; i < ndead; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, dead[i]->first_id);
        unlinkat(q->dir_fd, name, 0);
        seg_free(dead[i]);
    }
    if (q->rlog_entries > 2 * live_retired + RLOG_SLACK && rlog_compact(q) < 0) {
        pthread_mutex_lock(&q->mu);
        q->st.retire_log_errors++;
        pthread_mutex_unlock(&q->mu);
    }
}

static void collect(struct kl_queue *q)
{
    pthread_mutex_lock(&q->rlog_mu);
    collect_locked(q);
    pthread_mutex_unlock(&q->rlog_mu);
}

/* ---------------------------------------------------------------- committer */

static struct seg *seg_create(struct kl_queue *q, uint64_t first_id, int *err_no)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(name, first_id);
    int fd = openat(q->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || fsync_dir(q) < 0) {
        *err_no = errno;
        if (fd >= 0) {
            close(fd);
            unlinkat(q->dir_fd, name, 0);
        }
        return NULL;
    }
    struct seg *s = kl_xcalloc(1, sizeof *s);
    s->first_id = first_id;
    s->fd = fd;
    return s;
}

/* pwritev the whole batch at off, in chunks of IOV_CHUNK vectors, resuming short writes. */
static int write_batch(int fd, struct iovec *iov, size_t niov, uint64_t off)
{
    size_t i = 0;
    while (i < niov) {
        int cnt = (int)(niov - i < IOV_CHUNK ? niov - i : IOV_CHUNK);
        ssize_t r = pwritev(fd, iov + i, cnt, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)r;
        size_t left = (size_t)r;
        while (i < niov && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            i++;
        }
        if (left > 0) {
            iov[i].iov_base = (char *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

/* Write one batch (no lock held) and make it durable. Returns 0, or -1 with *what and
 * *err_no set. On a failed write the segment is cut back to its last durable size; on a
 * failed fdatasync (or a failed cut) the queue is marked broken. */
static int commit_batch(struct kl_queue *q, struct waiter *batch, uint64_t *base_off,
                        const char **what, int *err_no)
{
    size_t n = 0;
    uint64_t bytes = 0;
    for (struct waiter *w = batch; w; w = w->next) {
        n++;
        bytes += w->bytes;
    }
    pthread_mutex_lock(&q->mu);
    bool broken = q->broken;
    pthread_mutex_unlock(&q->mu);
    if (broken) {
        *what = "queue is broken after a failed fdatasync";
        *err_no = EIO;
        return -1;
    }

    struct seg *cur = q->cur;
    if (cur->size > 0 && cur->size + bytes > q->lim.segment_bytes) {
        struct seg *s = seg_create(q, batch->id, err_no);
        if (!s) {
            *what = "cannot create segment";
            return -1;
        }
        pthread_mutex_lock(&q->mu);
        segs_push(q, s);
        q->cur = s;
        bool gc = seg_deletable(q, cur);
        pthread_mutex_unlock(&q->mu);
        if (gc)
            collect(q);
        cur = s;
    }

    struct iovec *iov = kl_xmalloc(3 * n * sizeof *iov);
    size_t niov = 0;
    for (struct waiter *w = batch; w; w = w->next) {
        iov[niov++] = (struct iovec){w->hdr, KL_QUEUE_HEADER_BYTES};
        if (w->blob_len)
            iov[niov++] = (struct iovec){(void *)w->blob, w->blob_len};
        if (w->len)
            iov[niov++] = (struct iovec){(void *)w->payload, w->len};
    }
    int rc = write_batch(cur->fd, iov, niov, cur->size);
    free(iov);
    if (rc < 0) {
        *err_no = errno;
        *what = "cannot write segment";
        if (ftruncate(cur->fd, (off_t)cur->size) < 0) {
            pthread_mutex_lock(&q->mu);
            q->broken = true;
            pthread_mutex_unlock(&q->mu);
        }
        return -1;
    }
    if (fdatasync(cur->fd) < 0) {
        *err_no = errno;
        *what = "cannot fdatasync segment";
        pthread_mutex_lock(&q->mu);
        q->broken = true;
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    *base_off = cur->size;
    cur->size += bytes;
    return 0;
}

static unsigned batch_bucket(size_t n)
{
    unsigned b = 0;
    while (b < 7 && n > (1u << b))
        b++;
    return b;
}

/* Under mu. Publish a committed batch to takers (or fail it) and wake its appenders. */
static void finish_batch(struct kl_queue *q, struct waiter *batch, int rc, uint64_t off,
                         const char *what, int err_no)
{
    size_t n = 0;
    struct waiter *next;
    for (struct waiter *w = batch; w; w = next) {
        next = w->next; /* w lives on its appender's stack: gone once it sees w->state */
        n++;
        if (rc == 0) {
            seg_push_ent(q->cur,
                         (struct ent){w->id, off, w->meta_len, (uint32_t)w->len, ENT_READY});
            off += w->bytes;
            ready_push(q, w->id);
            q->st.appends++;
            q->st.append_bytes += w->bytes;
            w->state = 1;
        } else {
            q->held_records--;
            q->held_bytes -= w->bytes;
            q->st.failed++;
            w->what = what;
            w->err_no = err_no;
            w->state = -1;
        }
    }
    if (rc == 0) {
        q->st.fsyncs++;
        q->st.batch_le[batch_bucket(n)]++;
        if (n > q->st.batch_max)
            q->st.batch_max = n;
        pthread_cond_broadcast(&q->take_cv);
    }
    pthread_cond_broadcast(&q->done_cv);
}

static void *committer_main(void *arg)
{
    struct kl_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->pend_head && !q->shut)
            pthread_cond_wait(&q->commit_cv, &q->mu);
        if (!q->pend_head)
            break; /* shut down and nothing left to commit */
        struct waiter *batch = q->pend_head;
        q->pend_head = q->pend_tail = NULL;
        pthread_mutex_unlock(&q->mu);

        uint64_t off = 0;
        const char *what = NULL;
        int err_no = 0;
        int rc = commit_batch(q, batch, &off, &what, &err_no);

        pthread_mutex_lock(&q->mu);
        finish_batch(q, batch, rc, off, what, err_no);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ---------------------------------------------------------------- public: append */

uint64_t kl_queue_record_bytes(const struct kl_queue_meta *meta, size_t payload_len)
{
    return KL_QUEUE_HEADER_BYTES + (meta ? (uint64_t)meta->blob_len : 0) + payload_len;
}

int kl_queue_append(struct kl_queue *q, const struct kl_queue_meta *meta, const void *payload,
                    size_t len, uint64_t *id_out, struct kl_err *err)
{
    static const struct kl_queue_meta no_meta;
    if (!meta)
        meta = &no_meta;
    if ((len > 0 && !payload) || (meta->blob_len > 0 && !meta->blob))
        return kl_err_set(err, KL_R_INTERNAL, "queue append: NULL payload or blob");
    if (len > KL_QUEUE_PAYLOAD_MAX || meta->blob_len > KL_QUEUE_BLOB_MAX)
        return kl_err_set(err, KL_R_QUEUE_TOO_LARGE,
                          "record of %zu payload and %zu metadata bytes is over the limits "
                          "(%u, %u)",
                          len, meta->blob_len, KL_QUEUE_PAYLOAD_MAX, KL_QUEUE_BLOB_MAX);
    struct waiter w = {0};
    w.blob = meta->blob;
    w.blob_len = meta->blob_len;
    w.payload = payload;
    w.len = len;
    w.meta_len = (uint32_t)(META_FIXED + meta->blob_len);
    w.bytes = kl_queue_record_bytes(meta, len);
    if (w.bytes > q->lim.max_bytes)
        return kl_err_set(err, KL_R_QUEUE_TOO_LARGE,
                          "record of %" PRIu64 " bytes is over the queue's byte limit %" PRIu64,
                          w.bytes, q->lim.max_bytes);

    unsigned char *h = w.hdr;
    memcpy(h, REC_MAGIC, 4);
    put_u32(h + 16, w.meta_len);
    put_u32(h + 20, (uint32_t)len);
    h[24] = KIND_ITEM;
    put_u64(h + 32, meta->org_id);
    put_u64(h + 40, meta->project_id);
    put_u64(h + 48, meta->key_id);
    put_u64(h + 56, (uint64_t)meta->received_ns);
    put_u32(h + 64, meta->item_hints);
    put_u32(h + 68, meta->flags);
    put_u32(h + 72, (uint32_t)meta->blob_len);
    uint32_t crc = crc_z(0, h + HDR, META_FIXED);
    if (w.blob_len)
        crc = crc_z(crc, w.blob, w.blob_len);
    if (len)
        crc = crc_z(crc, payload, len);

    pthread_mutex_lock(&q->mu);
    if (q->shut) {
        pthread_mutex_unlock(&q->mu);
        return kl_err_set(err, KL_R_QUEUE_CLOSED, "queue is shutting down");
    }
    if (q->broken) {
        pthread_mutex_unlock(&q->mu);
        return kl_err_set(err, KL_R_QUEUE_IO,
                          "queue refuses appends after a failed fdatasync; restart kiln");
    }
    if (q->held_records + 1 > q->lim.max_records || q->held_bytes + w.bytes > q->lim.max_bytes) {
        uint64_t nr = q->held_records, nb = q->held_bytes;
        q->st.rejected_full++;
        pthread_mutex_unlock(&q->mu);
        return kl_err_set(err, KL_R_QUEUE_FULL,
                          "queue holds %" PRIu64 " records, %" PRIu64 " bytes (limits %" PRIu64
                          ", %" PRIu64 ")",
                          nr, nb, q->lim.max_records, q->lim.max_bytes);
    }
    w.id = q->next_id++;
    q->held_records++;
    q->held_bytes += w.bytes;
    put_u64(h + 8, w.id);
    put_u32(h + 4, crc_finish(crc, h));
    if (q->pend_tail)
        q->pend_tail->next = &w;
    else
        q->pend_head = &w;
    q->pend_tail = &w;
    pthread_cond_signal(&q->commit_cv);
    while (w.state == 0)
        pthread_cond_wait(&q->done_cv, &q->mu);
    pthread_mutex_unlock(&q->mu);
    if (w.state < 0)
        return kl_err_set(err, KL_R_QUEUE_IO, "%s: %s", w.what, strerror(w.err_no));
    if (id_out)
        *id_out = w.id;
    return 0;
}

/* ---------------------------------------------------------------- public: take, retire */

/* Read and check one record; on failure the record comes back with error set and no
 * payload, so the worker can still give the item its one outcome and retire it. */
static struct kl_queue_record *read_record(int fd, const struct ent *e)
{
    size_t body = (size_t)e->meta_len + e->payload_len;
    struct kl_queue_record *r = kl_xmalloc(sizeof *r + HDR + body + KL_PADDING);
    unsigned char *buf = (unsigned char *)(r + 1);
    *r = (struct kl_queue_record){.id = e->id};
    if (pread_full(fd, buf, HDR + body, e->off) < 0) {
        r->error = KL_R_QUEUE_IO;
        return r;
    }
    const unsigned char *m = buf + HDR;
    if (memcmp(buf, REC_MAGIC, 4) != 0 || get_u64(buf + 8) != e->id ||
        get_u32(buf + 16) != e->meta_len || get_u32(buf + 20) != e->payload_len ||
        get_u32(m + 40) != e->meta_len - META_FIXED ||
        get_u32(buf + 4) != crc_finish(crc_z(0, m, body), buf)) {
        r->error = KL_R_QUEUE_CORRUPT;
        return r;
    }
    r->meta.org_id = get_u64(m);
    r->meta.project_id = get_u64(m + 8);
    r->meta.key_id = get_u64(m + 16);
    r->meta.received_ns = (int64_t)get_u64(m + 24);
    r->meta.item_hints = get_u32(m + 32);
    r->meta.flags = get_u32(m + 36);
    r->meta.blob_len = e->meta_len - META_FIXED;
    r->meta.blob = r->meta.blob_len ? m + META_FIXED : NULL;
    r->payload = (char *)m + e->meta_len;
    r->payload_len = e->payload_len;
    memset(r->payload + r->payload_len, 0, KL_PADDING);
    return r;
}

int kl_queue_take(struct kl_queue *q, struct kl_queue_record **rec, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    *rec = NULL;
    struct seg *s = NULL;
    struct ent e;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shut) {
            pthread_mutex_unlock(&q->mu);
            return -1;
        }
        if (q->ready_len > 0) {
            struct ent *p = find_ent(q, ready_pop(q), &s);
            if (!p || p->state != ENT_READY)
                continue; /* retired before anyone took it */
            p->state = ENT_TAKEN;
            e = *p;
            s->pins++;
            q->st.taken++;
            break;
        }
        if (timeout_ms == 0)
            goto timeout;
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->take_cv, &q->mu);
        } else if (pthread_cond_timedwait(&q->take_cv, &q->mu, &deadline) == ETIMEDOUT &&
                   q->ready_len == 0 && !q->shut) {
            goto timeout;
        }
    }
    pthread_mutex_unlock(&q->mu);

    *rec = read_record(s->fd, &e);

    pthread_mutex_lock(&q->mu);
    s->pins--;
    bool gc = seg_deletable(q, s);
    pthread_mutex_unlock(&q->mu);
    if (gc)
        collect(q);
    return 0;
timeout:
    pthread_mutex_unlock(&q->mu);
    return 1;
}

void kl_queue_record_free(struct kl_queue_record *rec)
{
    free(rec);
}

int kl_queue_retire(struct kl_queue *q, uint64_t id)
{
    pthread_mutex_lock(&q->rlog_mu);
    pthread_mutex_lock(&q->mu);
    struct seg *s = NULL;
    struct ent *e = find_ent(q, id, &s);
    if (!e || e->state == ENT_RETIRED) {
        pthread_mutex_unlock(&q->mu);
        pthread_mutex_unlock(&q->rlog_mu);
        return -1;
    }
    e->state = ENT_RETIRED;
    s->n_retired++;
    q->held_records--;
    q->held_bytes -= ent_bytes(e);
    q->st.retired++;
    bool gc = seg_deletable(q, s);
    pthread_mutex_unlock(&q->mu);

    unsigned char entry[RET_ENTRY];
    retire_entry(entry, id);
    if (write_full(q->rlog_fd, entry, sizeof entry) < 0) {
        pthread_mutex_lock(&q->mu);
        q->st.retire_log_errors++;
        pthread_mutex_unlock(&q->mu);
    } else {
        q->rlog_entries++;
    }
    if (gc || q->rlog_entries > RLOG_SLACK)
        collect_locked(q);
    pthread_mutex_unlock(&q->rlog_mu);
    return 0;
}

void kl_queue_stats(struct kl_queue *q, struct kl_queue_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    out->depth_records = q->held_records;
    out->depth_bytes = q->held_bytes;
    out->ready_records = q->ready_len;
    out->segments = q->nsegs;
    out->broken = q->broken;
    pthread_mutex_unlock(&q->mu);
}

/* ---------------------------------------------------------------- open, recovery, close */

static bool is_retired(const uint64_t *ids, size_t n, uint64_t id)
{
    return n > 0 && bsearch(&id, ids, n, sizeof *ids, cmp_u64) != NULL;
}

/* Why the record header at h (at off, file size fsize) is unusable, or NULL. */
static const char *check_header(const unsigned char *h, uint64_t off, uint64_t fsize,
                                uint64_t prev_id, uint64_t first_id)
{
    if (memcmp(h, REC_MAGIC, 4) != 0)
        return "bad magic";
    uint64_t id = get_u64(h + 8);
    uint32_t meta_len = get_u32(h + 16), payload_len = get_u32(h + 20);
    if (h[24] != KIND_ITEM)
        return "unknown record kind";
    for (int i = 25; i < HDR; i++)
        if (h[i] != 0)
            return "bad reserved bytes";
    if (meta_len < META_FIXED || meta_len > META_FIXED + KL_QUEUE_BLOB_MAX ||
        get_u32(h + 72) != meta_len - META_FIXED || payload_len > KL_QUEUE_PAYLOAD_MAX)
        return "bad lengths";
    if (id <= prev_id || id < first_id)
        return "record id out of order";
    if (off + HDR + meta_len + payload_len > fsize)
        return "record runs past the end of the file";
    return NULL;
}

/* Walk one segment and index its records. The last segment is checked in full (crc) and cut
 * at its first bad record: that is where a crash tore it. Older segments were fdatasync'd
 * before the next one existed, so only their header chain is walked, and a break in it is
 * corruption we refuse to guess about. */
static int scan_segment(struct kl_queue *q, struct seg *s, bool last, const uint64_t *retired,
                        size_t nretired, uint64_t *max_id, struct kl_err *err)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(name, s->first_id);
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot stat '%s': %s", name, strerror(errno));
    uint64_t fsize = (uint64_t)st.st_size, off = 0;
    unsigned char *scratch = last ? kl_xmalloc(SCAN_CHUNK) : NULL;
    const char *bad = NULL;
    while (off < fsize) {
        unsigned char h[KL_QUEUE_HEADER_BYTES];
        if (fsize - off < KL_QUEUE_HEADER_BYTES) {
            bad = "truncated record header";
            break;
        }
        if (pread_full(s->fd, h, sizeof h, off) < 0) {
            free(scratch);
            return kl_err_set(err, KL_R_QUEUE_IO, "cannot read '%s': %s", name, strerror(errno));
        }
        if ((bad = check_header(h, off, fsize, *max_id, s->first_id)))
            break;
        struct ent e = {get_u64(h + 8), off, get_u32(h + 16), get_u32(h + 20), ENT_READY};
        if (last) {
            uint64_t body = (uint64_t)e.meta_len + e.payload_len, done = 0;
            uint32_t crc = 0;
            while (done < body) {
                size_t n = body - done < SCAN_CHUNK ? (size_t)(body - done) : SCAN_CHUNK;
                if (pread_full(s->fd, scratch, n, off + HDR + done) < 0) {
                    free(scratch);
                    return kl_err_set(err, KL_R_QUEUE_IO, "cannot read '%s': %s", name,
                                      strerror(errno));
                }
                crc = crc_z(crc, scratch, n);
                done += n;
            }
            if (get_u32(h + 4) != crc_finish(crc, h)) {
                bad = "bad crc";
                break;
            }
        }
        if (is_retired(retired, nretired, e.id)) {
            e.state = ENT_RETIRED;
            s->n_retired++;
        } else {
            ready_push(q, e.id);
            q->held_records++;
            q->held_bytes += ent_bytes(&e);
            q->st.recovered++;
        }
        seg_push_ent(s, e);
        *max_id = e.id;
        off += ent_bytes(&e);
    }
    free(scratch);
    s->size = off;
    if (bad && !last)
        return kl_err_set(err, KL_R_QUEUE_CORRUPT, "segment '%s' offset %" PRIu64 ": %s", name, off,
                          bad);
    s->cut = off < fsize;
    if (off < fsize && (ftruncate(s->fd, (off_t)off) < 0 || fdatasync(s->fd) < 0))
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot cut torn tail of '%s': %s", name,
                          strerror(errno));
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = *(struct seg *const *)a, *y = *(struct seg *const *)b;
    return x->first_id < y->first_id ? -1 : x->first_id > y->first_id;
}

static int list_segments(struct kl_queue *q, struct kl_err *err)
{
    int dfd = dup(q->dir_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return kl_err_set(err, KL_R_QUEUE_IO, "cannot list queue directory: %s", strerror(errno));
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct kl_str nm = kl_str_c(de->d_name);
        uint64_t first_id;
        if (nm.len != SEG_NAME_LEN || !kl_str_starts(nm, "seg-") || !kl_str_ends(nm, ".log") ||
            !kl_parse_u64(kl_str_make(nm.ptr + 4, 20), &first_id))
            continue;
        int fd = openat(q->dir_fd, de->d_name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            closedir(d);
            return kl_err_set(err, KL_R_QUEUE_IO, "cannot open '%s': %s", de->d_name, strerror(e));
        }
        struct seg *s = kl_xcalloc(1, sizeof *s);
        s->first_id = first_id;
        s->fd = fd;
        segs_push(q, s);
    }
    closedir(d);
    if (q->nsegs > 1)
        qsort(q->segs, q->nsegs, sizeof *q->segs, cmp_seg);
    return 0;
}

static int mkdir_p(const char *dir)
{
    size_t n = strlen(dir);
    char *p = kl_xmalloc(n + 1);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        p[i] = c;
    }
    free(p);
    return 0;
}

static void queue_free(struct kl_queue *q)
{
    for (size_t i = 0; i < q->nsegs; i++)
        seg_free(q->segs[i]);
    free(q->segs);
    free(q->ready);
    if (q->rlog_fd >= 0)
        close(q->rlog_fd);
    if (q->lock_fd >= 0)
        close(q->lock_fd); /* releases the flock */
    if (q->dir_fd >= 0)
        close(q->dir_fd);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->rlog_mu);
    pthread_cond_destroy(&q->commit_cv);
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->take_cv);
    free(q);
}

struct kl_queue *kl_queue_open(const char *dir, const struct kl_queue_limits *lim,
                               struct kl_err *err)
{
    struct kl_queue *q = kl_xcalloc(1, sizeof *q);
    q->dir_fd = q->lock_fd = q->rlog_fd = -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->rlog_mu, NULL);
    pthread_cond_init(&q->commit_cv, NULL);
    pthread_cond_init(&q->done_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->take_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (lim)
        q->lim = *lim;
    if (!q->lim.max_bytes)
        q->lim.max_bytes = KL_QUEUE_DEFAULT_MAX_BYTES;
    if (!q->lim.max_records)
        q->lim.max_records = KL_QUEUE_DEFAULT_MAX_RECORDS;
    if (!q->lim.segment_bytes)
        q->lim.segment_bytes = KL_QUEUE_DEFAULT_SEGMENT_BYTES;

    uint64_t *retired = NULL;
    size_t nretired = 0;
    if (mkdir_p(dir) < 0 || (q->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        kl_err_set(err, KL_R_QUEUE_IO, "cannot open queue directory '%s': %s", dir,
                   strerror(errno));
        goto fail;
    }
    q->lock_fd = openat(q->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (q->lock_fd < 0) {
        kl_err_set(err, KL_R_QUEUE_IO, "cannot open '%s/lock': %s", dir, strerror(errno));
        goto fail;
    }
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        kl_err_set(err, errno == EWOULDBLOCK ? KL_R_QUEUE_LOCKED : KL_R_QUEUE_IO,
                   "cannot lock queue '%s': %s", dir,
                   errno == EWOULDBLOCK ? "another process has it open" : strerror(errno));
        goto fail;
    }
    if (load_retired(q, &retired, &nretired, err) < 0 || list_segments(q, err) < 0)
        goto fail;

    uint64_t max_id = 0;
    for (size_t i = 0; i < q->nsegs; i++)
        if (scan_segment(q, q->segs[i], i + 1 == q->nsegs, retired, nretired, &max_id, err) < 0)
            goto fail;
    /* A cut tail may have held records whose ids a worker saw if the disk, not a crash, broke
     * them: jump past any id they could have had, so the store never sees an id twice. */
    q->next_id = max_id + 1 + (q->nsegs > 0 && q->segs[q->nsegs - 1]->cut ? ID_JUMP : 0);
    if (nretired > 0 && retired[nretired - 1] >= q->next_id)
        q->next_id = retired[nretired - 1] + 1;
    if (q->nsegs > 0 && q->segs[q->nsegs - 1]->first_id > q->next_id)
        q->next_id = q->segs[q->nsegs - 1]->first_id;
    if (q->lim.min_id > q->next_id)
        q->next_id = q->lim.min_id;
    free(retired);
    retired = NULL;

    if (q->nsegs == 0) {
        int e = 0;
        struct seg *s = seg_create(q, q->next_id, &e);
        if (!s) {
            kl_err_set(err, KL_R_QUEUE_IO, "cannot create segment in '%s': %s", dir, strerror(e));
            goto fail;
        }
        segs_push(q, s);
    }
    q->cur = q->segs[q->nsegs - 1];
    q->rlog_entries = UINT64_MAX; /* force the compaction below, which opens retire.log */
    collect_locked(q);
    if (q->rlog_fd < 0) {
        kl_err_set(err, KL_R_QUEUE_IO, "cannot rewrite '%s/retire.log': %s", dir, strerror(errno));
        goto fail;
    }
    q->st.retire_log_errors = 0;
    if (pthread_create(&q->committer, NULL, committer_main, q) != 0) {
        kl_err_set(err, KL_R_QUEUE_IO, "cannot start the queue committer thread");
        goto fail;
    }
    q->committer_started = true;
    return q;
fail:
    free(retired);
    queue_free(q);
    return NULL;
}

void kl_queue_shutdown(struct kl_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut = true;
    bool join = q->committer_started && !q->joining;
    q->joining = true;
    pthread_cond_broadcast(&q->commit_cv);
    pthread_cond_broadcast(&q->take_cv);
    pthread_mutex_unlock(&q->mu);
    if (join)
        pthread_join(q->committer, NULL);
}

void kl_queue_close(struct kl_queue *q)
{
    if (!q)
        return;
    kl_queue_shutdown(q);
    if (q->rlog_fd >= 0)
        fdatasync(q->rlog_fd); /* a clean stop replays nothing, even after power loss */
    queue_free(q);
}
