/* rstore_sets.c — rule sets in Redis: the versions, push, fetch (the
 * daemon's read), pull (back to files).
 *
 * A push is one optimistic transaction (fw_redis_optimistic): the rule
 * files are replaced, every staged list (rstore_stage.c) is renamed into
 * place, lists the set no longer has are removed, every replaced list's
 * change log is deleted, the versions and the generation are bumped and the
 * notification is published, all in one MULTI/EXEC, so a reader sees the
 * old set or the new one, never a mix.  Validation is the rule loader's
 * (fw_ruleset_load_files): the bytes validated are the bytes stored, so
 * nothing unvalidated can reach Redis.  A push may carry a hook
 * (rstore_history.h): the rule history's record, blobs and trimming, added
 * to the same transaction with its own keys WATCHed (rstore_history.c).
 *
 * A read takes the version, generation, rule files and list names in one
 * MULTI/EXEC; a push meanwhile (the rules version moved by the end)
 * restarts it.  Lists are where the cost is, so the daemon's read
 * (fw_rstore_fetch_update) reads only what changed since the set it holds:
 * a list whose version did not move is kept (shared), one that moved by
 * `lists add`/`remove` gets those changes from its change log (rstore_log.c)
 * as a delta on the daemon's own copy (watchlist.c), and only the rest is
 * read whole.  A read whole is SSCAN (never an SMEMBERS of a million
 * entries that would block Redis) between two reads of the list's version;
 * changes made during the scan come from the log and are applied on top,
 * so a list that changes every few seconds does not make a half-minute
 * read start over (issue 10.4); only when the log lacks them is it scanned
 * again.  fw_rstore_fetch (files, for tools) and pull read lists the same
 * way into text; fw_rstore_fetch keeps a per-handle cache of lists by
 * version.
 *
 * Reading files (a rules directory), file and watchlist names and the .list
 * text are rulefiles.c's, shared with the loader, so what a push stores and
 * what the loader accepts cannot drift apart. */
#include "rstore_internal.h"
#include "rstore_history.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/hash.h"
#include "fraudwatch/timetext.h"

/* ---- versions ------------------------------------------------------------------ */

int fw_rstore_generation(fw_rstore *r, uint64_t *gen, char *err, size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    const char *argv[2] = { "GET", K_GENERATION };
    redisReply *rep = fw_redis_run(r, "GET " K_GENERATION, 2, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    int rc = fw_redis_u64(r, rep, K_GENERATION, gen, err, errlen);
    freeReplyObject(rep);
    return rc;
}

/* ---- push ------------------------------------------------------------------ */

/* A push under way: the set, its lists, and where the results will be. */
struct push {
    fw_rstore *r;
    const fw_rulefile *files;
    size_t n;
    size_t nl;                 /* watchlists in the set */
    char **names;              /* their names */
    char **tmpkeys;            /* their staged keys; NULL: an empty list */
    fw_rentries *ent;
    fw_rexp_staged *exp;       /* their staged UNTILs and records (rstore_expiry.c) */
    fw_rstore_push_result *res;
    int i_version, i_gen, i_pub;   /* in the EXEC reply */
    const fw_rpush_hook *hook;     /* the history record (rstore_history.c) */
    size_t nstaged;                /* staged keys: their EXPIREs among the reads */
};

/* The lists of Redis that the set no longer has: UNLINK + INCR version. */
static void push_remove_stale(struct push *p, const redisReply *old, fw_rcmds *tx)
{
    p->res->nremoved = 0;
    for (size_t i = 0; i < old->elements; i++) {
        const char *o = old->element[i]->str ? old->element[i]->str : "";
        bool kept = false;
        for (size_t j = 0; j < p->nl && !kept; j++)
            kept = strcmp(o, p->names[j]) == 0;
        if (kept || !fw_rulefiles_valid_list_name(o, strlen(o)))
            continue;
        fw_rcmds_add(tx, "UNLINK", fw_rcmds_fmt(tx, K_LIST "%s", o), (const char *)NULL);
        fw_rcmds_add(tx, "INCR", fw_rcmds_fmt(tx, K_LIST "%s:version", o),
                     (const char *)NULL);
        fw_rlog_drop(tx, o);
        fw_rexp_drop(tx, o);
        p->res->nremoved++;
    }
}

/* Builds the push transaction from GET version, SMEMBERS lists and the
 * staged keys' EXPIREs (fw_redis_tx.build). */
static int push_build(void *ctx, redisReply **rep, fw_rcmds *tx, char *err,
                      size_t errlen)
{
    struct push *p = ctx;
    int rc = fw_rstage_check(p->r, rep + 2, p->tmpkeys,
                             (const char *const *)p->names, p->nl, err, errlen);
    size_t kept = 0;
    for (size_t i = 0; i < p->nl; i++)
        kept += p->tmpkeys[i] != NULL;
    for (size_t i = 0; i < p->nl && rc == 0; i++) {   /* and the staged expiries */
        char *mk[2] = { p->exp[i].until_tmp, p->exp[i].info_tmp };
        const char *nm[2] = { p->names[i], p->names[i] };
        rc = fw_rstage_check(p->r, rep + 2 + kept, mk, nm, 2, err, errlen);
        kept += (mk[0] != NULL) + (mk[1] != NULL);
    }
    if (rc != 0)
        return rc;
    uint64_t cur;
    if (fw_redis_u64(p->r, rep[0], K_VERSION, &cur, err, errlen) != 0)
        return FW_RSTORE_ERR;
    if (rep[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "%s: unexpected SMEMBERS reply", p->r->where);
        return FW_RSTORE_ERR;
    }
    fw_rcmds_add(tx, "DEL", K_FILES, (const char *)NULL);
    fw_rcmds_add(tx, "HSET", K_FILES, (const char *)NULL);
    for (size_t i = 0; i < p->n; i++) {
        if (!fw_rulefiles_is_rules(p->files[i].name))
            continue;
        fw_rcmds_str(tx, p->files[i].name);
        fw_rcmds_arg(tx, p->files[i].data, p->files[i].len);
    }
    for (size_t i = 0; i < p->nl; i++) {
        const char *lk = fw_rcmds_fmt(tx, K_LIST "%s", p->names[i]);
        fw_rcmds_add(tx, "UNLINK", lk, (const char *)NULL);
        if (p->tmpkeys[i]) {
            fw_rcmds_add(tx, "RENAME", p->tmpkeys[i], lk, (const char *)NULL);
            fw_rcmds_add(tx, "PERSIST", lk, (const char *)NULL);
        }
        fw_rcmds_add(tx, "INCR", fw_rcmds_fmt(tx, K_LIST "%s:version", p->names[i]),
                     (const char *)NULL);
        fw_rlog_drop(tx, p->names[i]);   /* replaced: no delta leads here */
        fw_rexp_swap(tx, p->names[i], &p->exp[i]);
    }
    push_remove_stale(p, rep[1], tx);
    fw_rcmds_add(tx, "DEL", K_LISTS, (const char *)NULL);
    if (p->nl) {
        fw_rcmds_add(tx, "SADD", K_LISTS, (const char *)NULL);
        for (size_t i = 0; i < p->nl; i++)
            fw_rcmds_str(tx, p->names[i]);
    }
    p->i_version = fw_rcmds_add(tx, "INCR", K_VERSION, (const char *)NULL);
    p->i_gen = fw_rcmds_add(tx, "INCR", K_GENERATION, (const char *)NULL);
    p->i_pub = fw_rcmds_add(tx, "PUBLISH", CHANNEL,
                            fw_rcmds_fmt(tx, "rules %llu", (unsigned long long)cur + 1),
                            (const char *)NULL);
    if (p->hook)   /* the history record, in the same transaction */
        return p->hook->build(p->hook->ctx, rep + 2 + p->nstaged, cur + 1, tx, err,
                              errlen);
    return 0;
}

/* Validates the set exactly as `rules check` and the daemon do. */
static int push_validate(const fw_rulefile *files, size_t n,
                         fw_rstore_push_result *res, char *err, size_t errlen)
{
    fw_ruleset *rs = NULL;
    char *verr = fw_xmalloc(errlen ? errlen : 1);
    if (fw_ruleset_load_files(files, n, 1, &rs, verr, errlen ? errlen : 1) != 0) {
        snprintf(err, errlen, "the rule set is refused; nothing was changed in "
                              "redis:\n%s", verr);
        free(verr);
        return FW_RSTORE_REFUSED;
    }
    free(verr);
    res->nrules = fw_ruleset_rule_count(rs);
    fw_ruleset_unref(rs);
    for (size_t i = 0; i < n; i++)
        if (fw_rulefiles_is_rules(files[i].name) &&
            !fw_rulefiles_valid_rules_name(files[i].name, strlen(files[i].name))) {
            snprintf(err, errlen, "%s: a rule file name cannot start with '.' "
                                  "or hold '/'; nothing was changed in redis",
                     files[i].name);
            return FW_RSTORE_REFUSED;
        }
    return 0;
}

/* Steps 2 and 3: the lists and their entries, each non-empty one staged. */
static int push_stage(struct push *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->n; i++)
        if (fw_rulefiles_is_list(p->files[i].name))
            p->nl++;
    p->names = fw_xcalloc(p->nl + 1, sizeof *p->names);
    p->tmpkeys = fw_xcalloc(p->nl + 1, sizeof *p->tmpkeys);
    p->ent = fw_xcalloc(p->nl + 1, sizeof *p->ent);
    p->exp = fw_xcalloc(p->nl + 1, sizeof *p->exp);
    char token[40];
    fw_rstage_token(token, sizeof token);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        const fw_rulefile *f = &p->files[i];
        if (!fw_rulefiles_is_list(f->name))
            continue;
        p->names[k] = fw_xstrndup(f->name, strlen(f->name) - 5);
        fw_rentries_parse(f->data, f->len, &p->ent[k]);
        k++;
    }
    p->res->nlists = p->nl;
    for (size_t i = 0; i < p->n; i++)
        if (fw_rulefiles_is_rules(p->files[i].name))
            p->res->nfiles++;
    for (size_t i = 0; i < p->nl; i++) {
        if (p->ent[i].n == 0)
            continue;
        size_t klen = strlen(K_TMP) + strlen(token) + strlen(p->names[i]) + 2;
        p->tmpkeys[i] = fw_xmalloc(klen);
        snprintf(p->tmpkeys[i], klen, K_TMP "%s:%s", token, p->names[i]);
        size_t unique = 0;
        int rc = fw_rstage_list(p->r, p->tmpkeys[i], &p->ent[i], &unique, err, errlen);
        if (rc != 0)
            return rc;
        p->res->nentries += unique;
    }
    for (size_t i = 0; i < p->nl; i++) {   /* UNTILs, reasons, the "#" record */
        int rc = fw_rexp_stage(p->r, token, p->names[i], &p->ent[i], "rules push",
                               &p->exp[i], err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int fw_rstore_push_files(fw_rstore *r, const fw_rulefile *files, size_t n,
                         fw_rstore_push_result *res, char *err, size_t errlen)
{
    return fw_rstore_push_hooked(r, files, n, NULL, res, err, errlen);
}

int fw_rstore_push_hooked(fw_rstore *r, const fw_rulefile *files, size_t n,
                          const fw_rpush_hook *hook, fw_rstore_push_result *res,
                          char *err, size_t errlen)
{
    fw_rstore_push_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);

    /* 1. Validate: exactly the loader `rules check` and the daemon use. */
    int rc = push_validate(files, n, res, err, errlen);
    if (rc != 0)
        return rc;

    /* 2, 3. The lists, staged into temporary keys. */
    struct push p = { .r = r, .files = files, .n = n, .res = res, .hook = hook };
    redisReply *exec = NULL;
    fw_rcmds reads = { 0 };
    if ((rc = push_stage(&p, err, errlen)) != 0)
        goto out;

    /* 4. One transaction, rebuilt when another writer got in between. */
    const char *watch[2 + FW_RPUSH_HOOK_MAX_WATCH] = { K_VERSION, K_LISTS };
    int nwatch = 2;
    fw_rcmds_add(&reads, "GET", K_VERSION, (const char *)NULL);
    fw_rcmds_add(&reads, "SMEMBERS", K_LISTS, (const char *)NULL);
    fw_rstage_keep(&reads, p.tmpkeys, p.nl);
    for (size_t i = 0; i < p.nl; i++) {   /* and the staged expiries */
        char *mk[2] = { p.exp[i].until_tmp, p.exp[i].info_tmp };
        fw_rstage_keep(&reads, mk, 2);
    }
    /* The hook's reads come after every staged key's EXPIRE. */
    for (size_t i = 0; i < p.nl; i++)
        p.nstaged += (p.tmpkeys[i] != NULL) + (p.exp[i].until_tmp != NULL) +
                     (p.exp[i].info_tmp != NULL);
    if (hook) {
        for (int i = 0; i < hook->nwatch && i < FW_RPUSH_HOOK_MAX_WATCH; i++)
            watch[nwatch++] = hook->watch[i];
        hook->reads(hook->ctx, &reads);
    }
    const fw_redis_tx tx = {
        .what = "push (MULTI/EXEC)",
        .watch = watch,
        .nwatch = nwatch,
        .reads = &reads,
        .reads_what = "preparing the transaction",
        .build = push_build,
        .ctx = &p,
        .gave_up = "other writers kept changing the store during the push; "
                   "nothing was changed: run it again",
    };
    if ((rc = fw_redis_optimistic(r, &tx, &exec, err, errlen)) != 0)
        goto out;
    res->version = (uint64_t)exec->element[p.i_version]->integer;
    res->generation = (uint64_t)exec->element[p.i_gen]->integer;
    res->notified = exec->element[p.i_pub]->integer;
    freeReplyObject(exec);
    for (size_t i = 0; i < p.nl; i++) {   /* renamed: nothing to clean up */
        free(p.tmpkeys[i]);
        p.tmpkeys[i] = NULL;
        fw_rexp_staged_free(&p.exp[i]);
    }
out:
    if (rc != 0)
        fw_rstage_drop(r, p.tmpkeys, p.nl);
    for (size_t i = 0; rc != 0 && p.exp && i < p.nl; i++)
        fw_rexp_staged_drop(r, &p.exp[i]);
    fw_rcmds_free(&reads);
    for (size_t i = 0; i < p.nl; i++) {
        free(p.names[i]);
        free(p.tmpkeys[i]);
        fw_rentries_free(&p.ent[i]);
        if (p.exp)
            fw_rexp_staged_free(&p.exp[i]);
    }
    free(p.exp);
    free(p.names);
    free(p.tmpkeys);
    free(p.ent);
    return rc;
}

int fw_rstore_push_dir(fw_rstore *r, const char *dir, fw_rstore_push_result *res,
                       char *err, size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    fw_rulefile *files = NULL;
    size_t n = 0;
    char *rerr = fw_xmalloc(errlen ? errlen : 1);
    if (fw_rulefiles_read_dir(dir, &files, &n, rerr, errlen ? errlen : 1) != 0) {
        /* a FIFO, a 3 GiB file, a missing directory: refused unread */
        snprintf(err, errlen, "the rule set in %s is refused; nothing was changed "
                              "in redis:\n%s", dir, rerr);
        free(rerr);
        return FW_RSTORE_REFUSED;
    }
    free(rerr);
    int rc = fw_rstore_push_files(r, files, n, res, err, errlen);
    if (rc == FW_RSTORE_REFUSED && strncmp(err, "the rule set", 12) == 0) {
        size_t len = strlen(err) + strlen(dir) + 32;
        char *copy = fw_xmalloc(len);
        snprintf(copy, len, "%s: %s", dir, err);
        snprintf(err, errlen, "%s", copy);
        free(copy);
    }
    fw_rulefiles_free(files, n);
    return rc;
}

/* ---- the list cache of a handle ------------------------------------------------- */

struct snap_list {
    char *name;
    uint64_t version;
    char *text;        /* entries, each followed by '\n' */
    size_t len;
    size_t count;      /* entries (SSCAN may repeat one) */
};

struct snap {
    uint64_t version, generation;
    fw_rulefile *json;
    size_t njson;
    struct snap_list *lists;
    size_t nlists;
};

/* One cached watchlist: its text as fw_rstore_fetch hands it out. */
struct cached_list {
    char *name;
    uint64_t version;
    char *text;
    size_t len;
};

struct fw_rcache {
    struct cached_list *l;
    size_t n;
    uint64_t generation;   /* of the fetch that filled the cache */
};

static void cache_free(struct fw_rcache *c)
{
    for (size_t i = 0; c && i < c->n; i++) {
        free(c->l[i].name);
        free(c->l[i].text);
    }
    if (c)
        free(c->l);
    free(c);
}

static struct fw_rcache *cache_of(fw_rstore *r)
{
    if (!r->cache) {
        r->cache = fw_xcalloc(1, sizeof *r->cache);
        r->cache_free = cache_free;
    }
    return r->cache;
}

static struct cached_list *cache_find(fw_rstore *r, const char *name)
{
    struct fw_rcache *c = cache_of(r);
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->l[i].name, name) == 0)
            return &c->l[i];
    return NULL;
}

static void cache_put(fw_rstore *r, const struct snap_list *l)
{
    if (l->version == 0)   /* not written by fraudwatch: never trust it */
        return;
    struct cached_list *c = cache_find(r, l->name);
    if (!c) {
        struct fw_rcache *cc = r->cache;
        cc->l = fw_xrealloc(cc->l, (cc->n + 1) * sizeof *cc->l);
        c = &cc->l[cc->n++];
        c->name = fw_xstrdup(l->name);
        c->text = NULL;
    }
    free(c->text);
    c->version = l->version;
    c->text = fw_xstrndup(l->text, l->len);
    c->len = l->len;
}

/* Keeps only the cached lists that the last snapshot had. */
static void cache_prune(fw_rstore *r, const struct snap *s)
{
    struct fw_rcache *c = cache_of(r);
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        bool live = false;
        for (size_t j = 0; j < s->nlists && !live; j++)
            live = strcmp(c->l[i].name, s->lists[j].name) == 0;
        if (live) {
            c->l[w++] = c->l[i];
        } else {
            free(c->l[i].name);
            free(c->l[i].text);
        }
    }
    c->n = w;
}

/* ---- snapshot (fetch, pull) ---------------------------------------------------- */

static void snap_free(struct snap *s)
{
    fw_rulefiles_free(s->json, s->njson);
    for (size_t i = 0; i < s->nlists; i++) {
        free(s->lists[i].name);
        free(s->lists[i].text);
    }
    free(s->lists);
    memset(s, 0, sizeof *s);
}

/* A GET of a counter: 0 and *v, or an error. */
static int get_u64(fw_rstore *r, const char *what, const char *key, uint64_t *v,
                   char *err, size_t errlen)
{
    const char *get[2] = { "GET", key };
    redisReply *rep = fw_redis_run(r, what, 2, get, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    int rc = fw_redis_u64(r, rep, key, v, err, errlen);
    freeReplyObject(rep);
    return rc;
}

/* Every member of the set lk, with SSCAN, each handed to fn. */
static int sscan_each(fw_rstore *r, const char *lk,
                      void (*fn)(void *ctx, const char *s, size_t n), void *ctx,
                      size_t *count, char *err, size_t errlen)
{
    char cursor[32] = "0";
    *count = 0;
    do {
        const char *scan[5] = { "SSCAN", lk, cursor, "COUNT", FW_REDIS_SCAN_COUNT };
        redisReply *rep = fw_redis_run(r, "SSCAN", 5, scan, err, errlen);
        if (!rep)
            return FW_RSTORE_ERR;
        if (!fw_redis_is_array(rep, 2) || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY ||
            rep->element[0]->len >= sizeof cursor) {
            snprintf(err, errlen, "%s: SSCAN %s: unexpected reply", r->where, lk);
            freeReplyObject(rep);
            return FW_RSTORE_ERR;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        const redisReply *m = rep->element[1];
        for (size_t i = 0; i < m->elements; i++) {
            if (m->element[i]->type != REDIS_REPLY_STRING)
                continue;
            fn(ctx, m->element[i]->str, m->element[i]->len);
            (*count)++;
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static void put_line(void *ctx, const char *s, size_t n)
{
    fw_buf_put(ctx, s, n);
    fw_buf_putc(ctx, '\n');
}


/* Each value of a logged change ('\n' between them), to fn with the
 * change's kind: '+', '-', or '*' (the line is VALUE<TAB>UNTIL[<TAB>REASON]). */
static void each_logged(const fw_rlog_op *op, void (*fn)(void *, const char *, size_t, char),
                        void *ctx)
{
    for (const char *p = op->values, *end = op->values + op->len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (e > p)
            fn(ctx, p, (size_t)(e - p), op->kind);
        p = nl ? nl + 1 : end;
    }
}

static void apply_to_build(void *ctx, const char *s, size_t n, char kind)
{
    if (kind == '*')
        fw_listbuild_add_entries(ctx, s, n);
    else if (kind == '+')
        fw_listbuild_add(ctx, s, n);
    else
        fw_listbuild_remove(ctx, s, n);
}

/* A full read takes the list's UNTILs (ZSCAN of :until) first, then the
 * set's members that are not among them: each entry is stored once. */
static void put_until(void *ctx, const char *s, size_t n, int64_t until)
{
    fw_listbuild_add_until(ctx, s, n, until);
}

static void put_missing(void *ctx, const char *s, size_t n)
{
    fw_listbuild_add_missing(ctx, s, n);
}

/* The last change of each value in a log: an item is the value's length,
 * the change ('+' / '-'), the value, then the whole line to put back (for
 * '*' changes, VALUE<TAB>UNTIL[<TAB>REASON]) after its own length. */
struct last {
    uint32_t n;
    char change;
    char *line;
    size_t line_len;
    char value[];
};

static bool last_eq(const void *item, const void *key, size_t len)
{
    const struct last *l = item;
    return l->n == len && memcmp(l->value, key, len) == 0;
}

static void note_last(void *ctx, const char *s, size_t n, char kind)
{
    fw_hmap *m = ctx;
    size_t vn = n;
    if (kind == '*') {   /* keyed by the value: the text of '+' lines is plain */
        const char *tab = memchr(s, '\t', n);
        vn = tab ? (size_t)(tab - s) : n;
    }
    uint64_t h = fw_hash64(s, vn, 7);
    struct last *it = fw_hmap_find(m, h, s, vn, last_eq);
    if (!it) {
        it = fw_xcalloc(1, sizeof *it + vn);
        it->n = (uint32_t)vn;
        memcpy(it->value, s, vn);
        if (fw_hmap_insert(m, h, it) != 0)
            fw_oom();
    }
    free(it->line);
    it->change = kind == '-' ? '-' : '+';
    it->line = fw_xstrndup(s, n);
    it->line_len = n;
}

/* A list's text (one entry a line) with the log's changes applied: each
 * changed value is dropped, and put back once if its last change added
 * it.  One pass over the text (this is a full read already). */
static void apply_to_text(fw_buf *b, const fw_rlog *log, size_t *count)
{
    fw_hmap *last = fw_hmap_new(log->nvalues + 1);
    if (!last)
        fw_oom();
    for (size_t i = 0; i < log->n; i++)
        each_logged(&log->ops[i], note_last, last);
    fw_buf out = { 0 };
    *count = 0;
    for (const char *p = b->p, *end = b->p + b->len; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(e - p));   /* annotated lines */
        size_t n = (size_t)((tab ? tab : e) - p);
        if (!fw_hmap_find(last, fw_hash64(p, n, 7), p, n, last_eq)) {
            put_line(&out, p, (size_t)(e - p));
            (*count)++;
        }
        p = nl ? nl + 1 : end;
    }
    void *it;
    size_t pos = 0;
    while ((it = fw_hmap_next(last, &pos))) {
        struct last *l = it;
        if (l->change == '+') {
            put_line(&out, l->line, l->line_len);
            (*count)++;
        }
        free(l->line);
        free(it);
    }
    fw_hmap_free(last);
    fw_buf_free(b);
    *b = out;
}

/* One list, read with SSCAN between two reads of its version (or taken from
 * the cache when its version is the cached one).  Changes made during the
 * scan come from the list's change log; only when the log lacks them is
 * the list scanned again. */
static int read_list(fw_rstore *r, struct snap_list *l, bool use_cache, char *err,
                     size_t errlen)
{
    char lk[160], vk[160];
    list_key(lk, sizeof lk, l->name);
    version_key(vk, sizeof vk, l->name);
    for (int attempt = 0; attempt < FW_REDIS_MAX_ATTEMPTS; attempt++) {
        fw_redis_backoff(attempt);
        uint64_t v1, v2;
        int rc = get_u64(r, "GET list version", vk, &v1, err, errlen);
        if (rc != 0)
            return rc;
        struct cached_list *c = use_cache ? cache_find(r, l->name) : NULL;
        if (c && v1 != 0 && c->version == v1) {
            l->version = v1;
            l->text = fw_xstrndup(c->text, c->len);
            l->len = c->len;
            l->count = 0;
            for (size_t i = 0; i < c->len; i++)
                l->count += c->text[i] == '\n';
            return 0;
        }
        fw_buf b = { 0 };
        size_t count;
        if ((rc = sscan_each(r, lk, put_line, &b, &count, err, errlen)) != 0 ||
            (rc = fw_rexp_annotate(r, l->name, &b, err, errlen)) != 0 ||
            (rc = get_u64(r, "GET list version", vk, &v2, err, errlen)) != 0) {
            fw_buf_free(&b);
            return rc;
        }
        if (v1 != v2 && v1 != 0) {   /* changed while being read */
            fw_rlog log;
            rc = fw_rlog_read(r, l->name, v1, v2, &log, err, errlen);
            if (rc < 0) {
                fw_buf_free(&b);
                return rc;
            }
            if (rc == 0) {
                apply_to_text(&b, &log, &count);
                v1 = v2 = log.to;
                fw_rlog_free(&log);
            }
        }
        if (v1 == v2) {
            l->version = v1;
            l->text = b.p ? b.p : fw_xstrdup("");
            l->len = b.len;
            l->count = count;
            if (use_cache)
                cache_put(r, l);
            return 0;
        }
        fw_buf_free(&b);   /* changed while being read, and no log of it: again */
    }
    snprintf(err, errlen, "%s: watchlist %s kept changing while it was being "
                          "read; try again", r->where, l->name);
    return FW_RSTORE_ERR;
}

/* The versions, the rule files and the list names, in one MULTI/EXEC. */
static int read_head(fw_rstore *r, struct snap *s, char *err, size_t errlen)
{
    fw_rcmds cmds = { 0 };
    fw_rcmds_add(&cmds, "GET", K_VERSION, (const char *)NULL);
    fw_rcmds_add(&cmds, "GET", K_GENERATION, (const char *)NULL);
    fw_rcmds_add(&cmds, "HGETALL", K_FILES, (const char *)NULL);
    fw_rcmds_add(&cmds, "SMEMBERS", K_LISTS, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &cmds, &exec, "reading the rule set", err, errlen);
    fw_rcmds_free(&cmds);
    if (rc != 0)
        return rc < 0 ? rc : FW_RSTORE_ERR;
    const redisReply *h = exec->element[2], *ln = exec->element[3];
    if ((rc = fw_redis_u64(r, exec->element[0], K_VERSION, &s->version, err, errlen)) ||
        (rc = fw_redis_u64(r, exec->element[1], K_GENERATION, &s->generation, err,
                           errlen))) {
        freeReplyObject(exec);
        return rc;
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements % 2 ||
        ln->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "%s: unexpected reply reading %s / %s", r->where,
                 K_FILES, K_LISTS);
        freeReplyObject(exec);
        return FW_RSTORE_ERR;
    }
    s->njson = h->elements / 2;
    s->json = fw_xcalloc(s->njson + 1, sizeof *s->json);
    s->lists = fw_xcalloc(ln->elements + 1, sizeof *s->lists);
    for (size_t i = 0; i < s->njson; i++) {
        const redisReply *k = h->element[2 * i], *v = h->element[2 * i + 1];
        s->json[i].name = fw_xstrndup(k->str ? k->str : "", k->len);
        s->json[i].data = fw_xstrndup(v->str ? v->str : "", v->len);
        s->json[i].len = v->len;
    }
    for (size_t i = 0; i < ln->elements; i++) {
        const redisReply *e = ln->element[i];
        s->lists[s->nlists++].name = fw_xstrndup(e->str ? e->str : "", e->len);
    }
    freeReplyObject(exec);
    return 0;
}

/* Every list of the snapshot whose head read_head() took. */
static int read_lists(fw_rstore *r, struct snap *s, bool use_cache, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < s->nlists; i++) {
        if (!fw_rulefiles_valid_list_name(s->lists[i].name, strlen(s->lists[i].name))) {
            snprintf(err, errlen, "%s: %s holds \"%.80s\", not a valid "
                                  "watchlist name (written by something other "
                                  "than fraudwatch?)", r->where, K_LISTS,
                     s->lists[i].name);
            return FW_RSTORE_ERR;
        }
        int rc = read_list(r, &s->lists[i], use_cache, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int snapshot(fw_rstore *r, struct snap *s, bool use_cache, char *err,
                    size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    for (int attempt = 0; attempt < FW_REDIS_MAX_ATTEMPTS; attempt++) {
        fw_redis_backoff(attempt);
        int rc = read_head(r, s, err, errlen);
        if (rc != 0) {
            snap_free(s);
            return rc;
        }
        /* A generation that went back means the store was wiped (FLUSHALL,
         * a restart without persistence): versions start again at 1 and a
         * cached list of the same version may hold other entries. */
        if (use_cache && s->generation < cache_of(r)->generation) {
            cache_free(r->cache);
            r->cache = NULL;
        }
        if (s->njson)
            fw_rulefiles_sort(s->json, s->njson);
        if ((rc = read_lists(r, s, use_cache, err, errlen)) != 0) {
            snap_free(s);
            return rc;
        }
        /* A push meanwhile: its lists may not match the rules read above. */
        uint64_t v2 = 0;
        if (get_u64(r, "GET " K_VERSION, K_VERSION, &v2, err, errlen) != 0) {
            snap_free(s);
            return FW_RSTORE_ERR;
        }
        if (v2 == s->version) {
            if (use_cache) {
                cache_prune(r, s);
                r->cache->generation = s->generation;
            }
            return 0;
        }
        snap_free(s);
    }
    snprintf(err, errlen, "%s: rule sets kept being pushed while the set was "
                          "being read; try again", r->where);
    return FW_RSTORE_ERR;
}

int fw_rstore_fetch(fw_rstore *r, fw_rulefile **files, size_t *nfiles,
                    uint64_t *version, uint64_t *generation, char *err,
                    size_t errlen)
{
    *files = NULL;
    *nfiles = 0;
    struct snap s;
    int rc = snapshot(r, &s, true, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = s.njson + s.nlists;
    fw_rulefile *out = fw_xcalloc(n + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < s.njson; i++)
        out[k++] = s.json[i];
    free(s.json);
    s.json = NULL;
    s.njson = 0;
    for (size_t i = 0; i < s.nlists; i++) {
        size_t len = strlen(s.lists[i].name) + 6;
        char *name = fw_xmalloc(len);
        snprintf(name, len, "%s.list", s.lists[i].name);
        out[k].name = name;
        out[k].data = s.lists[i].text;
        out[k].len = s.lists[i].len;
        k++;
        s.lists[i].text = NULL;
    }
    fw_rulefiles_sort(out, n);
    *files = out;
    *nfiles = n;
    *version = s.version;
    *generation = s.generation;
    snap_free(&s);
    return 0;
}

/* ---- the daemon's read: what changed since the set it holds ---------------------- */

static int snap_list_cmp(const void *a, const void *b)
{
    return strcmp(((const struct snap_list *)a)->name, ((const struct snap_list *)b)->name);
}

/* List NAME read whole into a new builder: SSCAN between two reads of its
 * version; changes made during the scan are applied from the change log
 * (a list that keeps changing is not scanned again and again: issue 10.4),
 * and only when the log lacks them is it scanned again. */
static int full_list(fw_rstore *r, const char *name, fw_listbuild **out,
                     uint64_t *version, size_t *entries, char *err, size_t errlen)
{
    char lk[160], vk[160];
    list_key(lk, sizeof lk, name);
    version_key(vk, sizeof vk, name);
    for (int attempt = 0; attempt < FW_REDIS_MAX_ATTEMPTS; attempt++) {
        fw_redis_backoff(attempt);
        const char *get[2] = { "GET", vk }, *card[2] = { "SCARD", lk };
        redisReply *rep[2];
        fw_redis_send(r, 2, get);
        fw_redis_send(r, 2, card);
        int rc = fw_redis_drain(r, 2, rep, "reading a watchlist's version and size",
                                err, errlen);
        if (rc != 0)
            return rc;
        uint64_t v1, v2;
        rc = fw_redis_u64(r, rep[0], vk, &v1, err, errlen);
        size_t hint = rep[1]->type == REDIS_REPLY_INTEGER && rep[1]->integer > 0
                          ? (size_t)rep[1]->integer : 0;
        freeReplyObject(rep[0]);
        freeReplyObject(rep[1]);
        if (rc != 0)
            return rc;
        /* The UNTILs first, then the set's members (each entry stored
         * once); an UNTIL whose value is not in the set is dropped. */
        fw_listbuild *b = fw_listbuild_new(hint);
        if ((rc = fw_rexp_scan_until(r, name, put_until, b, err, errlen)) != 0 ||
            (rc = sscan_each(r, lk, put_missing, b, entries, err, errlen)) != 0 ||
            (rc = get_u64(r, "GET list version", vk, &v2, err, errlen)) != 0) {
            fw_listbuild_free(b);
            return rc;
        }
        fw_listbuild_keep_seen(b);   /* an UNTIL without its member is no entry */
        if (v1 != v2 && v1 != 0) {
            fw_rlog log;
            rc = fw_rlog_read(r, name, v1, v2, &log, err, errlen);
            if (rc < 0) {
                fw_listbuild_free(b);
                return rc;
            }
            if (rc == 0) {
                for (size_t i = 0; i < log.n; i++)
                    each_logged(&log.ops[i], apply_to_build, b);
                v1 = v2 = log.to;
                fw_rlog_free(&log);
            }
        }
        if (v1 == v2) {
            *out = b;
            *version = v1;
            return 0;
        }
        fw_listbuild_free(b);   /* changed meanwhile, and no log of it: again */
    }
    snprintf(err, errlen, "%s: watchlist %s kept changing while it was being "
                          "read, faster than its change log keeps; try again",
             r->where, name);
    return FW_RSTORE_ERR;
}

/* List NAME as `have` holds it (version from) plus the changes of its log
 * up to (at least) version `to`: 0, 1 when the log does not cover them. */
static int delta_list(fw_rstore *r, const fw_ruleset *have, const char *name,
                      uint64_t from, uint64_t to, fw_listpart *part,
                      fw_rstore_update *u, char *err, size_t errlen)
{
    fw_rlog log;
    int rc = fw_rlog_read(r, name, from, to, &log, err, errlen);
    if (rc != 0)
        return rc;
    part->entries = fw_listbuild_from(have, name);
    for (size_t i = 0; i < log.n; i++)
        each_logged(&log.ops[i], apply_to_build, part->entries);
    part->version = log.to;
    u->deltas++;
    u->delta_changes += log.n;
    u->delta_values += log.nvalues;
    fw_rlog_free(&log);
    return 0;
}

/* Each list of the snapshot whose head was read: kept, a delta, or read
 * whole (and why). */
static int update_lists(fw_rstore *r, const fw_ruleset *have, const struct snap *s,
                        fw_rstore_update *u, char *err, size_t errlen)
{
    u->lists = fw_xcalloc(s->nlists + 1, sizeof *u->lists);
    if (!s->nlists)
        return 0;
    for (size_t i = 0; i < s->nlists; i++) {
        char vk[160];
        version_key(vk, sizeof vk, s->lists[i].name);
        const char *get[2] = { "GET", vk };
        fw_redis_send(r, 2, get);
    }
    redisReply **reps = fw_xcalloc(s->nlists, sizeof *reps);
    int rc = fw_redis_drain(r, (int)s->nlists, reps, "reading watchlist versions",
                            err, errlen);
    uint64_t *now = fw_xcalloc(s->nlists, sizeof *now);
    for (size_t i = 0; i < s->nlists && rc == 0; i++) {
        char vk[160];
        version_key(vk, sizeof vk, s->lists[i].name);
        rc = fw_redis_u64(r, reps[i], vk, &now[i], err, errlen);
    }
    for (size_t i = 0; i < s->nlists; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
    free(reps);
    for (size_t i = 0; i < s->nlists && rc == 0; i++) {
        const char *name = s->lists[i].name;
        fw_listpart *part = &u->lists[u->nlists++];
        part->name = fw_xstrdup(name);
        uint64_t hv = 0;
        bool known = have && fw_ruleset_list_info(have, name, &hv, NULL) && hv != 0;
        if (known && hv == now[i]) {
            part->version = hv;
            u->kept++;
            continue;
        }
        if (known && now[i] > hv &&
            (rc = delta_list(r, have, name, hv, now[i], part, u, err, errlen)) <= 0)
            continue;   /* done, or failed */
        char why[160];
        if (!have)
            snprintf(why, sizeof why, "first read since connecting");
        else if (!known)
            snprintf(why, sizeof why, "a list new to this daemon");
        else
            snprintf(why, sizeof why, "version %llu -> %llu: replaced (push, lists "
                                      "load) or beyond its change log",
                     (unsigned long long)hv, (unsigned long long)now[i]);
        if (u->on_full_read)
            u->on_full_read(u->ctx, name, why, false, 0, 0);
        int64_t t0 = fw_mono_ms();
        size_t entries = 0;
        rc = full_list(r, name, &part->entries, &part->version, &entries, err, errlen);
        if (rc == 0) {
            u->full_reads++;
            u->full_entries += entries;
            if (u->on_full_read)
                u->on_full_read(u->ctx, name, why, true,
                                fw_listbuild_count(part->entries),
                                (double)(fw_mono_ms() - t0) / 1000.0);
        }
    }
    free(now);
    return rc;
}

void fw_rstore_update_free(fw_rstore_update *u)
{
    fw_rulefiles_free(u->files, u->nfiles);
    for (size_t i = 0; i < u->nlists; i++) {
        free((char *)u->lists[i].name);
        fw_listbuild_free(u->lists[i].entries);
    }
    free(u->lists);
    void (*cb)(void *, const char *, const char *, bool, size_t, double) = u->on_full_read;
    void *ctx = u->ctx;
    memset(u, 0, sizeof *u);
    u->on_full_read = cb;
    u->ctx = ctx;
}

int fw_rstore_fetch_update(fw_rstore *r, const fw_ruleset *have,
                           fw_rstore_update *u, char *err, size_t errlen)
{
    void (*cb)(void *, const char *, const char *, bool, size_t, double) = u->on_full_read;
    void *ctx = u->ctx;
    memset(u, 0, sizeof *u);
    u->on_full_read = cb;
    u->ctx = ctx;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    for (int attempt = 0; attempt < FW_REDIS_MAX_ATTEMPTS; attempt++) {
        fw_redis_backoff(attempt);
        struct snap s;
        memset(&s, 0, sizeof s);
        int rc = read_head(r, &s, err, errlen);
        for (size_t i = 0; rc == 0 && i < s.nlists; i++)
            if (!fw_rulefiles_valid_list_name(s.lists[i].name, strlen(s.lists[i].name))) {
                snprintf(err, errlen, "%s: %s holds \"%.80s\", not a valid "
                                      "watchlist name (written by something other "
                                      "than fraudwatch?)", r->where, K_LISTS,
                         s.lists[i].name);
                rc = FW_RSTORE_ERR;
            }
        if (rc == 0 && s.nlists > 1)
            qsort(s.lists, s.nlists, sizeof *s.lists, snap_list_cmp);
        if (rc == 0)
            rc = update_lists(r, have, &s, u, err, errlen);
        /* A push meanwhile: its lists may not match the rules read above. */
        uint64_t v2 = 0;
        if (rc == 0)
            rc = get_u64(r, "GET " K_VERSION, K_VERSION, &v2, err, errlen);
        if (rc != 0) {
            snap_free(&s);
            fw_rstore_update_free(u);
            return rc;
        }
        if (v2 == s.version) {
            if (s.njson)
                fw_rulefiles_sort(s.json, s.njson);
            u->version = s.version;
            u->generation = s.generation;
            u->files = s.json;
            u->nfiles = s.njson;
            s.json = NULL;
            s.njson = 0;
            snap_free(&s);
            return 0;
        }
        snap_free(&s);
        fw_rstore_update_free(u);
    }
    snprintf(err, errlen, "%s: rule sets kept being pushed while the set was "
                          "being read; try again", r->where);
    return FW_RSTORE_ERR;
}

/* ---- pull ------------------------------------------------------------------- */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: path too long", dir);
        return FW_RSTORE_ERR;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
                return FW_RSTORE_ERR;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
}

static int write_file(const char *dir, const char *name, const char *data,
                      size_t len, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp%d", dir, name, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return FW_RSTORE_ERR;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return FW_RSTORE_ERR;
    }
    return 0;
}

struct span {
    const char *p;
    size_t n;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* A list as a file: a comment header, then the entries sorted, once each. */
static void list_file(const struct snap *s, const struct snap_list *l, fw_buf *b,
                      size_t *count)
{
    struct span *v = fw_xmalloc((l->count + 1) * sizeof *v);
    size_t n = 0;
    for (const char *p = l->text, *end = l->text + l->len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (n <= l->count && le > p)
            v[n++] = (struct span){ p, (size_t)(le - p) };
        p = nl ? nl + 1 : end;
    }
    if (n)
        qsort(v, n, sizeof *v, span_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || span_cmp(&v[u - 1], &v[i]) != 0)
            v[u++] = v[i];
    fw_buf_printf(b, "# watchlist %s: %zu entries, list version %llu, pulled from "
                     "redis with rules version %llu (generation %llu)\n",
                  l->name, u, (unsigned long long)l->version,
                  (unsigned long long)s->version, (unsigned long long)s->generation);
    for (size_t i = 0; i < u; i++) {
        /* VALUE<TAB>UNTIL<TAB>REASON with the UNTIL as ISO 8601 UTC, which a
         * person can read and every loader parses back to the same ms. */
        fw_listentry e;
        char why[300], at[FW_TIMETEXT_MAX];
        if (memchr(v[i].p, '\t', v[i].n) &&
            fw_listline_split(v[i].p, v[i].n, &e, why, sizeof why) == 0) {
            fw_buf_put(b, e.value, e.n);
            if (e.until == FW_UNTIL_NEVER) {
                fw_buf_puts(b, "\t-");
            } else {
                fw_time_format(e.until, at, sizeof at);
                fw_buf_printf(b, "\t%s", at);
            }
            if (e.reason_len) {
                fw_buf_putc(b, '\t');
                fw_buf_put(b, e.reason, e.reason_len);
            }
        } else {
            fw_buf_put(b, v[i].p, v[i].n);
        }
        fw_buf_putc(b, '\n');
    }
    free(v);
    *count = u;
}

/* DIR may be written: missing, empty, or `force`. */
static int pull_target_ok(const char *dir, bool force, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return FW_RSTORE_ERR;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", dir);
        return FW_RSTORE_REFUSED;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
        return FW_RSTORE_ERR;
    }
    bool empty = true;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = false;
    closedir(d);
    if (!empty && !force) {
        snprintf(err, errlen, "%s is not empty: pull into a new or empty "
                              "directory, or add --force to replace its "
                              "*.json and *.list files with the active set", dir);
        return FW_RSTORE_REFUSED;
    }
    return 0;
}

/* --force: removes the *.json and *.list files of DIR not in the set. */
static size_t pull_remove_stale(const char *dir, const struct snap *s)
{
    size_t removed = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.' || (!fw_rulefiles_is_rules(nm) && !fw_rulefiles_is_list(nm)))
            continue;
        bool live = false;
        for (size_t i = 0; i < s->njson && !live; i++)
            live = strcmp(nm, s->json[i].name) == 0;
        for (size_t i = 0; i < s->nlists && !live; i++)
            live = strlen(nm) == strlen(s->lists[i].name) + 5 &&
                   strncmp(nm, s->lists[i].name, strlen(s->lists[i].name)) == 0 &&
                   fw_rulefiles_is_list(nm);
        if (live)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        if (unlink(path) == 0)
            removed++;
    }
    if (d)
        closedir(d);
    return removed;
}

/* Writes the snapshot's files into DIR (created). */
static int pull_write(fw_rstore *r, const char *dir, const struct snap *s,
                      fw_rstore_pull_result *res, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->njson; i++) {
        if (!fw_rulefiles_valid_rules_name(s->json[i].name, strlen(s->json[i].name))) {
            snprintf(err, errlen, "%s: %s has a field \"%.80s\", not a rule file "
                                  "name (NAME.json): written by something other "
                                  "than fraudwatch? nothing was written",
                     r->where, K_FILES, s->json[i].name);
            return FW_RSTORE_ERR;
        }
    }
    int rc = mkdir_p(dir, err, errlen);
    for (size_t i = 0; i < s->njson && rc == 0; i++)
        rc = write_file(dir, s->json[i].name, s->json[i].data, s->json[i].len, err,
                        errlen);
    for (size_t i = 0; i < s->nlists && rc == 0; i++) {
        fw_buf b = { 0 };
        size_t count;
        list_file(s, &s->lists[i], &b, &count);
        char name[80];
        snprintf(name, sizeof name, "%s.list", s->lists[i].name);
        rc = write_file(dir, name, b.p, b.len, err, errlen);
        fw_buf_free(&b);
        if (rc == 0)
            res->nentries += count;
    }
    return rc;
}

int fw_rstore_pull_dir(fw_rstore *r, const char *dir, bool force,
                       fw_rstore_pull_result *res, char *err, size_t errlen)
{
    fw_rstore_pull_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    int rc = pull_target_ok(dir, force, err, errlen);
    if (rc != 0)
        return rc;
    struct snap s;
    if ((rc = snapshot(r, &s, false, err, errlen)) != 0)
        return rc;
    if (s.njson == 0) {
        snprintf(err, errlen, "%s holds no rule set yet (publish one with: "
                              "fraudwatch rules push DIR --redis URL)", r->where);
        rc = FW_RSTORE_ERR;
    } else if ((rc = pull_write(r, dir, &s, res, err, errlen)) == 0) {
        res->version = s.version;
        res->generation = s.generation;
        res->nfiles = s.njson;
        res->nlists = s.nlists;
        if (force)   /* DIR becomes exactly the active set */
            res->nremoved = pull_remove_stale(dir, &s);
    }
    snap_free(&s);
    return rc;
}
