/* reload.c — where the daemon's rules come from, and live reloads.
 *
 * Owns one background thread per daemon that watches the rules source and
 * builds new rule sets off the per-event path:
 *
 *   dir:PATH      reload on SIGHUP and when files in PATH change (inotify,
 *                 debounced so an editor's save or a `cp -r` of many files
 *                 is one reload);
 *   redis://...   reload when the store's generation changes: noticed from
 *                 the notification channel at once, and from a GET of the
 *                 generation every second (pub/sub drops messages across
 *                 reconnects).  A heartbeat key tells `rules status` what
 *                 this daemon runs.  Redis down: the daemon keeps its last
 *                 good set and reconnects with backoff.
 *
 * A new set is validated and compiled here (fw_ruleset_load_files); a set
 * that fails is refused, logged, counted (fraudwatch_rule_reload_failures_total)
 * and reported in the heartbeat, and the last good one stays.  A directory
 * is read by rulefiles.c, which refuses what could hang or exhaust this
 * thread (a FIFO, /dev/zero, a 3 GiB file) before reading it, so whatever
 * lands in the directory ends in a refusal, never in a crash or a stuck
 * reload.  A good one is handed over through one atomic pointer:
 * the daemon's main thread takes it between two batches, so every event is
 * matched entirely by the old set or entirely by the new one, and the old
 * set is freed when the last batch holding it retires (reference counts).
 * Window state carries over by rule signature (state.c). */
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
#endif

struct fw_reloader {
    const fw_settings *s;
    bool redis;
    const char *dir;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool hup;
    _Atomic(fw_ruleset *) pending;   /* handed to the main thread */
    uint64_t version;                /* of the last good set */
    uint64_t generation;             /* redis: generation of the last attempt */
    int64_t started_ms;
    int64_t last_reload_ms;
    bool last_ok;
    char last_error[1024];
    fw_counter *reloads;
    fw_counter *failures;
};

/* Hands a good set to the main thread (replacing one it has not taken). */
static void publish(fw_reloader *r, fw_ruleset *rs)
{
    fw_ruleset *old = atomic_exchange(&r->pending, rs);
    fw_ruleset_unref(old);
    r->version = fw_ruleset_version(rs);
    r->last_ok = true;
    r->last_error[0] = '\0';
    r->last_reload_ms = fw_wall_ms();
    fw_counter_add(r->reloads, 1);
    fw_log(FW_LOG_INFO, "rules", "new rule set ready", "version=%llu rules=%zu",
           (unsigned long long)r->version, fw_ruleset_rule_count(rs));
}

static void refuse(fw_reloader *r, const char *what, const char *err)
{
    r->last_ok = false;
    r->last_reload_ms = fw_wall_ms();
    snprintf(r->last_error, sizeof r->last_error, "%s", err);
    fw_counter_add(r->failures, 1);
    char q[4096];
    fw_log(FW_LOG_ERROR, "rules", what, "error=\"%s\" keeping_version=%llu",
           fw_log_quote(err, q, sizeof q), (unsigned long long)r->version);
}

fw_ruleset *fw_reloader_take(fw_reloader *r)
{
    if (!r || !atomic_load_explicit(&r->pending, memory_order_relaxed))
        return NULL;
    return atomic_exchange(&r->pending, NULL);
}

void fw_reloader_hup(fw_reloader *r)
{
    if (r)
        atomic_store(&r->hup, true);
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
    publish(r, rs);
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

/* Fetches, validates and publishes the set in the store. */
static int load_redis(fw_reloader *r, fw_rstore *st, fw_ruleset **out,
                      char *err, size_t errlen)
{
    fw_rulefile *files = NULL;
    size_t n = 0;
    uint64_t version, generation;
    if (fw_rstore_fetch(st, &files, &n, &version, &generation, err, errlen) != 0)
        return -1;   /* a Redis problem, not a rule problem */
    r->generation = generation;
    int rc = fw_ruleset_load_files(files, n, version, out, err, errlen) == 0 ? 0 : 1;
    fw_rulefiles_free(files, n);
    return rc;
}

static void heartbeat(fw_reloader *r, fw_rstore *st)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    fw_heartbeat hb = { .instance = r->s->instance_id, .host = host,
                        .pid = (int)getpid(), .version = r->version,
                        .generation = r->generation,
                        .last_reload_ms = r->last_reload_ms, .last_ok = r->last_ok,
                        .last_error = r->last_error, .started_ms = r->started_ms };
    char err[512];
    if (fw_rstore_heartbeat(st, &hb, HEARTBEAT_TTL_S, err, sizeof err) != 0)
        fw_log(FW_LOG_WARN, "rules", "heartbeat failed", "error=\"%s\"", err);
}

static void *redis_thread(void *arg)
{
    fw_reloader *r = arg;
    const char *url = r->s->rules_source;
    fw_rstore *st = NULL;
    fw_rsub *sub = NULL;
    int64_t backoff = 100, next_try = 0, next_check = 0, next_beat = 0;
    bool reconnecting = false;
    char err[8192];
    while (!atomic_load(&r->stop)) {
        int64_t now = fw_mono_ms();
        if (!st || !sub) {
            if (now < next_try) {
                usleep(50000);
                continue;
            }
            if ((!st && fw_rstore_connect(url, REDIS_TIMEOUT_MS, &st, err, sizeof err) != 0) ||
                (!sub && fw_rsub_connect(url, REDIS_TIMEOUT_MS, &sub, err, sizeof err) != 0)) {
                char q[1024];
                fw_log(FW_LOG_WARN, "rules", "redis unreachable, running on the last "
                                             "good set", "retry_ms=%lld error=\"%s\"",
                       (long long)backoff, fw_log_quote(err, q, sizeof q));
                fw_rstore_free(st);
                st = NULL;
                fw_rsub_free(sub);
                sub = NULL;
                next_try = now + backoff;
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            fw_log(FW_LOG_INFO, "rules", "connected to redis", NULL);
            backoff = 100;
            next_check = 0;   /* after a reconnect, read the version at once */
            /* A server restarted without persistence starts its generation
             * again from 0: after losing the connection, re-read the set
             * whatever the generation says. */
            if (reconnecting)
                r->generation = UINT64_MAX;
            reconnecting = true;
        }
        /* Wait for a notification, at most until the next periodic check. */
        int wait = (int)(next_check - fw_mono_ms());
        int got = fw_rsub_wait(sub, wait > 0 ? (wait < 200 ? wait : 200) : 0);
        if (got < 0) {
            fw_rsub_free(sub);
            sub = NULL;
            continue;
        }
        now = fw_mono_ms();
        if (got == 1 || now >= next_check || atomic_exchange(&r->hup, false)) {
            next_check = now + 1000;
            uint64_t gen;
            if (fw_rstore_generation(st, &gen, err, sizeof err) != 0) {
                fw_log(FW_LOG_WARN, "rules", "redis error", "error=\"%s\"", err);
                fw_rstore_free(st);
                st = NULL;
                continue;
            }
            if (gen != r->generation) {
                fw_ruleset *rs;
                int rc = load_redis(r, st, &rs, err, sizeof err);
                if (rc == 0) {
                    publish(r, rs);
                } else if (rc == 1) {
                    refuse(r, "rule set in redis refused, the last good set stays", err);
                } else {
                    fw_log(FW_LOG_WARN, "rules", "redis error", "error=\"%s\"", err);
                    fw_rstore_free(st);
                    st = NULL;
                    continue;
                }
                next_beat = 0;
            }
        }
        if (now >= next_beat) {
            heartbeat(r, st);
            next_beat = now + 2000;
        }
    }
    fw_rstore_free(st);
    fw_rsub_free(sub);
    return NULL;
}
#endif

/* ---- life cycle ------------------------------------------------------------ */

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
    atomic_init(&r->stop, false);
    atomic_init(&r->hup, false);
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
        fw_rstore *st;
        char e[8192];
        if (fw_rstore_connect(s->rules_source, REDIS_TIMEOUT_MS, &st, e, sizeof e) != 0) {
            snprintf(err, errlen, "rules.source: no rule set can be loaded, redis "
                                  "is unreachable: %s", e);
            goto fail;
        }
        int rc = load_redis(r, st, initial, e, sizeof e);
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
    *out = r;
    return 0;
fail:
    free(r);
    return -1;
}

void fw_reloader_stop(fw_reloader *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    if (r->started)
        pthread_join(r->thread, NULL);
    fw_ruleset_unref(atomic_exchange(&r->pending, NULL));
    free(r);
}
