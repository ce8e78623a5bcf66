/* pipeline.c — worker threads, key ownership, and the batch ring.
 *
 * Owns the threads and every batch in flight.  A batch moves through
 *
 *     FREE → FILLING (feeder) → FILLED → PARSED (one worker, stage 1)
 *          → DONE (every worker, stage 2, its own shard) → FREE (feeder)
 *
 * Stage 1 — parse, match, extract keys — is claimed one batch at a time by
 * whichever worker is free, so parsing runs on every core.  It bins its
 * updates by shard (a hash of rule and key).  Stage 2 is done by every
 * worker for its own shard, walking the batches strictly in order: a key's
 * state has one owner and sees its events in input order, without a lock.
 * Workers prefer stage 2 (it retires batches) and parse when they would
 * otherwise wait.
 *
 * Synchronisation is per batch, never per event: an atomic stage per slot,
 * an atomic claim counter for stage 1, an atomic count of shards done, and a
 * condition variable used only to sleep when there is nothing to do (a
 * generation counter makes the wake-up race-free; sleepers are woken only
 * when someone sleeps).
 *
 * Determinism: batches are cut by count, so in replay the same input gives
 * the same batches; the stream clock used to expire idle keys is computed
 * from the events in input order; alerts are merged by (event, rule).  So
 * the thread count never changes the alerts.
 *
 * Checkpoints without stopping the stream: the feeder marks a batch as a
 * *cut* (fw_batch_set_cut, before submitting it; it may be empty).  Each
 * worker, right after its stage 2 of that batch — the only moment its
 * shard holds exactly the state of the batches up to the cut — starts a
 * snapshot of its own shard (state.c: the items are listed, not copied),
 * then encodes it into memory a slice at a time: `snapshot_step` items
 * after each later batch, and when it has nothing else to do, at half
 * speed.  An item about to change is encoded first, as it was at the cut.
 * No lock: the shard is its own.  The retired cut batch hands the snapshot
 * to the feeder (fw_batch_take_snapshot), which waits — without blocking —
 * until every shard is in (fw_snapshot_complete) and writes it to disk
 * elsewhere.  The snapshot is reference-counted: the workers still filling
 * it hold it too.  The stream stands still only for the listing of the
 * largest shard and a slice per batch. */
#include "fraudwatch/pipeline.h"

#include "fraudwatch/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "engine.h"
#include "state.h"
#include "fraudwatch/clock.h"
#include "stream_clock.h"

/* A cut's snapshot: one serialised shard per worker (fw_state_save's
 * encoding), and the stream clock at the cut (every worker computes the
 * same one: each sees every batch's timestamps).  A part is written only by
 * its worker until `done` counts it (release); read by the feeder after. */
struct snap_part {
    fw_buf buf;
    size_t keys;
    size_t early;            /* items encoded before a change */
    int64_t begin_ns;        /* listing the items: the stream stood still */
    int64_t work_ns;         /* all the encoding, spread over batches */
    int64_t t0;
};

struct fw_snapshot {
    uint32_t n;
    int64_t clock;
    atomic_uint done;        /* parts complete */
    atomic_uint refs;        /* the feeder's, and each worker's until done */
    struct snap_part part[];
};

#define SNAPSHOT_STEP 2048      /* items encoded per batch while snapshotting */

enum { ST_FREE, ST_FILLING, ST_FILLED, ST_PARSED, ST_DONE };

#define BATCH_BYTES (4u << 20)
#define PREFETCH_SLOT 12        /* updates ahead: a key's table slot, */
#define PREFETCH_ITEM 8         /* its item, */
#define PREFETCH_DATA 4         /* its window or chains (fw_state_prefetch) */
/* Events per whole sweep of idle keys; each batch sweeps its events' share
 * of the tables.  262,144 is 256 full batches, the pass replay has always
 * made; state.c stretches it up to 8 times while passes find almost
 * nothing idle.  A share
 * per event rather than a slice per batch: at live rates batches are cut
 * small (~280 events at 100k/s), and a slice per batch made the sweep
 * 5 % of the daemon's CPU there (bench/README.md). */
#define GC_PASS_EVENTS 262144

struct msg {
    size_t off;
    size_t len;
    uint64_t tag;
    bool oversize;
};

struct bad {
    uint32_t seq;
    const char *reason;
};

struct fw_batch {
    uint64_t seqno;
    atomic_int stage;
    int64_t submitted_ms;    /* wall clock at fw_pipeline_submit (latency stamps) */
    fw_ruleset *rs;
    fw_snoozes *snoozes;     /* applied under (NULL: none) */
    /* per-rule counts (fw_rule_count, stride FW_RC_N): stage 1's here,
     * each shard's in out[s].counts; room for rc_rules rules */
    uint32_t *rc1;
    uint32_t rc_rules;

    char *data;
    size_t len, cap;
    struct msg *msgs;
    uint32_t n, max;
    size_t max_bytes;        /* larger messages are not copied */

    /* stage 1 */
    fw_arena *arena;
    fw_updvec *upd;          /* [nshards] */
    int64_t *ts;             /* [max]: FW_TS_NONE for malformed */
    struct bad *bad;         /* [max] */
    uint32_t nbad;
    uint64_t faults;
    uint32_t clock_ahead;    /* stage 2, worker 0: events far from the */
    uint32_t clock_behind;   /* stream clock (fw_batch_clock_outliers) */
    atomic_uint_fast64_t evicted;  /* stage 2, every worker: keys evicted */

    /* stage 2 */
    fw_alert_out *out;       /* [nshards] */
    atomic_uint shards_done;
    uint32_t nshards;

    /* a cut: set by the feeder before submit, filled by each worker after
     * its stage 2 (published by shards_done / the DONE stage) */
    fw_snapshot *snap;
};

struct worker {
    fw_pipeline *p;
    uint32_t id;
    pthread_t thread;
    fw_scanner *scanner;
    fw_arena *parse_arena;
    fw_state *state;
    atomic_uint_fast64_t next2; /* next batch for stage 2 (read by metrics) */
    fw_sclock clock;         /* stream clock (for expiring idle keys) */
    fw_snapshot *snap;       /* being filled (a reference) */
    size_t snap_hint;        /* size of its last snapshot */
};

struct fw_pipeline {
    fw_pipeline_opts o;
    uint32_t nslots;
    fw_batch *slots;
    struct worker *workers;
    uint32_t started;

    fw_snoozes *snoozes;     /* feeder: for the batches acquired from now on */
    uint64_t next_fill;      /* feeder: seqno of the next batch to hand out */
    uint64_t next_retire;    /* feeder: seqno of the oldest in flight */
    atomic_uint_fast64_t submitted;  /* batches [0, submitted) are FILLED+ */
    atomic_uint_fast64_t next_parse; /* stage 1 claim counter */

    atomic_bool stop;
    atomic_uint_fast64_t gen;
    atomic_uint sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static fw_batch *slot(fw_pipeline *p, uint64_t seqno)
{
    return &p->slots[seqno % p->nslots];
}

/* ---- sleeping and waking ---------------------------------------------- */

static void wake(fw_pipeline *p)
{
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Sleeps until wake() is called after `seen` was read (or `ns` pass). */
static void sleep_for_change(fw_pipeline *p, uint64_t seen, long ns)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    if (atomic_load(&p->gen) == seen) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += ns;
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

static void sleep_until_change(fw_pipeline *p, uint64_t seen)
{
    sleep_for_change(p, seen, 50 * 1000000L);
}

/* ---- the two stages ---------------------------------------------------- */

static void stage1(struct worker *w, fw_batch *b)
{
    fw_pipeline *p = w->p;
    uint64_t faults = fw_scanner_faults(w->scanner);
    /* The daemon refuses events too far ahead of the wall clock (replay
     * never does: it backtests old files, and must not depend on today). */
    int64_t horizon = p->o.max_future_ms > 0 ? fw_wall_ms() + p->o.max_future_ms
                                             : INT64_MAX;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct msg *m = &b->msgs[i];
        fw_event ev;
        const char *reason;
        b->ts[i] = FW_TS_NONE;
        if (m->oversize) {
            b->bad[b->nbad++] = (struct bad){ i, "larger than the maximum "
                                                 "event size" };
            continue;
        }
        if (!fw_event_parse(b->data + m->off, m->len, p->o.max_event_bytes,
                            &ev, &reason)) {
            b->bad[b->nbad++] = (struct bad){ i, reason };
        } else if (ev.ts > horizon) {
            b->bad[b->nbad++] = (struct bad){ i, FW_REASON_FUTURE };
        } else {
            b->ts[i] = ev.ts;
            fw_engine_scan(w->scanner, b->rs, &ev, i, b->arena, b->upd,
                           b->nshards, b->rc1);
        }
        fw_arena_reset(w->parse_arena);
    }
    b->faults = fw_scanner_faults(w->scanner) - faults;
}

static void snapshot_unref(fw_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        for (uint32_t i = 0; i < s->n; i++)
            fw_buf_free(&s->part[i].buf);
        free(s);
    }
}

/* Encodes up to `max` more items of the worker's snapshot; at the end,
 * counts its part in and lets go of it.  Returns how long it took. */
static int64_t snapshot_step(struct worker *w, size_t max)
{
    fw_snapshot *s = w->snap;
    struct snap_part *sp = &s->part[w->id];
    int64_t t0 = fw_mono_ns();
    bool complete = fw_state_snap_step(w->state, max);
    int64_t took = fw_mono_ns() - t0;
    sp->work_ns += took;
    if (!complete)
        return took;
    sp->early = fw_state_snap_early(w->state);
    w->snap_hint = sp->buf.len;
    w->snap = NULL;
    atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    snapshot_unref(s);
    wake(w->p);
    return took;
}

/* The cut: the shard as it stands after the cut batch.  Lists its items
 * (the only part the stream waits for) and encodes the first slice. */
static void snapshot_begin(struct worker *w, fw_snapshot *s)
{
    if (w->snap)                 /* not expected: a cut before the last ended */
        snapshot_step(w, SIZE_MAX);
    struct snap_part *sp = &s->part[w->id];
    int64_t t0 = fw_mono_ns();
    fw_buf_reserve(&sp->buf, w->snap_hint + w->snap_hint / 8);
    sp->keys = fw_state_snap_begin(w->state, &sp->buf);
    if (w->id == 0)
        s->clock = fw_sclock_now(&w->clock);
    sp->begin_ns = fw_mono_ns() - t0;
    sp->work_ns = sp->begin_ns;
    w->snap = s;
    snapshot_step(w, w->p->o.snapshot_step);
}

static void stage2(struct worker *w, fw_batch *b)
{
    fw_pipeline *p = w->p;
    const fw_updvec *v = &b->upd[w->id];
    fw_alert_out *out = &b->out[w->id];
    uint64_t evicted = fw_state_evictions(w->state);
    out->snoozes = b->snoozes;
    /* Each update's key is a cache miss or three (table slot, item,
     * window): ask for them ahead, in stages, so the misses of several
     * updates overlap instead of following one another. */
    for (size_t i = 0; i < v->n; i++) {
        if (i + PREFETCH_SLOT < v->n)
            fw_state_prefetch(w->state, &v->v[i + PREFETCH_SLOT], 0);
        if (i + PREFETCH_ITEM < v->n)
            fw_state_prefetch(w->state, &v->v[i + PREFETCH_ITEM], 1);
        if (i + PREFETCH_DATA < v->n)
            fw_state_prefetch(w->state, &v->v[i + PREFETCH_DATA], 2);
        fw_state_apply(w->state, b->rs, &v->v[i], out);
    }
    evicted = fw_state_evictions(w->state) - evicted;
    if (evicted)      /* read by the feeder after DONE (acquire) */
        atomic_fetch_add_explicit(&b->evicted, evicted, memory_order_relaxed);

    /* The stream clock (stream_clock.c): a median of recent event times,
     * so a few absurd timestamps cannot sweep other keys' state.  Worker 0
     * counts the events far from it (every worker sees the same times). */
    int64_t late = p->o.lateness_ms;
    int64_t now = fw_sclock_now(&w->clock);
    uint32_t ahead = 0, behind = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        int64_t t = b->ts[i];
        if (t == FW_TS_NONE)
            continue;
        fw_sclock_observe(&w->clock, t);
        if (now != FW_TS_NONE) {
            ahead += t > now && t - now > late;
            behind += t < now && now - t > late;
        }
    }
    if (w->id == 0) {
        b->clock_ahead = ahead;
        b->clock_behind = behind;
    }
    now = fw_sclock_update(&w->clock);
    if (now != FW_TS_NONE)
        fw_state_gc_slice(w->state, now, late, b->n, p->o.gc_pass_events);
    if (b->snap)
        snapshot_begin(w, b->snap);
    else if (w->snap)
        snapshot_step(w, p->o.snapshot_step);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    fw_pipeline *p = w->p;
    fw_event_use_arena(w->parse_arena);
    for (;;) {
        uint64_t seen = atomic_load(&p->gen);

        /* Stage 2 of my next batch, if it has been parsed. */
        uint64_t mine = atomic_load_explicit(&w->next2, memory_order_relaxed);
        if (mine < atomic_load(&p->submitted)) {
            fw_batch *b = slot(p, mine);
            int st = atomic_load_explicit(&b->stage, memory_order_acquire);
            if (b->seqno == mine && st >= ST_PARSED) {
                stage2(w, b);
                atomic_store_explicit(&w->next2, mine + 1, memory_order_relaxed);
                if (atomic_fetch_add_explicit(&b->shards_done, 1,
                                              memory_order_acq_rel) + 1 ==
                    b->nshards) {
                    atomic_store_explicit(&b->stage, ST_DONE,
                                          memory_order_release);
                    wake(p);
                }
                continue;
            }
        }

        /* Stage 1 of the next unclaimed batch. */
        uint_fast64_t np = atomic_load(&p->next_parse);
        if (np < atomic_load(&p->submitted) &&
            atomic_compare_exchange_strong(&p->next_parse, &np, np + 1)) {
            fw_batch *b = slot(p, np);
            stage1(w, b);
            atomic_store_explicit(&b->stage, ST_PARSED, memory_order_release);
            wake(p);
            continue;
        }

        /* Nothing to apply or parse: get on with the snapshot, at half
         * speed — a pause as long as each step, cut short by new work — so
         * that the workers encoding on every core do not starve the main
         * loop, librdkafka's threads or a broker on the same machine. */
        if (w->snap) {
            int64_t took = snapshot_step(w, p->o.snapshot_step);
            if (w->snap)
                sleep_for_change(p, seen, (long)(took < 2000000 ? took : 2000000));
            continue;
        }

        if (atomic_load(&p->stop) &&
            atomic_load_explicit(&w->next2, memory_order_relaxed) >=
                atomic_load(&p->submitted))
            break;
        sleep_until_change(p, seen);
    }
    fw_event_use_arena(NULL);
    return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

static void batch_free(fw_batch *b)
{
    fw_arena_free(b->arena);
    for (uint32_t s = 0; s < b->nshards; s++) {
        if (b->upd)
            free(b->upd[s].v);
        if (b->out) {
            fw_buf_free(&b->out[s].text);
            free(b->out[s].refs);
            free(b->out[s].counts);
        }
    }
    free(b->upd);
    free(b->out);
    free(b->data);
    free(b->msgs);
    free(b->ts);
    free(b->bad);
    free(b->rc1);
    fw_snapshot_free(b->snap);
    fw_ruleset_unref(b->rs);
    fw_snoozes_unref(b->snoozes);
}

static bool batch_init(fw_batch *b, uint32_t max, uint32_t nshards,
                       size_t max_bytes)
{
    b->max = max;
    b->max_bytes = max_bytes;
    b->nshards = nshards;
    b->arena = fw_arena_new(256 * 1024);
    b->upd = calloc(nshards, sizeof *b->upd);
    b->out = calloc(nshards, sizeof *b->out);
    b->msgs = calloc(max, sizeof *b->msgs);
    b->ts = calloc(max, sizeof *b->ts);
    b->bad = calloc(max, sizeof *b->bad);
    b->cap = 256 * 1024;
    b->data = malloc(b->cap);
    atomic_init(&b->stage, ST_FREE);
    atomic_init(&b->shards_done, 0);
    atomic_init(&b->evicted, 0);
    return b->arena && b->upd && b->out && b->msgs && b->ts && b->bad &&
           b->data;
}

fw_pipeline *fw_pipeline_new(const fw_pipeline_opts *o, char *err, size_t errlen)
{
    if (o->workers < 1 || o->workers > FW_MAX_WORKERS) {
        snprintf(err, errlen, "threads must be 1..%d, not %u", FW_MAX_WORKERS,
                 o->workers);
        return NULL;
    }
    fw_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    p->o = *o;
    if (!p->o.batch_events)
        p->o.batch_events = 1024;
    if (!p->o.max_event_bytes)
        p->o.max_event_bytes = FW_DEFAULT_MAX_EVENT_BYTES;
    if (p->o.lateness_ms <= 0)
        p->o.lateness_ms = FW_DEFAULT_LATENESS_MS;
    if (!p->o.snapshot_step)
        p->o.snapshot_step = SNAPSHOT_STEP;
    if (!p->o.gc_pass_events)
        p->o.gc_pass_events = GC_PASS_EVENTS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->submitted, 0);
    atomic_init(&p->next_parse, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->gen, 0);
    atomic_init(&p->sleepers, 0);

    uint32_t n = o->workers;
    p->nslots = 4 * n + 4;
    p->slots = calloc(p->nslots, sizeof *p->slots);
    p->workers = calloc(n, sizeof *p->workers);
    if (!p->slots || !p->workers)
        goto oom;
    for (uint32_t i = 0; i < p->nslots; i++)
        if (!batch_init(&p->slots[i], p->o.batch_events, n,
                        p->o.max_event_bytes))
            goto oom;
    for (uint32_t i = 0; i < n; i++) {
        struct worker *w = &p->workers[i];
        w->p = p;
        w->id = i;
        fw_sclock_init(&w->clock);
        w->scanner = fw_scanner_new();
        if (w->scanner)
            fw_scanner_set_owner(w->scanner, p->o.own_parts, p->o.own_part);
        w->parse_arena = fw_arena_new(64 * 1024);
        w->state = fw_state_new();
        if (!w->scanner || !w->parse_arena || !w->state)
            goto oom;
        /* The budget is shared out by shard (keys are spread evenly). */
        fw_state_set_budget(w->state, p->o.max_keys ? (p->o.max_keys + n - 1) / n : 0);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main,
                           &p->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %u", i);
            fw_pipeline_free(p);
            return NULL;
        }
        p->started++;
    }
    return p;
oom:
    snprintf(err, errlen, "out of memory creating the pipeline");
    fw_pipeline_free(p);
    return NULL;
}

static void pipeline_free(fw_pipeline *p, bool at_exit)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    wake(p);
    for (uint32_t i = 0; i < p->started; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (uint32_t i = 0; p->workers && i < p->o.workers; i++) {
        fw_scanner_free(p->workers[i].scanner);
        fw_arena_free(p->workers[i].parse_arena);
        if (at_exit)
            fw_state_leave(p->workers[i].state);
        else
            fw_state_free(p->workers[i].state);
    }
    for (uint32_t i = 0; p->slots && i < p->nslots; i++)
        batch_free(&p->slots[i]);
    free(p->slots);
    free(p->workers);
    fw_snoozes_unref(p->snoozes);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void fw_pipeline_free(fw_pipeline *p) { pipeline_free(p, false); }
void fw_pipeline_free_at_exit(fw_pipeline *p) { pipeline_free(p, true); }

/* ---- feeder side ------------------------------------------------------- */

/* Zeroed counts for a batch matched under a set of nrules rules (feeder,
 * before the workers see the batch).  A shard's counts are cleared only if
 * it counted something: most batches fire nothing. */
static void rule_counts_reset(fw_batch *b, uint32_t nrules)
{
    size_t n = (size_t)nrules * FW_RC_N;
    if (nrules > b->rc_rules || !b->rc1) {
        uint32_t cap = nrules > 16 ? nrules : 16;
        free(b->rc1);
        b->rc1 = fw_xcalloc((size_t)cap * FW_RC_N, sizeof *b->rc1);
        for (uint32_t s = 0; s < b->nshards; s++) {
            free(b->out[s].counts);
            b->out[s].counts = fw_xcalloc((size_t)cap * FW_RC_N, sizeof *b->out[s].counts);
            b->out[s].counted = false;
        }
        b->rc_rules = cap;
        return;
    }
    memset(b->rc1, 0, n * sizeof *b->rc1);
    for (uint32_t s = 0; s < b->nshards; s++)
        if (b->out[s].counted) {
            memset(b->out[s].counts, 0, (size_t)b->rc_rules * FW_RC_N *
                                            sizeof *b->out[s].counts);
            b->out[s].counted = false;
        }
}

fw_batch *fw_pipeline_acquire(fw_pipeline *p, fw_ruleset *rs)
{
    if (p->next_fill - p->next_retire >= p->nslots)
        return NULL;
    fw_batch *b = slot(p, p->next_fill);
    b->seqno = p->next_fill++;
    b->rs = fw_ruleset_ref(rs);
    b->snoozes = fw_snoozes_ref(p->snoozes);
    rule_counts_reset(b, (uint32_t)fw_ruleset_rule_count(rs));
    atomic_store_explicit(&b->stage, ST_FILLING, memory_order_relaxed);
    return b;
}

void fw_pipeline_set_snoozes(fw_pipeline *p, fw_snoozes *s)
{
    fw_snoozes_unref(p->snoozes);
    p->snoozes = fw_snoozes_ref(s);
}

void fw_batch_rule_counts(const fw_batch *b, uint64_t *sum)
{
    size_t n = fw_ruleset_rule_count(b->rs) * FW_RC_N;
    for (size_t i = 0; i < n; i++)
        sum[i] += b->rc1[i];
    for (uint32_t s = 0; s < b->nshards; s++)
        if (b->out[s].counted)
            for (size_t i = 0; i < n; i++)
                sum[i] += b->out[s].counts[i];
}

bool fw_batch_add(fw_batch *b, const char *data, size_t len, uint64_t tag)
{
    if (b->n == b->max)
        return false;
    struct msg *m = &b->msgs[b->n];
    m->tag = tag;
    m->len = len;
    m->off = b->len;
    m->oversize = len > b->max_bytes;
    if (!m->oversize) {
        if (b->n > 0 && b->len + len > BATCH_BYTES)
            return false;
        if (b->len + len > b->cap) {
            size_t cap = b->cap;
            while (cap < b->len + len)
                cap *= 2;
            b->data = fw_xrealloc(b->data, cap);
            b->cap = cap;
        }
        memcpy(b->data + b->len, data, len);
        b->len += len;
    }
    b->n++;
    return true;
}

uint32_t fw_batch_count(const fw_batch *b) { return b->n; }

void fw_pipeline_submit(fw_pipeline *p, fw_batch *b)
{
    b->submitted_ms = fw_wall_ms();
    atomic_store_explicit(&b->stage, ST_FILLED, memory_order_release);
    atomic_fetch_add(&p->submitted, 1);
    wake(p);
}

fw_batch *fw_pipeline_retire(fw_pipeline *p, bool wait)
{
    if (p->next_retire == atomic_load(&p->submitted))
        return NULL;
    fw_batch *b = slot(p, p->next_retire);
    for (;;) {
        uint64_t seen = atomic_load(&p->gen);
        if (atomic_load_explicit(&b->stage, memory_order_acquire) == ST_DONE)
            break;
        if (!wait)
            return NULL;
        sleep_until_change(p, seen);
    }
    p->next_retire++;
    return b;
}

void fw_pipeline_recycle(fw_pipeline *p, fw_batch *b)
{
    (void)p;
    fw_ruleset_unref(b->rs);
    b->rs = NULL;
    fw_snoozes_unref(b->snoozes);
    b->snoozes = NULL;
    b->len = 0;
    b->n = 0;
    b->nbad = 0;
    b->faults = 0;
    fw_arena_reset(b->arena);
    for (uint32_t s = 0; s < b->nshards; s++) {
        b->upd[s].n = 0;
        b->out[s].n = 0;
        b->out[s].text.len = 0;
    }
    fw_snapshot_free(b->snap);   /* a cut nobody took (teardown) */
    b->snap = NULL;
    atomic_store(&b->shards_done, 0);
    atomic_store_explicit(&b->evicted, 0, memory_order_relaxed);
    atomic_store_explicit(&b->stage, ST_FREE, memory_order_release);
}

/* ---- cuts: snapshots taken by the workers at a batch boundary ---------- */

bool fw_batch_set_cut(fw_batch *b)
{
    if (b->snap)
        return true;
    b->snap = calloc(1, sizeof *b->snap + b->nshards * sizeof b->snap->part[0]);
    if (!b->snap)
        return false;
    b->snap->n = b->nshards;
    b->snap->clock = FW_TS_NONE;
    atomic_init(&b->snap->done, 0);
    atomic_init(&b->snap->refs, b->nshards + 1);
    return true;
}

bool fw_batch_is_cut(const fw_batch *b) { return b->snap != NULL; }
int64_t fw_batch_submitted_ms(const fw_batch *b) { return b->submitted_ms; }

fw_snapshot *fw_batch_take_snapshot(fw_batch *b)
{
    fw_snapshot *s = b->snap;
    b->snap = NULL;
    return s;
}

void fw_snapshot_free(fw_snapshot *s) { snapshot_unref(s); }

bool fw_snapshot_complete(const fw_snapshot *s)
{
    return atomic_load_explicit(&((fw_snapshot *)s)->done, memory_order_acquire) == s->n;
}

void fw_pipeline_snapshot_wait(fw_pipeline *p, const fw_snapshot *s)
{
    for (;;) {
        uint64_t seen = atomic_load(&p->gen);
        if (fw_snapshot_complete(s))
            return;
        sleep_until_change(p, seen);
    }
}


size_t fw_snapshot_keys(const fw_snapshot *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->part[i].keys;
    return n;
}

size_t fw_snapshot_bytes(const fw_snapshot *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->part[i].buf.len;
    return n;
}

size_t fw_snapshot_early(const fw_snapshot *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->part[i].early;
    return n;
}

double fw_snapshot_pause_seconds(const fw_snapshot *s)
{
    int64_t ns = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->part[i].begin_ns > ns)
            ns = s->part[i].begin_ns;
    return (double)ns / 1e9;
}

double fw_snapshot_work_seconds(const fw_snapshot *s)
{
    int64_t ns = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->part[i].work_ns > ns)
            ns = s->part[i].work_ns;
    return (double)ns / 1e9;
}

uint32_t fw_pipeline_queue_depth(fw_pipeline *p, uint32_t worker)
{
    uint64_t sub = atomic_load_explicit(&p->submitted, memory_order_relaxed);
    uint64_t done = atomic_load_explicit(&p->workers[worker].next2,
                                         memory_order_relaxed);
    return sub > done ? (uint32_t)(sub - done) : 0;
}

size_t fw_pipeline_capacity(const fw_pipeline *p)
{
    return (size_t)p->nslots * p->o.batch_events;
}

uint32_t fw_pipeline_workers(const fw_pipeline *p) { return p->o.workers; }

uint32_t fw_pipeline_in_flight(const fw_pipeline *p)
{
    return (uint32_t)(p->next_fill - p->next_retire);
}

/* ---- reading a retired batch -------------------------------------------- */

uint64_t fw_batch_tag(const fw_batch *b, uint32_t seq) { return b->msgs[seq].tag; }

const char *fw_batch_msg(const fw_batch *b, uint32_t seq, size_t *len)
{
    *len = b->msgs[seq].len;
    return b->msgs[seq].oversize ? NULL : b->data + b->msgs[seq].off;
}
const fw_ruleset *fw_batch_ruleset(const fw_batch *b) { return b->rs; }
uint64_t fw_batch_faults(const fw_batch *b) { return b->faults; }
uint64_t fw_batch_evictions(const fw_batch *b)
{
    return atomic_load_explicit(&((fw_batch *)b)->evicted, memory_order_relaxed);
}

void fw_batch_clock_outliers(const fw_batch *b, uint32_t *ahead, uint32_t *behind)
{
    *ahead = b->clock_ahead;
    *behind = b->clock_behind;
}
uint32_t fw_batch_malformed_count(const fw_batch *b) { return b->nbad; }

void fw_batch_malformed(const fw_batch *b, uint32_t i, uint32_t *seq,
                        const char **reason)
{
    *seq = b->bad[i].seq;
    *reason = b->bad[i].reason;
}

void fw_batch_alerts_begin(const fw_batch *b, fw_alert_iter *it)
{
    (void)b;
    memset(it, 0, sizeof *it);
}

bool fw_batch_alerts_next(const fw_batch *b, fw_alert_iter *it,
                          fw_alert_view *a)
{
    /* k-way merge of the shards' lists, each already in (seq, rule) order. */
    int best = -1;
    const fw_alert_ref *br = NULL;
    for (uint32_t s = 0; s < b->nshards; s++) {
        if (it->pos[s] >= b->out[s].n)
            continue;
        const fw_alert_ref *r = &b->out[s].refs[it->pos[s]];
        if (!br || r->seq < br->seq || (r->seq == br->seq && r->rule < br->rule)) {
            best = (int)s;
            br = r;
        }
    }
    if (best < 0)
        return false;
    it->pos[best]++;
    a->json = b->out[best].text.p + br->off;
    a->len = br->len;
    a->subject = b->out[best].text.p + br->subject_off;
    a->subject_len = br->subject_len;
    a->seq = br->seq;
    a->rule = br->rule;
    a->shadow = br->shadow;
    a->snoozed = br->snoozed;
    return true;
}

/* ---- checkpoints -------------------------------------------------------- */

#define CHECKPOINT_MAGIC UINT64_C(0x31544e5057465746) /* "FWFWPNT1" */

static bool idle(const fw_pipeline *p)
{
    return p->next_fill == p->next_retire;
}

/* Why a write failed, in the words of the system ("No space left on
 * device"): the operator's next step depends on it.  The caller names the
 * file. */
static void write_error(char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", errno ? strerror(errno) : "short write");
}

/* The same bytes as fw_pipeline_save() at the cut. */
int fw_snapshot_write(const fw_snapshot *s, FILE *f, char *err, size_t errlen)
{
    if (!fw_snapshot_complete(s)) {
        snprintf(err, errlen, "the snapshot is not complete");
        return -1;
    }
    if (fw_put_u64(f, CHECKPOINT_MAGIC) || fw_put_u64(f, (uint64_t)s->clock))
        goto bad;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->part[i].buf.len && fwrite_unlocked(s->part[i].buf.p, 1, s->part[i].buf.len,
                                                  f) != s->part[i].buf.len)
            goto bad;
    if (fw_put_u64(f, CHECKPOINT_MAGIC) || fflush(f) != 0)
        goto bad;
    return 0;
bad:
    write_error(err, errlen);
    return -1;
}

int fw_pipeline_save(fw_pipeline *p, FILE *f, char *err, size_t errlen)
{
    if (!idle(p)) {
        snprintf(err, errlen, "checkpoint requested with batches in flight");
        return -1;
    }
    /* Every worker has finished every batch (they were retired), so their
     * state is quiet and visible here through the batches' DONE stage. */
    if (fw_put_u64(f, CHECKPOINT_MAGIC) ||
        fw_put_u64(f, (uint64_t)fw_sclock_now(&p->workers[0].clock)))
        goto bad;
    fw_buf shard = { 0 };
    for (uint32_t i = 0; i < p->o.workers; i++) {
        shard.len = 0;
        fw_state_save(p->workers[i].state, &shard);
        if (shard.len && fwrite_unlocked(shard.p, 1, shard.len, f) != shard.len) {
            int e = errno;
            fw_buf_free(&shard);
            errno = e;
            goto bad;
        }
    }
    fw_buf_free(&shard);
    if (fw_put_u64(f, CHECKPOINT_MAGIC) || fflush(f) != 0)
        goto bad;
    return 0;
bad:
    write_error(err, errlen);
    return -1;
}

static fw_state *place_item(void *ctx, uint64_t khash)
{
    fw_pipeline *p = ctx;
    return p->workers[fw_shard_of(khash, p->o.workers)].state;
}

int fw_pipeline_load(fw_pipeline *p, FILE *f, char *err, size_t errlen)
{
    uint64_t magic, clock;
    if (!idle(p)) {
        snprintf(err, errlen, "checkpoint load with batches in flight");
        return -1;
    }
    if (fw_get_u64(f, &magic) || magic != CHECKPOINT_MAGIC ||
        fw_get_u64(f, &clock)) {
        snprintf(err, errlen, "not a fraudwatch checkpoint");
        return -1;
    }
    /* The saved shards may have been more or fewer: every item goes to the
     * worker that owns its key now. */
    for (;;) {
        long at = ftell(f);
        if (fw_get_u64(f, &magic) == 0 && magic == CHECKPOINT_MAGIC)
            break;
        if (fseek(f, at, SEEK_SET) != 0 ||
            fw_state_load(f, place_item, p, err, errlen) != 0)
            return -1;
    }
    /* The saved clock is not trusted: a checkpoint written before the
     * clock was robust may hold one dragged into the future by a single
     * event, and restoring it would sweep every key again.  The clock
     * restarts from the events that follow (until then nothing is swept,
     * which keeps state longer, never shorter). */
    (void)clock;
    return 0;
}

uint64_t fw_pipeline_sweep_visits(fw_pipeline *p)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < p->o.workers; i++)
        n += fw_state_gc_visits(p->workers[i].state);
    return n;
}

size_t fw_pipeline_keys(fw_pipeline *p)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->o.workers; i++)
        n += fw_state_keys(p->workers[i].state);
    return n;
}
