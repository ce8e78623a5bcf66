/* rstore_stage.c — staging big watchlists into temporary keys, for a push
 * (rstore_sets.c) and `lists load` (rstore_lists.c).
 *
 * Why staging.  A list can hold a million entries: too many for one command
 * or one transaction (a MULTI holding a million SADD arguments would block
 * Redis while it ran).  So a list is first copied into
 * fraudwatch:tmp:TOKEN:NAME with pipelined SADDs of STAGE_CHUNK, at most
 * STAGE_WINDOW commands in flight (a small output buffer), and the
 * transaction then only RENAMEs it into place (O(1)).  The staged key
 * carries an EXPIRE from its first command, so a change that dies half way
 * leaves nothing behind; the EXPIRE is refreshed just before the
 * transaction (fw_rstage_keep / fw_rstage_check: a vanished key fails the
 * change before anything is written) and the transaction PERSISTs the key
 * after the RENAME (RENAME carries a TTL over). */
#include "rstore_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"

#define STAGE_CHUNK 1000      /* entries per SADD */
#define STAGE_WINDOW 50       /* pipelined commands before reading replies */

static void entries_add(fw_rentries *e, const fw_listentry *le)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->p = fw_xrealloc(e->p, e->cap * sizeof *e->p);
        e->len = fw_xrealloc(e->len, e->cap * sizeof *e->len);
        e->until = fw_xrealloc(e->until, e->cap * sizeof *e->until);
        e->reason = fw_xrealloc(e->reason, e->cap * sizeof *e->reason);
        e->rlen = fw_xrealloc(e->rlen, e->cap * sizeof *e->rlen);
    }
    e->p[e->n] = le->value;
    e->len[e->n] = le->n;
    e->until[e->n] = le->until;
    e->reason[e->n] = le->reason;
    e->rlen[e->n] = le->reason_len;
    e->nmeta += le->until != FW_UNTIL_NEVER || le->reason_len > 0;
    e->n++;
}

void fw_rentries_parse(const char *data, size_t len, fw_rentries *e)
{
    fw_listtext it;
    fw_listentry le;
    char why[300];
    int rc;
    fw_listtext_init(&it, data, len);
    while ((rc = fw_listtext_entry(&it, &le, why, sizeof why)) != 0)
        if (rc > 0)
            entries_add(e, &le);
}

void fw_rentries_free(fw_rentries *e)
{
    free(e->p);
    free(e->len);
    free(e->until);
    free(e->reason);
    free(e->rlen);
    memset(e, 0, sizeof *e);
}

void fw_rstage_token(char *out, size_t n)
{
    unsigned char b[8];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof b) {
        static unsigned counter;
        uint64_t x = (uint64_t)fw_wall_ms() * 1000003u ^ (uint64_t)getpid() << 20 ^
                     ++counter;
        memcpy(b, &x, sizeof b);
    }
    snprintf(out, n, "%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7]);
}

int fw_rstage_list(fw_rstore *r, const char *tmpkey, const fw_rentries *e,
                   size_t *unique, char *err, size_t errlen)
{
    fw_rcmds t = { 0 };
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", STAGE_TTL_S);
    size_t i = 0, added = 0;
    int rc = 0;
    bool first = true;
    redisReply *reps[STAGE_WINDOW + 1];
    bool is_sadd[STAGE_WINDOW + 1];
    while (i < e->n) {
        int pending = 0;
        while (i < e->n && pending < STAGE_WINDOW) {
            fw_rcmds_reset(&t);
            fw_rcmds_add(&t, "SADD", tmpkey, (const char *)NULL);
            size_t k = 0;
            for (; k < STAGE_CHUNK && i + k < e->n; k++)
                fw_rcmds_arg(&t, e->p[i + k], e->len[i + k]);
            i += k;
            fw_redis_send_cmds(r, &t);
            is_sadd[pending++] = true;
            if (first) {   /* the key exists now: give it its TTL */
                const char *ex[3] = { "EXPIRE", tmpkey, ttl };
                fw_redis_send(r, 3, ex);
                is_sadd[pending++] = false;
                first = false;
            }
        }
        rc = fw_redis_drain(r, pending, reps, "staging a watchlist (SADD)", err,
                            errlen);
        if (rc != 0)
            break;
        for (int j = 0; j < pending; j++) {
            if (is_sadd[j] && reps[j]->type == REDIS_REPLY_INTEGER)
                added += (size_t)reps[j]->integer;
            freeReplyObject(reps[j]);
        }
    }
    fw_rcmds_free(&t);
    if (rc == 0 && unique)
        *unique = added;
    return rc;
}

void fw_rstage_keep(fw_rcmds *reads, char *const *tmpkeys, size_t n)
{
    const char *ttl = fw_rcmds_fmt(reads, "%d", STAGE_TTL_S);
    for (size_t i = 0; i < n; i++)
        if (tmpkeys[i])
            fw_rcmds_add(reads, "EXPIRE", tmpkeys[i], ttl, (const char *)NULL);
}

int fw_rstage_check(fw_rstore *r, redisReply *const *replies,
                    char *const *tmpkeys, const char *const *names, size_t n,
                    char *err, size_t errlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tmpkeys[i])
            continue;
        const redisReply *rep = replies[k++];
        if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
            snprintf(err, errlen, "%s: the staged copy of watchlist %s "
                                  "vanished before it could be applied "
                                  "(expired after %d s, or deleted); "
                                  "nothing was changed: run the command again",
                     r->where, names[i], STAGE_TTL_S);
            return FW_RSTORE_ERR;
        }
    }
    return 0;
}

void fw_rstage_drop(fw_rstore *r, char *const *tmpkeys, size_t n)
{
    if (r->dead || n == 0)
        return;
    fw_rcmds t = { 0 };
    fw_rcmds_begin(&t, "UNLINK");
    for (size_t i = 0; i < n; i++)
        if (tmpkeys[i])
            fw_rcmds_str(&t, tmpkeys[i]);
    char e[256];
    if (t.c[0].n > 1) {
        fw_redis_send_cmds(r, &t);
        fw_redis_drain(r, 1, NULL, "UNLINK", e, sizeof e);
    }
    fw_rcmds_free(&t);
}
