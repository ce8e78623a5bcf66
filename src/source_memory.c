/* source_memory.c — messages held in memory, as a driver source
 * (include/fraudwatch/driver.h).
 *
 * Owns only the list of (bytes, length, offset): the bytes are the
 * caller's.  It ends when the list does.  The test harness, the hostile
 * suite and the fuzz target feed the engine through it, so they run the
 * same loop as replay and the daemon (driver.c). */
#include "source_memory.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"

struct item {
    const char *data;
    size_t len;
    int64_t offset;
};

struct fw_mem_source {
    struct item *v;
    size_t n, cap, next;
};

fw_mem_source *fw_mem_source_new(void) { return fw_xcalloc(1, sizeof(fw_mem_source)); }

void fw_mem_source_free(fw_mem_source *s)
{
    if (!s)
        return;
    free(s->v);
    free(s);
}

void fw_mem_source_add(fw_mem_source *s, const char *data, size_t len, int64_t offset)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = fw_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (struct item){ data, len, offset };
}

void fw_mem_source_add_lines(fw_mem_source *s, const char *text, uint64_t from, uint64_t to)
{
    uint64_t lineno = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (len && lineno >= from && lineno < to)
            fw_mem_source_add(s, p, len, (int64_t)lineno);
        p += len + (nl ? 1 : 0);
    }
}

static int next(void *self, fw_msg *m, int timeout_ms)
{
    (void)timeout_ms;
    fw_mem_source *s = self;
    if (s->next == s->n)
        return FW_NEXT_END;
    const struct item *it = &s->v[s->next++];
    *m = (fw_msg){ it->data, it->len, 0, it->offset, 0 };
    return FW_NEXT_MSG;
}

const fw_source_ops fw_mem_source_ops = {
    .name = "memory",
    .next = next,
};
