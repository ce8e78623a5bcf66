/* source_memory.h — messages from memory as a driver source
 * (source_memory.c): the test harness, the hostile suite, the fuzz target. */
#ifndef FRAUDWATCH_SOURCE_MEMORY_H
#define FRAUDWATCH_SOURCE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/driver.h"

typedef struct fw_mem_source fw_mem_source;

fw_mem_source *fw_mem_source_new(void);
void fw_mem_source_free(fw_mem_source *s);
/* One message (the bytes are the caller's and must outlive the run) with
 * its offset (a line number, an index). */
void fw_mem_source_add(fw_mem_source *s, const char *data, size_t len, int64_t offset);
/* The non-empty lines of `text` numbered from 1, those with numbers in
 * [from, to). */
void fw_mem_source_add_lines(fw_mem_source *s, const char *text, uint64_t from, uint64_t to);

extern const fw_source_ops fw_mem_source_ops;

#endif
