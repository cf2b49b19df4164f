/* arena.h - chained bump allocator with cleanup handlers
 *
 * What: one arena per job (a profile through the pipeline, an HTTP request). Everything a
 * stage produces is allocated here and freed at once by kl_arena_free.
 *
 * Model: a singly linked list of blocks; allocation bumps a pointer in the newest block and
 * chains a new block (at least KL_ARENA_BLOCK bytes, or the request rounded up) when full.
 * Large requests (> block/4) get a block of their own so they do not waste the tail of the
 * current one. Cleanups registered with kl_arena_on_release run in reverse order on free;
 * they release non-memory resources (a simdjson parser, a zstd context, a file).
 *
 * Released blocks go to a per-thread cache that the thread's next arenas take them from: a
 * worker processing one profile after another reuses memory that is already mapped instead
 * of faulting in tens of MB per profile. A thread keeps at most KL_ARENA_CACHE_BYTES unless
 * it asks for more: the server's workers (and the benchmark that stands for them) raise
 * theirs to KL_ARENA_WORKER_CACHE_BYTES with kl_arena_set_cache, while the many HTTP
 * connection threads keep the small default, so idle memory stays bounded by
 * workers x KL_ARENA_WORKER_CACHE_BYTES + connections x KL_ARENA_CACHE_BYTES. (With 8 MiB
 * per thread, 64 connections posting 2 MB profiles took the server from 490 to 740 MiB
 * peak RSS; with 1 MiB it stays at 490, what the requests themselves hold.)
 *
 * Why: one free per job, no leak paths, and allocation is a few instructions (nginx pools,
 * h2o mem pools, git mem-pool). The cache: page faults on fresh blocks were a third of the
 * CPU time of a 30 MB profile (bench/README.md).
 *
 * Ownership: the arena owns every allocation from it; nothing is freed individually.
 * kl_arena_grow may move the last allocation, like realloc, and is only cheap for it.
 * Errors: none; out of memory aborts (STYLE B4). Threads: one thread at a time; the block
 * cache is the releasing thread's own (blocks may move between threads that way), and is
 * freed when the thread exits.
 * Limits: none of its own; callers bound what they allocate by checking input limits first.
 * Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_ARENA_H
#define KL_BASE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define KL_ARENA_BLOCK (64 * 1024)
#define KL_ARENA_CACHE_BYTES ((size_t)1 << 20)          /* block capacity kept per thread */
#define KL_ARENA_WORKER_CACHE_BYTES ((size_t)256 << 20) /* ... per pipeline worker thread */
#define KL_ARENA_CACHE_BLOCKS 64

struct kl_arena_block;
struct kl_arena_cleanup;

struct kl_arena {
    struct kl_arena_block *head;       /* newest block, where allocation happens */
    struct kl_arena_cleanup *cleanups; /* run in reverse order of registration */
    size_t total;                      /* bytes obtained from malloc, for stats */
};

void kl_arena_init(struct kl_arena *a);
/* Run cleanups, free every block; the arena may be reused after kl_arena_init. */
void kl_arena_release(struct kl_arena *a);

/* Uninitialized memory, 16-byte aligned. */
void *kl_arena_alloc(struct kl_arena *a, size_t n);
/* Zeroed memory. Aborts if n * size overflows. */
void *kl_arena_calloc(struct kl_arena *a, size_t n, size_t size);
/* Copy of s[0..len) plus a NUL. */
char *kl_arena_strndup(struct kl_arena *a, const char *s, size_t len);
/* Resize p (allocated from a with old_n bytes) to new_n; in place when it is the last
 * allocation of the head block, else a copy. */
void *kl_arena_grow(struct kl_arena *a, void *p, size_t old_n, size_t new_n);
/* Cap the calling thread's block cache at max_bytes (0: no cache, for measuring the cold
 * case); blocks over the new cap are freed. */
void kl_arena_set_cache(size_t max_bytes);
/* Register fn(arg) to run at kl_arena_release. */
void kl_arena_on_release(struct kl_arena *a, void (*fn)(void *), void *arg);

#endif
