/* test_queue.c - the durable queue: order, recovery, torn tails, limits, segments, threads,
 * a fork + kill -9 crash test, and a printed (not asserted) group-commit throughput run.
 *
 * Directories come from mkdtemp under $TMPDIR (default /tmp) and are removed afterwards.
 * KL_QUEUE_SEED fixes the crash test's random kill instants (it prints the seed it used).
 */
#include "kl_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "queue/queue.h"

/* ---------------------------------------------------------------- helpers */

static char *make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/kl-queue-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *p = mkdtemp(path);
    if (!p) {
        perror("mkdtemp");
        exit(1);
    }
    return strdup(p);
}

static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static int count_segments(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, "seg-", 4) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Path of the n-th segment in name order (0 = oldest); "" if none. */
static void segment_path(const char *dir, int nth, char *out, size_t cap)
{
    char names[64][256];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, "seg-", 4) == 0 && n < 64)
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    if (nth < 0)
        nth += n;
    if (nth < 0 || nth >= n)
        out[0] = '\0';
    else
        snprintf(out, cap, "%s/%s", dir, names[nth]);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c = 0;
    if (fd < 0 || pread(fd, &c, 1, off) != 1) {
        perror("flip_byte");
        exit(1);
    }
    c ^= 0x5a;
    if (pwrite(fd, &c, 1, off) != 1)
        exit(1);
    close(fd);
}

/* Payload bytes are a function of (tag, index), so any record checks itself. */
static void fill(char *p, size_t n, uint64_t tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((tag * 131 + i * 7 + (i >> 8)) & 0xff);
}

static bool check_fill(const char *p, size_t n, uint64_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char)((tag * 131 + i * 7 + (i >> 8)) & 0xff))
            return false;
    return true;
}

static bool padded(const struct kl_queue_record *r)
{
    for (size_t i = 0; i < KL_PADDING; i++)
        if (r->payload[r->payload_len + i] != 0)
            return false;
    return true;
}

static struct kl_queue *open_q(const char *dir, const struct kl_queue_limits *lim)
{
    struct kl_err err = KL_ERR_INIT;
    struct kl_queue *q = kl_queue_open(dir, lim, &err);
    if (!q)
        fprintf(stderr, "  open failed: %s (%s)\n", err.msg, kl_reason_str(err.reason));
    return q;
}

/* Append a payload of n bytes filled from tag, with meta.org_id = tag. */
static int append_tag(struct kl_queue *q, uint64_t tag, size_t n, uint64_t *id, struct kl_err *err)
{
    char *p = malloc(n ? n : 1);
    fill(p, n, tag);
    struct kl_queue_meta m = {.org_id = tag, .project_id = tag + 1};
    int rc = kl_queue_append(q, &m, p, n, id, err);
    free(p);
    return rc;
}

/* Take everything that is ready now; ids into out (cap entries); returns the count. */
static size_t drain(struct kl_queue *q, uint64_t *out, size_t cap, bool retire)
{
    size_t n = 0;
    struct kl_queue_record *r;
    while (kl_queue_take(q, &r, 0) == 0) {
        if (r->error != KL_R_NONE || !check_fill(r->payload, r->payload_len, r->meta.org_id) ||
            !padded(r))
            KL_FAIL_("record %llu has a bad payload", (unsigned long long)r->id);
        if (n < cap)
            out[n] = r->id;
        n++;
        if (retire)
            kl_queue_retire(q, r->id);
        kl_queue_record_free(r);
    }
    return n;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- basic behaviour */

static void test_append_take_retire(void)
{
    char *dir = make_dir();
    struct kl_queue *q = open_q(dir, NULL);
    ASSERT_TRUE(q);
    if (!q)
        return;
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char payload[300], blob[16];
        fill(payload, sizeof payload, (uint64_t)i);
        int bl = snprintf(blob, sizeof blob, "blob-%d", i);
        struct kl_queue_meta m = {.org_id = (uint64_t)i,
                                  .project_id = 100 + (uint64_t)i,
                                  .key_id = 7,
                                  .received_ns = 1700000000000000000LL + i,
                                  .item_hints = KL_QUEUE_HINT_PROFILE,
                                  .flags = 0x80000000u | (uint32_t)i,
                                  .blob = blob,
                                  .blob_len = (size_t)bl};
        struct kl_err err = KL_ERR_INIT;
        ASSERT_EQ_INT(kl_queue_append(q, &m, payload, sizeof payload - (size_t)i, &ids[i], &err),
                      0);
        if (i > 0)
            ASSERT_TRUE(ids[i] > ids[i - 1]);
    }
    for (int i = 0; i < 5; i++) {
        struct kl_queue_record *r = NULL;
        ASSERT_EQ_INT(kl_queue_take(q, &r, 1000), 0);
        if (!r)
            continue;
        char blob[16];
        int bl = snprintf(blob, sizeof blob, "blob-%d", i);
        ASSERT_EQ_U64(r->id, ids[i]);
        ASSERT_EQ_INT(r->error, KL_R_NONE);
        ASSERT_EQ_U64(r->meta.org_id, (uint64_t)i);
        ASSERT_EQ_U64(r->meta.project_id, 100 + (uint64_t)i);
        ASSERT_EQ_U64(r->meta.key_id, 7);
        ASSERT_EQ_INT(r->meta.received_ns, 1700000000000000000LL + i);
        ASSERT_EQ_U64(r->meta.item_hints, KL_QUEUE_HINT_PROFILE);
        ASSERT_EQ_U64(r->meta.flags, 0x80000000u | (uint32_t)i);
        ASSERT_EQ_U64(r->meta.blob_len, (size_t)bl);
        ASSERT_TRUE(r->meta.blob && memcmp(r->meta.blob, blob, (size_t)bl) == 0);
        ASSERT_EQ_U64(r->payload_len, 300 - (size_t)i);
        ASSERT_TRUE(check_fill(r->payload, r->payload_len, (uint64_t)i));
        ASSERT_TRUE(padded(r));
        kl_queue_record_free(r);
    }
    struct kl_queue_record *r = NULL;
    ASSERT_EQ_INT(kl_queue_take(q, &r, 20), 1);
    ASSERT_EQ_INT(kl_queue_take(q, &r, 0), 1);

    struct kl_queue_stats st;
    kl_queue_stats(q, &st);
    ASSERT_EQ_U64(st.appends, 5);
    ASSERT_EQ_U64(st.taken, 5);
    ASSERT_EQ_U64(st.depth_records, 5);
    ASSERT_TRUE(st.fsyncs >= 1 && st.fsyncs <= 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(kl_queue_retire(q, ids[i]), 0);
    ASSERT_EQ_INT(kl_queue_retire(q, ids[0]), -1);
    ASSERT_EQ_INT(kl_queue_retire(q, ids[4] + 100), -1);
    kl_queue_stats(q, &st);
    ASSERT_EQ_U64(st.depth_records, 0);
    ASSERT_EQ_U64(st.depth_bytes, 0);
    ASSERT_EQ_U64(st.retired, 5);

    /* an empty payload and no metadata are fine */
    uint64_t id = 0;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_queue_append(q, NULL, NULL, 0, &id, &err), 0);
    ASSERT_EQ_INT(kl_queue_take(q, &r, 100), 0);
    ASSERT_TRUE(r && r->id == id && r->payload_len == 0 && r->meta.blob == NULL && padded(r));
    kl_queue_record_free(r);
    kl_queue_close(q);
    remove_dir(dir);
}

static void test_recover(void)
{
    char *dir = make_dir();
    struct kl_queue *q = open_q(dir, NULL);
    if (!q) {
        ASSERT_TRUE(q);
        return;
    }
    uint64_t ids[10];
    struct kl_err err = KL_ERR_INIT;
    for (int i = 0; i < 10; i++)
        ASSERT_EQ_INT(append_tag(q, 1000 + (uint64_t)i, 500 + (size_t)i * 10, &ids[i], &err), 0);
    for (int i = 0; i < 4; i++) { /* take 0..3; retire 0 and 2, leave 1 and 3 taken */
        struct kl_queue_record *r = NULL;
        ASSERT_EQ_INT(kl_queue_take(q, &r, 100), 0);
        kl_queue_record_free(r);
    }
    ASSERT_EQ_INT(kl_queue_retire(q, ids[0]), 0);
    ASSERT_EQ_INT(kl_queue_retire(q, ids[2]), 0);
    ASSERT_EQ_INT(kl_queue_retire(q, ids[5]), 0); /* retired before it was taken */
    kl_queue_close(q);

    q = open_q(dir, NULL);
    if (!q) {
        ASSERT_TRUE(q);
        remove_dir(dir);
        return;
    }
    static const int want[] = {1, 3, 4, 6, 7, 8, 9};
    uint64_t got[16];
    size_t n = drain(q, got, 16, false);
    ASSERT_EQ_U64(n, 7);
    for (size_t i = 0; i < 7 && i < n; i++)
        ASSERT_EQ_U64(got[i], ids[want[i]]);
    struct kl_queue_stats st;
    kl_queue_stats(q, &st);
    ASSERT_EQ_U64(st.recovered, 7);
    ASSERT_EQ_U64(st.depth_records, 7);
    uint64_t id = 0;
    ASSERT_EQ_INT(append_tag(q, 5, 100, &id, &err), 0);
    ASSERT_TRUE(id > ids[9]);
    ASSERT_EQ_INT(kl_queue_retire(q, ids[1]), 0);
    kl_queue_close(q);

    q = open_q(dir, NULL); /* again: the new record is there, ids[1] is not */
    if (q) {
        n = drain(q, got, 16, false);
        ASSERT_EQ_U64(n, 7);
        ASSERT_EQ_U64(got[0], ids[3]);
        ASSERT_EQ_U64(got[n - 1], id);
        kl_queue_close(q);
    }
    remove_dir(dir);
}

/* Torn tail: cut the last segment mid-record, or flip a byte in one of its records. */
static void test_torn_tail(void)
{
    static const struct {
        const char *what;
        int damaged;  /* first record index that is damaged */
        bool flip;    /* flip a payload byte instead of cutting */
        off_t cut_at; /* bytes cut from the end (cut) */
    } cases[] = {
        {"cut 10 bytes of the last record", 4, false, 10},
        {"cut inside the last header", 4, false, 1040},
        {"cut record 3 to its first 3 bytes", 3, false, 1080 + 1077},
        {"flip a byte in record 3's payload", 3, true, 0},
        {"flip a byte in record 0's payload", 0, true, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *dir = make_dir();
        struct kl_queue *q = open_q(dir, NULL);
        if (!q) {
            ASSERT_TRUE(q);
            return;
        }
        uint64_t ids[5];
        struct kl_err err = KL_ERR_INIT;
        for (int i = 0; i < 5; i++) /* 1000 payload bytes: 1080-byte records */
            ASSERT_EQ_INT(append_tag(q, (uint64_t)i, 1000, &ids[i], &err), 0);
        kl_queue_close(q);

        char seg[1024];
        segment_path(dir, -1, seg, sizeof seg);
        off_t size = file_size(seg);
        ASSERT_EQ_INT(size, 5 * 1080);
        if (cases[c].flip)
            flip_byte(seg, cases[c].damaged * 1080 + 80 + 500);
        else if (truncate(seg, size - cases[c].cut_at) != 0)
            perror("truncate");

        q = open_q(dir, NULL);
        if (!q) {
            KL_FAIL_("%s: reopen failed", cases[c].what);
            remove_dir(dir);
            continue;
        }
        uint64_t got[8];
        size_t n = drain(q, got, 8, false);
        if (n != (size_t)cases[c].damaged)
            KL_FAIL_("%s: %zu records kept, want %d", cases[c].what, n, cases[c].damaged);
        for (size_t i = 0; i < n && i < 5; i++)
            ASSERT_EQ_U64(got[i], ids[i]);
        ASSERT_EQ_INT(file_size(seg), cases[c].damaged * 1080);
        uint64_t id = 0;
        ASSERT_EQ_INT(append_tag(q, 77, 1000, &id, &err), 0);
        ASSERT_TRUE(id > ids[4]); /* ids of cut records are never reused */
        kl_queue_close(q);

        q = open_q(dir, NULL); /* the appended record sits cleanly after the cut */
        if (q) {
            n = drain(q, got, 8, false);
            ASSERT_EQ_U64(n, (size_t)cases[c].damaged + 1);
            ASSERT_EQ_U64(got[n - 1], id);
            kl_queue_close(q);
        }
        remove_dir(dir);
    }
}

/* Older segments: a broken header chain refuses to open; a bad payload crc shows at take. */
static void test_corrupt_older_segment(void)
{
    struct kl_queue_limits lim = {.segment_bytes = 2000};
    for (int mode = 0; mode < 2; mode++) {
        char *dir = make_dir();
        struct kl_queue *q = open_q(dir, &lim);
        if (!q) {
            ASSERT_TRUE(q);
            return;
        }
        uint64_t ids[4];
        struct kl_err err = KL_ERR_INIT;
        for (int i = 0; i < 4; i++)
            ASSERT_EQ_INT(append_tag(q, (uint64_t)i, 920, &ids[i], &err), 0); /* 1000 B */
        kl_queue_close(q);
        ASSERT_EQ_INT(count_segments(dir), 2);
        char seg[1024];
        segment_path(dir, 0, seg, sizeof seg);
        flip_byte(seg, mode == 0 ? 1000 + 17 : 1000 + 80 + 3); /* meta_len / payload */

        q = kl_queue_open(dir, &lim, &err);
        if (mode == 0) {
            ASSERT_TRUE(q == NULL);
            ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.corrupt");
            kl_queue_close(q);
        } else if (q) {
            struct kl_queue_record *r = NULL;
            for (int i = 0; i < 4; i++) {
                ASSERT_EQ_INT(kl_queue_take(q, &r, 100), 0);
                ASSERT_EQ_U64(r->id, ids[i]);
                ASSERT_EQ_INT(r->error, i == 1 ? KL_R_QUEUE_CORRUPT : KL_R_NONE);
                ASSERT_TRUE(i == 1 ? r->payload == NULL : r->payload != NULL);
                ASSERT_EQ_INT(kl_queue_retire(q, r->id), 0);
                kl_queue_record_free(r);
            }
            kl_queue_close(q);
        } else {
            KL_FAIL_("open failed: %s", err.msg);
        }
        remove_dir(dir);
    }
}

/* Limits at -1 / = / +1, for records and for bytes; oversized records. */
static void test_limits(void)
{
    ASSERT_EQ_INT(kl_reason_http_status(KL_R_QUEUE_FULL), 429);
    ASSERT_EQ_STR(kl_reason_str(KL_R_QUEUE_FULL), "queue.full");
    struct kl_queue_meta m = {0};
    uint64_t rec = kl_queue_record_bytes(&m, 100);
    ASSERT_EQ_U64(rec, 180);
    static const struct {
        uint64_t max_records, max_bytes;
        int ok; /* appends of 100-byte payloads that succeed before queue.full */
    } cases[] = {
        {2, 0, 2},           {3, 0, 3},       {4, 0, 4}, {0, 3 * 180 - 1, 2}, {0, 3 * 180, 3},
        {0, 3 * 180 + 1, 3}, {3, 3 * 180, 3}, {1, 0, 1}, {0, 180, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *dir = make_dir();
        struct kl_queue_limits lim = {.max_records = cases[c].max_records,
                                      .max_bytes = cases[c].max_bytes};
        struct kl_queue *q = open_q(dir, &lim);
        if (!q) {
            ASSERT_TRUE(q);
            return;
        }
        struct kl_err err = KL_ERR_INIT;
        uint64_t first = 0, id = 0;
        int ok = 0;
        for (int i = 0; i < 6; i++) {
            kl_err_clear(&err);
            if (append_tag(q, (uint64_t)i, 100, &id, &err) != 0)
                break;
            if (ok++ == 0)
                first = id;
        }
        if (ok != cases[c].ok)
            KL_FAIL_("case %zu: %d appends fit, want %d", c, ok, cases[c].ok);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.full");
        struct kl_queue_stats st;
        kl_queue_stats(q, &st);
        ASSERT_EQ_U64(st.rejected_full, 1);
        ASSERT_EQ_U64(st.depth_records, (uint64_t)ok);
        ASSERT_EQ_U64(st.depth_bytes, (uint64_t)ok * rec);
        /* retiring one (taken or not) makes room for exactly one more */
        ASSERT_EQ_INT(kl_queue_retire(q, first), 0);
        kl_err_clear(&err);
        ASSERT_EQ_INT(append_tag(q, 50, 100, &id, &err), 0);
        kl_err_clear(&err);
        ASSERT_EQ_INT(append_tag(q, 51, 100, &id, &err), -1);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.full");
        kl_queue_close(q);
        remove_dir(dir);
    }

    /* a record that could never fit, and over-limit payload / blob sizes: queue.too_large */
    char *dir = make_dir();
    struct kl_queue_limits lim = {.max_bytes = 1000};
    struct kl_queue *q = open_q(dir, &lim);
    if (q) {
        struct kl_err err = KL_ERR_INIT;
        uint64_t id;
        ASSERT_EQ_INT(append_tag(q, 1, 1000 - 80, &id, &err), 0);
        ASSERT_EQ_INT(append_tag(q, 1, 1000 - 79, &id, &err), -1);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.too_large");
        ASSERT_EQ_INT(kl_reason_http_status(err.reason), 413);
        static char big_blob[KL_QUEUE_BLOB_MAX + 1];
        struct kl_queue_meta bm = {.blob = big_blob, .blob_len = sizeof big_blob};
        kl_err_clear(&err);
        ASSERT_EQ_INT(kl_queue_append(q, &bm, "x", 1, &id, &err), -1);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.too_large");
        kl_err_clear(&err);
        ASSERT_EQ_INT(
            kl_queue_append(q, NULL, big_blob, (size_t)KL_QUEUE_PAYLOAD_MAX + 1, &id, &err), -1);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.too_large");
        kl_queue_close(q);
    } else {
        ASSERT_TRUE(q);
    }
    remove_dir(dir);
}

static void test_segments_deleted(void)
{
    char *dir = make_dir();
    struct kl_queue_limits lim = {.segment_bytes = 4096};
    struct kl_queue *q = open_q(dir, &lim);
    if (!q) {
        ASSERT_TRUE(q);
        return;
    }
    uint64_t ids[30];
    struct kl_err err = KL_ERR_INIT;
    for (int i = 0; i < 30; i++) /* 1080-byte records, one per batch: 3 per segment */
        ASSERT_EQ_INT(append_tag(q, (uint64_t)i, 1000, &ids[i], &err), 0);
    ASSERT_EQ_INT(count_segments(dir), 10);
    struct kl_queue_stats st;
    kl_queue_stats(q, &st);
    ASSERT_EQ_U64(st.segments, 10);

    /* retire in a scrambled order; a segment goes as soon as all of it is retired */
    for (int i = 0; i < 30; i++) {
        struct kl_queue_record *r;
        ASSERT_EQ_INT(kl_queue_take(q, &r, 100), 0);
        kl_queue_record_free(r);
    }
    for (int k = 0; k < 30; k++)
        ASSERT_EQ_INT(kl_queue_retire(q, ids[(k * 7) % 30]), 0);
    ASSERT_EQ_INT(count_segments(dir), 1); /* the current one stays: it holds the sequence */
    kl_queue_stats(q, &st);
    ASSERT_EQ_U64(st.segments_deleted, 9);
    ASSERT_EQ_U64(st.depth_records, 0);
    kl_queue_close(q);

    q = open_q(dir, &lim);
    if (q) {
        uint64_t got[4];
        ASSERT_EQ_U64(drain(q, got, 4, false), 0);
        uint64_t id = 0;
        ASSERT_EQ_INT(append_tag(q, 1, 10, &id, &err), 0);
        ASSERT_EQ_U64(id, ids[29] + 1);
        kl_queue_close(q);
    }
    ASSERT_EQ_INT(count_segments(dir), 1);
    remove_dir(dir);
}

static void test_min_id_and_lock(void)
{
    char *dir = make_dir();
    struct kl_queue_limits lim = {.min_id = 1000};
    struct kl_queue *q = open_q(dir, &lim);
    if (!q) {
        ASSERT_TRUE(q);
        return;
    }
    struct kl_err err = KL_ERR_INIT;
    ASSERT_TRUE(kl_queue_open(dir, NULL, &err) == NULL);
    ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.locked");
    uint64_t id = 0;
    ASSERT_EQ_INT(append_tag(q, 1, 10, &id, &err), 0);
    ASSERT_EQ_U64(id, 1000);
    kl_queue_close(q);
    q = open_q(dir, NULL);
    if (q) {
        ASSERT_EQ_INT(append_tag(q, 1, 10, &id, &err), 0);
        ASSERT_EQ_U64(id, 1001);
        kl_queue_close(q);
    }
    remove_dir(dir);
}

struct blocked_taker {
    struct kl_queue *q;
    int rc;
};

static void *blocked_take(void *arg)
{
    struct blocked_taker *t = arg;
    struct kl_queue_record *r = NULL;
    t->rc = kl_queue_take(t->q, &r, -1);
    kl_queue_record_free(r);
    return NULL;
}

static void test_shutdown_wakes_takers(void)
{
    char *dir = make_dir();
    struct kl_queue *q = open_q(dir, NULL);
    if (!q) {
        ASSERT_TRUE(q);
        return;
    }
    struct blocked_taker t[2] = {{q, 99}, {q, 99}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, blocked_take, &t[i]);
    usleep(50 * 1000);
    kl_queue_shutdown(q);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ_INT(t[i].rc, -1);
    }
    struct kl_err err = KL_ERR_INIT;
    uint64_t id;
    ASSERT_EQ_INT(append_tag(q, 1, 10, &id, &err), -1);
    ASSERT_EQ_STR(kl_reason_str(err.reason), "queue.closed");
    kl_queue_close(q);
    remove_dir(dir);
}

/* A failed write (here: EFBIG past RLIMIT_FSIZE, as on a full disk) fails only its batch with
 * queue.io, cuts the segment back, and later appends work. Runs in a child for the rlimit. */
static void test_write_failure(void)
{
    char *dir = make_dir();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {6000, 6000};
        setrlimit(RLIMIT_FSIZE, &rl);
        struct kl_queue_limits lim = {.segment_bytes = 4096};
        struct kl_err err = KL_ERR_INIT;
        struct kl_queue *q = kl_queue_open(dir, &lim, &err);
        uint64_t id1 = 0, id2 = 0, id3 = 0;
        if (!q)
            _exit(10);
        if (append_tag(q, 1, 1000, &id1, &err) != 0)
            _exit(11);
        if (append_tag(q, 2, 8000, &id2, &err) != -1 || err.reason != KL_R_QUEUE_IO)
            _exit(12);
        char seg[1024];
        segment_path(dir, -1, seg, sizeof seg);
        if (count_segments(dir) != 2 || file_size(seg) != 0)
            _exit(13);
        kl_err_clear(&err);
        if (append_tag(q, 3, 1000, &id3, &err) != 0 || id3 <= id1)
            _exit(14);
        struct kl_queue_stats st;
        kl_queue_stats(q, &st);
        if (st.failed != 1 || st.broken || st.appends != 2 || st.depth_records != 2)
            _exit(15);
        kl_queue_close(q);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        KL_FAIL_("write-failure child: status %d (exit code = failed step)", status);
    struct kl_queue *q = open_q(dir, NULL);
    if (q) {
        uint64_t got[4];
        ASSERT_EQ_U64(drain(q, got, 4, false), 2);
        kl_queue_close(q);
    }
    remove_dir(dir);
}

/* ---------------------------------------------------------------- many threads */

#define CT_APPENDERS 8
#define CT_PER_THREAD 300
#define CT_TAKERS 2

struct ct_shared {
    struct kl_queue *q;
    uint64_t ids[CT_APPENDERS][CT_PER_THREAD];
    int fails;
    pthread_mutex_t mu;
    uint64_t *taken; /* ids taken, in order of take */
    size_t ntaken;
    int bad;
    bool stop;
};

struct ct_arg {
    struct ct_shared *s;
    int t;
};

static void *ct_append(void *arg)
{
    struct ct_arg *a = arg;
    for (int i = 0; i < CT_PER_THREAD; i++) {
        struct kl_err err = KL_ERR_INIT;
        uint64_t tag = ((uint64_t)a->t << 32) | (uint64_t)i;
        if (append_tag(a->s->q, tag, 200 + (size_t)((i * 37) % 1800), &a->s->ids[a->t][i], &err) !=
            0) {
            pthread_mutex_lock(&a->s->mu);
            a->s->fails++;
            pthread_mutex_unlock(&a->s->mu);
        }
    }
    return NULL;
}

static void *ct_take(void *arg)
{
    struct ct_shared *s = arg;
    for (;;) {
        struct kl_queue_record *r = NULL;
        int rc = kl_queue_take(s->q, &r, 20);
        if (rc < 0)
            break;
        if (rc == 1) {
            pthread_mutex_lock(&s->mu);
            bool stop = s->stop;
            pthread_mutex_unlock(&s->mu);
            if (stop)
                break;
            continue;
        }
        bool ok = r->error == KL_R_NONE && padded(r) &&
                  check_fill(r->payload, r->payload_len, r->meta.org_id);
        pthread_mutex_lock(&s->mu);
        s->taken[s->ntaken++] = r->id;
        if (!ok)
            s->bad++;
        pthread_mutex_unlock(&s->mu);
        kl_queue_retire(s->q, r->id);
        kl_queue_record_free(r);
    }
    return NULL;
}

static void test_many_threads(void)
{
    char *dir = make_dir();
    struct ct_shared *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->taken = calloc(CT_APPENDERS * CT_PER_THREAD * 2, sizeof *s->taken);
    struct kl_queue_limits lim = {.segment_bytes = 64 * 1024};
    s->q = open_q(dir, &lim);
    if (!s->q) {
        ASSERT_TRUE(s->q);
        return;
    }
    pthread_t ap[CT_APPENDERS], tk[CT_TAKERS];
    struct ct_arg args[CT_APPENDERS];
    for (int i = 0; i < CT_TAKERS; i++)
        pthread_create(&tk[i], NULL, ct_take, s);
    for (int i = 0; i < CT_APPENDERS; i++) {
        args[i] = (struct ct_arg){s, i};
        pthread_create(&ap[i], NULL, ct_append, &args[i]);
    }
    for (int i = 0; i < CT_APPENDERS; i++)
        pthread_join(ap[i], NULL);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < CT_TAKERS; i++)
        pthread_join(tk[i], NULL);

    size_t total = CT_APPENDERS * CT_PER_THREAD;
    ASSERT_EQ_INT(s->fails, 0);
    ASSERT_EQ_INT(s->bad, 0);
    ASSERT_EQ_U64(s->ntaken, total);
    uint64_t *all = malloc(total * sizeof *all);
    memcpy(all, s->ids, total * sizeof *all);
    qsort(all, total, sizeof *all, cmp_u64);
    size_t dups = 0;
    for (size_t i = 1; i < total; i++)
        dups += all[i] == all[i - 1];
    ASSERT_EQ_U64(dups, 0);
    qsort(s->taken, s->ntaken, sizeof *s->taken, cmp_u64);
    if (s->ntaken == total)
        ASSERT_TRUE(memcmp(all, s->taken, total * sizeof *all) == 0); /* each exactly once */
    struct kl_queue_stats st;
    kl_queue_stats(s->q, &st);
    ASSERT_EQ_U64(st.appends, total);
    ASSERT_EQ_U64(st.depth_records, 0);
    ASSERT_TRUE(st.fsyncs < total); /* group commit happened */
    printf("# many threads: %zu appends in %llu fsyncs (max batch %llu), %llu segments "
           "deleted\n",
           total, (unsigned long long)st.fsyncs, (unsigned long long)st.batch_max,
           (unsigned long long)st.segments_deleted);
    kl_queue_close(s->q);
    free(all);
    free(s->taken);
    pthread_mutex_destroy(&s->mu);
    free(s);
    remove_dir(dir);
}

/* ---------------------------------------------------------------- crash: fork + kill -9 */

enum { MSG_ACK = 1, MSG_RETIRING = 2, MSG_RETIRED = 3 };

struct crash_msg {
    uint64_t kind, id;
};

struct crash_child {
    struct kl_queue *q;
    int wfd;
    unsigned seed;
};

static void crash_send(int fd, uint64_t kind, uint64_t id)
{
    struct crash_msg m = {kind, id};
    if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(4);
}

static void *crash_appender(void *arg)
{
    struct crash_child *c = arg;
    unsigned seed = c->seed;
    for (uint64_t i = 0;; i++) {
        uint64_t tag = ((uint64_t)seed << 24) ^ i;
        size_t n = 1 + (size_t)(rand_r(&seed) % (32 * 1024));
        struct kl_err err = KL_ERR_INIT;
        uint64_t id;
        if (append_tag(c->q, tag, n, &id, &err) == 0)
            crash_send(c->wfd, MSG_ACK, id); /* acknowledged: append returned 0 */
        else if (err.reason != KL_R_QUEUE_FULL)
            _exit(5);
    }
    return NULL;
}

static void *crash_worker(void *arg)
{
    struct crash_child *c = arg;
    for (;;) {
        struct kl_queue_record *r = NULL;
        if (kl_queue_take(c->q, &r, 100) != 0)
            continue;
        if (r->error != KL_R_NONE || !check_fill(r->payload, r->payload_len, r->meta.org_id))
            _exit(6);
        if (r->id % 4 != 0) { /* leave a quarter unretired, to be handed out again */
            crash_send(c->wfd, MSG_RETIRING, r->id);
            kl_queue_retire(c->q, r->id);
            crash_send(c->wfd, MSG_RETIRED, r->id);
        }
        kl_queue_record_free(r);
    }
    return NULL;
}

static void crash_child_main(const char *dir, int wfd, unsigned seed)
{
    struct kl_queue_limits lim = {.segment_bytes = 256 * 1024};
    struct kl_err err = KL_ERR_INIT;
    struct kl_queue *q = kl_queue_open(dir, &lim, &err);
    if (!q) {
        fprintf(stderr, "crash child: %s\n", err.msg);
        _exit(3);
    }
    static struct crash_child c[5];
    pthread_t th[5];
    for (int i = 0; i < 5; i++) {
        c[i] = (struct crash_child){q, wfd, seed * 7919u + (unsigned)i};
        pthread_create(&th[i], NULL, i < 4 ? crash_appender : crash_worker, &c[i]);
    }
    for (;;)
        pause();
}

struct idset {
    uint64_t *v;
    size_t n, cap;
};

static void idset_add(struct idset *s, uint64_t id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = id;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
    return s->n && bsearch(&id, s->v, s->n, sizeof *s->v, cmp_u64);
}

static void test_crash_kill9(void)
{
    const char *env = getenv("KL_QUEUE_SEED");
    unsigned seed = env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("# crash test seed %u (KL_QUEUE_SEED)\n", seed);
    unsigned rs = seed;
    char *dir = make_dir();
    struct idset acked = {0}, retiring = {0}, retired = {0};
    const int cycles = 8;
    for (int cyc = 0; cyc < cycles; cyc++) {
        int pfd[2];
        if (pipe(pfd) != 0) {
            perror("pipe");
            exit(1);
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            crash_child_main(dir, pfd[1], seed + (unsigned)cyc);
        }
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        double kill_at = now_s() + 0.03 + (double)(rand_r(&rs) % 220) / 1000.0;
        bool killed = false;
        char buf[sizeof(struct crash_msg) * 256];
        size_t have = 0;
        for (;;) {
            double left = kill_at - now_s();
            if (!killed && left <= 0) {
                kill(pid, SIGKILL);
                killed = true;
            }
            struct pollfd p = {pfd[0], POLLIN, 0};
            poll(&p, 1, killed ? 1000 : (int)(left * 1000) + 1);
            ssize_t r = read(pfd[0], buf + have, sizeof buf - have);
            if (r <= 0) {
                if (r == 0 || (errno != EINTR && errno != EAGAIN))
                    break;
                continue;
            }
            have += (size_t)r;
            size_t whole = have / sizeof(struct crash_msg);
            for (size_t i = 0; i < whole; i++) {
                struct crash_msg m;
                memcpy(&m, buf + i * sizeof m, sizeof m);
                idset_add(m.kind == MSG_ACK        ? &acked
                          : m.kind == MSG_RETIRING ? &retiring
                                                   : &retired,
                          m.id);
            }
            memmove(buf, buf + whole * sizeof(struct crash_msg),
                    have - whole * sizeof(struct crash_msg));
            have -= whole * sizeof(struct crash_msg);
        }
        close(pfd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            KL_FAIL_("cycle %d: child ended with status %d, not by kill -9", cyc, status);
    }
    qsort(acked.v, acked.n, sizeof *acked.v, cmp_u64);
    qsort(retiring.v, retiring.n, sizeof *retiring.v, cmp_u64);
    qsort(retired.v, retired.n, sizeof *retired.v, cmp_u64);
    for (size_t i = 1; i < acked.n; i++)
        if (acked.v[i] == acked.v[i - 1])
            KL_FAIL_("id %llu acknowledged twice", (unsigned long long)acked.v[i]);

    struct kl_queue *q = open_q(dir, NULL);
    if (!q) {
        ASSERT_TRUE(q);
        remove_dir(dir);
        return;
    }
    size_t cap = acked.n + 16;
    uint64_t *got = malloc(cap * sizeof *got);
    size_t n = drain(q, got, cap, false);
    ASSERT_TRUE(n <= cap);
    struct idset present = {got, n < cap ? n : cap, cap};
    for (size_t i = 1; i < present.n; i++)
        if (present.v[i] <= present.v[i - 1])
            KL_FAIL_("ids out of order or duplicated at %zu", i);
    size_t lost = 0, zombies = 0;
    for (size_t i = 0; i < acked.n; i++)
        if (!idset_has(&retiring, acked.v[i]) && !idset_has(&present, acked.v[i]))
            lost++;
    for (size_t i = 0; i < retired.n; i++)
        if (idset_has(&present, retired.v[i]))
            zombies++;
    ASSERT_EQ_U64(lost, 0);
    ASSERT_EQ_U64(zombies, 0);
    ASSERT_TRUE(acked.n > 0);
    printf("# crash: %d kill -9 cycles, %zu acknowledged, %zu retired, %zu present after "
           "restart, 0 lost expected: lost %zu, retired-but-present %zu\n",
           cycles, acked.n, retired.n, n, lost, zombies);
    kl_queue_close(q);
    free(got);
    free(acked.v);
    free(retiring.v);
    free(retired.v);
    remove_dir(dir);
}

/* ---------------------------------------------------------------- throughput (printed) */

#define BENCH_THREADS 8
#define BENCH_PAYLOAD (100 * 1024)
#define BENCH_MAX_SAMPLES 200000

struct bench {
    struct kl_queue *q;
    const char *payload;
    double end;
    double period; /* > 0: paced, one append per period per thread */
    double *lat[BENCH_THREADS];
    size_t nlat[BENCH_THREADS];
    bool stop;
    int fails;
};

struct bench_arg {
    struct bench *b;
    int t;
};

static void *bench_append(void *arg)
{
    struct bench_arg *a = arg;
    struct bench *b = a->b;
    double next = now_s() + (b->period > 0 ? b->period * a->t / BENCH_THREADS : 0);
    while (now_s() < b->end && b->nlat[a->t] < BENCH_MAX_SAMPLES) {
        if (b->period > 0) {
            double wait = next - now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
            next += b->period;
        }
        struct kl_queue_meta m = {.org_id = 1, .project_id = 2};
        struct kl_err err = KL_ERR_INIT;
        uint64_t id;
        double t0 = now_s();
        if (kl_queue_append(b->q, &m, b->payload, BENCH_PAYLOAD, &id, &err) != 0) {
            __atomic_add_fetch(&b->fails, 1, __ATOMIC_RELAXED);
            continue;
        }
        b->lat[a->t][b->nlat[a->t]++] = now_s() - t0;
    }
    return NULL;
}

static void *bench_worker(void *arg)
{
    struct bench *b = arg;
    for (;;) {
        struct kl_queue_record *r = NULL;
        int rc = kl_queue_take(b->q, &r, 20);
        if (rc < 0 || (rc == 1 && __atomic_load_n(&b->stop, __ATOMIC_RELAXED)))
            break;
        if (rc == 0) {
            kl_queue_retire(b->q, r->id);
            kl_queue_record_free(r);
        }
    }
    return NULL;
}

static void bench_run(const char *label, double seconds, double rate)
{
    char *dir = make_dir();
    struct bench *b = calloc(1, sizeof *b);
    char *payload = malloc(BENCH_PAYLOAD);
    fill(payload, BENCH_PAYLOAD, 42);
    b->payload = payload;
    b->period = rate > 0 ? BENCH_THREADS / rate : 0;
    b->q = open_q(dir, NULL);
    if (!b->q) {
        ASSERT_TRUE(b->q);
        return;
    }
    for (int i = 0; i < BENCH_THREADS; i++)
        b->lat[i] = malloc(BENCH_MAX_SAMPLES * sizeof(double));
    pthread_t ap[BENCH_THREADS], wk[2];
    struct bench_arg args[BENCH_THREADS];
    for (int i = 0; i < 2; i++)
        pthread_create(&wk[i], NULL, bench_worker, b);
    double t0 = now_s();
    b->end = t0 + seconds;
    for (int i = 0; i < BENCH_THREADS; i++) {
        args[i] = (struct bench_arg){b, i};
        pthread_create(&ap[i], NULL, bench_append, &args[i]);
    }
    for (int i = 0; i < BENCH_THREADS; i++)
        pthread_join(ap[i], NULL);
    double elapsed = now_s() - t0;
    __atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(wk[i], NULL);

    size_t n = 0;
    for (int i = 0; i < BENCH_THREADS; i++)
        n += b->nlat[i];
    double *all = malloc((n + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < BENCH_THREADS; i++) {
        memcpy(all + k, b->lat[i], b->nlat[i] * sizeof *all);
        k += b->nlat[i];
        free(b->lat[i]);
    }
    qsort(all, n, sizeof *all, cmp_double);
    struct kl_queue_stats st;
    kl_queue_stats(b->q, &st);
    struct statfs sf;
    const char *fs = statfs(dir, &sf) == 0 ? (sf.f_type == 0x01021994 ? "tmpfs" : "disk") : "?";
    if (n > 0)
        printf("# queue bench %s: %d threads x %d KB payloads on %s (%s): %.0f appends/s "
               "(%.0f MB/s), latency p50 %.2f ms p99 %.2f ms max %.2f ms; %llu fsyncs, "
               "%.1f records/batch (max %llu), failures %d\n",
               label, BENCH_THREADS, BENCH_PAYLOAD / 1024, dir, fs, (double)n / elapsed,
               (double)n * BENCH_PAYLOAD / elapsed / 1e6, all[n / 2] * 1e3,
               all[(size_t)((double)n * 0.99)] * 1e3, all[n - 1] * 1e3,
               (unsigned long long)st.fsyncs,
               (double)st.appends / (double)(st.fsyncs ? st.fsyncs : 1),
               (unsigned long long)st.batch_max, b->fails);
    ASSERT_EQ_INT(b->fails, 0);
    kl_queue_close(b->q);
    free(all);
    free(payload);
    free(b);
    remove_dir(dir);
}

static void test_bench(void)
{
    bench_run("closed loop", 2.0, 0);
    bench_run("paced 1000/s", 2.0, 1000);
}

int main(void)
{
    /* the fork tests need a process without other threads: every test joins its own */
    KL_RUN(test_append_take_retire);
    KL_RUN(test_recover);
    KL_RUN(test_torn_tail);
    KL_RUN(test_corrupt_older_segment);
    KL_RUN(test_limits);
    KL_RUN(test_segments_deleted);
    KL_RUN(test_min_id_and_lock);
    KL_RUN(test_shutdown_wakes_takers);
    KL_RUN(test_write_failure);
    KL_RUN(test_crash_kill9);
    KL_RUN(test_many_threads);
    KL_RUN(test_bench);
    KL_TEST_DONE();
}
