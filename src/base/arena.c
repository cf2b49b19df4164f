/* arena.c - chained bump allocator */
#include "base/arena.h"

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
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

static struct kl_arena_block *new_block(struct kl_arena *a, size_t n)
{
    struct kl_arena_block *b = kl_xmalloc(sizeof *b + n);
    b->cur = b->data;
    b->end = b->data + n;
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
