/* console.h — what the files of `fraudwatch console` share (src/console_*.c).
 *
 * The console is the anti-fraud centre's side of the loop (SPEC §6): it
 * reads the live alert topic (console_ingest.c), keeps every alert, its
 * state and its history in Redis (console_store.c, the store of record:
 * nothing is kept only in memory), routes each alert to a unit
 * (console_route.c), and serves the API and the page (console_http.c).
 * console_main.c parses the command lines (`console`, `console user`,
 * `routes`).  Every Redis key starts with "fw:con:" (docs/console.md lists
 * them); a snooze is written where the daemon reads snoozes
 * ("fraudwatch:snoozes").
 *
 * Threads: one ingest thread (its own Redis connection), libmicrohttpd's
 * thread per connection (connections from the pool in console_store.c).
 * A hiredis context is used by one thread at a time. */
#ifndef FRAUDWATCH_CONSOLE_H
#define FRAUDWATCH_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "fraudwatch/config.h"
#include "fraudwatch/metrics.h"

#define FW_CON_ID_MAX 128          /* alert ids, user names, units, rule ids */
#define FW_CON_NOTE_MAX 2000       /* a note on a transition or a snooze */
/* alerts stored by one call of the ingest script (Lua unpack() takes at most
 * 8000 values: 2 per alert in the biggest ZADD) */
#define FW_CON_BATCH_MAX 500
#define FW_CON_TERMS_MAX 64        /* search terms kept per alert */
#define FW_CON_TERM_MAX 128        /* bytes of one search term */
#define FW_CON_BODY_MAX 65536      /* request body */
#define FW_CON_LIST_MAX 500        /* limit on one page of alerts */
#define FW_CON_ROUTES_MAX 10000    /* rows in a routes file */

/* ---- the Redis connection pool (console_store.c) ---------------------------- */

typedef struct fw_con_store fw_con_store;

/* Checks nothing on the network: connections are opened when needed. */
fw_con_store *fw_con_store_new(const char *url, int timeout_ms);
void fw_con_store_free(fw_con_store *s);
/* A connection (pooled or new), or NULL when Redis cannot be reached (err
 * set).  Give it back with put(ok): ok false closes it (after an error a
 * hiredis context is unusable). */
redisContext *fw_con_get(fw_con_store *s, char *err, size_t errlen);
void fw_con_put(fw_con_store *s, redisContext *c, bool ok);
/* A snooze set from the page, through the daemons' snooze store
 * (rstore_snooze.c: the rule must be in the active set, the change is
 * recorded in fraudwatch:snoozes:log, every daemon picks it up within a
 * second).  0; FW_RSTORE_REFUSED with the reason in err (a 4xx); or
 * FW_RSTORE_ERR (Redis unreachable: a 503). */
struct fw_snooze;
int fw_con_snooze_add(fw_con_store *s, const struct fw_snooze *z, char *err, size_t errlen);
const char *fw_con_store_where(const fw_con_store *s);

/* Runs one of the console's Lua scripts (EVALSHA, loading it on NOSCRIPT).
 * The reply (maybe an error reply, which the caller reads), or NULL when
 * the connection failed. */
enum fw_con_script { FW_CON_LUA_INGEST, FW_CON_LUA_TRANSITION, FW_CON_LUA_EXPIRE,
                     FW_CON_NSCRIPTS };
redisReply *fw_con_eval(redisContext *c, enum fw_con_script which, int argc,
                        const char **argv, const size_t *lens);
/* Pipelined: append now, read with redisGetReply() (NOSCRIPT: the caller
 * loads with fw_con_load_scripts() and sends again). */
void fw_con_eval_append(redisContext *c, enum fw_con_script which, int argc,
                        const char **argv, const size_t *lens);
int fw_con_load_scripts(redisContext *c);

/* ---- alerts ------------------------------------------------------------------ */

/* One alert message from the topic, checked: 0 with the fields needed to
 * store it, or -1 with why (the message is logged and skipped).  `live`
 * false for shadow and snoozed alerts (not for the queues). */
typedef struct fw_con_alert {
    cJSON *root;
    const char *id, *rule, *severity, *subject;
    int64_t detected_ts;
    bool live;
    char *terms[FW_CON_TERMS_MAX];
    size_t nterms;
} fw_con_alert;
int fw_con_alert_parse(const char *data, size_t len, fw_con_alert *a, char *why,
                       size_t whylen);
void fw_con_alert_free(fw_con_alert *a);
/* A batch of alerts for one call of the ingest script.  The alerts' id,
 * severity, rule and json are referenced, not copied: they must live until
 * the batch is sent.  send() appends the call to c's pipeline (read its
 * reply, an array of 1 stored / 0 there already, with redisGetReply). */
typedef struct fw_con_batch fw_con_batch;
fw_con_batch *fw_con_batch_new(void);
void fw_con_batch_add(fw_con_batch *b, const fw_con_alert *a, const char *json, size_t jsonlen,
                      const char *unit);
int fw_con_batch_count(const fw_con_batch *b);
void fw_con_batch_send(redisContext *c, fw_con_batch *b);
void fw_con_batch_reset(fw_con_batch *b);
void fw_con_batch_free(fw_con_batch *b);

/* ---- routing (console_route.c) ----------------------------------------------- */

typedef struct fw_con_routes fw_con_routes;
/* Parses the TSV text (SPEC §6).  NULL with err "line N: ..." on a bad row. */
fw_con_routes *fw_con_routes_parse(const char *text, size_t len, char *err, size_t errlen);
void fw_con_routes_free(fw_con_routes *r);
size_t fw_con_routes_count(const fw_con_routes *r);
/* The unit for an alert: the first row that matches, else "default".  r may
 * be NULL (no routes: "default"). */
const char *fw_con_route(const fw_con_routes *r, const cJSON *alert);
#define FW_CON_DEFAULT_UNIT "default"

/* ---- the commands (console_main.c) ------------------------------------------- */

int fw_console_main(int argc, char **argv);   /* `fraudwatch console ...` */
int fw_cli_routes(int argc, char **argv);     /* `fraudwatch routes ...` */

/* ---- the running console ------------------------------------------------------ */

typedef struct fw_con_ingest fw_con_ingest;
/* m: the console's registry (its /metrics); the series live as long as it. */
fw_con_ingest *fw_con_ingest_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                                   char *err, size_t errlen);
void fw_con_ingest_stop(fw_con_ingest *in);
uint64_t fw_con_ingest_stored(const fw_con_ingest *in);

typedef struct fw_con_http fw_con_http;
fw_con_http *fw_con_http_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                               char *err, size_t errlen);
void fw_con_http_stop(fw_con_http *h);

typedef struct fw_con_webhooks fw_con_webhooks;
fw_con_webhooks *fw_con_webhooks_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                                       char *err, size_t errlen);
void fw_con_webhooks_stop(fw_con_webhooks *w);
/* HMAC-SHA256(key, msg) as 64 hex digits (the webhook signature). */
void fw_con_hmac_sha256_hex(const char *key, const char *msg, size_t len, char out[65]);

/* ---- passwords and tokens (console_auth.c) ------------------------------------ */

/* yescrypt hash of pw into out (a "$y$..." string); -1 on failure. */
int fw_con_hash_password(const char *pw, char *out, size_t outlen);
/* True when pw matches the stored hash (constant time in the compare). */
bool fw_con_check_password(const char *pw, const char *hash);
/* 32 random bytes from getrandom as 64 hex digits (+ NUL). */
int fw_con_random_hex(char out[65]);
/* SHA-256 of s as 64 hex digits (session keys are stored hashed). */
void fw_con_sha256_hex(const char *s, char out[65]);
bool fw_con_ct_equal(const char *a, const char *b);

/* Names: user names, units, rule ids, alert ids: [A-Za-z0-9_.:@-]{1,128}. */
bool fw_con_name_ok(const char *s);

#endif
