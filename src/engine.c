/* engine.c — stage 1: one parsed event against one rule set.
 *
 * Owns the decision "does this event count for this rule, and under which
 * key": the type index picks the candidate rules and steps, the step's
 * where-conditions are matched (match.c), and the rule's kind (its row in
 * rule_kinds.h) takes the key, the value and any evidence from the event
 * while its JSON tree is still alive.  What comes out is a list of small updates that
 * no longer need the event: the tree is thrown away right after, and the
 * updates travel to the shard that owns their key (state.c).
 *
 * Everything here reads the immutable rule set and writes only the batch's
 * arena and update vectors, so any number of workers can scan at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "engine.h"
#include "match.h"
#include "rule_kinds.h"

struct fw_scanner {
    fw_matcher *matcher;
    const uint64_t *faults;  /* the matcher's count of limit hits */
    fw_buf key;
    fw_buf evidence;
    uint32_t own_parts, own_part;   /* fw_scanner_set_owner; 0: every key */
};

void fw_scanner_set_owner(fw_scanner *s, uint32_t parts, uint32_t part)
{
    s->own_parts = parts;
    s->own_part = part;
}

fw_scanner *fw_scanner_new(void)
{
    fw_scanner *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->matcher = fw_matcher_new();
    if (!s->matcher) {
        free(s);
        return NULL;
    }
    s->faults = fw_matcher_faults_at(s->matcher);
    return s;
}

void fw_scanner_free(fw_scanner *s)
{
    if (!s)
        return;
    fw_matcher_free(s->matcher);
    fw_buf_free(&s->key);
    fw_buf_free(&s->evidence);
    free(s);
}

uint64_t fw_scanner_faults(const fw_scanner *s)
{
    return fw_matcher_faults(s->matcher);
}

bool fw_scan_key_part(fw_buf *key, const cJSON *root, const fw_path *p)
{
    char num[FW_NUMTEXT_MAX];
    const char *t;
    size_t len;
    if (!fw_value_text(fw_path_get(root, p), num, &t, &len))
        return false;
    fw_buf_put(key, t, len);
    return true;
}

static void push(fw_updvec *v, const fw_update *u)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->v = fw_xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = *u;
}

void fw_engine_scan(fw_scanner *s, const fw_ruleset *rs, const fw_event *ev,
                    uint32_t seq, fw_arena *arena, fw_updvec *out,
                    uint32_t nshards, uint32_t *counts)
{
    const fw_type_index *ix = fw_ruleset_targets(rs, ev->type);
    const char *event_id = NULL;   /* copied into the arena on first use */
    const cJSON *root = ev->root;

    fw_scan_ctx cx = { .ev = ev, .matcher = s->matcher, .arena = arena,
                       .key = &s->key, .scratch = &s->evidence };
    fw_matcher_set_event_ts(s->matcher, ev->ts);   /* watchlist expiries */
    fw_matcher_begin_event(s->matcher, root, rs);

    uint32_t counted = UINT32_MAX;   /* the rule last counted as matched */
    uint64_t faults = *s->faults;

    for (uint32_t i = 0; i < ix->ntargets; i++) {
        const fw_rule *r = &rs->rules[ix->targets[i].rule];
        uint32_t step = ix->targets[i].step;
        const fw_step *st = &r->steps[step];
        uint32_t rule = ix->targets[i].rule;
        bool held = fw_match_all(s->matcher, root, st->where, st->nwhere);
        /* limit hits of this rule's searches: one load, rarely a change */
        if (*s->faults != faults) {
            if (counts)
                counts[(size_t)rule * FW_RC_N + FW_RC_FAULTS] += (uint32_t)(*s->faults - faults);
            faults = *s->faults;
        }
        if (!held)
            continue;
        if (counts && rule != counted) {
            /* once per event and rule, even when it matches two steps */
            counts[(size_t)rule * FW_RC_N + FW_RC_MATCHED]++;
            counted = rule;
        }

        fw_update u = { .seq = seq, .rule = rule, .step = step, .ts = ev->ts };
        fw_buf *key = &s->key;
        key->len = 0;
        bool counts_for = fw_rule_kind(r)->scan(&cx, r, step, &u);
        if (*s->faults != faults) {   /* the kind's scan may search (plain evidence) */
            if (counts)
                counts[(size_t)rule * FW_RC_N + FW_RC_FAULTS] += (uint32_t)(*s->faults - faults);
            faults = *s->faults;
        }
        if (!counts_for)
            continue;   /* a key or value field missing: not counted */
        if (!event_id && !(event_id = fw_arena_strndup(arena, ev->event_id,
                                                       ev->event_id_len)))
            fw_oom();
        u.event_id = event_id;
        u.event_id_len = (uint32_t)ev->event_id_len;
        u.klen = (uint32_t)key->len;
        u.key = fw_arena_strndup(arena, key->len ? key->p : "", key->len);
        if (!u.key)
            fw_oom();
        /* What an alert would show of this event is read from its message
         * only if the rule fires or a chain keeps it (state.c): most
         * counted events never need it. */
        u.raw = ev->raw;
        u.raw_len = (uint32_t)ev->raw_len;
        u.khash = fw_hash64(u.key, u.klen, r->state_sig);
        if (s->own_parts && fw_part_of(u.khash, s->own_parts) != s->own_part)
            continue;   /* another repartition partition's key (scale.c) */
        push(&out[fw_shard_of(u.khash, nshards)], &u);
    }
    fw_matcher_end_event(s->matcher);
}
