/* console_webhook.c — a unit's webhook: an HTTP(S) POST of each alert
 * routed to the unit, for an SMS gateway or a pager.
 *
 * The queue is in Redis, so a delivery survives a console restart and two
 * consoles share the work: the ingest script (and an escalation to another
 * unit) adds "ALERT_ID|UNIT" to the sorted set fw:con:hookq, scored by when
 * it is due, when the unit has a webhook (fw:con:webhook:UNIT: url,
 * secret).  This thread claims due entries by pushing their score one lease
 * ahead (a console that dies mid-delivery leaves them to be claimed again:
 * at-least-once, the receiver drops copies by alert_id), POSTs them with
 * libcurl, and records the result with one script: delivered, or after
 * console.webhook_attempts failures "failed" on the alert's history (the
 * page shows it), retrying meanwhile with a backoff that doubles from
 * console.webhook_backoff_ms.
 *
 * The request: the alert JSON as the daemon produced it; headers
 * X-Fraudwatch-Unit, X-Fraudwatch-Timestamp (Unix ms) and
 * X-Fraudwatch-Signature: sha256=HEX(HMAC-SHA256(secret, TIMESTAMP "." BODY)),
 * so the receiver checks the sender and refuses replays of old requests.
 * Only http and https, no redirects. */
#include "console.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "sha256.h"

struct fw_con_webhooks {
    fw_con_store *st;
    pthread_t thread;
    atomic_bool stop;
    int attempts, backoff_ms, timeout_ms;
    fw_counter *m_ok, *m_retry, *m_failed;
};

static const char lua_claim[] =
    "local due = redis.call('ZRANGEBYSCORE', 'fw:con:hookq', '-inf', ARGV[1], 'LIMIT', 0, 20)\n"
    "for _, m in ipairs(due) do redis.call('ZADD', 'fw:con:hookq', ARGV[2], m) end\n"
    "return due\n";

/* ARGV: member id unit ok http error now max next_due */
static const char lua_result[] =
    "local m, id, unit, ok = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'\n"
    "local now = tonumber(ARGV[7])\n"
    "local n = redis.call('HINCRBY', 'fw:con:hooktry', m, 1)\n"
    "local state = redis.call('HGET', 'fw:con:alert:' .. id, 'state')\n"
    "if not ok and n < tonumber(ARGV[8]) then\n"
    "  redis.call('ZADD', 'fw:con:hookq', ARGV[9], m) return 'retry' end\n"
    "redis.call('ZREM', 'fw:con:hookq', m)\n"
    "redis.call('HDEL', 'fw:con:hooktry', m)\n"
    "if not state then return 'gone' end\n"
    "local w = {unit = unit, result = ok and 'delivered' or 'failed', attempts = n,\n"
    "           http = tonumber(ARGV[5])}\n"
    "if not ok then w.error = ARGV[6] end\n"
    "redis.call('RPUSH', 'fw:con:hist:' .. id, cjson.encode({ts = now, user = 'system',\n"
    "  from = state, to = state, webhook = w}))\n"
    "redis.call('XADD', 'fw:con:changes', 'MAXLEN', '~', 10000, '*', 'id', id)\n"
    "return ok and 'delivered' or 'failed'\n";

static void hmac_sha256_hex(const char *key, size_t kl, const char *a, size_t al, const char *b,
                            size_t bl, char out[65])
{
    unsigned char k[64] = { 0 }, ipad[64], opad[64], inner[32], mac[32];
    if (kl > 64) {
        fw_sha256 h;
        fw_sha256_init(&h);
        fw_sha256_update(&h, key, kl);
        fw_sha256_final(&h, k);
    } else {
        memcpy(k, key, kl);
    }
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    fw_sha256 h;
    fw_sha256_init(&h);
    fw_sha256_update(&h, ipad, 64);
    fw_sha256_update(&h, a, al);
    fw_sha256_update(&h, b, bl);
    fw_sha256_final(&h, inner);
    fw_sha256_init(&h);
    fw_sha256_update(&h, opad, 64);
    fw_sha256_update(&h, inner, 32);
    fw_sha256_final(&h, mac);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    explicit_bzero(k, sizeof k);
}

void fw_con_hmac_sha256_hex(const char *key, const char *msg, size_t len, char out[65])
{
    hmac_sha256_hex(key, strlen(key), msg, len, "", 0, out);
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

/* 0 delivered (2xx); -1 with why.  *http: the status, 0 without one. */
static int post(struct fw_con_webhooks *w, CURL *cu, const char *url, const char *secret,
                const char *unit, const char *body, size_t len, long *http, char *why,
                size_t whylen)
{
    char ts[32], sig[65], h1[128], h2[128], h3[320];
    snprintf(ts, sizeof ts, "%lld", (long long)fw_wall_ms());
    char dot_body_prefix[40];
    snprintf(dot_body_prefix, sizeof dot_body_prefix, "%s.", ts);
    hmac_sha256_hex(secret, strlen(secret), dot_body_prefix, strlen(dot_body_prefix), body, len,
                    sig);
    snprintf(h1, sizeof h1, "X-Fraudwatch-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "X-Fraudwatch-Signature: sha256=%s", sig);
    snprintf(h3, sizeof h3, "X-Fraudwatch-Unit: %s", unit);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    hs = curl_slist_append(hs, h1);
    hs = curl_slist_append(hs, h2);
    hs = curl_slist_append(hs, h3);
    hs = curl_slist_append(hs, "Expect:");
    curl_easy_reset(cu);
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_USERAGENT, "fraudwatch-console/" FW_VERSION);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(cu);
    curl_slist_free_all(hs);
    *http = 0;
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, http);
    if (*http < 200 || *http > 299) {
        snprintf(why, whylen, "HTTP %ld", *http);
        return -1;
    }
    return 0;
}

static void deliver(struct fw_con_webhooks *w, redisContext *c, CURL *cu, const char *member)
{
    char id[FW_CON_ID_MAX + 1], unit[FW_CON_ID_MAX + 1];
    const char *bar = strchr(member, '|');
    if (!bar || (size_t)(bar - member) > FW_CON_ID_MAX || strlen(bar + 1) > FW_CON_ID_MAX) {
        redisReply *r = redisCommand(c, "ZREM fw:con:hookq %s", member);
        if (r)
            freeReplyObject(r);
        return;
    }
    snprintf(id, sizeof id, "%.*s", (int)(bar - member), member);
    snprintf(unit, sizeof unit, "%s", bar + 1);
    redisReply *a = redisCommand(c, "HGET fw:con:alert:%s json", id);
    redisReply *h = a ? redisCommand(c, "HMGET fw:con:webhook:%s url secret", unit) : NULL;
    bool ok = false;
    long http = 0;
    char why[256] = "no alert or no webhook";
    bool have = a && a->type == REDIS_REPLY_STRING && h && h->type == REDIS_REPLY_ARRAY &&
                h->elements == 2 && h->element[0]->str && h->element[1]->str;
    if (have)
        ok = post(w, cu, h->element[0]->str, h->element[1]->str, unit, a->str, a->len, &http,
                  why, sizeof why) == 0;
    if (a)
        freeReplyObject(a);
    if (h)
        freeReplyObject(h);
    if (!have) {
        redisReply *r = redisCommand(c, "ZREM fw:con:hookq %s", member);
        if (r)
            freeReplyObject(r);
        return;
    }
    redisReply *n = redisCommand(c, "HGET fw:con:hooktry %s", member);
    long tries = n && n->type == REDIS_REPLY_STRING ? atol(n->str) : 0;
    if (n)
        freeReplyObject(n);
    long long delay = w->backoff_ms;
    for (long i = 0; i < tries && delay < 600000; i++)
        delay *= 2;
    if (delay > 600000)
        delay = 600000;
    char now[32], next[32], code[16], max[16];
    snprintf(now, sizeof now, "%lld", (long long)fw_wall_ms());
    snprintf(next, sizeof next, "%lld", (long long)fw_wall_ms() + delay);
    snprintf(code, sizeof code, "%ld", http);
    snprintf(max, sizeof max, "%d", w->attempts);
    redisReply *r = redisCommand(c, "EVAL %s 0 %s %s %s %s %s %s %s %s %s", lua_result, member, id,
                                 unit, ok ? "1" : "0", code, why, now, max, next);
    const char *res = r && r->type == REDIS_REPLY_STATUS ? r->str
                    : r && r->type == REDIS_REPLY_STRING ? r->str : "?";
    if (strcmp(res, "delivered") == 0)
        fw_counter_add(w->m_ok, 1);
    else if (strcmp(res, "retry") == 0)
        fw_counter_add(w->m_retry, 1);
    else if (strcmp(res, "failed") == 0) {
        fw_counter_add(w->m_failed, 1);
        fw_log(FW_LOG_WARN, "console", "webhook delivery failed; recorded on the alert",
               "alert_id=\"%s\" unit=\"%s\" attempts=%d reason=\"%s\"", id, unit, w->attempts, why);
    }
    if (r)
        freeReplyObject(r);
}

static void *run(void *arg)
{
    struct fw_con_webhooks *w = arg;
    CURL *cu = curl_easy_init();
    redisContext *c = NULL;
    while (!atomic_load(&w->stop)) {
        char err[256];
        if (!c && !(c = fw_con_get(w->st, err, sizeof err))) {
            sleep(1);
            continue;
        }
        char now[32], lease[32];
        snprintf(now, sizeof now, "%lld", (long long)fw_wall_ms());
        snprintf(lease, sizeof lease, "%lld", (long long)fw_wall_ms() + 2LL * w->timeout_ms + 10000);
        redisReply *r = redisCommand(c, "EVAL %s 0 %s %s", lua_claim, now, lease);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            fw_con_put(w->st, c, false);
            c = NULL;
            sleep(1);
            continue;
        }
        for (size_t i = 0; i < r->elements && !atomic_load(&w->stop) && cu; i++)
            if (r->element[i]->str)
                deliver(w, c, cu, r->element[i]->str);
        size_t n = r->elements;
        freeReplyObject(r);
        if (c->err) {
            fw_con_put(w->st, c, false);
            c = NULL;
        }
        if (!n)
            usleep(200000);
    }
    if (c)
        fw_con_put(w->st, c, true);
    if (cu)
        curl_easy_cleanup(cu);
    return NULL;
}

fw_con_webhooks *fw_con_webhooks_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                                       char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl did not initialise");
        return NULL;
    }
    struct fw_con_webhooks *w = fw_xcalloc(1, sizeof *w);
    w->st = st;
    w->attempts = cfg->console_webhook_attempts;
    w->backoff_ms = cfg->console_webhook_backoff_ms;
    w->timeout_ms = cfg->console_webhook_timeout_ms;
    const char *help = "Webhook delivery attempts, by result.";
    w->m_ok = fw_metrics_counter(m, "fraudwatch_console_webhook_deliveries_total", help,
                                 "result=\"delivered\"");
    w->m_retry = fw_metrics_counter(m, "fraudwatch_console_webhook_deliveries_total", help,
                                    "result=\"retry\"");
    w->m_failed = fw_metrics_counter(m, "fraudwatch_console_webhook_deliveries_total", help,
                                     "result=\"failed\"");
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        snprintf(err, errlen, "cannot start the webhook thread");
        free(w);
        return NULL;
    }
    return w;
}

void fw_con_webhooks_stop(fw_con_webhooks *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free(w);
    curl_global_cleanup();
}
