/* rstore_snooze.c — snoozes in Redis: add, remove, read, the record of
 * changes (include/fraudwatch/snoozestore.h).
 *
 * Data model (docs/redis.md, "Snoozes"):
 *
 *   fraudwatch:snoozes          hash, "RULE<TAB>SUBJECT" → the snooze as JSON
 *                               {"rule","subject","until","reason","by","at"}
 *                               (a rule id never holds a tab, so the first tab
 *                               splits the field unambiguously)
 *   fraudwatch:snoozes:version  integer, INCR on every change
 *   fraudwatch:snoozes:log      list, append-only: one JSON object per change
 *                               {"at","op":"add"|"replace"|"remove","rule",
 *                               "subject","until","reason","by"}, never trimmed
 *                               (changes are made by people, a few a day)
 *
 * A change is one optimistic transaction: WATCH the snooze version and the
 * rules version, read the rule files (is the rule in the active set?) and
 * the snooze as it is, then HSET/HDEL + INCR + RPUSH + PUBLISH "snooze
 * VERSION" in one MULTI/EXEC.  The rules generation is left alone, so a
 * daemon re-reads the snoozes, never the rule set.  The time of a change
 * is the server's (TIME), so the record does not depend on the clocks of
 * the operators' machines. */
#include "fraudwatch/snoozestore.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "rstore_internal.h"

#define K_SNOOZES "fraudwatch:snoozes"
#define K_SNOOZES_VERSION "fraudwatch:snoozes:version"
#define K_SNOOZES_LOG "fraudwatch:snoozes:log"

/* Does one of the rule files (HGETALL fraudwatch:rules:files) define rule
 * `id`?  The active set was validated when pushed: ids are where the loader
 * finds them, in an array of rules or in {"rules": [...]}. */
static bool files_have_rule(const redisReply *files, const char *id)
{
    if (!files || files->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i + 1 < files->elements; i += 2) {
        const redisReply *v = files->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        cJSON *j = cJSON_ParseWithLength(v->str, v->len);
        const cJSON *arr = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "rules") : j;
        bool found = false;
        const cJSON *rule;
        const cJSON *list = cJSON_IsArray(arr) ? arr : NULL;
        cJSON_ArrayForEach(rule, list)
        {
            const cJSON *rid = cJSON_GetObjectItemCaseSensitive(rule, "id");
            if (cJSON_IsString(rid) && strcmp(rid->valuestring, id) == 0)
                found = true;
        }
        cJSON_Delete(j);
        if (found)
            return true;
    }
    return false;
}

static int64_t server_ms(const redisReply *time)
{
    if (!fw_redis_is_array(time, 2) || time->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    return strtoll(time->element[0]->str, NULL, 10) * 1000 +
           strtoll(time->element[1]->str, NULL, 10) / 1000;
}

static char *snooze_json(const fw_snooze *s, const char *op)
{
    cJSON *o = cJSON_CreateObject();
    if (op) {
        cJSON_AddNumberToObject(o, "at", (double)s->at);
        cJSON_AddStringToObject(o, "op", op);
    }
    cJSON_AddStringToObject(o, "rule", s->rule);
    char *subj = fw_xstrndup(s->subject, s->subject_len);
    cJSON_AddStringToObject(o, "subject", subj);
    free(subj);
    if (s->until != INT64_MIN)
        cJSON_AddNumberToObject(o, "until", (double)s->until);
    cJSON_AddStringToObject(o, "reason", s->reason ? s->reason : "");
    cJSON_AddStringToObject(o, "by", s->by ? s->by : "");
    if (!op)
        cJSON_AddNumberToObject(o, "at", (double)s->at);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        fw_oom();
    return text;
}

struct change {
    fw_rstore *r;
    fw_snooze s;             /* at, until filled in by build */
    bool add;
    char field[1200];
    bool existed;
    int i_version;
};

static int change_build(void *ctx, redisReply **rep, fw_rcmds *tx, char *err, size_t errlen)
{
    struct change *c = ctx;
    /* rep: 0 HGETALL files, 1 HGET snooze, 2 TIME, 3 GET rules version */
    if (c->add && strcmp(c->s.rule, "*") != 0 && !files_have_rule(rep[0], c->s.rule)) {
        uint64_t v = 0;
        fw_redis_u64(c->r, rep[3], K_VERSION, &v, err, errlen);
        if (v == 0)
            snprintf(err, errlen, "%s holds no rule set yet, so there is no rule \"%s\" to "
                                  "snooze (push one with: fraudwatch rules push DIR); "
                                  "nothing was changed", c->r->where, c->s.rule);
        else
            snprintf(err, errlen, "there is no rule \"%s\" in the active rule set "
                                  "(version %llu in %s): snooze a rule id of the set, or * "
                                  "for every rule; nothing was changed",
                     c->s.rule, (unsigned long long)v, c->r->where);
        return FW_RSTORE_REFUSED;
    }
    c->existed = rep[1]->type == REDIS_REPLY_STRING;
    if (!c->add && !c->existed) {
        snprintf(err, errlen, "there is no snooze of rule %s for subject \"%s\" in %s "
                              "(fraudwatch snooze list shows them); nothing was changed",
                 c->s.rule, c->s.subject, c->r->where);
        return FW_RSTORE_REFUSED;
    }
    c->s.at = server_ms(rep[2]);
    if (!c->add) {   /* the record keeps what was removed */
        cJSON *old = cJSON_ParseWithLength(rep[1]->str, rep[1]->len);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(old, "until");
        c->s.until = cJSON_IsNumber(u) ? (int64_t)u->valuedouble : INT64_MIN;
        cJSON_Delete(old);
    }
    if (c->add) {
        char *v = snooze_json(&c->s, NULL);
        fw_rcmds_add(tx, "HSET", K_SNOOZES, c->field, fw_rcmds_fmt(tx, "%s", v),
                     (const char *)NULL);
        free(v);
    } else {
        fw_rcmds_add(tx, "HDEL", K_SNOOZES, c->field, (const char *)NULL);
    }
    c->i_version = fw_rcmds_add(tx, "INCR", K_SNOOZES_VERSION, (const char *)NULL);
    char *rec = snooze_json(&c->s, !c->add ? "remove" : c->existed ? "replace" : "add");
    fw_rcmds_add(tx, "RPUSH", K_SNOOZES_LOG, fw_rcmds_fmt(tx, "%s", rec), (const char *)NULL);
    free(rec);
    /* "look now": the daemons read the version and the snoozes themselves */
    fw_rcmds_add(tx, "PUBLISH", CHANNEL, "snooze", (const char *)NULL);
    return 0;
}

static int change(struct change *c, uint64_t *version, char *err, size_t errlen)
{
    if (c->r->dead)
        return fw_redis_dead(c->r, err, errlen);
    const char *why;
    if ((why = fw_snooze_check_rule(c->s.rule)) ||
        (why = fw_snooze_check_subject(c->s.subject, c->s.subject_len))) {
        snprintf(err, errlen, "%s; nothing was changed", why);
        return FW_RSTORE_REFUSED;
    }
    snprintf(c->field, sizeof c->field, "%s\t%.*s", c->s.rule, (int)c->s.subject_len,
             c->s.subject);
    fw_rcmds reads = { 0 };
    fw_rcmds_add(&reads, "HGETALL", K_FILES, (const char *)NULL);
    fw_rcmds_add(&reads, "HGET", K_SNOOZES, c->field, (const char *)NULL);
    fw_rcmds_add(&reads, "TIME", (const char *)NULL);
    fw_rcmds_add(&reads, "GET", K_VERSION, (const char *)NULL);
    const char *const watch[3] = { K_SNOOZES_VERSION, K_VERSION, K_FILES };
    const fw_redis_tx tx = {
        .what = c->add ? "snooze add" : "snooze remove",
        .watch = watch,
        .nwatch = 3,
        .reads = &reads,
        .reads_what = "reading the rule set and the snooze",
        .build = change_build,
        .ctx = c,
        .gave_up = "the snoozes kept changing; nothing was changed: run the command again",
    };
    redisReply *exec;
    int rc = fw_redis_optimistic(c->r, &tx, &exec, err, errlen);
    fw_rcmds_free(&reads);
    if (rc != 0)
        return rc;
    if (version)
        *version = (uint64_t)exec->element[c->i_version]->integer;
    freeReplyObject(exec);
    return 0;
}

int fw_rstore_snooze_add(fw_rstore *r, const fw_snooze *s, bool *replaced,
                         uint64_t *version, char *err, size_t errlen)
{
    if (!s->reason || !*s->reason) {
        snprintf(err, errlen, "a snooze needs a reason (--reason TEXT): whoever finds "
                              "the rule muted must learn why; nothing was changed");
        return FW_RSTORE_REFUSED;
    }
    struct change c = { .r = r, .s = *s, .add = true };
    int rc = change(&c, version, err, errlen);
    if (rc == 0 && replaced)
        *replaced = c.existed;
    return rc;
}

int fw_rstore_snooze_remove(fw_rstore *r, const char *rule, const char *subject,
                            const char *by, const char *reason, uint64_t *version,
                            char *err, size_t errlen)
{
    struct change c = { .r = r, .add = false,
                        .s = { .rule = rule, .subject = subject,
                               .subject_len = strlen(subject), .until = INT64_MIN,
                               .reason = reason, .by = by } };
    return change(&c, version, err, errlen);
}

int fw_rstore_snooze_version(fw_rstore *r, uint64_t *version, char *err, size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    const char *argv[2] = { "GET", K_SNOOZES_VERSION };
    redisReply *rep = fw_redis_run(r, "GET " K_SNOOZES_VERSION, 2, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    int rc = fw_redis_u64(r, rep, K_SNOOZES_VERSION, version, err, errlen);
    freeReplyObject(rep);
    return rc;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int fw_rstore_snooze_read(fw_rstore *r, fw_snoozes **out, uint64_t *version, char *err,
                          size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    fw_rcmds t = { 0 };
    fw_rcmds_add(&t, "GET", K_SNOOZES_VERSION, (const char *)NULL);
    fw_rcmds_add(&t, "HGETALL", K_SNOOZES, (const char *)NULL);
    redisReply *exec;
    int rc = fw_redis_exec(r, &t, &exec, "reading the snoozes", err, errlen);
    fw_rcmds_free(&t);
    if (rc != 0)
        return rc == 1 ? FW_RSTORE_ERR : rc;
    uint64_t v;
    if ((rc = fw_redis_u64(r, exec->element[0], K_SNOOZES_VERSION, &v, err, errlen)) != 0) {
        freeReplyObject(exec);
        return rc;
    }
    const redisReply *h = exec->element[1];
    size_t n = h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0;
    fw_snooze *s = fw_xcalloc(n ? n : 1, sizeof *s);
    cJSON **keep = fw_xcalloc(n ? n : 1, sizeof *keep);
    size_t k = 0;
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = h->element[2 * i], *val = h->element[2 * i + 1];
        cJSON *j = val->type == REDIS_REPLY_STRING ? cJSON_ParseWithLength(val->str, val->len)
                                                   : NULL;
        const char *rule = jstr(j, "rule"), *subj = jstr(j, "subject");
        const cJSON *until = cJSON_GetObjectItemCaseSensitive(j, "until");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "at");
        if (!rule || !subj || !cJSON_IsNumber(until)) {
            snprintf(err, errlen, "%s: %s field \"%.*s\" is not a snooze written by "
                                  "fraudwatch (remove it with HDEL)", r->where, K_SNOOZES,
                     f->type == REDIS_REPLY_STRING ? (int)f->len : 0,
                     f->type == REDIS_REPLY_STRING ? f->str : "");
            cJSON_Delete(j);
            rc = FW_RSTORE_ERR;
            break;
        }
        s[k] = (fw_snooze){ .rule = rule, .subject = subj, .subject_len = strlen(subj),
                            .until = (int64_t)until->valuedouble, .reason = jstr(j, "reason"),
                            .by = jstr(j, "by"),
                            .at = cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0 };
        keep[k++] = j;
    }
    if (rc == 0) {
        *out = fw_snoozes_new(s, k);
        if (version)
            *version = v;
    }
    for (size_t i = 0; i < k; i++)
        cJSON_Delete(keep[i]);
    free(keep);
    free(s);
    freeReplyObject(exec);
    return rc;
}

int fw_rstore_snooze_log(fw_rstore *r, size_t last, char ***lines, size_t *n, char *err,
                         size_t errlen)
{
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    char from[32];
    snprintf(from, sizeof from, "%lld", last ? -(long long)last : 0LL);
    const char *argv[4] = { "LRANGE", K_SNOOZES_LOG, from, "-1" };
    redisReply *rep = fw_redis_run(r, "LRANGE " K_SNOOZES_LOG, 4, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    *n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
    *lines = fw_xcalloc(*n ? *n : 1, sizeof **lines);
    for (size_t i = 0; i < *n; i++)
        (*lines)[i] = fw_xstrndup(rep->element[i]->str ? rep->element[i]->str : "",
                                  rep->element[i]->len);
    freeReplyObject(rep);
    return 0;
}

void fw_rstore_snooze_log_free(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}
