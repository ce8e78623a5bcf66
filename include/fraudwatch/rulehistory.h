/* fraudwatch — the history of the rule sets pushed to Redis: who pushed
 * what, when and why; the last N sets kept whole; diff and rollback.
 *
 * Every `rules push` (and every rollback) appends a record: the version it
 * made, the time, the author, the message, and the SHA-256 of every file of
 * the set; a refused push appends a record too (refused, with the reason,
 * and nothing else of it applied).  Records are never rewritten or removed
 * (append-only).  The contents of the last N versions (N: the store's
 * retention, default FW_RHIST_KEEP_DEFAULT, set with `rules push --keep N`)
 * are kept whole: every rule file byte for byte and every watchlist of at
 * most FW_RHIST_LIST_KEEP_MAX entries (bigger lists: their hash and entry
 * count only).  Older versions keep their record only.  A rollback
 * publishes a NEW version equal to a kept one, through the same push path
 * (the daemons swap it in like any push).  Data model: docs/redis.md.
 *
 * Implemented by src/rstore_history.c (Redis) and src/rules_diff.c (the
 * canonical form of a set's files, and the rule-by-rule comparison). */
#ifndef FRAUDWATCH_RULEHISTORY_H
#define FRAUDWATCH_RULEHISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/rulefiles.h"
#include "fraudwatch/rulestore.h"

#define FW_RHIST_KEEP_DEFAULT 100      /* versions kept whole */
#define FW_RHIST_KEEP_MAX 100000
#define FW_RHIST_LIST_KEEP_MAX 100000  /* entries of a list kept whole */
#define FW_RHIST_REASON_MAX 8192       /* bytes of a refusal's reason kept */

/* One file of a set as history sees it.  A rule file: its bytes, hashed as
 * they are.  A watchlist (name without ".list"): its entries sorted
 * bytewise, once each, one per line ending in '\n' (comments, blank lines,
 * order and repeats of the file do not count), hashed in that form.  data
 * is NULL when the contents are not at hand (a list kept by hash only, or a
 * version whose contents were trimmed). */
typedef struct fw_rhist_file {
    char *name;           /* "calls.json", or the list's name */
    bool is_list;
    char sha256[65];      /* hex */
    size_t bytes;         /* of the rule file / the canonical list text */
    size_t entries;       /* lists: entries */
    bool kept;            /* its contents are kept in Redis */
    char *data;           /* NUL-terminated; NULL: not at hand */
    size_t len;
} fw_rhist_file;

typedef struct fw_rhist_record {
    uint64_t seq;         /* position in the history, from 1 */
    uint64_t version;     /* the version it made; 0: refused */
    uint64_t base;        /* the active version when it was made */
    uint64_t rollback_of; /* a rollback: the version restored; else 0 */
    int64_t ts_ms;        /* wall clock, ms since the epoch */
    char *action;         /* "push", "rollback", "refused" */
    char *author, *host, *message;
    char *reason;         /* refused: why; else NULL */
    char *source;         /* the directory pushed, or NULL */
    size_t nrules;
    fw_rhist_file *files; /* rule files then lists, each sorted by name */
    size_t nfiles;
    bool kept;            /* the version's contents are kept whole */
    char *json;           /* the record as stored */
} fw_rhist_record;

typedef struct fw_rhist_meta {
    const char *author;   /* required */
    const char *host;     /* may be NULL */
    const char *message;  /* NULL or "": a default naming the source */
    unsigned keep;        /* > 0: the new retention, stored with the push */
} fw_rhist_meta;

/* ---- canonical form and diff (src/rules_diff.c, no Redis) ------------------- */

/* The files of a set (as read by fw_rulefiles_read_dir) in history's form:
 * rule files then lists, each sorted by name, hashed, with their data. */
void fw_rhist_files_from(const fw_rulefile *files, size_t n, fw_rhist_file **out,
                         size_t *nout);
void fw_rhist_files_free(fw_rhist_file *f, size_t n);
/* The canonical text of a .list file (sorted, once each, '\n' after each);
 * *entries set.  Free with free(). */
char *fw_rhist_list_canonical(const char *data, size_t len, size_t *outlen,
                              size_t *entries);
/* Hex SHA-256 of data. */
void fw_rhist_sha256_hex(const void *data, size_t len, char out[65]);

typedef struct fw_rhist_diff_stats {
    size_t rules_added, rules_removed, rules_changed;
    size_t lists_added, lists_removed, lists_changed;
    size_t unknown;       /* lists changed whose contents are not at hand */
} fw_rhist_diff_stats;

/* Writes the rule-by-rule difference from set a to set b to out: rules
 * added, removed, and for a changed rule which members were added, removed
 * or changed (and a rule that moved to another file); watchlists added,
 * removed, and entries added / removed.  A rule file that does not parse
 * is named as such.  Returns the number of differences. */
size_t fw_rhist_diff(const fw_rhist_file *a, size_t na, const fw_rhist_file *b,
                     size_t nb, FILE *out, fw_rhist_diff_stats *st);

/* ---- the history in Redis (src/rstore_history.c) ------------------------------ */

/* `rules push DIR`, recorded: the record, the blobs and the trimming go in
 * the push's transaction.  A refused set (unreadable, invalid) is recorded
 * as refused with the reason, and FW_RSTORE_REFUSED is returned with err
 * the reason.  *seq (may be NULL): the record's number. */
int fw_rhist_push_dir(fw_rstore *r, const char *dir, const fw_rhist_meta *m,
                      fw_rstore_push_result *res, uint64_t *seq, char *err,
                      size_t errlen);
/* Publishes a new version equal to kept version `version`, recorded as a
 * rollback of it.  A version never recorded, or whose contents were
 * trimmed, or a watchlist of it that was kept by hash only and is no
 * longer the same in Redis: FW_RSTORE_REFUSED, nothing changed (and
 * nothing recorded).  A set the loader now refuses is recorded refused. */
int fw_rhist_rollback(fw_rstore *r, uint64_t version, const fw_rhist_meta *m,
                      fw_rstore_push_result *res, uint64_t *seq, char *err,
                      size_t errlen);

/* The last `limit` records (0: all), newest first; *keep: the retention. */
int fw_rhist_list(fw_rstore *r, size_t limit, fw_rhist_record **out, size_t *n,
                  unsigned *keep, char *err, size_t errlen);
/* The record of `version`, with its files' contents when `contents` and
 * they are kept.  FW_RSTORE_REFUSED when no record has that version. */
int fw_rhist_get(fw_rstore *r, uint64_t version, bool contents,
                 fw_rhist_record *out, char *err, size_t errlen);
/* The active rules version (0: none). */
int fw_rhist_active(fw_rstore *r, uint64_t *version, char *err, size_t errlen);
void fw_rhist_record_free(fw_rhist_record *rec);
void fw_rhist_records_free(fw_rhist_record *recs, size_t n);

#endif
