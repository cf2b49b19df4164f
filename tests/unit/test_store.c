/* test_store.c - the store contract suite, run once per backend
 *
 * Every test body talks to the store only through store.h/blob.h, which dispatch through
 * struct kl_store_ops, so a PostgreSQL backend joins by adding a row to `backends` (with
 * its open function, skipped when its DSN is not configured). Each test gets a fresh data
 * directory under $TMPDIR (mkdtemp), removed afterwards.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "pipeline/process.h"
#include "store/blob.h"
#include "store/store.h"

#include "kl_test.h"

struct backend {
    const char *name;
    struct kl_store *(*open)(const char *dir, struct kl_err *err);
};

static const struct backend backends[] = {
    {"sqlite", kl_store_open_sqlite},
};

static const struct backend *B; /* the backend under test */
static char dir[256];           /* this test's data directory */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fresh_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kl_store_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void remove_dir(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct kl_store *open_store(void)
{
    struct kl_err err = KL_ERR_INIT;
    struct kl_store *s = B->open(dir, &err);
    if (!s)
        KL_FAIL_("open %s: %s (%s)", dir, err.msg, kl_reason_str(err.reason));
    return s;
}

#define ASSERT_OK(call)                                                                            \
    do {                                                                                           \
        struct kl_err e_ = KL_ERR_INIT;                                                            \
        int r_ = (call);                                                                           \
        if (r_ < 0)                                                                                \
            KL_FAIL_("%s failed: %s (%s)", #call, e_.msg, kl_reason_str(e_.reason));               \
    } while (0)
/* call must use `e_` as its err argument */
#define ASSERT_FAILS(call, why)                                                                    \
    do {                                                                                           \
        struct kl_err e_ = KL_ERR_INIT;                                                            \
        int r_ = (call);                                                                           \
        if (r_ != -1)                                                                              \
            KL_FAIL_("%s: expected -1, got %d", #call, r_);                                        \
        else                                                                                       \
            ASSERT_EQ_STR(kl_reason_str(e_.reason), why);                                          \
    } while (0)

/* ---- item builders ---- */

static struct kl_outcome OUT_ACCEPTED[] = {
    {KL_OUTCOME_ACCEPTED, KL_R_NONE, KL_CAT_PROFILE, 1, ""},
    {KL_OUTCOME_ACCEPTED, KL_R_NONE, KL_CAT_PROFILE_INDEXED, 1, ""},
    {KL_OUTCOME_ACCEPTED, KL_R_NONE, KL_CAT_PROFILE_DURATION, 250, ""},
};
static struct kl_outcome OUT_INVALID[] = {
    {KL_OUTCOME_INVALID, KL_R_PROFILING_INVALID_JSON, KL_CAT_PROFILE, 1, ""},
    {KL_OUTCOME_INVALID, KL_R_PROFILING_INVALID_JSON, KL_CAT_PROFILE_INDEXED, 1, ""},
};

struct item_buf {
    char queue_id[64];
    char id[33];
    char profiler[33];
    struct kl_stored_item it;
};

/* A transaction profile (or chunk) item with ids derived from n. */
static void make_item(struct item_buf *b, const char *queue_id, unsigned n, bool chunk,
                      int64_t start_ns, int64_t received_s)
{
    snprintf(b->queue_id, sizeof b->queue_id, "%s", queue_id);
    snprintf(b->id, sizeof b->id, "%032x", n);
    snprintf(b->profiler, sizeof b->profiler, "%032x", 0xabcdu);
    struct kl_stored_item *it = &b->it;
    kl_stored_item_outcomes(it, kl_str_c(b->queue_id), 1, 1, received_s, OUT_ACCEPTED,
                            chunk ? 1 : 3);
    it->kind = chunk ? KL_STORED_CHUNK : KL_STORED_PROFILE;
    if (chunk) {
        it->profiler_id = kl_str_c(b->profiler);
        it->chunk_id = kl_str_c(b->id);
    } else {
        it->profile_id = kl_str_c(b->id);
        it->transaction_name = KL_STR("GET /users");
        it->trace_id = KL_STR("4b25bc58f14243d8b208d1e22a054164");
    }
    it->platform = KL_STR("python");
    it->release = KL_STR("app@1.0");
    it->environment = KL_STR("production");
    it->start_ns = start_ns;
    it->duration_ns = 250000000;
    it->sample_count = 25;
    it->retention_days = 90;
    it->blob = b->id; /* any bytes do: the blob is opaque to the store */
    it->blob_len = strlen(b->id);
}

/* ---- collectors ---- */

struct rows {
    int n;
    struct kl_profile_row r[16];
    char ids[16][33];
    char names[16][64];
    char keys[16][KL_BLOB_KEY_MAX + 1]; /* row strings die with the callback: copies */
};

static int collect_row(void *ctx, const struct kl_profile_row *r)
{
    struct rows *rs = ctx;
    if (rs->n < 16) {
        struct kl_str id = r->kind == KL_STORED_CHUNK ? r->chunk_id : r->profile_id;
        snprintf(rs->ids[rs->n], 33, "%.*s", (int)id.len, id.ptr);
        snprintf(rs->names[rs->n], 64, "%.*s", (int)r->transaction_name.len,
                 r->transaction_name.ptr ? r->transaction_name.ptr : "");
        snprintf(rs->keys[rs->n], sizeof rs->keys[0], "%.*s", (int)r->blob_key.len,
                 r->blob_key.ptr);
        rs->r[rs->n] = *r;
    }
    rs->n++;
    return 0;
}

static struct rows list(struct kl_store *s, uint64_t project, int64_t since, int64_t until,
                        uint32_t limit)
{
    struct rows rs = {0};
    struct kl_profile_filter f = {0};
    f.project_id = project;
    f.since_ns = since;
    f.until_ns = until;
    f.limit = limit;
    ASSERT_OK(kl_store_list_profiles(s, &f, collect_row, &rs, &e_));
    return rs;
}

struct sums {
    int n;
    struct kl_outcome_row r[32];
    char reasons[32][64];
};

static int collect_sum(void *ctx, const struct kl_outcome_row *r)
{
    struct sums *ss = ctx;
    if (ss->n < 32) {
        ss->r[ss->n] = *r;
        if (r->reason.ptr)
            snprintf(ss->reasons[ss->n], 64, "%.*s", (int)r->reason.len, r->reason.ptr);
        else
            snprintf(ss->reasons[ss->n], 64, "(null)");
    }
    ss->n++;
    return 0;
}

static struct sums sum(struct kl_store *s, unsigned group, int64_t since, int64_t until)
{
    struct sums ss = {0};
    struct kl_outcome_filter f = {0, 0, since, until, group};
    ASSERT_OK(kl_store_sum_outcomes(s, &f, collect_sum, &ss, &e_));
    return ss;
}

/* Total quantity of one category (all outcomes). */
static uint64_t category_total(struct kl_store *s, enum kl_category c)
{
    struct sums ss = sum(s, KL_GROUP_CATEGORY, 0, 0);
    for (int i = 0; i < ss.n; i++)
        if (ss.r[i].category == (int)c)
            return ss.r[i].quantity;
    return 0;
}

static int commit(struct kl_store *s, const struct kl_stored_item *it, struct kl_err *err)
{
    return kl_store_commit_item(s, it, err);
}

/* ---- tests ---- */

static bool is_hex32(const char *k)
{
    if (strlen(k) != 32)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

struct projects {
    int n;
    uint64_t ids[8];
    char slugs[8][64];
};

static int collect_project(void *ctx, const struct kl_project *p)
{
    struct projects *ps = ctx;
    if (ps->n < 8) {
        ps->ids[ps->n] = p->id;
        snprintf(ps->slugs[ps->n], 64, "%.*s/%.*s", (int)p->org_slug.len, p->org_slug.ptr,
                 (int)p->slug.len, p->slug.ptr);
    }
    ps->n++;
    return 0;
}

struct keys {
    int n;
    char k[8][33];
    bool active[8];
};

static int collect_key(void *ctx, const struct kl_key *k)
{
    struct keys *ks = ctx;
    if (ks->n < 8) {
        snprintf(ks->k[ks->n], 33, "%.*s", (int)k->public_key.len, k->public_key.ptr);
        ks->active[ks->n] = k->active;
    }
    ks->n++;
    return 0;
}

static void test_bootstrap_idempotent(void)
{
    char k1[33], k2[33], k3[33];
    struct kl_store *s = open_store();
    if (!s)
        return;
    ASSERT_OK(kl_store_bootstrap(s, k1, &e_));
    ASSERT_TRUE(is_hex32(k1));
    ASSERT_OK(kl_store_bootstrap(s, k2, &e_));
    ASSERT_EQ_STR(k1, k2);
    kl_store_close(s);
    s = open_store();
    ASSERT_OK(kl_store_bootstrap(s, k3, &e_));
    ASSERT_EQ_STR(k1, k3);
    struct projects ps = {0};
    ASSERT_OK(kl_store_project_list(s, collect_project, &ps, &e_));
    ASSERT_EQ_INT(ps.n, 1);
    ASSERT_EQ_U64(ps.ids[0], 1);
    ASSERT_EQ_STR(ps.slugs[0], "default/default");
    struct keys ks = {0};
    ASSERT_OK(kl_store_project_keys(s, 1, collect_key, &ks, &e_));
    ASSERT_EQ_INT(ks.n, 1);
    ASSERT_EQ_STR(ks.k[0], k1);
    kl_store_close(s);
}

static void test_projects(void)
{
    char k[33], k2[33];
    uint64_t pid = 0, pid2 = 0;
    struct kl_store *s = open_store();
    if (!s)
        return;
    ASSERT_OK(kl_store_bootstrap(s, k, &e_));
    ASSERT_OK(kl_store_project_create(s, KL_STR("  My App!  (iOS) "), 1, &pid, &e_));
    ASSERT_TRUE(pid > 1);
    ASSERT_FAILS(kl_store_project_create(s, KL_STR("my app ios"), 1, &pid2, &e_), "store.conflict");
    ASSERT_FAILS(kl_store_project_create(s, KL_STR("!!!"), 1, &pid2, &e_), "store.invalid");
    ASSERT_FAILS(kl_store_project_create(s, KL_STR("other"), 99, &pid2, &e_), "store.not_found");
    ASSERT_OK(kl_store_project_create(s, KL_STR("Backend"), 1, &pid2, &e_));

    struct projects ps = {0};
    ASSERT_OK(kl_store_project_list(s, collect_project, &ps, &e_));
    ASSERT_EQ_INT(ps.n, 3);
    ASSERT_EQ_STR(ps.slugs[1], "default/my-app-ios");
    ASSERT_EQ_STR(ps.slugs[2], "default/backend");
    ASSERT_EQ_U64(ps.ids[1], pid);

    struct keys ks = {0};
    ASSERT_OK(kl_store_project_keys(s, pid, collect_key, &ks, &e_));
    ASSERT_EQ_INT(ks.n, 1);
    ASSERT_TRUE(is_hex32(ks.k[0]) && ks.active[0]);
    ASSERT_TRUE(strcmp(ks.k[0], k) != 0);
    ASSERT_OK(kl_store_key_create(s, pid, k2, &e_));
    ks = (struct keys){0};
    ASSERT_OK(kl_store_project_keys(s, pid, collect_key, &ks, &e_));
    ASSERT_EQ_INT(ks.n, 2);
    ASSERT_FAILS(kl_store_key_create(s, 12345, k2, &e_), "store.not_found");

    struct kl_project p;
    ASSERT_OK(kl_store_project_find_by_slug(s, KL_STR("default"), KL_STR("my-app-ios"), &p, &e_));
    ASSERT_EQ_U64(p.id, pid);
    ASSERT_EQ_U64(p.organization_id, 1);
    ASSERT_FAILS(kl_store_project_find_by_slug(s, KL_STR("default"), KL_STR("nope"), &p, &e_),
                 "store.not_found");
    ASSERT_FAILS(kl_store_project_find_by_slug(s, KL_STR("acme"), KL_STR("backend"), &p, &e_),
                 "store.not_found");
    kl_store_close(s);
}

static void test_key_lookup(void)
{
    char k[33];
    uint64_t pid = 0, proj, org;
    bool active;
    struct kl_store *s = open_store();
    if (!s)
        return;
    ASSERT_OK(kl_store_bootstrap(s, k, &e_));
    for (int round = 0; round < 2; round++) { /* the second round hits the cache */
        proj = org = 0;
        active = false;
        ASSERT_OK(kl_store_key_lookup(s, kl_str_c(k), &proj, &org, &active, &e_));
        ASSERT_EQ_U64(proj, 1);
        ASSERT_EQ_U64(org, 1);
        ASSERT_TRUE(active);
    }
    ASSERT_OK(kl_store_project_create(s, KL_STR("second"), 1, &pid, &e_));
    struct keys ks = {0};
    ASSERT_OK(kl_store_project_keys(s, pid, collect_key, &ks, &e_));
    ASSERT_OK(kl_store_key_lookup(s, kl_str_c(ks.k[0]), &proj, &org, &active, &e_));
    ASSERT_EQ_U64(proj, pid);
    ASSERT_FAILS(kl_store_key_lookup(s, KL_STR("0123456789abcdef0123456789abcdef"), &proj, &org,
                                     &active, &e_),
                 "store.not_found");
    ASSERT_FAILS(kl_store_key_lookup(s, KL_STR("' OR 1=1 --"), &proj, &org, &active, &e_),
                 "store.not_found");
    ASSERT_FAILS(kl_store_key_lookup(s, KL_STR_NULL, &proj, &org, &active, &e_), "store.not_found");
    /* another process's store object (the CLI) sees the same keys */
    struct kl_store *s2 = open_store();
    ASSERT_OK(kl_store_key_lookup(s2, kl_str_c(k), &proj, &org, &active, &e_));
    ASSERT_EQ_U64(proj, 1);
    kl_store_close(s2);
    kl_store_close(s);
}

static void test_commit_then_list(void)
{
    char k[33];
    struct kl_store *s = open_store();
    if (!s)
        return;
    ASSERT_OK(kl_store_bootstrap(s, k, &e_));
    struct item_buf a, b, c;
    int64_t t0 = 1714557600LL * 1000000000LL;
    make_item(&a, "q1/0", 1, false, t0, 1714557600);
    make_item(&b, "q2/0", 2, true, t0 + 5000000000LL, 1714557605);
    make_item(&c, "q3/0", 3, false, t0 + 1000000000LL, 1714557601);
    c.it.project_id = 7; /* rows need no project row: the pipeline checked the key */
    ASSERT_EQ_INT(commit(s, &a.it, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_INT(commit(s, &b.it, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_INT(commit(s, &c.it, NULL), KL_COMMIT_DONE);

    struct rows rs = list(s, 0, 0, 0, 0);
    ASSERT_EQ_INT(rs.n, 3);
    ASSERT_EQ_INT(rs.r[0].kind, KL_STORED_CHUNK); /* newest first */
    ASSERT_EQ_STR(rs.ids[0], b.id);
    ASSERT_EQ_STR(rs.ids[1], c.id);
    ASSERT_EQ_STR(rs.ids[2], a.id);
    ASSERT_EQ_STR(rs.names[2], "GET /users");
    ASSERT_EQ_U64(rs.r[2].duration_ns, 250000000);
    ASSERT_EQ_U64(rs.r[2].sample_count, 25);
    ASSERT_EQ_INT(rs.r[2].start_ns, t0);
    ASSERT_EQ_INT(rs.r[2].received_s, 1714557600);

    /* filters */
    ASSERT_EQ_INT(list(s, 7, 0, 0, 0).n, 1);
    ASSERT_EQ_INT(list(s, 1, 0, 0, 0).n, 2);
    ASSERT_EQ_INT(list(s, 0, t0 + 1, 0, 0).n, 2);
    ASSERT_EQ_INT(list(s, 0, t0, t0 + 1000000000LL, 0).n, 1);
    ASSERT_EQ_INT(list(s, 0, 0, 0, 2).n, 2);

    /* the blobs are where the rows say */
    struct kl_arena ar;
    kl_arena_init(&ar);
    char key[KL_BLOB_KEY_MAX + 1], *out;
    size_t n;
    ASSERT_EQ_INT(kl_stored_item_blob_key(&b.it, key), strlen("1/1/") + 32 + 1 + 32);
    ASSERT_EQ_STR(rs.keys[0], key);
    ASSERT_OK(kl_blob_get(s, kl_str_c(key), &ar, &out, &n, &e_));
    ASSERT_EQ_INT(n, 32);
    ASSERT_TRUE(memcmp(out, b.id, 32) == 0);
    kl_stored_item_blob_key(&c.it, key);
    ASSERT_TRUE(kl_blob_exists(s, kl_str_c(key)));
    kl_arena_release(&ar);
    kl_store_close(s);
}

static void test_replay_and_conflict(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    struct item_buf a, dup;
    make_item(&a, "q1/0", 1, false, 1000, 1714557600);
    ASSERT_EQ_INT(commit(s, &a.it, NULL), KL_COMMIT_DONE);
    /* the queue replays the same item after a crash: a no-op that says so */
    ASSERT_EQ_INT(commit(s, &a.it, NULL), KL_COMMIT_ALREADY);
    kl_store_close(s);
    s = open_store();
    ASSERT_EQ_INT(commit(s, &a.it, NULL), KL_COMMIT_ALREADY);
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 1);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), 1);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE_DURATION), 250);

    /* the same profile id from another queue item: refused, nothing changes, and the blob
     * of the stored row is not overwritten */
    make_item(&dup, "q9/0", 1, false, 1000, 1714557600);
    dup.it.blob = "other bytes";
    dup.it.blob_len = 11;
    ASSERT_FAILS(commit(s, &dup.it, &e_), "store.conflict");
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 1);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), 1);
    struct kl_arena ar;
    kl_arena_init(&ar);
    char key[KL_BLOB_KEY_MAX + 1], *out;
    size_t n;
    kl_stored_item_blob_key(&a.it, key);
    ASSERT_OK(kl_blob_get(s, kl_str_c(key), &ar, &out, &n, &e_));
    ASSERT_EQ_INT(n, 32);
    kl_arena_release(&ar);
    /* ... and it was not recorded as processed: an outcomes-only commit may follow */
    struct kl_stored_item inv;
    kl_stored_item_outcomes(&inv, KL_STR("q9/0"), 1, 1, 1714557600, OUT_INVALID, 2);
    ASSERT_EQ_INT(commit(s, &inv, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), 2);

    /* items that cannot be committed */
    struct kl_stored_item bad = a.it;
    bad.queue_id = KL_STR_NULL;
    ASSERT_FAILS(commit(s, &bad, &e_), "store.invalid");
    kl_store_close(s);
}

/* Deferred mode: items join one batch transaction that the next sync commits. */
static void test_deferred_batch(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    kl_store_set_deferred_sync(s, true);
    struct item_buf a, b, dup, c;
    make_item(&a, "q1/0", 1, false, 1000, 1714557600);
    make_item(&b, "q2/0", 2, false, 2000, 1714557600);
    uint64_t ba = 0, bb = 0, bd = 0, bc = 0;
    ASSERT_EQ_INT(kl_store_commit_item_batched(s, &a.it, &ba, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_INT(kl_store_commit_item_batched(s, &b.it, &bb, NULL), KL_COMMIT_DONE);
    ASSERT_TRUE(ba != 0 && ba == bb);
    /* readers see nothing of an open batch */
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 0);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), 0);
    /* a conflicting item inside the open batch is refused alone */
    make_item(&dup, "q3/0", 1, false, 1000, 1714557600);
    ASSERT_FAILS(kl_store_commit_item_batched(s, &dup.it, &bd, &e_), "store.conflict");
    ASSERT_EQ_U64(bd, ba);
    /* a replay of an item of the open batch is seen as done */
    ASSERT_EQ_INT(kl_store_commit_item_batched(s, &a.it, NULL, NULL), KL_COMMIT_ALREADY);
    ASSERT_OK(kl_store_sync_batches(s, ba, bb, &e_));
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 2);
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), 2);
    /* after a sync the next item opens a new batch; closing the store commits it */
    make_item(&c, "q4/0", 3, false, 3000, 1714557600);
    ASSERT_EQ_INT(kl_store_commit_item_batched(s, &c.it, &bc, NULL), KL_COMMIT_DONE);
    ASSERT_TRUE(bc > bb);
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 2);
    kl_store_close(s);
    s = open_store();
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 3);
    /* outside deferred mode an item commits at once and joins no batch */
    struct item_buf d;
    make_item(&d, "q5/0", 4, false, 4000, 1714557600);
    uint64_t bdd = 99;
    ASSERT_EQ_INT(kl_store_commit_item_batched(s, &d.it, &bdd, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_U64(bdd, 0);
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 4);
    kl_store_close(s);
}

static void test_outcome_aggregation(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    int64_t h0 = 1714557600; /* 2024-05-01T10:00:00Z, an hour boundary */
    struct item_buf a, b, c;
    make_item(&a, "a", 1, false, 1, h0 + 10);
    make_item(&b, "b", 2, false, 2, h0 + 3599);
    make_item(&c, "c", 3, false, 3, h0 + 3600);
    ASSERT_EQ_INT(commit(s, &a.it, NULL), 0);
    ASSERT_EQ_INT(commit(s, &b.it, NULL), 0);
    ASSERT_EQ_INT(commit(s, &c.it, NULL), 0);
    struct kl_stored_item inv;
    kl_stored_item_outcomes(&inv, KL_STR("d"), 1, 2, h0 + 20, OUT_INVALID, 2);
    ASSERT_EQ_INT(commit(s, &inv, NULL), 0);

    /* by hour and category */
    struct sums ss = sum(s, KL_GROUP_HOUR | KL_GROUP_CATEGORY, 0, 0);
    ASSERT_EQ_INT(ss.n, 6); /* hour 0: profile, indexed, duration; hour 1: the same */
    ASSERT_EQ_INT(ss.r[0].hour_s, h0);
    ASSERT_EQ_INT(ss.r[0].category, KL_CAT_PROFILE);
    ASSERT_EQ_U64(ss.r[0].quantity, 3); /* a, b accepted + d invalid */
    ASSERT_EQ_INT(ss.r[2].category, KL_CAT_PROFILE_DURATION);
    ASSERT_EQ_U64(ss.r[2].quantity, 500);
    ASSERT_EQ_INT(ss.r[3].hour_s, h0 + 3600);
    ASSERT_EQ_U64(ss.r[3].quantity, 1);
    ASSERT_EQ_INT(ss.r[0].outcome, -1); /* not grouped */
    ASSERT_EQ_STR(ss.reasons[0], "(null)");

    /* by outcome and reason */
    ss = sum(s, KL_GROUP_OUTCOME | KL_GROUP_REASON, 0, 0);
    ASSERT_EQ_INT(ss.n, 2);
    ASSERT_EQ_INT(ss.r[0].outcome, KL_OUTCOME_ACCEPTED);
    ASSERT_EQ_STR(ss.reasons[0], "");
    ASSERT_EQ_U64(ss.r[0].quantity, 3 * 252);
    ASSERT_EQ_INT(ss.r[1].outcome, KL_OUTCOME_INVALID);
    ASSERT_EQ_STR(ss.reasons[1], "profiling_invalid_json");
    ASSERT_EQ_U64(ss.r[1].quantity, 2);

    /* by project, and the time window (since rounds down to the hour) */
    ss = sum(s, KL_GROUP_PROJECT, 0, 0);
    ASSERT_EQ_INT(ss.n, 2);
    ASSERT_EQ_U64(ss.r[1].project_id, 2);
    ASSERT_EQ_U64(ss.r[1].quantity, 2);
    ss = sum(s, 0, h0 + 3600 + 5, 0);
    ASSERT_EQ_INT(ss.n, 1);
    ASSERT_EQ_U64(ss.r[0].quantity, 252);
    ss = sum(s, 0, 0, h0 + 3600);
    ASSERT_EQ_U64(ss.r[0].quantity, 2 * 252 + 2);
    ss = sum(s, 0, h0 + 7200, 0);
    ASSERT_EQ_INT(ss.n, 0);
    kl_store_close(s);
}

static void test_blob_round_trip(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    size_t n = 3u << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) /* compressible, not trivial */
        big[i] = "{\"frames\":[0123456789abcdef]}"[(i * 7 + i / 1000) % 30];
    struct kl_arena ar;
    kl_arena_init(&ar);
    char *out;
    size_t len;
    ASSERT_OK(kl_blob_put(s, KL_STR("1/1/00ff"), big, n, &e_));
    ASSERT_OK(kl_blob_get(s, KL_STR("1/1/00ff"), &ar, &out, &len, &e_));
    ASSERT_EQ_U64(len, n);
    ASSERT_TRUE(len == n && memcmp(out, big, n) == 0);
    ASSERT_TRUE(out[len] == 0 && out[len + KL_PADDING - 1] == 0);
    ASSERT_OK(kl_blob_put(s, KL_STR("1/1/00ff"), "", 0, &e_)); /* replace; empty is fine */
    ASSERT_OK(kl_blob_get(s, KL_STR("1/1/00ff"), &ar, &out, &len, &e_));
    ASSERT_EQ_U64(len, 0);
    ASSERT_FAILS(kl_blob_get(s, KL_STR("1/1/00fe"), &ar, &out, &len, &e_), "store.not_found");

    /* the container: size bound, truncation, flipped bits */
    char *enc;
    size_t enc_len;
    ASSERT_OK(kl_blob_encode(big, 4096, &enc, &enc_len, &e_));
    ASSERT_OK(kl_blob_decode(enc, enc_len, 4096, &ar, &out, &len, &e_));
    ASSERT_FAILS(kl_blob_decode(enc, enc_len, 4095, &ar, &out, &len, &e_), "store.corrupt");
    ASSERT_FAILS(kl_blob_decode(enc, enc_len - 1, 4096, &ar, &out, &len, &e_), "store.corrupt");
    ASSERT_FAILS(kl_blob_decode(enc, 10, 4096, &ar, &out, &len, &e_), "store.corrupt");
    enc[enc_len - 2] ^= 0x40; /* inside the content checksum */
    ASSERT_FAILS(kl_blob_decode(enc, enc_len, 4096, &ar, &out, &len, &e_), "store.corrupt");
    enc[0] = 'X';
    ASSERT_FAILS(kl_blob_decode(enc, enc_len, 4096, &ar, &out, &len, &e_), "store.corrupt");
    free(enc);
    kl_arena_release(&ar);
    free(big);
    kl_store_close(s);
}

static void test_blob_bad_keys(void)
{
    static const struct {
        const char *key;
        bool ok;
    } cases[] = {
        {"1/1/abcdef0123456789ABCDEF", true},
        {"1/2/3/4", true},
        {"ff", true},
        {"..", false},
        {"1/../2", false},
        {"../../etc/passwd", false},
        {"/1/2", false},
        {"1//2", false},
        {"1/2/", false},
        {"", false},
        {"1/2/3/4/5", false},
        {"1/2/a.b", false},
        {"1/2/a\\b", false},
        {"1/2/g", false},
        {"1/2/%2e%2e", false},
    };
    struct kl_store *s = open_store();
    if (!s)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_str k = kl_str_c(cases[i].key);
        if (kl_blob_key_valid(k) != cases[i].ok)
            KL_FAIL_("key '%s': expected %s", cases[i].key, cases[i].ok ? "valid" : "invalid");
        if (!cases[i].ok)
            ASSERT_FAILS(kl_blob_put(s, k, "x", 1, &e_), "store.bad_key");
    }
    char long_key[KL_BLOB_KEY_MAX + 2];
    memset(long_key, 'a', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    ASSERT_TRUE(!kl_blob_key_valid(kl_str_c(long_key)));
    ASSERT_TRUE(!kl_blob_key_valid(kl_str_make("12\0"
                                               "3",
                                               4)));

    /* an item whose ids would escape: refused before anything is written */
    struct item_buf a;
    make_item(&a, "q", 1, false, 1, 1);
    a.it.profile_id = KL_STR("../../../tmp/x");
    ASSERT_FAILS(commit(s, &a.it, &e_), "store.bad_key");
    ASSERT_EQ_INT(list(s, 0, 0, 0, 0).n, 0);
    kl_store_close(s);
}

static void test_reader_while_writer_open(void)
{
    struct kl_store *w = open_store();
    if (!w)
        return;
    struct item_buf a, b;
    make_item(&a, "q1", 1, false, 100, 1714557600);
    make_item(&b, "q2", 2, true, 200, 1714557600);
    ASSERT_EQ_INT(commit(w, &a.it, NULL), 0);
    /* a second store object on the same directory, as `kiln list` next to `kiln serve` */
    struct kl_store *r = open_store();
    if (!r) {
        kl_store_close(w);
        return;
    }
    ASSERT_EQ_INT(list(r, 0, 0, 0, 0).n, 1);
    ASSERT_EQ_INT(commit(w, &b.it, NULL), 0);
    struct rows rs = list(r, 0, 0, 0, 0);
    ASSERT_EQ_INT(rs.n, 2);
    ASSERT_EQ_STR(rs.ids[0], b.id);
    ASSERT_EQ_U64(category_total(r, KL_CAT_PROFILE_CHUNK), 0); /* make_item: chunk = 1 outcome */
    ASSERT_EQ_U64(category_total(r, KL_CAT_PROFILE), 2);
    /* and a write from the second object lands too (the CLI creating a project) */
    uint64_t pid;
    char k[33];
    ASSERT_OK(kl_store_bootstrap(r, k, &e_));
    ASSERT_OK(kl_store_project_create(r, KL_STR("from cli"), 1, &pid, &e_));
    struct projects ps = {0};
    ASSERT_OK(kl_store_project_list(w, collect_project, &ps, &e_));
    ASSERT_EQ_INT(ps.n, 2);
    kl_store_close(r);
    kl_store_close(w);
}

#define PER_THREAD 100

struct worker {
    struct kl_store *s;
    int first;
    int done, already, failed;
};

static void *work(void *arg)
{
    struct worker *wk = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct item_buf b;
        char q[32];
        int n = wk->first + i;
        snprintf(q, sizeof q, "q%d", n);
        make_item(&b, q, (unsigned)n, n % 3 == 0, n, 1714557600 + n * 60);
        struct kl_err err = KL_ERR_INIT;
        int r = kl_store_commit_item(wk->s, &b.it, &err);
        if (r == KL_COMMIT_DONE)
            wk->done++;
        else if (r == KL_COMMIT_ALREADY)
            wk->already++;
        else
            wk->failed++;
    }
    return NULL;
}

static void test_concurrent_commits(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    /* thread 0 commits q0..q99, thread 1 q50..q149: 50 ids race, each stored once */
    struct worker wk[2] = {{s, 0, 0, 0, 0}, {s, PER_THREAD / 2, 0, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &wk[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ_INT(wk[0].failed + wk[1].failed, 0);
    ASSERT_EQ_INT(wk[0].done + wk[1].done, PER_THREAD * 3 / 2);
    ASSERT_EQ_INT(wk[0].already + wk[1].already, PER_THREAD / 2);
    int total = 0;
    struct kl_profile_filter f = {0};
    struct rows rs = {0};
    ASSERT_OK(kl_store_list_profiles(s, &f, collect_row, &rs, &e_));
    total = rs.n;
    ASSERT_EQ_INT(total, PER_THREAD * 3 / 2);
    /* make_item gives profiles 3 outcomes (profile qty 1), chunks 1 (profile qty 1) */
    ASSERT_EQ_U64(category_total(s, KL_CAT_PROFILE), PER_THREAD * 3 / 2);
    kl_store_close(s);
}

/* The worker's path: pipeline result -> stored item -> commit -> blob readable as the
 * stored JSON. */
#define EVENT_ID "41fed0925670468bb0457f61a74688ec"
static const char PROFILE_JSON[] =
    "{\"event_id\":\"" EVENT_ID "\",\"timestamp\":\"2024-05-01T10:00:00.000Z\",\"platform\":"
    "\"node\",\"version\":\"1\",\"release\":\"app@1.0.0\",\"environment\":\"production\","
    "\"runtime\":{\"name\":\"node\",\"version\":\"v20.11.0\"},\"os\":{\"name\":\"linux\","
    "\"version\":\"6.1\"},\"device\":{\"architecture\":\"x64\"},\"profile\":{\"samples\":[{"
    "\"stack_id\":0,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"0\"},{\"stack_id\":0,"
    "\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"10000000\"}],\"frames\":[{\"function\":"
    "\"handler\",\"abs_path\":\"/app/index.js\",\"lineno\":12}],\"stacks\":[[0]],"
    "\"thread_metadata\":{\"0\":{\"name\":\"main\"}}},\"transaction\":{\"name\":\"GET /users\","
    "\"id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"trace_id\":"
    "\"4b25bc58f14243d8b208d1e22a054164\",\"active_thread_id\":\"0\"}}";

static const char CHUNK_JSON[] =
    "{\"chunk_id\":\"0432a0a4c25f4697bf9f0a2fcbe6a814\",\"profiler_id\":"
    "\"4d229f1d3807421ba62a5f8bc295d836\",\"platform\":\"node\",\"version\":\"2\",\"release\":"
    "\"app@1.0.0\",\"client_sdk\":{\"name\":\"sentry.javascript.node\",\"version\":\"8.9.2\"},"
    "\"profile\":{\"samples\":[{\"stack_id\":0,\"thread_id\":\"0\",\"timestamp\":1714557600.0},"
    "{\"stack_id\":0,\"thread_id\":\"0\",\"timestamp\":1714557602.5}],\"frames\":[{\"function\":"
    "\"tick\"}],\"stacks\":[[0]],\"thread_metadata\":{\"0\":{\"name\":\"main\"}}}}";

static void test_item_from_profile(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    struct kl_arena ar;
    kl_arena_init(&ar);
    size_t n = sizeof PROFILE_JSON - 1;
    char *in = kl_arena_calloc(&ar, n + KL_PADDING, 1);
    memcpy(in, PROFILE_JSON, n);
    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.received = 1714557601;
    struct kl_process_result res;
    if (kl_process_run(&ar, in, n, &o, &res) < 0) {
        KL_FAIL_("process: %s", res.err.msg);
        kl_arena_release(&ar);
        kl_store_close(s);
        return;
    }
    struct kl_stored_item it;
    ASSERT_OK(kl_stored_item_from_profile(&ar, res.profile, KL_STR("q1/0"), res.outcomes,
                                          res.n_outcomes, &it, &e_));
    ASSERT_EQ_INT(it.kind, KL_STORED_PROFILE);
    ASSERT_EQ_SLICE(it.profile_id, EVENT_ID);
    ASSERT_EQ_SLICE(it.transaction_name, "GET /users");
    ASSERT_EQ_SLICE(it.trace_id, "4b25bc58f14243d8b208d1e22a054164");
    ASSERT_EQ_SLICE(it.architecture, "x64");
    ASSERT_EQ_SLICE(it.version_name, "app@1.0.0");
    ASSERT_EQ_U64(it.duration_ns, 10000000);
    ASSERT_EQ_U64(it.sample_count, 2);
    ASSERT_EQ_INT(it.start_ns, 1714557600LL * 1000000000LL);
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_DONE);

    struct rows rs = list(s, 0, 0, 0, 0);
    ASSERT_EQ_INT(rs.n, 1);
    ASSERT_EQ_STR(rs.ids[0], EVENT_ID);
    char *out;
    size_t len;
    ASSERT_OK(kl_blob_get(s, kl_str_c(rs.keys[0]), &ar, &out, &len, &e_));
    ASSERT_EQ_U64(len, it.blob_len);
    ASSERT_TRUE(len == it.blob_len && memcmp(out, it.blob, len) == 0);
    ASSERT_TRUE(kl_str_contains(kl_str_make(out, len), "\"organization_id\":1"));

    /* unsampled: outcomes only */
    res.profile->sampled = false;
    ASSERT_OK(kl_stored_item_from_profile(&ar, res.profile, KL_STR("q2/0"), res.outcomes,
                                          res.n_outcomes, &it, &e_));
    ASSERT_EQ_INT(it.kind, KL_STORED_NONE);
    ASSERT_TRUE(it.blob == NULL);

    /* a continuous chunk */
    n = sizeof CHUNK_JSON - 1;
    in = kl_arena_calloc(&ar, n + KL_PADDING, 1);
    memcpy(in, CHUNK_JSON, n);
    if (kl_process_run(&ar, in, n, &o, &res) < 0) {
        KL_FAIL_("process chunk: %s", res.err.msg);
    } else {
        ASSERT_OK(kl_stored_item_from_profile(&ar, res.profile, KL_STR("q3/0"), res.outcomes,
                                              res.n_outcomes, &it, &e_));
        ASSERT_EQ_INT(it.kind, KL_STORED_CHUNK);
        ASSERT_EQ_SLICE(it.chunk_id, "0432a0a4c25f4697bf9f0a2fcbe6a814");
        ASSERT_EQ_SLICE(it.sdk_name, "sentry.javascript.node");
        ASSERT_EQ_INT(it.start_ns, 1714557600LL * 1000000000LL);
        ASSERT_EQ_U64(it.duration_ns, 2500000000ULL);
        ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_DONE);
        rs = list(s, 0, 0, 0, 0); /* same start as the profile: profiles sort first */
        ASSERT_EQ_INT(rs.n, 2);
        ASSERT_EQ_STR(rs.keys[1], "1/1/4d229f1d3807421ba62a5f8bc295d836/"
                                  "0432a0a4c25f4697bf9f0a2fcbe6a814");
        ASSERT_OK(kl_blob_get(s, kl_str_c(rs.keys[1]), &ar, &out, &len, &e_));
        ASSERT_TRUE(kl_str_contains(kl_str_make(out, len), "\"profiler_id\""));
    }
    kl_arena_release(&ar);
    kl_store_close(s);
}

/* ---- span links (ingest/span.h) ---- */

struct span_rows {
    int n;
    char span_ids[8][17];
    char thread[8][16];
    int64_t start[8];
};

static int collect_span(void *ctx, const struct kl_stored_span *r)
{
    struct span_rows *c = ctx;
    if (c->n < 8) {
        snprintf(c->span_ids[c->n], 17, "%.*s", (int)r->span_id.len, r->span_id.ptr);
        snprintf(c->thread[c->n], 16, "%.*s", (int)r->thread_id.len,
                 r->thread_id.ptr ? r->thread_id.ptr : "");
        c->start[c->n] = r->start_ns;
    }
    c->n++;
    return 0;
}

static struct span_rows spans_of(struct kl_store *s, const struct kl_span_filter *f)
{
    struct span_rows c;
    memset(&c, 0, sizeof c);
    struct kl_err err = KL_ERR_INIT;
    if (kl_store_list_spans(s, f, collect_span, &c, &err) < 0)
        KL_FAIL_("list_spans: %s", err.msg);
    return c;
}

#define PROFILER_A "0123456789abcdef0123456789abcdef"
#define PROFILER_B "fedcba9876543210fedcba9876543210"
#define TRACE "11112222333344445555666677778888"

static void span_at(struct kl_stored_span *x, const char *span_id, const char *profiler,
                    int64_t start_ns)
{
    memset(x, 0, sizeof *x);
    x->trace_id = kl_str_c(TRACE);
    x->span_id = kl_str_c(span_id);
    x->profiler_id = kl_str_c(profiler);
    x->segment_id = kl_str_c("aaaaaaaaaaaaaaaa");
    x->thread_id = kl_str_c("0");
    x->start_ns = start_ns;
    x->end_ns = start_ns + 1000;
}

static void test_span_links_exactly_once(void)
{
    struct kl_store *s = open_store();
    if (!s)
        return;
    struct kl_stored_span sp[3];
    span_at(&sp[0], "aaaaaaaaaaaaaaaa", PROFILER_A, 3000);
    sp[0].is_segment = true;
    span_at(&sp[1], "bbbbbbbbbbbbbbbb", PROFILER_A, 2000);
    span_at(&sp[2], "cccccccccccccccc", PROFILER_B, 1000);
    struct kl_stored_item it;
    kl_stored_item_outcomes(&it, KL_STR("7/1"), 1, 1, 1714557600, NULL, 0);
    it.spans = sp;
    it.n_spans = 3;
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_DONE);
    /* a replay of the same queue item (kill -9 before the queue retired it) is a no-op */
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_ALREADY);
    kl_store_close(s);
    s = open_store();
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_ALREADY);
    struct kl_span_filter f = {0};
    struct span_rows r = spans_of(s, &f);
    ASSERT_EQ_INT(r.n, 3);
    ASSERT_EQ_STR(r.span_ids[0], "aaaaaaaaaaaaaaaa"); /* newest start first */
    ASSERT_EQ_STR(r.span_ids[2], "cccccccccccccccc");
    ASSERT_EQ_STR(r.thread[1], "0");
    /* the same spans from a resent envelope (another queue id): stored once */
    kl_stored_item_outcomes(&it, KL_STR("8/1"), 1, 1, 1714557600, NULL, 0);
    it.spans = sp;
    it.n_spans = 3;
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_DONE);
    ASSERT_EQ_INT(spans_of(s, &f).n, 3);
    uint64_t max = 0;
    ASSERT_OK(kl_store_max_queue_record(s, &max, &e_));
    ASSERT_EQ_U64(max, 8);

    /* filters: profiler, time (on the start), project, organization, page */
    f.profiler_id = kl_str_c(PROFILER_A);
    ASSERT_EQ_INT(spans_of(s, &f).n, 2);
    f.since_ns = 2000;
    f.until_ns = 3000;
    r = spans_of(s, &f);
    ASSERT_EQ_INT(r.n, 1);
    ASSERT_EQ_STR(r.span_ids[0], "bbbbbbbbbbbbbbbb");
    memset(&f, 0, sizeof f);
    f.project_id = 2;
    ASSERT_EQ_INT(spans_of(s, &f).n, 0);
    f.project_id = 1;
    f.organization_id = 1;
    f.limit = 1;
    f.offset = 1;
    r = spans_of(s, &f);
    ASSERT_EQ_INT(r.n, 1);
    ASSERT_EQ_STR(r.span_ids[0], "bbbbbbbbbbbbbbbb");
    f.limit = 0;
    f.offset = 0;
    f.segment_name = kl_str_c("GET /users");
    ASSERT_EQ_INT(spans_of(s, &f).n, 0);

    /* a span without its ids is refused before the database sees it */
    sp[1].profiler_id = KL_STR_NULL;
    kl_stored_item_outcomes(&it, KL_STR("9/1"), 1, 1, 1714557600, NULL, 0);
    it.spans = sp;
    it.n_spans = 3;
    ASSERT_FAILS(commit(s, &it, &e_), "store.invalid");
    kl_store_close(s);
}

/* A database made by schema version 1 (no span_links) gains the table when opened. */
static void test_span_links_migration(void)
{
    if (strcmp(B->name, "sqlite") != 0)
        return; /* the SQLite file's own schema version */
    struct kl_store *s = open_store();
    if (!s)
        return;
    kl_store_close(s);
    char path[300];
    snprintf(path, sizeof path, "%s/kiln.db", dir);
    sqlite3 *db;
    ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ_INT(
        sqlite3_exec(db, "DROP TABLE span_links; PRAGMA user_version = 1", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    s = open_store();
    if (!s)
        return;
    struct kl_stored_span sp;
    span_at(&sp, "aaaaaaaaaaaaaaaa", PROFILER_A, 5);
    struct kl_stored_item it;
    kl_stored_item_outcomes(&it, KL_STR("1/0"), 1, 1, 1714557600, NULL, 0);
    it.spans = &sp;
    it.n_spans = 1;
    ASSERT_EQ_INT(commit(s, &it, NULL), KL_COMMIT_DONE);
    struct kl_span_filter f = {0};
    ASSERT_EQ_INT(spans_of(s, &f).n, 1);
    kl_store_close(s);
    ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ_INT(sqlite3_column_int(st, 0), KL_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

struct named_test {
    const char *name;
    void (*fn)(void);
};

static const struct named_test tests[] = {
    {"bootstrap_idempotent", test_bootstrap_idempotent},
    {"projects", test_projects},
    {"key_lookup", test_key_lookup},
    {"commit_then_list", test_commit_then_list},
    {"replay_and_conflict", test_replay_and_conflict},
    {"deferred_batch", test_deferred_batch},
    {"outcome_aggregation", test_outcome_aggregation},
    {"blob_round_trip", test_blob_round_trip},
    {"blob_bad_keys", test_blob_bad_keys},
    {"reader_while_writer_open", test_reader_while_writer_open},
    {"concurrent_commits", test_concurrent_commits},
    {"item_from_profile", test_item_from_profile},
    {"span_links_exactly_once", test_span_links_exactly_once},
    {"span_links_migration", test_span_links_migration},
};

int main(void)
{
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        B = &backends[b];
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
            fresh_dir();
            kl_test_cur_failed = 0;
            tests[i].fn();
            remove_dir();
            kl_test_count++;
            if (kl_test_cur_failed)
                kl_test_failures++;
            printf("%s %d - %s: %s\n", kl_test_cur_failed ? "not ok" : "ok", kl_test_count, B->name,
                   tests[i].name);
        }
    }
    KL_TEST_DONE();
}
