/* sink_lines.h — alerts as JSON lines on a stream (sink_lines.c). */
#ifndef FRAUDWATCH_SINK_LINES_H
#define FRAUDWATCH_SINK_LINES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/driver.h"

typedef struct fw_lines_sink fw_lines_sink;

/* Alerts to `out`; malformed messages reported on `log` by their offset
 * ("line N", as a file source numbers them), the first max_reported one
 * by one.  nrules: the rule set's size, for the count per rule. */
fw_lines_sink *fw_lines_sink_new(FILE *out, FILE *log, uint32_t max_reported, size_t nrules);
void fw_lines_sink_free(fw_lines_sink *k);
/* Alerts of rule i so far; whether a write to `out` failed. */
uint64_t fw_lines_sink_rule_alerts(const fw_lines_sink *k, size_t i);
bool fw_lines_sink_write_failed(const fw_lines_sink *k);

extern const fw_sink_ops fw_lines_sink_ops;

#endif
