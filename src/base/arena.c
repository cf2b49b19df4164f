/* arena.c - chained bump allocator */
#include "base/arena.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct kl_arena_block {
    struct kl_arena_block *next;
    char *cur, *end;
    _Alignas(16) char data[];
};

struct kl_arena_cleanup {
    struct kl_arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

/* ------------------------------------------------------------------------------------ */
/* The thread's block cache                                                              */
/*
 * Released blocks are kept for the thread's next arena instead of going back to malloc: a
 * profile of tens of MB fills tens of MB of fresh blocks, glibc maps big ones anew each time
 * (and gives them back on free), and the page faults of touching them again were a third of
 * the CPU time of processing a 30 MB profile. A worker thread processes one job after
 * another, so the next job takes the same blocks back, already mapped. Bounded per thread
 * (KL_ARENA_CACHE_BYTES of block capacity, KL_ARENA_CACHE_BLOCKS blocks); freed at thread
 * exit.
 */
struct block_cache {
    struct kl_arena_block *list; /* linked through next */
    size_t bytes;                /* capacity held */
    size_t n;
    size_t limit;
    bool registered; /* the thread-exit destructor knows this cache */
};

static _Thread_local struct block_cache cache = {NULL, 0, 0, KL_ARENA_CACHE_BYTES, false};
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static size_t block_cap(const struct kl_arena_block *b)
{
    return (size_t)(b->end - b->data);
}

static void cache_drop(struct block_cache *c)
{
    struct kl_arena_block *b = c->list;
    while (b) {
        struct kl_arena_block *n = b->next;
        free(b);
        b = n;
    }
    c->list = NULL;
    c->bytes = c->n = 0;
}

static void cache_thread_exit(void *p)
{
    cache_drop(p);
}

static void cache_key_init(void)
{
    int rc = pthread_key_create(&cache_key, cache_thread_exit);
    kl_assert(rc == 0);
}

static void cache_put(struct kl_arena_block *b)
{
    size_t cap = block_cap(b);
    if (cache.n >= KL_ARENA_CACHE_BLOCKS || cache.bytes + cap > cache.limit) {
        free(b);
        return;
    }
    if (!cache.registered) {
        pthread_once(&cache_once, cache_key_init);
        pthread_setspecific(cache_key, &cache);
        cache.registered = true;
    }
    b->next = cache.list;
    cache.list = b;
    KL_POISON(b->data, cap);
    cache.bytes += cap;
    cache.n++;
}

/* The smallest cached block of at least n bytes, if it is not much larger (a big block is
 * not spent on a small request). */
static struct kl_arena_block *cache_get(size_t n)
{
    struct kl_arena_block **best = NULL;
    size_t max = n * 2 + KL_ARENA_BLOCK;
    for (struct kl_arena_block **pb = &cache.list; *pb; pb = &(*pb)->next) {
        size_t cap = block_cap(*pb);
        if (cap >= n && cap <= max && (!best || cap < block_cap(*best)))
            best = pb;
    }
    if (!best)
        return NULL;
    struct kl_arena_block *b = *best;
    KL_UNPOISON(b->data, block_cap(b));
    *best = b->next;
    cache.bytes -= block_cap(b);
    cache.n--;
    return b;
}

void kl_arena_set_cache(size_t max_bytes)
{
    cache.limit = max_bytes;
    if (cache.bytes > max_bytes)
        cache_drop(&cache);
}

void kl_arena_init(struct kl_arena *a)
{
    a->head = NULL;
    a->cleanups = NULL;
    a->total = 0;
}

void kl_arena_release(struct kl_arena *a)
{
    for (struct kl_arena_cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->arg);
    a->cleanups = NULL;
    struct kl_arena_block *b = a->head;
    while (b) {
        struct kl_arena_block *n = b->next;
        cache_put(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

static struct kl_arena_block *new_block(struct kl_arena *a, size_t n)
{
    struct kl_arena_block *b = cache_get(n);
    if (b) {
        n = block_cap(b);
    } else {
        b = kl_xmalloc(sizeof *b + n);
        b->end = b->data + n;
    }
    b->cur = b->data;
    a->total += n;
    return b;
}

void *kl_arena_alloc(struct kl_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct kl_arena_block *b = a->head;
    if (b && (size_t)(b->end - b->cur) >= n) {
        void *p = b->cur;
        b->cur += n;
        return p;
    }
    if (n > KL_ARENA_BLOCK / 4) {
        /* a block of its own, kept behind the head so the head's tail is not wasted */
        struct kl_arena_block *big = new_block(a, n);
        big->cur = big->end;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->data;
    }
    struct kl_arena_block *nb = new_block(a, KL_ARENA_BLOCK);
    nb->next = b;
    a->head = nb;
    void *p = nb->cur;
    nb->cur += n;
    return p;
}

void *kl_arena_calloc(struct kl_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        kl_assert(!"arena calloc overflow");
    void *p = kl_arena_alloc(a, n * size);
    memset(p, 0, n * size);
    return p;
}

char *kl_arena_strndup(struct kl_arena *a, const char *s, size_t len)
{
    char *p = kl_arena_alloc(a, len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *kl_arena_grow(struct kl_arena *a, void *p, size_t old_n, size_t new_n)
{
    if (!p)
        return kl_arena_alloc(a, new_n);
    size_t old_r = (old_n + 15) & ~(size_t)15;
    size_t new_r = (new_n + 15) & ~(size_t)15;
    struct kl_arena_block *b = a->head;
    if (b && (char *)p + old_r == b->cur && (size_t)(b->end - (char *)p) >= new_r) {
        b->cur = (char *)p + new_r;
        return p;
    }
    void *q = kl_arena_alloc(a, new_n);
    memcpy(q, p, old_n < new_n ? old_n : new_n);
    return q;
}

void kl_arena_on_release(struct kl_arena *a, void (*fn)(void *), void *arg)
{
    struct kl_arena_cleanup *c = kl_arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}
