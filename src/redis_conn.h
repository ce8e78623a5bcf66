/* redis_conn.h — the Redis connection and command layer of the rule store
 * (internal to src/redis_conn.c and src/rstore_*.c; the public API is
 * include/fraudwatch/rulestore.h).
 *
 * What every store module needs from a connection, and nothing about the
 * data model: opening a context (URL, timeouts, AUTH, SELECT, PING), the
 * handle and its "dead after a connection error" rule, pipelined commands
 * with operator-worded errors, commands assembled in a growable array, one
 * MULTI/EXEC, and the one optimistic-transaction loop every writer uses
 * (fw_redis_optimistic).  Why the handle's struct is visible here and not
 * in the public header: the store modules share it, callers must not. */
#ifndef FRAUDWATCH_REDIS_CONN_H
#define FRAUDWATCH_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "fraudwatch/rulestore.h"

#define FW_REDIS_DEFAULT_TIMEOUT_MS 5000
#define FW_REDIS_MAX_ATTEMPTS 16   /* WATCH conflicts / data changing under a read */
#define FW_REDIS_SCAN_COUNT "1000" /* SSCAN / SCAN batch */

struct fw_rcache;   /* rstore_sets.c's cache of fetched lists */

struct fw_rstore {
    redisContext *c;
    bool dead;            /* a connection error happened: every call fails */
    int timeout_ms;
    char where[640];      /* the URL, password masked */
    /* The fetch's list cache (rstore_sets.c) lives as long as the handle;
     * whoever creates it says how to free it. */
    struct fw_rcache *cache;
    void (*cache_free)(struct fw_rcache *);
};

/* ---- opening a context (the handle's, and the subscriber's) ---------------- */

/* Parses url, connects within *timeout_ms (<= 0: the default, written back),
 * sets the socket timeout, AUTHs, SELECTs and PINGs.  shown: the URL with
 * the password masked.  NULL with err set on failure. */
redisContext *fw_redis_open(const char *url, int *timeout_ms, char *shown,
                            size_t shownlen, char *err, size_t errlen);
/* One command on a bare context: the reply (never an error reply) or NULL
 * with err set. */
redisReply *fw_redis_ctx_cmd(redisContext *c, int timeout_ms, const char *where,
                             const char *what, int argc, const char **argv,
                             char *err, size_t errlen);

/* ---- commands in a growable array ------------------------------------------ */

/* One command's arguments.  Arguments are referenced, not copied (hiredis
 * copies them when the command is sent): they must live until then;
 * fw_rcmds_fmt() makes a string that lives as long as the array. */
typedef struct fw_rcmd {
    const char **v;
    size_t *l;
    int n, cap;
} fw_rcmd;

typedef struct fw_rcmds {
    fw_rcmd *c;
    int n, cap;
    char **owned;         /* fw_rcmds_fmt() strings */
    size_t nowned, capowned;
} fw_rcmds;

/* Starts a command (its first word); returns its index in the array. */
int fw_rcmds_begin(fw_rcmds *t, const char *verb);
/* Appends an argument to the last command begun. */
void fw_rcmds_arg(fw_rcmds *t, const char *s, size_t len);
void fw_rcmds_str(fw_rcmds *t, const char *s);
/* A whole command of NUL-terminated words, the list ended by NULL. */
int fw_rcmds_add(fw_rcmds *t, const char *verb, ...) __attribute__((sentinel));
/* A formatted string owned by the array (a key name, a payload). */
const char *fw_rcmds_fmt(fw_rcmds *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties the array for reuse (keeps the memory of the vectors). */
void fw_rcmds_reset(fw_rcmds *t);
void fw_rcmds_free(fw_rcmds *t);

/* ---- running commands -------------------------------------------------------- */

/* "the connection failed earlier ...: reconnect". */
int fw_redis_dead(fw_rstore *r, char *err, size_t errlen);
/* Queues commands (pipelining); aborts only when out of memory. */
void fw_redis_send(fw_rstore *r, int argc, const char **argv);
void fw_redis_send_cmds(fw_rstore *r, const fw_rcmds *t);
/* The next reply, error replies included; NULL (handle dead) when the
 * connection failed. */
redisReply *fw_redis_recv(fw_rstore *r, const char *what, char *err, size_t errlen);
/* Reads n replies, keeping them in reps[] when given (else freeing them).
 * Returns 0, or FW_RSTORE_ERR with err set for the first error reply (all n
 * are read all the same, so the context stays in step; reps[] are then
 * freed) or a dead connection. */
int fw_redis_drain(fw_rstore *r, int n, redisReply **reps, const char *what,
                   char *err, size_t errlen);
/* One command: its reply, or NULL with err set. */
redisReply *fw_redis_run(fw_rstore *r, const char *what, int argc,
                         const char **argv, char *err, size_t errlen);
int fw_redis_run_ok(fw_rstore *r, const char *what, int argc, const char **argv,
                    char *err, size_t errlen);
/* UNWATCH, best effort (a failed one marks the handle dead anyway). */
void fw_redis_unwatch(fw_rstore *r);

/* A counter key's value: an integer reply, a decimal string, or nil (0). */
int fw_redis_u64(fw_rstore *r, const redisReply *rep, const char *key,
                 uint64_t *out, char *err, size_t errlen);
bool fw_redis_is_array(const redisReply *rep, size_t n);
/* Sleeps before attempt `attempt` (none before the first): growing, with
 * jitter, so writers that collided do not collide again in lock step. */
void fw_redis_backoff(int attempt);

/* ---- transactions --------------------------------------------------------------- */

/* MULTI, t's commands, EXEC.  0 with *exec the EXEC array (one reply per
 * command, none of them an error), 1 when EXEC was aborted by WATCH
 * (nothing applied: retry), or FW_RSTORE_ERR: nothing applied, unless the
 * message says "applied only in part" and names the command. */
int fw_redis_exec(fw_rstore *r, const fw_rcmds *t, redisReply **exec,
                  const char *what, char *err, size_t errlen);

/* An optimistic transaction: WATCH keys → read → build → MULTI/EXEC, and
 * again from the WATCH when another writer changed a watched key (EXEC nil),
 * up to FW_REDIS_MAX_ATTEMPTS times with fw_redis_backoff().  Every writer
 * of the store goes through here. */
typedef struct fw_redis_tx {
    const char *what;           /* the transaction, in messages */
    const char *const *watch;   /* the keys WATCHed */
    int nwatch;
    const fw_rcmds *reads;      /* pipelined after the WATCH, every attempt */
    const char *reads_what;     /* reading them, in messages */
    /* Builds the transaction into tx from the replies to `reads` (alive
     * until the transaction is sent).  0, or a FW_RSTORE_* code with err
     * set: the loop UNWATCHes and returns it, nothing applied. */
    int (*build)(void *ctx, redisReply **replies, fw_rcmds *tx, char *err,
                 size_t errlen);
    void *ctx;
    const char *gave_up;        /* after the last attempt, after "SERVER: " */
} fw_redis_tx;

/* 0 with *exec the EXEC array (free it), or a FW_RSTORE_* code. */
int fw_redis_optimistic(fw_rstore *r, const fw_redis_tx *tx, redisReply **exec,
                        char *err, size_t errlen);

#endif
