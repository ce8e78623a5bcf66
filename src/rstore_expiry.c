/* rstore_expiry.c — watchlist entries that expire, in Redis: their UNTIL,
 * who added them, when and why; `lists show`; cleaning expired entries
 * (issue 11.5, SPEC §2 "Watchlist entries that expire").
 *
 * Why this shape.  A watchlist stays the Redis set it always was
 * (fraudwatch:list:NAME: SPEC §4 says lists are sets, older daemons and
 * other tools read it, and `lists add`/`remove` stay one SADD/SREM).  What
 * an entry carries besides its value lives next to it, only for the
 * entries that have it:
 *
 *   fraudwatch:list:NAME:until   sorted set, value → UNTIL (epoch ms as the
 *                                score: exact below 2^53, i.e. for every
 *                                time up to 9999).  A sorted set because the
 *                                cleaner asks "which entries ended before
 *                                T?" — ZRANGEBYSCORE, not a scan of the list;
 *   fraudwatch:list:NAME:info    hash, value → "AT<TAB>BY<TAB>REASON" (ms,
 *                                who, why), for every entry added by `lists
 *                                add` and every loaded entry with a reason;
 *                                field "#" (no entry can start with '#') →
 *                                "AT<TAB>BY<TAB>HOW" of the last replacement
 *                                of the whole list (push, `lists load`), the
 *                                answer for entries that came with it.
 *
 * So a list without expiries costs what it did, a `lists add` of one entry
 * costs one entry in each key, and the change log carries the UNTIL and
 * reason (rstore_log.c, kind '*'), so daemons still apply a change as a
 * delta.  A daemon reads :until (ZSCAN) after the set when it reads a list
 * whole; it never needs :info (matching needs no reason).
 *
 * Replacements (push, `lists load`) stage :until and :info into temporary
 * keys next to the staged set, and their transaction renames all three into
 * place (fw_rexp_swap), so a reader never sees one list's entries with
 * another's UNTILs.
 *
 * Cleaning (fw_rstore_list_expire): an entry whose UNTIL is more than the
 * daemons' lateness allowance in the past can no longer match any event a
 * daemon accepts as on time, so it is removed like a `lists remove` would
 * (set, :until, :info, one '-' change in the log, version, generation,
 * notification), 1000 at a time, each batch an optimistic transaction
 * WATCHing the list's version: a `lists add` of the same value with a new
 * UNTIL in between makes the batch start again from a fresh read, so a
 * renewed entry is never removed. */
#include "rstore_internal.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/hash.h"

#define META_CHUNK 1000     /* members per ZADD / HSET */
#define META_WINDOW 50      /* pipelined commands before reading replies */
#define EXPIRE_BATCH 1000   /* expired entries removed per transaction */

/* ---- who ------------------------------------------------------------------------ */

static _Atomic(const char *) actor;

void fw_rstore_set_actor(const char *by) { actor = by; }

const char *fw_rexp_who(char *who, size_t n)
{
    const char *by = actor;
    const char *s = by && *by ? by : getenv("FRAUDWATCH_USER");
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if ((!s || !*s) && getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res)
        s = res->pw_name;
    snprintf(who, n, "%s", s && *s ? s : "unknown");
    for (char *p = who; *p; p++)   /* a column of a tab-separated record */
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
    return who;
}

/* ---- pipelined writes ------------------------------------------------------------ */

struct pipe {
    fw_rstore *r;
    int pending;
    int rc;
    char *err;
    size_t errlen;
};

static void pipe_drain(struct pipe *p)
{
    if (p->pending && p->rc == 0)
        p->rc = fw_redis_drain(p->r, p->pending, NULL, "staging watchlist expiries",
                               p->err, p->errlen);
    p->pending = 0;
}

static void pipe_send(struct pipe *p, fw_rcmds *t)
{
    if (p->rc == 0 && t->n) {
        fw_redis_send_cmds(p->r, t);
        p->pending += t->n;
        if (p->pending >= META_WINDOW)
            pipe_drain(p);
    }
    fw_rcmds_reset(t);
}

static char *tmp_name(const char *token, const char *name, const char *what)
{
    size_t n = strlen(K_TMP) + strlen(token) + strlen(name) + strlen(what) + 4;
    char *k = fw_xmalloc(n);
    snprintf(k, n, K_TMP "%s:%s:%s", token, name, what);
    return k;
}

int fw_rexp_stage(fw_rstore *r, const char *token, const char *name,
                  const fw_rentries *e, const char *how, fw_rexp_staged *st,
                  char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    struct pipe p = { .r = r, .err = err, .errlen = errlen };
    fw_rcmds t = { 0 };
    const char *ttl = "600";
    char at[32];
    snprintf(at, sizeof at, "%lld", (long long)fw_wall_ms());
    char whobuf[128];
    const char *by = fw_rexp_who(whobuf, sizeof whobuf);

    st->info_tmp = tmp_name(token, name, "info");
    fw_rcmds_add(&t, "HSET", st->info_tmp, "#",
                 fw_rcmds_fmt(&t, "%s\t%s\t%s", at, by, how), (const char *)NULL);
    fw_rcmds_add(&t, "EXPIRE", st->info_tmp, ttl, (const char *)NULL);
    pipe_send(&p, &t);

    /* UNTILs */
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->until[i] == FW_UNTIL_NEVER)
            continue;
        if (!st->until_tmp) {
            st->until_tmp = tmp_name(token, name, "until");
        }
        if (k == 0)
            fw_rcmds_add(&t, "ZADD", st->until_tmp, (const char *)NULL);
        fw_rcmds_str(&t, fw_rcmds_fmt(&t, "%lld", (long long)e->until[i]));
        fw_rcmds_arg(&t, e->p[i], e->len[i]);
        if (++k == META_CHUNK) {
            fw_rcmds_add(&t, "EXPIRE", st->until_tmp, ttl, (const char *)NULL);
            pipe_send(&p, &t);
            k = 0;
        }
    }
    if (k) {
        fw_rcmds_add(&t, "EXPIRE", st->until_tmp, ttl, (const char *)NULL);
        pipe_send(&p, &t);
    }
    /* reasons */
    k = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->rlen[i] == 0)
            continue;
        if (k == 0)
            fw_rcmds_add(&t, "HSET", st->info_tmp, (const char *)NULL);
        fw_rcmds_arg(&t, e->p[i], e->len[i]);
        fw_rcmds_str(&t, fw_rcmds_fmt(&t, "%s\t%s\t%.*s", at, by, (int)e->rlen[i],
                                      e->reason[i]));
        if (++k == META_CHUNK) {
            pipe_send(&p, &t);
            k = 0;
        }
    }
    if (k)
        pipe_send(&p, &t);
    pipe_drain(&p);
    fw_rcmds_free(&t);
    return p.rc;
}

void fw_rexp_staged_free(fw_rexp_staged *st)
{
    free(st->until_tmp);
    free(st->info_tmp);
    memset(st, 0, sizeof *st);
}

void fw_rexp_staged_drop(fw_rstore *r, fw_rexp_staged *st)
{
    char *keys[2] = { st->until_tmp, st->info_tmp };
    fw_rstage_drop(r, keys, 2);
}

void fw_rexp_swap(fw_rcmds *tx, const char *name, const fw_rexp_staged *st)
{
    const char *uk = fw_rcmds_fmt(tx, K_LIST "%s:until", name);
    const char *ik = fw_rcmds_fmt(tx, K_LIST "%s:info", name);
    fw_rcmds_add(tx, "UNLINK", uk, ik, (const char *)NULL);
    if (st->until_tmp) {
        fw_rcmds_add(tx, "RENAME", st->until_tmp, uk, (const char *)NULL);
        fw_rcmds_add(tx, "PERSIST", uk, (const char *)NULL);
    }
    if (st->info_tmp) {
        fw_rcmds_add(tx, "RENAME", st->info_tmp, ik, (const char *)NULL);
        fw_rcmds_add(tx, "PERSIST", ik, (const char *)NULL);
    }
}

void fw_rexp_drop(fw_rcmds *tx, const char *name)
{
    fw_rcmds_add(tx, "UNLINK", fw_rcmds_fmt(tx, K_LIST "%s:until", name),
                 fw_rcmds_fmt(tx, K_LIST "%s:info", name), (const char *)NULL);
}

/* ---- reading ---------------------------------------------------------------------- */

/* ZSCAN / HSCAN of key: each (member, value) pair to fn. */
static int scan_pairs(fw_rstore *r, const char *verb, const char *key,
                      void (*fn)(void *ctx, const redisReply *a, const redisReply *b),
                      void *ctx, char *err, size_t errlen)
{
    char cursor[32] = "0";
    do {
        const char *scan[5] = { verb, key, cursor, "COUNT", FW_REDIS_SCAN_COUNT };
        redisReply *rep = fw_redis_run(r, verb, 5, scan, err, errlen);
        if (!rep)
            return FW_RSTORE_ERR;
        if (!fw_redis_is_array(rep, 2) || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY ||
            rep->element[0]->len >= sizeof cursor || rep->element[1]->elements % 2) {
            snprintf(err, errlen, "%s: %s %s: unexpected reply", r->where, verb, key);
            freeReplyObject(rep);
            return FW_RSTORE_ERR;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        const redisReply *m = rep->element[1];
        for (size_t i = 0; i + 1 < m->elements; i += 2)
            if (m->element[i]->type == REDIS_REPLY_STRING &&
                m->element[i + 1]->type == REDIS_REPLY_STRING)
                fn(ctx, m->element[i], m->element[i + 1]);
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* A score as Redis prints it ("1700000005000", "1.7e+12" never for these
 * integers below 2^53, but read as a double to be safe). */
static bool score_ms(const char *s, size_t n, int64_t *ms)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end || !(d >= 0) || d > 9.0e15)
        return false;
    *ms = (int64_t)d;
    return true;
}

struct until_ctx {
    void (*fn)(void *ctx, const char *s, size_t n, int64_t until);
    void *ctx;
};

static void until_pair(void *ctx, const redisReply *a, const redisReply *b)
{
    struct until_ctx *c = ctx;
    int64_t ms;
    if (score_ms(b->str, b->len, &ms))
        c->fn(c->ctx, a->str, a->len, ms);
}

int fw_rexp_scan_until(fw_rstore *r, const char *name,
                       void (*fn)(void *ctx, const char *s, size_t n, int64_t until),
                       void *ctx, char *err, size_t errlen)
{
    char uk[160];
    until_key(uk, sizeof uk, name);
    struct until_ctx c = { fn, ctx };
    return scan_pairs(r, "ZSCAN", uk, until_pair, &c, err, errlen);
}

/* One entry's columns, keyed by value (annotate). */
struct meta {
    uint32_t n;
    int64_t until;
    char *reason;
    char value[];
};

static bool meta_eq(const void *item, const void *key, size_t len)
{
    const struct meta *m = item;
    return m->n == len && memcmp(m->value, key, len) == 0;
}

static struct meta *meta_get(fw_hmap *map, const char *s, size_t n)
{
    uint64_t h = fw_hash64(s, n, 0x5e);
    struct meta *m = fw_hmap_find(map, h, s, n, meta_eq);
    if (!m) {
        m = fw_xcalloc(1, sizeof *m + n + 1);
        m->n = (uint32_t)n;
        m->until = FW_UNTIL_NEVER;
        memcpy(m->value, s, n);
        if (fw_hmap_insert(map, h, m) != 0)
            fw_oom();
    }
    return m;
}

static void annotate_until(void *ctx, const char *s, size_t n, int64_t until)
{
    meta_get(ctx, s, n)->until = until;
}

/* "AT<TAB>BY<TAB>REASON" → REASON (NULL when there is none). */
static const char *info_reason(const char *v, size_t n, size_t *rlen)
{
    const char *t1 = memchr(v, '\t', n);
    const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(v + n - t1 - 1)) : NULL;
    if (!t2 || t2 + 1 >= v + n)
        return NULL;
    *rlen = (size_t)(v + n - t2 - 1);
    return t2 + 1;
}

static void annotate_info(void *ctx, const redisReply *a, const redisReply *b)
{
    if (a->len == 1 && a->str[0] == '#')
        return;
    size_t rlen;
    const char *reason = info_reason(b->str, b->len, &rlen);
    if (!reason)
        return;
    struct meta *m = meta_get(ctx, a->str, a->len);
    free(m->reason);
    m->reason = fw_xstrndup(reason, rlen);
    for (char *p = m->reason; *p; p++)   /* one line of a .list file */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int fw_rexp_annotate(fw_rstore *r, const char *name, fw_buf *text, char *err,
                     size_t errlen)
{
    fw_hmap *map = fw_hmap_new(0);
    if (!map)
        fw_oom();
    char ik[160];
    info_key(ik, sizeof ik, name);
    int rc = fw_rexp_scan_until(r, name, annotate_until, map, err, errlen);
    if (rc == 0)
        rc = scan_pairs(r, "HSCAN", ik, annotate_info, map, err, errlen);
    if (rc == 0 && fw_hmap_count(map) > 0) {
        fw_buf out = { 0 };
        for (const char *p = text->p, *end = text->p + text->len; p && p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            size_t n = (size_t)(e - p);
            fw_buf_put(&out, p, n);
            const struct meta *m = fw_hmap_find(map, fw_hash64(p, n, 0x5e), p, n, meta_eq);
            if (m && m->until != FW_UNTIL_NEVER)
                fw_buf_printf(&out, "\t%lld", (long long)m->until);
            else if (m)
                fw_buf_puts(&out, "\t-");
            if (m && m->reason && *m->reason)
                fw_buf_printf(&out, "\t%s", m->reason);
            fw_buf_putc(&out, '\n');
            p = nl ? nl + 1 : end;
        }
        fw_buf_free(text);
        *text = out;
    }
    void *it;
    size_t pos = 0;
    while ((it = fw_hmap_next(map, &pos))) {
        free(((struct meta *)it)->reason);
        free(it);
    }
    fw_hmap_free(map);
    return rc;
}

/* ---- lists show ------------------------------------------------------------------- */

/* "AT<TAB>BY<TAB>REST" into the fields. */
static void split_info(const redisReply *v, int64_t *at, char *by, size_t bylen,
                       char *rest, size_t restlen)
{
    *at = 0;
    by[0] = rest[0] = '\0';
    if (!v || v->type != REDIS_REPLY_STRING)
        return;
    const char *s = v->str, *end = v->str + v->len;
    const char *t1 = memchr(s, '\t', v->len);
    if (!t1)
        return;
    *at = strtoll(s, NULL, 10);
    const char *t2 = memchr(t1 + 1, '\t', (size_t)(end - t1 - 1));
    const char *be = t2 ? t2 : end;
    snprintf(by, bylen, "%.*s", (int)(be - t1 - 1), t1 + 1);
    if (t2)
        snprintf(rest, restlen, "%.*s", (int)(end - t2 - 1), t2 + 1);
}

int fw_rstore_list_show(fw_rstore *r, const char *name, const char *value,
                        fw_rstore_entry *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->until = FW_UNTIL_NEVER;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    if (!name || !fw_rulefiles_valid_list_name(name, strlen(name))) {
        snprintf(err, errlen, "\"%.80s\" is not a valid watchlist name: "
                              FW_LIST_NAME_RULE, name ? name : "");
        return FW_RSTORE_REFUSED;
    }
    char lk[160], vk[160], uk[160], ik[160];
    list_key(lk, sizeof lk, name);
    version_key(vk, sizeof vk, name);
    until_key(uk, sizeof uk, name);
    info_key(ik, sizeof ik, name);
    fw_rcmds cmds = { 0 };
    fw_rcmds_add(&cmds, "SISMEMBER", K_LISTS, name, (const char *)NULL);
    fw_rcmds_add(&cmds, "SISMEMBER", lk, value, (const char *)NULL);
    fw_rcmds_add(&cmds, "ZSCORE", uk, value, (const char *)NULL);
    fw_rcmds_add(&cmds, "HGET", ik, value, (const char *)NULL);
    fw_rcmds_add(&cmds, "HGET", ik, "#", (const char *)NULL);
    fw_rcmds_add(&cmds, "GET", vk, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &cmds, &exec, "reading a watchlist entry", err, errlen);
    fw_rcmds_free(&cmds);
    if (rc != 0)
        return rc < 0 ? rc : FW_RSTORE_ERR;
    redisReply **e = exec->element;
    out->list_exists = e[0]->type == REDIS_REPLY_INTEGER && e[0]->integer == 1;
    out->member = e[1]->type == REDIS_REPLY_INTEGER && e[1]->integer == 1;
    if (e[2]->type == REDIS_REPLY_STRING && !score_ms(e[2]->str, e[2]->len, &out->until))
        out->until = FW_UNTIL_NEVER;
    if (e[3]->type == REDIS_REPLY_STRING) {
        out->own_record = true;
        split_info(e[3], &out->added_at, out->by, sizeof out->by, out->reason,
                   sizeof out->reason);
    }
    split_info(e[4], &out->loaded_at, out->loaded_by, sizeof out->loaded_by,
               out->loaded_how, sizeof out->loaded_how);
    rc = fw_redis_u64(r, e[5], vk, &out->version, err, errlen);
    freeReplyObject(exec);
    return rc;
}

/* ---- cleaning ---------------------------------------------------------------------- */

struct expire_tx {
    fw_rstore *r;
    const char *name;
    char lk[160], vk[160], uk[160], ik[160];
    char **vals;
    size_t n;
    int i_version, i_gen, i_size, i_removed;
};

static void free_vals(struct expire_tx *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->vals[i]);
    free(t->vals);
    t->vals = NULL;
    t->n = 0;
}

/* From GET version and ZRANGEBYSCORE (fw_redis_tx.build). */
static int expire_build(void *ctx, redisReply **rep, fw_rcmds *tx, char *err,
                        size_t errlen)
{
    struct expire_tx *t = ctx;
    uint64_t old_version;
    int rc = fw_redis_u64(t->r, rep[0], t->vk, &old_version, err, errlen);
    if (rc != 0)
        return rc;
    if (rep[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "%s: ZRANGEBYSCORE %s: unexpected reply", t->r->where, t->uk);
        return FW_RSTORE_ERR;
    }
    free_vals(t);
    t->vals = fw_xcalloc(rep[1]->elements + 1, sizeof *t->vals);
    for (size_t i = 0; i < rep[1]->elements; i++) {
        const redisReply *m = rep[1]->element[i];
        if (m->type == REDIS_REPLY_STRING)
            t->vals[t->n++] = fw_xstrndup(m->str, m->len);
    }
    if (t->n == 0) {   /* cleaned meanwhile: a harmless transaction */
        t->i_removed = -1;
        fw_rcmds_add(tx, "GET", t->vk, (const char *)NULL);
        return 0;
    }
    t->i_removed = fw_rcmds_add(tx, "SREM", t->lk, (const char *)NULL);
    for (size_t i = 0; i < t->n; i++)
        fw_rcmds_str(tx, t->vals[i]);
    fw_rcmds_add(tx, "ZREM", t->uk, (const char *)NULL);
    for (size_t i = 0; i < t->n; i++)
        fw_rcmds_str(tx, t->vals[i]);
    fw_rcmds_add(tx, "HDEL", t->ik, (const char *)NULL);
    for (size_t i = 0; i < t->n; i++)
        fw_rcmds_str(tx, t->vals[i]);
    fw_rlog_append(tx, t->name, old_version + 1, false, t->vals, t->n);
    t->i_version = fw_rcmds_add(tx, "INCR", t->vk, (const char *)NULL);
    t->i_gen = fw_rcmds_add(tx, "INCR", K_GENERATION, (const char *)NULL);
    t->i_size = fw_rcmds_add(tx, "SCARD", t->lk, (const char *)NULL);
    fw_rcmds_add(tx, "PUBLISH", CHANNEL,
                 fw_rcmds_fmt(tx, "list %s %llu", t->name,
                              (unsigned long long)old_version + 1),
                 (const char *)NULL);
    return 0;
}

int fw_rstore_list_expire(fw_rstore *r, const char *name, int64_t before_ms,
                          fw_rstore_list_result *res, char *err, size_t errlen)
{
    fw_rstore_list_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    int64_t t0 = fw_mono_ms();
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    if (!name || !fw_rulefiles_valid_list_name(name, strlen(name))) {
        snprintf(err, errlen, "\"%.80s\" is not a valid watchlist name: "
                              FW_LIST_NAME_RULE, name ? name : "");
        return FW_RSTORE_REFUSED;
    }
    struct expire_tx t = { .r = r, .name = name };
    list_key(t.lk, sizeof t.lk, name);
    version_key(t.vk, sizeof t.vk, name);
    until_key(t.uk, sizeof t.uk, name);
    info_key(t.ik, sizeof t.ik, name);
    char gave_up[256];
    snprintf(gave_up, sizeof gave_up, "watchlist %s kept changing while its expired "
                                      "entries were being removed: run it again", name);
    const char *const watch[1] = { t.vk };
    int rc = 0;
    for (;;) {
        /* Entries whose UNTIL is at or before before_ms: member for no
         * event with ts >= UNTIL, and the daemons take none older. */
        fw_rcmds reads = { 0 };
        fw_rcmds_add(&reads, "GET", t.vk, (const char *)NULL);
        fw_rcmds_add(&reads, "ZRANGEBYSCORE", t.uk, "-inf",
                     fw_rcmds_fmt(&reads, "%lld", (long long)before_ms), "LIMIT", "0",
                     fw_rcmds_fmt(&reads, "%d", EXPIRE_BATCH), (const char *)NULL);
        const fw_redis_tx tx = {
            .what = "lists expire (MULTI/EXEC)",
            .watch = watch,
            .nwatch = 1,
            .reads = &reads,
            .reads_what = "reading the expired entries",
            .build = expire_build,
            .ctx = &t,
            .gave_up = gave_up,
        };
        redisReply *exec;
        rc = fw_redis_optimistic(r, &tx, &exec, err, errlen);
        fw_rcmds_free(&reads);
        if (rc != 0)
            break;
        size_t batch = t.n;
        if (t.i_removed >= 0) {
            if (exec->element[t.i_removed]->type == REDIS_REPLY_INTEGER)
                res->changed += (size_t)exec->element[t.i_removed]->integer;
            res->version = (uint64_t)exec->element[t.i_version]->integer;
            res->generation = (uint64_t)exec->element[t.i_gen]->integer;
            res->size = (size_t)exec->element[t.i_size]->integer;
        }
        freeReplyObject(exec);
        if (batch < EXPIRE_BATCH)
            break;
    }
    free_vals(&t);
    res->seconds = (double)(fw_mono_ms() - t0) / 1000.0;
    return rc;
}

int fw_rstore_list_names(fw_rstore *r, char ***names, size_t *n, char *err,
                         size_t errlen)
{
    *names = NULL;
    *n = 0;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    const char *argv[2] = { "SMEMBERS", K_LISTS };
    redisReply *rep = fw_redis_run(r, "SMEMBERS " K_LISTS, 2, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        snprintf(err, errlen, "%s: SMEMBERS %s: unexpected reply", r->where, K_LISTS);
        return FW_RSTORE_ERR;
    }
    *names = fw_xcalloc(rep->elements + 1, sizeof **names);
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            (*names)[(*n)++] = fw_xstrndup(rep->element[i]->str, rep->element[i]->len);
    freeReplyObject(rep);
    return 0;
}
