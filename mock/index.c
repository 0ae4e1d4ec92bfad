/* A hash index from keys to positions in an array its owner keeps. */
#include "index.h"

#include <stdlib.h>

#include "util.h"

#define INDEX_MIN_SLOTS 64

uint64_t index_hash(uint64_t h, const void *key, size_t len)
{
    const unsigned char *p = key;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void place(struct index_slot *slots, size_t nslots, uint64_t hash, size_t pos1)
{
    size_t mask = nslots - 1;
    size_t i = (size_t)hash & mask;
    while (slots[i].pos1 != 0)
        i = (i + 1) & mask;
    slots[i] = (struct index_slot){hash, pos1};
}

static void grow(struct index *ix, size_t nslots)
{
    struct index_slot *slots = xcalloc(nslots, sizeof *slots);
    for (size_t i = 0; i < ix->nslots; i++)
        if (ix->slots[i].pos1 != 0)
            place(slots, nslots, ix->slots[i].hash, ix->slots[i].pos1);
    free(ix->slots);
    ix->slots = slots;
    ix->nslots = nslots;
}

void index_clear(struct index *ix)
{
    free(ix->slots);
    ix->slots = xcalloc(INDEX_MIN_SLOTS, sizeof *ix->slots);
    ix->nslots = INDEX_MIN_SLOTS;
    ix->used = 0;
}

void index_free(struct index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->nslots = ix->used = 0;
}

size_t index_find(const struct index *ix, uint64_t hash, index_match_fn match, const void *key)
{
    if (ix->nslots == 0)
        return SIZE_MAX;
    size_t mask = ix->nslots - 1;
    for (size_t i = (size_t)hash & mask; ix->slots[i].pos1 != 0; i = (i + 1) & mask) {
        const struct index_slot *s = &ix->slots[i];
        if (s->hash == hash && match(s->pos1 - 1, key))
            return s->pos1 - 1;
    }
    return SIZE_MAX;
}

void index_add(struct index *ix, uint64_t hash, size_t pos)
{
    if (ix->nslots == 0)
        index_clear(ix);
    if ((ix->used + 1) * 2 > ix->nslots)
        grow(ix, ix->nslots * 2);
    place(ix->slots, ix->nslots, hash, pos + 1);
    ix->used++;
}
