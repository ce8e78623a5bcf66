/* rulestore.c — the rule set and watchlists in Redis (hiredis 0.14).
 *
 * Owns every key under "fraudwatch:" and the channel fraudwatch:notify; the
 * data model is in docs/redis.md and the daemon is written against it:
 *
 *   fraudwatch:rules:version     integer, version of the active rule set
 *   fraudwatch:rules:files       hash, rule file name (*.json) → content
 *   fraudwatch:lists             set, names of the watchlists that exist
 *   fraudwatch:list:NAME         set, the entries (absent when empty)
 *   fraudwatch:list:NAME:version integer, INCR on every change of the list
 *   fraudwatch:generation        integer, INCR on every change of anything
 *   fraudwatch:daemon:INSTANCE   hash, a daemon's heartbeat (EXPIRE ttl)
 *   fraudwatch:tmp:TOKEN:NAME    set, a list being staged (EXPIRE 600 s)
 *
 * Writes.  A change is always one MULTI/EXEC, so a reader sees the old state
 * or the new one, never a mix: a push replaces the rule files, renames every
 * list into place, bumps the versions and the generation and publishes, all
 * in one transaction.  Lists can hold a million entries, too many for one
 * command or one transaction, so they are first staged into temporary keys
 * with pipelined SADDs of 1000 (a window of 50 commands in flight keeps the
 * output buffer small); the transaction then only RENAMEs them (O(1)).  A
 * staged key carries an EXPIRE, so a push that dies half way leaves nothing
 * behind; the EXPIRE is refreshed just before the transaction (a missing key
 * fails the push before anything is written) and PERSIST removes it after
 * the RENAME (RENAME carries a TTL over).  The old set is UNLINKed first so
 * Redis frees a big list in the background.  Each transaction WATCHes the
 * version it bumps, reads it, and publishes the exact new value; if another
 * writer got in between, EXEC returns nil and the transaction is rebuilt.
 *
 * Reads.  The daemon's fetch reads the version, generation, rule files and
 * list names in one MULTI/EXEC, then each list with SSCAN (never an SMEMBERS
 * of a million entries that would block Redis), checking the list's version
 * before and after and re-reading when it moved.  A list whose version is
 * the one of the previous fetch is served from this handle's cache, so a
 * one-number change of one list does not make every daemon re-read every
 * list.  A push meanwhile (rules version moved) restarts the fetch.
 *
 * Connections are blocking hiredis contexts with redisSetTimeout on every
 * socket: a stalled server fails a call within the timeout instead of
 * hanging the caller.  After a connection error a context is unusable (its
 * reply stream is out of step), so the handle is marked dead and every later
 * call fails at once: the caller reconnects.  Validation is the rule
 * loader's (fw_ruleset_load_files): the bytes validated are the bytes
 * stored, so nothing unvalidated can reach Redis through a push.  Reading
 * files (a rules directory, a .list for `lists load`), file and watchlist
 * names and the .list text are rulefiles.c's, shared with the loader, so
 * what a push stores and what the loader accepts cannot drift apart. */
#include "fraudwatch/rulestore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"

#define K_VERSION "fraudwatch:rules:version"
#define K_FILES "fraudwatch:rules:files"
#define K_LISTS "fraudwatch:lists"
#define K_LIST "fraudwatch:list:"
#define K_GENERATION "fraudwatch:generation"
#define K_DAEMON "fraudwatch:daemon:"
#define K_TMP "fraudwatch:tmp:"
#define CHANNEL "fraudwatch:notify"

#define DEFAULT_TIMEOUT_MS 5000
#define STAGE_CHUNK 1000      /* entries per SADD */
#define STAGE_WINDOW 50       /* pipelined commands before reading replies */
#define STAGE_TTL_S 600       /* a staged list vanishes after this */
#define SCAN_COUNT "1000"     /* SSCAN / SCAN batch */
#define MAX_ATTEMPTS 16       /* WATCH conflicts / lists changing under a read */
#define SUB_PING_MS 5000      /* a quiet subscriber PINGs this often */

/* ---- URLs ------------------------------------------------------------------ */

struct rurl {
    char host[256];
    int port;
    char user[256];
    char pass[512];
    bool has_user, has_pass;
    long db;
    char shown[640];   /* the URL with the password masked */
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* %-decodes s[0..n) into out; false on a bad escape, a NUL or no room. */
static bool pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

static const char url_form[] = "redis://[[user]:password@]host[:port][/db]";

static int parse_url(const char *url, struct rurl *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url) {
        snprintf(err, errlen, "no Redis URL given (expected %s)", url_form);
        return -1;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen, "rediss:// (TLS) is not available: this build uses "
                              "hiredis 0.14, which has no TLS; use redis:// on a "
                              "trusted network or through a local TLS tunnel "
                              "(stunnel, spiped) to 127.0.0.1");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "\"%.200s\" is not a Redis URL (expected %s)", url,
                 url_form);
        return -1;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, errlen, "Redis URL: \"%.*s@\" has no password (write "
                                  "redis://:PASSWORD@host or redis://USER:PASSWORD@host)",
                     (int)(at - p) > 64 ? 64 : (int)(at - p), p);
            return -1;
        }
        if (!pct_decode(p, (size_t)(colon - p), u->user, sizeof u->user) ||
            !pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof u->pass)) {
            snprintf(err, errlen, "Redis URL: the user or password is badly "
                                  "%%-encoded or too long");
            return -1;
        }
        u->has_user = u->user[0] != '\0';
        u->has_pass = true;
        if (!u->pass[0]) {
            snprintf(err, errlen, "Redis URL: the password is empty (leave out "
                                  "\"user:@\" when the server needs none)");
            return -1;
        }
        p = at + 1;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) {
            snprintf(err, errlen, "Redis URL: \"[\" without \"]\" in the host");
            return -1;
        }
        hs = p + 1;
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/?#");
        p = he;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof u->host) {
        snprintf(err, errlen, "Redis URL \"%.200s\": no host (expected %s)", url,
                 url_form);
        return -1;
    }
    memcpy(u->host, hs, (size_t)(he - hs));
    if (*p == ':') {
        p++;
        size_t plen = strcspn(p, "/?#");
        long port = 0;
        size_t i = 0;
        while (i < plen && isdigit((unsigned char)p[i]) && port <= 65535)
            port = port * 10 + (p[i++] - '0');
        if (plen == 0 || i != plen || port < 1 || port > 65535) {
            snprintf(err, errlen, "Redis URL: port \"%.*s\" is not a number "
                                  "1..65535", (int)(plen > 40 ? 40 : plen), p);
            return -1;
        }
        u->port = (int)port;
        p += plen;
    }
    if (*p == '/') {
        p++;
        const char *ds = p;
        long db = 0;
        while (isdigit((unsigned char)*p) && db <= 100000)
            db = db * 10 + (*p++ - '0');
        if (*p || (p == ds && *ds) || db > 100000) {
            snprintf(err, errlen, "Redis URL: database \"%.40s\" is not a number "
                                  "(expected %s)", ds, url_form);
            return -1;
        }
        u->db = db;
    }
    if (*p) {
        snprintf(err, errlen, "Redis URL: unexpected \"%.40s\" (expected %s)", p,
                 url_form);
        return -1;
    }
    bool v6 = strchr(u->host, ':') != NULL;
    char db[32] = "";
    if (u->db)
        snprintf(db, sizeof db, "/%ld", u->db);
    snprintf(u->shown, sizeof u->shown, "redis://%s%s%s%s%s:%d%s", u->user,
             u->has_pass ? ":***@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port, db);
    return 0;
}

/* ---- connections ----------------------------------------------------------- */

/* One cached watchlist: its text as fw_rstore_fetch hands it out. */
struct cached_list {
    char *name;
    uint64_t version;
    char *text;
    size_t len;
};

struct fw_rstore {
    redisContext *c;
    bool dead;
    int timeout_ms;
    char where[640];
    struct cached_list *cache;
    size_t ncache;
    uint64_t cache_generation;   /* of the fetch that filled the cache */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

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

/* A hint for a Redis error reply. */
static const char *reply_hint(const char *msg)
{
    if (strncmp(msg, "NOAUTH", 6) == 0)
        return " (the server requires a password: put it in the URL, "
               "redis://:PASSWORD@host or redis://USER:PASSWORD@host)";
    if (strncmp(msg, "WRONGPASS", 9) == 0 || strstr(msg, "invalid password") ||
        strstr(msg, "invalid username-password"))
        return " (check the user and password in the URL)";
    if (strncmp(msg, "NOPERM", 6) == 0)
        return " (the ACL user needs the keys ~fraudwatch:*, the channel "
               "&fraudwatch:notify and the commands in docs/redis.md)";
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

/* Runs one command on a bare context: the reply (not an error) or NULL. */
static redisReply *ctx_cmd(redisContext *c, int timeout_ms, const char *where,
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

/* Connects, sets the timeouts, authenticates, selects the db and PINGs. */
static redisContext *open_ctx(const char *url, int *timeout_ms, char *shown,
                              size_t shownlen, char *err, size_t errlen)
{
    struct rurl u;
    if (parse_url(url, &u, err, errlen) != 0)
        return NULL;
    if (*timeout_ms <= 0)
        *timeout_ms = DEFAULT_TIMEOUT_MS;
    snprintf(shown, shownlen, "%s", u.shown);
    struct timeval tv = { .tv_sec = *timeout_ms / 1000,
                          .tv_usec = (*timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    redisReply *rep = NULL;
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", u.shown);
        return NULL;
    }
    if (c->err) {
        ctx_fail(c, *timeout_ms, u.shown, "cannot connect", err, errlen);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "%s: cannot set the socket timeout: %s", u.shown,
                 c->errstr);
        goto fail;
    }
    redisEnableKeepAlive(c);
    if (u.has_pass) {
        const char *argv[3] = { "AUTH", u.user, u.pass };
        int argc = 2;
        if (u.has_user)
            argc = 3;
        else
            argv[1] = u.pass;
        rep = redisCommandArgv(c, argc, argv, NULL);
        if (!rep) {
            ctx_fail(c, *timeout_ms, u.shown, "AUTH", err, errlen);
            goto fail;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "%s: authentication failed: redis answered "
                                  "\"%s\" (check the %spassword in the URL)",
                     u.shown, rep->str, u.has_user ? "user and " : "");
            goto fail;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (u.db) {
        char db[32];
        snprintf(db, sizeof db, "%ld", u.db);
        const char *argv[2] = { "SELECT", db };
        rep = ctx_cmd(c, *timeout_ms, u.shown, "SELECT", 2, argv, err, errlen);
        if (!rep)
            goto fail;
        freeReplyObject(rep);
        rep = NULL;
    }
    const char *ping[1] = { "PING" };
    rep = ctx_cmd(c, *timeout_ms, u.shown, "PING after connecting", 1, ping, err,
                  errlen);
    if (!rep)
        goto fail;
    freeReplyObject(rep);
    explicit_bzero(&u, sizeof u);   /* no password copy lingers */
    return c;
fail:
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    explicit_bzero(&u, sizeof u);
    return NULL;
}

int fw_rstore_connect(const char *url, int timeout_ms, fw_rstore **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    fw_rstore *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return FW_RSTORE_ERR;
    }
    r->c = open_ctx(url, &timeout_ms, r->where, sizeof r->where, err, errlen);
    if (!r->c) {
        free(r);
        return FW_RSTORE_ERR;
    }
    r->timeout_ms = timeout_ms;
    *out = r;
    return FW_RSTORE_OK;
}

static void cache_clear(fw_rstore *r)
{
    for (size_t i = 0; i < r->ncache; i++) {
        free(r->cache[i].name);
        free(r->cache[i].text);
    }
    free(r->cache);
    r->cache = NULL;
    r->ncache = 0;
}

void fw_rstore_free(fw_rstore *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    cache_clear(r);
    free(r);
}

const char *fw_rstore_where(const fw_rstore *r)
{
    return r ? r->where : "";
}

/* ---- commands -------------------------------------------------------------- */

/* An argument vector under construction (strings are copied by hiredis at
 * append time, so they only need to live until then). */
struct args {
    const char **v;
    size_t *l;
    int n, cap;
};

static void arg_add(struct args *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
        a->l = xrealloc(a->l, (size_t)a->cap * sizeof *a->l);
    }
    a->v[a->n] = s;
    a->l[a->n] = len;
    a->n++;
}

static void arg_str(struct args *a, const char *s)
{
    arg_add(a, s, strlen(s));
}

static void arg_free(struct args *a)
{
    free(a->v);
    free(a->l);
    memset(a, 0, sizeof *a);
}

static int dead_fail(fw_rstore *r, char *err, size_t errlen)
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

/* Queues a command (pipelining); only fails when out of memory. */
static void pipe_send(fw_rstore *r, const struct args *a)
{
    if (redisAppendCommandArgv(r->c, a->n, a->v, a->l) != REDIS_OK) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
}

static void pipe_sendv(fw_rstore *r, int argc, const char **argv)
{
    if (redisAppendCommandArgv(r->c, argc, argv, NULL) != REDIS_OK) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
}

/* The next reply, error replies included; NULL (handle dead) when the
 * connection failed. */
static redisReply *pipe_recv(fw_rstore *r, const char *what, char *err,
                             size_t errlen)
{
    void *rep = NULL;
    if (redisGetReply(r->c, &rep) != REDIS_OK || !rep) {
        conn_fail(r, what, err, errlen);
        return NULL;
    }
    return rep;
}

/* Reads n replies, keeping them in reps[] when given (else freeing them).
 * Returns 0, or -1 with err set for the first error reply (all n are read
 * all the same, so the context stays in step) or a dead connection. */
static int pipe_drain(fw_rstore *r, int n, redisReply **reps, const char *what,
                      char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *rep = pipe_recv(r, what, err, errlen);
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

/* Runs one command: its reply, or NULL with err set. */
static redisReply *run(fw_rstore *r, const char *what, int argc, const char **argv,
                       char *err, size_t errlen)
{
    redisReply *rep;
    pipe_sendv(r, argc, argv);
    if (pipe_drain(r, 1, &rep, what, err, errlen) != 0)
        return NULL;
    return rep;
}

static int run_ok(fw_rstore *r, const char *what, int argc, const char **argv,
                  char *err, size_t errlen)
{
    redisReply *rep = run(r, what, argc, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    freeReplyObject(rep);
    return 0;
}

/* A counter key's value: an integer reply, a decimal string, or nil (0). */
static int reply_u64(fw_rstore *r, const redisReply *rep, const char *key,
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

static bool is_array(const redisReply *rep, size_t n)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == n;
}

int fw_rstore_generation(fw_rstore *r, uint64_t *gen, char *err, size_t errlen)
{
    if (r->dead)
        return dead_fail(r, err, errlen);
    const char *argv[2] = { "GET", K_GENERATION };
    redisReply *rep = run(r, "GET " K_GENERATION, 2, argv, err, errlen);
    if (!rep)
        return FW_RSTORE_ERR;
    int rc = reply_u64(r, rep, K_GENERATION, gen, err, errlen);
    freeReplyObject(rep);
    return rc;
}

/* ---- names, values, list text ----------------------------------------------- */

/* Names and the .list text are rulefiles.c's, shared with the loader. */
static int check_list_name(const char *name, char *err, size_t errlen)
{
    if (!name || !fw_rulefiles_valid_list_name(name, strlen(name))) {
        snprintf(err, errlen, "\"%.80s\" is not a valid watchlist name: "
                              FW_LIST_NAME_RULE, name ? name : "");
        return FW_RSTORE_REFUSED;
    }
    return 0;
}

/* Entries of a .list text: pointers into it. */
struct entries {
    const char **p;
    size_t *len;
    size_t n, cap;
};

static void entries_add(struct entries *e, const char *s, size_t n)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->p = xrealloc(e->p, e->cap * sizeof *e->p);
        e->len = xrealloc(e->len, e->cap * sizeof *e->len);
    }
    e->p[e->n] = s;
    e->len[e->n] = n;
    e->n++;
}

static void entries_free(struct entries *e)
{
    free(e->p);
    free(e->len);
    memset(e, 0, sizeof *e);
}

/* The values of a .list text, as the loader reads them. */
static void parse_list_text(const char *data, size_t len, struct entries *e)
{
    fw_listtext it;
    const char *s;
    size_t n;
    fw_listtext_init(&it, data, len);
    while (fw_listtext_next(&it, &s, &n))
        entries_add(e, s, n);
}

static void list_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s", name);
}

static void version_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s:version", name);
}

static void make_token(char *out, size_t n)
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

/* After a WATCH conflict: wait a little, more each time, with jitter, so
 * writers that collided do not collide again in lock step. */
static void backoff(int attempt)
{
    if (attempt <= 0)
        return;
    unsigned us = 200u << (attempt < 6 ? attempt : 6);
    usleep(us / 2 + (unsigned)(fw_mono_ms() * 7919 % (us / 2 + 1)));
}

/* ---- staging ------------------------------------------------------------- */

/* SADDs the entries into tmpkey with an EXPIRE, STAGE_CHUNK per command and
 * at most STAGE_WINDOW commands in flight.  *unique: entries added. */
static int stage(fw_rstore *r, const char *tmpkey, const struct entries *e,
                 size_t *unique, char *err, size_t errlen)
{
    struct args a = { 0 };
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
            a.n = 0;
            arg_str(&a, "SADD");
            arg_str(&a, tmpkey);
            size_t k = 0;
            for (; k < STAGE_CHUNK && i + k < e->n; k++)
                arg_add(&a, e->p[i + k], e->len[i + k]);
            i += k;
            pipe_send(r, &a);
            is_sadd[pending++] = true;
            if (first) {   /* the key exists now: give it its TTL */
                const char *ex[3] = { "EXPIRE", tmpkey, ttl };
                pipe_sendv(r, 3, ex);
                is_sadd[pending++] = false;
                first = false;
            }
        }
        rc = pipe_drain(r, pending, reps, "staging a watchlist (SADD)", err, errlen);
        if (rc != 0)
            break;
        for (int j = 0; j < pending; j++) {
            if (is_sadd[j] && reps[j]->type == REDIS_REPLY_INTEGER)
                added += (size_t)reps[j]->integer;
            freeReplyObject(reps[j]);
        }
    }
    arg_free(&a);
    if (rc == 0 && unique)
        *unique = added;
    return rc;
}

/* Best-effort removal of staged keys after a failure (they expire anyway). */
static void unstage(fw_rstore *r, char **tmpkeys, size_t n)
{
    if (r->dead || n == 0)
        return;
    struct args a = { 0 };
    arg_str(&a, "UNLINK");
    for (size_t i = 0; i < n; i++)
        if (tmpkeys[i])
            arg_str(&a, tmpkeys[i]);
    char e[256];
    if (a.n > 1) {
        pipe_send(r, &a);
        pipe_drain(r, 1, NULL, "UNLINK", e, sizeof e);
    }
    arg_free(&a);
}

/* Refreshes the TTL of staged keys just before the transaction (pipelined
 * after what the caller already queued: `queued` replies come first and
 * are returned in reps[0..queued)).  A key that is gone fails the change
 * before anything is written. */
static int refresh_staged(fw_rstore *r, char **tmpkeys, const char **names,
                          size_t n, int queued, redisReply **reps,
                          char *err, size_t errlen)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", STAGE_TTL_S);
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tmpkeys[i])
            continue;
        const char *ex[3] = { "EXPIRE", tmpkeys[i], ttl };
        pipe_sendv(r, 3, ex);
        sent++;
    }
    redisReply **all = xmalloc((size_t)(queued + sent) * sizeof *all);
    int rc = pipe_drain(r, queued + sent, all, "preparing the transaction", err,
                        errlen);
    if (rc == 0) {
        int k = queued;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!tmpkeys[i])
                continue;
            if (all[k]->type != REDIS_REPLY_INTEGER || all[k]->integer != 1) {
                snprintf(err, errlen, "%s: the staged copy of watchlist %s "
                                      "vanished before it could be applied "
                                      "(expired after %d s, or deleted); "
                                      "nothing was changed: run the command again",
                         r->where, names[i], STAGE_TTL_S);
                rc = FW_RSTORE_ERR;
            }
            k++;
        }
        for (int j = 0; j < queued; j++)
            reps[j] = all[j];
        for (int j = queued; j < queued + sent; j++)
            freeReplyObject(all[j]);
        if (rc != 0)
            for (int j = 0; j < queued; j++) {
                freeReplyObject(reps[j]);
                reps[j] = NULL;
            }
    }
    free(all);
    return rc;
}

static void unwatch(fw_rstore *r)
{
    if (r->dead)
        return;
    const char *argv[1] = { "UNWATCH" };
    char e[256];
    redisReply *rep = run(r, "UNWATCH", 1, argv, e, sizeof e);
    if (rep)
        freeReplyObject(rep);
}

/* Sends MULTI, the queued commands in cmds[0..n), EXEC; reads the replies.
 * Returns 0 with *exec the EXEC array, 1 when EXEC was aborted by WATCH
 * (nothing applied: retry), or an error (nothing applied, unless the message
 * says otherwise). */
static int transact(fw_rstore *r, struct args *cmds, int n, redisReply **exec,
                    const char *what, char *err, size_t errlen)
{
    *exec = NULL;
    const char *multi[1] = { "MULTI" };
    const char *ex[1] = { "EXEC" };
    pipe_sendv(r, 1, multi);
    for (int i = 0; i < n; i++)
        pipe_send(r, &cmds[i]);
    pipe_sendv(r, 1, ex);
    /* MULTI's +OK, n × +QUEUED (or a queueing error), then EXEC. */
    int rc = 0;
    for (int i = 0; i < n + 1; i++) {
        redisReply *rep = pipe_recv(r, what, err, errlen);
        if (!rep)
            return FW_RSTORE_ERR;
        if (rep->type == REDIS_REPLY_ERROR && rc == 0)
            rc = reply_fail(r, what, rep, err, errlen);
        freeReplyObject(rep);
    }
    char e2[512];
    redisReply *rep = pipe_recv(r, what, rc ? e2 : err, rc ? sizeof e2 : errlen);
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
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n) {
        snprintf(err, errlen, "%s: %s: unexpected EXEC reply", r->where, what);
        freeReplyObject(rep);
        return FW_RSTORE_ERR;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "%s: %s: Redis applied the transaction only in "
                                  "part: %s \"%s\"%s; run the command again",
                     r->where, what, cmds[i].v[0], rep->element[i]->str,
                     reply_hint(rep->element[i]->str));
            freeReplyObject(rep);
            return FW_RSTORE_ERR;
        }
    }
    *exec = rep;
    return 0;
}

/* ---- push ------------------------------------------------------------------ */

int fw_rstore_push_files(fw_rstore *r, const fw_rulefile *files, size_t n,
                         fw_rstore_push_result *res, char *err, size_t errlen)
{
    fw_rstore_push_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (r->dead)
        return dead_fail(r, err, errlen);

    /* 1. Validate: exactly the loader `rules check` and the daemon use. */
    fw_ruleset *rs = NULL;
    char *verr = xmalloc(errlen ? errlen : 1);
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

    /* 2. The lists and their entries. */
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (fw_rulefiles_is_list(files[i].name))
            nl++;
    const char **names = xmalloc(nl * sizeof *names + 1);
    char **namebufs = xmalloc(nl * sizeof *namebufs + 1);
    char **tmpkeys = calloc(nl + 1, sizeof *tmpkeys);
    struct entries *ent = calloc(nl + 1, sizeof *ent);
    struct args *cmds = NULL;
    redisReply *exec = NULL, *pre[2] = { NULL, NULL };
    char **old = NULL;
    size_t nold = 0;
    int rc = 0, ncmds = 0;
    if (!tmpkeys || !ent) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    char token[40];
    make_token(token, sizeof token);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fw_rulefiles_is_list(files[i].name))
            continue;
        namebufs[k] = xstrndup(files[i].name, strlen(files[i].name) - 5);
        names[k] = namebufs[k];
        parse_list_text(files[i].data, files[i].len, &ent[k]);
        k++;
    }
    res->nlists = nl;
    for (size_t i = 0; i < n; i++)
        if (fw_rulefiles_is_rules(files[i].name))
            res->nfiles++;

    /* 3. Stage every non-empty list into a temporary key. */
    for (size_t i = 0; i < nl; i++) {
        if (ent[i].n == 0)
            continue;
        size_t klen = strlen(K_TMP) + strlen(token) + strlen(names[i]) + 2;
        tmpkeys[i] = xmalloc(klen);
        snprintf(tmpkeys[i], klen, K_TMP "%s:%s", token, names[i]);
        size_t unique = 0;
        if ((rc = stage(r, tmpkeys[i], &ent[i], &unique, err, errlen)) != 0)
            goto out;
        res->nentries += unique;
    }

    /* 4. One transaction, rebuilt when another writer got in between. */
    for (int attempt = 0;; attempt++) {
        backoff(attempt);
        if (attempt == MAX_ATTEMPTS) {
            snprintf(err, errlen, "%s: other writers kept changing the store "
                                  "during the push; nothing was changed: run it again",
                     r->where);
            rc = FW_RSTORE_ERR;
            goto out;
        }
        const char *watch[3] = { "WATCH", K_VERSION, K_LISTS };
        if ((rc = run_ok(r, "WATCH", 3, watch, err, errlen)) != 0)
            goto out;
        const char *get[2] = { "GET", K_VERSION };
        const char *smembers[2] = { "SMEMBERS", K_LISTS };
        pipe_sendv(r, 2, get);
        pipe_sendv(r, 2, smembers);
        if ((rc = refresh_staged(r, tmpkeys, names, nl, 2, pre, err, errlen)) != 0) {
            unwatch(r);
            goto out;
        }
        uint64_t cur;
        if ((rc = reply_u64(r, pre[0], K_VERSION, &cur, err, errlen)) != 0 ||
            pre[1]->type != REDIS_REPLY_ARRAY) {
            if (rc == 0)
                snprintf(err, errlen, "%s: unexpected SMEMBERS reply", r->where);
            rc = FW_RSTORE_ERR;
            unwatch(r);
            goto out;
        }
        for (size_t i = 0; i < nold; i++)
            free(old[i]);
        free(old);
        nold = pre[1]->elements;
        old = xmalloc(nold * sizeof *old + 1);
        for (size_t i = 0; i < nold; i++)
            old[i] = xstrndup(pre[1]->element[i]->str ? pre[1]->element[i]->str : "",
                              pre[1]->element[i]->len);
        freeReplyObject(pre[0]);
        freeReplyObject(pre[1]);
        pre[0] = pre[1] = NULL;

        /* The commands, each a struct args; buffers for keys live in bufs. */
        int cap = 8 + 5 * (int)nl + 2 * (int)nold;
        cmds = calloc((size_t)cap, sizeof *cmds);
        char (*bufs)[160] = calloc((size_t)cap * 2 + 4, sizeof *bufs);
        if (!cmds || !bufs) {
            fputs("fraudwatch: out of memory\n", stderr);
            abort();
        }
        int nb = 0;
        ncmds = 0;
        struct args *c = &cmds[ncmds++];
        arg_str(c, "DEL");
        arg_str(c, K_FILES);
        c = &cmds[ncmds++];
        arg_str(c, "HSET");
        arg_str(c, K_FILES);
        for (size_t i = 0; i < n; i++) {
            if (!fw_rulefiles_is_rules(files[i].name))
                continue;
            arg_str(c, files[i].name);
            arg_add(c, files[i].data, files[i].len);
        }
        for (size_t i = 0; i < nl; i++) {
            char *lk = bufs[nb++], *vk = bufs[nb++];
            list_key(lk, 160, names[i]);
            version_key(vk, 160, names[i]);
            c = &cmds[ncmds++];
            arg_str(c, "UNLINK");
            arg_str(c, lk);
            if (tmpkeys[i]) {
                c = &cmds[ncmds++];
                arg_str(c, "RENAME");
                arg_str(c, tmpkeys[i]);
                arg_str(c, lk);
                c = &cmds[ncmds++];
                arg_str(c, "PERSIST");
                arg_str(c, lk);
            }
            c = &cmds[ncmds++];
            arg_str(c, "INCR");
            arg_str(c, vk);
        }
        res->nremoved = 0;
        for (size_t i = 0; i < nold; i++) {
            bool kept = false;
            for (size_t j = 0; j < nl && !kept; j++)
                kept = strcmp(old[i], names[j]) == 0;
            if (kept || !fw_rulefiles_valid_list_name(old[i], strlen(old[i])))
                continue;
            char *lk = bufs[nb++], *vk = bufs[nb++];
            list_key(lk, 160, old[i]);
            version_key(vk, 160, old[i]);
            c = &cmds[ncmds++];
            arg_str(c, "UNLINK");
            arg_str(c, lk);
            c = &cmds[ncmds++];
            arg_str(c, "INCR");
            arg_str(c, vk);
            res->nremoved++;
        }
        c = &cmds[ncmds++];
        arg_str(c, "DEL");
        arg_str(c, K_LISTS);
        if (nl) {
            c = &cmds[ncmds++];
            arg_str(c, "SADD");
            arg_str(c, K_LISTS);
            for (size_t i = 0; i < nl; i++)
                arg_str(c, names[i]);
        }
        int i_version = ncmds;
        c = &cmds[ncmds++];
        arg_str(c, "INCR");
        arg_str(c, K_VERSION);
        int i_gen = ncmds;
        c = &cmds[ncmds++];
        arg_str(c, "INCR");
        arg_str(c, K_GENERATION);
        char payload[64];
        snprintf(payload, sizeof payload, "rules %llu", (unsigned long long)cur + 1);
        int i_pub = ncmds;
        c = &cmds[ncmds++];
        arg_str(c, "PUBLISH");
        arg_str(c, CHANNEL);
        arg_str(c, payload);

        rc = transact(r, cmds, ncmds, &exec, "push (MULTI/EXEC)", err, errlen);
        for (int i = 0; i < ncmds; i++)
            arg_free(&cmds[i]);
        free(cmds);
        cmds = NULL;
        free(bufs);
        if (rc == 1)
            continue;   /* a concurrent push or list change: read again */
        if (rc != 0)
            goto out;
        res->version = (uint64_t)exec->element[i_version]->integer;
        res->generation = (uint64_t)exec->element[i_gen]->integer;
        res->notified = exec->element[i_pub]->integer;
        for (size_t i = 0; i < nl; i++) {   /* renamed: nothing to clean up */
            free(tmpkeys[i]);
            tmpkeys[i] = NULL;
        }
        break;
    }
out:
    if (rc != 0)
        unstage(r, tmpkeys, nl);
    if (exec)
        freeReplyObject(exec);
    for (size_t i = 0; i < 2; i++)
        if (pre[i])
            freeReplyObject(pre[i]);
    for (size_t i = 0; i < nl; i++) {
        free(namebufs[i]);
        free(tmpkeys[i]);
        entries_free(&ent[i]);
    }
    for (size_t i = 0; i < nold; i++)
        free(old[i]);
    free(old);
    free(names);
    free(namebufs);
    free(tmpkeys);
    free(ent);
    return rc;
}

int fw_rstore_push_dir(fw_rstore *r, const char *dir, fw_rstore_push_result *res,
                       char *err, size_t errlen)
{
    if (r->dead)
        return dead_fail(r, err, errlen);
    fw_rulefile *files = NULL;
    size_t n = 0;
    char *rerr = xmalloc(errlen ? errlen : 1);
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
        char *copy = xmalloc(len);
        snprintf(copy, len, "%s: %s", dir, err);
        snprintf(err, errlen, "%s", copy);
        free(copy);
    }
    fw_rulefiles_free(files, n);
    return rc;
}

/* ---- snapshot (fetch, pull) ---------------------------------------------------- */

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

static struct cached_list *cache_find(fw_rstore *r, const char *name)
{
    for (size_t i = 0; i < r->ncache; i++)
        if (strcmp(r->cache[i].name, name) == 0)
            return &r->cache[i];
    return NULL;
}

static void cache_put(fw_rstore *r, const struct snap_list *l)
{
    if (l->version == 0)   /* not written by fraudwatch: never trust it */
        return;
    struct cached_list *c = cache_find(r, l->name);
    if (!c) {
        r->cache = xrealloc(r->cache, (r->ncache + 1) * sizeof *r->cache);
        c = &r->cache[r->ncache++];
        c->name = xstrndup(l->name, strlen(l->name));
        c->text = NULL;
    }
    free(c->text);
    c->version = l->version;
    c->text = xstrndup(l->text, l->len);
    c->len = l->len;
}

/* Keeps only the cached lists that the last snapshot had. */
static void cache_prune(fw_rstore *r, const struct snap *s)
{
    size_t w = 0;
    for (size_t i = 0; i < r->ncache; i++) {
        bool live = false;
        for (size_t j = 0; j < s->nlists && !live; j++)
            live = strcmp(r->cache[i].name, s->lists[j].name) == 0;
        if (live) {
            r->cache[w++] = r->cache[i];
        } else {
            free(r->cache[i].name);
            free(r->cache[i].text);
        }
    }
    r->ncache = w;
}

/* One list, read with SSCAN between two reads of its version. */
static int read_list(fw_rstore *r, struct snap_list *l, bool use_cache, char *err,
                     size_t errlen)
{
    char lk[160], vk[160];
    list_key(lk, sizeof lk, l->name);
    version_key(vk, sizeof vk, l->name);
    const char *get[2] = { "GET", vk };
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        backoff(attempt);
        redisReply *rep = run(r, "GET list version", 2, get, err, errlen);
        uint64_t v1, v2;
        if (!rep)
            return FW_RSTORE_ERR;
        int rc = reply_u64(r, rep, vk, &v1, err, errlen);
        freeReplyObject(rep);
        if (rc != 0)
            return rc;
        struct cached_list *c = use_cache ? cache_find(r, l->name) : NULL;
        if (c && v1 != 0 && c->version == v1) {
            l->version = v1;
            l->text = xstrndup(c->text, c->len);
            l->len = c->len;
            l->count = 0;
            for (size_t i = 0; i < c->len; i++)
                l->count += c->text[i] == '\n';
            return 0;
        }
        fw_buf b = { 0 };
        size_t count = 0;
        char cursor[32] = "0";
        do {
            const char *scan[5] = { "SSCAN", lk, cursor, "COUNT", SCAN_COUNT };
            rep = run(r, "SSCAN", 5, scan, err, errlen);
            if (!rep) {
                fw_buf_free(&b);
                return FW_RSTORE_ERR;
            }
            if (!is_array(rep, 2) || rep->element[0]->type != REDIS_REPLY_STRING ||
                rep->element[1]->type != REDIS_REPLY_ARRAY ||
                rep->element[0]->len >= sizeof cursor) {
                snprintf(err, errlen, "%s: SSCAN %s: unexpected reply", r->where, lk);
                freeReplyObject(rep);
                fw_buf_free(&b);
                return FW_RSTORE_ERR;
            }
            memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
            cursor[rep->element[0]->len] = '\0';
            const redisReply *m = rep->element[1];
            for (size_t i = 0; i < m->elements; i++) {
                if (m->element[i]->type != REDIS_REPLY_STRING)
                    continue;
                fw_buf_put(&b, m->element[i]->str, m->element[i]->len);
                fw_buf_putc(&b, '\n');
                count++;
            }
            freeReplyObject(rep);
        } while (strcmp(cursor, "0") != 0);
        rep = run(r, "GET list version", 2, get, err, errlen);
        if (!rep) {
            fw_buf_free(&b);
            return FW_RSTORE_ERR;
        }
        rc = reply_u64(r, rep, vk, &v2, err, errlen);
        freeReplyObject(rep);
        if (rc != 0) {
            fw_buf_free(&b);
            return rc;
        }
        if (v1 == v2) {
            l->version = v1;
            l->text = b.p ? b.p : xstrndup("", 0);
            l->len = b.len;
            l->count = count;
            if (use_cache)
                cache_put(r, l);
            return 0;
        }
        fw_buf_free(&b);   /* changed while being read: again */
    }
    snprintf(err, errlen, "%s: watchlist %s kept changing while it was being "
                          "read; try again", r->where, l->name);
    return FW_RSTORE_ERR;
}

static int snapshot(fw_rstore *r, struct snap *s, bool use_cache, char *err,
                    size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (r->dead)
        return dead_fail(r, err, errlen);
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        backoff(attempt);
        struct args cmds[4] = { { 0 } };
        arg_str(&cmds[0], "GET");
        arg_str(&cmds[0], K_VERSION);
        arg_str(&cmds[1], "GET");
        arg_str(&cmds[1], K_GENERATION);
        arg_str(&cmds[2], "HGETALL");
        arg_str(&cmds[2], K_FILES);
        arg_str(&cmds[3], "SMEMBERS");
        arg_str(&cmds[3], K_LISTS);
        redisReply *exec;
        int rc = transact(r, cmds, 4, &exec, "reading the rule set", err, errlen);
        for (int i = 0; i < 4; i++)
            arg_free(&cmds[i]);
        if (rc != 0)
            return rc < 0 ? rc : FW_RSTORE_ERR;
        const redisReply *h = exec->element[2], *ln = exec->element[3];
        if ((rc = reply_u64(r, exec->element[0], K_VERSION, &s->version, err, errlen)) ||
            (rc = reply_u64(r, exec->element[1], K_GENERATION, &s->generation, err,
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
        s->json = calloc(s->njson + 1, sizeof *s->json);
        s->lists = calloc(ln->elements + 1, sizeof *s->lists);
        if (!s->json || !s->lists) {
            fputs("fraudwatch: out of memory\n", stderr);
            abort();
        }
        for (size_t i = 0; i < s->njson; i++) {
            const redisReply *k = h->element[2 * i], *v = h->element[2 * i + 1];
            s->json[i].name = xstrndup(k->str ? k->str : "", k->len);
            s->json[i].data = xstrndup(v->str ? v->str : "", v->len);
            s->json[i].len = v->len;
        }
        for (size_t i = 0; i < ln->elements; i++) {
            const redisReply *e = ln->element[i];
            s->lists[s->nlists++].name = xstrndup(e->str ? e->str : "", e->len);
        }
        freeReplyObject(exec);
        /* A generation that went back means the store was wiped (FLUSHALL,
         * a restart without persistence): versions start again at 1 and a
         * cached list of the same version may hold other entries. */
        if (use_cache && s->generation < r->cache_generation)
            cache_clear(r);
        if (s->njson)
            fw_rulefiles_sort(s->json, s->njson);
        for (size_t i = 0; i < s->nlists; i++) {
            if (!fw_rulefiles_valid_list_name(s->lists[i].name, strlen(s->lists[i].name))) {
                snprintf(err, errlen, "%s: %s holds \"%.80s\", not a valid "
                                      "watchlist name (written by something other "
                                      "than fraudwatch?)", r->where, K_LISTS,
                         s->lists[i].name);
                snap_free(s);
                return FW_RSTORE_ERR;
            }
            if ((rc = read_list(r, &s->lists[i], use_cache, err, errlen)) != 0) {
                snap_free(s);
                return rc;
            }
        }
        /* A push meanwhile: its lists may not match the rules read above. */
        const char *get[2] = { "GET", K_VERSION };
        redisReply *rep = run(r, "GET " K_VERSION, 2, get, err, errlen);
        uint64_t v2 = 0;
        if (!rep || reply_u64(r, rep, K_VERSION, &v2, err, errlen) != 0) {
            if (rep)
                freeReplyObject(rep);
            snap_free(s);
            return FW_RSTORE_ERR;
        }
        freeReplyObject(rep);
        if (v2 == s->version) {
            if (use_cache) {
                cache_prune(r, s);
                r->cache_generation = s->generation;
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
    fw_rulefile *out = calloc(n + 1, sizeof *out);
    if (!out) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    size_t k = 0;
    for (size_t i = 0; i < s.njson; i++)
        out[k++] = s.json[i];
    free(s.json);
    s.json = NULL;
    s.njson = 0;
    for (size_t i = 0; i < s.nlists; i++) {
        size_t len = strlen(s.lists[i].name) + 6;
        char *name = xmalloc(len);
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
    struct span *v = xmalloc((l->count + 1) * sizeof *v);
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
        fw_buf_put(b, v[i].p, v[i].n);
        fw_buf_putc(b, '\n');
    }
    free(v);
    *count = u;
}

int fw_rstore_pull_dir(fw_rstore *r, const char *dir, bool force,
                       fw_rstore_pull_result *res, char *err, size_t errlen)
{
    fw_rstore_pull_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (r->dead)
        return dead_fail(r, err, errlen);
    struct stat st;
    if (stat(dir, &st) == 0) {
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
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return FW_RSTORE_ERR;
    }

    struct snap s;
    int rc = snapshot(r, &s, false, err, errlen);
    if (rc != 0)
        return rc;
    if (s.njson == 0) {
        snprintf(err, errlen, "%s holds no rule set yet (publish one with: "
                              "fraudwatch rules push DIR --redis URL)", r->where);
        rc = FW_RSTORE_ERR;
        goto out;
    }
    for (size_t i = 0; i < s.njson; i++) {
        if (!fw_rulefiles_valid_rules_name(s.json[i].name, strlen(s.json[i].name))) {
            snprintf(err, errlen, "%s: %s has a field \"%.80s\", not a rule file "
                                  "name (NAME.json): written by something other "
                                  "than fraudwatch? nothing was written",
                     r->where, K_FILES, s.json[i].name);
            rc = FW_RSTORE_ERR;
            goto out;
        }
    }
    if ((rc = mkdir_p(dir, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < s.njson; i++) {
        rc = write_file(dir, s.json[i].name, s.json[i].data, s.json[i].len, err,
                        errlen);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < s.nlists; i++) {
        fw_buf b = { 0 };
        size_t count;
        list_file(&s, &s.lists[i], &b, &count);
        char name[80];
        snprintf(name, sizeof name, "%s.list", s.lists[i].name);
        rc = write_file(dir, name, b.p, b.len, err, errlen);
        fw_buf_free(&b);
        if (rc != 0)
            goto out;
        res->nentries += count;
    }
    res->version = s.version;
    res->generation = s.generation;
    res->nfiles = s.njson;
    res->nlists = s.nlists;
    if (force) {   /* DIR becomes exactly the active set */
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            const char *nm = de->d_name;
            if (nm[0] == '.' || (!fw_rulefiles_is_rules(nm) && !fw_rulefiles_is_list(nm)))
                continue;
            bool live = false;
            for (size_t i = 0; i < s.njson && !live; i++)
                live = strcmp(nm, s.json[i].name) == 0;
            for (size_t i = 0; i < s.nlists && !live; i++)
                live = strlen(nm) == strlen(s.lists[i].name) + 5 &&
                       strncmp(nm, s.lists[i].name, strlen(s.lists[i].name)) == 0 &&
                       fw_rulefiles_is_list(nm);
            if (live)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, nm);
            if (unlink(path) == 0)
                res->nremoved++;
        }
        if (d)
            closedir(d);
    }
out:
    snap_free(&s);
    return rc;
}

/* ---- watchlists --------------------------------------------------------------- */

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
    for (const char *p = s; p < e; p++)
        if (*p == '\n' || *p == '\r') {
            snprintf(err, errlen, "\"%.80s\": a value cannot hold a line break", in);
            return FW_RSTORE_REFUSED;
        }
    *out = xstrndup(s, (size_t)(e - s));
    return 0;
}

/* WATCH the list's version, run `pre` (queued, replies returned), then one
 * MULTI/EXEC of cmds + INCR version + INCR generation + SCARD + PUBLISH. */
struct list_tx {
    const char *name;
    char lk[160], vk[160];
    uint64_t old_version;
};

static int list_commit(fw_rstore *r, struct list_tx *t, struct args *cmds,
                       int ncmds, int i_changed, fw_rstore_list_result *res,
                       const char *what, char *err, size_t errlen)
{
    struct args *c = &cmds[ncmds++];
    arg_str(c, "SADD");
    arg_str(c, K_LISTS);
    arg_str(c, t->name);
    int i_version = ncmds;
    c = &cmds[ncmds++];
    arg_str(c, "INCR");
    arg_str(c, t->vk);
    int i_gen = ncmds;
    c = &cmds[ncmds++];
    arg_str(c, "INCR");
    arg_str(c, K_GENERATION);
    int i_size = ncmds;
    c = &cmds[ncmds++];
    arg_str(c, "SCARD");
    arg_str(c, t->lk);
    char payload[128];
    snprintf(payload, sizeof payload, "list %s %llu", t->name,
             (unsigned long long)t->old_version + 1);
    c = &cmds[ncmds++];
    arg_str(c, "PUBLISH");
    arg_str(c, CHANNEL);
    arg_str(c, payload);
    redisReply *exec;
    int rc = transact(r, cmds, ncmds, &exec, what, err, errlen);
    if (rc != 0)
        return rc;
    res->version = (uint64_t)exec->element[i_version]->integer;
    res->generation = (uint64_t)exec->element[i_gen]->integer;
    res->size = (size_t)exec->element[i_size]->integer;
    if (i_changed >= 0 && exec->element[i_changed]->type == REDIS_REPLY_INTEGER)
        res->changed = (size_t)exec->element[i_changed]->integer;
    freeReplyObject(exec);
    return 0;
}

static int list_change(fw_rstore *r, const char *name, bool add,
                       const char *const *values, size_t n,
                       fw_rstore_list_result *res, char *err, size_t errlen)
{
    fw_rstore_list_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    int64_t t0 = fw_mono_ms();
    if (r->dead)
        return dead_fail(r, err, errlen);
    int rc = check_list_name(name, err, errlen);
    if (rc != 0)
        return rc;
    if (n == 0) {
        snprintf(err, errlen, "no values given");
        return FW_RSTORE_REFUSED;
    }
    char **vals = calloc(n, sizeof *vals);
    if (!vals) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = clean_value(values[i], &vals[i], err, errlen)) != 0)
            goto out;
    struct list_tx t = { .name = name };
    list_key(t.lk, sizeof t.lk, name);
    version_key(t.vk, sizeof t.vk, name);
    for (int attempt = 0;; attempt++) {
        backoff(attempt);
        if (attempt == MAX_ATTEMPTS) {
            snprintf(err, errlen, "%s: watchlist %s kept changing; nothing was "
                                  "changed: run the command again", r->where, name);
            rc = FW_RSTORE_ERR;
            goto out;
        }
        const char *watch[2] = { "WATCH", t.vk };
        if ((rc = run_ok(r, "WATCH", 2, watch, err, errlen)) != 0)
            goto out;
        const char *get[2] = { "GET", t.vk };
        const char *ismember[3] = { "SISMEMBER", K_LISTS, name };
        pipe_sendv(r, 2, get);
        pipe_sendv(r, 3, ismember);
        redisReply *pre[2];
        if ((rc = pipe_drain(r, 2, pre, "reading the watchlist version", err,
                             errlen)) != 0) {
            unwatch(r);
            goto out;
        }
        rc = reply_u64(r, pre[0], t.vk, &t.old_version, err, errlen);
        bool exists = pre[1]->type == REDIS_REPLY_INTEGER && pre[1]->integer == 1;
        freeReplyObject(pre[0]);
        freeReplyObject(pre[1]);
        if (rc == 0 && !add && !exists) {
            snprintf(err, errlen, "%s: there is no watchlist \"%s\" (fraudwatch "
                                  "rules status lists them); nothing was changed",
                     r->where, name);
            rc = FW_RSTORE_REFUSED;
        }
        if (rc != 0) {
            unwatch(r);
            goto out;
        }
        struct args cmds[6] = { { 0 } };
        arg_str(&cmds[0], add ? "SADD" : "SREM");
        arg_str(&cmds[0], t.lk);
        for (size_t i = 0; i < n; i++)
            arg_str(&cmds[0], vals[i]);
        rc = list_commit(r, &t, cmds, 1, 0, res, add ? "lists add (MULTI/EXEC)"
                                                     : "lists remove (MULTI/EXEC)",
                         err, errlen);
        for (int i = 0; i < 6; i++)
            arg_free(&cmds[i]);
        if (rc == 1)
            continue;
        goto out;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    res->seconds = (double)(fw_mono_ms() - t0) / 1000.0;
    return rc;
}

int fw_rstore_list_add(fw_rstore *r, const char *name, const char *const *values,
                       size_t n, fw_rstore_list_result *res, char *err,
                       size_t errlen)
{
    return list_change(r, name, true, values, n, res, err, errlen);
}

int fw_rstore_list_remove(fw_rstore *r, const char *name,
                          const char *const *values, size_t n,
                          fw_rstore_list_result *res, char *err, size_t errlen)
{
    return list_change(r, name, false, values, n, res, err, errlen);
}

int fw_rstore_list_replace(fw_rstore *r, const char *name, const char *data,
                           size_t len, fw_rstore_list_result *res, char *err,
                           size_t errlen)
{
    fw_rstore_list_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    int64_t t0 = fw_mono_ms();
    if (r->dead)
        return dead_fail(r, err, errlen);
    int rc = check_list_name(name, err, errlen);
    if (rc != 0)
        return rc;
    struct entries e = { 0 };
    parse_list_text(data, len, &e);
    struct list_tx t = { .name = name };
    list_key(t.lk, sizeof t.lk, name);
    version_key(t.vk, sizeof t.vk, name);
    char token[40], tmpbuf[200];
    char *tmpkey = NULL;
    make_token(token, sizeof token);
    if (e.n) {
        snprintf(tmpbuf, sizeof tmpbuf, K_TMP "%s:%s", token, name);
        tmpkey = tmpbuf;
        if ((rc = stage(r, tmpkey, &e, NULL, err, errlen)) != 0)
            goto out;
    }
    for (int attempt = 0;; attempt++) {
        backoff(attempt);
        if (attempt == MAX_ATTEMPTS) {
            snprintf(err, errlen, "%s: watchlist %s kept changing; nothing was "
                                  "changed: run the command again", r->where, name);
            rc = FW_RSTORE_ERR;
            goto out;
        }
        const char *watch[2] = { "WATCH", t.vk };
        if ((rc = run_ok(r, "WATCH", 2, watch, err, errlen)) != 0)
            goto out;
        const char *get[2] = { "GET", t.vk };
        pipe_sendv(r, 2, get);
        redisReply *pre[1];
        if ((rc = refresh_staged(r, &tmpkey, &name, 1, 1, pre, err, errlen)) != 0) {
            unwatch(r);
            goto out;
        }
        rc = reply_u64(r, pre[0], t.vk, &t.old_version, err, errlen);
        freeReplyObject(pre[0]);
        if (rc != 0) {
            unwatch(r);
            goto out;
        }
        struct args cmds[8] = { { 0 } };
        int nc = 0;
        arg_str(&cmds[nc], "UNLINK");
        arg_str(&cmds[nc++], t.lk);
        if (tmpkey) {
            arg_str(&cmds[nc], "RENAME");
            arg_str(&cmds[nc], tmpkey);
            arg_str(&cmds[nc++], t.lk);
            arg_str(&cmds[nc], "PERSIST");
            arg_str(&cmds[nc++], t.lk);
        }
        rc = list_commit(r, &t, cmds, nc, -1, res, "lists load (MULTI/EXEC)", err,
                         errlen);
        for (int i = 0; i < 8; i++)
            arg_free(&cmds[i]);
        if (rc == 1)
            continue;
        if (rc == 0) {
            tmpkey = NULL;   /* renamed into place */
            res->changed = res->size;
        }
        goto out;
    }
out:
    if (rc != 0 && tmpkey)
        unstage(r, &tmpkey, 1);
    entries_free(&e);
    res->seconds = (double)(fw_mono_ms() - t0) / 1000.0;
    return rc;
}

int fw_rstore_list_load(fw_rstore *r, const char *name, const char *path,
                        fw_rstore_list_result *res, char *err, size_t errlen)
{
    int64_t t0 = fw_mono_ms();
    if (r->dead)
        return dead_fail(r, err, errlen);
    int rc = check_list_name(name, err, errlen);
    if (rc != 0)
        return rc;
    char *data;
    size_t len;
    if (fw_rulefiles_read_file(path, FW_RULEFILE_LIST, &data, &len, err, errlen) != 0)
        return FW_RSTORE_ERR;
    rc = fw_rstore_list_replace(r, name, data, len, res, err, errlen);
    free(data);
    if (res)
        res->seconds = (double)(fw_mono_ms() - t0) / 1000.0;
    return rc;
}

/* ---- heartbeats and status ------------------------------------------------------ */

int fw_rstore_heartbeat(fw_rstore *r, const fw_heartbeat *hb, int ttl_s,
                        char *err, size_t errlen)
{
    if (r->dead)
        return dead_fail(r, err, errlen);
    if (!hb->instance || !hb->instance[0]) {
        snprintf(err, errlen, "heartbeat: no instance name");
        return FW_RSTORE_REFUSED;
    }
    if (ttl_s < 1)
        ttl_s = 1;
    size_t klen = strlen(K_DAEMON) + strlen(hb->instance) + 1;
    char *key = xmalloc(klen);
    snprintf(key, klen, K_DAEMON "%s", hb->instance);
    char pid[24], ver[24], gen[24], last[24], started[24], ttl[16];
    snprintf(pid, sizeof pid, "%d", hb->pid);
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)hb->version);
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)hb->generation);
    snprintf(last, sizeof last, "%lld", (long long)hb->last_reload_ms);
    snprintf(started, sizeof started, "%lld", (long long)hb->started_ms);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    struct args cmds[2] = { { 0 } };
    struct args *c = &cmds[0];
    arg_str(c, "HSET");
    arg_str(c, key);
    arg_str(c, "instance");
    arg_str(c, hb->instance);
    arg_str(c, "host");
    arg_str(c, hb->host ? hb->host : "");
    arg_str(c, "pid");
    arg_str(c, pid);
    arg_str(c, "version");
    arg_str(c, ver);
    arg_str(c, "generation");
    arg_str(c, gen);
    arg_str(c, "last_reload");
    arg_str(c, last);
    arg_str(c, "last_result");
    arg_str(c, hb->last_ok ? "ok" : "error");
    arg_str(c, "last_error");
    arg_str(c, hb->last_error && !hb->last_ok ? hb->last_error : "");
    arg_str(c, "started");
    arg_str(c, started);
    c = &cmds[1];
    arg_str(c, "EXPIRE");
    arg_str(c, key);
    arg_str(c, ttl);
    redisReply *exec;
    int rc = transact(r, cmds, 2, &exec, "heartbeat", err, errlen);
    arg_free(&cmds[0]);
    arg_free(&cmds[1]);
    free(key);
    if (rc == 0)
        freeReplyObject(exec);
    return rc == 1 ? FW_RSTORE_ERR : rc;
}

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

int fw_rstore_status_read(fw_rstore *r, fw_rstore_status **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (r->dead)
        return dead_fail(r, err, errlen);
    fw_rstore_status *st = calloc(1, sizeof *st);
    char **keys = NULL;
    size_t nkeys = 0, kcap = 0;
    redisReply *exec = NULL;
    redisReply **reps = NULL;
    int rc;
    if (!st) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    struct args cmds[4] = { { 0 } };
    arg_str(&cmds[0], "GET");
    arg_str(&cmds[0], K_VERSION);
    arg_str(&cmds[1], "GET");
    arg_str(&cmds[1], K_GENERATION);
    arg_str(&cmds[2], "HLEN");
    arg_str(&cmds[2], K_FILES);
    arg_str(&cmds[3], "SMEMBERS");
    arg_str(&cmds[3], K_LISTS);
    rc = transact(r, cmds, 4, &exec, "reading the store", err, errlen);
    for (int i = 0; i < 4; i++)
        arg_free(&cmds[i]);
    if (rc != 0) {
        rc = rc < 0 ? rc : FW_RSTORE_ERR;
        goto out;
    }
    if ((rc = reply_u64(r, exec->element[0], K_VERSION, &st->version, err, errlen)) ||
        (rc = reply_u64(r, exec->element[1], K_GENERATION, &st->generation, err,
                        errlen)))
        goto out;
    st->nfiles = (size_t)exec->element[2]->integer;
    const redisReply *ln = exec->element[3];
    st->lists = calloc(ln->elements + 1, sizeof *st->lists);
    if (!st->lists) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    for (size_t i = 0; i < ln->elements; i++)
        st->lists[st->nlists++].name = xstrndup(ln->element[i]->str,
                                                ln->element[i]->len);
    freeReplyObject(exec);
    exec = NULL;
    if (st->nlists) {
        qsort(st->lists, st->nlists, sizeof *st->lists, info_cmp);
        for (size_t i = 0; i < st->nlists; i++) {
            char lk[160], vk[160];
            list_key(lk, sizeof lk, st->lists[i].name);
            version_key(vk, sizeof vk, st->lists[i].name);
            const char *scard[2] = { "SCARD", lk };
            const char *get[2] = { "GET", vk };
            pipe_sendv(r, 2, scard);
            pipe_sendv(r, 2, get);
        }
        reps = xmalloc(2 * st->nlists * sizeof *reps);
        if ((rc = pipe_drain(r, (int)(2 * st->nlists), reps, "reading watchlists",
                             err, errlen)) != 0)
            goto out;
        for (size_t i = 0; i < st->nlists; i++) {
            st->lists[i].size = (uint64_t)reps[2 * i]->integer;
            char vk[160];
            version_key(vk, sizeof vk, st->lists[i].name);
            if (reply_u64(r, reps[2 * i + 1], vk, &st->lists[i].version, err,
                          errlen) != 0)
                st->lists[i].version = 0;
        }
        for (size_t i = 0; i < 2 * st->nlists; i++)
            freeReplyObject(reps[i]);
        free(reps);
        reps = NULL;
    }
    /* Live daemons: heartbeat keys, found with SCAN (never KEYS). */
    char cursor[32] = "0";
    do {
        const char *scan[6] = { "SCAN", cursor, "MATCH", K_DAEMON "*", "COUNT",
                                SCAN_COUNT };
        redisReply *rep = run(r, "SCAN", 6, scan, err, errlen);
        if (!rep) {
            rc = FW_RSTORE_ERR;
            goto out;
        }
        if (!is_array(rep, 2) || rep->element[0]->len >= sizeof cursor) {
            snprintf(err, errlen, "%s: SCAN: unexpected reply", r->where);
            freeReplyObject(rep);
            rc = FW_RSTORE_ERR;
            goto out;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            const redisReply *k = rep->element[1]->element[i];
            bool seen = false;
            for (size_t j = 0; j < nkeys && !seen; j++)
                seen = strlen(keys[j]) == k->len && memcmp(keys[j], k->str, k->len) == 0;
            if (seen)
                continue;
            if (nkeys == kcap) {
                kcap = kcap ? kcap * 2 : 16;
                keys = xrealloc(keys, kcap * sizeof *keys);
            }
            keys[nkeys++] = xstrndup(k->str, k->len);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    if (nkeys) {
        for (size_t i = 0; i < nkeys; i++) {
            const char *hg[2] = { "HGETALL", keys[i] };
            const char *pt[2] = { "PTTL", keys[i] };
            pipe_sendv(r, 2, hg);
            pipe_sendv(r, 2, pt);
        }
        reps = xmalloc(2 * nkeys * sizeof *reps);
        for (size_t i = 0; i < 2 * nkeys; i++) {   /* a WRONGTYPE key is skipped */
            reps[i] = pipe_recv(r, "reading heartbeats", err, errlen);
            if (!reps[i]) {
                for (size_t j = 0; j < i; j++)
                    freeReplyObject(reps[j]);
                free(reps);
                reps = NULL;
                rc = FW_RSTORE_ERR;
                goto out;
            }
        }
        st->daemons = calloc(nkeys, sizeof *st->daemons);
        if (!st->daemons) {
            fputs("fraudwatch: out of memory\n", stderr);
            abort();
        }
        for (size_t i = 0; i < nkeys; i++) {
            const redisReply *h = reps[2 * i], *t = reps[2 * i + 1];
            if (h->type != REDIS_REPLY_ARRAY || h->elements == 0 || h->elements % 2)
                continue;   /* expired meanwhile, or not a heartbeat */
            fw_rstore_daemon *d = &st->daemons[st->ndaemons++];
            for (size_t j = 0; j < h->elements; j += 2) {
                const char *f = h->element[j]->str, *v = h->element[j + 1]->str;
                if (!f || !v)
                    continue;
                if (strcmp(f, "instance") == 0)
                    d->instance = xstrndup(v, strlen(v));
                else if (strcmp(f, "host") == 0)
                    d->host = xstrndup(v, strlen(v));
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
                    d->last_error = xstrndup(v, strlen(v));
                else if (strcmp(f, "started") == 0)
                    d->started_ms = field_i64(v);
            }
            if (!d->instance)
                d->instance = xstrndup(keys[i] + strlen(K_DAEMON),
                                       strlen(keys[i] + strlen(K_DAEMON)));
            if (!d->host)
                d->host = xstrndup("", 0);
            if (!d->last_error)
                d->last_error = xstrndup("", 0);
            d->ttl_ms = t->type == REDIS_REPLY_INTEGER ? t->integer : -1;
        }
        if (st->ndaemons)
            qsort(st->daemons, st->ndaemons, sizeof *st->daemons, daemon_cmp);
        for (size_t i = 0; i < 2 * nkeys; i++)
            freeReplyObject(reps[i]);
        free(reps);
        reps = NULL;
    }
    rc = 0;
out:
    if (exec)
        freeReplyObject(exec);
    free(reps);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    if (rc != 0) {
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

static void fmt_time(int64_t ms, int64_t now_ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char iso[32];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int64_t ago = (now_ms - ms) / 1000;
    if (ago < 0)
        ago = 0;
    if (ago < 120)
        snprintf(out, n, "%s (%llds ago)", iso, (long long)ago);
    else if (ago < 7200)
        snprintf(out, n, "%s (%lldm ago)", iso, (long long)ago / 60);
    else if (ago < 172800)
        snprintf(out, n, "%s (%lldh ago)", iso, (long long)ago / 3600);
    else
        snprintf(out, n, "%s (%lldd ago)", iso, (long long)ago / 86400);
}

void fw_rstore_status_print(const fw_rstore_status *st, int64_t now_ms, FILE *out)
{
    if (st->version == 0 && st->nfiles == 0)
        fprintf(out, "active rule set: none (nothing pushed yet), generation %llu\n",
                (unsigned long long)st->generation);
    else
        fprintf(out, "active rule set: version %llu, generation %llu, %zu rule "
                     "file%s\n", (unsigned long long)st->version,
                (unsigned long long)st->generation, st->nfiles,
                st->nfiles == 1 ? "" : "s");
    fprintf(out, "\nwatchlists: %zu\n", st->nlists);
    if (st->nlists) {
        fprintf(out, "  %-32s %10s %8s\n", "NAME", "ENTRIES", "VERSION");
        for (size_t i = 0; i < st->nlists; i++)
            fprintf(out, "  %-32s %10llu %8llu\n", st->lists[i].name,
                    (unsigned long long)st->lists[i].size,
                    (unsigned long long)st->lists[i].version);
    }
    fprintf(out, "\ndaemons: %zu live\n", st->ndaemons);
    if (!st->ndaemons)
        return;
    fprintf(out, "  %-20s %-20s %7s %7s %10s %-6s %-12s %-32s %s\n", "INSTANCE",
            "HOST", "PID", "VERSION", "GENERATION", "RESULT", "STATE",
            "LAST RELOAD", "EXPIRES");
    for (size_t i = 0; i < st->ndaemons; i++) {
        const fw_rstore_daemon *d = &st->daemons[i];
        char last[64], state[32], exp[24];
        fmt_time(d->last_reload_ms, now_ms, last, sizeof last);
        if (d->generation == st->generation)
            snprintf(state, sizeof state, "current");
        else if (d->generation < st->generation)
            snprintf(state, sizeof state, "behind");
        else   /* the store was wiped and refilled since the daemon loaded */
            snprintf(state, sizeof state, "ahead");
        if (d->ttl_ms >= 0)
            snprintf(exp, sizeof exp, "in %.1fs", (double)d->ttl_ms / 1000.0);
        else
            snprintf(exp, sizeof exp, "never");
        fprintf(out, "  %-20s %-20s %7d %7llu %10llu %-6s %-12s %-32s %s\n",
                d->instance, d->host, d->pid, (unsigned long long)d->version,
                (unsigned long long)d->generation, d->last_ok ? "ok" : "error",
                state, last, exp);
        if (!d->last_ok && d->last_error[0])
            fprintf(out, "      last error: %s\n", d->last_error);
    }
}

/* ---- subscriber ------------------------------------------------------------------ */

struct fw_rsub {
    redisContext *c;
    int timeout_ms;
    bool dead;
    int64_t last_rx_ms;
    int64_t ping_sent_ms;   /* 0: none outstanding */
    char where[640];
};

int fw_rsub_connect(const char *url, int timeout_ms, fw_rsub **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    fw_rsub *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return FW_RSTORE_ERR;
    }
    s->c = open_ctx(url, &timeout_ms, s->where, sizeof s->where, err, errlen);
    if (!s->c) {
        free(s);
        return FW_RSTORE_ERR;
    }
    s->timeout_ms = timeout_ms;
    const char *argv[2] = { "SUBSCRIBE", CHANNEL };
    redisReply *rep = ctx_cmd(s->c, timeout_ms, s->where, "SUBSCRIBE " CHANNEL, 2,
                              argv, err, errlen);
    if (!rep) {
        redisFree(s->c);
        free(s);
        return FW_RSTORE_ERR;
    }
    freeReplyObject(rep);
    s->last_rx_ms = fw_mono_ms();
    *out = s;
    return 0;
}

/* Takes every reply already read: 1 if one was a message. */
static int sub_drain(fw_rsub *s)
{
    int got = 0;
    for (;;) {
        void *v = NULL;
        if (redisGetReplyFromReader(s->c, &v) != REDIS_OK)
            return -1;
        if (!v)
            return got;
        redisReply *rep = v;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
            rep->element[0]->type == REDIS_REPLY_STRING) {
            const char *kind = rep->element[0]->str;
            if (strcmp(kind, "message") == 0)
                got = 1;
            else if (strcmp(kind, "pong") == 0)
                s->ping_sent_ms = 0;
        }
        freeReplyObject(rep);
    }
}

int fw_rsub_wait(fw_rsub *s, int timeout_ms)
{
    if (!s || s->dead)
        return -1;
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t deadline = fw_mono_ms() + timeout_ms;
    for (;;) {
        int got = sub_drain(s);
        if (got != 0) {
            if (got < 0)
                s->dead = true;
            return got;
        }
        int64_t now = fw_mono_ms();
        if (s->ping_sent_ms && now - s->ping_sent_ms > s->timeout_ms) {
            s->dead = true;   /* no PONG: the server or the path is gone */
            return -1;
        }
        if (!s->ping_sent_ms && now - s->last_rx_ms >= SUB_PING_MS) {
            const char *argv[1] = { "PING" };
            int done = 0;
            if (redisAppendCommandArgv(s->c, 1, argv, NULL) != REDIS_OK) {
                s->dead = true;
                return -1;
            }
            while (!done)
                if (redisBufferWrite(s->c, &done) != REDIS_OK) {
                    s->dead = true;
                    return -1;
                }
            s->ping_sent_ms = now;
        }
        int64_t wait = deadline - now;
        if (s->ping_sent_ms) {
            int64_t pd = s->ping_sent_ms + s->timeout_ms + 1 - now;
            if (pd < wait)
                wait = pd;
        } else if (s->last_rx_ms + SUB_PING_MS - now < wait) {
            wait = s->last_rx_ms + SUB_PING_MS - now;
        }
        if (wait < 0)
            wait = 0;
        struct pollfd p = { .fd = s->c->fd, .events = POLLIN };
        int n = poll(&p, 1, (int)wait);
        if (n < 0 && errno != EINTR) {
            s->dead = true;
            return -1;
        }
        if (n > 0) {
            if (redisBufferRead(s->c) != REDIS_OK) {
                s->dead = true;
                return -1;
            }
            s->last_rx_ms = fw_mono_ms();
            continue;
        }
        if (fw_mono_ms() >= deadline)
            return 0;
    }
}

void fw_rsub_free(fw_rsub *s)
{
    if (!s)
        return;
    if (s->c)
        redisFree(s->c);
    free(s);
}
