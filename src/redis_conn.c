/* redis_conn.c — connections to Redis and the command layer of the rule
 * store (hiredis 0.14): the password, connecting with timeouts, AUTH/SELECT,
 * the handle, pipelined commands, commands in a growable array, MULTI/EXEC and
 * the one optimistic-transaction loop.  The store modules on top of it are
 * rstore_sets.c (rule sets: push, fetch, pull, versions), rstore_lists.c
 * (watchlists), rstore_status.c (heartbeats, status data), rstore_stage.c
 * (staging big lists) and rstore_notify.c (the subscriber); the status
 * table is printed by the CLI (cli_status.c).  URLs are parsed by
 * redis_url.c (the daemon's configuration check uses it too).
 *
 * The password.  It comes from the URL, or — when main.c has said so with
 * fw_rstore_set_password_file() / fw_rstore_set_password() — from a file
 * (read at every connect, so a reconnecting daemon picks up a new one) or
 * the environment, and then it wins over the URL's.  Messages show the URL
 * as fw_redis_url_format() writes it (password masked) and say where the
 * password came from, never what it is; a copy of it lives only while a
 * connection is being opened and is wiped after.
 *
 * Why a layer of its own.  rulestore.c had grown to 2.5k lines in which
 * every writer repeated the WATCH → read → MULTI/EXEC → retry-on-nil loop
 * and sized its command array by hand.  Here that loop is written once
 * (fw_redis_optimistic: the caller gives the keys to WATCH, the reads, and
 * a function that builds the commands from what was read), and commands
 * are built in an array that grows (fw_rcmds), so no caller counts.
 *
 * Connections are blocking hiredis contexts with redisSetTimeout on every
 * socket: a stalled server fails a call within the timeout instead of
 * hanging the caller (redisConnectWithTimeout alone bounds only the
 * connect).  After a connection error a context is unusable (its reply
 * stream is out of step), so the handle is marked dead and every later
 * call fails at once: the caller reconnects.  An error reply (WRONGTYPE,
 * NOPERM, OOM, ...) leaves the handle usable; messages name the server
 * (password masked), what was being done, Redis's answer and a hint. */
#include "redis_conn.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/secret.h"
#include "redis_url.h"

/* ---- the password ------------------------------------------------------------ */

/* Where the password of later connections comes from when it is not the
 * URL's (fw_rstore_set_password_file / fw_rstore_set_password).  Set by
 * main.c before any connection is made, then only read. */
static struct {
    enum { PW_URL, PW_FILE, PW_VALUE } kind;
    char path[4096];              /* PW_FILE: read at every connect */
    char value[FW_SECRET_MAX];    /* PW_VALUE */
    char label[128];              /* PW_VALUE: where it came from */
} pw_source;

int fw_rstore_set_password_file(const char *path, char *err, size_t errlen)
{
    explicit_bzero(&pw_source, sizeof pw_source);
    if (!path || !*path)
        return FW_RSTORE_OK;
    if (strlen(path) >= sizeof pw_source.path) {
        snprintf(err, errlen, "the password file's path is longer than %zu bytes",
                 sizeof pw_source.path - 1);
        return FW_RSTORE_ERR;
    }
    /* Checked now, so a bad file fails the command before it connects;
     * read again at every connect, so a changed password is picked up
     * when the daemon reconnects. */
    char pw[FW_SECRET_MAX], why[4400];
    int rc = fw_secret_read_file(path, pw, sizeof pw, why, sizeof why);
    explicit_bzero(pw, sizeof pw);
    if (rc != 0) {
        snprintf(err, errlen, "%s", why);
        return FW_RSTORE_ERR;
    }
    pw_source.kind = PW_FILE;
    snprintf(pw_source.path, sizeof pw_source.path, "%s", path);
    return FW_RSTORE_OK;
}

int fw_rstore_set_password(const char *password, const char *label, char *err,
                           size_t errlen)
{
    explicit_bzero(&pw_source, sizeof pw_source);
    if (!password || !*password)
        return FW_RSTORE_OK;
    if (strlen(password) >= sizeof pw_source.value) {
        snprintf(err, errlen, "the password in %s is longer than %zu bytes", label,
                 sizeof pw_source.value - 1);
        return FW_RSTORE_ERR;
    }
    pw_source.kind = PW_VALUE;
    snprintf(pw_source.value, sizeof pw_source.value, "%s", password);
    snprintf(pw_source.label, sizeof pw_source.label, "%s", label);
    return FW_RSTORE_OK;
}

/* Puts the password of pw_source into u (it wins over the URL's) and says
 * where it came from, for messages; a user without any password is an
 * error.  0, or FW_RSTORE_ERR with err set. */
static int take_password(fw_redis_url *u, char *from, size_t fromlen, char *err,
                         size_t errlen)
{
    switch (pw_source.kind) {
    case PW_FILE: {
        char why[4400];
        if (fw_secret_read_file(pw_source.path, u->pass, sizeof u->pass, why,
                                sizeof why) != 0) {
            snprintf(err, errlen, "the Redis password: %s", why);
            return FW_RSTORE_ERR;
        }
        u->has_pass = true;
        snprintf(from, fromlen, "in %s", pw_source.path);
        return 0;
    }
    case PW_VALUE:
        snprintf(u->pass, sizeof u->pass, "%s", pw_source.value);
        u->has_pass = true;
        snprintf(from, fromlen, "in %s", pw_source.label);
        return 0;
    case PW_URL:
        break;
    }
    if (u->has_user && !u->has_pass) {
        /* The URL is not quoted: "redis://PASSWORD@host" parses as a user. */
        snprintf(err, errlen, "Redis URL: it names a user but no password: give the "
                              "password with --redis-password-file FILE or "
                              "FRAUDWATCH_REDIS_PASSWORD for the commands, "
                              "rules.redis_password_file for the daemon (or, visible to "
                              "others, in the URL: redis://USER:PASSWORD@host)");
        return FW_RSTORE_ERR;
    }
    snprintf(from, fromlen, "in the URL");
    return 0;
}

/* ---- connecting -------------------------------------------------------------- */

/* What a failed hiredis context means, in an operator's words. */
static void describe_ctx(const redisContext *c, int timeout_ms, char *out, size_t n)
{
    if (c->err == REDIS_ERR_IO &&
        (strstr(c->errstr, "temporarily unavailable") || strstr(c->errstr, "timed out")))
        snprintf(out, n, "no answer within %d ms: the server is stalled, "
                         "overloaded or unreachable", timeout_ms);
    else if (c->err == REDIS_ERR_EOF)
        snprintf(out, n, "the server closed the connection (restarted, killed, "
                         "or it dropped this client)");
    else if (strstr(c->errstr, "refused"))
        snprintf(out, n, "%s: is redis-server running there?", c->errstr);
    else
        snprintf(out, n, "%s", c->errstr);
}

const char *fw_rstore_missing_permission(const char *msg, char *buf, size_t n)
{
    const char *p = msg ? strstr(msg, "NOPERM") : NULL;
    if (!p || n == 0)
        return NULL;
    const char *cmd = strstr(p, "run the '");
    if (cmd) {   /* "... to run the 'hset' command" */
        cmd += strlen("run the '");
        size_t len = strcspn(cmd, "' ");
        snprintf(buf, n, "+%.*s", (int)(len > 40 ? 40 : len), cmd);
        for (char *c = buf; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    } else if (strstr(p, "channel")) {
        snprintf(buf, n, "&fraudwatch:notify");
    } else if (strstr(p, "key")) {
        snprintf(buf, n, "~fraudwatch:*");
    } else {
        snprintf(buf, n, "(see the message)");
    }
    return buf;
}

/* A hint for a Redis error reply. */
static const char *reply_hint(const char *msg)
{
    if (strncmp(msg, "NOAUTH", 6) == 0)
        return " (the server requires a password: --redis-password-file FILE or "
               "FRAUDWATCH_REDIS_PASSWORD for the commands, rules.redis_password_file "
               "for the daemon; docs/redis.md)";
    if (strncmp(msg, "WRONGPASS", 9) == 0 || strstr(msg, "invalid password") ||
        strstr(msg, "invalid username-password"))
        return " (check the user and the password)";
    if (strncmp(msg, "NOPERM", 6) == 0) {
        /* Name what is missing: "+subscribe", not just "see the docs". */
        static _Thread_local char hint[200];
        char need[64];
        fw_rstore_missing_permission(msg, need, sizeof need);
        snprintf(hint, sizeof hint, " (the ACL user lacks %s%s; docs/redis.md, "
                                    "\"ACL users\", lists what the daemon and the "
                                    "commands need)",
                 need[0] == '+' ? "the permission " : need[0] == '&' ? "the channel "
                                                   : need[0] == '~' ? "access to the keys " : "",
                 need);
        return hint;
    }
    if (strncmp(msg, "OOM", 3) == 0)
        return " (Redis is at maxmemory: free memory or raise maxmemory)";
    if (strncmp(msg, "READONLY", 8) == 0)
        return " (this is a replica: point the URL at the primary)";
    if (strncmp(msg, "WRONGTYPE", 9) == 0)
        return " (a fraudwatch:* key was written by something else: see "
               "docs/redis.md for the data model)";
    if (strncmp(msg, "LOADING", 7) == 0)
        return " (Redis is loading its dataset: retry in a moment)";
    if (strncmp(msg, "MISCONF", 7) == 0)
        return " (Redis refuses writes because it cannot persist: see its log)";
    return "";
}

static int ctx_fail(redisContext *c, int timeout_ms, const char *where,
                    const char *what, char *err, size_t errlen)
{
    char d[512];
    describe_ctx(c, timeout_ms, d, sizeof d);
    snprintf(err, errlen, "%s: %s: %s", where, what, d);
    return FW_RSTORE_ERR;
}

redisReply *fw_redis_ctx_cmd(redisContext *c, int timeout_ms, const char *where,
                             const char *what, int argc, const char **argv,
                             char *err, size_t errlen)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep) {
        ctx_fail(c, timeout_ms, where, what, err, errlen);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s: redis answered \"%s\"%s", where, what,
                 rep->str, reply_hint(rep->str));
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* AUTH with the password (and the URL's user): the message says which to
 * check and where the password came from (`from`: "in the URL", "in
 * /etc/fraudwatch/redis-password", "in FRAUDWATCH_REDIS_PASSWORD"). */
static int authenticate(redisContext *c, int timeout_ms, const fw_redis_url *u,
                        const char *where, const char *from, char *err, size_t errlen)
{
    const char *argv[3] = { "AUTH", u->user, u->pass };
    int argc = 2;
    if (u->has_user)
        argc = 3;
    else
        argv[1] = u->pass;
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep)
        return ctx_fail(c, timeout_ms, where, "AUTH", err, errlen);
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* Redis's answer quotes no password ("WRONGPASS invalid
         * username-password pair", "ERR AUTH <password> called without
         * any password configured ..."). */
        if (strstr(rep->str, "without any password configured"))
            snprintf(err, errlen, "%s: authentication failed: redis answered \"%s\" "
                                  "(this server has no password: give none)",
                     where, rep->str);
        else
            snprintf(err, errlen, "%s: authentication failed: redis answered \"%s\" "
                                  "(check %sthe password %s)",
                     where, rep->str, u->has_user ? "the user in the URL and " : "", from);
        rc = FW_RSTORE_ERR;
    }
    freeReplyObject(rep);
    return rc;
}

/* A command whose reply only has to be no error. */
static int ctx_ok(redisContext *c, int timeout_ms, const char *where,
                  const char *what, int argc, const char **argv, char *err,
                  size_t errlen)
{
    redisReply *rep = fw_redis_ctx_cmd(c, timeout_ms, where, what, argc, argv,
                                       err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    freeReplyObject(rep);
    return 0;
}

redisContext *fw_redis_open(const char *url, int *timeout_ms, char *shown,
                            size_t shownlen, char *err, size_t errlen)
{
    fw_redis_url u;
    if (fw_redis_url_parse(url, &u, err, errlen) != 0)
        return NULL;
    if (*timeout_ms <= 0)
        *timeout_ms = FW_REDIS_DEFAULT_TIMEOUT_MS;
    char where[640], from[4200];
    fw_redis_url_format(&u, where, sizeof where);   /* the URL as given, masked */
    snprintf(shown, shownlen, "%s", where);
    if (take_password(&u, from, sizeof from, err, errlen) != 0) {
        fw_redis_url_wipe(&u);
        return NULL;
    }
    struct timeval tv = { .tv_sec = *timeout_ms / 1000,
                          .tv_usec = (*timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", where);
        fw_redis_url_wipe(&u);
        return NULL;
    }
    bool ok = false;
    if (c->err) {
        ctx_fail(c, *timeout_ms, where, "cannot connect", err, errlen);
    } else if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "%s: cannot set the socket timeout: %s", where,
                 c->errstr);
    } else {
        redisEnableKeepAlive(c);
        char db[32];
        snprintf(db, sizeof db, "%ld", u.db);
        const char *select[2] = { "SELECT", db };
        const char *ping[1] = { "PING" };
        ok = (!u.has_pass ||
              authenticate(c, *timeout_ms, &u, where, from, err, errlen) == 0) &&
             (!u.db || ctx_ok(c, *timeout_ms, where, "SELECT", 2, select, err,
                              errlen) == 0) &&
             ctx_ok(c, *timeout_ms, where, "PING after connecting", 1, ping, err,
                    errlen) == 0;
    }
    fw_redis_url_wipe(&u);   /* no password copy lingers */
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int fw_rstore_connect(const char *url, int timeout_ms, fw_rstore **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    fw_rstore *r = fw_xcalloc(1, sizeof *r);
    r->c = fw_redis_open(url, &timeout_ms, r->where, sizeof r->where, err, errlen);
    if (!r->c) {
        free(r);
        return FW_RSTORE_ERR;
    }
    r->timeout_ms = timeout_ms;
    *out = r;
    return FW_RSTORE_OK;
}

void fw_rstore_free(fw_rstore *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    if (r->cache && r->cache_free)
        r->cache_free(r->cache);
    free(r);
}

const char *fw_rstore_where(const fw_rstore *r)
{
    return r ? r->where : "";
}

/* ---- commands in a growable array ------------------------------------------ */

int fw_rcmds_begin(fw_rcmds *t, const char *verb)
{
    if (t->n == t->cap) {
        int ncap = t->cap ? t->cap * 2 : 8;
        t->c = fw_xrealloc(t->c, (size_t)ncap * sizeof *t->c);
        memset(t->c + t->cap, 0, (size_t)(ncap - t->cap) * sizeof *t->c);
        t->cap = ncap;
    }
    t->c[t->n].n = 0;
    t->n++;
    fw_rcmds_str(t, verb);
    return t->n - 1;
}

void fw_rcmds_arg(fw_rcmds *t, const char *s, size_t len)
{
    fw_rcmd *a = &t->c[t->n - 1];
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = fw_xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
        a->l = fw_xrealloc(a->l, (size_t)a->cap * sizeof *a->l);
    }
    a->v[a->n] = s;
    a->l[a->n] = len;
    a->n++;
}

void fw_rcmds_str(fw_rcmds *t, const char *s)
{
    fw_rcmds_arg(t, s, strlen(s));
}

int fw_rcmds_add(fw_rcmds *t, const char *verb, ...)
{
    int i = fw_rcmds_begin(t, verb);
    va_list ap;
    va_start(ap, verb);
    for (const char *s; (s = va_arg(ap, const char *));)
        fw_rcmds_str(t, s);
    va_end(ap);
    return i;
}

const char *fw_rcmds_fmt(fw_rcmds *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = fw_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    if (t->nowned == t->capowned) {
        t->capowned = t->capowned ? t->capowned * 2 : 16;
        t->owned = fw_xrealloc(t->owned, t->capowned * sizeof *t->owned);
    }
    t->owned[t->nowned++] = s;
    return s;
}

void fw_rcmds_reset(fw_rcmds *t)
{
    t->n = 0;
    for (size_t i = 0; i < t->nowned; i++)
        free(t->owned[i]);
    t->nowned = 0;
}

void fw_rcmds_free(fw_rcmds *t)
{
    fw_rcmds_reset(t);
    for (int i = 0; i < t->cap; i++) {
        free(t->c[i].v);
        free(t->c[i].l);
    }
    free(t->c);
    free(t->owned);
    memset(t, 0, sizeof *t);
}

/* ---- running commands -------------------------------------------------------- */

int fw_redis_dead(fw_rstore *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: the connection failed earlier and cannot be "
                          "used again: reconnect", r->where);
    return FW_RSTORE_ERR;
}

static int conn_fail(fw_rstore *r, const char *what, char *err, size_t errlen)
{
    r->dead = true;
    return ctx_fail(r->c, r->timeout_ms, r->where, what, err, errlen);
}

static int reply_fail(fw_rstore *r, const char *what, const redisReply *rep,
                      char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s: redis answered \"%s\"%s", r->where, what,
             rep->str, reply_hint(rep->str));
    return FW_RSTORE_ERR;
}

void fw_redis_send(fw_rstore *r, int argc, const char **argv)
{
    if (redisAppendCommandArgv(r->c, argc, argv, NULL) != REDIS_OK)
        fw_oom();
}

void fw_redis_send_cmds(fw_rstore *r, const fw_rcmds *t)
{
    for (int i = 0; i < t->n; i++)
        if (redisAppendCommandArgv(r->c, t->c[i].n, t->c[i].v, t->c[i].l) != REDIS_OK)
            fw_oom();
}

redisReply *fw_redis_recv(fw_rstore *r, const char *what, char *err, size_t errlen)
{
    void *rep = NULL;
    if (redisGetReply(r->c, &rep) != REDIS_OK || !rep) {
        conn_fail(r, what, err, errlen);
        return NULL;
    }
    return rep;
}

int fw_redis_drain(fw_rstore *r, int n, redisReply **reps, const char *what,
                   char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *rep = fw_redis_recv(r, what, err, errlen);
        if (!rep) {
            for (int j = 0; reps && j < i; j++) {
                freeReplyObject(reps[j]);
                reps[j] = NULL;
            }
            return FW_RSTORE_ERR;
        }
        if (rep->type == REDIS_REPLY_ERROR && rc == 0)
            rc = reply_fail(r, what, rep, err, errlen);
        if (reps)
            reps[i] = rep;
        else
            freeReplyObject(rep);
    }
    if (rc != 0 && reps) {
        for (int i = 0; i < n; i++) {
            freeReplyObject(reps[i]);
            reps[i] = NULL;
        }
    }
    return rc;
}

redisReply *fw_redis_run(fw_rstore *r, const char *what, int argc,
                         const char **argv, char *err, size_t errlen)
{
    redisReply *rep;
    fw_redis_send(r, argc, argv);
    if (fw_redis_drain(r, 1, &rep, what, err, errlen) != 0)
        return NULL;
    return rep;
}

int fw_redis_run_ok(fw_rstore *r, const char *what, int argc, const char **argv,
                    char *err, size_t errlen)
{
    redisReply *rep = fw_redis_run(r, what, argc, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    freeReplyObject(rep);
    return 0;
}

void fw_redis_unwatch(fw_rstore *r)
{
    if (r->dead)
        return;
    const char *argv[1] = { "UNWATCH" };
    char e[256];
    redisReply *rep = fw_redis_run(r, "UNWATCH", 1, argv, e, sizeof e);
    if (rep)
        freeReplyObject(rep);
}

int fw_redis_u64(fw_rstore *r, const redisReply *rep, const char *key,
                 uint64_t *out, char *err, size_t errlen)
{
    if (rep->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= 0) {
        *out = (uint64_t)rep->integer;
        return 0;
    }
    if (rep->type == REDIS_REPLY_STRING && rep->len > 0 && rep->len < 21) {
        uint64_t v = 0;
        size_t i = 0;
        for (; i < rep->len && isdigit((unsigned char)rep->str[i]); i++)
            v = v * 10 + (uint64_t)(rep->str[i] - '0');
        if (i == rep->len) {
            *out = v;
            return 0;
        }
    }
    snprintf(err, errlen, "%s: the key %s does not hold a counter (something "
                          "other than fraudwatch wrote it; see docs/redis.md)",
             r->where, key);
    return FW_RSTORE_ERR;
}

bool fw_redis_is_array(const redisReply *rep, size_t n)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == n;
}

void fw_redis_backoff(int attempt)
{
    if (attempt <= 0)
        return;
    unsigned us = 200u << (attempt < 6 ? attempt : 6);
    usleep(us / 2 + (unsigned)(fw_mono_ms() * 7919 % (us / 2 + 1)));
}

/* ---- transactions --------------------------------------------------------------- */

int fw_redis_exec(fw_rstore *r, const fw_rcmds *t, redisReply **exec,
                  const char *what, char *err, size_t errlen)
{
    *exec = NULL;
    const char *multi[1] = { "MULTI" };
    const char *ex[1] = { "EXEC" };
    fw_redis_send(r, 1, multi);
    fw_redis_send_cmds(r, t);
    fw_redis_send(r, 1, ex);
    /* MULTI's +OK, n × +QUEUED (or a queueing error), then EXEC. */
    int rc = 0;
    for (int i = 0; i < t->n + 1; i++) {
        redisReply *rep = fw_redis_recv(r, what, err, errlen);
        if (!rep)
            return FW_RSTORE_ERR;
        if (rep->type == REDIS_REPLY_ERROR && rc == 0)
            rc = reply_fail(r, what, rep, err, errlen);
        freeReplyObject(rep);
    }
    char e2[512];
    redisReply *rep = fw_redis_recv(r, what, rc ? e2 : err, rc ? sizeof e2 : errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    if (rc != 0) {   /* EXECABORT: nothing was applied */
        freeReplyObject(rep);
        return rc;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return 1;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        rc = reply_fail(r, what, rep, err, errlen);
        freeReplyObject(rep);
        return rc;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)t->n) {
        snprintf(err, errlen, "%s: %s: unexpected EXEC reply", r->where, what);
        freeReplyObject(rep);
        return FW_RSTORE_ERR;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "%s: %s: Redis applied the transaction only in "
                                  "part: %s \"%s\"%s; run the command again",
                     r->where, what, t->c[i].v[0], rep->element[i]->str,
                     reply_hint(rep->element[i]->str));
            freeReplyObject(rep);
            return FW_RSTORE_ERR;
        }
    }
    *exec = rep;
    return 0;
}

/* One attempt: WATCH, the reads, build, MULTI/EXEC.  Returns what
 * fw_redis_exec() returns (1: a watched key changed, go again). */
static int optimistic_once(fw_rstore *r, const fw_redis_tx *tx, fw_rcmds *watch,
                           fw_rcmds *cmds, redisReply **replies,
                           redisReply **exec, char *err, size_t errlen)
{
    int rc = fw_redis_run_ok(r, "WATCH", watch->c[0].n, watch->c[0].v, err, errlen);
    if (rc != 0)
        return rc;
    fw_redis_send_cmds(r, tx->reads);
    if ((rc = fw_redis_drain(r, tx->reads->n, replies, tx->reads_what, err,
                             errlen)) != 0) {
        fw_redis_unwatch(r);
        return rc;
    }
    fw_rcmds_reset(cmds);
    rc = tx->build(tx->ctx, replies, cmds, err, errlen);
    if (rc != 0)
        fw_redis_unwatch(r);
    else
        rc = fw_redis_exec(r, cmds, exec, tx->what, err, errlen);
    for (int i = 0; i < tx->reads->n; i++)
        freeReplyObject(replies[i]);
    return rc;
}

int fw_redis_optimistic(fw_rstore *r, const fw_redis_tx *tx, redisReply **exec,
                        char *err, size_t errlen)
{
    *exec = NULL;
    fw_rcmds watch = { 0 }, cmds = { 0 };
    fw_rcmds_begin(&watch, "WATCH");
    for (int i = 0; i < tx->nwatch; i++)
        fw_rcmds_str(&watch, tx->watch[i]);
    redisReply **replies = fw_xcalloc((size_t)tx->reads->n + 1, sizeof *replies);
    int rc;
    for (int attempt = 0;; attempt++) {
        fw_redis_backoff(attempt);
        if (attempt == FW_REDIS_MAX_ATTEMPTS) {
            snprintf(err, errlen, "%s: %s", r->where, tx->gave_up);
            rc = FW_RSTORE_ERR;
            break;
        }
        rc = optimistic_once(r, tx, &watch, &cmds, replies, exec, err, errlen);
        if (rc != 1)
            break;   /* done, or failed; 1: another writer got in between */
    }
    free(replies);
    fw_rcmds_free(&watch);
    fw_rcmds_free(&cmds);
    return rc;
}
