/* kv_index.c — see kv_index.h. A skiplist with p = 1/4; a node holds its key inline after
 * its forward pointers and its value in a separate block, so an overwrite replaces only the
 * value. */
#include "kv_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 20

struct node {
    unsigned char *val;
    size_t vlen;
    size_t klen;
    int level;
    struct node *next[];
    /* followed by the key's klen bytes */
};

struct kv_index {
    struct node *head;
    int level;
    size_t count;
    size_t bytes;
    uint64_t rng;
};

static const unsigned char *node_key(const struct node *n)
{
    return (const unsigned char *)&n->next[n->level];
}

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static struct node *node_new(int level, const void *key, size_t klen)
{
    struct node *n = malloc(sizeof *n + (size_t)level * sizeof n->next[0] + klen);
    if (!n)
        return NULL;
    n->val = NULL;
    n->vlen = 0;
    n->klen = klen;
    n->level = level;
    for (int i = 0; i < level; i++)
        n->next[i] = NULL;
    if (klen)
        memcpy((unsigned char *)&n->next[level], key, klen);
    return n;
}

struct kv_index *kv_index_new(void)
{
    struct kv_index *ix = calloc(1, sizeof *ix);
    if (ix)
        ix->head = node_new(MAX_LEVEL, NULL, 0);
    if (ix && !ix->head) {
        free(ix);
        return NULL;
    }
    if (ix) {
        ix->level = 1;
        ix->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)ix;
    }
    return ix;
}

void kv_index_free(struct kv_index *ix)
{
    if (!ix)
        return;
    struct node *n = ix->head;
    while (n) {
        struct node *next = n->next[0];
        free(n->val);
        free(n);
        n = next;
    }
    free(ix);
}

static int random_level(struct kv_index *ix)
{
    ix->rng ^= ix->rng << 13; /* xorshift64: balance only, nothing secret */
    ix->rng ^= ix->rng >> 7;
    ix->rng ^= ix->rng << 17;
    uint64_t r = ix->rng;
    int level = 1;
    while (level < MAX_LEVEL && (r & 3) == 0) {
        level++;
        r >>= 2;
    }
    return level;
}

/* The last node before key at each level (update), and the first node >= key. */
static struct node *find(const struct kv_index *ix, const void *key, size_t klen,
                         struct node **update)
{
    struct node *x = ix->head;
    for (int i = ix->level - 1; i >= 0; i--) {
        while (x->next[i] && key_cmp(node_key(x->next[i]), x->next[i]->klen, key, klen) < 0)
            x = x->next[i];
        if (update)
            update[i] = x;
    }
    return x->next[0];
}

static int is_key(const struct node *n, const void *key, size_t klen)
{
    return n && key_cmp(node_key(n), n->klen, key, klen) == 0;
}

static int set_value(struct kv_index *ix, struct node *n, const void *val, size_t vlen)
{
    unsigned char *copy = malloc(vlen ? vlen : 1);
    if (!copy)
        return -1;
    if (vlen)
        memcpy(copy, val, vlen);
    ix->bytes = ix->bytes - n->vlen + vlen;
    free(n->val);
    n->val = copy;
    n->vlen = vlen;
    return 0;
}

int kv_index_put(struct kv_index *ix, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct node *update[MAX_LEVEL];
    struct node *x = find(ix, key, klen, update);
    if (is_key(x, key, klen))
        return set_value(ix, x, val, vlen);
    int level = random_level(ix);
    struct node *n = node_new(level, key, klen);
    if (!n || set_value(ix, n, val, vlen) != 0) {
        free(n);
        return -1;
    }
    for (int i = ix->level; i < level; i++)
        update[i] = ix->head;
    if (level > ix->level)
        ix->level = level;
    for (int i = 0; i < level; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
    ix->count++;
    ix->bytes += klen;
    return 0;
}

int kv_index_delete(struct kv_index *ix, const void *key, size_t klen)
{
    struct node *update[MAX_LEVEL];
    struct node *x = find(ix, key, klen, update);
    if (!is_key(x, key, klen))
        return 0;
    for (int i = 0; i < x->level; i++)
        update[i]->next[i] = x->next[i];
    while (ix->level > 1 && ix->head->next[ix->level - 1] == NULL)
        ix->level--;
    ix->count--;
    ix->bytes -= x->klen + x->vlen;
    free(x->val);
    free(x);
    return 1;
}

int kv_index_get(const struct kv_index *ix, const void *key, size_t klen, const void **val,
                 size_t *vlen)
{
    struct node *x = find(ix, key, klen, NULL);
    if (!is_key(x, key, klen))
        return 1;
    *val = x->val;
    *vlen = x->vlen;
    return 0;
}

size_t kv_index_scan(const struct kv_index *ix, const void *start, size_t slen, const void *end,
                     size_t elen, size_t limit, kv_index_fn fn, void *arg)
{
    size_t n = 0;
    for (struct node *x = find(ix, start, slen, NULL); x; x = x->next[0]) {
        if (limit && n >= limit)
            break;
        if (end && key_cmp(node_key(x), x->klen, end, elen) >= 0)
            break;
        n++;
        if (fn(node_key(x), x->klen, x->val, x->vlen, arg) != 0)
            break;
    }
    return n;
}

size_t kv_index_count(const struct kv_index *ix)
{
    return ix->count;
}

size_t kv_index_bytes(const struct kv_index *ix)
{
    return ix->bytes;
}
