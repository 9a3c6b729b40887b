/* kv_index.h — the engine's in-memory ordered map from byte-string keys to byte-string values
 * (a skiplist), rebuilt from the record log on open.
 *
 * Contract:
 * - Keys order as memcmp over the common prefix, then the shorter first (like TiKV's raw
 *   keys). Empty keys and values are allowed.
 * - put/delete copy what they keep; get returns a pointer into the map, valid until the next
 *   put or delete of that key or kv_index_free.
 * - kv_index_scan(): calls fn for each pair with start <= key < end in order, at most limit
 *   of them (0: no limit); end == NULL means no upper bound. Stops early when fn returns
 *   nonzero. Returns the number of pairs passed to fn.
 * - Not thread-safe: one thread owns it.
 */
#ifndef TISIM_KV_INDEX_H
#define TISIM_KV_INDEX_H

#include <stddef.h>

struct kv_index;

typedef int (*kv_index_fn)(const void *key, size_t klen, const void *val, size_t vlen,
                           void *arg);

struct kv_index *kv_index_new(void);
void kv_index_free(struct kv_index *ix);
/* 0, or -1 when out of memory (the map is unchanged). */
int kv_index_put(struct kv_index *ix, const void *key, size_t klen, const void *val,
                 size_t vlen);
/* 1 if the key was there and is now gone, 0 if it was absent. */
int kv_index_delete(struct kv_index *ix, const void *key, size_t klen);
/* 0 and *val, *vlen set if found, 1 if not. */
int kv_index_get(const struct kv_index *ix, const void *key, size_t klen, const void **val,
                 size_t *vlen);
size_t kv_index_scan(const struct kv_index *ix, const void *start, size_t slen, const void *end,
                     size_t elen, size_t limit, kv_index_fn fn, void *arg);
size_t kv_index_count(const struct kv_index *ix);
/* Bytes of keys and values held (not counting the skiplist's own overhead). */
size_t kv_index_bytes(const struct kv_index *ix);

#endif
