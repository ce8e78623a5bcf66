/* source_file.h — JSONL lines as a driver source (source_file.c). */
#ifndef FRAUDWATCH_SOURCE_FILE_H
#define FRAUDWATCH_SOURCE_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/driver.h"

typedef struct fw_file_source fw_file_source;

/* path NULL or "-": stdin.  Lines longer than max_event_bytes are handed
 * over as "" with their length. */
fw_file_source *fw_file_source_open(const char *path, size_t max_event_bytes, char *err,
                                    size_t errlen);
void fw_file_source_close(fw_file_source *fs);
uint64_t fw_file_source_lines(const fw_file_source *fs);   /* read so far */
uint64_t fw_file_source_events(const fw_file_source *fs);  /* non-blank lines */

extern const fw_source_ops fw_file_source_ops;

#endif
