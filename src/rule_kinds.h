/* rule_kinds.h — the table of rule kinds (plain, threshold, sequence) and
 * what the loader, the scanner and the state store offer a kind.
 *
 * A kind is one row: how its members are parsed, what an event that
 * matched one of its steps contributes (the key, a value), what applying
 * that contribution to the key's state does (and when it fires), how long
 * the key's state matters, and how its own per-key state is saved, loaded
 * and freed.  The loader (rules_load.c), the index (ruleset.c), the scanner
 * (engine.c), the state store and its checkpoints (state.c) walk the table
 * and never name a kind.  A new kind is a new kind_*.c file and a row in
 * rule_kinds.c (docs/hacking.md). */
#ifndef FRAUDWATCH_RULE_KINDS_H
#define FRAUDWATCH_RULE_KINDS_H

#include <stdio.h>

#include "alert.h"
#include "engine.h"
#include "sequence.h"
#include "state.h"
#include "window.h"
#include "match.h"
#include "rules_parse.h"

/* What an event brings to a kind's scan: the event and its tree, the
 * scanner's matcher (for evidence), the batch arena (for text that must
 * outlive the event), the key being built (empty on entry) and a scratch
 * buffer. */
typedef struct fw_scan_ctx {
    const fw_event *ev;
    fw_matcher *matcher;
    fw_arena *arena;
    fw_buf *key;
    fw_buf *scratch;
} fw_scan_ctx;

/* What state.c keeps for one (rule, key): the kind reads and writes it. */
typedef struct fw_keystate {
    int64_t m;               /* high-water mark of the key's counted events */
    int64_t last_fire;       /* FW_TS_NONE: never fired */
    int32_t life_ms;         /* how long past m the key's state matters */
    int32_t suppress_ms;     /* (both ≤ 604 800 000: FW_WINDOW_MAX_S) */
    void *data;              /* the kind's own (a window, chains), or NULL */
} fw_keystate;

typedef struct fw_rule_kind_ops {
    const char *name;
    /* Its code is hashed into every state signature: never renumber. */
    enum fw_rule_kind code;
    /* The rule member that makes a rule this kind; NULL for the kind a
     * rule is when it names none of the others (plain). */
    const char *selector;
    /* The rule's "subject" member names its key (so it is part of the
     * rule's state signature). */
    bool subject_is_key;

    /* Loader: every member that is this kind's business (event, where,
     * threshold, sequence, within_s, ...), the steps (r->steps, one or
     * more), and the default suppression.  Reports and goes on. */
    void (*parse)(fw_loader *L, const cJSON *obj, fw_rule *r);
    /* Scanner: the event matched step `step`'s conditions.  Appends the key
     * to cx->key and sets what the update carries; false: it does not
     * count (a key or value field missing or of the wrong type). */
    bool (*scan)(fw_scan_ctx *cx, const fw_rule *r, uint32_t step, fw_update *u);
    /* State: the update against the key's state (fw_state_key); alerts
     * through fw_state_emit. */
    void (*apply)(fw_state *st, const fw_ruleset *rs, const fw_rule *r,
                  const fw_update *u, fw_alert_out *out);
    /* How long past its high-water mark a key's state matters. */
    int64_t (*lifetime)(const fw_rule *r);
    /* `fraudwatch rules check -v`: the kind's part of a rule's line. */
    void (*describe)(const fw_rule *r, FILE *out);

    /* The kind's own per-key state (fw_keystate.data), if it has one: a
     * bit of the checkpoint item's flags (fixed: it is in checkpoints on
     * disk), save, load (0 or -1; `flag` says which encoding), free.
     * ckpt_flag_old: the flag of an earlier encoding the kind still reads
     * (0: none); a flag is never reused for another encoding. */
    uint64_t ckpt_flag;
    uint64_t ckpt_flag_old;
    void (*data_save)(const void *data, fw_buf *out);
    int (*data_load)(void **data, FILE *f, uint64_t flag);
    void (*data_free)(void *data);
} fw_rule_kind_ops;

/* Indexed by code (FW_RULE_PLAIN, FW_RULE_THRESHOLD, FW_RULE_SEQUENCE). */
extern const fw_rule_kind_ops *const fw_rule_kinds[FW_RULE_NKINDS];

static inline const fw_rule_kind_ops *fw_rule_kind(const fw_rule *r)
{
    return fw_rule_kinds[r->kind];
}

/* The rows (kind_plain.c, kind_threshold.c, kind_sequence.c). */
extern const fw_rule_kind_ops fw_kind_plain, fw_kind_threshold, fw_kind_sequence;

/* ---- for the kinds: the loader (rules_load.c) ---- */
/* An integer member in [lo, hi]; *out untouched when absent. */
bool fw_lx_int(fw_loader *L, const cJSON *obj, const char *name, const char *place,
               int64_t lo, int64_t hi, int64_t *out);
/* Unknown or repeated members of `obj` (allowed: NULL-terminated). */
bool fw_lx_members(fw_loader *L, const cJSON *obj, const char *place,
                   const char *const *allowed);
/* "event" and "where" of a rule with one step (plain, threshold). */
void fw_lx_one_step(fw_loader *L, const cJSON *obj, fw_rule *r);
char *fw_lx_strdup(const char *s);
void *fw_lx_calloc(size_t n, size_t size);

/* ---- for the kinds: the scanner (engine.c) ---- */
/* Appends the text of the field at `p` (SPEC §2 "numbers as text");
 * false when missing or neither a string nor a number. */
bool fw_scan_key_part(fw_buf *key, const cJSON *root, const fw_path *p);

/* ---- for the kinds: the state store (state.c) ---- */
/* The key's state for this rule, created on first use (life and
 * suppression set from the rule). */
fw_keystate *fw_state_key(fw_state *st, const fw_rule *r, const fw_update *u);
/* Suppression (SPEC §2): after firing at t_a, nothing for ts < t_a + s.
 * Call it only once the rule would fire: a true answer is counted as a
 * suppressed alert of the rule being applied (state.c). */
bool fw_keystate_suppressed(const fw_keystate *k, int64_t suppress_ms, int64_t t);
/* An alert of `r` on the update's event, with this evidence (JSON). */
void fw_state_emit(fw_alert_out *out, const fw_rule *r, uint64_t version,
                   const fw_update *u, const char *evidence, size_t len);
/* A buffer the kinds may use for evidence while applying. */
fw_buf *fw_state_scratch(fw_state *st);
/* The update with what the alert shows of its event (u->fields), read
 * now from the event's message: u itself when it has them already, else
 * `tmp`, valid until the next call. */
const fw_update *fw_state_fields(fw_state *st, const fw_rule *r, const fw_update *u,
                                 fw_update *tmp);

#endif
