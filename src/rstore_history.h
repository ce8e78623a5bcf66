/* rstore_history.h — the rule history's keys and the push hook (internal to
 * src/rstore_sets.c and src/rstore_history.c; the public API is
 * include/fraudwatch/rulehistory.h, the contract docs/redis.md).
 *
 *   fraudwatch:rules:history          list, one JSON record per push, rollback
 *                                     or refused push, oldest first; only ever
 *                                     RPUSHed (append-only): a record's
 *                                     sequence number is its position + 1
 *   fraudwatch:rules:history:index    hash, rules version -> its record's
 *                                     position in the list
 *   fraudwatch:rules:history:kept     hash, rules version -> the sha256 of
 *                                     every blob of that version (space
 *                                     separated): the versions kept whole
 *   fraudwatch:rules:history:keep     integer, how many versions are kept
 *                                     whole (absent: FW_RHIST_KEEP_DEFAULT)
 *   fraudwatch:rules:blob:SHA256      string, a file's content: a rule file's
 *                                     bytes, or a watchlist's entries sorted
 *                                     (shared by every kept version that has it)
 *
 * Why a hook and not a second transaction: the record of a push, its blobs
 * and the trimming of old versions are written in the push's own MULTI/EXEC
 * (rstore_sets.c calls the hook while it builds it), so a version exists in
 * Redis exactly when its record does. */
#ifndef FRAUDWATCH_RSTORE_HISTORY_H
#define FRAUDWATCH_RSTORE_HISTORY_H

#include "redis_conn.h"
#include "fraudwatch/rulefiles.h"

#define K_HIST "fraudwatch:rules:history"
#define K_HIST_INDEX "fraudwatch:rules:history:index"
#define K_HIST_KEPT "fraudwatch:rules:history:kept"
#define K_HIST_KEEP "fraudwatch:rules:history:keep"
#define K_BLOB "fraudwatch:rules:blob:"

#define FW_RPUSH_HOOK_MAX_WATCH 4

/* What a push lets the history add to its transaction. */
typedef struct fw_rpush_hook {
    const char *const *watch;   /* keys WATCHed besides the push's own */
    int nwatch;                 /* at most FW_RPUSH_HOOK_MAX_WATCH */
    /* Queues the reads the hook needs (after the push's own, every attempt). */
    void (*reads)(void *ctx, fw_rcmds *reads);
    /* Queues the hook's commands into the push's transaction, given the
     * replies to its reads and the version the push creates. */
    int (*build)(void *ctx, redisReply **replies, uint64_t version, fw_rcmds *tx,
                 char *err, size_t errlen);
    void *ctx;
} fw_rpush_hook;

/* fw_rstore_push_files() with a hook (NULL: none). */
int fw_rstore_push_hooked(fw_rstore *r, const fw_rulefile *files, size_t n,
                          const fw_rpush_hook *hook, fw_rstore_push_result *res,
                          char *err, size_t errlen);

#endif
