/* window.h — the per-key window of a threshold rule (window.c), used by
 * its rule kind (kind_threshold.c). */
#ifndef FRAUDWATCH_WINDOW_H
#define FRAUDWATCH_WINDOW_H

#include <stdbool.h>
#include <stdio.h>

#include "fraudwatch/buf.h"
#include "update.h"

typedef struct fw_window fw_window;
void fw_window_free(fw_window *w);
/* Applies a counted event to the key's window.  *m is the key's high-water
 * mark.  Returns false when the event is expired (skipped); else sets the
 * aggregate over (m − W, t] into *agg (count, distinct) or *micro (sum). */
bool fw_window_apply(fw_window **w, const fw_rule *r, int64_t *m,
                     const fw_update *u, double *agg, fw_i128 *micro);

/* What the aggregate of an event at t (just applied) counted, as members
 * of the evidence object: a distinct's values (the FW_DISTINCT_SHOWN_MAX
 * most recently seen, "values_cut" when there are more than shown; `total`
 * is the distinct count), a sum's number of events and largest
 * contributions (FW_SUM_SHOWN_MAX, event id and value; "largest_cut");
 * nothing for a count. */
#define FW_DISTINCT_SHOWN_MAX 20
#define FW_SUM_SHOWN_MAX 5
#define FW_EVIDENCE_VALUE_MAX 256
void fw_window_explain(fw_window *w, enum fw_agg agg, int64_t t, uint64_t total,
                       fw_buf *out);

/* Its checkpoint encoding (codec.h); load: 0 or -1.  with_agg: the
 * encoding that names the aggregate and keeps a sum's event ids. */
void fw_window_save(const fw_window *w, fw_buf *out);
int fw_window_load(fw_window **w, FILE *f, bool with_agg);

#endif
