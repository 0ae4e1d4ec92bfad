/* A hash index from keys to positions in an array its owner keeps: open
 * addressing, kept at most half full, so lookups stay O(1) when specs and
 * benchmarks make tens of thousands of consumers, wallets and transactions.
 * The index stores each key's hash, never the key: the owner says whether
 * the entry at a position has the key it looks for. Not thread-safe: the
 * owner holds its own lock. */
#ifndef ORBT_MOCK_INDEX_H
#define ORBT_MOCK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct index_slot {
    uint64_t hash;
    size_t pos1;            /* position plus one; 0 = empty */
};

struct index {
    struct index_slot *slots;
    size_t nslots;          /* a power of two */
    size_t used;
};

/* FNV-1a over len bytes, continuing from h (start with INDEX_HASH_START). */
#define INDEX_HASH_START 1469598103934665603ULL
uint64_t index_hash(uint64_t h, const void *key, size_t len);

/* Whether the entry at pos has the key being looked for. */
typedef bool (*index_match_fn)(size_t pos, const void *key);

void index_clear(struct index *ix);     /* empties it, keeping a small table */
void index_free(struct index *ix);

/* The position of the entry with this key, or -1 as SIZE_MAX. */
size_t index_find(const struct index *ix, uint64_t hash, index_match_fn match, const void *key);
/* Adds an entry the caller knows is not there yet. */
void index_add(struct index *ix, uint64_t hash, size_t pos);

#endif
