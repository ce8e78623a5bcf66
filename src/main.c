/* main.c — the `fraudwatch` command: argument parsing and subcommands.
 *
 * Owns nothing but the command line: each subcommand parses its options,
 * calls one module (replay.c, rules_load.c) and turns its result into an
 * exit status — 0 success, 1 a failure of the work (a refused rule set, an
 * unreadable file), 2 a usage error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FW_HAVE_DAEMON
#include "fraudwatch/config.h"
#include "fraudwatch/daemon.h"
#endif
#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/replay.h"
#include "fraudwatch/ruleset.h"

#ifndef FW_VERSION
#define FW_VERSION "0.0.0"
#endif

static const char usage_main[] =
    "usage: fraudwatch <command> [options]\n"
    "\n"
    "Telecom-fraud early warning: matches call / SMS / transfer events against\n"
    "regex, watchlist, windowed-threshold and sequence rules, and emits alerts.\n"
    "\n"
    "commands:\n"
    "  replay --rules DIR [--threads N] [FILE|-]\n"
    "                      run the engine over a JSONL file (or stdin); alerts as\n"
    "                      JSONL on stdout, malformed lines and a summary on stderr\n"
    "  rules check DIR     validate a rules directory and print what it holds\n"
#ifdef FW_HAVE_DAEMON
    "  run -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "                      the streaming daemon: events from Kafka, alerts to Kafka\n"
#endif
    "\n"
    "options:\n"
    "  -h, --help          this help (or: fraudwatch <command> --help)\n"
    "  -V, --version       print the version\n"
    "\n"
    "Rule language, alert format and semantics: docs/rules.md, docs/alerts.md.\n";

static const char usage_replay[] =
    "usage: fraudwatch replay --rules DIR [options] [FILE|-]\n"
    "\n"
    "Reads events (one JSON object per line) from FILE, or stdin when FILE is\n"
    "'-' or absent, matches them against the rules in DIR (every *.json plus\n"
    "NAME.list watchlists) and writes one alert per line to stdout, in input\n"
    "order.  Malformed lines are reported on stderr with their line number and\n"
    "skipped; a summary (events, malformed, alerts per rule, events/s) follows.\n"
    "\n"
    "options:\n"
    "  -r, --rules DIR          rules directory (required)\n"
    "  -t, --threads N          worker threads, 1..64 (default 1); the alerts do\n"
    "                           not depend on N\n"
    "      --max-event-bytes N  larger events are malformed (default 1048576)\n"
    "      --lateness S         seconds that idle key state is kept beyond its\n"
    "                           window for late events (default 86400)\n"
    "      --max-reported N     malformed lines printed one by one (default 100)\n"
    "  -h, --help               this help\n"
    "\n"
    "exit status: 0 done, 1 rules refused or input unreadable, 2 usage error\n";

static const char usage_rules[] =
    "usage: fraudwatch rules check DIR\n"
    "\n"
    "Validates the rules directory DIR exactly as replay and the daemon load it\n"
    "and prints the watchlists and rules it holds.  On error, prints every\n"
    "problem found (file, rule id, member, reason) and exits 1.\n";

#ifdef FW_HAVE_DAEMON
static const char usage_run[] =
    "usage: fraudwatch run -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "\n"
    "Consumes events from the input topic(s) in a consumer group, matches them\n"
    "with the rules of rules.source, produces alerts (key = subject) to the alert\n"
    "topic and malformed events to the dead-letter topic.  Input offsets are\n"
    "committed with a checkpoint of the window state, only after the broker has\n"
    "acknowledged every alert up to them.  SIGTERM or SIGINT: finish in-flight\n"
    "events, checkpoint, exit 0 (a second signal cuts the wait short).\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        the configuration (see config/fraudwatch.conf)\n"
    "  -s, --set KEY=VALUE      override one setting (repeatable; after the file)\n"
    "      --check-config       validate, print the effective settings (secrets\n"
    "                           masked) and exit\n"
    "  -h, --help               this help\n"
    "\n"
    "exit status: 0 clean stop, 1 configuration / startup / shutdown failure,\n"
    "2 usage error, 3 fatal Kafka error\n";

static int cmd_run(int argc, char **argv)
{
    enum { OPT_CHECK = 256 };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "set", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int nsets = 0;
    bool check = false;
    int c, rc = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case OPT_CHECK: check = true; break;
        case 'h':
            fputs(usage_run, stdout);
            free(sets);
            return 0;
        default:
            fputs(usage_run, stderr);
            free(sets);
            return 2;
        }
    }
    if (!file || optind != argc) {
        fputs(file ? "fraudwatch run: unexpected argument\n"
                   : "fraudwatch run: -c FILE is required\n", stderr);
        fputs(usage_run, stderr);
        free(sets);
        return 2;
    }
    char err[4096];
    fw_settings *s = fw_config_new();
    if (!s) {
        fputs("fraudwatch run: out of memory\n", stderr);
        free(sets);
        return 1;
    }
    rc = 1;
    if (fw_config_load_file(s, file, err, sizeof err) != 0)
        goto bad;
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            snprintf(err, sizeof err, "--set %s: expected KEY=VALUE", sets[i]);
            rc = 2;
            goto bad;
        }
        *eq = '\0';
        char origin[512];
        snprintf(origin, sizeof origin, "--set %s=%s", sets[i], eq + 1);
        if (fw_config_set(s, sets[i], eq + 1, origin, err, sizeof err) != 0)
            goto bad;
    }
    if (fw_config_validate(s, err, sizeof err) != 0)
        goto bad;
    if (check) {
        printf("%s: ok\n", file);
        fw_config_print(s, stdout);
        rc = 0;
    } else {
        rc = fw_daemon_run(s);
    }
    fw_config_free(s);
    free(sets);
    return rc;
bad:
    fprintf(stderr, "fraudwatch run: %s\n", err);
    fw_config_free(s);
    free(sets);
    return rc;
}
#endif

static int parse_u64(const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int cmd_replay(int argc, char **argv)
{
    enum { OPT_MAX_BYTES = 256, OPT_LATENESS, OPT_MAX_REPORTED };
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        { "threads", required_argument, NULL, 't' },
        { "max-event-bytes", required_argument, NULL, OPT_MAX_BYTES },
        { "lateness", required_argument, NULL, OPT_LATENESS },
        { "max-reported", required_argument, NULL, OPT_MAX_REPORTED },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    fw_replay_opts o = { .threads = 1,
                         .max_event_bytes = FW_DEFAULT_MAX_EVENT_BYTES,
                         .lateness_ms = FW_DEFAULT_LATENESS_MS,
                         .out = stdout,
                         .log = stderr,
                         .max_reported = 100 };
    unsigned long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.rules_dir = optarg;
            break;
        case 't':
            if (parse_u64(optarg, 1, FW_MAX_WORKERS, &v) != 0) {
                fprintf(stderr, "fraudwatch replay: --threads must be 1..%d, "
                                "not '%s'\n", FW_MAX_WORKERS, optarg);
                return 2;
            }
            o.threads = (uint32_t)v;
            break;
        case OPT_MAX_BYTES:
            if (parse_u64(optarg, 64, 1ull << 30, &v) != 0) {
                fprintf(stderr, "fraudwatch replay: --max-event-bytes must be "
                                "64..1073741824, not '%s'\n", optarg);
                return 2;
            }
            o.max_event_bytes = (size_t)v;
            break;
        case OPT_LATENESS:
            if (parse_u64(optarg, 1, 31536000, &v) != 0) {
                fprintf(stderr, "fraudwatch replay: --lateness must be "
                                "1..31536000 seconds, not '%s'\n", optarg);
                return 2;
            }
            o.lateness_ms = (int64_t)v * 1000;
            break;
        case OPT_MAX_REPORTED:
            if (parse_u64(optarg, 0, UINT32_MAX, &v) != 0) {
                fprintf(stderr, "fraudwatch replay: --max-reported must be a "
                                "count, not '%s'\n", optarg);
                return 2;
            }
            o.max_reported = (uint32_t)v;
            break;
        case 'h':
            fputs(usage_replay, stdout);
            return 0;
        default:
            fputs(usage_replay, stderr);
            return 2;
        }
    }
    if (!o.rules_dir) {
        fputs("fraudwatch replay: --rules DIR is required\n", stderr);
        fputs(usage_replay, stderr);
        return 2;
    }
    if (argc - optind > 1) {
        fputs("fraudwatch replay: at most one input file\n", stderr);
        return 2;
    }
    o.input = optind < argc ? argv[optind] : "-";

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    fw_replay_stats st;
    char err[8192];
    if (fw_replay_run(&o, &st, err, sizeof err) != 0) {
        fflush(stdout);
        fprintf(stderr, "fraudwatch replay: %s\n", err);
        return 1;
    }
    return 0;
}

static int cmd_rules(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_rules, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "fraudwatch rules: unknown subcommand '%s'\n", argv[1]);
        fputs(usage_rules, stderr);
        return 2;
    }
    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(usage_rules, stdout);
        return 0;
    }
    if (argc != 3) {
        fputs(usage_rules, stderr);
        return 2;
    }
    fw_ruleset *rs;
    char err[16384];
    if (fw_ruleset_load_dir(argv[2], 1, &rs, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch: rules in %s refused:\n%s\n", argv[2], err);
        return 1;
    }
    printf("%s: ok\n", argv[2]);
    fw_ruleset_describe(rs, stdout);
    fw_ruleset_unref(rs);
    return 0;
}

int main(int argc, char **argv)
{
    fw_event_init();
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("fraudwatch %s\n", FW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "rules") == 0)
        return cmd_rules(argc - 1, argv + 1);
#ifdef FW_HAVE_DAEMON
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
#endif
    fprintf(stderr, "fraudwatch: unknown command '%s'\n\n", cmd);
    fputs(usage_main, stderr);
    return 2;
}
