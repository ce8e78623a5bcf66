/* rstore_history.c — the history of rule sets in Redis: the record of every
 * push, rollback and refused push; the contents of the last N versions;
 * reading records back; rollback.
 *
 * Shape.  The record of a push is written by the push's own transaction
 * (the hook of rstore_history.h, called by rstore_sets.c), together with
 * the blobs of the new version and the trimming of versions beyond the
 * retention: a version exists exactly when its record does, and two
 * operators pushing at once get two records in version order (the hook's
 * keys are WATCHed with the push's).  A refused push changes nothing but
 * the history: its record is one RPUSH.
 *
 * Contents are content-addressed blobs (fraudwatch:rules:blob:SHA256): a
 * rule file that did not change between versions is kept once however many
 * versions hold it, so 100 kept versions of a set that changes one rule at
 * a time cost little more than one.  A watchlist is kept whole when it has
 * at most FW_RHIST_LIST_KEEP_MAX entries; a bigger one (a 10M-entry list
 * would cost ~150 MB per distinct version) is recorded by hash and entry
 * count only.  Which versions are kept, and the blobs each one holds, is
 * one hash (fraudwatch:rules:history:kept) read in full by every push: the
 * trimming computes from it which blobs no kept version holds any more.
 *
 * List contents are taken from the files pushed (or, for a rollback of a
 * list kept by hash only, read from Redis with fw_rstore_fetch): this
 * module never touches how watchlists are stored. */
#include "rstore_history.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/rulehistory.h"
#include "rstore_internal.h"

/* ---- records ------------------------------------------------------------------- */

struct rec_in {
    uint64_t version, base, rollback_of;
    const char *action, *source, *reason;
    const fw_rhist_meta *m;
    size_t nrules;
    const fw_rhist_file *f;
    size_t nf;
};

static bool list_kept(const fw_rhist_file *f)
{
    return !f->is_list || f->entries <= FW_RHIST_LIST_KEEP_MAX;
}

static char *default_message(const struct rec_in *in)
{
    char buf[4200];
    if (in->rollback_of)
        snprintf(buf, sizeof buf, "rollback to version %llu",
                 (unsigned long long)in->rollback_of);
    else
        snprintf(buf, sizeof buf, "push of %s (no message given)",
                 in->source ? in->source : "a rule set");
    return fw_xstrdup(buf);
}

static char *record_json(const struct rec_in *in)
{
    cJSON *o = cJSON_CreateObject();
    if (in->version)
        cJSON_AddNumberToObject(o, "version", (double)in->version);
    else
        cJSON_AddNullToObject(o, "version");
    cJSON_AddNumberToObject(o, "base", (double)in->base);
    cJSON_AddNumberToObject(o, "ts", (double)fw_wall_ms());
    cJSON_AddStringToObject(o, "action", in->action);
    if (in->rollback_of)
        cJSON_AddNumberToObject(o, "rollback_of", (double)in->rollback_of);
    cJSON_AddStringToObject(o, "author", in->m->author ? in->m->author : "");
    if (in->m->host)
        cJSON_AddStringToObject(o, "host", in->m->host);
    if (in->m->message && *in->m->message) {
        cJSON_AddStringToObject(o, "message", in->m->message);
    } else {
        char *dm = default_message(in);
        cJSON_AddStringToObject(o, "message", dm);
        free(dm);
    }
    if (in->source)
        cJSON_AddStringToObject(o, "source", in->source);
    if (in->reason) {
        char *rs = fw_xstrndup(in->reason, strnlen(in->reason, FW_RHIST_REASON_MAX));
        cJSON_AddStringToObject(o, "reason", rs);
        free(rs);
    }
    if (in->version)
        cJSON_AddNumberToObject(o, "rules", (double)in->nrules);
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    cJSON *lists = cJSON_AddArrayToObject(o, "lists");
    for (size_t i = 0; i < in->nf; i++) {
        const fw_rhist_file *f = &in->f[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", f->name);
        cJSON_AddStringToObject(e, "sha256", f->sha256);
        cJSON_AddNumberToObject(e, "bytes", (double)f->bytes);
        if (f->is_list) {
            cJSON_AddNumberToObject(e, "entries", (double)f->entries);
            cJSON_AddBoolToObject(e, "kept", list_kept(f));
        }
        cJSON_AddItemToArray(f->is_list ? lists : files, e);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        fw_oom();
    char *out = fw_xstrdup(s);
    cJSON_free(s);
    return out;
}

static uint64_t num_u64(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

static char *str_dup(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? fw_xstrdup(v->valuestring) : NULL;
}

static void parse_files(const cJSON *arr, bool is_list, fw_rhist_record *rec)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        if (!cJSON_IsString(name) || !cJSON_IsString(sha))
            continue;
        fw_rhist_file *f = &rec->files[rec->nfiles++];
        memset(f, 0, sizeof *f);
        f->name = fw_xstrdup(name->valuestring);
        f->is_list = is_list;
        snprintf(f->sha256, sizeof f->sha256, "%s", sha->valuestring);
        f->bytes = (size_t)num_u64(e, "bytes");
        f->entries = (size_t)num_u64(e, "entries");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kept");
        f->kept = is_list ? cJSON_IsTrue(k) : true;
    }
}

/* A stored record into *rec (seq and kept set by the caller). */
static int record_parse(const char *s, size_t len, fw_rhist_record *rec)
{
    memset(rec, 0, sizeof *rec);
    cJSON *o = cJSON_ParseWithLength(s, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    rec->json = fw_xstrndup(s, len);
    rec->version = num_u64(o, "version");
    rec->base = num_u64(o, "base");
    rec->rollback_of = num_u64(o, "rollback_of");
    rec->ts_ms = (int64_t)num_u64(o, "ts");
    rec->action = str_dup(o, "action");
    if (!rec->action)
        rec->action = fw_xstrdup("?");
    rec->author = str_dup(o, "author");
    rec->host = str_dup(o, "host");
    rec->message = str_dup(o, "message");
    rec->reason = str_dup(o, "reason");
    rec->source = str_dup(o, "source");
    rec->nrules = (size_t)num_u64(o, "rules");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files");
    const cJSON *lists = cJSON_GetObjectItemCaseSensitive(o, "lists");
    size_t n = (size_t)cJSON_GetArraySize(files) + (size_t)cJSON_GetArraySize(lists);
    rec->files = fw_xcalloc(n + 1, sizeof *rec->files);
    parse_files(files, false, rec);
    parse_files(lists, true, rec);
    cJSON_Delete(o);
    return 0;
}

void fw_rhist_record_free(fw_rhist_record *rec)
{
    if (!rec)
        return;
    free(rec->action);
    free(rec->author);
    free(rec->host);
    free(rec->message);
    free(rec->reason);
    free(rec->source);
    free(rec->json);
    fw_rhist_files_free(rec->files, rec->nfiles);
    memset(rec, 0, sizeof *rec);
}

void fw_rhist_records_free(fw_rhist_record *recs, size_t n)
{
    for (size_t i = 0; recs && i < n; i++)
        fw_rhist_record_free(&recs[i]);
    free(recs);
}

/* ---- the push hook: record, blobs, trimming ------------------------------------- */

struct hook_ctx {
    fw_rstore *r;
    struct rec_in in;
    fw_rstore_push_result *res;
    uint64_t seq;        /* the record's number, once built */
};

static const char *const hook_watch[3] = { K_HIST, K_HIST_KEPT, K_HIST_KEEP };

static void hook_reads(void *ctx, fw_rcmds *reads)
{
    (void)ctx;
    fw_rcmds_add(reads, "LLEN", K_HIST, (const char *)NULL);
    fw_rcmds_add(reads, "GET", K_HIST_KEEP, (const char *)NULL);
    fw_rcmds_add(reads, "HGETALL", K_HIST_KEPT, (const char *)NULL);
}

struct kept_ver {
    uint64_t version;
    const char *hashes;   /* space separated */
    size_t len;
};

static int kept_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct kept_ver *)a)->version,
             y = ((const struct kept_ver *)b)->version;
    return (x > y) - (x < y);
}

/* Does the space-separated list h (len n) hold the 64-hex hash s? */
static bool hashes_have(const char *h, size_t n, const char *s)
{
    for (size_t i = 0; i + 64 <= n; i += 65)
        if (memcmp(h + i, s, 64) == 0)
            return true;
    return false;
}

static int hook_build(void *ctx, redisReply **rep, uint64_t version, fw_rcmds *tx,
                      char *err, size_t errlen)
{
    struct hook_ctx *h = ctx;
    fw_rstore *r = h->r;
    uint64_t llen, keep;
    if (fw_redis_u64(r, rep[0], K_HIST, &llen, err, errlen) != 0 ||
        fw_redis_u64(r, rep[1], K_HIST_KEEP, &keep, err, errlen) != 0)
        return FW_RSTORE_ERR;
    if (rep[2]->type != REDIS_REPLY_ARRAY || rep[2]->elements % 2) {
        snprintf(err, errlen, "%s: %s is not a hash (written by something other "
                              "than fraudwatch?); nothing was changed", r->where,
                 K_HIST_KEPT);
        return FW_RSTORE_ERR;
    }
    if (h->in.m->keep > 0) {
        keep = h->in.m->keep;
        fw_rcmds_add(tx, "SET", K_HIST_KEEP, fw_rcmds_fmt(tx, "%llu",
                     (unsigned long long)keep), (const char *)NULL);
    } else if (keep == 0) {
        keep = FW_RHIST_KEEP_DEFAULT;
    }

    /* The record. */
    h->in.version = version;
    h->in.base = version - 1;
    h->in.nrules = h->res->nrules;
    char *json = record_json(&h->in);
    const char *owned = fw_rcmds_fmt(tx, "%s", json);   /* lives with tx */
    free(json);
    fw_rcmds_add(tx, "RPUSH", K_HIST, owned, (const char *)NULL);
    fw_rcmds_add(tx, "HSET", K_HIST_INDEX, fw_rcmds_fmt(tx, "%llu",
                 (unsigned long long)version),
                 fw_rcmds_fmt(tx, "%llu", (unsigned long long)llen), (const char *)NULL);
    h->seq = llen + 1;

    /* The blobs of the new version, and its entry in the kept hash. */
    fw_buf hs = { 0 };
    for (size_t i = 0; i < h->in.nf; i++) {
        const fw_rhist_file *f = &h->in.f[i];
        if (!list_kept(f))
            continue;
        fw_rcmds_begin(tx, "SET");
        fw_rcmds_str(tx, fw_rcmds_fmt(tx, K_BLOB "%s", f->sha256));
        fw_rcmds_arg(tx, f->data, f->len);
        if (!hashes_have(hs.p ? hs.p : "", hs.len, f->sha256)) {
            if (hs.len)
                fw_buf_putc(&hs, ' ');
            fw_buf_puts(&hs, f->sha256);
        }
    }
    const char *mine = fw_rcmds_fmt(tx, "%s", hs.p ? hs.p : "");
    fw_buf_free(&hs);
    fw_rcmds_add(tx, "HSET", K_HIST_KEPT, fw_rcmds_fmt(tx, "%llu",
                 (unsigned long long)version), mine, (const char *)NULL);

    /* Trimming: the oldest kept versions beyond `keep`, and the blobs that
     * no remaining version holds. */
    size_t nk = rep[2]->elements / 2;
    struct kept_ver *kv = fw_xcalloc(nk + 2, sizeof *kv);
    size_t n = 0;
    for (size_t i = 0; i < nk; i++) {
        const redisReply *k = rep[2]->element[2 * i], *v = rep[2]->element[2 * i + 1];
        uint64_t ver = k->str ? strtoull(k->str, NULL, 10) : 0;
        if (ver == 0 || ver == version)
            continue;
        kv[n++] = (struct kept_ver){ ver, v->str ? v->str : "", v->len };
    }
    kv[n++] = (struct kept_ver){ version, mine, strlen(mine) };
    qsort(kv, n, sizeof *kv, kept_cmp);
    size_t drop = n > keep ? n - (size_t)keep : 0;
    for (size_t i = 0; i < drop; i++) {
        fw_rcmds_add(tx, "HDEL", K_HIST_KEPT,
                     fw_rcmds_fmt(tx, "%llu", (unsigned long long)kv[i].version),
                     (const char *)NULL);
        for (size_t j = 0; j + 64 <= kv[i].len; j += 65) {
            const char *s = kv[i].hashes + j;
            bool held = false;
            for (size_t k = drop; k < n && !held; k++)
                held = hashes_have(kv[k].hashes, kv[k].len, s);
            for (size_t k = 0; k < i && !held; k++)   /* already dropped */
                held = hashes_have(kv[k].hashes, kv[k].len, s);
            if (!held)
                fw_rcmds_add(tx, "UNLINK", fw_rcmds_fmt(tx, K_BLOB "%.64s", s),
                             (const char *)NULL);
        }
    }
    free(kv);
    return 0;
}

/* ---- pushes ---------------------------------------------------------------------- */

int fw_rhist_active(fw_rstore *r, uint64_t *version, char *err, size_t errlen)
{
    *version = 0;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    const char *get[2] = { "GET", K_VERSION };
    redisReply *rep = fw_redis_run(r, "GET " K_VERSION, 2, get, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    int rc = fw_redis_u64(r, rep, K_VERSION, version, err, errlen);
    freeReplyObject(rep);
    return rc;
}

/* A refused push: its record, one RPUSH (nothing else is written).  The
 * refusal stays the caller's error; a failure to record it is added. */
static void record_refused(fw_rstore *r, struct rec_in *in, uint64_t *seq, char *err,
                           size_t errlen)
{
    char e2[1024];
    uint64_t base = 0;
    if (fw_rhist_active(r, &base, e2, sizeof e2) != 0)
        goto failed;
    in->version = 0;
    in->base = base;
    in->action = "refused";
    in->reason = err;
    char *json = record_json(in);
    const char *push[3] = { "RPUSH", K_HIST, json };
    redisReply *rep = fw_redis_run(r, "RPUSH " K_HIST, 3, push, e2, sizeof e2);
    free(json);
    if (!rep)
        goto failed;
    if (seq && rep->type == REDIS_REPLY_INTEGER)
        *seq = (uint64_t)rep->integer;
    freeReplyObject(rep);
    return;
failed:;
    size_t used = strlen(err);
    snprintf(err + used, errlen - used, "\n(and the refusal could not be recorded "
                                        "in the history: %s)", e2);
}

/* Pushes files with the history hook; a refusal is recorded. */
static int push_recorded(fw_rstore *r, const fw_rulefile *files, size_t n,
                         struct rec_in *in, fw_rstore_push_result *res, uint64_t *seq,
                         char *err, size_t errlen)
{
    fw_rhist_file *f;
    size_t nf;
    fw_rhist_files_from(files, n, &f, &nf);
    in->f = f;
    in->nf = nf;
    struct hook_ctx h = { .r = r, .in = *in, .res = res };
    const fw_rpush_hook hook = {
        .watch = hook_watch,
        .nwatch = 3,
        .reads = hook_reads,
        .build = hook_build,
        .ctx = &h,
    };
    int rc = fw_rstore_push_hooked(r, files, n, &hook, res, err, errlen);
    if (rc == 0 && seq)
        *seq = h.seq;
    if (rc == FW_RSTORE_REFUSED)
        record_refused(r, in, seq, err, errlen);
    fw_rhist_files_free(f, nf);
    in->f = NULL;
    in->nf = 0;
    return rc;
}

int fw_rhist_push_dir(fw_rstore *r, const char *dir, const fw_rhist_meta *m,
                      fw_rstore_push_result *res, uint64_t *seq, char *err,
                      size_t errlen)
{
    fw_rstore_push_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    struct rec_in in = { .action = "push", .source = dir, .m = m };
    fw_rulefile *files = NULL;
    size_t n = 0;
    char *rerr = fw_xmalloc(errlen ? errlen : 1);
    if (fw_rulefiles_read_dir(dir, &files, &n, rerr, errlen ? errlen : 1) != 0) {
        snprintf(err, errlen, "the rule set in %s is refused; nothing was changed "
                              "in redis:\n%s", dir, rerr);
        free(rerr);
        record_refused(r, &in, seq, err, errlen);
        return FW_RSTORE_REFUSED;
    }
    free(rerr);
    int rc = push_recorded(r, files, n, &in, res, seq, err, errlen);
    fw_rulefiles_free(files, n);
    return rc;
}

/* ---- reading the history ---------------------------------------------------------- */

/* The versions kept whole (HGETALL of the kept hash), for flags. */
static bool kept_has(const redisReply *kept, uint64_t version)
{
    if (!kept || kept->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i + 1 < kept->elements; i += 2)
        if (kept->element[i]->str && strtoull(kept->element[i]->str, NULL, 10) == version)
            return true;
    return false;
}

int fw_rhist_list(fw_rstore *r, size_t limit, fw_rhist_record **out, size_t *nout,
                  unsigned *keep, char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    fw_rcmds c = { 0 };
    long long start = limit ? -(long long)limit : 0;
    fw_rcmds_add(&c, "LRANGE", K_HIST, fw_rcmds_fmt(&c, "%lld", start), "-1",
                 (const char *)NULL);
    fw_rcmds_add(&c, "LLEN", K_HIST, (const char *)NULL);
    fw_rcmds_add(&c, "HGETALL", K_HIST_KEPT, (const char *)NULL);
    fw_rcmds_add(&c, "GET", K_HIST_KEEP, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &c, &exec, "reading the rule history", err, errlen);
    fw_rcmds_free(&c);
    if (rc != 0)
        return rc < 0 ? rc : FW_RSTORE_ERR;
    const redisReply *lr = exec->element[0];
    uint64_t llen = 0, k = 0;
    if (lr->type != REDIS_REPLY_ARRAY ||
        fw_redis_u64(r, exec->element[1], K_HIST, &llen, err, errlen) != 0 ||
        fw_redis_u64(r, exec->element[3], K_HIST_KEEP, &k, err, errlen) != 0) {
        if (lr->type != REDIS_REPLY_ARRAY)
            snprintf(err, errlen, "%s: %s is not a list (written by something other "
                                  "than fraudwatch?)", r->where, K_HIST);
        freeReplyObject(exec);
        return FW_RSTORE_ERR;
    }
    if (keep)
        *keep = k ? (unsigned)k : FW_RHIST_KEEP_DEFAULT;
    fw_rhist_record *recs = fw_xcalloc(lr->elements + 1, sizeof *recs);
    size_t n = 0;
    uint64_t first = llen - lr->elements + 1;   /* seq of lr->element[0] */
    for (size_t i = lr->elements; i-- > 0;) {
        const redisReply *e = lr->element[i];
        fw_rhist_record *rec = &recs[n];
        if (e->type != REDIS_REPLY_STRING || record_parse(e->str, e->len, rec) != 0) {
            memset(rec, 0, sizeof *rec);
            rec->action = fw_xstrdup("unreadable");
            rec->json = fw_xstrndup(e->str ? e->str : "", e->len);
        }
        rec->seq = first + i;
        rec->kept = rec->version && kept_has(exec->element[2], rec->version);
        n++;
    }
    freeReplyObject(exec);
    *out = recs;
    *nout = n;
    return 0;
}

int fw_rhist_get(fw_rstore *r, uint64_t version, bool contents, fw_rhist_record *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    char vs[32];
    snprintf(vs, sizeof vs, "%llu", (unsigned long long)version);
    const char *hget[3] = { "HGET", K_HIST_INDEX, vs };
    redisReply *rep = fw_redis_run(r, "HGET " K_HIST_INDEX, 3, hget, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    if (rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        uint64_t active = 0;
        char e2[512];
        fw_rhist_active(r, &active, e2, sizeof e2);
        if (version > active)
            snprintf(err, errlen, "no version %llu: the active version is %llu",
                     (unsigned long long)version, (unsigned long long)active);
        else
            snprintf(err, errlen, "version %llu has no record in the history (it "
                                  "was pushed before fraudwatch recorded history, "
                                  "or by an older fraudwatch): it was never kept",
                     (unsigned long long)version);
        return FW_RSTORE_REFUSED;
    }
    char pos[32];
    snprintf(pos, sizeof pos, "%.*s", (int)(rep->len < 31 ? rep->len : 31), rep->str);
    freeReplyObject(rep);
    fw_rcmds c = { 0 };
    fw_rcmds_add(&c, "LINDEX", K_HIST, pos, (const char *)NULL);
    fw_rcmds_add(&c, "HGET", K_HIST_KEPT, vs, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &c, &exec, "reading a history record", err, errlen);
    fw_rcmds_free(&c);
    if (rc != 0)
        return rc < 0 ? rc : FW_RSTORE_ERR;
    const redisReply *e = exec->element[0];
    if (e->type != REDIS_REPLY_STRING || record_parse(e->str, e->len, out) != 0) {
        snprintf(err, errlen, "%s: the record of version %llu (%s[%s]) is missing or "
                              "unreadable", r->where, (unsigned long long)version,
                 K_HIST, pos);
        freeReplyObject(exec);
        return FW_RSTORE_ERR;
    }
    out->seq = strtoull(pos, NULL, 10) + 1;
    out->kept = exec->element[1]->type == REDIS_REPLY_STRING;
    freeReplyObject(exec);
    if (!out->kept || !contents)
        return 0;
    size_t want = 0;
    for (size_t i = 0; i < out->nfiles; i++) {
        if (!out->files[i].kept)
            continue;
        const char *get[2] = { "GET", NULL };
        char key[128];
        snprintf(key, sizeof key, K_BLOB "%s", out->files[i].sha256);
        get[1] = key;
        fw_redis_send(r, 2, get);
        want++;
    }
    redisReply **reps = fw_xcalloc(want + 1, sizeof *reps);
    rc = fw_redis_drain(r, (int)want, reps, "reading the kept files of a version", err,
                        errlen);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < out->nfiles; i++) {
        fw_rhist_file *f = &out->files[i];
        if (!f->kept)
            continue;
        const redisReply *b = reps[k++];
        if (b->type == REDIS_REPLY_STRING) {
            f->data = fw_xstrndup(b->str, b->len);
            f->len = b->len;
        } else {
            f->kept = false;   /* should not happen: the blob went missing */
        }
    }
    for (size_t i = 0; rc == 0 && i < want; i++)
        freeReplyObject(reps[i]);
    free(reps);
    if (rc != 0)
        fw_rhist_record_free(out);
    return rc;
}

/* ---- rollback --------------------------------------------------------------------- */

/* For a list of the version kept by hash only: the live list, when it is
 * still the same (its canonical hash); else a refusal. */
static int live_list(fw_rstore *r, uint64_t version, fw_rhist_file *f,
                     fw_rulefile **live, size_t *nlive, char *err, size_t errlen)
{
    if (!*live) {
        uint64_t v, g;
        int rc = fw_rstore_fetch(r, live, nlive, &v, &g, err, errlen);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < *nlive; i++) {
        const fw_rulefile *lf = &(*live)[i];
        if (!fw_rulefiles_is_list(lf->name) || strlen(lf->name) != strlen(f->name) + 5 ||
            strncmp(lf->name, f->name, strlen(f->name)) != 0)
            continue;
        size_t len, entries;
        char *canon = fw_rhist_list_canonical(lf->data, lf->len, &len, &entries);
        char sha[65];
        fw_rhist_sha256_hex(canon, len, sha);
        if (strcmp(sha, f->sha256) == 0) {
            f->data = canon;
            f->len = len;
            return 0;
        }
        free(canon);
        snprintf(err, errlen, "watchlist %s of version %llu was kept by hash only "
                              "(%zu entries, more than %d) and the list in redis is "
                              "no longer the same (%zu entries now); version %llu "
                              "cannot be restored exactly, so nothing was changed. "
                              "Load that list first (fraudwatch lists load %s FILE), "
                              "then roll back again",
                 f->name, (unsigned long long)version, f->entries, FW_RHIST_LIST_KEEP_MAX,
                 entries, (unsigned long long)version, f->name);
        return FW_RSTORE_REFUSED;
    }
    snprintf(err, errlen, "watchlist %s of version %llu was kept by hash only (%zu "
                          "entries, more than %d) and redis no longer has it; "
                          "nothing was changed. Load it first (fraudwatch lists "
                          "load %s FILE), then roll back again",
             f->name, (unsigned long long)version, f->entries, FW_RHIST_LIST_KEEP_MAX,
             f->name);
    return FW_RSTORE_REFUSED;
}

int fw_rhist_rollback(fw_rstore *r, uint64_t version, const fw_rhist_meta *m,
                      fw_rstore_push_result *res, uint64_t *seq, char *err,
                      size_t errlen)
{
    fw_rstore_push_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    fw_rhist_record rec;
    int rc = fw_rhist_get(r, version, true, &rec, err, errlen);
    if (rc != 0)
        return rc;
    if (!rec.kept) {
        unsigned keep = FW_RHIST_KEEP_DEFAULT;
        fw_rhist_record *none;
        size_t nn;
        char e2[256];
        if (fw_rhist_list(r, 1, &none, &nn, &keep, e2, sizeof e2) == 0)
            fw_rhist_records_free(none, nn);
        snprintf(err, errlen, "version %llu was not kept: only the last %u versions "
                              "are kept whole and its contents were trimmed (its "
                              "record remains: fraudwatch rules show %llu); nothing "
                              "was changed",
                 (unsigned long long)version, keep, (unsigned long long)version);
        fw_rhist_record_free(&rec);
        return FW_RSTORE_REFUSED;
    }
    fw_rulefile *live = NULL;
    size_t nlive = 0;
    fw_rulefile *files = fw_xcalloc(rec.nfiles + 1, sizeof *files);
    char **names = fw_xcalloc(rec.nfiles + 1, sizeof *names);
    for (size_t i = 0; rc == 0 && i < rec.nfiles; i++) {
        fw_rhist_file *f = &rec.files[i];
        if (!f->data && f->is_list)
            rc = live_list(r, version, f, &live, &nlive, err, errlen);
        else if (!f->data) {
            snprintf(err, errlen, "%s: the kept copy of %s of version %llu is missing "
                                  "(%s%s); nothing was changed", r->where, f->name,
                     (unsigned long long)version, K_BLOB, f->sha256);
            rc = FW_RSTORE_ERR;
        }
        if (rc != 0)
            break;
        if (f->is_list) {
            size_t len = strlen(f->name) + 6;
            names[i] = fw_xmalloc(len);
            snprintf(names[i], len, "%s.list", f->name);
        } else {
            names[i] = fw_xstrdup(f->name);
        }
        files[i] = (fw_rulefile){ names[i], f->data, f->len };
    }
    if (rc == 0) {
        char src[64];
        snprintf(src, sizeof src, "version %llu", (unsigned long long)version);
        struct rec_in in = { .action = "rollback", .rollback_of = version,
                             .source = src, .m = m };
        fw_rulefiles_sort(files, rec.nfiles);
        rc = push_recorded(r, files, rec.nfiles, &in, res, seq, err, errlen);
    }
    for (size_t i = 0; i < rec.nfiles; i++)
        free(names[i]);
    free(names);
    free(files);
    if (live)
        fw_rulefiles_free(live, nlive);
    fw_rhist_record_free(&rec);
    return rc;
}
