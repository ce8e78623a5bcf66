/* cli_compare.c — the command line of `fraudwatch replay --compare OLD_DIR
 * NEW_DIR [FILE]` (the work is compare.c's).
 *
 * Its own file so that replay's option parsing in main.c stays replay's:
 * cmd_replay hands the whole argument vector over when it holds
 * "--compare".  The engine options mean exactly what they mean for plain
 * replay (same names, ranges and defaults, from pipeline.h) and apply to
 * both rule sets; --threads is per rule set.  The options that only make
 * sense here (--json, --truth, --examples) are refused without --compare
 * by replay itself, since it does not know them. */
#include "cli_compare.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_engine_opts.h"
#include "fraudwatch/text.h"
#include "fraudwatch/compare.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"

bool fw_cli_is_compare(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--compare") == 0)
            return true;
    }
    return false;
}

int fw_cli_replay_compare(int argc, char **argv, const char *usage)
{
    enum { OPT_COMPARE = FW_CLI_OPT_OWN, OPT_JSON, OPT_TRUTH, OPT_EXAMPLES };
    static const struct option opts[] = {
        { "compare", no_argument, NULL, OPT_COMPARE },
        { "json", no_argument, NULL, OPT_JSON },
        { "truth", required_argument, NULL, OPT_TRUTH },
        { "examples", required_argument, NULL, OPT_EXAMPLES },
        { "rules", required_argument, NULL, 'r' },
        FW_CLI_ENGINE_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char me[] = "fraudwatch replay --compare";
    fw_compare_opts o = { .examples = FW_COMPARE_DEFAULT_EXAMPLES,
                          .out = stdout,
                          .log = stderr };
    fw_cli_engine e = fw_cli_engine_defaults();
    unsigned long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:t:h", opts, NULL)) != -1) {
        int rc = fw_cli_engine_opt(&e, c, optarg, me);
        if (rc >= 0) {
            if (rc)
                return rc;
            continue;
        }
        switch (c) {
        case OPT_COMPARE:
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_TRUTH:
            o.truth = optarg;
            break;
        case OPT_EXAMPLES:
            if (fw_parse_u64(optarg, 0, FW_COMPARE_MAX_EXAMPLES, &v) != 0) {
                fprintf(stderr, "%s: --examples must be 0..%u, not '%s'\n", me,
                        FW_COMPARE_MAX_EXAMPLES, optarg);
                return 2;
            }
            o.examples = (uint32_t)v;
            break;
        case 'r':
            fprintf(stderr, "%s: takes the two rules directories as OLD_DIR NEW_DIR, "
                            "not --rules\n", me);
            return 2;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    o.threads = e.threads;
    o.max_event_bytes = e.max_event_bytes;
    o.lateness_ms = e.lateness_ms;
    o.max_keys = e.max_keys;
    o.max_reported = e.max_reported;
    int npos = argc - optind;
    if (npos < 2 || npos > 3) {
        fprintf(stderr, "%s: needs OLD_DIR NEW_DIR and at most one input file, "
                        "got %d argument%s\n", me, npos, npos == 1 ? "" : "s");
        fputs(usage, stderr);
        return 2;
    }
    o.before_dir = argv[optind];
    o.after_dir = argv[optind + 1];
    o.input = npos == 3 ? argv[optind + 2] : "-";

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    static char err[32768];
    if (fw_compare_run(&o, err, sizeof err) != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: %s\n", me, err);
        return 1;
    }
    return 0;
}
