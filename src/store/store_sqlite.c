/* store_sqlite.c - struct kl_store_ops on SQLite: DIR/kiln.db in WAL mode (see store.h)
 *
 * Connections and threads: one writer connection behind a mutex, one reader connection
 * behind another. SQLite allows one writer at a time whatever we do; serializing our own
 * writers on a mutex hands the lock over fairly, where connection-per-thread with
 * busy_timeout lets one thread re-take the lock while the others sleep in SQLite's busy
 * handler (1, 2, 5 ... 100 ms steps). Measured roughly here (2 threads x 2000 one-row
 * commits, WAL, synchronous=FULL, ext4/virtio, 4 runs): throughput the same within noise
 * (mutex 4.5-5.7k commits/s, per-thread 4.3-5.9k), but the slowest commit took 4-11 ms with
 * the mutex and 430-530 ms per-thread (a starved worker), and per-thread has SQLITE_BUSY to
 * handle. The heavy work of a commit (zstd, the blob's write and fsync) happens before the
 * lock, in parallel. The single writer also leaves room for group commit (several items per
 * transaction) later. busy_timeout is still set, for other processes: a CLI writing while
 * the server runs.
 * Reads (lists, sums, key misses) use their own connection so they never wait for a
 * commit: WAL readers see the last committed snapshot while the writer works.
 *
 * Durability: synchronous=FULL, so a commit is on disk when kl_store_commit_item returns
 * (WAL + NORMAL may roll back the last commits on power loss, which would lose items the
 * queue already dropped); dependency-bench §5 measured FULL at ~90% of NORMAL here. In
 * deferred mode (the server) items share one open batch transaction, each in a savepoint,
 * committed with synchronous=NORMAL by commit_batch and made durable by the caller's
 * syncfs (store.h). The writer ops that open their own transaction end the batch first.
 * Schema: created in one BEGIN IMMEDIATE transaction when user_version is 0, so two
 * processes opening a fresh directory at once do not race.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/time.h"
#include "store/store.h"

#define BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
    "CREATE TABLE organizations (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  slug TEXT NOT NULL UNIQUE,\n"
    "  name TEXT NOT NULL,\n"
    "  created_s INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE projects (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  organization_id INTEGER NOT NULL REFERENCES organizations(id),\n"
    "  slug TEXT NOT NULL,\n"
    "  name TEXT NOT NULL,\n"
    "  created_s INTEGER NOT NULL,\n"
    "  UNIQUE (organization_id, slug)\n"
    ");\n"
    "CREATE TABLE project_keys (\n"
    "  public_key TEXT PRIMARY KEY,\n"
    "  project_id INTEGER NOT NULL REFERENCES projects(id),\n"
    "  active INTEGER NOT NULL DEFAULT 1,\n"
    "  created_s INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX project_keys_by_project ON project_keys(project_id);\n"
    "CREATE TABLE processed_items (\n"
    "  queue_id TEXT PRIMARY KEY,\n"
    "  committed_s INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE profiles (\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  profile_id TEXT NOT NULL,\n"
    "  platform TEXT,\n"
    "  transaction_name TEXT,\n"
    "  release TEXT,\n"
    "  environment TEXT,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  duration_ns INTEGER NOT NULL,\n"
    "  sample_count INTEGER NOT NULL,\n"
    "  device_locale TEXT,\n"
    "  device_manufacturer TEXT,\n"
    "  device_model TEXT,\n"
    "  device_classification TEXT,\n"
    "  architecture TEXT,\n"
    "  os_name TEXT,\n"
    "  os_version TEXT,\n"
    "  os_build_number TEXT,\n"
    "  android_api_level INTEGER,\n"
    "  sdk_name TEXT,\n"
    "  sdk_version TEXT,\n"
    "  version_code TEXT,\n"
    "  version_name TEXT,\n"
    "  trace_id TEXT,\n"
    "  transaction_id TEXT,\n"
    "  received_s INTEGER NOT NULL,\n"
    "  retention_days INTEGER NOT NULL,\n"
    "  blob_key TEXT NOT NULL,\n"
    "  queue_id TEXT NOT NULL,\n"
    "  PRIMARY KEY (organization_id, project_id, profile_id)\n"
    ");\n"
    "CREATE INDEX profiles_by_start ON profiles(start_ns);\n"
    "CREATE INDEX profiles_by_project ON profiles(project_id, start_ns);\n"
    "CREATE TABLE chunks (\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  profiler_id TEXT NOT NULL,\n"
    "  chunk_id TEXT NOT NULL,\n"
    "  platform TEXT,\n"
    "  release TEXT,\n"
    "  environment TEXT,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  duration_ns INTEGER NOT NULL,\n"
    "  sample_count INTEGER NOT NULL,\n"
    "  sdk_name TEXT,\n"
    "  sdk_version TEXT,\n"
    "  received_s INTEGER NOT NULL,\n"
    "  retention_days INTEGER NOT NULL,\n"
    "  blob_key TEXT NOT NULL,\n"
    "  queue_id TEXT NOT NULL,\n"
    "  PRIMARY KEY (organization_id, project_id, profiler_id, chunk_id)\n"
    ");\n"
    "CREATE INDEX chunks_by_start ON chunks(start_ns);\n"
    "CREATE INDEX chunks_by_project ON chunks(project_id, start_ns);\n"
    "CREATE TABLE outcomes_hourly (\n"
    "  hour_s INTEGER NOT NULL,\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  outcome INTEGER NOT NULL,\n"
    "  reason TEXT NOT NULL,\n"
    "  category INTEGER NOT NULL,\n"
    "  quantity INTEGER NOT NULL,\n"
    "  PRIMARY KEY (hour_s, organization_id, project_id, outcome, reason, category)\n"
    ") WITHOUT ROWID;\n"
    /* read side: one row per stored profile or chunk with the columns queries filter on,
     * the compact call tree (calltree/calltree.h), its functions and occurrences */
    "CREATE TABLE calltrees (\n"
    "  kind INTEGER NOT NULL,\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  item_id TEXT NOT NULL,\n"
    "  profiler_id TEXT,\n"
    "  chunk_id TEXT,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  duration_ns INTEGER NOT NULL,\n"
    "  platform TEXT,\n"
    "  transaction_name TEXT,\n"
    "  release TEXT,\n"
    "  environment TEXT,\n"
    "  device_classification TEXT,\n"
    "  tree BLOB NOT NULL,\n"
    "  UNIQUE (organization_id, project_id, kind, item_id)\n"
    ");\n"
    "CREATE INDEX calltrees_by_start ON calltrees(project_id, start_ns);\n"
    "CREATE TABLE functions (\n"
    "  kind INTEGER NOT NULL,\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  item_id TEXT NOT NULL,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  platform TEXT,\n"
    "  transaction_name TEXT,\n"
    "  release TEXT,\n"
    "  environment TEXT,\n"
    "  device_classification TEXT,\n"
    "  fingerprint INTEGER NOT NULL,\n"
    "  function TEXT NOT NULL,\n"
    "  package TEXT NOT NULL,\n"
    "  in_app INTEGER NOT NULL,\n"
    "  thread_id TEXT,\n"
    "  sum_self_ns INTEGER NOT NULL,\n"
    "  sample_count INTEGER NOT NULL,\n"
    "  max_self_ns INTEGER NOT NULL,\n"
    "  self_times BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX functions_by_fingerprint ON functions(project_id, fingerprint, start_ns);\n"
    "CREATE INDEX functions_by_start ON functions(project_id, start_ns);\n"
    "CREATE TABLE occurrences (\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  profile_id TEXT NOT NULL,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  platform TEXT,\n"
    "  transaction_name TEXT,\n"
    "  release TEXT,\n"
    "  environment TEXT,\n"
    "  device_classification TEXT,\n"
    "  type INTEGER NOT NULL,\n"
    "  category TEXT NOT NULL,\n"
    "  title TEXT NOT NULL,\n"
    "  function TEXT,\n"
    "  package TEXT,\n"
    "  fingerprint TEXT,\n"
    "  duration_ns INTEGER NOT NULL,\n"
    "  sample_count INTEGER NOT NULL,\n"
    "  body TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX occurrences_by_start ON occurrences(project_id, start_ns);\n";

/* Schema version 2: spans linked to continuous-profiling chunks (ingest/span.h). Run after
 * schema_sql on a new database, alone on a version 1 one. */
static const char schema_v2_sql[] =
    "CREATE TABLE span_links (\n"
    "  organization_id INTEGER NOT NULL,\n"
    "  project_id INTEGER NOT NULL,\n"
    "  trace_id TEXT NOT NULL,\n"
    "  span_id TEXT NOT NULL,\n"
    "  parent_span_id TEXT,\n"
    "  segment_id TEXT,\n"
    "  is_segment INTEGER NOT NULL,\n"
    "  name TEXT,\n"
    "  segment_name TEXT,\n"
    "  profiler_id TEXT NOT NULL,\n"
    "  thread_id TEXT,\n"
    "  thread_name TEXT,\n"
    "  environment TEXT,\n"
    "  release TEXT,\n"
    "  start_ns INTEGER NOT NULL,\n"
    "  end_ns INTEGER NOT NULL,\n"
    "  queue_id TEXT NOT NULL,\n"
    "  PRIMARY KEY (organization_id, project_id, trace_id, span_id)\n"
    ");\n"
    "CREATE INDEX span_links_by_profiler ON span_links(project_id, profiler_id, start_ns);\n"
    "CREATE INDEX span_links_by_start ON span_links(project_id, start_ns);\n";

static const char sql_span[] =
    "INSERT INTO span_links(organization_id, project_id, trace_id, span_id, parent_span_id, "
    "segment_id, is_segment, name, segment_name, profiler_id, thread_id, thread_name, "
    "environment, release, start_ns, end_ns, queue_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
    "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT DO NOTHING";

static const char sql_calltree[] =
    "INSERT INTO calltrees(kind, organization_id, project_id, item_id, profiler_id, chunk_id, "
    "start_ns, duration_ns, platform, transaction_name, release, environment, "
    "device_classification, tree) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14)";
static const char sql_function[] =
    "INSERT INTO functions(kind, organization_id, project_id, item_id, start_ns, platform, "
    "transaction_name, release, environment, device_classification, fingerprint, function, "
    "package, in_app, thread_id, sum_self_ns, sample_count, max_self_ns, self_times) VALUES "
    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
static const char sql_occurrence[] =
    "INSERT INTO occurrences(organization_id, project_id, profile_id, start_ns, platform, "
    "transaction_name, release, environment, device_classification, type, category, title, "
    "function, package, fingerprint, duration_ns, sample_count, body) VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

static const char sql_processed[] =
    "INSERT OR IGNORE INTO processed_items(queue_id, committed_s) VALUES (?1, ?2)";
static const char sql_profile[] =
    "INSERT INTO profiles(organization_id, project_id, profile_id, platform, transaction_name, "
    "release, environment, start_ns, duration_ns, sample_count, device_locale, "
    "device_manufacturer, device_model, device_classification, architecture, os_name, "
    "os_version, os_build_number, android_api_level, sdk_name, sdk_version, version_code, "
    "version_name, trace_id, transaction_id, received_s, retention_days, blob_key, queue_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29) ON CONFLICT DO NOTHING";
static const char sql_chunk[] =
    "INSERT INTO chunks(organization_id, project_id, profiler_id, chunk_id, platform, release, "
    "environment, start_ns, duration_ns, sample_count, sdk_name, sdk_version, received_s, "
    "retention_days, blob_key, queue_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16) ON CONFLICT DO NOTHING";
static const char sql_outcome[] =
    "INSERT INTO outcomes_hourly(hour_s, organization_id, project_id, outcome, reason, "
    "category, quantity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO UPDATE SET "
    "quantity = quantity + excluded.quantity";
static const char sql_key_lookup[] =
    "SELECT k.project_id, p.organization_id, k.active FROM project_keys k "
    "JOIN projects p ON p.id = k.project_id WHERE k.public_key = ?1";

#define BATCH_FAILED_RING 64

struct sq {
    char *path;
    sqlite3 *w; /* writer, under wmu */
    sqlite3 *r; /* reader, under rmu */
    pthread_mutex_t wmu, rmu;
    sqlite3_stmt *st_processed, *st_profile, *st_chunk, *st_outcome; /* on w */
    sqlite3_stmt *st_calltree, *st_function, *st_occurrence;         /* on w */
    sqlite3_stmt *st_key_lookup;                                     /* on r */
    sqlite3_stmt *st_span;                                           /* on w */
    /* deferred mode (store.h): the shared batch transaction, under wmu */
    bool deferred;
    bool batch_open;
    uint64_t batch_id;                  /* the open batch, or the last one */
    uint64_t failed[BATCH_FAILED_RING]; /* ids of batches whose COMMIT failed */
    uint64_t n_failed;                  /* ever; failed[n % ring] is the next slot */
};

/* ---- helpers ---- */

static int db_err(struct kl_err *err, sqlite3 *db, int rc, const char *what)
{
    enum kl_reason r;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        r = KL_R_STORE_BUSY;
        break;
    case SQLITE_FULL:
        r = KL_R_STORE_FULL;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        r = KL_R_STORE_CORRUPT;
        break;
    case SQLITE_CONSTRAINT:
        r = KL_R_STORE_CONFLICT;
        break;
    default:
        r = KL_R_STORE_IO;
        break;
    }
    return kl_err_set(err, r, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int exec(sqlite3 *db, const char *sql, struct kl_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_err(err, db, rc, sql);
}

static void rollback(sqlite3 *db)
{
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commit the open batch transaction (deferred mode), if any. Under wmu. A failed COMMIT
 * rolls the whole batch back and remembers its id for batch_failed. */
static int end_batch_locked(struct sq *q, struct kl_err *err)
{
    if (!q->batch_open)
        return 0;
    q->batch_open = false;
    if (exec(q->w, "COMMIT", err) == 0)
        return 0;
    rollback(q->w);
    q->failed[q->n_failed % BATCH_FAILED_RING] = q->batch_id;
    q->n_failed++;
    return -1;
}

static void bind_str(sqlite3_stmt *st, int i, struct kl_str s)
{
    if (s.ptr)
        sqlite3_bind_text(st, i, s.ptr, (int)s.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int64_t u64_col(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Step a statement that returns no rows, then reset it. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct kl_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : db_err(err, db, rc, what);
}

static struct kl_str col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    if (!p)
        return KL_STR_NULL;
    return kl_str_make((const char *)p, (size_t)sqlite3_column_bytes(st, i));
}

static int64_t now_s(void)
{
    return kl_now_ns() / 1000000000LL;
}

static int open_conn(const char *path, sqlite3 **out, struct kl_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        db_err(err, db, rc, "cannot open database");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    *out = db;
    return 0;
}

static int user_version(sqlite3 *db, int *v, struct kl_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(err, db, rc, "cannot read the schema version");
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_err(err, db, rc, "cannot read the schema version");
}

static int migrate(sqlite3 *db, struct kl_err *err)
{
    int v;
    if (user_version(db, &v, err) < 0)
        return -1;
    if (v == KL_STORE_SCHEMA_VERSION)
        return 0;
    if (v > KL_STORE_SCHEMA_VERSION)
        return kl_err_set(err, KL_R_STORE_SCHEMA,
                          "database schema version %d is newer than this kiln's (%d)", v,
                          KL_STORE_SCHEMA_VERSION);
    if (exec(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    if (user_version(db, &v, err) < 0)
        goto fail;
    if (v < KL_STORE_SCHEMA_VERSION) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", KL_STORE_SCHEMA_VERSION);
        if ((v == 0 && exec(db, schema_sql, err) < 0) ||
            (v < 2 && exec(db, schema_v2_sql, err) < 0) || exec(db, pragma, err) < 0)
            goto fail;
    }
    return exec(db, "COMMIT", err);
fail:
    rollback(db);
    return -1;
}

static void sq_close(void *impl)
{
    struct sq *q = impl;
    if (!q)
        return;
    struct kl_err err = KL_ERR_INIT;
    end_batch_locked(q, &err); /* no call is in flight: nothing else holds wmu */
    sqlite3_finalize(q->st_processed);
    sqlite3_finalize(q->st_profile);
    sqlite3_finalize(q->st_chunk);
    sqlite3_finalize(q->st_outcome);
    sqlite3_finalize(q->st_calltree);
    sqlite3_finalize(q->st_function);
    sqlite3_finalize(q->st_occurrence);
    sqlite3_finalize(q->st_key_lookup);
    sqlite3_finalize(q->st_span);
    sqlite3_close(q->w);
    sqlite3_close(q->r);
    pthread_mutex_destroy(&q->wmu);
    pthread_mutex_destroy(&q->rmu);
    free(q->path);
    free(q);
}

/* ---- organizations, projects, keys ---- */

static int insert_key(struct sq *q, uint64_t project_id, const char *key, struct kl_err *err)
{
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(q->w,
                           "INSERT INTO project_keys(public_key, project_id, active, created_s) "
                           "VALUES (?1, ?2, 1, ?3)",
                           -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(err, q->w, rc, "cannot prepare key insert");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, u64_col(project_id));
    sqlite3_bind_int64(st, 3, now_s());
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(err, q->w, rc, "cannot insert key");
}

/* The first active key of a project into out; 0 found, 1 none, -1 error. */
static int first_key(sqlite3 *db, uint64_t project_id, char out[KL_STORE_KEY_LEN + 1],
                     struct kl_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT public_key FROM project_keys WHERE project_id = ?1 AND "
                                "active ORDER BY created_s, public_key LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(err, db, rc, "cannot prepare key query");
    sqlite3_bind_int64(st, 1, u64_col(project_id));
    rc = sqlite3_step(st);
    int r = 1;
    if (rc == SQLITE_ROW) {
        struct kl_str k = col_str(st, 0);
        size_t n = k.len < KL_STORE_KEY_LEN ? k.len : KL_STORE_KEY_LEN;
        memcpy(out, k.ptr, n);
        out[n] = '\0';
        r = 0;
    } else if (rc != SQLITE_DONE) {
        r = db_err(err, db, rc, "cannot read keys");
    }
    sqlite3_finalize(st);
    return r;
}

static int count_rows(sqlite3 *db, const char *sql, int64_t arg, int64_t *n, struct kl_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(err, db, rc, "cannot prepare query");
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, arg);
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_err(err, db, rc, "cannot run query");
}

static int sq_bootstrap(void *impl, char key_out[KL_STORE_KEY_LEN + 1], struct kl_err *err)
{
    struct sq *q = impl;
    int64_t n;
    pthread_mutex_lock(&q->wmu);
    if (end_batch_locked(q, err) < 0 || exec(q->w, "BEGIN IMMEDIATE", err) < 0)
        goto out_unlock;
    if (count_rows(q->w, "SELECT count(*) FROM organizations", 0, &n, err) < 0)
        goto out_rollback;
    if (n == 0) {
        char sql[256];
        int64_t t = now_s();
        snprintf(sql, sizeof sql,
                 "INSERT INTO organizations(id, slug, name, created_s) VALUES "
                 "(1, 'default', 'default', %lld); INSERT INTO projects(id, organization_id, "
                 "slug, name, created_s) VALUES (1, 1, 'default', 'default', %lld)",
                 (long long)t, (long long)t);
        if (exec(q->w, sql, err) < 0)
            goto out_rollback;
    }
    if (count_rows(q->w, "SELECT count(*) FROM projects WHERE id = 1", 0, &n, err) < 0)
        goto out_rollback;
    if (n == 0) {
        kl_err_set(err, KL_R_STORE_NOT_FOUND, "the default project (id 1) does not exist");
        goto out_rollback;
    }
    int r = first_key(q->w, 1, key_out, err);
    if (r < 0)
        goto out_rollback;
    if (r == 1) {
        kl__store_random_key(key_out);
        if (insert_key(q, 1, key_out, err) < 0)
            goto out_rollback;
    }
    if (exec(q->w, "COMMIT", err) < 0)
        goto out_rollback;
    pthread_mutex_unlock(&q->wmu);
    return 0;
out_rollback:
    rollback(q->w);
out_unlock:
    pthread_mutex_unlock(&q->wmu);
    key_out[0] = '\0';
    return -1;
}

static int sq_project_create(void *impl, struct kl_str name, struct kl_str slug, uint64_t org_id,
                             const char *key, uint64_t *project_id, struct kl_err *err)
{
    struct sq *q = impl;
    int64_t n;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&q->wmu);
    if (end_batch_locked(q, err) < 0 || exec(q->w, "BEGIN IMMEDIATE", err) < 0)
        goto out_unlock;
    if (count_rows(q->w, "SELECT count(*) FROM organizations WHERE id = ?1", u64_col(org_id), &n,
                   err) < 0)
        goto out_rollback;
    if (n == 0) {
        kl_err_set(err, KL_R_STORE_NOT_FOUND, "no organization %llu", (unsigned long long)org_id);
        goto out_rollback;
    }
    int rc = sqlite3_prepare_v2(q->w,
                                "INSERT INTO projects(organization_id, slug, name, created_s) "
                                "VALUES (?1, ?2, ?3, ?4)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        db_err(err, q->w, rc, "cannot prepare project insert");
        goto out_rollback;
    }
    sqlite3_bind_int64(st, 1, u64_col(org_id));
    bind_str(st, 2, slug);
    bind_str(st, 3, name.ptr ? name : KL_STR(""));
    sqlite3_bind_int64(st, 4, now_s());
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
            kl_err_set(err, KL_R_STORE_CONFLICT, "a project with slug '%.*s' exists", (int)slug.len,
                       slug.ptr);
        else
            db_err(err, q->w, rc, "cannot insert project");
        goto out_rollback;
    }
    *project_id = (uint64_t)sqlite3_last_insert_rowid(q->w);
    if (insert_key(q, *project_id, key, err) < 0 || exec(q->w, "COMMIT", err) < 0)
        goto out_rollback;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->wmu);
    return 0;
out_rollback:
    sqlite3_finalize(st);
    rollback(q->w);
out_unlock:
    pthread_mutex_unlock(&q->wmu);
    *project_id = 0;
    return -1;
}

static int sq_key_create(void *impl, uint64_t project_id, const char *key, struct kl_err *err)
{
    struct sq *q = impl;
    int64_t n;
    pthread_mutex_lock(&q->wmu);
    int r = count_rows(q->w, "SELECT count(*) FROM projects WHERE id = ?1", u64_col(project_id), &n,
                       err);
    if (r == 0 && n == 0)
        r = kl_err_set(err, KL_R_STORE_NOT_FOUND, "no project %llu",
                       (unsigned long long)project_id);
    if (r == 0)
        r = insert_key(q, project_id, key, err);
    pthread_mutex_unlock(&q->wmu);
    return r;
}

static const char sql_projects[] =
    "SELECT p.id, p.organization_id, o.slug, p.slug, p.name, p.created_s FROM projects p "
    "JOIN organizations o ON o.id = p.organization_id";

static void project_row(sqlite3_stmt *st, struct kl_project *p)
{
    p->id = (uint64_t)sqlite3_column_int64(st, 0);
    p->organization_id = (uint64_t)sqlite3_column_int64(st, 1);
    p->org_slug = col_str(st, 2);
    p->slug = col_str(st, 3);
    p->name = col_str(st, 4);
    p->created_s = sqlite3_column_int64(st, 5);
}

/* Run a prepared read statement on the reader connection, calling row(st) per row until it
 * returns non-zero. Finalizes st. The caller holds rmu. */
static int each_row(struct sq *q, sqlite3_stmt *st, int (*row)(sqlite3_stmt *, void *), void *arg,
                    struct kl_err *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (row(st, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(err, q->r, rc, "cannot read");
}

struct cb {
    void *fn;
    void *ctx;
};

static int project_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_project p;
    project_row(st, &p);
    return ((kl_project_fn *)c->fn)(c->ctx, &p);
}

static int sq_project_list(void *impl, kl_project_fn *fn, void *ctx, struct kl_err *err)
{
    struct sq *q = impl;
    char sql[sizeof sql_projects + 32];
    snprintf(sql, sizeof sql, "%s ORDER BY p.id", sql_projects);
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r, sql, -1, &st, NULL);
    int r = rc == SQLITE_OK ? each_row(q, st, project_cb, &(struct cb){(void *)fn, ctx}, err)
                            : db_err(err, q->r, rc, "cannot prepare project list");
    pthread_mutex_unlock(&q->rmu);
    return r;
}

static int key_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_key k = {
        .public_key = col_str(st, 0),
        .project_id = (uint64_t)sqlite3_column_int64(st, 1),
        .active = sqlite3_column_int(st, 2) != 0,
        .created_s = sqlite3_column_int64(st, 3),
    };
    return ((kl_key_fn *)c->fn)(c->ctx, &k);
}

static int sq_project_keys(void *impl, uint64_t project_id, kl_key_fn *fn, void *ctx,
                           struct kl_err *err)
{
    struct sq *q = impl;
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r,
                                "SELECT public_key, project_id, active, created_s FROM "
                                "project_keys WHERE project_id = ?1 ORDER BY created_s, "
                                "public_key",
                                -1, &st, NULL);
    int r;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, u64_col(project_id));
        r = each_row(q, st, key_cb, &(struct cb){(void *)fn, ctx}, err);
    } else {
        r = db_err(err, q->r, rc, "cannot prepare key list");
    }
    pthread_mutex_unlock(&q->rmu);
    return r;
}

static int sq_key_lookup(void *impl, struct kl_str public_key, uint64_t *project_id,
                         uint64_t *org_id, bool *active, struct kl_err *err)
{
    struct sq *q = impl;
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st = q->st_key_lookup;
    bind_str(st, 1, public_key);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *project_id = (uint64_t)sqlite3_column_int64(st, 0);
        *org_id = (uint64_t)sqlite3_column_int64(st, 1);
        *active = sqlite3_column_int(st, 2) != 0;
    } else if (rc == SQLITE_DONE) {
        r = kl_err_set(err, KL_R_STORE_NOT_FOUND, "unknown key");
    } else {
        r = db_err(err, q->r, rc, "cannot look up key");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&q->rmu);
    return r;
}

static int find_cb(sqlite3_stmt *st, void *arg)
{
    struct kl_project *p = arg;
    project_row(st, p);
    p->org_slug = p->slug = p->name = KL_STR_NULL; /* they die with the statement */
    return 1;
}

static int sq_project_find_by_slug(void *impl, struct kl_str org_slug, struct kl_str project_slug,
                                   struct kl_project *out, struct kl_err *err)
{
    struct sq *q = impl;
    char sql[sizeof sql_projects + 64];
    snprintf(sql, sizeof sql, "%s WHERE o.slug = ?1 AND p.slug = ?2", sql_projects);
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r, sql, -1, &st, NULL);
    int r;
    if (rc == SQLITE_OK) {
        bind_str(st, 1, org_slug);
        bind_str(st, 2, project_slug);
        r = each_row(q, st, find_cb, out, err);
    } else {
        r = db_err(err, q->r, rc, "cannot prepare project query");
    }
    pthread_mutex_unlock(&q->rmu);
    if (r == 0 && out->id == 0)
        r = kl_err_set(err, KL_R_STORE_NOT_FOUND, "no project '%.*s/%.*s'", (int)org_slug.len,
                       org_slug.ptr ? org_slug.ptr : "", (int)project_slug.len,
                       project_slug.ptr ? project_slug.ptr : "");
    return r;
}

/* ---- commit ---- */

static void bind_profile(sqlite3_stmt *st, const struct kl_stored_item *it, struct kl_str key)
{
    sqlite3_bind_int64(st, 1, u64_col(it->organization_id));
    sqlite3_bind_int64(st, 2, u64_col(it->project_id));
    bind_str(st, 3, it->profile_id);
    bind_str(st, 4, it->platform);
    bind_str(st, 5, it->transaction_name);
    bind_str(st, 6, it->release);
    bind_str(st, 7, it->environment);
    sqlite3_bind_int64(st, 8, it->start_ns);
    sqlite3_bind_int64(st, 9, u64_col(it->duration_ns));
    sqlite3_bind_int64(st, 10, u64_col(it->sample_count));
    bind_str(st, 11, it->device_locale);
    bind_str(st, 12, it->device_manufacturer);
    bind_str(st, 13, it->device_model);
    bind_str(st, 14, it->device_classification);
    bind_str(st, 15, it->architecture);
    bind_str(st, 16, it->os_name);
    bind_str(st, 17, it->os_version);
    bind_str(st, 18, it->os_build_number);
    if (it->android_api_level)
        sqlite3_bind_int64(st, 19, it->android_api_level);
    else
        sqlite3_bind_null(st, 19);
    bind_str(st, 20, it->sdk_name);
    bind_str(st, 21, it->sdk_version);
    bind_str(st, 22, it->version_code);
    bind_str(st, 23, it->version_name);
    bind_str(st, 24, it->trace_id);
    bind_str(st, 25, it->transaction_id);
    sqlite3_bind_int64(st, 26, it->received_s);
    sqlite3_bind_int64(st, 27, it->retention_days);
    bind_str(st, 28, key);
    bind_str(st, 29, it->queue_id);
}

static void bind_chunk(sqlite3_stmt *st, const struct kl_stored_item *it, struct kl_str key)
{
    sqlite3_bind_int64(st, 1, u64_col(it->organization_id));
    sqlite3_bind_int64(st, 2, u64_col(it->project_id));
    bind_str(st, 3, it->profiler_id);
    bind_str(st, 4, it->chunk_id);
    bind_str(st, 5, it->platform);
    bind_str(st, 6, it->release);
    bind_str(st, 7, it->environment);
    sqlite3_bind_int64(st, 8, it->start_ns);
    sqlite3_bind_int64(st, 9, u64_col(it->duration_ns));
    sqlite3_bind_int64(st, 10, u64_col(it->sample_count));
    bind_str(st, 11, it->sdk_name);
    bind_str(st, 12, it->sdk_version);
    sqlite3_bind_int64(st, 13, it->received_s);
    sqlite3_bind_int64(st, 14, it->retention_days);
    bind_str(st, 15, key);
    bind_str(st, 16, it->queue_id);
}

/* The item's id as the read side names it: the profile id, or "<profiler_id>/<chunk_id>". */
static struct kl_str item_id(const struct kl_stored_item *it, char *buf, size_t cap)
{
    if (it->kind == KL_STORED_CHUNK) {
        int n = snprintf(buf, cap, "%.*s/%.*s", (int)it->profiler_id.len,
                         it->profiler_id.ptr ? it->profiler_id.ptr : "", (int)it->chunk_id.len,
                         it->chunk_id.ptr ? it->chunk_id.ptr : "");
        return kl_str_make(buf, (size_t)n < cap ? (size_t)n : cap - 1);
    }
    return it->profile_id;
}

static int insert_derived(struct sq *q, const struct kl_stored_item *it, struct kl_err *err)
{
    char idbuf[80];
    struct kl_str id = item_id(it, idbuf, sizeof idbuf);
    int kind = it->kind == KL_STORED_CHUNK ? 2 : 1;
    if (it->tree && it->tree_len) {
        sqlite3_stmt *st = q->st_calltree;
        sqlite3_bind_int(st, 1, kind);
        sqlite3_bind_int64(st, 2, u64_col(it->organization_id));
        sqlite3_bind_int64(st, 3, u64_col(it->project_id));
        bind_str(st, 4, id);
        bind_str(st, 5, it->profiler_id);
        bind_str(st, 6, it->chunk_id);
        sqlite3_bind_int64(st, 7, it->start_ns);
        sqlite3_bind_int64(st, 8, u64_col(it->duration_ns));
        bind_str(st, 9, it->platform);
        bind_str(st, 10, it->transaction_name);
        bind_str(st, 11, it->release);
        bind_str(st, 12, it->environment);
        bind_str(st, 13, it->device_classification);
        sqlite3_bind_blob(st, 14, it->tree, (int)it->tree_len, SQLITE_STATIC);
        if (step_done(q->w, st, "cannot insert call tree", err) < 0)
            return -1;
    }
    for (uint32_t i = 0; i < it->n_functions; i++) {
        const struct kl_stored_function *f = &it->functions[i];
        sqlite3_stmt *st = q->st_function;
        sqlite3_bind_int(st, 1, kind);
        sqlite3_bind_int64(st, 2, u64_col(it->organization_id));
        sqlite3_bind_int64(st, 3, u64_col(it->project_id));
        bind_str(st, 4, id);
        sqlite3_bind_int64(st, 5, it->start_ns);
        bind_str(st, 6, it->platform);
        bind_str(st, 7, it->transaction_name);
        bind_str(st, 8, it->release);
        bind_str(st, 9, it->environment);
        bind_str(st, 10, it->device_classification);
        sqlite3_bind_int64(st, 11, f->fingerprint);
        bind_str(st, 12, f->function.ptr ? f->function : KL_STR(""));
        bind_str(st, 13, f->package.ptr ? f->package : KL_STR(""));
        sqlite3_bind_int(st, 14, f->in_app);
        bind_str(st, 15, f->thread_id);
        sqlite3_bind_int64(st, 16, u64_col(f->sum_self_ns));
        sqlite3_bind_int64(st, 17, u64_col(f->sample_count));
        sqlite3_bind_int64(st, 18, u64_col(f->max_self_ns));
        sqlite3_bind_blob(st, 19, f->self_times_ns ? (const void *)f->self_times_ns : "",
                          (int)(f->n_calls * sizeof(uint64_t)), SQLITE_STATIC);
        if (step_done(q->w, st, "cannot insert function", err) < 0)
            return -1;
    }
    for (uint32_t i = 0; i < it->n_occurrences; i++) {
        const struct kl_stored_occurrence *o = &it->occurrences[i];
        sqlite3_stmt *st = q->st_occurrence;
        sqlite3_bind_int64(st, 1, u64_col(it->organization_id));
        sqlite3_bind_int64(st, 2, u64_col(it->project_id));
        bind_str(st, 3, id);
        sqlite3_bind_int64(st, 4, it->start_ns);
        bind_str(st, 5, it->platform);
        bind_str(st, 6, it->transaction_name);
        bind_str(st, 7, it->release);
        bind_str(st, 8, it->environment);
        bind_str(st, 9, it->device_classification);
        sqlite3_bind_int(st, 10, o->type);
        bind_str(st, 11, o->category.ptr ? o->category : KL_STR(""));
        bind_str(st, 12, o->title.ptr ? o->title : KL_STR(""));
        bind_str(st, 13, o->function);
        bind_str(st, 14, o->package);
        bind_str(st, 15, o->fingerprint);
        sqlite3_bind_int64(st, 16, u64_col(o->duration_ns));
        sqlite3_bind_int64(st, 17, u64_col(o->sample_count));
        bind_str(st, 18, o->body.ptr ? o->body : KL_STR("{}"));
        if (step_done(q->w, st, "cannot insert occurrence", err) < 0)
            return -1;
    }
    return 0;
}

/* The item's linked spans; one already stored (a resent envelope) is kept once. */
static int insert_spans(struct sq *q, const struct kl_stored_item *it, struct kl_err *err)
{
    for (uint32_t i = 0; i < it->n_spans; i++) {
        const struct kl_stored_span *x = &it->spans[i];
        sqlite3_stmt *st = q->st_span;
        sqlite3_bind_int64(st, 1, u64_col(it->organization_id));
        sqlite3_bind_int64(st, 2, u64_col(it->project_id));
        bind_str(st, 3, x->trace_id);
        bind_str(st, 4, x->span_id);
        bind_str(st, 5, x->parent_span_id);
        bind_str(st, 6, x->segment_id);
        sqlite3_bind_int(st, 7, x->is_segment);
        bind_str(st, 8, x->name);
        bind_str(st, 9, x->segment_name);
        bind_str(st, 10, x->profiler_id);
        bind_str(st, 11, x->thread_id);
        bind_str(st, 12, x->thread_name);
        bind_str(st, 13, x->environment);
        bind_str(st, 14, x->release);
        sqlite3_bind_int64(st, 15, x->start_ns);
        sqlite3_bind_int64(st, 16, x->end_ns);
        bind_str(st, 17, it->queue_id);
        if (step_done(q->w, st, "cannot insert span link", err) < 0)
            return -1;
    }
    return 0;
}

/* Everything inside the transaction; returns enum kl_commit_result or -1 (caller rolls
 * back on anything but KL_COMMIT_DONE). */
static int commit_body(struct sq *q, const struct kl_stored_item *it, struct kl_str key,
                       kl_commit_hook_fn *hook, void *hook_ctx, struct kl_err *err)
{
    int64_t now = now_s();
    sqlite3_stmt *st = q->st_processed;
    bind_str(st, 1, it->queue_id);
    sqlite3_bind_int64(st, 2, now);
    if (step_done(q->w, st, "cannot record queue item", err) < 0)
        return -1;
    if (sqlite3_changes(q->w) == 0)
        return KL_COMMIT_ALREADY;

    if (it->kind == KL_STORED_PROFILE || it->kind == KL_STORED_CHUNK) {
        bool chunk = it->kind == KL_STORED_CHUNK;
        st = chunk ? q->st_chunk : q->st_profile;
        (chunk ? bind_chunk : bind_profile)(st, it, key);
        if (step_done(q->w, st, "cannot insert profile metadata", err) < 0)
            return -1;
        if (sqlite3_changes(q->w) == 0)
            return kl_err_set(err, KL_R_STORE_CONFLICT, "%s %.*s is already stored",
                              chunk ? "chunk" : "profile", (int)key.len, key.ptr);
        if (insert_derived(q, it, err) < 0)
            return -1;
    }

    int64_t received = it->received_s > 0 ? it->received_s : now;
    int64_t hour = received - received % 3600;
    for (int i = 0; i < it->n_outcomes; i++) {
        const struct kl_outcome *o = &it->outcomes[i];
        st = q->st_outcome;
        sqlite3_bind_int64(st, 1, hour);
        sqlite3_bind_int64(st, 2, u64_col(it->organization_id));
        sqlite3_bind_int64(st, 3, u64_col(it->project_id));
        sqlite3_bind_int(st, 4, (int)o->outcome);
        sqlite3_bind_text(st, 5, kl_reason_str(o->reason), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, (int)o->category);
        sqlite3_bind_int64(st, 7, u64_col(o->quantity));
        if (step_done(q->w, st, "cannot add outcome", err) < 0)
            return -1;
    }
    if (insert_spans(q, it, err) < 0)
        return -1;
    if (hook && hook(hook_ctx, err) < 0)
        return -1;
    return KL_COMMIT_DONE;
}

static int sq_commit_item(void *impl, const struct kl_stored_item *it, struct kl_str blob_key,
                          kl_commit_hook_fn *hook, void *hook_ctx, uint64_t *batch,
                          struct kl_err *err)
{
    struct sq *q = impl;
    int r;
    pthread_mutex_lock(&q->wmu);
    if (!q->deferred) {
        r = exec(q->w, "BEGIN IMMEDIATE", err);
        if (r == 0) {
            r = commit_body(q, it, blob_key, hook, hook_ctx, err);
            if (r == KL_COMMIT_DONE)
                r = exec(q->w, "COMMIT", err);
            if (r != KL_COMMIT_DONE)
                rollback(q->w);
        }
        if (batch)
            *batch = 0;
        pthread_mutex_unlock(&q->wmu);
        return r;
    }
    /* deferred: the item joins the open batch, in a savepoint of its own */
    if (!q->batch_open) {
        if (exec(q->w, "BEGIN IMMEDIATE", err) < 0) {
            pthread_mutex_unlock(&q->wmu);
            return -1;
        }
        q->batch_open = true;
        q->batch_id++;
    }
    r = exec(q->w, "SAVEPOINT item", err);
    if (r == 0) {
        r = commit_body(q, it, blob_key, hook, hook_ctx, err);
        if (r == KL_COMMIT_DONE && exec(q->w, "RELEASE item", err) < 0)
            r = -1;
        if (r != KL_COMMIT_DONE) {
            sqlite3_exec(q->w, "ROLLBACK TO item", NULL, NULL, NULL);
            sqlite3_exec(q->w, "RELEASE item", NULL, NULL, NULL);
        }
    }
    if (batch)
        *batch = q->batch_id;
    pthread_mutex_unlock(&q->wmu);
    return r;
}

static int sq_commit_batch(void *impl, struct kl_err *err)
{
    struct sq *q = impl;
    pthread_mutex_lock(&q->wmu);
    int r = end_batch_locked(q, err);
    pthread_mutex_unlock(&q->wmu);
    return r;
}

static bool sq_batch_failed(void *impl, uint64_t lo, uint64_t hi)
{
    struct sq *q = impl;
    bool failed = false;
    pthread_mutex_lock(&q->wmu);
    uint64_t kept = q->n_failed < BATCH_FAILED_RING ? q->n_failed : BATCH_FAILED_RING;
    for (uint64_t i = 0; i < kept && !failed; i++)
        failed = q->failed[i] >= lo && q->failed[i] <= hi;
    /* more failures than the ring remembers: assume the oldest forgotten ones overlap */
    if (q->n_failed > BATCH_FAILED_RING)
        failed = true;
    pthread_mutex_unlock(&q->wmu);
    return failed;
}

/* ---- reads ---- */

static int profile_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_profile_row r = {0};
    r.kind = sqlite3_column_int(st, 0) == 2 ? KL_STORED_CHUNK : KL_STORED_PROFILE;
    r.organization_id = (uint64_t)sqlite3_column_int64(st, 1);
    r.project_id = (uint64_t)sqlite3_column_int64(st, 2);
    if (r.kind == KL_STORED_CHUNK) {
        r.profiler_id = col_str(st, 3);
        r.chunk_id = col_str(st, 4);
    } else {
        r.profile_id = col_str(st, 3);
    }
    r.platform = col_str(st, 5);
    r.transaction_name = col_str(st, 6);
    r.release = col_str(st, 7);
    r.environment = col_str(st, 8);
    r.start_ns = sqlite3_column_int64(st, 9);
    r.duration_ns = (uint64_t)sqlite3_column_int64(st, 10);
    r.sample_count = (uint64_t)sqlite3_column_int64(st, 11);
    r.received_s = sqlite3_column_int64(st, 12);
    r.blob_key = col_str(st, 13);
    return ((kl_profile_row_fn *)c->fn)(c->ctx, &r);
}

static void filter_where(struct kl_buf *sql, const struct kl_profile_filter *f, bool has_kind);
static int run_read(struct sq *q, struct kl_buf *sql, const struct kl_profile_filter *f,
                    void (*extra)(sqlite3_stmt *, const void *), const void *extra_arg,
                    int (*row)(sqlite3_stmt *, void *), void *arg, struct kl_err *err);

static void bind_page(sqlite3_stmt *st, const void *arg)
{
    const struct kl_profile_filter *f = arg;
    sqlite3_bind_int64(st, 1, f->limit ? (int64_t)f->limit : -1);
    sqlite3_bind_int64(st, 2, f->offset);
}

/* Profiles and chunks in one list. Chunks have no transaction or device class, so a filter
 * on either leaves them out. The SQL is assembled from fixed fragments only. */
static int sq_list_profiles(void *impl, const struct kl_profile_filter *f, kl_profile_row_fn *fn,
                            void *ctx, struct kl_err *err)
{
    struct kl_profile_filter pf = *f, cf = *f;
    pf.kind = 0;
    cf.kind = 0;
    bool want_profiles = f->kind != KL_STORED_CHUNK;
    bool want_chunks = f->kind != KL_STORED_PROFILE && !f->transaction.ptr && !f->device_class.ptr;
    struct kl_buf sql;
    kl_buf_init(&sql, 8192);
    kl_buf_puts(&sql, "SELECT * FROM (");
    if (want_profiles) {
        kl_buf_puts(&sql, "SELECT 1, organization_id, project_id, profile_id, NULL, platform, "
                          "transaction_name, release, environment, start_ns, duration_ns, "
                          "sample_count, received_s, blob_key FROM profiles");
        filter_where(&sql, &pf, false);
    }
    if (want_profiles && want_chunks)
        kl_buf_puts(&sql, " UNION ALL ");
    if (want_chunks) {
        kl_buf_puts(&sql, "SELECT 2, organization_id, project_id, profiler_id, chunk_id, "
                          "platform, NULL, release, environment, start_ns, duration_ns, "
                          "sample_count, received_s, blob_key FROM chunks");
        struct kl_profile_filter tmp = cf;
        tmp.transaction = KL_STR_NULL;
        tmp.device_class = KL_STR_NULL;
        filter_where(&sql, &tmp, false);
    }
    if (!want_profiles && !want_chunks)
        kl_buf_puts(&sql, "SELECT 1,2,3,4,5,6,7,8,9,10,11,12,13,14 WHERE 0");
    kl_buf_puts(&sql, ")");
    if (f->sort == 1)
        kl_buf_puts(&sql, " ORDER BY 11 DESC, 10 DESC, 1, 4, 5");
    else if (f->oldest_first)
        kl_buf_puts(&sql, " ORDER BY 10, 1, 4, 5");
    else
        kl_buf_puts(&sql, " ORDER BY 10 DESC, 1, 4, 5");
    kl_buf_puts(&sql, " LIMIT ?1 OFFSET ?2");
    return run_read(impl, &sql, f, bind_page, f, profile_cb, &(struct cb){(void *)fn, ctx}, err);
}

static int outcome_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    if (sqlite3_column_type(st, 6) == SQLITE_NULL)
        return 0; /* SUM over no rows */
    struct kl_outcome_row r = {
        .hour_s = sqlite3_column_int64(st, 0),
        .organization_id = (uint64_t)sqlite3_column_int64(st, 1),
        .project_id = (uint64_t)sqlite3_column_int64(st, 2),
        .outcome = sqlite3_column_int(st, 3),
        .reason = col_str(st, 4),
        .category = sqlite3_column_int(st, 5),
        .quantity = (uint64_t)sqlite3_column_int64(st, 6),
    };
    return ((kl_outcome_row_fn *)c->fn)(c->ctx, &r);
}

/* The SQL is assembled from fixed fragments only; every value is a bound parameter. */
static int sq_sum_outcomes(void *impl, const struct kl_outcome_filter *f, kl_outcome_row_fn *fn,
                           void *ctx, struct kl_err *err)
{
    static const struct {
        unsigned flag;
        const char *col, *none;
    } cols[] = {
        {KL_GROUP_HOUR, "hour_s", "-1"},
        {KL_GROUP_PROJECT, "organization_id, project_id", "0, 0"},
        {KL_GROUP_OUTCOME, "outcome", "-1"},
        {KL_GROUP_REASON, "reason", "NULL"},
        {KL_GROUP_CATEGORY, "category", "-1"},
    };
    char sel[256] = "", grp[256] = "";
    size_t ns = 0, ng = 0;
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        bool on = (f->group & cols[i].flag) != 0;
        ns += (size_t)snprintf(sel + ns, sizeof sel - ns, "%s, ", on ? cols[i].col : cols[i].none);
        if (on)
            ng += (size_t)snprintf(grp + ng, sizeof grp - ng, "%s%s", ng ? ", " : "", cols[i].col);
    }
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %sSUM(quantity) FROM outcomes_hourly WHERE hour_s >= ?1 AND hour_s < ?2 "
             "AND (?3 = 0 OR organization_id = ?3) AND (?4 = 0 OR project_id = ?4)%s%s%s%s",
             sel, ng ? " GROUP BY " : "", grp, ng ? " ORDER BY " : "", grp);
    int64_t since = f->since_s;
    since -= ((since % 3600) + 3600) % 3600;
    struct sq *q = impl;
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r, sql, -1, &st, NULL);
    int r;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, f->since_s ? since : INT64_MIN);
        sqlite3_bind_int64(st, 2, f->until_s ? f->until_s : INT64_MAX);
        sqlite3_bind_int64(st, 3, u64_col(f->organization_id));
        sqlite3_bind_int64(st, 4, u64_col(f->project_id));
        r = each_row(q, st, outcome_cb, &(struct cb){(void *)fn, ctx}, err);
    } else {
        r = db_err(err, q->r, rc, "cannot prepare outcome query");
    }
    pthread_mutex_unlock(&q->rmu);
    return r;
}

static int max_seq_cb(sqlite3_stmt *st, void *arg)
{
    *(uint64_t *)arg = (uint64_t)sqlite3_column_int64(st, 0);
    return 1;
}

/* The highest record number among committed queue ids ("<record>/<item>"). */
static int sq_max_queue_record(void *impl, uint64_t *out, struct kl_err *err)
{
    struct sq *q = impl;
    *out = 0;
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r,
                                "SELECT COALESCE(MAX(CAST(substr(queue_id, 1, "
                                "instr(queue_id, '/') - 1) AS INTEGER)), 0) FROM processed_items "
                                "WHERE instr(queue_id, '/') > 0",
                                -1, &st, NULL);
    int r = rc == SQLITE_OK ? each_row(q, st, max_seq_cb, out, err)
                            : db_err(err, q->r, rc, "cannot prepare max queue record");
    pthread_mutex_unlock(&q->rmu);
    return r;
}

static int sq_set_deferred_sync(void *impl, bool on, struct kl_err *err)
{
    struct sq *q = impl;
    pthread_mutex_lock(&q->wmu);
    int r = end_batch_locked(q, err);
    if (r == 0)
        r = exec(q->w, on ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", err);
    if (r == 0)
        q->deferred = on;
    pthread_mutex_unlock(&q->wmu);
    return r;
}

/* ---- read side ---- */

/* WHERE clause for struct kl_profile_filter over a table that has the filter columns
 * (calltrees, functions, occurrences). Fixed fragments only; values are bound from ?100 on
 * by bind_filter, in the same order. */
static void filter_where(struct kl_buf *sql, const struct kl_profile_filter *f, bool has_kind)
{
    kl_buf_puts(sql, " WHERE (?100 = 0 OR organization_id = ?100) AND (?101 = 0 OR "
                     "project_id = ?101) AND start_ns >= ?102 AND start_ns < ?103");
    if (f->transaction.ptr)
        kl_buf_puts(sql, " AND transaction_name = ?104");
    if (f->release.ptr)
        kl_buf_puts(sql, " AND release = ?105");
    if (f->environment.ptr)
        kl_buf_puts(sql, " AND environment = ?106");
    if (f->platform.ptr)
        kl_buf_puts(sql, " AND platform = ?107");
    if (f->device_class.ptr)
        kl_buf_puts(sql, " AND device_classification = ?108");
    if (has_kind && f->kind)
        kl_buf_puts(sql, " AND kind = ?109");
}

static void bind_filter(sqlite3_stmt *st, const struct kl_profile_filter *f)
{
    sqlite3_bind_int64(st, 100, u64_col(f->organization_id));
    sqlite3_bind_int64(st, 101, u64_col(f->project_id));
    sqlite3_bind_int64(st, 102, f->since_ns ? f->since_ns : INT64_MIN);
    sqlite3_bind_int64(st, 103, f->until_ns ? f->until_ns : INT64_MAX);
    bind_str(st, 104, f->transaction);
    bind_str(st, 105, f->release);
    bind_str(st, 106, f->environment);
    bind_str(st, 107, f->platform);
    bind_str(st, 108, f->device_class);
    sqlite3_bind_int(st, 109, f->kind == KL_STORED_CHUNK ? 2 : 1);
}

static int run_read(struct sq *q, struct kl_buf *sql, const struct kl_profile_filter *f,
                    void (*extra)(sqlite3_stmt *, const void *), const void *extra_arg,
                    int (*row)(sqlite3_stmt *, void *), void *arg, struct kl_err *err)
{
    if (kl_err_is_set(&sql->err)) {
        kl_buf_release(sql);
        return kl_err_set(err, KL_R_INTERNAL, "query too long");
    }
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r, sql->ptr, (int)sql->len, &st, NULL);
    int r;
    if (rc == SQLITE_OK) {
        bind_filter(st, f);
        if (extra)
            extra(st, extra_arg);
        r = each_row(q, st, row, arg, err);
    } else {
        r = db_err(err, q->r, rc, "cannot prepare query");
    }
    pthread_mutex_unlock(&q->rmu);
    kl_buf_release(sql);
    return r;
}

static int calltree_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_calltree_row r = {0};
    r.kind = sqlite3_column_int(st, 0) == 2 ? KL_STORED_CHUNK : KL_STORED_PROFILE;
    r.organization_id = (uint64_t)sqlite3_column_int64(st, 1);
    r.project_id = (uint64_t)sqlite3_column_int64(st, 2);
    if (r.kind == KL_STORED_CHUNK) {
        r.profiler_id = col_str(st, 4);
        r.chunk_id = col_str(st, 5);
    } else {
        r.profile_id = col_str(st, 3);
    }
    r.start_ns = sqlite3_column_int64(st, 6);
    r.duration_ns = (uint64_t)sqlite3_column_int64(st, 7);
    r.platform = col_str(st, 8);
    r.transaction_name = col_str(st, 9);
    r.release = col_str(st, 10);
    r.environment = col_str(st, 11);
    r.tree = sqlite3_column_blob(st, 12);
    r.tree_len = (size_t)sqlite3_column_bytes(st, 12);
    return ((kl_calltree_row_fn *)c->fn)(c->ctx, &r);
}

/* Two steps: the matching row ids in start order, then each row by rowid. Sorting the rows
 * themselves made SQLite's sorter carry every tree blob (there is no index that serves
 * ORDER BY start_ns for an organization-wide filter), and past its cache it spilled them to
 * a temp file: on 10,000 stored profiles a third of the flamegraph query was pwrite(2) of
 * the 400 MB of trees. Sorting (start_ns, rowid) pairs costs nothing; the rowid point
 * lookups read each blob once, in one read transaction so both steps see the same
 * snapshot. Ties in start_ns go in rowid (insertion) order. */
static int sq_scan_calltrees(void *impl, const struct kl_profile_filter *f, kl_calltree_row_fn *fn,
                             void *ctx, struct kl_err *err)
{
    struct sq *q = impl;
    struct kl_buf sql;
    kl_buf_init(&sql, 4096);
    kl_buf_puts(&sql, "SELECT rowid FROM calltrees");
    filter_where(&sql, f, true);
    kl_buf_puts(&sql, " ORDER BY start_ns, rowid");
    if (kl_err_is_set(&sql.err)) {
        kl_buf_release(&sql);
        return kl_err_set(err, KL_R_INTERNAL, "query too long");
    }
    static const char by_id[] =
        "SELECT kind, organization_id, project_id, item_id, profiler_id, chunk_id, start_ns, "
        "duration_ns, platform, transaction_name, release, environment, tree FROM calltrees "
        "WHERE rowid = ?1";
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int r = 0, rc;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&q->rmu);
    if (exec(q->r, "BEGIN", err) < 0) {
        pthread_mutex_unlock(&q->rmu);
        kl_buf_release(&sql);
        return -1;
    }
    rc = sqlite3_prepare_v2(q->r, sql.ptr, (int)sql.len, &st, NULL);
    if (rc != SQLITE_OK) {
        r = db_err(err, q->r, rc, "cannot prepare query");
        goto out_commit;
    }
    bind_filter(st, f);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            ids = kl_xrealloc(ids, cap * sizeof *ids);
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        r = db_err(err, q->r, rc, "cannot read");
        goto out_commit;
    }
    rc = sqlite3_prepare_v2(q->r, by_id, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = db_err(err, q->r, rc, "cannot prepare query");
        goto out_commit;
    }
    struct cb c = {(void *)fn, ctx};
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && calltree_cb(st, &c) != 0)
            break;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            r = db_err(err, q->r, rc, "cannot read");
            break;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
out_commit:
    sqlite3_exec(q->r, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&q->rmu);
    free(ids);
    kl_buf_release(&sql);
    return r;
}

static int function_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_function_row r = {0};
    r.kind = sqlite3_column_int(st, 0) == 2 ? KL_STORED_CHUNK : KL_STORED_PROFILE;
    r.project_id = (uint64_t)sqlite3_column_int64(st, 1);
    r.item_id = col_str(st, 2);
    r.start_ns = sqlite3_column_int64(st, 3);
    r.platform = col_str(st, 4);
    r.transaction_name = col_str(st, 5);
    r.release = col_str(st, 6);
    r.environment = col_str(st, 7);
    r.fingerprint = (uint32_t)sqlite3_column_int64(st, 8);
    r.function = col_str(st, 9);
    r.package = col_str(st, 10);
    r.in_app = sqlite3_column_int(st, 11) != 0;
    r.thread_id = col_str(st, 12);
    r.sum_self_ns = (uint64_t)sqlite3_column_int64(st, 13);
    r.sample_count = (uint64_t)sqlite3_column_int64(st, 14);
    r.max_self_ns = (uint64_t)sqlite3_column_int64(st, 15);
    r.self_times_ns = sqlite3_column_blob(st, 16);
    r.n_calls = (uint32_t)((size_t)sqlite3_column_bytes(st, 16) / sizeof(uint64_t));
    return ((kl_function_row_fn *)c->fn)(c->ctx, &r);
}

static void bind_fingerprint(sqlite3_stmt *st, const void *arg)
{
    sqlite3_bind_int64(st, 1, *(const uint32_t *)arg);
}

static int sq_scan_functions(void *impl, const struct kl_profile_filter *f, uint32_t fingerprint,
                             kl_function_row_fn *fn, void *ctx, struct kl_err *err)
{
    struct kl_buf sql;
    kl_buf_init(&sql, 4096);
    kl_buf_puts(&sql, "SELECT kind, project_id, item_id, start_ns, platform, transaction_name, "
                      "release, environment, fingerprint, function, package, in_app, thread_id, "
                      "sum_self_ns, sample_count, max_self_ns, self_times FROM functions");
    filter_where(&sql, f, true);
    if (fingerprint)
        kl_buf_puts(&sql, " AND fingerprint = ?1");
    kl_buf_puts(&sql, " ORDER BY start_ns");
    return run_read(impl, &sql, f, fingerprint ? bind_fingerprint : NULL, &fingerprint, function_cb,
                    &(struct cb){(void *)fn, ctx}, err);
}

static int occurrence_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_occurrence_row r = {0};
    r.project_id = (uint64_t)sqlite3_column_int64(st, 0);
    r.profile_id = col_str(st, 1);
    r.start_ns = sqlite3_column_int64(st, 2);
    r.platform = col_str(st, 3);
    r.transaction_name = col_str(st, 4);
    r.release = col_str(st, 5);
    r.environment = col_str(st, 6);
    r.type = sqlite3_column_int(st, 7);
    r.category = col_str(st, 8);
    r.title = col_str(st, 9);
    r.function = col_str(st, 10);
    r.package = col_str(st, 11);
    r.fingerprint = col_str(st, 12);
    r.duration_ns = (uint64_t)sqlite3_column_int64(st, 13);
    r.sample_count = (uint64_t)sqlite3_column_int64(st, 14);
    r.body = col_str(st, 15);
    return ((kl_occurrence_row_fn *)c->fn)(c->ctx, &r);
}

static void bind_type_page(sqlite3_stmt *st, const void *arg)
{
    const int64_t *v = arg;
    sqlite3_bind_int64(st, 1, v[0]);
    sqlite3_bind_int64(st, 2, v[1]);
    sqlite3_bind_int64(st, 3, v[2]);
}

static int sq_list_occurrences(void *impl, const struct kl_profile_filter *f, int type,
                               kl_occurrence_row_fn *fn, void *ctx, struct kl_err *err)
{
    struct kl_buf sql;
    kl_buf_init(&sql, 4096);
    kl_buf_puts(&sql, "SELECT project_id, profile_id, start_ns, platform, transaction_name, "
                      "release, environment, type, category, title, function, package, "
                      "fingerprint, duration_ns, sample_count, body FROM occurrences");
    filter_where(&sql, f, false);
    kl_buf_puts(&sql, " AND (?1 = 0 OR type = ?1) ORDER BY start_ns DESC LIMIT ?2 OFFSET ?3");
    int64_t args[3] = {type, f->limit ? (int64_t)f->limit : -1, f->offset};
    return run_read(impl, &sql, f, bind_type_page, args, occurrence_cb,
                    &(struct cb){(void *)fn, ctx}, err);
}

static int span_cb(sqlite3_stmt *st, void *arg)
{
    struct cb *c = arg;
    struct kl_stored_span r = {0};
    r.organization_id = (uint64_t)sqlite3_column_int64(st, 0);
    r.project_id = (uint64_t)sqlite3_column_int64(st, 1);
    r.trace_id = col_str(st, 2);
    r.span_id = col_str(st, 3);
    r.parent_span_id = col_str(st, 4);
    r.segment_id = col_str(st, 5);
    r.is_segment = sqlite3_column_int(st, 6) != 0;
    r.name = col_str(st, 7);
    r.segment_name = col_str(st, 8);
    r.profiler_id = col_str(st, 9);
    r.thread_id = col_str(st, 10);
    r.thread_name = col_str(st, 11);
    r.environment = col_str(st, 12);
    r.release = col_str(st, 13);
    r.start_ns = sqlite3_column_int64(st, 14);
    r.end_ns = sqlite3_column_int64(st, 15);
    return ((kl_span_row_fn *)c->fn)(c->ctx, &r);
}

/* Fixed SQL; absent filters are bound as NULL and match anything. */
static int sq_list_spans(void *impl, const struct kl_span_filter *f, kl_span_row_fn *fn, void *ctx,
                         struct kl_err *err)
{
    static const char sql[] =
        "SELECT organization_id, project_id, trace_id, span_id, parent_span_id, segment_id, "
        "is_segment, name, segment_name, profiler_id, thread_id, thread_name, environment, "
        "release, start_ns, end_ns FROM span_links WHERE (?1 = 0 OR organization_id = ?1) AND "
        "(?2 = 0 OR project_id = ?2) AND (?3 IS NULL OR profiler_id = ?3) AND (?4 IS NULL OR "
        "segment_name = ?4) AND (?9 IS NULL OR release = ?9) AND (?10 IS NULL OR "
        "environment = ?10) AND start_ns >= ?5 AND start_ns < ?6 ORDER BY start_ns DESC, "
        "trace_id, span_id LIMIT ?7 OFFSET ?8";
    struct sq *q = impl;
    pthread_mutex_lock(&q->rmu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->r, sql, -1, &st, NULL);
    int r;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, u64_col(f->organization_id));
        sqlite3_bind_int64(st, 2, u64_col(f->project_id));
        bind_str(st, 3, f->profiler_id);
        bind_str(st, 4, f->segment_name);
        sqlite3_bind_int64(st, 5, f->since_ns ? f->since_ns : INT64_MIN);
        sqlite3_bind_int64(st, 6, f->until_ns ? f->until_ns : INT64_MAX);
        sqlite3_bind_int64(st, 7, f->limit ? (int64_t)f->limit : -1);
        sqlite3_bind_int64(st, 8, f->offset);
        bind_str(st, 9, f->release);
        bind_str(st, 10, f->environment);
        r = each_row(q, st, span_cb, &(struct cb){(void *)fn, ctx}, err);
    } else {
        r = db_err(err, q->r, rc, "cannot prepare span query");
    }
    pthread_mutex_unlock(&q->rmu);
    return r;
}

/* ---- open ---- */

static const struct kl_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .bootstrap = sq_bootstrap,
    .project_create = sq_project_create,
    .project_list = sq_project_list,
    .project_keys = sq_project_keys,
    .key_create = sq_key_create,
    .key_lookup = sq_key_lookup,
    .project_find_by_slug = sq_project_find_by_slug,
    .commit_item = sq_commit_item,
    .commit_batch = sq_commit_batch,
    .batch_failed = sq_batch_failed,
    .list_profiles = sq_list_profiles,
    .sum_outcomes = sq_sum_outcomes,
    .max_queue_record = sq_max_queue_record,
    .set_deferred_sync = sq_set_deferred_sync,
    .scan_calltrees = sq_scan_calltrees,
    .scan_functions = sq_scan_functions,
    .list_occurrences = sq_list_occurrences,
    .list_spans = sq_list_spans,
};

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct kl_err *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? 0 : db_err(err, db, rc, "cannot prepare statement");
}

static int wal_mode(sqlite3 *db, struct kl_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(err, db, rc, "cannot set WAL mode");
    rc = sqlite3_step(st);
    bool ok =
        rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return db_err(err, db, rc, "cannot set WAL mode");
    return ok ? 0 : kl_err_set(err, KL_R_STORE_IO, "the database refused WAL mode");
}

struct kl_store *kl_store_open_sqlite(const char *data_dir, struct kl_err *err)
{
    if (mkdir(data_dir, 0755) < 0 && errno != EEXIST) {
        kl_err_set(err, KL_R_STORE_IO, "cannot create directory '%s': %s", data_dir,
                   strerror(errno));
        return NULL;
    }
    struct sq *q = kl_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->wmu, NULL);
    pthread_mutex_init(&q->rmu, NULL);
    size_t n = strlen(data_dir) + sizeof "/kiln.db";
    q->path = kl_xmalloc(n);
    snprintf(q->path, n, "%s/kiln.db", data_dir);
    if (open_conn(q->path, &q->w, err) < 0 || wal_mode(q->w, err) < 0 ||
        exec(q->w, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", err) < 0 ||
        migrate(q->w, err) < 0 || open_conn(q->path, &q->r, err) < 0 ||
        exec(q->r, "PRAGMA query_only = ON; PRAGMA mmap_size = 4294967296", err) < 0 ||
        prepare(q->w, sql_processed, &q->st_processed, err) < 0 ||
        prepare(q->w, sql_profile, &q->st_profile, err) < 0 ||
        prepare(q->w, sql_chunk, &q->st_chunk, err) < 0 ||
        prepare(q->w, sql_outcome, &q->st_outcome, err) < 0 ||
        prepare(q->w, sql_calltree, &q->st_calltree, err) < 0 ||
        prepare(q->w, sql_function, &q->st_function, err) < 0 ||
        prepare(q->w, sql_occurrence, &q->st_occurrence, err) < 0 ||
        prepare(q->r, sql_key_lookup, &q->st_key_lookup, err) < 0 ||
        prepare(q->w, sql_span, &q->st_span, err) < 0) {
        sq_close(q);
        return NULL;
    }
    return kl_store_new(&sqlite_ops, q, data_dir, err);
}
