/* fuzz_calltree.c - the call-tree blob decoder on arbitrary bytes
 *
 * Each input goes through kl_calltree_decode. A rejected blob must carry
 * KL_R_CALLTREE_CORRUPT; an accepted one must satisfy the tree invariants the decoder
 * promises (indexes in range, depths, start <= end, threads covering the nodes) and,
 * because the form is canonical, encode back to exactly the input bytes. Function metrics
 * are computed on accepted trees too, as the read path would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "calltree/calltree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    char *bytes = malloc(size ? size : 1);
    if (size)
        memcpy(bytes, data, size);
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_decode(&a, bytes, size, &err);
    if (!t) {
        kl_assert(err.reason == KL_R_CALLTREE_CORRUPT);
    } else {
        uint32_t covered = 0;
        for (uint32_t i = 0; i < t->n_threads; i++) {
            kl_assert(t->threads[i].first_node == covered);
            covered += t->threads[i].n_nodes;
        }
        kl_assert(covered == t->n_nodes);
        for (uint32_t i = 0; i < t->n_nodes; i++) {
            kl_assert(t->nodes[i].frame < t->n_frames);
            kl_assert(t->nodes[i].start_ns <= t->nodes[i].end_ns);
            kl_assert(kl_calltree_self_ns(t, i) <= t->nodes[i].end_ns - t->nodes[i].start_ns);
        }
        struct kl_buf out;
        kl_buf_init(&out, (size_t)1 << 31);
        kl_assert(kl_calltree_encode(t, &out) == 0);
        kl_assert(out.len == size && memcmp(out.ptr, bytes, size) == 0);
        kl_buf_release(&out);
        struct kl_function_metric *m;
        uint32_t n;
        kl_assert(kl_function_metrics(&a, t, (size & 1) != 0, 100, &m, &n, &err) == 0);
        for (uint32_t i = 1; i < n; i++)
            kl_assert(m[i].sum_self_time_ns <= m[i - 1].sum_self_time_ns);
    }
    kl_arena_release(&a);
    free(bytes);
    return 0;
}
