/* rstore_lists.c — watchlist changes on their own, without a rule push:
 * `lists add`, `lists remove`, `lists load` (replace).
 *
 * Each change is one optimistic transaction (fw_redis_optimistic) that
 * WATCHes the list's version and, in one MULTI/EXEC, changes the set, adds
 * the name to fraudwatch:lists, INCRs the list's version and the
 * generation, counts the list (SCARD) and publishes "list NAME VERSION"
 * with the exact new version.  An add or remove also appends itself to the
 * list's change log (rstore_log.c), so daemons apply it as a delta instead
 * of reading the list again.  A replacement can be a million entries, so
 * it is staged first (rstore_stage.c) and the transaction only swaps it in
 * with UNLINK + RENAME + PERSIST, and deletes the change log.
 *
 * Values are refused here, not in Redis, when a .list file could not hold
 * them (empty, a leading '#', a line break): a pulled directory must always
 * be a valid rule set again.  Names and the .list text are rulefiles.c's,
 * shared with the loader. */
#include "rstore_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"

static int check_list_name(const char *name, char *err, size_t errlen)
{
    if (!name || !fw_rulefiles_valid_list_name(name, strlen(name))) {
        snprintf(err, errlen, "\"%.80s\" is not a valid watchlist name: "
                              FW_LIST_NAME_RULE, name ? name : "");
        return FW_RSTORE_REFUSED;
    }
    return 0;
}

/* Trims a value like a .list line; refuses what a .list file cannot hold. */
static int clean_value(const char *in, char **out, char *err, size_t errlen)
{
    const char *s = in, *e = in + strlen(in);
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (s == e) {
        snprintf(err, errlen, "an empty value cannot be a watchlist entry");
        return FW_RSTORE_REFUSED;
    }
    if (*s == '#') {
        snprintf(err, errlen, "\"%.80s\": a value starting with '#' would read "
                              "as a comment in a .list file", s);
        return FW_RSTORE_REFUSED;
    }
    for (const char *p = s; p < e; p++) {
        if (*p == '\n' || *p == '\r') {
            snprintf(err, errlen, "\"%.80s\": a value cannot hold a line break", in);
            return FW_RSTORE_REFUSED;
        }
        if (*p == '\t') {   /* it separates VALUE, UNTIL and REASON in .list lines */
            snprintf(err, errlen, "\"%.80s\": a value cannot hold a tab (in a .list "
                                  "line a tab starts the UNTIL column); give the UNTIL "
                                  "with --until", in);
            return FW_RSTORE_REFUSED;
        }
    }
    const char *why;
    if (!fw_list_entry_ok(s, (size_t)(e - s), &why)) {
        snprintf(err, errlen, "\"%.80s%s\": the entry %s", s,
                 (size_t)(e - s) > 80 ? "..." : "", why);
        return FW_RSTORE_REFUSED;
    }
    *out = fw_xstrndup(s, (size_t)(e - s));
    return 0;
}

/* Every entry of a .list text could match an event (fw_list_entry_ok);
 * else the first one that could not, by line. */
static int check_entries(const char *data, size_t len, char *err, size_t errlen)
{
    fw_listtext it;
    fw_listentry e;
    const char *why;
    char bad[400];
    int rc;
    fw_listtext_init(&it, data, len);
    while ((rc = fw_listtext_entry(&it, &e, bad, sizeof bad)) != 0) {
        if (rc < 0) {   /* VALUE<TAB>UNTIL<TAB>REASON with a bad UNTIL */
            snprintf(err, errlen, "%s; nothing was changed in redis", bad);
            return FW_RSTORE_REFUSED;
        }
        if (!fw_list_entry_ok(e.value, e.n, &why)) {
            snprintf(err, errlen, "line %zu: the entry %s; nothing was changed in redis",
                     it.lineno, why);
            return FW_RSTORE_REFUSED;
        }
    }
    return 0;
}

/* One list change under way. */
struct list_tx {
    fw_rstore *r;
    const char *name;
    char lk[160], vk[160];
    bool add;                  /* lists add / lists remove */
    const char *const *values; /* their values, as given */
    size_t n;
    char **vals;               /* ... cleaned; NULL: lists load */
    const char *path;          /* lists load FILE */
    const char *data;          /* lists load: the .list text */
    size_t len;
    char *tmpkey;              /* lists load: the staged list, NULL if empty */
    const fw_rstore_entry_meta *meta;   /* lists add: UNTIL and reason, or NULL */
    fw_rexp_staged exp;        /* lists load: the staged UNTILs and records */
    char uk[160], ik[160];     /* the list's :until and :info */
    int i_changed, i_version, i_gen, i_size;   /* in the EXEC reply */
};

/* The end of every list transaction: SADD the name, INCR the versions,
 * SCARD, PUBLISH. */
static void list_tail(struct list_tx *t, uint64_t old_version, fw_rcmds *tx)
{
    fw_rcmds_add(tx, "SADD", K_LISTS, t->name, (const char *)NULL);
    t->i_version = fw_rcmds_add(tx, "INCR", t->vk, (const char *)NULL);
    t->i_gen = fw_rcmds_add(tx, "INCR", K_GENERATION, (const char *)NULL);
    t->i_size = fw_rcmds_add(tx, "SCARD", t->lk, (const char *)NULL);
    fw_rcmds_add(tx, "PUBLISH", CHANNEL,
                 fw_rcmds_fmt(tx, "list %s %llu", t->name,
                              (unsigned long long)old_version + 1),
                 (const char *)NULL);
}

/* add / remove, from GET version and SISMEMBER (fw_redis_tx.build). */
static int change_build(void *ctx, redisReply **rep, fw_rcmds *tx, char *err,
                        size_t errlen)
{
    struct list_tx *t = ctx;
    uint64_t old_version;
    int rc = fw_redis_u64(t->r, rep[0], t->vk, &old_version, err, errlen);
    bool exists = rep[1]->type == REDIS_REPLY_INTEGER && rep[1]->integer == 1;
    if (rc != 0)
        return rc;
    if (!t->add && !exists) {
        snprintf(err, errlen, "%s: there is no watchlist \"%s\" (fraudwatch "
                              "rules status lists them); nothing was changed",
                 t->r->where, t->name);
        return FW_RSTORE_REFUSED;
    }
    t->i_changed = fw_rcmds_add(tx, t->add ? "SADD" : "SREM", t->lk, (const char *)NULL);
    for (size_t i = 0; i < t->n; i++)
        fw_rcmds_str(tx, t->vals[i]);
    /* The UNTIL (or none) and who/when/why of each value (rstore_expiry.c). */
    int64_t until = t->meta ? t->meta->until : FW_UNTIL_NEVER;
    const char *reason = t->meta && t->meta->reason ? t->meta->reason : "";
    bool timed = t->add && until != FW_UNTIL_NEVER;
    fw_rcmds_add(tx, timed ? "ZADD" : "ZREM", t->uk, (const char *)NULL);
    for (size_t i = 0; i < t->n; i++) {
        if (timed)
            fw_rcmds_str(tx, fw_rcmds_fmt(tx, "%lld", (long long)until));
        fw_rcmds_str(tx, t->vals[i]);
    }
    fw_rcmds_add(tx, t->add ? "HSET" : "HDEL", t->ik, (const char *)NULL);
    char who[128];
    const char *record = t->add ? fw_rcmds_fmt(tx, "%lld\t%s\t%s", (long long)fw_wall_ms(),
                                               fw_rexp_who(who, sizeof who), reason)
                                : NULL;
    for (size_t i = 0; i < t->n; i++) {
        fw_rcmds_str(tx, t->vals[i]);
        if (record)
            fw_rcmds_str(tx, record);
    }
    if (t->add && (timed || *reason)) {   /* the log carries UNTIL and reason */
        char **lines = fw_xcalloc(t->n, sizeof *lines);
        for (size_t i = 0; i < t->n; i++) {
            size_t len = strlen(t->vals[i]) + strlen(reason) + 32;
            lines[i] = fw_xmalloc(len);
            if (timed)
                snprintf(lines[i], len, "%s\t%lld%s%s", t->vals[i], (long long)until,
                         *reason ? "\t" : "", reason);
            else
                snprintf(lines[i], len, "%s\t-\t%s", t->vals[i], reason);
        }
        fw_rlog_append_kind(tx, t->name, old_version + 1, '*', lines, t->n);
        for (size_t i = 0; i < t->n; i++)
            free(lines[i]);
        free(lines);
    } else {
        fw_rlog_append(tx, t->name, old_version + 1, t->add, t->vals, t->n);
    }
    list_tail(t, old_version, tx);
    return 0;
}

/* load, from GET version and the staged key's EXPIRE (fw_redis_tx.build). */
static int replace_build(void *ctx, redisReply **rep, fw_rcmds *tx, char *err,
                         size_t errlen)
{
    struct list_tx *t = ctx;
    int rc = fw_rstage_check(t->r, rep + 1, &t->tmpkey, &t->name, 1, err, errlen);
    char *meta_keys[2] = { t->exp.until_tmp, t->exp.info_tmp };
    const char *names[2] = { t->name, t->name };
    if (rc == 0)
        rc = fw_rstage_check(t->r, rep + 1 + (t->tmpkey ? 1 : 0), meta_keys, names, 2, err,
                             errlen);
    uint64_t old_version;
    if (rc != 0 || (rc = fw_redis_u64(t->r, rep[0], t->vk, &old_version, err,
                                      errlen)) != 0)
        return rc;
    fw_rcmds_add(tx, "UNLINK", t->lk, (const char *)NULL);
    if (t->tmpkey) {
        fw_rcmds_add(tx, "RENAME", t->tmpkey, t->lk, (const char *)NULL);
        fw_rcmds_add(tx, "PERSIST", t->lk, (const char *)NULL);
    }
    fw_rexp_swap(tx, t->name, &t->exp);   /* the UNTILs and records with it */
    fw_rlog_drop(tx, t->name);   /* replaced: no delta leads here */
    t->i_changed = -1;
    list_tail(t, old_version, tx);
    return 0;
}

/* Runs the list's transaction (build: change_build or replace_build, whose
 * reads come after the first GET of the version) and fills res. */
static int list_commit(struct list_tx *t, fw_rcmds *reads, const char *what,
                       int (*build)(void *, redisReply **, fw_rcmds *, char *, size_t),
                       fw_rstore_list_result *res, char *err, size_t errlen)
{
    char gave_up[256];
    snprintf(gave_up, sizeof gave_up, "watchlist %s kept changing; nothing was "
                                      "changed: run the command again", t->name);
    const char *const watch[1] = { t->vk };
    const fw_redis_tx tx = {
        .what = what,
        .watch = watch,
        .nwatch = 1,
        .reads = reads,
        .reads_what = t->vals ? "reading the watchlist version"
                              : "preparing the transaction",
        .build = build,
        .ctx = t,
        .gave_up = gave_up,
    };
    redisReply *exec;
    int rc = fw_redis_optimistic(t->r, &tx, &exec, err, errlen);
    if (rc != 0)
        return rc;
    res->version = (uint64_t)exec->element[t->i_version]->integer;
    res->generation = (uint64_t)exec->element[t->i_gen]->integer;
    res->size = (size_t)exec->element[t->i_size]->integer;
    if (t->i_changed >= 0 && exec->element[t->i_changed]->type == REDIS_REPLY_INTEGER)
        res->changed = (size_t)exec->element[t->i_changed]->integer;
    freeReplyObject(exec);
    return 0;
}

/* lists add / remove: the values cleaned, then the transaction. */
static int change_op(struct list_tx *t, fw_rstore_list_result *res, char *err,
                     size_t errlen)
{
    if (t->n == 0) {
        snprintf(err, errlen, "no values given");
        return FW_RSTORE_REFUSED;
    }
    const char *const *values = t->values;
    t->vals = fw_xcalloc(t->n, sizeof *t->vals);
    fw_rcmds reads = { 0 };
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++)
        rc = clean_value(values[i], &t->vals[i], err, errlen);
    if (rc == 0) {
        fw_rcmds_add(&reads, "GET", t->vk, (const char *)NULL);
        fw_rcmds_add(&reads, "SISMEMBER", K_LISTS, t->name, (const char *)NULL);
        rc = list_commit(t, &reads, t->add ? "lists add (MULTI/EXEC)"
                                           : "lists remove (MULTI/EXEC)",
                         change_build, res, err, errlen);
    }
    fw_rcmds_free(&reads);
    for (size_t i = 0; i < t->n; i++)
        free(t->vals[i]);
    free(t->vals);
    return rc;
}

/* lists load: the text staged, then swapped in. */
static int replace_op(struct list_tx *t, fw_rstore_list_result *res, char *err,
                      size_t errlen)
{
    int bad = check_entries(t->data, t->len, err, errlen);
    if (bad)
        return bad;
    fw_rentries e = { 0 };
    fw_rentries_parse(t->data, t->len, &e);
    fw_rcmds reads = { 0 };
    char token[40], tmpbuf[200];
    fw_rstage_token(token, sizeof token);
    int rc = 0;
    if (e.n) {
        snprintf(tmpbuf, sizeof tmpbuf, K_TMP "%s:%s", token, t->name);
        t->tmpkey = tmpbuf;
        rc = fw_rstage_list(t->r, t->tmpkey, &e, NULL, err, errlen);
    }
    if (rc == 0) {
        char how[1200];
        snprintf(how, sizeof how, "lists load %s", t->path ? t->path : "(text)");
        rc = fw_rexp_stage(t->r, token, t->name, &e, how, &t->exp, err, errlen);
    }
    if (rc == 0) {
        fw_rcmds_add(&reads, "GET", t->vk, (const char *)NULL);
        fw_rstage_keep(&reads, &t->tmpkey, 1);
        char *meta_keys[2] = { t->exp.until_tmp, t->exp.info_tmp };
        fw_rstage_keep(&reads, meta_keys, 2);
        rc = list_commit(t, &reads, "lists load (MULTI/EXEC)", replace_build, res,
                         err, errlen);
    }
    if (rc == 0) {
        t->tmpkey = NULL;   /* renamed into place */
        res->changed = res->size;
    }
    if (rc != 0 && t->tmpkey)
        fw_rstage_drop(t->r, &t->tmpkey, 1);
    if (rc != 0)
        fw_rexp_staged_drop(t->r, &t->exp);
    fw_rexp_staged_free(&t->exp);
    fw_rcmds_free(&reads);
    fw_rentries_free(&e);
    return rc;
}

/* lists load FILE: the file read (rulefiles.c: a regular file within the
 * limit, or stdin), then replace_op. */
static int load_op(struct list_tx *t, fw_rstore_list_result *res, char *err,
                   size_t errlen)
{
    char *data;
    size_t len;
    if (fw_rulefiles_read_file(t->path, FW_RULEFILE_LIST, &data, &len, err,
                               errlen) != 0)
        return FW_RSTORE_ERR;
    t->data = data;
    t->len = len;
    int rc = replace_op(t, res, err, errlen);
    free(data);
    return rc;
}

/* What every list change does around its operation: a result to fill (a
 * dummy when the caller wants none), a live handle, a valid name, the
 * keys, and the wall time. */
static int list_run(fw_rstore *r, const char *name, struct list_tx *t,
                    int (*op)(struct list_tx *, fw_rstore_list_result *, char *,
                              size_t),
                    fw_rstore_list_result *res, char *err, size_t errlen)
{
    fw_rstore_list_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    int64_t t0 = fw_mono_ms();
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    int rc = check_list_name(name, err, errlen);
    if (rc != 0)
        return rc;
    t->r = r;
    t->name = name;
    list_key(t->lk, sizeof t->lk, name);
    version_key(t->vk, sizeof t->vk, name);
    until_key(t->uk, sizeof t->uk, name);
    info_key(t->ik, sizeof t->ik, name);
    rc = op(t, res, err, errlen);
    res->seconds = (double)(fw_mono_ms() - t0) / 1000.0;
    return rc;
}

int fw_rstore_list_add(fw_rstore *r, const char *name, const char *const *values,
                       size_t n, fw_rstore_list_result *res, char *err,
                       size_t errlen)
{
    return fw_rstore_list_add_meta(r, name, values, n, NULL, res, err, errlen);
}

int fw_rstore_list_add_meta(fw_rstore *r, const char *name,
                            const char *const *values, size_t n,
                            const fw_rstore_entry_meta *meta,
                            fw_rstore_list_result *res, char *err, size_t errlen)
{
    if (meta && meta->reason && strpbrk(meta->reason, "\r\n")) {
        snprintf(err, errlen, "a reason is one line: it cannot hold a line break");
        return FW_RSTORE_REFUSED;
    }
    struct list_tx t = { .add = true, .values = values, .n = n, .meta = meta };
    return list_run(r, name, &t, change_op, res, err, errlen);
}

int fw_rstore_list_remove(fw_rstore *r, const char *name,
                          const char *const *values, size_t n,
                          fw_rstore_list_result *res, char *err, size_t errlen)
{
    struct list_tx t = { .add = false, .values = values, .n = n };
    return list_run(r, name, &t, change_op, res, err, errlen);
}

int fw_rstore_list_replace(fw_rstore *r, const char *name, const char *data,
                           size_t len, fw_rstore_list_result *res, char *err,
                           size_t errlen)
{
    struct list_tx t = { .data = data, .len = len };
    return list_run(r, name, &t, replace_op, res, err, errlen);
}

int fw_rstore_list_load(fw_rstore *r, const char *name, const char *path,
                        fw_rstore_list_result *res, char *err, size_t errlen)
{
    struct list_tx t = { .path = path };
    return list_run(r, name, &t, load_op, res, err, errlen);
}
