/* blob.c - the blob container, zstd per thread, and the atomic file write (see blob.h) */
#include "store/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "base/buf.h"
#include "store/store.h"

#define MAGIC "KLB1"
#define VERSION 1
#define CODEC_ZSTD 1
#define MAX_COMPONENTS 4

/* ---- keys ---- */

bool kl_blob_key_valid(struct kl_str key)
{
    if (!key.ptr || key.len == 0 || key.len > KL_BLOB_KEY_MAX)
        return false;
    int components = 1;
    size_t run = 0;
    for (size_t i = 0; i < key.len; i++) {
        char c = key.ptr[i];
        if (c == '/') {
            if (run == 0 || ++components > MAX_COMPONENTS)
                return false;
            run = 0;
        } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            run++;
        } else {
            return false;
        }
    }
    return run > 0;
}

/* ---- zstd contexts, one pair per thread ----
 * A context holds ~1 MB of tables; making one per call would cost more than
 * compressing a small profile. Thread-specific data frees them when a worker exits. */

struct zctx {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zctx_free(void *arg)
{
    struct zctx *z = arg;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z);
}

static void zkey_init(void)
{
    kl_assert(pthread_key_create(&zkey, zctx_free) == 0);
}

static struct zctx *zctx_get(void)
{
    pthread_once(&zonce, zkey_init);
    struct zctx *z = pthread_getspecific(zkey);
    if (z)
        return z;
    z = kl_xcalloc(1, sizeof *z);
    z->c = ZSTD_createCCtx();
    z->d = ZSTD_createDCtx();
    if (!z->c || !z->d)
        kl_assert(!"out of memory creating zstd contexts");
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, KL_BLOB_ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_contentSizeFlag, 1);
    pthread_setspecific(zkey, z);
    return z;
}

/* ---- container ---- */

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int kl_blob_encode(const char *p, size_t n, char **out, size_t *out_len, struct kl_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n > KL_BLOB_MAX_BYTES)
        return kl_err_set(err, KL_R_BUF_TOO_BIG, "blob of %zu bytes is over the limit of %u", n,
                          KL_BLOB_MAX_BYTES);
    struct zctx *z = zctx_get();
    size_t cap = KL_BLOB_HEADER + ZSTD_compressBound(n);
    unsigned char *b = kl_xmalloc(cap);
    memcpy(b, MAGIC, 4);
    b[4] = VERSION;
    b[5] = CODEC_ZSTD;
    b[6] = b[7] = 0;
    put_u64le(b + 8, n);
    size_t r = ZSTD_compress2(z->c, b + KL_BLOB_HEADER, cap - KL_BLOB_HEADER, p, n);
    if (ZSTD_isError(r)) {
        free(b);
        ZSTD_CCtx_reset(z->c, ZSTD_reset_session_only);
        return kl_err_set(err, KL_R_INTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    *out = (char *)b;
    *out_len = KL_BLOB_HEADER + r;
    return 0;
}

int kl_blob_decode(const char *p, size_t len, size_t max, struct kl_arena *a, char **out,
                   size_t *out_len, struct kl_err *err)
{
    const unsigned char *b = (const unsigned char *)p;
    *out = NULL;
    *out_len = 0;
    if (len < KL_BLOB_HEADER || memcmp(b, MAGIC, 4) != 0)
        return kl_err_set(err, KL_R_STORE_CORRUPT, "not a kiln blob");
    if (b[4] != VERSION || b[5] != CODEC_ZSTD || b[6] || b[7])
        return kl_err_set(err, KL_R_STORE_CORRUPT, "unsupported blob version %u codec %u", b[4],
                          b[5]);
    uint64_t n = get_u64le(b + 8);
    if (n > max)
        return kl_err_set(err, KL_R_STORE_CORRUPT,
                          "blob claims %llu bytes, over the bound of %zu bytes",
                          (unsigned long long)n, max);
    const void *frame = b + KL_BLOB_HEADER;
    size_t flen = len - KL_BLOB_HEADER;
    unsigned long long fsz = ZSTD_getFrameContentSize(frame, flen);
    if (fsz != n || ZSTD_findFrameCompressedSize(frame, flen) != flen)
        return kl_err_set(err, KL_R_STORE_CORRUPT, "blob frame does not match its header");
    char *dst = kl_arena_alloc(a, (size_t)n + KL_PADDING);
    struct zctx *z = zctx_get();
    size_t r = ZSTD_decompressDCtx(z->d, dst, (size_t)n, frame, flen);
    if (ZSTD_isError(r) || r != n) {
        ZSTD_DCtx_reset(z->d, ZSTD_reset_session_only);
        return kl_err_set(err, KL_R_STORE_CORRUPT, "blob does not decompress: %s",
                          ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short frame");
    }
    memset(dst + n, 0, KL_PADDING);
    *out = dst;
    *out_len = (size_t)n;
    return 0;
}

/* ---- files ---- */

static int io_err(struct kl_err *err, const char *what, const char *path)
{
    int e = errno;
    return kl_err_set(err, (e == ENOSPC || e == EDQUOT) ? KL_R_STORE_FULL : KL_R_STORE_IO,
                      "cannot %s '%s': %s", what, path, strerror(e));
}

static int fsync_dir(const char *dir, struct kl_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_err(err, "open directory", dir);
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? io_err(err, "fsync directory", dir) : 0;
}

/* Create the key's parent directories under root. A directory we create is fsynced into its
 * parent so the path survives power loss. (A thread that finds a directory another thread
 * is still creating does not wait for that fsync; the window is one mkdir wide.) */
static int make_dirs(const char *root, struct kl_str key, char *dir, size_t cap, struct kl_err *err)
{
    size_t last = key.len;
    while (last > 0 && key.ptr[last - 1] != '/')
        last--;
    int n = snprintf(dir, cap, "%s", root);
    if (n < 0 || (size_t)n >= cap)
        return kl_err_set(err, KL_R_STORE_IO, "blob path too long");
    size_t i = 0;
    while (i + 1 < last) {
        size_t j = i;
        while (key.ptr[j] != '/')
            j++;
        char parent[4096];
        memcpy(parent, dir, (size_t)n + 1);
        int m = snprintf(dir + n, cap - (size_t)n, "/%.*s", (int)(j - i), key.ptr + i);
        if (m < 0 || (size_t)m >= cap - (size_t)n)
            return kl_err_set(err, KL_R_STORE_IO, "blob path too long");
        n += m;
        if (mkdir(dir, 0755) == 0) {
            if (fsync_dir(parent, err) < 0)
                return -1;
        } else if (errno != EEXIST) {
            return io_err(err, "create directory", dir);
        }
        i = j + 1;
    }
    return 0;
}

static int key_path(struct kl_store *s, struct kl_str key, char *path, size_t cap,
                    struct kl_err *err)
{
    if (!kl_blob_key_valid(key))
        return kl_err_set(err, KL_R_STORE_BAD_KEY, "invalid blob key '%.*s'",
                          (int)(key.len > 80 ? 80 : key.len), key.ptr ? key.ptr : "");
    int n = snprintf(path, cap, "%s/%.*s", kl__store_blob_dir(s), (int)key.len, key.ptr);
    if (n < 0 || (size_t)n >= cap)
        return kl_err_set(err, KL_R_STORE_IO, "blob path too long");
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static atomic_uint tmp_seq;
static atomic_int blob_pid; /* getpid() is a system call; temp names need it per blob */

int kl__blob_stage(struct kl_store *s, struct kl_str key, const char *p, size_t n,
                   struct kl_blob_stage *st, struct kl_err *err)
{
    st->staged = false;
    st->nosync = kl__store_deferred(s);
    if (key_path(s, key, st->path, sizeof st->path, err) < 0)
        return -1;
    /* the key's directory: usually there already, so it is only created (make_dirs, with
     * its fsyncs) when the temp file cannot be created for want of it */
    const char *leaf = strrchr(st->path, '/') + 1;
    size_t dlen = (size_t)(leaf - 1 - st->path);
    memcpy(st->dir, st->path, dlen);
    st->dir[dlen] = '\0';
    int pid = atomic_load(&blob_pid);
    if (pid == 0) {
        pid = (int)getpid();
        atomic_store(&blob_pid, pid);
    }
    int m = snprintf(st->tmp, sizeof st->tmp, "%s/.%s.tmp.%d.%u", st->dir, leaf, pid,
                     atomic_fetch_add(&tmp_seq, 1));
    if (m < 0 || (size_t)m >= sizeof st->tmp)
        return kl_err_set(err, KL_R_STORE_IO, "blob path too long");

    char *enc;
    size_t enc_len;
    if (kl_blob_encode(p, n, &enc, &enc_len, err) < 0)
        return -1;
    int fd = open(st->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        char dir[sizeof st->dir];
        if (make_dirs(kl__store_blob_dir(s), key, dir, sizeof dir, err) < 0) {
            free(enc);
            return -1;
        }
        fd = open(st->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0) {
        free(enc);
        return io_err(err, "create", st->tmp);
    }
    int r = 0;
    if (write_all(fd, enc, enc_len) < 0)
        r = io_err(err, "write", st->tmp);
    else if (!st->nosync && fsync(fd) < 0)
        r = io_err(err, "fsync", st->tmp);
    free(enc);
    if (close(fd) < 0 && r == 0)
        r = io_err(err, "close", st->tmp);
    if (r < 0) {
        unlink(st->tmp);
        return -1;
    }
    st->staged = true;
    return 0;
}

int kl__blob_publish(struct kl_blob_stage *st, struct kl_err *err)
{
    kl_assert(st->staged);
    if (rename(st->tmp, st->path) < 0) {
        int r = io_err(err, "rename blob to", st->path);
        kl__blob_discard(st);
        return r;
    }
    st->staged = false;
    return st->nosync ? 0 : fsync_dir(st->dir, err);
}

void kl__blob_discard(struct kl_blob_stage *st)
{
    if (st->staged)
        unlink(st->tmp);
    st->staged = false;
}

int kl_blob_put(struct kl_store *s, struct kl_str key, const char *p, size_t n, struct kl_err *err)
{
    struct kl_blob_stage *st = kl_xmalloc(sizeof *st);
    int r = kl__blob_stage(s, key, p, n, st, err);
    if (r == 0)
        r = kl__blob_publish(st, err);
    free(st);
    return r;
}

int kl_blob_get(struct kl_store *s, struct kl_str key, struct kl_arena *a, char **out, size_t *len,
                struct kl_err *err)
{
    char path[4096];
    *out = NULL;
    *len = 0;
    if (key_path(s, key, path, sizeof path, err) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return kl_err_set(err, KL_R_STORE_NOT_FOUND, "no blob at '%.*s'", (int)key.len,
                              key.ptr);
        return io_err(err, "open", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int r = io_err(err, "stat", path);
        close(fd);
        return r;
    }
    size_t max_file = KL_BLOB_HEADER + ZSTD_compressBound(KL_BLOB_MAX_BYTES);
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max_file) {
        close(fd);
        return kl_err_set(err, KL_R_STORE_CORRUPT, "blob '%s' is too large", path);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *buf = kl_xmalloc(n ? n : 1);
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? io_err(err, "read", path)
                          : kl_err_set(err, KL_R_STORE_CORRUPT, "blob '%s' shrank", path);
            free(buf);
            close(fd);
            return e;
        }
        got += (size_t)r;
    }
    close(fd);
    int r = kl_blob_decode(buf, n, KL_BLOB_MAX_BYTES, a, out, len, err);
    free(buf);
    return r;
}

bool kl_blob_exists(struct kl_store *s, struct kl_str key)
{
    char path[4096];
    if (key_path(s, key, path, sizeof path, NULL) < 0)
        return false;
    return access(path, F_OK) == 0;
}
