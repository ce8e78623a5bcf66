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
 *   fraudwatch:generation        integer, INCR on every change of anything
 *   fraudwatch:daemon:INSTANCE   hash, a daemon's heartbeat (EXPIRE ttl)
 *   fraudwatch:tmp:TOKEN:NAME    set, a list being staged (EXPIRE 600 s)
 *
 * Staging (rstore_stage.c) is here too because both a push (rstore_sets.c)
 * and `lists load` (rstore_lists.c) copy big lists into temporary keys
 * before their transaction renames them into place. */
#ifndef FRAUDWATCH_RSTORE_INTERNAL_H
#define FRAUDWATCH_RSTORE_INTERNAL_H

#include <stdio.h>

#include "redis_conn.h"

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

/* ---- list entries and staging (rstore_stage.c) ----------------------------- */

/* The entries of a .list text: pointers into it. */
typedef struct fw_rentries {
    const char **p;
    size_t *len;
    size_t n, cap;
} fw_rentries;

/* The values of a .list text, as the loader reads them (rulefiles.c). */
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

#endif
