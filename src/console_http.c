/* console_http.c — the console's HTTP side: the API of SPEC §6 and the page.
 *
 * libmicrohttpd with a thread per connection: a request borrows a Redis
 * connection from the pool for its length, and /api/stream (Server-Sent
 * Events) holds a connection of its own, blocked in XREAD on the change
 * stream fw:con:changes, so every console sees every change, whichever
 * console made it.  Nothing about alerts is kept in memory here.
 *
 * Sessions: POST /api/login checks the yescrypt hash, then stores
 * fw:con:sess:SHA256(token) (user, role, unit, csrf) with the session TTL
 * and sets the cookie fwsid=token (HttpOnly, SameSite=Strict, Max-Age).
 * Each request re-reads the session and the user (a disabled user is out
 * at once).  Every POST but login needs the header X-CSRF-Token equal to
 * the session's csrf and a JSON body.  Failed logins count per user and
 * per address (fw:con:rl:*, 15 minutes): 5 and 20 failures lock further
 * attempts out with 429.
 *
 * Input: bodies over FW_CON_BODY_MAX get 413, headers over the connection
 * memory limit libmicrohttpd's 431; a body must be one JSON object with
 * only known members of the right types (400 naming the member), checked
 * before anything is written; the state machine is checked inside the
 * transition script, which writes all or nothing.  Redis unreachable: 503.
 *
 * Every answer carries no-store, nosniff, a Content-Security-Policy that
 * allows only this origin's files (no inline script), and DENY framing. */
#include "console.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "fraudwatch/rulestore.h"
#include "fraudwatch/snooze.h"
#include "listen_addr.h"

#define RL_WINDOW_S 900
#define RL_USER_MAX 5
#define RL_ADDR_MAX 20
#define SCAN_MAX 20000          /* candidates one list request looks at */

struct fw_con_http {
    struct MHD_Daemon *d;
    fw_metrics *m;
    fw_gauge *m_sse;
    fw_con_store *st;
    char *web_dir;
    int ttl_s;
    bool tls;                   /* HTTPS: the session cookie is Secure */
    char *tls_cert, *tls_key;   /* PEM text, kept while the daemon runs */
    atomic_bool stopping;
};

struct sess {
    char user[FW_CON_ID_MAX + 1], role[16], unit[FW_CON_ID_MAX + 1], csrf[65];
};

struct req {
    char *body;
    size_t len;
    bool too_big;
};

static const char *const states[] = { "new", "assigned", "contacted", "escalated", "closed", NULL };
static const char *const severities[] = { "low", "medium", "high", "critical", NULL };
static const char *const outcomes[] = { "dissuaded", "unreachable", "lost", "false_alarm",
                                        "duplicate", NULL };

static bool in_set(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* ---- answers ------------------------------------------------------------- */

static void secure_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
}

/* The status of the answer this thread queued last (for the metrics). */
static _Thread_local unsigned answered;

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 char *text, size_t len, const char *cookie)
{
    answered = status;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    secure_headers(r);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    if (status == 429)
        MHD_add_response_header(r, "Retry-After", "900");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, cJSON *j,
                                 const char *cookie)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return MHD_NO;
    return send_text(conn, status, "application/json; charset=utf-8", s, strlen(s), cookie);
}

__attribute__((format(printf, 3, 4)))
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    return send_json(conn, status, j, NULL);
}

static enum MHD_Result redis_down(struct MHD_Connection *conn, const char *err)
{
    fw_log(FW_LOG_WARN, "console", "Redis unavailable for a request", "reason=\"%s\"", err);
    return send_error(conn, 503, "the store (Redis) is unavailable; nothing was changed");
}

/* ---- sessions ------------------------------------------------------------- */

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return r;
}

/* 1: a session; 0: none (401); -1: Redis failed. */
static int session_of(redisContext *c, struct MHD_Connection *conn, struct sess *s)
{
    const char *tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "fwsid");
    if (!tok || strlen(tok) != 64)
        return 0;
    char h[65];
    fw_con_sha256_hex(tok, h);
    redisReply *r = cmd(c, "HMGET fw:con:sess:%s user role unit csrf", h);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(s->user, sizeof s->user, "%s", r->element[0]->str);
        snprintf(s->role, sizeof s->role, "%s", r->element[1]->str ? r->element[1]->str : "");
        snprintf(s->unit, sizeof s->unit, "%s", r->element[2]->str ? r->element[2]->str : "");
        snprintf(s->csrf, sizeof s->csrf, "%s", r->element[3]->str ? r->element[3]->str : "");
        rc = 1;
    }
    freeReplyObject(r);
    if (rc == 1) {
        r = cmd(c, "HGET fw:con:user:%s disabled", s->user);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0)
            rc = 0;
        freeReplyObject(r);
    }
    return rc;
}

static void client_addr(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static void audit(redisContext *c, cJSON *e)
{
    char *s = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (!s)
        return;
    redisReply *r = cmd(c, "RPUSH fw:con:audit %s", s);
    if (r)
        freeReplyObject(r);
    free(s);
}

static long long rl_get(redisContext *c, const char *kind, const char *who)
{
    redisReply *r = cmd(c, "GET fw:con:rl:%s:%s", kind, who);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    if (r)
        freeReplyObject(r);
    return v;
}

static void rl_fail(redisContext *c, const char *kind, const char *who)
{
    redisReply *r = cmd(c, "INCR fw:con:rl:%s:%s", kind, who);
    if (r)
        freeReplyObject(r);
    r = cmd(c, "EXPIRE fw:con:rl:%s:%s %d", kind, who, RL_WINDOW_S);
    if (r)
        freeReplyObject(r);
}

static cJSON *parse_body(const struct req *rq, char *why, size_t whylen)
{
    const char *end = NULL;
    cJSON *j = rq->body ? cJSON_ParseWithLengthOpts(rq->body, rq->len, &end, false) : NULL;
    if (!j) {
        snprintf(why, whylen, "the body is not JSON");
        return NULL;
    }
    while (end && end < rq->body + rq->len && strchr(" \t\r\n", *end))
        end++;
    if (!cJSON_IsObject(j) || (end && end < rq->body + rq->len)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the body must be one JSON object");
        return NULL;
    }
    return j;
}

/* Members of o not in allowed (NULL-ended): the first, or NULL. */
static const char *unknown_member(const cJSON *o, const char *const *allowed)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
        if (!in_set(m->string, allowed))
            return m->string;
    return NULL;
}

static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 && *p != '\n')
            return false;
    return true;
}

static enum MHD_Result api_login(fw_con_http *h, struct MHD_Connection *conn, redisContext *c,
                                 const struct req *rq)
{
    char why[256];
    cJSON *b = parse_body(rq, why, sizeof why);
    if (!b)
        return send_error(conn, 400, "%s", why);
    static const char *const allowed[] = { "user", "password", NULL };
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "user");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "password");
    const char *bad = unknown_member(b, allowed);
    if (bad || !cJSON_IsString(u) || !cJSON_IsString(p) || !fw_con_name_ok(u->valuestring) ||
        strlen(p->valuestring) > 1024) {
        cJSON_Delete(b);
        return send_error(conn, 400, "want {\"user\": NAME, \"password\": TEXT}%s%s",
                          bad ? "; unknown member " : "", bad ? bad : "");
    }
    char addr[64];
    client_addr(conn, addr, sizeof addr);
    const char *user = u->valuestring;
    if (rl_get(c, "u", user) >= RL_USER_MAX || rl_get(c, "a", addr) >= RL_ADDR_MAX) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "ts", (double)fw_wall_ms());
        cJSON_AddStringToObject(e, "action", "login_locked");
        cJSON_AddStringToObject(e, "user", user);
        cJSON_AddStringToObject(e, "addr", addr);
        audit(c, e);
        cJSON_Delete(b);
        return send_error(conn, 429, "too many failed logins; try again in 15 minutes");
    }
    redisReply *r = cmd(c, "HMGET fw:con:user:%s hash role unit disabled", user);
    if (!r) {
        cJSON_Delete(b);
        return redis_down(conn, c->errstr);
    }
    const char *hash = r->type == REDIS_REPLY_ARRAY && r->elements == 4 ? r->element[0]->str : NULL;
    bool ok = fw_con_check_password(p->valuestring, hash);
    bool disabled = ok && r->element[3]->str && strcmp(r->element[3]->str, "1") == 0;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "ts", (double)fw_wall_ms());
    cJSON_AddStringToObject(e, "user", user);
    cJSON_AddStringToObject(e, "addr", addr);
    if (!ok || disabled) {
        cJSON_AddStringToObject(e, "action", disabled ? "login_disabled" : "login_failed");
        audit(c, e);
        rl_fail(c, "u", user);
        rl_fail(c, "a", addr);
        freeReplyObject(r);
        cJSON_Delete(b);
        return send_error(conn, 401, "wrong user name or password, or the user is disabled");
    }
    cJSON_AddStringToObject(e, "action", "login");
    audit(c, e);
    char tok[65], csrf[65], th[65];
    if (fw_con_random_hex(tok) != 0 || fw_con_random_hex(csrf) != 0) {
        freeReplyObject(r);
        cJSON_Delete(b);
        return send_error(conn, 500, "no randomness");
    }
    fw_con_sha256_hex(tok, th);
    const char *role = r->element[1]->str ? r->element[1]->str : "officer";
    const char *unit = r->element[2]->str ? r->element[2]->str : "";
    redisReply *x = cmd(c, "HSET fw:con:sess:%s user %s role %s unit %s csrf %s", th, user, role,
                        unit, csrf);
    bool stored = x && x->type != REDIS_REPLY_ERROR;
    if (x)
        freeReplyObject(x);
    x = stored ? cmd(c, "EXPIRE fw:con:sess:%s %d", th, h->ttl_s) : NULL;
    if (x)
        freeReplyObject(x);
    redisReply *d = cmd(c, "DEL fw:con:rl:u:%s", user);
    if (d)
        freeReplyObject(d);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "csrf", csrf);
    cJSON_AddStringToObject(out, "user", user);
    cJSON_AddStringToObject(out, "role", role);
    cJSON_AddStringToObject(out, "unit", unit);
    freeReplyObject(r);
    cJSON_Delete(b);
    if (!stored)
        return redis_down(conn, "session not stored");
    char cookie[256];
    snprintf(cookie, sizeof cookie, "fwsid=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
             tok, h->ttl_s, h->tls ? "; Secure" : "");
    explicit_bzero(tok, sizeof tok);
    return send_json(conn, 200, out, cookie);
}

/* ---- alerts ---------------------------------------------------------------- */

#define ITEM_FIELDS "json unit state assignee outcome amount attempts first_contact"

/* The list item for one HMGET ITEM_FIELDS reply, or NULL. */
static cJSON *item_of(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 8 || !r->element[0]->str)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(r->element[0]->str, r->element[0]->len);
    if (!j)
        return NULL;
    static const char *const names[] = { NULL, "unit", "state", "assignee", "outcome" };
    for (int i = 1; i <= 4; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, names[i]);
        if (r->element[i]->str && (i <= 2 || *r->element[i]->str))
            cJSON_AddStringToObject(j, names[i], r->element[i]->str);
        else if (i == 3)
            cJSON_AddNullToObject(j, names[i]);
    }
    if (r->element[5]->str)
        cJSON_AddNumberToObject(j, "amount", atof(r->element[5]->str));
    cJSON_AddNumberToObject(j, "attempts", r->element[6]->str ? atof(r->element[6]->str) : 0);
    if (r->element[7]->str)
        cJSON_AddNumberToObject(j, "first_contact_ts", atof(r->element[7]->str));
    return j;
}

static const char *arg(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

static bool int_arg(const char *s, long long lo, long long hi, long long *out)
{
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* KEYS[1] an alert's hash, ARGV: its id, min, max, offset: the reply of
 * ZREVRANGEBYSCORE WITHSCORES over a set holding only that alert. */
static const char lua_by_id[] =
    "local ts = tonumber(redis.call('HGET', KEYS[1], 'ts'))\n"
    "local lo, hi = tonumber(ARGV[2]) or -math.huge, tonumber(ARGV[3]) or math.huge\n"
    "if not ts or ARGV[4] ~= '0' or ts < lo or ts > hi then return {} end\n"
    "return {ARGV[1], tostring(ts)}\n";

/* KEYS[1] fw:con:idx:terms, ARGV: term, min, max, offset, count: the
 * term's alerts as ZREVRANGEBYSCORE WITHSCORES would give them from a set
 * per term (id, detected_ts, ...; newest first, but ids of one detected_ts
 * ascending).  Members are TERM \x1f (10^15 - ts, 16 digits) \x1f ID
 * (console_store.c). */
static const char lua_term_range[] =
    "local term, lo, hi, off, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local function inv(x) return string.format('%016d', 1000000000000000 - tonumber(x)) end\n"
    "local a, b = '[' .. term .. '\\31', '[' .. term .. '\\31\\255'\n"
    "if hi ~= '+inf' then a = a .. inv(hi) end\n"
    "if lo ~= '-inf' then b = '[' .. term .. '\\31' .. inv(lo) .. '\\31\\255' end\n"
    "local out = {}\n"
    "for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], a, b, 'LIMIT', off, n)) do\n"
    "  local rest = string.sub(m, #term + 2)\n"
    "  out[#out + 1] = string.sub(rest, 18)\n"
    "  out[#out + 1] = string.format('%d', 1000000000000000 - tonumber(string.sub(rest, 1, 16)))\n"
    "end\n"
    "return out\n";

static enum MHD_Result api_list(struct MHD_Connection *conn, redisContext *c, const struct sess *s)
{
    const char *state = arg(conn, "state"), *unit = arg(conn, "unit"), *sev = arg(conn, "severity");
    const char *rule = arg(conn, "rule"), *q = arg(conn, "q"), *cursor = arg(conn, "cursor");
    long long since = -1, until = -1, limit = 50;
    if (state && !in_set(state, states))
        return send_error(conn, 400, "state must be one of new, assigned, contacted, escalated, closed");
    if (sev && !in_set(sev, severities))
        return send_error(conn, 400, "severity must be one of low, medium, high, critical");
    if ((unit && !fw_con_name_ok(unit)) || (rule && !fw_con_name_ok(rule)))
        return send_error(conn, 400, "unit and rule must be names ([A-Za-z0-9_.:@-], at most 128)");
    if (q && (!text_ok(q, FW_CON_TERM_MAX) || strchr(q, '\n')))
        return send_error(conn, 400, "q must be a phone number, account or alert id (at most %d bytes)",
                          FW_CON_TERM_MAX);
    if (!int_arg(arg(conn, "since"), 0, (long long)1e15, &since) ||
        !int_arg(arg(conn, "until"), 0, (long long)1e15, &until))
        return send_error(conn, 400, "since and until are epoch milliseconds");
    if (!int_arg(arg(conn, "limit"), 1, FW_CON_LIST_MAX, &limit))
        return send_error(conn, 400, "limit must be 1..%d", FW_CON_LIST_MAX);
    long long cts = -1;
    char cid[FW_CON_ID_MAX + 1] = "";
    if (cursor) {
        const char *colon = strchr(cursor, ':');
        char num[32];
        if (!colon || (size_t)(colon - cursor) >= sizeof num) 
            return send_error(conn, 400, "cursor is not one this API gave");
        memcpy(num, cursor, (size_t)(colon - cursor));
        num[colon - cursor] = '\0';
        if (!int_arg(num, 0, (long long)1e15, &cts) || !fw_con_name_ok(colon + 1))
            return send_error(conn, 400, "cursor is not one this API gave");
        snprintf(cid, sizeof cid, "%s", colon + 1);
    }
    if (strcmp(s->role, "officer") == 0) {
        if (unit && strcmp(unit, s->unit) != 0)
            return send_error(conn, 403, "an officer sees only the queue of unit %s", s->unit);
        unit = s->unit;
    }
    char key[400];
    if (q)
        snprintf(key, sizeof key, "fw:con:idx:terms");     /* read by lua_term_range */
    else if (unit && state)
        snprintf(key, sizeof key, "fw:con:idx:us:%s:%s", unit, state);
    else if (unit)
        snprintf(key, sizeof key, "fw:con:idx:unit:%s", unit);
    else if (state)
        snprintf(key, sizeof key, "fw:con:idx:state:%s", state);
    else if (rule)
        snprintf(key, sizeof key, "fw:con:idx:rule:%s", rule);
    else if (sev)
        snprintf(key, sizeof key, "fw:con:idx:sev:%s", sev);
    else
        snprintf(key, sizeof key, "fw:con:idx:all");
    char max[40], min[40];
    long long hi = until >= 0 ? until : -1;
    if (cts >= 0 && (hi < 0 || cts < hi))
        hi = cts;
    if (hi >= 0) snprintf(max, sizeof max, "%lld", hi); else snprintf(max, sizeof max, "+inf");
    if (since >= 0) snprintf(min, sizeof min, "%lld", since); else snprintf(min, sizeof min, "-inf");

    /* q naming a stored alert finds that alert (ids are not search terms) */
    bool by_id = false;
    if (q && fw_con_name_ok(q)) {
        redisReply *r = cmd(c, "EXISTS fw:con:alert:%s", q);
        if (!r)
            return redis_down(conn, c->errstr);
        by_id = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    cJSON *out = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(out, "alerts");
    long long got = 0, scanned = 0, off = 0;
    char last_ts[32] = "", last_id[FW_CON_ID_MAX + 1] = "";
    bool more = true;
    while (got < limit && more && scanned < SCAN_MAX) {
        long long batch = limit - got < 50 ? 100 : (limit - got) * 2;
        redisReply *r =
            by_id ? cmd(c, "EVAL %s 1 fw:con:alert:%s %s %s %s %lld", lua_by_id, q, q, min, max, off)
            : q   ? cmd(c, "EVAL %s 1 fw:con:idx:terms %s %s %s %lld %lld", lua_term_range, q, min,
                        max, off, batch)
                  : cmd(c, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT %lld %lld", key, max, min,
                        off, batch);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            cJSON_Delete(out);
            return redis_down(conn, c->errstr[0] ? c->errstr : "ZREVRANGEBYSCORE failed");
        }
        size_t n = r->elements / 2;
        more = (long long)n == batch;
        off += (long long)n;
        for (size_t i = 0; i < n; i++)
            redisAppendCommand(c, "HMGET fw:con:alert:%s " ITEM_FIELDS, r->element[2 * i]->str);
        for (size_t i = 0; i < n; i++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) != REDIS_OK) {
                freeReplyObject(r);
                cJSON_Delete(out);
                return redis_down(conn, c->errstr);
            }
            redisReply *hr = rep;
            const char *id = r->element[2 * i]->str, *score = r->element[2 * i + 1]->str;
            if (got >= limit) {
                freeReplyObject(hr);
                continue;
            }
            scanned++;
            snprintf(last_ts, sizeof last_ts, "%lld", atoll(score));
            snprintf(last_id, sizeof last_id, "%s", id);
            bool keep = hr->type == REDIS_REPLY_ARRAY && hr->elements == 8 && hr->element[0]->str;
            /* past the cursor: ids of one detected_ts come descending from a
             * ZREVRANGEBYSCORE, ascending from the term index */
            if (keep && cts >= 0 && atoll(score) == cts &&
                (q && !by_id ? strcmp(id, cid) <= 0 : strcmp(id, cid) >= 0))
                keep = false;
            if (keep && ((state && strcmp(hr->element[2]->str, state) != 0) ||
                         (unit && strcmp(hr->element[1]->str, unit) != 0)))
                keep = false;
            cJSON *item = keep ? item_of(hr) : NULL;
            if (item && ((sev && !in_set(sev, (const char *const[]){
                              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "severity")),
                              NULL })) ||
                         (rule && !in_set(rule, (const char *const[]){
                              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "rule_id")),
                              NULL })))) {
                cJSON_Delete(item);
                item = NULL;
            }
            if (item) {
                cJSON_AddItemToArray(arr, item);
                got++;
            }
            freeReplyObject(hr);
        }
        freeReplyObject(r);
    }
    if ((got >= limit || scanned >= SCAN_MAX) && *last_id) {
        char cur[200];
        snprintf(cur, sizeof cur, "%s:%s", last_ts, last_id);
        cJSON_AddStringToObject(out, "cursor", cur);
    } else {
        cJSON_AddNullToObject(out, "cursor");
    }
    return send_json(conn, 200, out, NULL);
}

/* 1 visible, 0 unknown id (404 sent), 403 sent: 2; -1 redis. *itemp set when 1. */
static int load_item(struct MHD_Connection *conn, redisContext *c, const struct sess *s,
                     const char *id, cJSON **itemp, enum MHD_Result *res)
{
    redisReply *r = cmd(c, "HMGET fw:con:alert:%s " ITEM_FIELDS, id);
    if (!r) {
        *res = redis_down(conn, c->errstr);
        return -1;
    }
    cJSON *item = item_of(r);
    freeReplyObject(r);
    if (!item) {
        *res = send_error(conn, 404, "no alert %s", id);
        return 0;
    }
    const char *unit = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "unit"));
    if (strcmp(s->role, "officer") == 0 && (!unit || strcmp(unit, s->unit) != 0)) {
        cJSON_Delete(item);
        *res = send_error(conn, 403, "the alert belongs to another unit");
        return 2;
    }
    *itemp = item;
    return 1;
}

static enum MHD_Result api_get(struct MHD_Connection *conn, redisContext *c, const struct sess *s,
                               const char *id)
{
    cJSON *item;
    enum MHD_Result res;
    if (load_item(conn, c, s, id, &item, &res) != 1)
        return res;
    /* the first entry, "routed", is told from created and unit0 (or unit);
     * the others are a list (console_store.c) */
    redisReply *h0 = cmd(c, "HMGET fw:con:alert:%s created unit0 unit", id);
    redisReply *r = h0 ? cmd(c, "LRANGE fw:con:hist:%s 0 -1", id) : NULL;
    if (!r) {
        if (h0)
            freeReplyObject(h0);
        cJSON_Delete(item);
        return redis_down(conn, c->errstr);
    }
    cJSON *hist = cJSON_AddArrayToObject(item, "history");
    if (h0->type == REDIS_REPLY_ARRAY && h0->elements == 3 && h0->element[0]->str) {
        const char *u0 = h0->element[1]->str ? h0->element[1]->str : h0->element[2]->str;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "ts", atof(h0->element[0]->str));
        cJSON_AddStringToObject(e, "user", "system");
        cJSON_AddNullToObject(e, "from");
        cJSON_AddStringToObject(e, "to", "new");
        if (u0) {
            char note[200];
            cJSON_AddStringToObject(e, "unit", u0);
            snprintf(note, sizeof note, "routed to %s", u0);
            cJSON_AddStringToObject(e, "note", note);
        }
        cJSON_AddItemToArray(hist, e);
    }
    freeReplyObject(h0);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        cJSON *e = cJSON_ParseWithLength(r->element[i]->str, r->element[i]->len);
        if (e)
            cJSON_AddItemToArray(hist, e);
    }
    freeReplyObject(r);
    return send_json(conn, 200, item, NULL);
}

static enum MHD_Result api_transition(struct MHD_Connection *conn, redisContext *c,
                                      const struct sess *s, const char *id, const struct req *rq)
{
    char why[256];
    cJSON *b = parse_body(rq, why, sizeof why);
    if (!b)
        return send_error(conn, 400, "%s", why);
    static const char *const allowed[] = { "to", "outcome", "amount", "note", "assignee",
                                           "attempt", "result", "unit", NULL };
    const char *bad = unknown_member(b, allowed);
#define M(n) cJSON_GetObjectItemCaseSensitive(b, n)
    const cJSON *to = M("to"), *oc = M("outcome"), *am = M("amount"), *note = M("note"),
                *as = M("assignee"), *at = M("attempt"), *res = M("result"), *un = M("unit");
#undef M
    const char *err = NULL;
    char amount[64] = "";
    if (bad)
        snprintf(why, sizeof why, "unknown member \"%.60s\"", bad), err = why;
    else if ((to && !cJSON_IsString(to)) || (oc && !cJSON_IsString(oc)) ||
             (note && !cJSON_IsString(note)) || (as && !cJSON_IsString(as)) ||
             (at && !cJSON_IsString(at)) || (res && !cJSON_IsString(res)) ||
             (un && !cJSON_IsString(un)))
        err = "to, outcome, note, assignee, attempt, result and unit are strings";
    else if (!to == !at)
        err = "give either \"to\" (a transition) or \"attempt\" (a call or SMS attempt)";
    else if (at && (strcmp(at->valuestring, "call") && strcmp(at->valuestring, "sms")))
        err = "attempt must be call or sms";
    else if (at && (!res || (strcmp(res->valuestring, "no_answer") && strcmp(res->valuestring, "busy") &&
                             strcmp(res->valuestring, "refused") && strcmp(res->valuestring, "sent"))))
        err = "an attempt needs result: no_answer, busy, refused or sent";
    else if (!at && res)
        err = "result goes with attempt";
    else if (to && !in_set(to->valuestring, states + 1))
        err = "to must be assigned, contacted, escalated or closed";
    else if (to && strcmp(to->valuestring, "closed") == 0 && !oc)
        err = "closing needs an outcome: dissuaded, unreachable, lost, false_alarm or duplicate";
    else if (oc && (!to || strcmp(to->valuestring, "closed") != 0))
        err = "an outcome goes only with to: closed";
    else if (oc && !in_set(oc->valuestring, outcomes))
        err = "outcome must be dissuaded, unreachable, lost, false_alarm or duplicate";
    else if (am && (!cJSON_IsNumber(am) || !isfinite(am->valuedouble) || am->valuedouble < 0 ||
                    am->valuedouble > 1e13))
        err = "amount must be a number of yuan, 0 or more";
    else if (am && (!oc || (strcmp(oc->valuestring, "dissuaded") && strcmp(oc->valuestring, "lost"))))
        err = "an amount goes only with the outcomes dissuaded (protected) and lost";
    else if (oc && !am && (!strcmp(oc->valuestring, "dissuaded") || !strcmp(oc->valuestring, "lost")))
        err = "dissuaded and lost need the amount (yuan)";
    else if (note && !text_ok(note->valuestring, FW_CON_NOTE_MAX))
        err = "note: at most 2000 bytes, no control characters but newlines";
    else if (as && (!to || strcmp(to->valuestring, "assigned") || !fw_con_name_ok(as->valuestring)))
        err = "assignee (a user name) goes only with to: assigned";
    else if (un && (!to || strcmp(to->valuestring, "escalated") || !fw_con_name_ok(un->valuestring)))
        err = "unit (the unit to visit) goes only with to: escalated";
    if (err) {
        cJSON_Delete(b);
        return send_error(conn, 400, "%s", err);
    }
    if (am)
        snprintf(amount, sizeof amount, "%.2f", am->valuedouble);
    if (!fw_con_name_ok(id)) {
        cJSON_Delete(b);
        return send_error(conn, 404, "no such alert");
    }
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)fw_wall_ms());
    const char *v[13] = { id, s->user, s->role, s->unit, to ? to->valuestring : "",
                          oc ? oc->valuestring : "", amount, note ? note->valuestring : "",
                          as ? as->valuestring : "", at ? at->valuestring : "",
                          res ? res->valuestring : "", now, un ? un->valuestring : "" };
    redisReply *r = fw_con_eval(c, FW_CON_LUA_TRANSITION, 13, v, NULL);
    cJSON_Delete(b);
    if (!r)
        return redis_down(conn, c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        unsigned code = (unsigned)atoi(r->str);
        const char *msg = strchr(r->str, ' ');
        /* Lua errors come back as "CODE reason" (maybe after a prefix). */
        const char *p = r->str;
        while (*p && !(p[0] >= '1' && p[0] <= '4' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
                       p[2] <= '9' && p[3] == ' '))
            p++;
        if (*p) {
            code = (unsigned)atoi(p);
            msg = p + 4;
        }
        enum MHD_Result rc = code >= 400 && code < 500
                                 ? send_error(conn, code, "%s", msg ? msg : r->str)
                                 : send_error(conn, 500, "store error: %.200s", r->str);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    /* The answer is the alert as changed, even when an escalation just
     * moved it out of the officer's unit. */
    struct sess seen = *s;
    snprintf(seen.role, sizeof seen.role, "dispatcher");
    return api_get(conn, c, &seen, id);
}

static enum MHD_Result api_snooze(struct MHD_Connection *conn, fw_con_store *st,
                                  redisContext *c, const struct sess *s, const struct req *rq)
{
    char why[256];
    cJSON *b = parse_body(rq, why, sizeof why);
    if (!b)
        return send_error(conn, 400, "%s", why);
    static const char *const allowed[] = { "rule", "subject", "until", "reason", "alert_id", NULL };
    const char *bad = unknown_member(b, allowed);
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(b, "rule");
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(b, "subject");
    const cJSON *until = cJSON_GetObjectItemCaseSensitive(b, "until");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(b, "reason");
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(b, "alert_id");
    int64_t now = fw_wall_ms();
    const char *err = NULL;
    if (bad)
        err = "members: rule, subject, until, reason, alert_id";
    else if (!cJSON_IsString(rule) ||
             (strcmp(rule->valuestring, "*") != 0 && !fw_con_name_ok(rule->valuestring)))
        err = "rule must be a rule id or *";
    else if (!cJSON_IsString(subj) || !*subj->valuestring ||
             !text_ok(subj->valuestring, FW_CON_TERM_MAX) || strpbrk(subj->valuestring, "\t\n"))
        err = "subject must be text (at most 128 bytes, no tabs or newlines)";
    else if (!cJSON_IsNumber(until) || until->valuedouble <= (double)now ||
             until->valuedouble > (double)now + 366.0 * 86400000)
        err = "until must be epoch milliseconds in the next year";
    else if (reason && (!cJSON_IsString(reason) || !text_ok(reason->valuestring, 500) ||
                        strpbrk(reason->valuestring, "\t\n")))
        err = "reason must be text (at most 500 bytes, no tabs or newlines)";
    else if (aid && (!cJSON_IsString(aid) || !fw_con_name_ok(aid->valuestring)))
        err = "alert_id must be an alert id";
    if (err) {
        cJSON_Delete(b);
        return send_error(conn, 400, "%s", err);
    }
    char *state = NULL;
    if (aid) {
        cJSON *item;
        enum MHD_Result res;
        if (load_item(conn, c, s, aid->valuestring, &item, &res) != 1) {
            cJSON_Delete(b);
            return res;
        }
        state = fw_xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "state")));
        cJSON_Delete(item);
    }
    /* The snooze itself goes through the daemons' snooze store: same
     * keys, same record of changes, same check that the rule exists. */
    fw_snooze z = { .rule = rule->valuestring, .subject = subj->valuestring,
                    .subject_len = strlen(subj->valuestring),
                    .until = (int64_t)until->valuedouble,
                    .reason = reason ? reason->valuestring : "", .by = s->user, .at = now };
    char serr[1024];
    int src = fw_con_snooze_add(st, &z, serr, sizeof serr);
    if (src != 0) {
        free(state);
        cJSON_Delete(b);
        if (src == FW_RSTORE_REFUSED)
            return send_error(conn, 400, "%s", serr);
        return redis_down(conn, serr);
    }
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "ts", (double)now);
    cJSON_AddStringToObject(e, "user", s->user);
    cJSON_AddStringToObject(e, "action", "snooze");
    if (state) {
        cJSON_AddStringToObject(e, "from", state);
        cJSON_AddStringToObject(e, "to", state);
    }
    cJSON *sn = cJSON_AddObjectToObject(e, "snooze");
    cJSON_AddStringToObject(sn, "rule", rule->valuestring);
    cJSON_AddStringToObject(sn, "subject", subj->valuestring);
    cJSON_AddNumberToObject(sn, "until", until->valuedouble);
    if (reason)
        cJSON_AddStringToObject(e, "note", reason->valuestring);
    char *ej = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "RPUSH fw:con:audit %s", ej);
    int n = 3;
    if (aid) {
        redisAppendCommand(c, "RPUSH fw:con:hist:%s %s", aid->valuestring, ej);
        redisAppendCommand(c, "XADD fw:con:changes MAXLEN ~ 10000 * id %s", aid->valuestring);
        n += 2;
    }
    redisAppendCommand(c, "EXEC");
    bool ok = true;
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK) {
            ok = false;
            break;
        }
        redisReply *r = rep;
        if (r->type == REDIS_REPLY_ERROR || (i == n - 1 && r->type != REDIS_REPLY_ARRAY))
            ok = false;
        freeReplyObject(r);
    }
    free(ej);
    free(state);
    if (!ok) {
        cJSON_Delete(b);
        return redis_down(conn, c->errstr[0] ? c->errstr : "MULTI/EXEC failed");
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "rule", rule->valuestring);
    cJSON_AddStringToObject(out, "subject", subj->valuestring);
    cJSON_AddNumberToObject(out, "until", until->valuedouble);
    cJSON_AddStringToObject(out, "by", s->user);
    cJSON_Delete(b);
    return send_json(conn, 200, out, NULL);
}

static double pct(redisContext *c, const char *key, long long n, double p)
{
    long long i = (long long)ceil(p * (double)n) - 1;
    if (i < 0)
        i = 0;
    redisReply *r = cmd(c, "ZRANGE %s %lld %lld WITHSCORES", key, i, i);
    double v = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atof(r->element[1]->str) : 0;
    if (r)
        freeReplyObject(r);
    return v;
}

static enum MHD_Result api_stats(struct MHD_Connection *conn, redisContext *c, const struct sess *s)
{
    const char *unit = arg(conn, "unit");
    if (unit && !fw_con_name_ok(unit))
        return send_error(conn, 400, "unit must be a name");
    if (strcmp(s->role, "officer") == 0) {
        if (unit && strcmp(unit, s->unit) != 0)
            return send_error(conn, 403, "an officer sees only the statistics of unit %s", s->unit);
        unit = s->unit;
    }
    char scope[200];
    snprintf(scope, sizeof scope, unit ? "unit:%s" : "all", unit);
    redisReply *r = cmd(c, "HGETALL fw:con:stats:%s", scope);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return redis_down(conn, c->errstr);
    }
    cJSON *out = cJSON_CreateObject();
    if (unit)
        cJSON_AddStringToObject(out, "unit", unit);
    cJSON *days = cJSON_CreateObject(), *rules = cJSON_CreateObject(),
          *units = cJSON_CreateObject(), *oc = cJSON_CreateObject(), *abc = cJSON_CreateObject();
    double total = 0, prot = 0, lost = 0, esc = 0;
    for (const char *const *o = outcomes; *o; o++)
        cJSON_AddNumberToObject(oc, *o, 0);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str;
        double v = atof(r->element[i + 1]->str);
        char a[300], b[300];
        if (strcmp(k, "total") == 0)
            total = v;
        else if (strcmp(k, "amount_protected") == 0)
            prot = v;
        else if (strcmp(k, "amount_lost") == 0)
            lost = v;
        else if (strcmp(k, "escalations") == 0)
            esc = v;
        else if (strncmp(k, "outcome:", 8) == 0) {
            if (!cJSON_ReplaceItemInObjectCaseSensitive(oc, k + 8, cJSON_CreateNumber(v)))
                cJSON_AddNumberToObject(oc, k + 8, v);
        }
        else if (strncmp(k, "unit:", 5) == 0)
            cJSON_AddNumberToObject(units, k + 5, v);
        else if (strncmp(k, "attempts_before_contact:", 24) == 0)
            cJSON_AddNumberToObject(abc, k + 24, v);
        else if (sscanf(k, "day:%299[^:]:%299s", a, b) == 2) {
            cJSON *d = cJSON_GetObjectItemCaseSensitive(days, a);
            if (!d) {
                d = cJSON_AddObjectToObject(days, a);
                for (const char *const *sv = severities; *sv; sv++)
                    cJSON_AddNumberToObject(d, *sv, 0);
            }
            cJSON_ReplaceItemInObjectCaseSensitive(d, b, cJSON_CreateNumber(v));
        } else if (strncmp(k, "rule:", 5) == 0) {
            const char *colon = strrchr(k + 5, ':');
            if (!colon)
                continue;
            snprintf(a, sizeof a, "%.*s", (int)(colon - (k + 5)), k + 5);
            cJSON *ru = cJSON_GetObjectItemCaseSensitive(rules, a);
            if (!ru) {
                ru = cJSON_AddObjectToObject(rules, a);
                cJSON_AddNumberToObject(ru, "alerts", 0);
                cJSON_AddNumberToObject(ru, "closed", 0);
                cJSON_AddNumberToObject(ru, "false_alarm", 0);
            }
            cJSON_ReplaceItemInObjectCaseSensitive(ru, colon + 1, cJSON_CreateNumber(v));
        }
    }
    freeReplyObject(r);
    cJSON *ru;
    cJSON_ArrayForEach(ru, rules) {
        double cl = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ru, "closed"));
        double fa = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ru, "false_alarm"));
        if (cl > 0)
            cJSON_AddNumberToObject(ru, "false_alarm_rate", fa / cl);
        else
            cJSON_AddNullToObject(ru, "false_alarm_rate");
    }
    /* by_day as a sorted array */
    cJSON *bd = cJSON_CreateArray();
    while (cJSON_GetArraySize(days) > 0) {
        cJSON *min = NULL, *d;
        cJSON_ArrayForEach(d, days)
            if (!min || strcmp(d->string, min->string) < 0)
                min = d;
        cJSON *det = cJSON_DetachItemViaPointer(days, min);
        cJSON_AddStringToObject(det, "day", det->string);
        cJSON_AddItemToArray(bd, det);
    }
    cJSON_Delete(days);
    cJSON_AddNumberToObject(out, "total", total);
    cJSON_AddItemToObject(out, "by_day", bd);
    cJSON_AddItemToObject(out, "by_rule", rules);
    cJSON_AddItemToObject(out, "by_unit", units);
    cJSON_AddItemToObject(out, "by_outcome", oc);
    cJSON_AddNumberToObject(out, "amount_protected", round(prot * 100) / 100);
    cJSON_AddNumberToObject(out, "amount_lost", round(lost * 100) / 100);
    cJSON_AddNumberToObject(out, "escalations", esc);
    cJSON_AddItemToObject(out, "attempts_before_contact", abc);
    char key[300];
    snprintf(key, sizeof key, "fw:con:ttfc:%s", scope);
    r = cmd(c, "ZCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (r)
        freeReplyObject(r);
    cJSON *tt = cJSON_AddObjectToObject(out, "time_to_first_contact_ms");
    cJSON_AddNumberToObject(tt, "count", (double)n);
    if (n) {
        cJSON_AddNumberToObject(tt, "p50", pct(c, key, n, 0.5));
        cJSON_AddNumberToObject(tt, "p90", pct(c, key, n, 0.9));
    } else {
        cJSON_AddNullToObject(tt, "p50");
        cJSON_AddNullToObject(tt, "p90");
    }
    cJSON *open = cJSON_AddObjectToObject(out, "by_state");
    for (const char *const *st = states; *st; st++) {
        if (unit)
            r = cmd(c, "ZCARD fw:con:idx:us:%s:%s", unit, *st);
        else
            r = cmd(c, "ZCARD fw:con:idx:state:%s", *st);
        cJSON_AddNumberToObject(open, *st, r && r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0);
        if (r)
            freeReplyObject(r);
    }
    return send_json(conn, 200, out, NULL);
}

static enum MHD_Result api_units(struct MHD_Connection *conn, redisContext *c)
{
    cJSON *out = cJSON_CreateObject(), *u = cJSON_AddArrayToObject(out, "units"),
          *us = cJSON_AddArrayToObject(out, "users");
    redisReply *r = cmd(c, "SMEMBERS fw:con:units");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        cJSON_AddItemToArray(u, cJSON_CreateString(r->element[i]->str));
    if (r)
        freeReplyObject(r);
    r = cmd(c, "SMEMBERS fw:con:users");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *x = cmd(c, "HMGET fw:con:user:%s role unit disabled", r->element[i]->str);
        if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 3 && x->element[0]->str &&
            !(x->element[2]->str && strcmp(x->element[2]->str, "1") == 0)) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "user", r->element[i]->str);
            cJSON_AddStringToObject(o, "role", x->element[0]->str);
            cJSON_AddStringToObject(o, "unit", x->element[1]->str ? x->element[1]->str : "");
            cJSON_AddItemToArray(us, o);
        }
        if (x)
            freeReplyObject(x);
    }
    if (r)
        freeReplyObject(r);
    if (c->err) {
        cJSON_Delete(out);
        return redis_down(conn, c->errstr);
    }
    return send_json(conn, 200, out, NULL);
}

/* ---- the stream ------------------------------------------------------------- */

struct sse {
    fw_con_http *h;
    struct sess s;
    redisContext *c;
    char last[64];
    fw_buf out;
    size_t pos;
    int64_t last_send;
    bool down;
};

static void sse_free(void *p)
{
    struct sse *x = p;
    fw_gauge_add(x->h->m_sse, -1);
    if (x->c)
        fw_con_put(x->h->st, x->c, false);
    fw_buf_free(&x->out);
    free(x);
}

static void sse_event(struct sse *x, const char *event, const char *data)
{
    fw_buf_printf(&x->out, "event: %s\ndata: %s\n\n", event, data);
}

static void sse_fill(struct sse *x)
{
    if (!x->c) {
        char err[256];
        x->c = fw_con_get(x->h->st, err, sizeof err);
        if (!x->c) {
            if (!x->down)
                sse_event(x, "status", "{\"redis\":\"down\"}");
            x->down = true;
            sleep(1);
            return;
        }
        if (x->down)
            sse_event(x, "status", "{\"redis\":\"ok\"}");
        x->down = false;
        if (!x->last[0]) {
            redisReply *r = cmd(x->c, "XREVRANGE fw:con:changes + - COUNT 1");
            snprintf(x->last, sizeof x->last, "%s",
                     r && r->type == REDIS_REPLY_ARRAY && r->elements == 1
                         ? r->element[0]->element[0]->str : "0-0");
            if (r)
                freeReplyObject(r);
        }
    }
    redisReply *r = cmd(x->c, "XREAD COUNT 100 BLOCK 1000 STREAMS fw:con:changes %s", x->last);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject(r);
        fw_con_put(x->h->st, x->c, false);
        x->c = NULL;
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            redisReply *e = entries->element[i];
            snprintf(x->last, sizeof x->last, "%s", e->element[0]->str);
            redisReply *kv = e->element[1];     /* id ID [id ID ...] */
            for (size_t j = 1; j < kv->elements; j += 2) {
                redisReply *hr = cmd(x->c, "HMGET fw:con:alert:%s " ITEM_FIELDS,
                                     kv->element[j]->str);
                cJSON *item = item_of(hr);
                if (hr)
                    freeReplyObject(hr);
                if (!item)
                    continue;
                const char *unit =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "unit"));
                if (strcmp(x->s.role, "officer") != 0 || (unit && strcmp(unit, x->s.unit) == 0)) {
                    char *js = cJSON_PrintUnformatted(item);
                    if (js)
                        sse_event(x, "alert", js);
                    free(js);
                }
                cJSON_Delete(item);
            }
        }
    }
    freeReplyObject(r);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *x = cls;
    while (x->pos == x->out.len) {
        if (atomic_load(&x->h->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        x->out.len = x->pos = 0;
        int64_t now = fw_mono_ms();
        if (now - x->last_send >= 15000) {
            fw_buf_puts(&x->out, ": keep-alive\n\n");
            break;
        }
        sse_fill(x);
    }
    size_t n = x->out.len - x->pos;
    if (n > max)
        n = max;
    memcpy(buf, x->out.p + x->pos, n);
    x->pos += n;
    x->last_send = fw_mono_ms();
    return (ssize_t)n;
}

static enum MHD_Result api_stream(fw_con_http *h, struct MHD_Connection *conn, const struct sess *s)
{
    struct sse *x = fw_xcalloc(1, sizeof *x);
    x->h = h;
    x->s = *s;
    x->last_send = fw_mono_ms();
    fw_gauge_add(h->m_sse, 1);
    answered = 200;
    fw_buf_puts(&x->out, "retry: 2000\nevent: hello\ndata: {}\n\n");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read,
                                                               x, sse_free);
    if (!r) {
        sse_free(x);
        return MHD_NO;
    }
    secure_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- static files ----------------------------------------------------------- */

static enum MHD_Result serve_file(fw_con_http *h, struct MHD_Connection *conn, const char *url)
{
    const char *name = strcmp(url, "/") == 0 ? "index.html" : url + 1;
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-.");
    const char *dot = strrchr(name, '.');
    if (name[n] || !dot || name[0] == '.' || strstr(name, ".."))
        return send_error(conn, 404, "not found");
    const char *ct = strcmp(dot, ".html") == 0 ? "text/html; charset=utf-8"
                   : strcmp(dot, ".js") == 0   ? "text/javascript; charset=utf-8"
                   : strcmp(dot, ".css") == 0  ? "text/css; charset=utf-8"
                   : strcmp(dot, ".svg") == 0  ? "image/svg+xml"
                   : strcmp(dot, ".png") == 0  ? "image/png" : NULL;
    if (!ct)
        return send_error(conn, 404, "not found");
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", h->web_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > 8 << 20) {
        if (fd >= 0)
            close(fd);
        return send_error(conn, 404, "not found");
    }
    char *data = fw_xmalloc((size_t)sb.st_size + 1);
    ssize_t got = read(fd, data, (size_t)sb.st_size);
    close(fd);
    if (got != sb.st_size) {
        free(data);
        return send_error(conn, 500, "cannot read %s", name);
    }
    return send_text(conn, 200, ct, data, (size_t)got, NULL);
}

/* ---- dispatch ---------------------------------------------------------------- */

static enum MHD_Result route(fw_con_http *h, struct MHD_Connection *conn, const char *url,
                             const char *method, struct req *rq)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (!get && !post)
        return send_error(conn, 405, "GET or POST only");
    if (strncmp(url, "/api/", 5) != 0) {
        if (strcmp(url, "/healthz") == 0) {
            char err[256];
            redisContext *c = fw_con_get(h->st, err, sizeof err);
            fw_con_put(h->st, c, true);
            return send_text(conn, c ? 200 : 503, "text/plain", fw_xstrdup(c ? "ok\n" : "redis down\n"),
                             c ? 3 : 11, NULL);
        }
        return get ? serve_file(h, conn, url) : send_error(conn, 405, "GET only");
    }
    if (rq->too_big)
        return send_error(conn, 413, "the body is larger than %d bytes", FW_CON_BODY_MAX);
    if (post) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!ct || strncasecmp(ct, "application/json", 16) != 0)
            return send_error(conn, 415, "POST bodies are JSON (Content-Type: application/json)");
    }
    char err[512];
    redisContext *c = fw_con_get(h->st, err, sizeof err);
    if (!c)
        return redis_down(conn, err);
    enum MHD_Result rc;
    struct sess s;
    int have = 0;
    if (post && strcmp(url, "/api/login") == 0) {
        rc = api_login(h, conn, c, rq);
        goto done;
    }
    have = session_of(c, conn, &s);
    if (have < 0) {
        rc = redis_down(conn, c->errstr);
        goto done;
    }
    if (have == 0) {
        rc = send_error(conn, 401, "log in first (POST /api/login)");
        goto done;
    }
    if (post) {
        const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!t || !fw_con_ct_equal(t, s.csrf)) {
            rc = send_error(conn, 403, "missing or wrong X-CSRF-Token header");
            goto done;
        }
    }
    const char *aid = strncmp(url, "/api/alerts/", 12) == 0 ? url + 12 : NULL;
    char id[FW_CON_ID_MAX + 1];
    if (get && strcmp(url, "/api/me") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user", s.user);
        cJSON_AddStringToObject(o, "role", s.role);
        cJSON_AddStringToObject(o, "unit", s.unit);
        cJSON_AddStringToObject(o, "csrf", s.csrf);
        rc = send_json(conn, 200, o, NULL);
    } else if (post && strcmp(url, "/api/logout") == 0) {
        const char *tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "fwsid");
        char th[65];
        fw_con_sha256_hex(tok ? tok : "", th);
        redisReply *r = cmd(c, "DEL fw:con:sess:%s", th);
        if (r)
            freeReplyObject(r);
        rc = send_json(conn, 200, cJSON_CreateObject(),
                       h->tls ? "fwsid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
                              : "fwsid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    } else if (get && strcmp(url, "/api/alerts") == 0) {
        rc = api_list(conn, c, &s);
    } else if (aid && get && fw_con_name_ok(aid)) {
        rc = api_get(conn, c, &s, aid);
    } else if (aid && post && strlen(aid) > 11 &&
               strcmp(aid + strlen(aid) - 11, "/transition") == 0 &&
               strlen(aid) - 11 <= FW_CON_ID_MAX) {
        snprintf(id, sizeof id, "%.*s", (int)(strlen(aid) - 11), aid);
        rc = fw_con_name_ok(id) ? api_transition(conn, c, &s, id, rq)
                                : send_error(conn, 404, "no such alert");
    } else if (post && strcmp(url, "/api/snoozes") == 0) {
        rc = api_snooze(conn, h->st, c, &s, rq);
    } else if (get && strcmp(url, "/api/stats") == 0) {
        rc = api_stats(conn, c, &s);
    } else if (get && strcmp(url, "/api/units") == 0) {
        rc = api_units(conn, c);
    } else if (get && strcmp(url, "/api/stream") == 0) {
        rc = api_stream(h, conn, &s);
    } else {
        rc = send_error(conn, 404, "no such API: %s %s", method, url);
    }
done:
    fw_con_put(h->st, c, !c->err);
    return rc;
}

/* The route label of a request: its API path with the id as {id}. */
static const char *route_label(const char *url)
{
    static const char *const known[] = { "/api/login", "/api/logout", "/api/me", "/api/alerts",
                                         "/api/snoozes", "/api/stats", "/api/stream",
                                         "/api/units", "/healthz", "/metrics", NULL };
    for (const char *const *k = known; *k; k++)
        if (strcmp(url, *k) == 0)
            return *k;
    if (strncmp(url, "/api/alerts/", 12) == 0) {
        size_t n = strlen(url);
        return n > 11 && strcmp(url + n - 11, "/transition") == 0
                   ? "/api/alerts/{id}/transition" : "/api/alerts/{id}";
    }
    return strncmp(url, "/api/", 5) == 0 ? "/api/other" : "static";
}

static void count_request(fw_con_http *h, const char *url, unsigned status)
{
    char labels[160];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%u\"", route_label(url), status);
    fw_counter_add(fw_metrics_counter(h->m, "fraudwatch_console_http_requests_total",
                                      "HTTP requests answered, by route and status.", labels), 1);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    fw_con_http *h = cls;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = fw_xcalloc(1, sizeof *rq);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big && rq->len + *upload_size <= FW_CON_BODY_MAX) {
            rq->body = fw_xrealloc(rq->body, rq->len + *upload_size + 1);
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        } else {
            rq->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    answered = 0;
    enum MHD_Result rc;
    if (strcmp(url, "/metrics") == 0 && strcmp(method, "GET") == 0) {
        size_t len = 0;
        char *text = fw_metrics_render(h->m, &len);
        rc = text ? send_text(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL)
                  : send_error(conn, 500, "out of memory");
    } else {
        rc = route(h, conn, url, method, rq);
    }
    if (answered)
        count_request(h, url, answered);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static void free_tls(fw_con_http *h)
{
    if (h->tls_key) {
        explicit_bzero(h->tls_key, strlen(h->tls_key));
        free(h->tls_key);
    }
    free(h->tls_cert);
    h->tls_key = h->tls_cert = NULL;
}

fw_con_http *fw_con_http_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                               char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    /* any address: off the loopback only with TLS (fw_config_validate) */
    if (fw_listen_parse_any(cfg->console_listen, &ss, err, errlen) != 0)
        return NULL;
    fw_con_http *h = fw_xcalloc(1, sizeof *h);
    h->tls = *cfg->console_tls_cert_file && *cfg->console_tls_key_file;
    if (h->tls) {
        h->tls_cert = fw_read_pem("console.tls_cert_file", cfg->console_tls_cert_file, err,
                                  errlen);
        if (h->tls_cert)
            h->tls_key = fw_read_pem("console.tls_key_file", cfg->console_tls_key_file, err,
                                     errlen);
        if (!h->tls_key) {
            free(h->tls_cert);
            free(h);
            return NULL;
        }
    }
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (!h->tls)
        tls_opts[0].option = MHD_OPTION_END;
    h->st = st;
    h->m = m;
    h->m_sse = fw_metrics_gauge(m, "fraudwatch_console_sse_clients",
                                "Pages connected to /api/stream.", NULL);
    h->web_dir = fw_xstrdup(cfg->console_web_dir);
    h->ttl_s = cfg->console_session_ttl_s;
    bool v6 = ss.ss_family == AF_INET6;
    uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                             : ((struct sockaddr_in *)&ss)->sin_port);
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) |
                                (h->tls ? MHD_USE_TLS : 0),
                            port, NULL, NULL, handle, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)0,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_ARRAY, tls_opts,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "console.listen %s: cannot listen there (in use?%s)",
                 cfg->console_listen,
                 h->tls ? "; or the certificate and key do not make a TLS pair" : "");
        free_tls(h);
        free(h->web_dir);
        free(h);
        return NULL;
    }
    return h;
}

void fw_con_http_stop(fw_con_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    MHD_stop_daemon(h->d);
    free_tls(h);
    free(h->web_dir);
    free(h);
}
