/* codec.c — the byte encoding of checkpoints.
 *
 * Owns the primitive encoding shared by state.c, window.c, sequence.c and
 * the daemon's file header: unsigned 64-bit little-endian integers and
 * length-prefixed byte strings.  Fixed-width little-endian (not a memory
 * dump of structs) so a checkpoint written by one build reads back in
 * another, and every read is checked: a truncated or corrupt file is an
 * error, never a crash.  A checkpoint is written and read by one thread,
 * so the stdio calls skip the stream lock (the *_unlocked forms): a state
 * of millions of small fields is encoded while the stream waits (into
 * memory, by each worker for its own shard, see pipeline.c). */
#include "codec.h"

#include <stdlib.h>

int fw_put_u64(FILE *f, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return fwrite_unlocked(b, 1, 8, f) == 8 ? 0 : -1;
}

int fw_put_bytes(FILE *f, const void *p, uint32_t n)
{
    if (fw_put_u64(f, n))
        return -1;
    return n == 0 || fwrite_unlocked(p, 1, n, f) == n ? 0 : -1;
}

int fw_get_u64(FILE *f, uint64_t *v)
{
    unsigned char b[8];
    if (fread_unlocked(b, 1, 8, f) != 8)
        return -1;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return 0;
}

int fw_get_bytes(FILE *f, char **p, uint32_t *n, uint32_t max)
{
    uint64_t len;
    if (fw_get_u64(f, &len) || len > max)
        return -1;
    char *s = malloc(len + 1);
    if (!s)
        return -1;
    if (len && fread_unlocked(s, 1, len, f) != len) {
        free(s);
        return -1;
    }
    s[len] = '\0';
    *p = s;
    *n = (uint32_t)len;
    return 0;
}
