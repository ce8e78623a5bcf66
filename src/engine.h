/* engine.h — the two halves of one event's trip through a rule set.
 *
 *   scan  (any worker, stage 1): event → matched rules → updates, each an
 *         instruction "apply this to the state of (rule, key)", binned by
 *         the shard that owns that key;
 *   apply (the owning worker, stage 2): update → window / sequence /
 *         suppression state → alerts.
 *
 * Splitting here is what lets parsing and matching run on every core while
 * each key's state has exactly one owner and sees its events in input order
 * (see pipeline.c). */
#ifndef FRAUDWATCH_ENGINE_H
#define FRAUDWATCH_ENGINE_H

#include <stdio.h>
#include <string.h>

#include "fraudwatch/arena.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/event.h"
#include "ruleset_impl.h"

__extension__ typedef __int128 fw_i128;
__extension__ typedef unsigned __int128 fw_u128;

#define FW_TS_NONE INT64_MIN

enum fw_vkind { FW_V_NONE, FW_V_MICRO, FW_V_TEXT };

typedef struct fw_update {
    uint32_t seq;            /* event's index in its batch */
    uint32_t rule;           /* index in the rule set */
    uint32_t step;           /* sequence step, 0-based */
    uint32_t klen;
    uint64_t khash;          /* hash of key, seeded with the rule's state_sig */
    int64_t ts;
    const char *key;         /* subject / group key (batch arena) */
    const char *event_id;    /* batch arena */
    uint32_t event_id_len;
    uint8_t vkind;
    uint32_t vlen;
    int64_t micro;           /* sum: the value in millionths */
    const char *vtext;       /* distinct: the value as text */
    const char *evidence;    /* plain rules: JSON array of matched conditions */
} fw_update;

typedef struct fw_updvec {
    fw_update *v;
    size_t n, cap;
} fw_updvec;

/* ---- stage 1 ---- */
typedef struct fw_scanner fw_scanner;
fw_scanner *fw_scanner_new(void);
void fw_scanner_free(fw_scanner *s);
uint64_t fw_scanner_faults(const fw_scanner *s);

/* Appends the event's updates to out[shard], shard = fw_shard_of(khash, n). */
void fw_engine_scan(fw_scanner *s, const fw_ruleset *rs, const fw_event *ev,
                    uint32_t seq, fw_arena *arena, fw_updvec *out,
                    uint32_t nshards);

static inline uint32_t fw_shard_of(uint64_t khash, uint32_t nshards)
{
    return (uint32_t)(((khash >> 32) * nshards) >> 32);
}

/* ---- stage 2 ---- */
typedef struct fw_state fw_state;

/* Where apply puts alerts: one JSON line each, tagged with (seq, rule). */
typedef struct fw_alert_ref {
    uint32_t seq;
    uint32_t rule;
    size_t off;              /* the JSON line in text */
    size_t len;
    size_t subject_off;      /* the raw subject (the Kafka message key) */
    size_t subject_len;
} fw_alert_ref;

typedef struct fw_alert_out {
    fw_buf text;
    fw_alert_ref *refs;
    size_t n, cap;
} fw_alert_out;

fw_state *fw_state_new(void);
void fw_state_free(fw_state *st);
void fw_state_apply(fw_state *st, const fw_ruleset *rs, const fw_update *u,
                    fw_alert_out *out);
/* Drops the state of keys idle for longer than their window (or
 * suppression) plus `lateness_ms`, judged by the stream clock `clock`. */
void fw_state_gc(fw_state *st, int64_t clock, int64_t lateness_ms);
size_t fw_state_keys(const fw_state *st);

/* Checkpoints (snapshot.c): every item, in a portable binary form,
 * appended to `out` (out of memory aborts, like every fw_buf). */
void fw_state_save(const fw_state *st, fw_buf *out);
/* The same, without stopping the shard: begin lists the items at the cut
 * and writes their count (returned); each step encodes up to max_items of
 * them, true once all are in `out`.  Between steps the shard goes on
 * applying updates — an item is encoded as it was at the cut before it
 * changes — and sweeps wait.  The same owner thread throughout. */
size_t fw_state_snap_begin(fw_state *st, fw_buf *out);
bool fw_state_snap_step(fw_state *st, size_t max_items);
/* Items of the last snapshot encoded early, because they were changing. */
size_t fw_state_snap_early(const fw_state *st);
/* Reads items saved by fw_state_save and hands each to `place`, which
 * returns the state that must own it (resharding by the item's hash). */
int fw_state_load(FILE *f, fw_state *(*place)(void *ctx, uint64_t khash),
                  void *ctx, char *err, size_t errlen);

/* ---- window.c / sequence.c, used by their rule kinds (kind_*.c) ---- */
typedef struct fw_window fw_window;
void fw_window_free(fw_window *w);
/* Applies a counted event to the key's window.  *m is the key's high-water
 * mark.  Returns false when the event is expired (skipped); else sets the
 * aggregate over (m − W, t] into *agg (count, distinct) or *micro (sum). */
bool fw_window_apply(fw_window **w, const fw_rule *r, int64_t *m,
                     const fw_update *u, double *agg, fw_i128 *micro);

typedef struct fw_seqstate fw_seqstate;
void fw_seqstate_free(fw_seqstate *s);
/* Applies a matched step.  Returns true when the rule fires on this event;
 * then `evidence` holds the chain as a JSON array. */
bool fw_sequence_apply(fw_seqstate **s, const fw_rule *r, int64_t *m,
                       const fw_update *u, fw_buf *evidence);

/* ---- checkpoint encoding (snapshot.c) ----
 * Saving appends to a memory buffer (fw_enc_*: a bounds check and a store
 * per field, so a large state is encoded at memory speed); the same bytes
 * are read back from a FILE (fw_get_*).  fw_put_* write the daemon's small
 * file header. */
static inline void fw_enc_u64(fw_buf *b, uint64_t v)
{
    if (b->cap - b->len < 9)
        fw_buf_reserve(b, 8);
    unsigned char *q = (unsigned char *)b->p + b->len;
    for (int i = 0; i < 8; i++)
        q[i] = (unsigned char)(v >> (8 * i));
    b->len += 8;
}
static inline void fw_enc_bytes(fw_buf *b, const void *p, uint32_t n)
{
    fw_enc_u64(b, n);
    if (b->cap - b->len < (size_t)n + 1)
        fw_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
int fw_put_u64(FILE *f, uint64_t v);
int fw_put_bytes(FILE *f, const void *p, uint32_t n);   /* length-prefixed */
int fw_get_u64(FILE *f, uint64_t *v);
/* Length-prefixed bytes into a malloc'd NUL-terminated buffer. */
int fw_get_bytes(FILE *f, char **p, uint32_t *n, uint32_t max);
void fw_window_save(const fw_window *w, fw_buf *out);
int fw_window_load(fw_window **w, FILE *f);
void fw_seqstate_save(const fw_seqstate *s, fw_buf *out);
int fw_seqstate_load(fw_seqstate **s, FILE *f);

/* ---- checkpoint files (snapshot.c) ----
 * One writer thread per file.  IDLE --start--> WRITING --> WRITTEN (path.tmp
 * durable) --publish--> PUBLISHING --> DONE (renamed over path, directory
 * fsync'd); FAILED from either step (path.tmp removed; path untouched).
 * DONE and FAILED stay until reset.  Any one owner thread drives it. */
enum fw_ckpt_state {
    FW_CKPT_IDLE,
    FW_CKPT_WRITING,
    FW_CKPT_WRITTEN,
    FW_CKPT_PUBLISHING,
    FW_CKPT_DONE,
    FW_CKPT_FAILED,
};
typedef struct fw_ckpt_writer fw_ckpt_writer;
/* Writes the whole file body on the writer thread; 0 or -1 with err. */
typedef int (*fw_ckpt_fill_fn)(void *ctx, FILE *f, char *err, size_t errlen);
fw_ckpt_writer *fw_ckpt_writer_new(const char *dir, const char *name);
/* Waits for a step in progress; a written, unpublished file is removed. */
void fw_ckpt_writer_free(fw_ckpt_writer *w);
/* IDLE → WRITING; -1 when not idle.  `ctx` must stay valid until the
 * state has left WRITING. */
int fw_ckpt_writer_start(fw_ckpt_writer *w, fw_ckpt_fill_fn fill, void *ctx);
/* Asks for WRITTEN → PUBLISHING → DONE (at once if already WRITTEN). */
void fw_ckpt_writer_publish(fw_ckpt_writer *w);
/* The state now, without waiting or locking; err filled when FAILED. */
enum fw_ckpt_state fw_ckpt_writer_state(fw_ckpt_writer *w, char *err, size_t errlen);
/* Waits until no step is in progress or asked for; the state then. */
enum fw_ckpt_state fw_ckpt_writer_wait(fw_ckpt_writer *w, char *err, size_t errlen);
/* Back to IDLE after DONE or FAILED, or drops a WRITTEN file unpublished
 * (waits for a step in progress first). */
void fw_ckpt_writer_reset(fw_ckpt_writer *w);
/* Durations of the last write (fill + fsync) and publish (rename + fsync). */
double fw_ckpt_writer_write_seconds(const fw_ckpt_writer *w);
double fw_ckpt_writer_publish_seconds(const fw_ckpt_writer *w);

/* ---- alert.c ---- */
void fw_alert_render(fw_buf *out, const fw_rule *r, uint64_t version,
                     const char *subject, size_t slen, const fw_update *u,
                     const char *evidence, size_t evlen);
/* 32 hex digits + NUL: deterministic in (rule_id, subject, event_id). */
void fw_alert_id(const char *rule_id, const char *subject, size_t slen,
                 const char *event_id, size_t idlen, char out[33]);
void fw_micro_text(fw_buf *out, fw_i128 micro);

#endif
