/* console_store.c — the console's Redis: the connection pool, the Lua
 * scripts that change alerts, and reading an alert off the topic.
 *
 * Redis is the store of record; every change to an alert is one Lua script
 * run, so it is applied whole or not at all, and two consoles on one Redis
 * cannot interleave halves of changes.  The data model (docs/console.md):
 *
 *   fw:con:alert:ID        hash: json (the alert as received), unit, state,
 *                          severity, rule, ts (detected_ts), terms, created;
 *                          later assignee, attempts, outcome, amount,
 *                          first_contact, unit0 (the unit routed to, kept
 *                          when an escalation moves the alert)
 *   fw:con:hist:ID         list of JSON history entries after the first,
 *                          append-only (the first, "routed", is told from
 *                          created and unit0 or unit: one write less)
 *   fw:con:idx:all         sorted sets of alert ids scored by detected_ts:
 *   fw:con:idx:unit:U        per unit, per state, per unit and state, per
 *   fw:con:idx:state:S       severity and per rule, so the first page of a
 *   fw:con:idx:us:U:S        queue is one range read
 *   fw:con:idx:sev:S
 *   fw:con:idx:rule:R
 *   fw:con:idx:terms       the search index (subject, the values of
 *                          `fields` and of each sequence step's fields):
 *                          one sorted set, all scores 0, members
 *                          TERM \x1f (10^15 - detected_ts, 16 digits) \x1f ID,
 *                          so one term's alerts are a ZRANGEBYLEX range,
 *                          newest first.  One set, not a set per term:
 *                          most terms (a victim's number, an account) name
 *                          one or two alerts, and a key each cost more than
 *                          the other writes of an alert together.  An alert
 *                          id is found by its hash, not as a term.
 *   fw:con:stats:all, fw:con:stats:unit:U   hashes of counters
 *   fw:con:ttfc:all, fw:con:ttfc:unit:U     time to first contact (zsets)
 *   fw:con:changes         stream of changed alert ids (the SSE feed; an
 *                          entry names one or more: id ID [id ID ...])
 *   fw:con:audit           list of JSON audit entries (logins, changes, snoozes)
 *
 * Idempotence: the ingest script does nothing when the alert's hash
 * exists, so re-reading the topic, or a second console, never duplicates
 * an alert or resets its state.
 *
 * The pool: libmicrohttpd runs a thread per connection, each borrowing a
 * context for one request; a context that saw an error is closed, not
 * returned (hiredis contexts are unusable after an error). */
#include "console.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/rulestore.h"
#include "fraudwatch/snooze.h"
#include "fraudwatch/snoozestore.h"
#include "redis_conn.h"

/* ---- Lua ------------------------------------------------------------------ */

/* The scripts are longer than the 4095 bytes C99 promises a literal; gcc
 * and clang take them. */
#pragma GCC diagnostic ignored "-Woverlength-strings"

/* ARGV: now, then 8 per alert: id json unit severity rule ts day
 * terms(\31-joined).  One call stores a batch; returns one 1 (stored) or
 * 0 (there already) per alert, in order.  Redis' time per alert is the
 * ingest rate, and most of it is paid per command (the call, and its copy
 * in the append-only file), not per element (bench/README.md, "The
 * console"): so per alert only its hash is written, with the fields every
 * alert has (a field absent is empty: assignee, attempts 0), and its first
 * history entry ("routed") is not written but told from the fields created
 * and unit0 (or unit); index entries are gathered per sorted set and added with one
 * ZADD each, counters summed and written once per field, the unit set and
 * the webhook check done once per unit, and the change feed gets one entry
 * naming every stored id.  A batch holds at most FW_CON_BATCH_MAX alerts
 * (Lua's unpack() takes at most 8000 values). */
static const char lua_ingest[] =
    "local now, out, i = ARGV[1], {}, 2\n"
    "local inc, zs, hooks, units, ids = {}, {}, {}, {}, {}\n"
    "local function bump(h, f)\n"
    "  local t = inc[h]\n"
    "  if not t then t = {}; inc[h] = t end\n"
    "  t[f] = (t[f] or 0) + 1\n"
    "end\n"
    "local function zadd(key, score, member)\n"
    "  local t = zs[key]\n"
    "  if not t then t = {}; zs[key] = t end\n"
    "  t[#t + 1] = score; t[#t + 1] = member\n"
    "  if #t >= 7000 then redis.call('ZADD', key, unpack(t)); zs[key] = nil end\n"
    "end\n"
    "while i + 7 <= #ARGV do\n"
    "  local id, unit, sev, rule, ts = ARGV[i], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]\n"
    "  local day, terms = ARGV[i + 6], ARGV[i + 7]\n"
    "  local k = 'fw:con:alert:' .. id\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    out[#out + 1] = 0\n"
    "  else\n"
    "    redis.call('HSET', k, 'json', ARGV[i + 1], 'unit', unit, 'state', 'new', 'severity', sev,\n"
    "      'rule', rule, 'ts', ts, 'terms', terms, 'created', now)\n"
    "    zadd('fw:con:idx:all', ts, id)\n"
    "    zadd('fw:con:idx:unit:' .. unit, ts, id)\n"
    "    zadd('fw:con:idx:state:new', ts, id)\n"
    "    zadd('fw:con:idx:us:' .. unit .. ':new', ts, id)\n"
    "    zadd('fw:con:idx:sev:' .. sev, ts, id)\n"
    "    zadd('fw:con:idx:rule:' .. rule, ts, id)\n"
    "    if terms ~= '' then\n"
    "      local tail = string.format('\\31%016d\\31', 1000000000000000 - tonumber(ts)) .. id\n"
    "      for t in string.gmatch(terms, '[^\\31]+') do zadd('fw:con:idx:terms', 0, t .. tail) end\n"
    "    end\n"
    "    local dk, rk, uk = 'day:' .. day .. ':' .. sev, 'rule:' .. rule .. ':alerts', 'unit:' .. unit\n"
    "    for _, h in ipairs({'fw:con:stats:all', 'fw:con:stats:unit:' .. unit}) do\n"
    "      bump(h, 'total'); bump(h, dk); bump(h, rk); bump(h, uk)\n"
    "    end\n"
    "    if hooks[unit] == nil then\n"
    "      hooks[unit] = redis.call('EXISTS', 'fw:con:webhook:' .. unit) == 1\n"
    "      units[#units + 1] = unit\n"
    "    end\n"
    "    if hooks[unit] then zadd('fw:con:hookq', now, id .. '|' .. unit) end\n"
    "    ids[#ids + 1] = 'id'; ids[#ids + 1] = id\n"
    "    out[#out + 1] = 1\n"
    "  end\n"
    "  i = i + 8\n"
    "end\n"
    "for key, t in pairs(zs) do redis.call('ZADD', key, unpack(t)) end\n"
    "for h, t in pairs(inc) do\n"
    "  for f, n in pairs(t) do redis.call('HINCRBY', h, f, n) end\n"
    "end\n"
    "if #units > 0 then redis.call('SADD', 'fw:con:units', unpack(units)) end\n"
    "if #ids > 0 then\n"
    "  redis.call('XADD', 'fw:con:changes', 'MAXLEN', '~', 10000, '*', unpack(ids))\n"
    "end\n"
    "return out\n";

/* ARGV: id user role user_unit to outcome amount note assignee attempt
 *       result now target_unit
 * Returns 'ok', or an error reply "CODE reason" (400/403/404/409). */
static const char lua_transition[] =
    "local id, user, role, uunit, to = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local outcome, amount, note, assignee = ARGV[6], ARGV[7], ARGV[8], ARGV[9]\n"
    "local attempt, result, now, tunit = ARGV[10], ARGV[11], tonumber(ARGV[12]), ARGV[13]\n"
    "local k = 'fw:con:alert:' .. id\n"
    "local h = redis.call('HMGET', k, 'state', 'unit', 'assignee', 'ts', 'attempts', 'rule',\n"
    "  'outcome', 'amount', 'first_contact')\n"
    "local state, unit = h[1], h[2]\n"
    "if not state then return redis.error_reply('404 no alert ' .. id) end\n"
    "if role == 'officer' and unit ~= uunit then\n"
    "  return redis.error_reply('403 the alert belongs to another unit') end\n"
    "local e = {ts = now, user = user, from = state}\n"
    "if note ~= '' then e.note = note end\n"
    "local function emit()\n"
    "  redis.call('RPUSH', 'fw:con:hist:' .. id, cjson.encode(e))\n"
    "  e.alert_id = id; e.action = 'transition'\n"
    "  redis.call('RPUSH', 'fw:con:audit', cjson.encode(e))\n"
    "  redis.call('XADD', 'fw:con:changes', 'MAXLEN', '~', 10000, '*', 'id', id)\n"
    "end\n"
    "local scopes = {'fw:con:stats:all', 'fw:con:stats:unit:' .. unit}\n"
    "if attempt ~= '' then\n"
    "  if state ~= 'assigned' and state ~= 'escalated' then\n"
    "    return redis.error_reply('409 attempts are recorded while the alert is assigned or escalated, not ' .. state) end\n"
    "  redis.call('HINCRBY', k, 'attempts', 1)\n"
    "  e.to = state; e.attempt = attempt; e.result = result\n"
    "  emit(); return 'ok'\n"
    "end\n"
    "local allowed = {new = {assigned = 1, closed = 1},\n"
    "  assigned = {assigned = 1, contacted = 1, escalated = 1, closed = 1},\n"
    "  escalated = {assigned = 1, contacted = 1, closed = 1},\n"
    "  contacted = {closed = 1}, closed = {}}\n"
    "if state == 'closed' then\n"
    "  if role ~= 'admin' then return redis.error_reply('403 only an admin may reopen a closed alert') end\n"
    "  if to ~= 'assigned' and to ~= 'contacted' then\n"
    "    return redis.error_reply('409 a closed alert is reopened to assigned or contacted') end\n"
    "elseif not allowed[state][to] then\n"
    "  return redis.error_reply('409 ' .. state .. ' cannot go to ' .. to)\n"
    "end\n"
    "local newunit = unit\n"
    "if to == 'assigned' then\n"
    "  if assignee == '' then assignee = user end\n"
    "  local a = redis.call('HMGET', 'fw:con:user:' .. assignee, 'role', 'unit', 'disabled')\n"
    "  if not a[1] then return redis.error_reply('400 no user ' .. assignee) end\n"
    "  if a[3] == '1' then return redis.error_reply('400 user ' .. assignee .. ' is disabled') end\n"
    "  if a[1] == 'officer' and a[2] ~= unit then\n"
    "    return redis.error_reply('400 ' .. assignee .. ' is an officer of another unit') end\n"
    "  if role == 'officer' and assignee ~= user then\n"
    "    return redis.error_reply('403 an officer assigns alerts to themself only') end\n"
    "  redis.call('HSET', k, 'assignee', assignee); e.assignee = assignee\n"
    "end\n"
    "if to == 'escalated' then\n"
    "  if tunit ~= '' and tunit ~= unit then newunit = tunit; e.unit = tunit end\n"
    "  for _, s in ipairs(scopes) do redis.call('HINCRBY', s, 'escalations', 1) end\n"
    "end\n"
    "if state == 'closed' then\n"
    "  local po, pa = h[7], tonumber(h[8]) or 0\n"
    "  for _, s in ipairs(scopes) do\n"
    "    redis.call('HINCRBY', s, 'outcome:' .. po, -1)\n"
    "    redis.call('HINCRBY', s, 'rule:' .. h[6] .. ':closed', -1)\n"
    "    if po == 'false_alarm' then redis.call('HINCRBY', s, 'rule:' .. h[6] .. ':false_alarm', -1) end\n"
    "    if po == 'dissuaded' then redis.call('HINCRBYFLOAT', s, 'amount_protected', -pa) end\n"
    "    if po == 'lost' then redis.call('HINCRBYFLOAT', s, 'amount_lost', -pa) end\n"
    "  end\n"
    "  redis.call('HDEL', k, 'outcome', 'amount')\n"
    "end\n"
    "if to == 'closed' then\n"
    "  local a = tonumber(amount) or 0\n"
    "  redis.call('HSET', k, 'outcome', outcome); e.outcome = outcome\n"
    "  if amount ~= '' then redis.call('HSET', k, 'amount', amount); e.amount = a end\n"
    "  for _, s in ipairs(scopes) do\n"
    "    redis.call('HINCRBY', s, 'outcome:' .. outcome, 1)\n"
    "    redis.call('HINCRBY', s, 'rule:' .. h[6] .. ':closed', 1)\n"
    "    if outcome == 'false_alarm' then redis.call('HINCRBY', s, 'rule:' .. h[6] .. ':false_alarm', 1) end\n"
    "    if outcome == 'dissuaded' then redis.call('HINCRBYFLOAT', s, 'amount_protected', a) end\n"
    "    if outcome == 'lost' then redis.call('HINCRBYFLOAT', s, 'amount_lost', a) end\n"
    "  end\n"
    "end\n"
    "local contact = to == 'contacted' or (to == 'closed' and (outcome == 'dissuaded' or outcome == 'lost'))\n"
    "if contact and not h[9] then\n"
    "  redis.call('HSET', k, 'first_contact', now)\n"
    "  local d = now - tonumber(h[4])\n"
    "  if d < 0 then d = 0 end\n"
    "  for _, s in ipairs({'all', 'unit:' .. unit}) do\n"
    "    redis.call('ZADD', 'fw:con:ttfc:' .. s, d, id)\n"
    "    redis.call('HINCRBY', 'fw:con:stats:' .. s, 'attempts_before_contact:' .. (h[5] or '0'), 1)\n"
    "  end\n"
    "end\n"
    "local ts = tonumber(h[4])\n"
    "redis.call('ZREM', 'fw:con:idx:state:' .. state, id)\n"
    "redis.call('ZREM', 'fw:con:idx:us:' .. unit .. ':' .. state, id)\n"
    "redis.call('ZADD', 'fw:con:idx:state:' .. to, ts, id)\n"
    "if newunit ~= unit then\n"
    "  redis.call('HSETNX', k, 'unit0', unit)\n"
    "  redis.call('ZREM', 'fw:con:idx:unit:' .. unit, id)\n"
    "  redis.call('ZADD', 'fw:con:idx:unit:' .. newunit, ts, id)\n"
    "  redis.call('HSET', k, 'unit', newunit)\n"
    "  redis.call('SADD', 'fw:con:units', newunit)\n"
    "  if redis.call('EXISTS', 'fw:con:webhook:' .. newunit) == 1 then\n"
    "    redis.call('ZADD', 'fw:con:hookq', now, id .. '|' .. newunit)\n"
    "  end\n"
    "end\n"
    "redis.call('ZADD', 'fw:con:idx:us:' .. newunit .. ':' .. to, ts, id)\n"
    "redis.call('HSET', k, 'state', to, 'updated', now)\n"
    "e.to = to\n"
    "emit()\n"
    "return 'ok'\n";

/* ARGV: id.  Deletes a closed alert with its history and index entries. */
static const char lua_expire[] =
    "local id = ARGV[1]\n"
    "local k = 'fw:con:alert:' .. id\n"
    "local h = redis.call('HMGET', k, 'state', 'unit', 'severity', 'rule', 'terms', 'ts')\n"
    "if not h[1] then redis.call('ZREM', 'fw:con:idx:all', id) return 1 end\n"
    "if h[1] ~= 'closed' then return 0 end\n"
    "for _, z in ipairs({'all', 'unit:' .. h[2], 'state:closed', 'us:' .. h[2] .. ':closed',\n"
    "                    'sev:' .. h[3], 'rule:' .. h[4]}) do\n"
    "  redis.call('ZREM', 'fw:con:idx:' .. z, id)\n"
    "end\n"
    "if h[5] and h[5] ~= '' then\n"
    "  local tail = string.format('\\31%016d\\31', 1000000000000000 - tonumber(h[6])) .. id\n"
    "  for t in string.gmatch(h[5], '[^\\31]+') do redis.call('ZREM', 'fw:con:idx:terms', t .. tail) end\n"
    "end\n"
    "redis.call('DEL', k, 'fw:con:hist:' .. id)\n"
    "return 1\n";

static const char *const scripts[FW_CON_NSCRIPTS] = { lua_ingest, lua_transition, lua_expire };
static char shas[FW_CON_NSCRIPTS][41];
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

int fw_con_load_scripts(redisContext *c)
{
    for (int i = 0; i < FW_CON_NSCRIPTS; i++) {
        redisReply *r = redisCommand(c, "SCRIPT LOAD %s", scripts[i]);
        if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        pthread_mutex_lock(&sha_lock);
        memcpy(shas[i], r->str, 41);
        pthread_mutex_unlock(&sha_lock);
        freeReplyObject(r);
    }
    return 0;
}

static void sha_of(enum fw_con_script which, char out[41])
{
    pthread_mutex_lock(&sha_lock);
    memcpy(out, shas[which], 41);
    pthread_mutex_unlock(&sha_lock);
}

void fw_con_eval_append(redisContext *c, enum fw_con_script which, int argc,
                        const char **argv, const size_t *lens)
{
    const char *v[32];
    size_t l[32];
    char sha[41];
    sha_of(which, sha);
    v[0] = "EVALSHA"; l[0] = 7;
    v[1] = sha; l[1] = strlen(sha);
    v[2] = "0"; l[2] = 1;
    for (int i = 0; i < argc && i < 29; i++) {
        v[3 + i] = argv[i];
        l[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    redisAppendCommandArgv(c, argc + 3, v, l);
}

redisReply *fw_con_eval(redisContext *c, enum fw_con_script which, int argc,
                        const char **argv, const size_t *lens)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        char sha[41];
        sha_of(which, sha);
        if (!sha[0] && fw_con_load_scripts(c) != 0)
            return NULL;
        fw_con_eval_append(c, which, argc, argv, lens);
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK)
            return NULL;
        redisReply *r = rep;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(r);
            if (fw_con_load_scripts(c) != 0)
                return NULL;
            continue;
        }
        return r;
    }
    return NULL;
}

/* ---- the pool ------------------------------------------------------------- */

#define POOL_MAX 32

struct fw_con_store {
    char *url;
    int timeout_ms;
    char where[640];
    pthread_mutex_t lock;
    redisContext *idle[POOL_MAX];
    int nidle;
};

fw_con_store *fw_con_store_new(const char *url, int timeout_ms)
{
    fw_con_store *s = fw_xcalloc(1, sizeof *s);
    s->url = fw_xstrdup(url);
    s->timeout_ms = timeout_ms;
    snprintf(s->where, sizeof s->where, "redis");
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void fw_con_store_free(fw_con_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nidle; i++)
        redisFree(s->idle[i]);
    pthread_mutex_destroy(&s->lock);
    explicit_bzero(s->url, strlen(s->url));
    free(s->url);
    free(s);
}

const char *fw_con_store_where(const fw_con_store *s)
{
    return s->where;
}

redisContext *fw_con_get(fw_con_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    redisContext *c = s->nidle ? s->idle[--s->nidle] : NULL;
    pthread_mutex_unlock(&s->lock);
    if (c)
        return c;
    int t = s->timeout_ms;
    char shown[640];
    c = fw_redis_open(s->url, &t, shown, sizeof shown, err, errlen);
    if (!c)
        return NULL;
    pthread_mutex_lock(&s->lock);
    snprintf(s->where, sizeof s->where, "%s", shown);
    pthread_mutex_unlock(&s->lock);
    char sha[41];
    sha_of(FW_CON_LUA_INGEST, sha);
    if (!sha[0] && fw_con_load_scripts(c) != 0) {
        snprintf(err, errlen, "%s: SCRIPT LOAD failed (is this a Redis with Lua?)", shown);
        redisFree(c);
        return NULL;
    }
    return c;
}

int fw_con_snooze_add(fw_con_store *s, const struct fw_snooze *z, char *err, size_t errlen)
{
    fw_rstore *r = NULL;
    int rc = fw_rstore_connect(s->url, s->timeout_ms, &r, err, errlen);
    if (rc != 0)
        return FW_RSTORE_ERR;
    bool replaced = false;
    uint64_t version = 0;
    rc = fw_rstore_snooze_add(r, z, &replaced, &version, err, errlen);
    fw_rstore_free(r);
    return rc;
}

void fw_con_put(fw_con_store *s, redisContext *c, bool ok)
{
    if (!c)
        return;
    if (!ok || c->err) {
        redisFree(c);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (s->nidle < POOL_MAX) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (c)
        redisFree(c);
}

/* ---- an alert off the topic ------------------------------------------------ */

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void add_term(fw_con_alert *a, const char *t)
{
    size_t n = strlen(t);
    if (!n || n > FW_CON_TERM_MAX || a->nterms == FW_CON_TERMS_MAX || strchr(t, '\x1f'))
        return;
    for (size_t i = 0; i < a->nterms; i++)
        if (strcmp(a->terms[i], t) == 0)
            return;
    a->terms[a->nterms++] = fw_xstrdup(t);
}

/* The values of an object's members (strings, integral numbers) as terms. */
static void add_field_terms(fw_con_alert *a, const cJSON *fields)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, fields) {
        if (cJSON_IsString(f))
            add_term(a, f->valuestring);
        else if (cJSON_IsNumber(f) && f->valuedouble == (double)(long long)f->valuedouble &&
                 f->valuedouble > 1e5 && f->valuedouble < 9e15) {
            char b[32];     /* numbers long enough to be a phone or an account */
            snprintf(b, sizeof b, "%lld", (long long)f->valuedouble);
            add_term(a, b);
        }
    }
}

int fw_con_alert_parse(const char *data, size_t len, fw_con_alert *a, char *why, size_t whylen)
{
    memset(a, 0, sizeof *a);
    const char *end = NULL;
    a->root = cJSON_ParseWithLengthOpts(data, len, &end, false);
    if (!a->root) {
        snprintf(why, whylen, "not JSON");
        return -1;
    }
    while (end && end < data + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end && end < data + len && *end) {
        snprintf(why, whylen, "trailing bytes after the JSON object");
        goto bad;
    }
    if (!cJSON_IsObject(a->root)) {
        snprintf(why, whylen, "not a JSON object");
        goto bad;
    }
    a->id = str_member(a->root, "alert_id");
    a->rule = str_member(a->root, "rule_id");
    a->severity = str_member(a->root, "severity");
    a->subject = str_member(a->root, "subject");
    const cJSON *dts = cJSON_GetObjectItemCaseSensitive(a->root, "detected_ts");
    if (!a->id || !fw_con_name_ok(a->id)) {
        snprintf(why, whylen, "alert_id missing or not [A-Za-z0-9_.:@-]{1,128}");
        goto bad;
    }
    if (!a->rule || !fw_con_name_ok(a->rule)) {
        snprintf(why, whylen, "rule_id missing or not a name");
        goto bad;
    }
    if (!a->severity || (strcmp(a->severity, "low") && strcmp(a->severity, "medium") &&
                         strcmp(a->severity, "high") && strcmp(a->severity, "critical"))) {
        snprintf(why, whylen, "severity missing or not low|medium|high|critical");
        goto bad;
    }
    if (!a->subject) {
        snprintf(why, whylen, "subject missing or not a string");
        goto bad;
    }
    if (!cJSON_IsNumber(dts) || dts->valuedouble < 0 || dts->valuedouble > 1e15) {
        snprintf(why, whylen, "detected_ts missing or not epoch milliseconds");
        goto bad;
    }
    a->detected_ts = (int64_t)dts->valuedouble;
    a->live = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->root, "shadow")) &&
              !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->root, "snoozed"));
    add_term(a, a->subject);
    add_field_terms(a, cJSON_GetObjectItemCaseSensitive(a->root, "fields"));
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(a->root, "evidence");
    const cJSON *steps = cJSON_IsObject(ev) ? cJSON_GetObjectItemCaseSensitive(ev, "steps") : NULL;
    const cJSON *st;
    if (!cJSON_IsArray(steps))
        steps = NULL;
    cJSON_ArrayForEach(st, steps)
        add_field_terms(a, cJSON_GetObjectItemCaseSensitive(st, "fields"));
    return 0;
bad:
    fw_con_alert_free(a);
    return -1;
}

void fw_con_alert_free(fw_con_alert *a)
{
    cJSON_Delete(a->root);
    for (size_t i = 0; i < a->nterms; i++)
        free(a->terms[i]);
    memset(a, 0, sizeof *a);
}

/* ---- a batch of alerts ------------------------------------------------------- */

struct fw_con_batch {
    const char **v;
    size_t *l;
    char **owned;
    int n, cap, nowned;
};

fw_con_batch *fw_con_batch_new(void)
{
    return fw_xcalloc(1, sizeof(fw_con_batch));
}

static void batch_arg(fw_con_batch *b, const char *s, size_t len, bool own)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = fw_xrealloc(b->v, (size_t)b->cap * sizeof *b->v);
        b->l = fw_xrealloc(b->l, (size_t)b->cap * sizeof *b->l);
        b->owned = fw_xrealloc(b->owned, (size_t)b->cap * sizeof *b->owned);
    }
    b->v[b->n] = s;
    b->l[b->n++] = len;
    if (own)
        b->owned[b->nowned++] = (char *)s;
}

static void batch_str(fw_con_batch *b, char *s)
{
    batch_arg(b, s, strlen(s), true);
}

void fw_con_batch_reset(fw_con_batch *b)
{
    for (int i = 0; i < b->nowned; i++)
        free(b->owned[i]);
    b->n = b->nowned = 0;
}

void fw_con_batch_free(fw_con_batch *b)
{
    if (!b)
        return;
    fw_con_batch_reset(b);
    free(b->v);
    free(b->l);
    free(b->owned);
    free(b);
}

int fw_con_batch_count(const fw_con_batch *b)
{
    return b->n < 4 ? 0 : (b->n - 4) / 8;
}

void fw_con_batch_add(fw_con_batch *b, const fw_con_alert *a, const char *json, size_t jsonlen,
                      const char *unit)
{
    char buf[64];
    struct timespec tsn;
    clock_gettime(CLOCK_REALTIME, &tsn);
    long long now = (long long)tsn.tv_sec * 1000 + tsn.tv_nsec / 1000000;
    if (b->n == 0) {
        batch_arg(b, "EVALSHA", 7, false);
        batch_arg(b, NULL, 0, false);     /* the sha, set when sent */
        batch_arg(b, "0", 1, false);
        snprintf(buf, sizeof buf, "%lld", now);
        batch_str(b, fw_xstrdup(buf));
    }
    batch_arg(b, a->id, strlen(a->id), false);
    batch_arg(b, json, jsonlen, false);
    batch_str(b, fw_xstrdup(unit));
    batch_arg(b, a->severity, strlen(a->severity), false);
    batch_arg(b, a->rule, strlen(a->rule), false);
    snprintf(buf, sizeof buf, "%lld", (long long)a->detected_ts);
    batch_str(b, fw_xstrdup(buf));
    time_t secs = (time_t)(a->detected_ts / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    batch_str(b, fw_xstrdup(buf));
    size_t tl = 1;
    for (size_t i = 0; i < a->nterms; i++)
        tl += strlen(a->terms[i]) + 1;
    char *terms = fw_xmalloc(tl);
    size_t o = 0;
    for (size_t i = 0; i < a->nterms; i++) {
        size_t n = strlen(a->terms[i]);
        if (o)
            terms[o++] = '\x1f';
        memcpy(terms + o, a->terms[i], n);
        o += n;
    }
    terms[o] = '\0';
    batch_str(b, terms);
}

void fw_con_batch_send(redisContext *c, fw_con_batch *b)
{
    char sha[41];
    sha_of(FW_CON_LUA_INGEST, sha);
    b->v[1] = sha;
    b->l[1] = strlen(sha);
    redisAppendCommandArgv(c, b->n, b->v, b->l);
    b->v[1] = NULL;
}
