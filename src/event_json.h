/* event_json.h — the event parser behind fw_event_parse() (event_json.c):
 * the tree cJSON_ParseWithLengthOpts(data, len, &end, 0) would build, for
 * exactly the inputs it accepts, built several times faster. */
#ifndef FRAUDWATCH_EVENT_JSON_H
#define FRAUDWATCH_EVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "fraudwatch/arena.h"

/* Parses one JSON value from data[0..len).  Returns the root, or NULL when
 * cJSON would refuse the text.  *end (if given) receives the first byte
 * after the value.  With `arena` every node and string comes from it (the
 * tree dies with the arena's reset); without, from malloc, released by
 * cJSON_Delete while no thread arena is set (fw_event_use_arena).  On
 * success *utf8 (if given) says whether data[0 .. *end) is valid UTF-8
 * (every string was checked); on failure it is false and says nothing. */
cJSON *fw_json_parse(const char *data, size_t len, fw_arena *arena, const char **end,
                     bool *utf8);

#endif
