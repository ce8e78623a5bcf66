/* rstore_internal.h — the rule store's data model, and what its modules
 * share (internal to src/rstore_*.c; the public API is
 * include/fraudwatch/rulestore.h, the contract docs/redis.md).
 *
 * Every key under "fraudwatch:" and the channel fraudwatch:notify are
 * named here and only here, so the modules (rstore_sets.c, rstore_lists.c,
 * rstore_status.c, rstore_notify.c) cannot disagree about the data model:
 *
 *   fraudwatch:rules:version     integer, version of the active rule set
 *   fraudwatch:rules:files       hash, rule file name (*.json) → content
 *   fraudwatch:lists             set, names of the watchlists that exist
 *   fraudwatch:list:NAME         set, the entries (absent when empty)
 *   fraudwatch:list:NAME:version integer, INCR on every change of the list
 *   fraudwatch:list:NAME:log     list, the last changes of the list, one an
 *                                element, oldest first (rstore_log.c)
 *   fraudwatch:list:NAME:until   sorted set, entry → its UNTIL (epoch ms), only
 *                                entries that expire (rstore_expiry.c)
 *   fraudwatch:list:NAME:info    hash, entry → "AT<TAB>BY<TAB>REASON" (who
 *                                added it, when, why); field "#" → the last
 *                                replacement of the whole list (rstore_expiry.c)
 *   fraudwatch:generation        integer, INCR on every change of anything
 *   fraudwatch:daemon:INSTANCE   hash, a daemon's heartbeat (EXPIRE ttl)
 *   fraudwatch:tmp:TOKEN:NAME    set, a list being staged (EXPIRE 600 s)
 *
 * Staging (rstore_stage.c) is here too because both a push (rstore_sets.c)
 * and `lists load` (rstore_lists.c) copy big lists into temporary keys
 * before their transaction renames them into place; so is the change log
 * (rstore_log.c), written by every list change and read by fetches. */
#ifndef FRAUDWATCH_RSTORE_INTERNAL_H
#define FRAUDWATCH_RSTORE_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "redis_conn.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/rulefiles.h"

#define K_VERSION "fraudwatch:rules:version"
#define K_FILES "fraudwatch:rules:files"
#define K_LISTS "fraudwatch:lists"
#define K_LIST "fraudwatch:list:"
#define K_GENERATION "fraudwatch:generation"
#define K_DAEMON "fraudwatch:daemon:"
#define K_TMP "fraudwatch:tmp:"
#define CHANNEL "fraudwatch:notify"

#define STAGE_TTL_S 600       /* a staged list vanishes after this */

/* fraudwatch:list:NAME and fraudwatch:list:NAME:version (cut at n). */
static inline void list_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s", name);
}

static inline void version_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s:version", name);
}

static inline void log_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s:log", name);
}

/* ---- the change log of a list (rstore_log.c) -------------------------------- */

#define LIST_LOG_KEEP 10000        /* changes a list's log keeps (LTRIM) */
#define LIST_LOG_ENTRY_MAX 65536   /* bytes of one change the log may keep */

/* One change as the log holds it: the version it made, add or remove, and
 * its values ('\n' between them), pointing into the reply that was read.
 * kind '*' is an add whose lines are VALUE<TAB>UNTIL[<TAB>REASON] (entries
 * that expire, or with a reason); '+' values never expire. */
typedef struct fw_rlog_op {
    uint64_t version;
    bool add;
    char kind;          /* '+', '-' or '*' */
    const char *values;
    size_t len;
} fw_rlog_op;

typedef struct fw_rlog {
    fw_rlog_op *ops;
    size_t n;
    uint64_t to;            /* the version the changes lead to */
    size_t nvalues;         /* values in all the changes */
    redisReply *rep;        /* holds the strings */
} fw_rlog;

/* Queues into a list change's transaction the log entry of that change
 * (the list's new version, add or remove, the values): RPUSH + LTRIM, or a
 * DEL of the log when the change is too big to keep (the log then no longer
 * covers it, and daemons read the list whole). */
void fw_rlog_append(fw_rcmds *tx, const char *name, uint64_t version, bool add,
                    char *const *vals, size_t n);
/* The same with the kind given ('+', '-', '*': vals are then whole lines
 * VALUE<TAB>UNTIL[<TAB>REASON]). */
void fw_rlog_append_kind(fw_rcmds *tx, const char *name, uint64_t version, char kind,
                         char *const *vals, size_t n);
/* Queues the DEL of NAME's log: the list was replaced (push, lists load) or
 * removed, so no delta leads from an older version to the new one. */
void fw_rlog_drop(fw_rcmds *tx, const char *name);
/* The changes of list NAME after version `from`, up to its current version
 * (`to` or later: the read follows a list that moves meanwhile), read in
 * one MULTI/EXEC with the version.  0 and *log (free it); 1 when the log
 * does not cover them (trimmed, dropped by a replacement, or a change made
 * by something that keeps no log): read the list whole; FW_RSTORE_ERR. */
int fw_rlog_read(fw_rstore *r, const char *name, uint64_t from, uint64_t to,
                 fw_rlog *log, char *err, size_t errlen);
void fw_rlog_free(fw_rlog *log);

/* ---- list entries and staging (rstore_stage.c) ----------------------------- */

/* The entries of a .list text: pointers into it, with their UNTIL
 * (FW_UNTIL_NEVER) and reason (len 0: none) — VALUE<TAB>UNTIL<TAB>REASON. */
typedef struct fw_rentries {
    const char **p;
    size_t *len;
    int64_t *until;
    const char **reason;
    size_t *rlen;
    size_t n, cap;
    size_t nmeta;       /* entries with an UNTIL or a reason */
} fw_rentries;

/* The values of a .list text, as the loader reads them (rulefiles.c); a
 * line whose columns do not parse is skipped (validate first). */
void fw_rentries_parse(const char *data, size_t len, fw_rentries *e);
void fw_rentries_free(fw_rentries *e);

/* A random token for staged key names (fraudwatch:tmp:TOKEN:NAME). */
void fw_rstage_token(char *out, size_t n);
/* SADDs the entries into tmpkey with an EXPIRE of STAGE_TTL_S, 1000 per
 * command and at most 50 commands in flight.  *unique: entries added. */
int fw_rstage_list(fw_rstore *r, const char *tmpkey, const fw_rentries *e,
                   size_t *unique, char *err, size_t errlen);
/* Queues an EXPIRE refreshing each staged key (NULL entries skipped), to be
 * read just before the transaction, and checks their replies: a key that
 * is gone fails the change before anything is written. */
void fw_rstage_keep(fw_rcmds *reads, char *const *tmpkeys, size_t n);
int fw_rstage_check(fw_rstore *r, redisReply *const *replies,
                    char *const *tmpkeys, const char *const *names, size_t n,
                    char *err, size_t errlen);
/* Best-effort removal of staged keys after a failure (they expire anyway). */
void fw_rstage_drop(fw_rstore *r, char *const *tmpkeys, size_t n);


/* ---- entries that expire, who added them (rstore_expiry.c) ------------------ */

static inline void until_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s:until", name);
}

static inline void info_key(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, K_LIST "%s:info", name);
}

/* The staged metadata of a replaced list (push, lists load): the UNTILs
 * and the "who, when, why" of its entries, in temporary keys like the set. */
typedef struct fw_rexp_staged {
    char *until_tmp;    /* NULL: no entry expires */
    char *info_tmp;     /* always staged: it holds the "#" record */
} fw_rexp_staged;

/* Stages e's UNTILs (ZADD) and reasons (HSET "AT<TAB>BY<TAB>REASON") into
 * fraudwatch:tmp:TOKEN:NAME:until / :info, and the "#" record
 * ("AT<TAB>BY<TAB>HOW") of the replacement.  Pipelined, 1000 a command. */
int fw_rexp_stage(fw_rstore *r, const char *token, const char *name,
                  const fw_rentries *e, const char *how, fw_rexp_staged *st,
                  char *err, size_t errlen);
void fw_rexp_staged_free(fw_rexp_staged *st);
/* Best-effort UNLINK of the staged keys (after a failure). */
void fw_rexp_staged_drop(fw_rstore *r, fw_rexp_staged *st);
/* Into a replacing transaction: UNLINK the list's :until and :info, RENAME
 * the staged ones into place, PERSIST them. */
void fw_rexp_swap(fw_rcmds *tx, const char *name, const fw_rexp_staged *st);
/* Into a transaction removing the list: UNLINK its :until and :info. */
void fw_rexp_drop(fw_rcmds *tx, const char *name);
/* Every (entry, UNTIL) of list NAME with ZSCAN, to fn. */
int fw_rexp_scan_until(fw_rstore *r, const char *name,
                       void (*fn)(void *ctx, const char *s, size_t n, int64_t until),
                       void *ctx, char *err, size_t errlen);
/* A list's text (one entry a line, as SSCAN gave it) rewritten with each
 * entry's columns: VALUE<TAB>UNTIL(ms)[<TAB>REASON] when it has either. */
int fw_rexp_annotate(fw_rstore *r, const char *name, fw_buf *text, char *err,
                     size_t errlen);
/* Who runs the commands, for the "BY" column: fw_rstore_set_actor()'s
 * (--by), else $FRAUDWATCH_USER, else the login name, else "unknown";
 * written into who (tabs and line breaks as spaces), which is returned. */
const char *fw_rexp_who(char *who, size_t n);

#endif
