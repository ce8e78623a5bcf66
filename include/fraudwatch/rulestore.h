/* fraudwatch — the rule store in Redis: push, pull, watchlists, heartbeats.
 *
 * The daemon's rule set lives in Redis (SPEC §4, data model in
 * docs/redis.md).  An operator pushes a validated rules directory as one
 * atomic change with a new version number; watchlists are Redis sets that
 * can change on their own; every change bumps `fraudwatch:generation` and is
 * announced on the channel `fraudwatch:notify`.  A daemon reads the
 * generation (cheap), fetches a consistent snapshot when it moves, and keeps
 * a heartbeat key that `fraudwatch rules status` lists.
 *
 * Connections.  One fw_rstore is one blocking hiredis connection, for one
 * thread.  Every call is bounded by the timeout given at connect time (also
 * for a server that accepts the connection and then stalls).  After any
 * connection error the handle is dead: every later call fails at once with
 * "reconnect"; free it and connect again.  A Redis error reply (WRONGTYPE,
 * NOPERM, OOM, ...) leaves the handle usable.
 *
 * URLs: redis://[[user][:password]@]host[:port][/db], host a name, an IPv4
 * address or [IPv6]; user and password may be %-encoded.  rediss:// (TLS) is
 * refused: hiredis 0.14 has no TLS.  The password may instead come from a
 * file or the environment (fw_rstore_set_password_file/_password), which
 * keeps it out of the process list and the configuration file.
 *
 * Errors are written to a caller buffer, naming the server (password
 * masked), the key or file concerned and what to do.  Functions return 0 on
 * success and a negative FW_RSTORE_* code on failure.
 *
 * Implemented by src/redis_conn.c (URLs, connections, commands, the one
 * WATCH/MULTI/EXEC loop), src/rstore_sets.c (versions, push, fetch, pull),
 * src/rstore_lists.c (watchlists), src/rstore_log.c (the change log of a
 * watchlist), src/rstore_status.c (heartbeats, status
 * data), src/rstore_stage.c (staging big lists), src/rstore_notify.c (the
 * subscriber); the status table is the CLI's (src/cli_status.c). */
#ifndef FRAUDWATCH_RULESTORE_H
#define FRAUDWATCH_RULESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/ruleset.h"

enum {
    FW_RSTORE_OK = 0,
    FW_RSTORE_ERR = -1,      /* Redis unreachable / error reply / local I/O */
    FW_RSTORE_REFUSED = -2,  /* the input is invalid (rule set, list name,
                                value, directory not empty): nothing changed */
};

typedef struct fw_rstore fw_rstore;

/* Connects (AUTH and SELECT as the URL says, then a PING).  timeout_ms
 * bounds the connect and every later command (<= 0: 5000).  A URL with a
 * user but no password is refused unless a password source is set (below). */
int fw_rstore_connect(const char *url, int timeout_ms, fw_rstore **out,
                      char *err, size_t errlen);

/* The password of every later connection (fw_rstore_connect and
 * fw_rsub_connect), instead of the URL's; the URL's user, if any, is kept.
 * From a file: its first line (fw_secret_read_file(): a regular file no
 * other user may read), checked now and read again at every connect, so a
 * daemon that reconnects picks up a changed password.  Or the password
 * itself, with `label` naming where it came from in messages
 * ("FRAUDWATCH_REDIS_PASSWORD").  NULL or "" clears: the URL's password is
 * used again.  Process-wide: call before connecting, from one thread (the
 * daemon's Redis threads are started after).  0, or FW_RSTORE_ERR with err
 * naming the file (never the password). */
int fw_rstore_set_password_file(const char *path, char *err, size_t errlen);
int fw_rstore_set_password(const char *password, const char *label, char *err,
                           size_t errlen);
void fw_rstore_free(fw_rstore *r);
/* The URL as given, its password (if it has one) shown as ****, for
 * messages. */
const char *fw_rstore_where(const fw_rstore *r);
/* When msg (an error of these functions, or Redis's reply) is an ACL
 * refusal (NOPERM), what the user lacks, written as in ACL SETUSER:
 * "+subscribe" (a command), "&fraudwatch:notify" (the channel),
 * "~fraudwatch:*" (access to a key); written into buf.  NULL when msg is
 * not a NOPERM. */
const char *fw_rstore_missing_permission(const char *msg, char *buf, size_t n);

/* GET fraudwatch:generation (0 when absent). */
int fw_rstore_generation(fw_rstore *r, uint64_t *gen, char *err, size_t errlen);

/* A consistent snapshot of the active set as in-memory files (rules *.json
 * byte for byte, and NAME.list, one entry a line), sorted by name and ready
 * for fw_ruleset_load_files(), with the rules version and the generation
 * read together with the rule files.  Lists are read with SSCAN (Redis is
 * never blocked long); a list that changed during its read gets those
 * changes from its change log, or is read again when the log does not
 * have them; a list whose version did not change since the previous fetch
 * on this handle is taken from the handle's cache instead.  An empty store gives 0 files,
 * version 0 and its generation (0 when nothing was ever written).  Free the
 * files with fw_rulefiles_free(). */
int fw_rstore_fetch(fw_rstore *r, fw_rulefile **files, size_t *nfiles,
                    uint64_t *version, uint64_t *generation, char *err,
                    size_t errlen);

/* The daemon's read: what changed since the set it holds.
 *
 * Like fw_rstore_fetch() (one consistent snapshot: rules version,
 * generation and rule files read together, restarted when a push lands
 * meanwhile), but a watchlist comes back as an fw_listpart for
 * fw_ruleset_load_parts():
 *   - kept: `have` holds the list at its current version (entries NULL);
 *   - a delta: `have` holds an older version and the list's change log
 *     covers every change since; the builder is `have`'s list plus those
 *     changes, so a one-number `lists add` costs one number;
 *   - read whole (SSCAN), when `have` is NULL (after a reconnect), does not
 *     hold the list, or the log does not cover the changes (a push or
 *     `lists load` replaced the list, or the log was trimmed).  A list that
 *     changes while it is read is not read again: the changes made during
 *     the read are taken from the log and applied on top.
 * on_full_read (when set) is called on the calling thread before and after
 * each list read whole, for logs. */
typedef struct fw_rstore_update {
    /* set by the caller (optional) */
    void (*on_full_read)(void *ctx, const char *list, const char *why, bool done,
                         size_t entries, double seconds);
    void *ctx;
    /* the result */
    uint64_t version, generation;
    fw_rulefile *files;      /* the rule files (*.json), sorted by name */
    size_t nfiles;
    fw_listpart *lists;      /* every watchlist, sorted by name */
    size_t nlists;
    size_t kept;             /* lists unchanged since `have` */
    size_t deltas;           /* lists brought up to date from their change log */
    size_t delta_changes, delta_values;   /* log entries applied, values in them */
    size_t full_reads;       /* lists read whole */
    size_t full_entries;     /* entries read by them */
} fw_rstore_update;

int fw_rstore_fetch_update(fw_rstore *r, const fw_ruleset *have,
                           fw_rstore_update *u, char *err, size_t errlen);
/* Frees the result (files, names, builders), keeps the callback. */
void fw_rstore_update_free(fw_rstore_update *u);

/* ---- operator side ------------------------------------------------------- */

typedef struct fw_rstore_push_result {
    uint64_t version;      /* the new rules version */
    uint64_t generation;   /* the generation after the push */
    size_t nrules;         /* rules in the set */
    size_t nfiles;         /* rule files */
    size_t nlists;         /* watchlists */
    size_t nentries;       /* watchlist entries, all lists */
    size_t nremoved;       /* lists in Redis that the set no longer has */
    long long notified;    /* subscribers that received the notification */
} fw_rstore_push_result;

/* Reads DIR exactly as `rules check` does (every *.json and NAME.list, not
 * dot files), validates it, and makes it the active set in one MULTI/EXEC:
 * rule files, watchlists (lists not in DIR are removed), list versions,
 * rules version and generation, notification.  FW_RSTORE_REFUSED with the
 * validation errors when the set is invalid: then Redis is not touched. */
int fw_rstore_push_dir(fw_rstore *r, const char *dir,
                       fw_rstore_push_result *res, char *err, size_t errlen);
/* The same from in-memory files (names are base names). */
int fw_rstore_push_files(fw_rstore *r, const fw_rulefile *files, size_t n,
                         fw_rstore_push_result *res, char *err, size_t errlen);

typedef struct fw_rstore_pull_result {
    uint64_t version, generation;
    size_t nfiles, nlists, nentries;
    size_t nremoved;       /* stale *.json / *.list removed (--force) */
} fw_rstore_pull_result;

/* Writes the active set into DIR (created when missing): rule files byte for
 * byte, each list as NAME.list (a comment header, then the entries sorted).
 * A DIR that exists and is not empty is refused unless `force`; with force,
 * *.json and *.list files of DIR that are not in the set are removed, so DIR
 * is exactly the active set.  Files are written to a temporary name and
 * renamed into place. */
int fw_rstore_pull_dir(fw_rstore *r, const char *dir, bool force,
                       fw_rstore_pull_result *res, char *err, size_t errlen);

/* Watchlist changes.  A name is [A-Za-z0-9_.-]{1,64} not starting with '.'.
 * Each change is one MULTI/EXEC that also INCRs the list's version and the
 * generation and publishes "list NAME VERSION". */
typedef struct fw_rstore_list_result {
    uint64_t version;      /* the list's new version */
    uint64_t generation;
    size_t changed;        /* entries added / removed */
    size_t size;           /* entries in the list afterwards */
    double seconds;        /* wall time of the whole operation */
} fw_rstore_list_result;

/* Values are trimmed like .list lines; an empty value, one starting with
 * '#', or one holding a line break is refused.  add creates the list when
 * it does not exist; remove refuses a list that does not exist. */
int fw_rstore_list_add(fw_rstore *r, const char *name,
                       const char *const *values, size_t n,
                       fw_rstore_list_result *res, char *err, size_t errlen);
int fw_rstore_list_remove(fw_rstore *r, const char *name,
                          const char *const *values, size_t n,
                          fw_rstore_list_result *res, char *err, size_t errlen);
/* Replaces the list with the values of a .list text ('#' comments, blank
 * lines, trimmed): staged with pipelined SADDs into a temporary key, then
 * renamed into place atomically. */
int fw_rstore_list_replace(fw_rstore *r, const char *name, const char *data,
                           size_t len, fw_rstore_list_result *res, char *err,
                           size_t errlen);
/* fw_rstore_list_replace() with the contents of a file ("-": stdin). */
int fw_rstore_list_load(fw_rstore *r, const char *name, const char *path,
                        fw_rstore_list_result *res, char *err, size_t errlen);

/* ---- watchlist entries that expire (src/rstore_expiry.c; SPEC §2) ----------
 *
 * An entry may carry an UNTIL (a member for events with ts < UNTIL), a
 * reason, who added it and when (docs/redis.md, "Data model").  A .list
 * text (push, lists load) gives UNTIL and reason per line
 * (VALUE<TAB>UNTIL<TAB>REASON); `lists add` gives them for all its values. */
typedef struct fw_rstore_entry_meta {
    int64_t until;          /* epoch ms; INT64_MAX (FW_UNTIL_NEVER): never */
    const char *reason;     /* NULL or "": none; no line break */
} fw_rstore_entry_meta;

/* fw_rstore_list_add() with an UNTIL and a reason for every value (meta
 * NULL: never, no reason).  A value already there gets the new UNTIL and
 * reason: `lists add` again is how an entry is renewed. */
int fw_rstore_list_add_meta(fw_rstore *r, const char *name,
                            const char *const *values, size_t n,
                            const fw_rstore_entry_meta *meta,
                            fw_rstore_list_result *res, char *err, size_t errlen);

/* Who is recorded as having made the changes of this process (`--by`);
 * NULL: $FRAUDWATCH_USER, else the login name.  Process-wide. */
void fw_rstore_set_actor(const char *by);

/* One entry of a list, for `lists show`. */
typedef struct fw_rstore_entry {
    bool list_exists, member;
    int64_t until;            /* FW_UNTIL_NEVER: never */
    bool own_record;          /* added by lists add / loaded with a reason */
    int64_t added_at;         /* epoch ms (own_record) */
    char by[128];
    char reason[1024];
    int64_t loaded_at;        /* the last replacement of the list, 0: unknown */
    char loaded_by[128];
    char loaded_how[1100];    /* "rules push", "lists load FILE" */
    uint64_t version;         /* the list's version */
} fw_rstore_entry;
int fw_rstore_list_show(fw_rstore *r, const char *name, const char *value,
                        fw_rstore_entry *out, char *err, size_t errlen);

/* Removes the entries of list NAME whose UNTIL is at or before before_ms
 * (the caller passes now - the daemons' lateness allowance), like a
 * `lists remove` of them (logged, versioned, notified), 1000 per
 * WATCH/MULTI/EXEC: an entry renewed by a concurrent `lists add` is kept.
 * res->changed: entries removed. */
int fw_rstore_list_expire(fw_rstore *r, const char *name, int64_t before_ms,
                          fw_rstore_list_result *res, char *err, size_t errlen);
/* The names of every watchlist (free each and the array). */
int fw_rstore_list_names(fw_rstore *r, char ***names, size_t *n, char *err,
                         size_t errlen);

/* ---- daemons ------------------------------------------------------------- */

typedef struct fw_heartbeat {
    const char *instance, *host;
    int pid;
    uint64_t version, generation;
    int64_t last_reload_ms;
    bool last_ok;
    const char *last_error;
    int64_t started_ms;
} fw_heartbeat;

/* Writes fraudwatch:daemon:INSTANCE (a hash) with an EXPIRE of ttl_s. */
int fw_rstore_heartbeat(fw_rstore *r, const fw_heartbeat *hb, int ttl_s,
                        char *err, size_t errlen);

typedef struct fw_rstore_daemon {
    char *instance, *host;
    int pid;
    uint64_t version, generation;
    int64_t last_reload_ms;
    bool last_ok;
    char *last_error;
    int64_t started_ms;
    int64_t ttl_ms;        /* until the heartbeat key expires */
} fw_rstore_daemon;

typedef struct fw_rstore_list_info {
    char *name;
    uint64_t size, version;
} fw_rstore_list_info;

typedef struct fw_rstore_status {
    uint64_t version, generation;
    size_t nfiles;
    fw_rstore_list_info *lists;   /* sorted by name */
    size_t nlists;
    fw_rstore_daemon *daemons;    /* sorted by instance */
    size_t ndaemons;
} fw_rstore_status;

/* The active version, the lists with sizes and versions, and every live
 * daemon (heartbeat keys found with SCAN). */
int fw_rstore_status_read(fw_rstore *r, fw_rstore_status **out, char *err,
                          size_t errlen);
/* A human-readable table; times relative to now_ms (wall clock).  The
 * CLI's presentation (src/cli_status.c), not the store's: declared here
 * with the data it prints. */
void fw_rstore_status_print(const fw_rstore_status *st, int64_t now_ms,
                            FILE *out);
void fw_rstore_status_free(fw_rstore_status *st);

/* ---- notifications ------------------------------------------------------- */

/* A subscriber to fraudwatch:notify on its own connection.  Pub/sub is
 * at-most-once: pair it with fw_rstore_generation() checked periodically
 * and a full re-read after reconnecting. */
typedef struct fw_rsub fw_rsub;

int fw_rsub_connect(const char *url, int timeout_ms, fw_rsub **out,
                    char *err, size_t errlen);
/* Waits up to timeout_ms (0: just look) for a notification; several queued
 * ones count as one.  Returns 1 notified, 0 timeout, -1 connection lost or
 * the server stopped answering its keep-alive PING (free it and reconnect
 * with backoff). */
int fw_rsub_wait(fw_rsub *s, int timeout_ms);
void fw_rsub_free(fw_rsub *s);

#endif
