/* rstore_status.c — what the store and its daemons look like: a daemon's
 * heartbeat (written), and the status data `fraudwatch rules status` shows
 * (read).  The table itself is printed by the CLI (cli_status.c): this
 * file only gathers data, so the daemon links no presentation and the CLI
 * can change its layout without touching Redis code.
 *
 * A heartbeat is a hash fraudwatch:daemon:INSTANCE with an EXPIRE, written
 * in one MULTI/EXEC so a key never exists without its TTL: a daemon that
 * stops leaves the status when its TTL runs out.  The status reads the
 * versions, the rule file count and the list names in one MULTI/EXEC, the
 * lists' sizes and versions pipelined, and the heartbeats found with SCAN
 * (never KEYS, which blocks Redis on a big keyspace). */
#include "rstore_internal.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"

/* ---- heartbeats ------------------------------------------------------------------ */

int fw_rstore_heartbeat(fw_rstore *r, const fw_heartbeat *hb, int ttl_s,
                        char *err, size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    if (!hb->instance || !hb->instance[0]) {
        snprintf(err, errlen, "heartbeat: no instance name");
        return FW_RSTORE_REFUSED;
    }
    if (ttl_s < 1)
        ttl_s = 1;
    fw_rcmds t = { 0 };
    const char *key = fw_rcmds_fmt(&t, K_DAEMON "%s", hb->instance);
    fw_rcmds_add(&t, "HSET", key,
                 "instance", hb->instance,
                 "host", hb->host ? hb->host : "",
                 "pid", fw_rcmds_fmt(&t, "%d", hb->pid),
                 "version", fw_rcmds_fmt(&t, "%llu", (unsigned long long)hb->version),
                 "generation", fw_rcmds_fmt(&t, "%llu",
                                            (unsigned long long)hb->generation),
                 "last_reload", fw_rcmds_fmt(&t, "%lld", (long long)hb->last_reload_ms),
                 "last_result", hb->last_ok ? "ok" : "error",
                 "last_error", hb->last_error && !hb->last_ok ? hb->last_error : "",
                 "started", fw_rcmds_fmt(&t, "%lld", (long long)hb->started_ms),
                 (const char *)NULL);
    fw_rcmds_add(&t, "EXPIRE", key, fw_rcmds_fmt(&t, "%d", ttl_s), (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &t, &exec, "heartbeat", err, errlen);
    fw_rcmds_free(&t);
    if (rc == 0)
        freeReplyObject(exec);
    return rc == 1 ? FW_RSTORE_ERR : rc;
}

/* ---- status ------------------------------------------------------------------- */

static int info_cmp(const void *a, const void *b)
{
    return strcmp(((const fw_rstore_list_info *)a)->name,
                  ((const fw_rstore_list_info *)b)->name);
}

static int daemon_cmp(const void *a, const void *b)
{
    return strcmp(((const fw_rstore_daemon *)a)->instance,
                  ((const fw_rstore_daemon *)b)->instance);
}

static int64_t field_i64(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

/* Versions, rule file count, list names: one MULTI/EXEC. */
static int read_head(fw_rstore *r, fw_rstore_status *st, char *err, size_t errlen)
{
    fw_rcmds cmds = { 0 };
    fw_rcmds_add(&cmds, "GET", K_VERSION, (const char *)NULL);
    fw_rcmds_add(&cmds, "GET", K_GENERATION, (const char *)NULL);
    fw_rcmds_add(&cmds, "HLEN", K_FILES, (const char *)NULL);
    fw_rcmds_add(&cmds, "SMEMBERS", K_LISTS, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &cmds, &exec, "reading the store", err, errlen);
    fw_rcmds_free(&cmds);
    if (rc != 0)
        return rc < 0 ? rc : FW_RSTORE_ERR;
    if ((rc = fw_redis_u64(r, exec->element[0], K_VERSION, &st->version, err,
                           errlen)) == 0 &&
        (rc = fw_redis_u64(r, exec->element[1], K_GENERATION, &st->generation, err,
                           errlen)) == 0) {
        st->nfiles = (size_t)exec->element[2]->integer;
        const redisReply *ln = exec->element[3];
        st->lists = fw_xcalloc(ln->elements + 1, sizeof *st->lists);
        for (size_t i = 0; i < ln->elements; i++)
            st->lists[st->nlists++].name = fw_xstrndup(ln->element[i]->str,
                                                       ln->element[i]->len);
    }
    freeReplyObject(exec);
    return rc;
}

/* Each list's size and version, pipelined. */
static int read_lists(fw_rstore *r, fw_rstore_status *st, char *err, size_t errlen)
{
    if (!st->nlists)
        return 0;
    qsort(st->lists, st->nlists, sizeof *st->lists, info_cmp);
    for (size_t i = 0; i < st->nlists; i++) {
        char lk[160], vk[160];
        list_key(lk, sizeof lk, st->lists[i].name);
        version_key(vk, sizeof vk, st->lists[i].name);
        const char *scard[2] = { "SCARD", lk };
        const char *get[2] = { "GET", vk };
        fw_redis_send(r, 2, scard);
        fw_redis_send(r, 2, get);
    }
    redisReply **reps = fw_xmalloc(2 * st->nlists * sizeof *reps);
    int rc = fw_redis_drain(r, (int)(2 * st->nlists), reps, "reading watchlists",
                            err, errlen);
    if (rc == 0) {
        for (size_t i = 0; i < st->nlists; i++) {
            st->lists[i].size = (uint64_t)reps[2 * i]->integer;
            char vk[160];
            version_key(vk, sizeof vk, st->lists[i].name);
            if (fw_redis_u64(r, reps[2 * i + 1], vk, &st->lists[i].version, err,
                             errlen) != 0)
                st->lists[i].version = 0;
        }
        for (size_t i = 0; i < 2 * st->nlists; i++)
            freeReplyObject(reps[i]);
    }
    free(reps);
    return rc;
}

/* The names of the heartbeat keys, found with SCAN (each once). */
static int scan_heartbeats(fw_rstore *r, char ***keys, size_t *nkeys, char *err,
                           size_t errlen)
{
    size_t kcap = 0;
    char cursor[32] = "0";
    do {
        const char *scan[6] = { "SCAN", cursor, "MATCH", K_DAEMON "*", "COUNT",
                                FW_REDIS_SCAN_COUNT };
        redisReply *rep = fw_redis_run(r, "SCAN", 6, scan, err, errlen);
        if (!rep)
            return FW_RSTORE_ERR;
        if (!fw_redis_is_array(rep, 2) || rep->element[0]->len >= sizeof cursor) {
            snprintf(err, errlen, "%s: SCAN: unexpected reply", r->where);
            freeReplyObject(rep);
            return FW_RSTORE_ERR;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            const redisReply *k = rep->element[1]->element[i];
            bool seen = false;
            for (size_t j = 0; j < *nkeys && !seen; j++)
                seen = strlen((*keys)[j]) == k->len &&
                       memcmp((*keys)[j], k->str, k->len) == 0;
            if (seen)
                continue;
            if (*nkeys == kcap) {
                kcap = kcap ? kcap * 2 : 16;
                *keys = fw_xrealloc(*keys, kcap * sizeof **keys);
            }
            (*keys)[(*nkeys)++] = fw_xstrndup(k->str, k->len);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* One daemon from its heartbeat hash (HGETALL) and PTTL; false when the key
 * expired meanwhile or is not a heartbeat. */
static bool parse_heartbeat(const char *key, const redisReply *h,
                            const redisReply *t, fw_rstore_daemon *d)
{
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0 || h->elements % 2)
        return false;
    for (size_t j = 0; j < h->elements; j += 2) {
        const char *f = h->element[j]->str, *v = h->element[j + 1]->str;
        if (!f || !v)
            continue;
        if (strcmp(f, "instance") == 0)
            d->instance = fw_xstrdup(v);
        else if (strcmp(f, "host") == 0)
            d->host = fw_xstrdup(v);
        else if (strcmp(f, "pid") == 0)
            d->pid = (int)field_i64(v);
        else if (strcmp(f, "version") == 0)
            d->version = (uint64_t)field_i64(v);
        else if (strcmp(f, "generation") == 0)
            d->generation = (uint64_t)field_i64(v);
        else if (strcmp(f, "last_reload") == 0)
            d->last_reload_ms = field_i64(v);
        else if (strcmp(f, "last_result") == 0)
            d->last_ok = strcmp(v, "ok") == 0;
        else if (strcmp(f, "last_error") == 0)
            d->last_error = fw_xstrdup(v);
        else if (strcmp(f, "started") == 0)
            d->started_ms = field_i64(v);
    }
    if (!d->instance)
        d->instance = fw_xstrdup(key + strlen(K_DAEMON));
    if (!d->host)
        d->host = fw_xstrdup("");
    if (!d->last_error)
        d->last_error = fw_xstrdup("");
    d->ttl_ms = t->type == REDIS_REPLY_INTEGER ? t->integer : -1;
    return true;
}

/* Every live daemon: SCAN for heartbeats, then HGETALL + PTTL each. */
static int read_daemons(fw_rstore *r, fw_rstore_status *st, char *err, size_t errlen)
{
    char **keys = NULL;
    size_t nkeys = 0;
    int rc = scan_heartbeats(r, &keys, &nkeys, err, errlen);
    if (rc == 0 && nkeys) {
        for (size_t i = 0; i < nkeys; i++) {
            const char *hg[2] = { "HGETALL", keys[i] };
            const char *pt[2] = { "PTTL", keys[i] };
            fw_redis_send(r, 2, hg);
            fw_redis_send(r, 2, pt);
        }
        redisReply **reps = fw_xcalloc(2 * nkeys, sizeof *reps);
        for (size_t i = 0; i < 2 * nkeys && rc == 0; i++)   /* WRONGTYPE: skipped */
            if (!(reps[i] = fw_redis_recv(r, "reading heartbeats", err, errlen)))
                rc = FW_RSTORE_ERR;
        if (rc == 0) {
            st->daemons = fw_xcalloc(nkeys, sizeof *st->daemons);
            for (size_t i = 0; i < nkeys; i++)
                if (parse_heartbeat(keys[i], reps[2 * i], reps[2 * i + 1],
                                    &st->daemons[st->ndaemons]))
                    st->ndaemons++;
            if (st->ndaemons)
                qsort(st->daemons, st->ndaemons, sizeof *st->daemons, daemon_cmp);
        }
        for (size_t i = 0; i < 2 * nkeys; i++)
            if (reps[i])
                freeReplyObject(reps[i]);
        free(reps);
    }
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    return rc;
}

int fw_rstore_status_read(fw_rstore *r, fw_rstore_status **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    fw_rstore_status *st = fw_xcalloc(1, sizeof *st);
    int rc;
    if ((rc = read_head(r, st, err, errlen)) != 0 ||
        (rc = read_lists(r, st, err, errlen)) != 0 ||
        (rc = read_daemons(r, st, err, errlen)) != 0) {
        fw_rstore_status_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void fw_rstore_status_free(fw_rstore_status *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nlists; i++)
        free(st->lists[i].name);
    free(st->lists);
    for (size_t i = 0; i < st->ndaemons; i++) {
        free(st->daemons[i].instance);
        free(st->daemons[i].host);
        free(st->daemons[i].last_error);
    }
    free(st->daemons);
    free(st);
}
