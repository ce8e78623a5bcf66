/* rule_stats.h — per-rule counts, summed batch by batch on the driver's
 * thread, and their metrics (rule_stats.c). */
#ifndef FRAUDWATCH_RULE_STATS_H
#define FRAUDWATCH_RULE_STATS_H

#include "fraudwatch/driver.h"

typedef struct fw_rulestats fw_rulestats;

/* m: where the counts are also published (NULL: nowhere). */
fw_rulestats *fw_rulestats_new(fw_metrics *m);
void fw_rulestats_free(fw_rulestats *t);
/* Adds a retired batch's counts (fw_batch_rule_counts). */
void fw_rulestats_add(fw_rulestats *t, const fw_batch *b);
size_t fw_rulestats_count(const fw_rulestats *t);
const fw_rule_tally *fw_rulestats_at(const fw_rulestats *t, size_t i);

#endif
