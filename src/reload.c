/* reload.c — where the daemon's rules come from, and live reloads.
 *
 * Owns the threads that watch the rules source and build new rule sets off
 * the per-event path:
 *
 *   dir:PATH      one thread: reload on SIGHUP and when files in PATH change
 *                 (inotify, debounced so an editor's save or a `cp -r` of
 *                 many files is one reload);
 *   redis://...   two threads, each with its own connections:
 *     rules       reads fraudwatch:generation once a second, and at once when
 *                 a notification arrives on fraudwatch:notify (the
 *                 subscriber is optional: a user the ACL does not allow to
 *                 SUBSCRIBE still reloads, from the once-a-second check);
 *                 when it moves, fetches what changed and builds a new set;
 *     heartbeat   writes fraudwatch:daemon:INSTANCE every 2 s (TTL 10 s) so
 *                 `rules status` lists this daemon.  It never waits for a
 *                 fetch: reading a ten-million-entry list takes half a
 *                 minute, and a daemon must not drop out of the status
 *                 while it does (issue 10.4).  It reads what to report from
 *                 the rules thread under a mutex.
 *                 Redis down: the daemon keeps its last good set and both
 *                 threads reconnect with backoff.
 *
 * A fetch from Redis costs what changed, not the size of the set
 * (rstore_sets.c, fw_rstore_fetch_update): a watchlist whose version did
 * not move is shared with the current set, one that moved by a few `lists
 * add` gets them from the list's change log as a delta on top of the
 * current set's copy (watchlist.c), and only a replaced list (a push, `lists
 * load`), one beyond the log, or every list after a reconnect (the server
 * may have been wiped) is read whole.  Each read whole is logged when it
 * starts and ends, and counted (fraudwatch_watchlist_full_reads_total).
 *
 * A new set is validated and compiled here (fw_ruleset_load_*); a set that
 * fails is refused, logged, counted (fraudwatch_rule_reload_failures_total)
 * and reported in the heartbeat, and the last good one stays.  A directory
 * is read by rulefiles.c, which refuses what could hang or exhaust this
 * thread (a FIFO, /dev/zero, a 3 GiB file) before reading it, so whatever
 * lands in the directory ends in a refusal, never in a crash or a stuck
 * reload.  A good one is handed over through one atomic pointer:
 * the daemon's main thread takes it between two batches, so every event is
 * matched entirely by the old set or entirely by the new one, and the old
 * set is freed when the last batch holding it retires (reference counts).
 * Window state carries over by rule signature (state.c).
 *
 * Every message from Redis or the loader goes into the logs through
 * fw_log_quote(): a NOPERM reply quotes its command, and a record must stay
 * one parseable logfmt line.  An ACL refusal names what the user lacks
 * (fw_rstore_missing_permission) and is logged when it starts, when it
 * changes and every ten minutes, not every two seconds. */
#include "reload.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#ifdef FW_HAVE_REDIS
#include "fraudwatch/rulestore.h"
#include "fraudwatch/snoozestore.h"
#endif

#define REPEAT_LOG_MS (10 * 60 * 1000)   /* the same problem, logged again */

/* A problem that repeats (an ACL refusal every 2 s): logged when it first
 * shows, when its message changes, and every REPEAT_LOG_MS; its end once. */
struct repeat {
    char last[512];
    int64_t logged_ms;
    bool active;
};

struct fw_reloader {
    const fw_settings *s;
    bool redis;
    const char *dir;
    pthread_t thread, beat;
    bool started, beat_started;
    atomic_bool stop;
    atomic_bool hup;
    _Atomic(fw_ruleset *) pending;   /* handed to the main thread */
    _Atomic(fw_snoozes *) pending_snoozes;   /* the same, for snoozes (redis) */
    uint64_t snooze_version;         /* redis, the rules thread's: of the last read */
    bool snoozes_read;               /* ... and whether there was one on this connection */
    struct repeat snooze_trouble;
    fw_counter *snooze_reloads;
    fw_gauge *snoozes_held;
    /* What the heartbeat reports: written by the rules thread, read by the
     * heartbeat thread, both under mu; cv wakes the heartbeat thread (a
     * new result to report, or stop). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool beat_now;
    uint64_t version;                /* of the last good set */
    uint64_t generation;             /* redis: generation of the last attempt */
    int64_t started_ms;
    int64_t last_reload_ms;
    bool last_ok;
    char last_error[1024];
    /* redis, the rules thread's own */
    fw_ruleset *cur;                 /* the last good set: deltas apply to it */
    fw_counter *reloads;
    fw_counter *failures;
    fw_counter *full_reads;          /* watchlists read whole */
    fw_counter *delta_reads;         /* watchlists changed from their log */
    fw_counter *beat_failures;
    fw_gauge *fetch_seconds;
};

static bool repeat_due(struct repeat *p, const char *msg)
{
    int64_t now = fw_mono_ms();
    bool due = !p->active || strcmp(p->last, msg) != 0 ||
               now - p->logged_ms >= REPEAT_LOG_MS;
    p->active = true;
    if (due) {
        snprintf(p->last, sizeof p->last, "%s", msg);
        p->logged_ms = now;
    }
    return due;
}

/* Was it failing?  (Then the caller logs that it works again.) */
static bool repeat_over(struct repeat *p)
{
    bool was = p->active;
    p->active = false;
    p->last[0] = '\0';
    return was;
}

static void status_changed(fw_reloader *r)
{
    r->beat_now = true;
    pthread_cond_signal(&r->cv);
}

/* Hands a good set to the main thread (replacing one it has not taken).
 * detail: what the reload cost, for the log (may be ""). */
static void publish(fw_reloader *r, fw_ruleset *rs, const char *detail)
{
    if (r->redis) {
        fw_ruleset_unref(r->cur);
        r->cur = fw_ruleset_ref(rs);
    }
    uint64_t version = fw_ruleset_version(rs);
    size_t nrules = fw_ruleset_rule_count(rs);
    fw_ruleset *old = atomic_exchange(&r->pending, rs);
    fw_ruleset_unref(old);
    pthread_mutex_lock(&r->mu);
    r->version = version;
    r->last_ok = true;
    r->last_error[0] = '\0';
    r->last_reload_ms = fw_wall_ms();
    status_changed(r);
    pthread_mutex_unlock(&r->mu);
    fw_counter_add(r->reloads, 1);
    fw_log(FW_LOG_INFO, "rules", "new rule set ready", "version=%llu rules=%zu%s",
           (unsigned long long)version, nrules, detail);
}

static void refuse(fw_reloader *r, const char *what, const char *err)
{
    pthread_mutex_lock(&r->mu);
    r->last_ok = false;
    r->last_reload_ms = fw_wall_ms();
    snprintf(r->last_error, sizeof r->last_error, "%s", err);
    uint64_t keep = r->version;
    status_changed(r);
    pthread_mutex_unlock(&r->mu);
    fw_counter_add(r->failures, 1);
    char q[4096];
    fw_log(FW_LOG_ERROR, "rules", what, "error=\"%s\" keeping_version=%llu",
           fw_log_quote(err, q, sizeof q), (unsigned long long)keep);
}

fw_ruleset *fw_reloader_take(fw_reloader *r)
{
    if (!r || !atomic_load_explicit(&r->pending, memory_order_relaxed))
        return NULL;
    return atomic_exchange(&r->pending, NULL);
}

fw_snoozes *fw_reloader_take_snoozes(fw_reloader *r)
{
    if (!r || !atomic_load_explicit(&r->pending_snoozes, memory_order_relaxed))
        return NULL;
    return atomic_exchange(&r->pending_snoozes, NULL);
}

void fw_reloader_hup(fw_reloader *r)
{
    if (r)
        atomic_store(&r->hup, true);
}

/* Sleeps up to ms, in steps that notice stop. */
static void nap(fw_reloader *r, int ms)
{
    while (ms > 0 && !atomic_load(&r->stop)) {
        int step = ms < 50 ? ms : 50;
        usleep((useconds_t)step * 1000);
        ms -= step;
    }
}

/* ---- dir: ------------------------------------------------------------------ */

static void reload_dir(fw_reloader *r)
{
    char err[8192];
    fw_ruleset *rs;
    if (fw_ruleset_load_dir(r->dir, r->version + 1, &rs, err, sizeof err) != 0) {
        refuse(r, "rules refused, the last good set stays", err);
        return;
    }
    publish(r, rs, "");
}

static void *dir_thread(void *arg)
{
    fw_reloader *r = arg;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, r->dir, IN_CLOSE_WRITE | IN_MOVED_TO |
                                                  IN_MOVED_FROM | IN_DELETE |
                                                  IN_CREATE) < 0)
        fw_log(FW_LOG_WARN, "rules", "cannot watch the rules directory; "
                                     "reload with SIGHUP", "dir=%s error=\"%s\"",
               r->dir, strerror(errno));
    int64_t due = -1;
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int n = fd >= 0 ? poll(&pfd, 1, 100) : (usleep(100000), 0);
        if (n > 0) {
            char buf[4096];
            while (read(fd, buf, sizeof buf) > 0)
                ;
            due = fw_mono_ms() + 200;   /* let a burst of writes settle */
        }
        if (atomic_exchange(&r->hup, false)) {
            fw_log(FW_LOG_INFO, "rules", "SIGHUP: reloading", "dir=%s", r->dir);
            due = fw_mono_ms();
        }
        if (due >= 0 && fw_mono_ms() >= due) {
            due = -1;
            reload_dir(r);
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* ---- redis:// ------------------------------------------------------------- */

#ifdef FW_HAVE_REDIS
#define REDIS_TIMEOUT_MS 2000
#define HEARTBEAT_TTL_S 10
#define HEARTBEAT_EVERY_MS 2000
#define CHECK_EVERY_MS 1000
#define SUBSCRIBE_RETRY_MS 60000   /* after an ACL refusal of SUBSCRIBE */

/* A read whole of one watchlist starting or done (fw_rstore_update). */
static void log_full_read(void *ctx, const char *list, const char *why, bool done,
                          size_t entries, double seconds)
{
    (void)ctx;
    if (!done)
        fw_log(FW_LOG_INFO, "rules", "reading watchlist whole", "list=%s reason=\"%s\"",
               list, why);
    else
        fw_log(FW_LOG_INFO, "rules", "watchlist read whole", "list=%s entries=%zu "
                                                              "seconds=%.3f",
               list, entries, seconds);
}

/* Fetches what changed since r->cur (everything when `full`), builds the
 * set: 0 and *out, 1 the set is refused (err), -1 a Redis problem (err).
 * detail: what it cost, for the log. */
static int load_redis(fw_reloader *r, fw_rstore *st, bool full, fw_ruleset **out,
                      char *detail, size_t dlen, char *err, size_t errlen)
{
    int64_t t0 = fw_mono_ms();
    fw_rstore_update u = { .on_full_read = log_full_read, .ctx = r };
    const fw_ruleset *have = full ? NULL : r->cur;
    if (fw_rstore_fetch_update(st, have, &u, err, errlen) != 0)
        return -1;   /* a Redis problem, not a rule problem */
    double fetch_s = (double)(fw_mono_ms() - t0) / 1000.0;
    pthread_mutex_lock(&r->mu);
    r->generation = u.generation;
    pthread_mutex_unlock(&r->mu);
    fw_counter_add(r->full_reads, u.full_reads);
    fw_counter_add(r->delta_reads, u.deltas);
    fw_gauge_set(r->fetch_seconds, fetch_s);
    int rc = fw_ruleset_load_parts(u.files, u.nfiles, u.lists, u.nlists, have,
                                   u.version, out, err, errlen) == 0 ? 0 : 1;
    if (rc == 1 && u.nfiles == 0)
        snprintf(err, errlen, "redis holds no rule set yet (publish one with: "
                              "fraudwatch rules push DIR --redis URL)");
    snprintf(detail, dlen, " generation=%llu lists_kept=%zu lists_delta=%zu "
                           "delta_values=%zu lists_read_whole=%zu entries_read=%zu "
                           "fetch_seconds=%.3f build_seconds=%.3f",
             (unsigned long long)u.generation, u.kept, u.deltas, u.delta_values,
             u.full_reads, u.full_entries, fetch_s,
             (double)(fw_mono_ms() - t0) / 1000.0 - fetch_s);
    fw_rstore_update_free(&u);
    return rc;
}

/* ---- the heartbeat thread ---------------------------------------------------- */

static void *beat_thread(void *arg)
{
    fw_reloader *r = arg;
    const char *url = r->s->rules_source;
    fw_rstore *st = NULL;
    struct repeat trouble = { .active = false };
    int64_t next_beat = 0, next_try = 0, backoff = 100;
    char host[256] = "", err[2048], q[2600];
    gethostname(host, sizeof host - 1);
    while (!atomic_load(&r->stop)) {
        int64_t now = fw_mono_ms();
        pthread_mutex_lock(&r->mu);
        bool due = r->beat_now || now >= next_beat;
        r->beat_now = false;
        char last_error[sizeof r->last_error];
        memcpy(last_error, r->last_error, sizeof last_error);
        fw_heartbeat hb = { .instance = r->s->instance_id, .host = host,
                            .pid = (int)getpid(), .version = r->version,
                            .generation = r->generation,
                            .last_reload_ms = r->last_reload_ms, .last_ok = r->last_ok,
                            .last_error = last_error, .started_ms = r->started_ms };
        pthread_mutex_unlock(&r->mu);
        if (!due || now < next_try) {
            /* Until the next beat, or a new result to report. */
            pthread_mutex_lock(&r->mu);
            if (!r->beat_now && !atomic_load(&r->stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 100 * 1000000L;   /* a short wait: stop is an atomic */
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            }
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        next_beat = now + HEARTBEAT_EVERY_MS;
        if (!st && fw_rstore_connect(url, REDIS_TIMEOUT_MS, &st, err, sizeof err) != 0) {
            next_try = now + backoff;
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            fw_counter_add(r->beat_failures, 1);
            if (repeat_due(&trouble, "connect"))
                fw_log(FW_LOG_WARN, "rules", "heartbeat: redis unreachable; rules "
                                             "status will not list this daemon until "
                                             "it is back", "error=\"%s\"",
                       fw_log_quote(err, q, sizeof q));
            continue;
        }
        backoff = 100;
        if (fw_rstore_heartbeat(st, &hb, HEARTBEAT_TTL_S, err, sizeof err) == 0) {
            if (repeat_over(&trouble))
                fw_log(FW_LOG_INFO, "rules", "heartbeat written again", NULL);
            continue;
        }
        fw_counter_add(r->beat_failures, 1);
        char need[64];
        if (fw_rstore_missing_permission(err, need, sizeof need)) {
            /* The connection is fine; the ACL is not.  Say what it lacks,
             * once, not every two seconds. */
            if (repeat_due(&trouble, err))
                fw_log(FW_LOG_WARN, "rules", "heartbeat refused by the redis ACL: "
                                             "rules status will not list this daemon",
                       "missing=\"%s\" needs=\"%s\" error=\"%s\"", need,
                       "+multi +exec +hset +expire on %RW~fraudwatch:daemon:* "
                       "(docs/redis.md, ACL users)", fw_log_quote(err, q, sizeof q));
            continue;
        }
        if (repeat_due(&trouble, "failed"))
            fw_log(FW_LOG_WARN, "rules", "heartbeat failed; reconnecting",
                   "error=\"%s\"", fw_log_quote(err, q, sizeof q));
        fw_rstore_free(st);   /* a connection problem: the handle is dead */
        st = NULL;
    }
    fw_rstore_free(st);
    return NULL;
}

/* ---- the rules thread ---------------------------------------------------------- */

struct rules_conn {
    fw_rstore *st;
    fw_rsub *sub;
    int64_t backoff, next_try, next_check, sub_backoff, next_sub_try;
    bool reconnecting;     /* connected before: the next fetch reads whole */
    bool full;             /* the next fetch reads everything */
    struct repeat sub_trouble, check_trouble;
};

/* The store connection: true when there is one. */
static bool ensure_store(fw_reloader *r, struct rules_conn *c, int64_t now)
{
    if (c->st)
        return true;
    if (now < c->next_try)
        return false;
    char err[2048], q[2600];
    if (fw_rstore_connect(r->s->rules_source, REDIS_TIMEOUT_MS, &c->st, err,
                          sizeof err) != 0) {
        fw_log(FW_LOG_WARN, "rules", "redis unreachable, running on the last good set",
               "retry_ms=%lld error=\"%s\"", (long long)c->backoff,
               fw_log_quote(err, q, sizeof q));
        c->next_try = now + c->backoff;
        c->backoff = c->backoff * 2 > 5000 ? 5000 : c->backoff * 2;
        return false;
    }
    fw_log(FW_LOG_INFO, "rules", "connected to redis", NULL);
    c->backoff = 100;
    c->next_check = 0;   /* read the version at once */
    /* A server restarted without persistence starts its generation and the
     * list versions again from 0: after losing the connection, read
     * everything again whatever the versions say, the snoozes too.  Not on
     * the first connection: the daemon started with what fw_reloader_new()
     * read, and the versions tell whether anything changed since; reading
     * the snoozes again there handed the daemon an identical set, logged
     * as swapped in ("snoozes=0" at every start, which a test waiting for
     * a snooze's removal took for the removal). */
    if (c->reconnecting) {
        c->full = true;
        r->snoozes_read = false;
    }
    c->reconnecting = true;
    return true;
}

/* The subscriber, optional: without it (an ACL without SUBSCRIBE, a
 * connection lost) the once-a-second check still finds every change. */
static void ensure_sub(fw_reloader *r, struct rules_conn *c, int64_t now)
{
    if (c->sub || now < c->next_sub_try)
        return;
    char err[2048], q[2600], need[64];
    if (fw_rsub_connect(r->s->rules_source, REDIS_TIMEOUT_MS, &c->sub, err,
                        sizeof err) == 0) {
        if (repeat_over(&c->sub_trouble))
            fw_log(FW_LOG_INFO, "rules", "subscribed to fraudwatch:notify again", NULL);
        c->sub_backoff = 100;
        c->next_check = 0;   /* notifications were lost meanwhile */
        return;
    }
    if (fw_rstore_missing_permission(err, need, sizeof need)) {
        c->next_sub_try = now + SUBSCRIBE_RETRY_MS;
        if (repeat_due(&c->sub_trouble, err))
            fw_log(FW_LOG_WARN, "rules", "the redis ACL refuses SUBSCRIBE to "
                                         "fraudwatch:notify: changes are noticed by "
                                         "the once-a-second version check alone",
                   "missing=\"%s\" needs=\"+subscribe &fraudwatch:notify\" error=\"%s\"",
                   need, fw_log_quote(err, q, sizeof q));
        return;
    }
    c->next_sub_try = now + c->sub_backoff;
    c->sub_backoff = c->sub_backoff * 2 > 5000 ? 5000 : c->sub_backoff * 2;
    if (repeat_due(&c->sub_trouble, "connect"))
        fw_log(FW_LOG_WARN, "rules", "notification subscriber cannot connect; the "
                                     "once-a-second version check goes on",
               "error=\"%s\"", fw_log_quote(err, q, sizeof q));
}

/* The once-a-second check (and a notification's, SIGHUP's): reads the
 * generation, fetches when it moved. */
static void check(fw_reloader *r, struct rules_conn *c)
{
    char err[8192], q[9000], need[64], detail[512];
    uint64_t gen;
    if (fw_rstore_generation(c->st, &gen, err, sizeof err) != 0) {
        if (fw_rstore_missing_permission(err, need, sizeof need)) {
            if (repeat_due(&c->check_trouble, err))
                fw_log(FW_LOG_ERROR, "rules", "the redis ACL refuses the version "
                                              "check: no change can be picked up",
                       "missing=\"%s\" error=\"%s\"", need,
                       fw_log_quote(err, q, sizeof q));
            return;   /* the connection is fine */
        }
        fw_log(FW_LOG_WARN, "rules", "redis error", "error=\"%s\"",
               fw_log_quote(err, q, sizeof q));
        fw_rstore_free(c->st);
        c->st = NULL;
        return;
    }
    repeat_over(&c->check_trouble);
    /* A generation that went back: the store was wiped (FLUSHALL, a restart
     * without persistence), and list versions start again at 1. */
    if (gen < r->generation)
        c->full = true;
    if (gen == r->generation && !c->full)
        return;
    fw_ruleset *rs;
    int rc = load_redis(r, c->st, c->full, &rs, detail, sizeof detail, err, sizeof err);
    if (rc == 0) {
        c->full = false;
        publish(r, rs, detail);
    } else if (rc == 1) {
        c->full = false;
        refuse(r, "rule set in redis refused, the last good set stays", err);
    } else if (fw_rstore_missing_permission(err, need, sizeof need)) {
        if (repeat_due(&c->check_trouble, err))
            fw_log(FW_LOG_ERROR, "rules", "the redis ACL refuses reading the rule "
                                          "set: the last good set stays",
                   "missing=\"%s\" error=\"%s\"", need, fw_log_quote(err, q, sizeof q));
    } else {
        fw_log(FW_LOG_WARN, "rules", "redis error", "error=\"%s\"",
               fw_log_quote(err, q, sizeof q));
        fw_rstore_free(c->st);
        c->st = NULL;
    }
}

/* Snoozes (snoozestore.h): the same once-a-second check and notification
 * as the rules, against their own version, so that a snooze change costs a
 * read of the snoozes, never a rule set rebuilt.  Read again after every
 * reconnect (the server may have been wiped).  false: the connection is
 * dead (the caller reconnects). */
static bool check_snoozes(fw_reloader *r, struct rules_conn *c)
{
    char err[4096], q[4600], need[64];
    uint64_t v;
    fw_snoozes *sn = NULL;
    int rc = fw_rstore_snooze_version(c->st, &v, err, sizeof err);
    if (rc == 0 && r->snoozes_read && v == r->snooze_version)
        return true;
    if (rc == 0)
        rc = fw_rstore_snooze_read(c->st, &sn, &v, err, sizeof err);
    if (rc == 0) {
        size_t n = fw_snoozes_count(sn);
        fw_snoozes_unref(atomic_exchange(&r->pending_snoozes, sn));
        r->snooze_version = v;
        r->snoozes_read = true;
        repeat_over(&r->snooze_trouble);
        fw_counter_add(r->snooze_reloads, 1);
        fw_gauge_set(r->snoozes_held, (double)n);
        fw_log(FW_LOG_INFO, "snooze", "snoozes read", "version=%llu snoozes=%zu",
               (unsigned long long)v, n);
        return true;
    }
    if (fw_rstore_missing_permission(err, need, sizeof need)) {
        if (repeat_due(&r->snooze_trouble, err))
            fw_log(FW_LOG_ERROR, "snooze", "the redis ACL refuses reading the snoozes: "
                                           "the last snoozes read stay",
                   "missing=\"%s\" error=\"%s\"", need, fw_log_quote(err, q, sizeof q));
        return true;
    }
    if (repeat_due(&r->snooze_trouble, err))
        fw_log(FW_LOG_WARN, "snooze", "reading the snoozes failed; the last ones read stay",
               "error=\"%s\"", fw_log_quote(err, q, sizeof q));
    /* A bad entry leaves the connection usable; a dead one fails this too. */
    uint64_t gen;
    return fw_rstore_generation(c->st, &gen, err, sizeof err) == 0;
}

static void *redis_thread(void *arg)
{
    fw_reloader *r = arg;
    struct rules_conn c = { .backoff = 100, .sub_backoff = 100 };
    while (!atomic_load(&r->stop)) {
        int64_t now = fw_mono_ms();
        if (!ensure_store(r, &c, now)) {
            nap(r, 50);
            continue;
        }
        ensure_sub(r, &c, now);
        /* Wait for a notification, at most until the next periodic check. */
        int wait = (int)(c.next_check - fw_mono_ms());
        wait = wait > 0 ? (wait < 200 ? wait : 200) : 0;
        int got = 0;
        if (c.sub) {
            got = fw_rsub_wait(c.sub, wait);
            if (got < 0) {   /* lost: messages too; check at once */
                fw_rsub_free(c.sub);
                c.sub = NULL;
                c.next_sub_try = 0;
                c.next_check = 0;
                got = 0;
            }
        } else {
            nap(r, wait);
        }
        now = fw_mono_ms();
        bool hup = atomic_exchange(&r->hup, false);
        if (got == 1 || now >= c.next_check || hup) {
            c.next_check = now + CHECK_EVERY_MS;
            check(r, &c);
            if (c.st && !check_snoozes(r, &c)) {
                fw_rstore_free(c.st);
                c.st = NULL;
            }
        }
    }
    fw_rstore_free(c.st);
    fw_rsub_free(c.sub);
    return NULL;
}
#endif

/* ---- life cycle ------------------------------------------------------------ */

static void reloader_free(fw_reloader *r)
{
    fw_ruleset_unref(r->cur);
    fw_snoozes_unref(atomic_exchange(&r->pending_snoozes, NULL));
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int fw_reloader_start(const fw_settings *s, fw_metrics *m, fw_ruleset **initial,
                      fw_reloader **out, char *err, size_t errlen)
{
    fw_reloader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->s = s;
    r->started_ms = fw_wall_ms();
    atomic_init(&r->pending, NULL);
    atomic_init(&r->pending_snoozes, NULL);
    atomic_init(&r->stop, false);
    atomic_init(&r->hup, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->reloads = fw_metrics_counter(m, "fraudwatch_rule_reloads_total",
                                    "Rule sets loaded (the first one included).", "");
    r->failures = fw_metrics_counter(m, "fraudwatch_rule_reload_failures_total",
                                     "Rule sets refused (invalid) by a reload.", "");
    void *(*fn)(void *) = NULL;
    if (strncmp(s->rules_source, "dir:", 4) == 0) {
        r->dir = s->rules_source + 4;
        char *e = malloc(errlen ? errlen : 1);
        if (!e) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (fw_ruleset_load_dir(r->dir, 1, initial, e, errlen ? errlen : 1) != 0) {
            /* No last good set to keep: the daemon does not start (and
             * commits nothing, so the events wait in Kafka).  A refusal is
             * cheap — nothing is read before it is checked — so a
             * supervisor restarting it only repeats this message. */
            snprintf(err, errlen, "rules.source = dir:%s: the rule set is refused, "
                                  "and there is no earlier set to run with; fix "
                                  "the directory (fraudwatch rules check %s) and "
                                  "start again:\n%s", r->dir, r->dir, e);
            free(e);
            goto fail;
        }
        free(e);
        fn = dir_thread;
    } else if (strncmp(s->rules_source, "redis://", 8) == 0) {
#ifdef FW_HAVE_REDIS
        r->redis = true;
        r->full_reads = fw_metrics_counter(
            m, "fraudwatch_watchlist_full_reads_total",
            "Watchlists read whole from Redis (SSCAN): at start, after a reconnect, "
            "after a push or lists load replaced them.", "");
        r->delta_reads = fw_metrics_counter(
            m, "fraudwatch_watchlist_delta_reads_total",
            "Watchlist changes applied from the list's change log, without reading "
            "the list.", "");
        r->beat_failures = fw_metrics_counter(
            m, "fraudwatch_rules_heartbeat_failures_total",
            "Heartbeats that could not be written to Redis.", "");
        r->fetch_seconds = fw_metrics_gauge(
            m, "fraudwatch_rules_fetch_seconds",
            "Duration of the last fetch of the rule set from Redis.", "");
        fw_rstore *st;
        char e[8192], detail[512];
        if (fw_rstore_connect(s->rules_source, REDIS_TIMEOUT_MS, &st, e, sizeof e) != 0) {
            snprintf(err, errlen, "rules.source: no rule set can be loaded, redis "
                                  "is unreachable: %s", e);
            goto fail;
        }
        int rc = load_redis(r, st, true, initial, detail, sizeof detail, e, sizeof e);
        /* The snoozes, before the first event: the daemon takes them with
         * fw_reloader_take_snoozes() before it starts.  A failure here is
         * not fatal: the rules thread reads them again within a second. */
        r->snooze_reloads = fw_metrics_counter(
            m, "fraudwatch_snooze_reloads_total",
            "Snooze sets read from Redis (at start, after a change or a reconnect).", "");
        r->snoozes_held = fw_metrics_gauge(m, "fraudwatch_snoozes",
                                           "Snoozes held (ended ones included until removed).",
                                           "");
        if (rc == 0) {
            struct rules_conn once = { .st = st };
            check_snoozes(r, &once);
        }
        fw_rstore_free(st);
        if (rc == 1 && r->generation == 0) {
            snprintf(err, errlen, "rules.source: redis holds no rule set yet "
                                  "(publish one with: fraudwatch rules push DIR --redis URL)");
            goto fail;
        }
        if (rc != 0) {
            snprintf(err, errlen, "rules.source: %s%s",
                     rc == 1 ? "the rule set in redis is refused:\n" : "", e);
            goto fail;
        }
        fw_log(FW_LOG_INFO, "rules", "rule set loaded from redis", "version=%llu%s",
               (unsigned long long)fw_ruleset_version(*initial), detail);
        r->cur = fw_ruleset_ref(*initial);
        fn = redis_thread;
#else
        snprintf(err, errlen, "rules.source: this build has no Redis support");
        goto fail;
#endif
    } else {
        snprintf(err, errlen, "rules.source must be dir:PATH or redis://...");
        goto fail;
    }
    r->version = fw_ruleset_version(*initial);
    r->last_ok = true;
    r->last_reload_ms = fw_wall_ms();
    fw_counter_add(r->reloads, 1);
    if (pthread_create(&r->thread, NULL, fn, r) != 0) {
        fw_ruleset_unref(*initial);
        snprintf(err, errlen, "cannot start the rules thread");
        goto fail;
    }
    r->started = true;
#ifdef FW_HAVE_REDIS
    if (r->redis) {
        if (pthread_create(&r->beat, NULL, beat_thread, r) != 0) {
            atomic_store(&r->stop, true);
            pthread_join(r->thread, NULL);
            fw_ruleset_unref(atomic_exchange(&r->pending, NULL));
            fw_ruleset_unref(*initial);
            snprintf(err, errlen, "cannot start the heartbeat thread");
            goto fail;
        }
        r->beat_started = true;
    }
#endif
    *out = r;
    return 0;
fail:
    reloader_free(r);
    return -1;
}

void fw_reloader_stop(fw_reloader *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    if (r->beat_started)
        pthread_join(r->beat, NULL);
    fw_ruleset_unref(atomic_exchange(&r->pending, NULL));
    reloader_free(r);
}
