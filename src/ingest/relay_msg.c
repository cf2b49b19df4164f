/* relay_msg.c - decode/encode the Relay -> Sentry msgpack message (see relay_msg.h) */
#include "ingest/relay_msg.h"

#include <string.h>

#include "profile/profile.h"

#define MAX_SKIP_DEPTH 32

struct rd {
    const unsigned char *p, *end;
    struct kl_err *err;
};

static int bad(struct rd *r, const char *what)
{
    return kl_err_set(r->err, KL_R_MSGPACK_MALFORMED, "relay message: %s", what);
}

static int need(struct rd *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n ? 0 : bad(r, "truncated");
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Read a length-prefixed header: returns the body length for str/bin/array/map families. */
static int read_len(struct rd *r, int bytes, uint64_t *len)
{
    if (need(r, (size_t)bytes) < 0)
        return -1;
    *len = be(r->p, bytes);
    r->p += bytes;
    return 0;
}

enum kind { K_NIL, K_BOOL, K_UINT, K_INT, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT };

struct val {
    enum kind k;
    uint64_t u;               /* uint value, or the element count of array/map */
    int64_t i;                /* int value */
    const unsigned char *ptr; /* str/bin bytes */
    uint64_t len;
};

/* Read one value's header (and scalars fully). Containers leave their elements unread. */
static int read_val(struct rd *r, struct val *v)
{
    if (need(r, 1) < 0)
        return -1;
    unsigned c = *r->p++;
    memset(v, 0, sizeof *v);
    uint64_t n;
    if (c <= 0x7f) {
        v->k = K_UINT, v->u = c;
    } else if (c >= 0xe0) {
        v->k = K_INT, v->i = (int8_t)c;
    } else if ((c & 0xf0) == 0x80) {
        v->k = K_MAP, v->u = c & 0x0f;
    } else if ((c & 0xf0) == 0x90) {
        v->k = K_ARRAY, v->u = c & 0x0f;
    } else if ((c & 0xe0) == 0xa0) {
        v->k = K_STR, v->len = c & 0x1f;
    } else {
        switch (c) {
        case 0xc0:
            v->k = K_NIL;
            return 0;
        case 0xc2:
        case 0xc3:
            v->k = K_BOOL, v->u = c == 0xc3;
            return 0;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            if (read_len(r, 1 << (c - 0xc4), &n) < 0)
                return -1;
            v->k = K_BIN, v->len = n;
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            if (read_len(r, 1 << (c - 0xd9), &n) < 0)
                return -1;
            v->k = K_STR, v->len = n;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            if (read_len(r, 1 << (c - 0xcc), &v->u) < 0)
                return -1;
            v->k = K_UINT;
            return 0;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            int b = 1 << (c - 0xd0);
            if (read_len(r, b, &n) < 0)
                return -1;
            v->k = K_INT;
            v->i = b == 8 ? (int64_t)n : (int64_t)(n << (64 - 8 * b)) >> (64 - 8 * b);
            return 0;
        }
        case 0xca:
        case 0xcb:
            v->k = K_FLOAT;
            return need(r, c == 0xca ? 4 : 8) < 0 ? -1 : (r->p += c == 0xca ? 4 : 8, 0);
        case 0xdc:
        case 0xdd:
            if (read_len(r, c == 0xdc ? 2 : 4, &v->u) < 0)
                return -1;
            v->k = K_ARRAY;
            return 0;
        case 0xde:
        case 0xdf:
            if (read_len(r, c == 0xde ? 2 : 4, &v->u) < 0)
                return -1;
            v->k = K_MAP;
            return 0;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            v->k = K_EXT, v->len = 1 + (1u << (c - 0xd4));
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            if (read_len(r, 1 << (c - 0xc7), &n) < 0)
                return -1;
            v->k = K_EXT, v->len = n + 1;
            break;
        default:
            return bad(r, "unknown type byte");
        }
    }
    if (v->k == K_STR || v->k == K_BIN || v->k == K_EXT) {
        if (need(r, v->len) < 0)
            return -1;
        v->ptr = r->p;
        r->p += v->len;
    }
    return 0;
}

static int skip(struct rd *r, const struct val *v, int depth)
{
    if (v->k != K_ARRAY && v->k != K_MAP)
        return 0;
    if (depth >= MAX_SKIP_DEPTH)
        return bad(r, "nesting too deep");
    uint64_t n = v->k == K_MAP ? v->u * 2 : v->u;
    /* each element takes at least one byte: a count above the bytes left is a lie */
    if (n > (uint64_t)(r->end - r->p))
        return bad(r, "container larger than the message");
    for (uint64_t i = 0; i < n; i++) {
        struct val x;
        if (read_val(r, &x) < 0 || skip(r, &x, depth + 1) < 0)
            return -1;
    }
    return 0;
}

static int get_uint(struct rd *r, const struct val *v, uint64_t *out, const char *what)
{
    if (v->k == K_UINT) {
        *out = v->u;
        return 0;
    }
    if (v->k == K_INT && v->i >= 0) {
        *out = (uint64_t)v->i;
        return 0;
    }
    return bad(r, what);
}

struct kl_relay_msg *kl_relay_msg_parse(struct kl_arena *a, const char *buf, size_t len,
                                        struct kl_err *err)
{
    struct rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len, err};
    struct val top;
    if (read_val(&r, &top) < 0)
        return NULL;
    if (top.k != K_MAP) {
        bad(&r, "not a map");
        return NULL;
    }
    if (top.u > 64) {
        bad(&r, "too many keys");
        return NULL;
    }
    struct kl_relay_msg *m = kl_arena_calloc(a, 1, sizeof *m);
    m->retention_days = 90;
    const unsigned char *payload = NULL;
    uint64_t payload_len = 0;
    bool has_org = false, has_project = false;
    for (uint64_t i = 0; i < top.u; i++) {
        struct val k, v;
        if (read_val(&r, &k) < 0)
            return NULL;
        if (k.k != K_STR) {
            bad(&r, "a key is not a string");
            return NULL;
        }
        if (read_val(&r, &v) < 0)
            return NULL;
        struct kl_str key = kl_str_make((const char *)k.ptr, k.len);
        uint64_t u = 0;
        int rc = 0;
        if (kl_str_eq_c(key, "type")) {
            if (v.k != K_STR)
                rc = bad(&r, "type is not a string");
            m->type = kl_str_make((const char *)v.ptr, v.len);
        } else if (kl_str_eq_c(key, "organization_id")) {
            rc = get_uint(&r, &v, &m->organization_id, "organization_id is not an integer");
            has_org = true;
        } else if (kl_str_eq_c(key, "project_id")) {
            rc = get_uint(&r, &v, &m->project_id, "project_id is not an integer");
            has_project = true;
        } else if (kl_str_eq_c(key, "key_id")) {
            if (v.k != K_NIL) {
                rc = get_uint(&r, &v, &m->key_id, "key_id is not an integer");
                m->has_key_id = true;
            }
        } else if (kl_str_eq_c(key, "received")) {
            rc = get_uint(&r, &v, &u, "received is not an integer");
            m->received = (int64_t)(u > INT64_MAX ? INT64_MAX : u);
        } else if (kl_str_eq_c(key, "retention_days")) {
            rc = get_uint(&r, &v, &u, "retention_days is not an integer");
            m->retention_days = (uint32_t)(u > 36500 ? 36500 : u);
        } else if (kl_str_eq_c(key, "payload")) {
            if (v.k != K_BIN && v.k != K_STR)
                rc = bad(&r, "payload is not bytes");
            payload = v.ptr;
            payload_len = v.len;
        } else {
            rc = skip(&r, &v, 1);
        }
        if (rc < 0)
            return NULL;
    }
    if (r.p != r.end) {
        bad(&r, "trailing bytes after the message");
        return NULL;
    }
    if (!payload || !has_org || !has_project) {
        bad(&r, "missing payload, organization_id or project_id");
        return NULL;
    }
    if (payload_len > KL_MAX_PROFILE_BYTES) {
        kl_err_set(err, KL_R_PROFILING_EXCEED_SIZE_LIMIT, "payload of %llu bytes",
                   (unsigned long long)payload_len);
        return NULL;
    }
    char *copy = kl_arena_alloc(a, payload_len + KL_PADDING);
    memcpy(copy, payload, payload_len);
    memset(copy + payload_len, 0, KL_PADDING);
    m->payload = copy;
    m->payload_len = payload_len;
    if (!m->type.ptr)
        m->type = KL_STR("profile");
    return m;
}

static void put_be(struct kl_buf *b, unsigned tag, uint64_t v, int bytes)
{
    unsigned char tmp[9];
    tmp[0] = (unsigned char)tag;
    for (int i = 0; i < bytes; i++)
        tmp[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    kl_buf_append(b, tmp, (size_t)bytes + 1);
}

static void put_str(struct kl_buf *b, struct kl_str s)
{
    if (s.len < 32) {
        kl_buf_putc(b, (char)(0xa0 | s.len));
    } else if (s.len < 256) {
        put_be(b, 0xd9, s.len, 1);
    } else {
        put_be(b, 0xdb, s.len, 4);
    }
    kl_buf_append(b, s.ptr, s.len);
}

static void put_uint(struct kl_buf *b, uint64_t v)
{
    if (v < 128)
        kl_buf_putc(b, (char)v);
    else if (v <= 0xffffffffu)
        put_be(b, 0xce, v, 4);
    else
        put_be(b, 0xcf, v, 8);
}

int kl_relay_msg_write(const struct kl_relay_msg *m, struct kl_buf *out)
{
    kl_buf_putc(out, (char)(0x80 | 7));
    put_str(out, KL_STR("type"));
    put_str(out, m->type);
    put_str(out, KL_STR("organization_id"));
    put_uint(out, m->organization_id);
    put_str(out, KL_STR("project_id"));
    put_uint(out, m->project_id);
    put_str(out, KL_STR("key_id"));
    if (m->has_key_id)
        put_uint(out, m->key_id);
    else
        kl_buf_putc(out, (char)0xc0);
    put_str(out, KL_STR("received"));
    put_uint(out, (uint64_t)m->received);
    put_str(out, KL_STR("retention_days"));
    put_uint(out, m->retention_days);
    put_str(out, KL_STR("payload"));
    put_be(out, 0xc6, m->payload_len, 4);
    kl_buf_append(out, m->payload, m->payload_len);
    return kl_err_is_set(&out->err) ? -1 : 0;
}
