/* cli_engine_opts.c — parses the engine options `replay` and `replay
 * --compare` share (cli_engine_opts.h says why they are parsed in one
 * place). */
#include "cli_engine_opts.h"

#include <stdio.h>

#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/text.h"

fw_cli_engine fw_cli_engine_defaults(void)
{
    return (fw_cli_engine){ .threads = 1,
                            .max_event_bytes = FW_DEFAULT_MAX_EVENT_BYTES,
                            .lateness_ms = FW_DEFAULT_LATENESS_MS,
                            .max_keys = FW_DEFAULT_MAX_KEYS,
                            .max_reported = 100 };
}

int fw_cli_engine_opt(fw_cli_engine *e, int opt, const char *arg, const char *me)
{
    unsigned long long v;
    switch (opt) {
    case 't':
        if (fw_parse_u64(arg, 1, FW_MAX_WORKERS, &v) != 0) {
            fprintf(stderr, "%s: --threads must be 1..%d, not '%s'\n", me, FW_MAX_WORKERS, arg);
            return 2;
        }
        e->threads = (uint32_t)v;
        return 0;
    case FW_CLI_OPT_MAX_BYTES:
        if (fw_parse_u64(arg, FW_MIN_MAX_EVENT_BYTES, FW_MAX_MAX_EVENT_BYTES, &v) != 0) {
            fprintf(stderr, "%s: --max-event-bytes must be %u..%u, not '%s'\n", me,
                    FW_MIN_MAX_EVENT_BYTES, FW_MAX_MAX_EVENT_BYTES, arg);
            return 2;
        }
        e->max_event_bytes = (size_t)v;
        return 0;
    case FW_CLI_OPT_LATENESS:
        if (fw_parse_u64(arg, FW_MIN_LATENESS_S, FW_MAX_LATENESS_S, &v) != 0) {
            fprintf(stderr, "%s: --lateness must be %d..%d seconds, not '%s'\n", me,
                    FW_MIN_LATENESS_S, FW_MAX_LATENESS_S, arg);
            return 2;
        }
        e->lateness_ms = (int64_t)v * 1000;
        return 0;
    case FW_CLI_OPT_MAX_KEYS:
        if (fw_parse_u64(arg, FW_MIN_MAX_KEYS, FW_MAX_MAX_KEYS, &v) != 0) {
            fprintf(stderr, "%s: --max-keys must be %u..%u, not '%s'\n", me, FW_MIN_MAX_KEYS,
                    FW_MAX_MAX_KEYS, arg);
            return 2;
        }
        e->max_keys = v;
        return 0;
    case FW_CLI_OPT_MAX_REPORTED:
        if (fw_parse_u64(arg, 0, UINT32_MAX, &v) != 0) {
            fprintf(stderr, "%s: --max-reported must be a count, not '%s'\n", me, arg);
            return 2;
        }
        e->max_reported = (uint32_t)v;
        return 0;
    case FW_CLI_OPT_MAX_REGEXES:
        if (fw_parse_u64(arg, 1, 1000000, &v) != 0) {
            fprintf(stderr, "%s: --max-regex-per-event must be 1..1000000, not '%s'\n", me,
                    arg);
            return 2;
        }
        fw_ruleset_set_max_regexes((uint32_t)v);
        return 0;
    default:
        return -1;
    }
}
