/* main.c — the `fraudwatch` command: argument parsing and subcommands.
 *
 * Owns nothing but the command line: each subcommand parses its options,
 * calls one module (replay.c, rules_load.c, the Redis store's rstore_*.c)
 * and turns its result into an exit status — 0 success, 1 a failure of the
 * work (a refused rule set, an unreadable file, Redis unreachable), 2 a usage
 * error.  The `rules status` table is printed by cli_status.c.
 *
 * Secrets on the command line.  A password in `--redis URL` or in `--set
 * KEY=VALUE` is readable by every user of the machine in the process list
 * (ps, /proc/PID/cmdline).  It is still accepted, but the command warns
 * (naming the alternatives, never the password) and overwrites it in its
 * own argv with '*' at once, so it is visible only for the moment between
 * exec and option parsing.  The alternatives are --redis-password-file,
 * FRAUDWATCH_REDIS_PASSWORD and FRAUDWATCH_REDIS for the commands, and the
 * configuration file, rules.redis_password_file and "@file:PATH" values
 * for the daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FW_HAVE_DAEMON
#include "fraudwatch/text.h"
#include "fraudwatch/config.h"
#include "fraudwatch/daemon.h"
#endif
#ifdef FW_HAVE_CONSOLE
#include "console.h"
#endif
#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/replay.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/secret.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/timetext.h"
#include "cli_compare.h"
#include "cli_engine_opts.h"
#ifdef FW_HAVE_REDIS
#include "fraudwatch/rulestore.h"
#include "cli_history.h"
#endif

#ifdef FW_HAVE_REDIS
int fw_cli_snooze(int argc, char **argv);
#endif

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
    "  replay --rules DIR [--threads N] [--snoozes FILE] [FILE|-]\n"
    "                      run the engine over a JSONL file (or stdin); alerts as\n"
    "                      JSONL on stdout, malformed lines and a summary on stderr\n"
    "  rules check DIR [-v]\n"
    "                      validate a rules directory and print what it holds\n"
#ifdef FW_HAVE_REDIS
    "  rules push DIR --redis URL [-m MESSAGE] [--author NAME]\n"
    "                      validate DIR and publish it to Redis as a new version\n"
    "                      (recorded in the rule history)\n"
    "  rules history|show|diff|rollback ... --redis URL\n"
    "                      who pushed what and why, compare versions, roll back\n"
    "  rules pull --redis URL DIR [--force]\n"
    "                      write the active rule set and watchlists into DIR\n"
    "  rules status --redis URL\n"
    "                      active version, watchlists, and every live daemon\n"
    "  lists add NAME VALUE... [--until TIME | --ttl 7d] [--reason TEXT] [--by NAME]\n"
    "        --redis URL\n"
    "  lists remove NAME VALUE... --redis URL\n"
    "  lists load NAME FILE --redis URL\n"
    "                      change one watchlist in Redis (no rule push needed)\n"
    "  lists show NAME VALUE --redis URL\n"
    "                      one entry: until, reason, who added it and when\n"
    "  lists expire [NAME...] [--lateness 1d] --redis URL\n"
    "                      remove entries whose UNTIL passed more than the lateness ago\n"
    "  snooze add|list|remove|log ... --redis URL\n"
    "                      mute one rule (or *) for one subject until a time\n"
#endif
#ifdef FW_HAVE_DAEMON
    "  run -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "                      the streaming daemon: events from Kafka, alerts to Kafka\n"
    "  state init|status -c FILE\n"
    "                      checkpoints in Kafka, the active/standby daemons and\n"
    "                      the owners of the scale-out partitions\n"
#endif
#ifdef FW_HAVE_CONSOLE
    "  console -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "                      the anti-fraud centre's console: alerts into Redis, the\n"
    "                      page and API (docs/console.md); console user add|disable|\n"
    "                      passwd|list manages its users, console webhook set|\n"
    "                      remove|list the units' webhooks\n"
    "  routes load FILE --redis URL | routes list --redis URL\n"
    "                      the console's table routing alerts to units\n"
#endif
    "\n"
    "options:\n"
    "  -h, --help          this help (or: fraudwatch <command> --help)\n"
    "  -V, --version       print the version\n"
    "\n"
#ifdef FW_HAVE_REDIS
    "--redis URL is redis://[[user][:password]@]host[:port][/db]; without it the\n"
    "URL is read from the environment variable FRAUDWATCH_REDIS.  Give the\n"
    "password with --redis-password-file FILE or FRAUDWATCH_REDIS_PASSWORD rather\n"
    "than in --redis URL, where every user can read it in the process list.\n"
#endif
    "\n"
    "Rule language, alert format and semantics: docs/rules.md, docs/alerts.md;\n"
    "the rule store in Redis: docs/redis.md.\n";

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
    "      --max-keys N         key state budget: beyond it, the keys whose state\n"
    "                           ends first are evicted (default 10000000)\n"
    "      --max-regex-per-event N\n"
    "                           refuse rules whose events of some type would run\n"
    "                           more regex searches (default 1000)\n"
    "      --max-reported N     malformed lines printed one by one (default 100)\n"
    "      --snoozes FILE       snoozes, TSV: RULE<TAB>SUBJECT<TAB>UNTIL[<TAB>REASON]\n"
    "                           (RULE a rule id of DIR or *; UNTIL epoch ms or\n"
    "                           ISO 8601 with an offset; '#' comments).  A snoozed\n"
    "                           alert is printed flagged \"snoozed\": true; a bad\n"
    "                           line is refused with FILE:LINE (docs/rules.md)\n"
    "  -h, --help               this help\n"
    "\n"
    "A shadow rule's alerts (\"mode\": \"shadow\") are printed too, flagged\n"
    "\"shadow\": true.  The summary counts, per rule and mode: events that\n"
    "satisfied its conditions, alerts, suppressed, snoozed, shadow, regex limit hits.\n"
    "\n"
    "usage: fraudwatch replay --compare OLD_DIR NEW_DIR [options] [FILE|-]\n"
    "\n"
    "Backtest of a rule change (docs/backtest.md): runs the rules in OLD_DIR\n"
    "(before) and in NEW_DIR (after) over the same events in one pass, and\n"
    "prints per rule the alerts both sets give, only before and only after\n"
    "(matched by alert_id), with example alert lines of each; rules in one set\n"
    "only are reported as added or removed.  The report goes to stdout once\n"
    "the input has ended; malformed lines and a summary go to stderr.  Of the\n"
    "options above, --threads (per set), --max-event-bytes, --lateness,\n"
    "--max-keys, --max-regex-per-event and --max-reported apply to both sets;\n"
    "and:\n"
    "      --examples N         example alert lines per rule and category,\n"
    "                           0..1000 (default 3)\n"
    "      --json               the report as one JSON object (schema in\n"
    "                           docs/backtest.md)\n"
    "      --truth FILE         outcomes, one a line: ALERT_ID<TAB>LABEL or\n"
    "                           RULE_ID<TAB>SUBJECT<TAB>EVENT_ID<TAB>LABEL, LABEL\n"
    "                           fraud or not_fraud ('#' comments): adds\n"
    "                           precision and recall per rule for both sets\n"
    "\n"
    "exit status: 0 done, 1 rules or snoozes refused or input unreadable (compare:\n"
    "or the truth file refused), 2 usage error\n";

static const char usage_rules[] =
    "usage: fraudwatch rules check DIR [-v] [--max-regex-per-event N]\n"
#ifdef FW_HAVE_REDIS
    "       fraudwatch rules push DIR --redis URL [-m MESSAGE] [--author NAME]\n"
    "       fraudwatch rules pull --redis URL DIR [--force]\n"
    "       fraudwatch rules status --redis URL\n"
    "       fraudwatch rules history --redis URL [--limit N]\n"
    "       fraudwatch rules show VERSION --redis URL [--file NAME]\n"
    "       fraudwatch rules diff A B|VERSION DIR --redis URL\n"
    "       fraudwatch rules rollback VERSION --redis URL [-m MESSAGE]\n"
#endif
    "\n"
    "check   validates the rules directory DIR exactly as replay and the daemon\n"
    "        load it and prints the watchlists and rules it holds, and what an\n"
    "        event of each type costs (rules tried, conditions, regex searches).\n"
    "        On error, prints every problem found (file, rule id, member,\n"
    "        reason) and exits 1.  A set whose events of some type would run\n"
    "        more than --max-regex-per-event regex searches (default 1000, the\n"
    "        daemon's rules.max_regex_per_event) is refused as too costly.\n"
    "        -v also prints, per watchlist, the entries with an UNTIL, how many\n"
    "        of them are already past (by this machine's clock) and the next and\n"
    "        last UNTIL.\n"
#ifdef FW_HAVE_REDIS
    "push    validates DIR like check, then makes it the active set in Redis\n"
    "        (rules and watchlists, one atomic change, a new version number) and\n"
    "        notifies the daemons.  A refused set changes nothing.\n"
    "        Every push is recorded (version, time, author, message, file\n"
    "        hashes; a refused one with its reason).\n"
    "pull    writes the active set from Redis into DIR, as files.\n"
    "status  the active version, the watchlists and every live daemon.\n"
    "history the recorded pushes, rollbacks and refusals, newest first.\n"
    "show    one version's record and files (--file NAME: one file's contents).\n"
    "diff    rule by rule, between two kept versions or a version and DIR.\n"
    "rollback publishes a new version equal to a kept one.\n"
    "\n"
    "fraudwatch rules SUBCOMMAND --help for the options.\n"
#endif
    ;

#ifdef FW_HAVE_REDIS
#define REDIS_OPTIONS \
    "  -r, --redis URL          redis://[[user][:password]@]host[:port][/db]\n" \
    "                           (default: the environment variable\n" \
    "                           FRAUDWATCH_REDIS); rediss:// is not supported.\n" \
    "                           A password in it is visible to every user in\n" \
    "                           the process list: give it as below instead\n" \
    "      --redis-password-file FILE\n" \
    "                           the password is FILE's first line (FILE must\n" \
    "                           not be readable by other users: chmod 600);\n" \
    "                           without this option, the environment variable\n" \
    "                           FRAUDWATCH_REDIS_PASSWORD; either one wins over\n" \
    "                           a password in the URL\n" \
    "      --timeout MS         connect and per-command timeout (default 5000)\n" \
    "      --max-regex-per-event N\n" \
    "                           refuse a set whose events of some type would run\n" \
    "                           more regex searches (default 1000)\n" \
    "  -h, --help               this help\n"

static const char usage_rules_pull[] =
    "usage: fraudwatch rules pull --redis URL DIR [--force] [--timeout MS]\n"
    "\n"
    "Writes the active rule set from Redis into DIR (created if missing): the\n"
    "rule files byte for byte as pushed, and each watchlist as NAME.list with\n"
    "its entries sorted (an entry that expires or has a reason as\n"
    "VALUE<TAB>UNTIL<TAB>REASON, UNTIL in ISO 8601 UTC or '-').  The result\n"
    "passes `fraudwatch rules check DIR` and can\n"
    "be pushed again.  The read is consistent: files and lists of one version.\n"
    "\n"
    "options:\n"
    "  -f, --force              DIR may be non-empty: its *.json and *.list files\n"
    "                           are replaced, so DIR holds exactly the active set\n"
    "                           (other files are left alone)\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 written, 1 failure (DIR not empty, Redis), 2 usage error\n";

static const char usage_rules_status[] =
    "usage: fraudwatch rules status --redis URL [--timeout MS]\n"
    "\n"
    "Prints the active rule set version and generation, every watchlist with\n"
    "its size and version, and every live daemon (from its heartbeat key):\n"
    "instance, host, pid, the version and generation it runs, the result and\n"
    "time of its last reload, its last error, and when its heartbeat expires.\n"
    "A daemon is \"behind\" while its generation is older than the store's.\n"
    "\n"
    "options:\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 printed, 1 Redis failure, 2 usage error\n";

static const char usage_lists[] =
    "usage: fraudwatch lists add NAME VALUE... [--until TIME | --ttl DURATION]\n"
    "                            [--reason TEXT] [--by NAME] --redis URL\n"
    "       fraudwatch lists remove NAME VALUE... --redis URL\n"
    "       fraudwatch lists load NAME FILE [--by NAME] --redis URL\n"
    "       fraudwatch lists show NAME VALUE --redis URL\n"
    "       fraudwatch lists expire [NAME...] [--lateness DURATION] --redis URL\n"
    "\n"
    "Changes one watchlist in Redis without a rule push; each change bumps the\n"
    "list's version and the store's generation in the same transaction, so the\n"
    "daemons refresh within a second.\n"
    "\n"
    "add     adds the values (the list is created if it does not exist).  With\n"
    "        --until or --ttl each value is an entry until then: a member for\n"
    "        events with ts before it (event time); without, it never expires.\n"
    "        Adding a value again replaces its UNTIL and reason (a renewal).\n"
    "        Who (--by, else $FRAUDWATCH_USER, else the login name) and when are\n"
    "        recorded with each value.\n"
    "remove  removes the values\n"
    "load    replaces the whole list with the lines of FILE ('-': stdin), like a\n"
    "        .list file: VALUE, VALUE<TAB>UNTIL or VALUE<TAB>UNTIL<TAB>REASON,\n"
    "        '#' comments and blank lines skipped; a bad UNTIL is refused with\n"
    "        its line and nothing changes; staged first, then swapped in\n"
    "        atomically (a million lines is fine)\n"
    "show    one entry: whether it is on the list, its UNTIL, the reason, who\n"
    "        added it and when (exit 1 when it is not an entry)\n"
    "expire  removes the entries whose UNTIL is more than the lateness in the\n"
    "        past from NAME (default: every list); add, remove and load do this\n"
    "        for their list too.  Run it from cron or a timer (docs/redis.md).\n"
    "\n"
    "--until TIME       epoch milliseconds, or ISO 8601 with an offset:\n"
    "                   2026-12-31T23:59:59+08:00, 2026-12-31T15:59:59Z\n"
    "--ttl DURATION     from now: 30s, 15m, 24h, 7d\n"
    "--reason TEXT      why (one line), shown by show and written by rules pull\n"
    "--by NAME          who, recorded instead of the login name\n"
    "--lateness DURATION  how long after its UNTIL an entry is still kept\n"
    "                   (default 1d: the daemons' engine.lateness_s default; use\n"
    "                   your daemons' value)\n"
    "\n"
    "NAME is 1..64 characters of A-Z a-z 0-9 _ . - (not starting with '.').\n"
    "Values are trimmed and may not hold a tab; put -- before values that start\n"
    "with '-'.\n"
    "\n"
    "options:\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 done, 1 refused, not an entry (show) or Redis failure,\n"
    "2 usage error\n";
#endif

#if defined(FW_HAVE_DAEMON) || defined(FW_HAVE_REDIS)
/* Overwrites the password of a URL in argv (see the top of the file);
 * true when there was one. */
static bool scrub_url_password(char *arg)
{
    size_t off, len;
    if (!fw_secret_url_password(arg, &off, &len))
        return false;
    memset(arg + off, '*', len);
    return true;
}
#endif

#ifdef FW_HAVE_DAEMON
static const char usage_run[] =
    "usage: fraudwatch run -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "\n"
    "Consumes events from the input topic(s) in a consumer group, matches them\n"
    "with the rules of rules.source, produces alerts (key = subject) to the alert\n"
    "topic and malformed events to the dead-letter topic.  Input offsets are\n"
    "committed with a checkpoint of the window state, only after the broker has\n"
    "acknowledged every alert up to them.  SIGTERM or SIGINT: finish in-flight\n"
    "events, checkpoint, exit 0 (a second signal cuts the wait short); exit 1 if\n"
    "that checkpoint fails.  The stop ends within shutdown.timeout_s + 10 s.\n"
    "With state.store = kafka the checkpoints go to the group's state topic;\n"
    "with ha.mode = standby the daemons of a group elect one active daemon and\n"
    "the others stand by to take over; with ha.mode = scaleout every daemon is\n"
    "active and the work is split by key through the repartition topic, each\n"
    "partition's state owned by one daemon at a time (docs/scaling.md).\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        the configuration (see config/fraudwatch.conf)\n"
    "  -s, --set KEY=VALUE      override one setting (repeatable; after the file);\n"
    "                           a secret given here is visible to every user in\n"
    "                           the process list: keep secrets in FILE, or use\n"
    "                           rules.redis_password_file and KEY=@file:PATH\n"
    "      --check-config       validate, print the effective settings (secrets\n"
    "                           masked) and exit\n"
    "  -h, --help               this help\n"
    "\n"
    "exit status: 0 clean stop, 1 configuration / startup / shutdown failure,\n"
    "2 usage error, 3 fatal Kafka error, or (ha.mode = standby) fenced: this\n"
    "daemon lost the active role and stopped before producing, or (ha.mode =\n"
    "scaleout) a partition's unit or the forwarder failed\n";

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
            /* Quoted only if it is a bare key: it may be "key:secret". */
            if (*sets[i] && !sets[i][strspn(sets[i], "abcdefghijklmnopqrstuvwxyz"
                                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")])
                snprintf(err, sizeof err, "--set %s: expected KEY=VALUE", sets[i]);
            else
                snprintf(err, sizeof err, "--set: expected KEY=VALUE, and the argument has "
                                          "no \"=\" (it is not shown: it may hold a secret)");
            rc = 2;
            goto bad;
        }
        *eq = '\0';
        const char *key = sets[i];
        char *value = eq + 1;
        size_t olen = strlen(key) + strlen(value) + 8;
        char *origin = malloc(olen);
        if (!origin) {
            snprintf(err, sizeof err, "out of memory");
            goto bad;
        }
        snprintf(origin, olen, "--set %s=%s", key, value);
        int set_rc = fw_config_set(s, key, value, origin, err, sizeof err);
        free(origin);
        if (set_rc != 0)
            goto bad;
        /* A secret on the command line: blank it in argv, then say so. */
        bool secret = false;
        if (fw_secret_name(key) && *value &&
            strncmp(value, FW_SECRET_FILE_PREFIX, strlen(FW_SECRET_FILE_PREFIX)) != 0) {
            memset(value, '*', strlen(value));
            secret = true;
        } else {
            secret = scrub_url_password(value);
        }
        if (secret)
            fprintf(stderr, "fraudwatch run: warning: --set %s: a secret on the command line "
                            "is readable by every user of this machine in the process list "
                            "(blanked there now, but visible at the start); keep it in the "
                            "configuration file (mode 0600), or use %s (docs/configuration.md, "
                            "\"Secrets\")\n", key,
                    strcmp(key, "rules.source") == 0 ? "rules.redis_password_file"
                                                      : "KEY = @file:PATH");
        *eq = '=';
    }
    if (fw_config_validate(s, err, sizeof err) != 0)
        goto bad;
    if (check) {
        printf("%s: ok\n", file);
        fw_config_print(s, stdout);
        rc = 0;
    } else {
#ifdef FW_HAVE_REDIS
        /* Checked by fw_config_validate(); read again at every connect. */
        char e[4600];
        if (fw_rstore_set_password_file(s->redis_password_file, e, sizeof e) != 0) {
            snprintf(err, sizeof err, "rules.redis_password_file: %s", e);
            goto bad;
        }
#endif
        fw_ruleset_set_max_regexes((uint32_t)s->max_regex_per_event);
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

/* --max-regex-per-event N: the cost ceiling the loader applies. */
static int set_max_regexes(const char *cmd, const char *arg)
{
    unsigned long long v;
    if (fw_parse_u64(arg, 1, 1000000, &v) != 0) {
        fprintf(stderr, "fraudwatch %s: --max-regex-per-event must be 1..1000000, not '%s'\n",
                cmd, arg);
        return 2;
    }
    fw_ruleset_set_max_regexes((uint32_t)v);
    return 0;
}

static int cmd_replay(int argc, char **argv)
{
    enum { OPT_SNOOZES = FW_CLI_OPT_OWN };
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        FW_CLI_ENGINE_OPTIONS,
        { "snoozes", required_argument, NULL, OPT_SNOOZES },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (fw_cli_is_compare(argc, argv))      /* replay --compare: cli_compare.c */
        return fw_cli_replay_compare(argc, argv, usage_replay);
    fw_replay_opts o = { .out = stdout, .log = stderr };
    fw_cli_engine e = fw_cli_engine_defaults();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:t:h", opts, NULL)) != -1) {
        int rc = fw_cli_engine_opt(&e, c, optarg, "fraudwatch replay");
        if (rc >= 0) {
            if (rc)
                return rc;
            continue;
        }
        switch (c) {
        case 'r':
            o.rules_dir = optarg;
            break;
        case OPT_SNOOZES:
            o.snoozes_file = optarg;
            break;
        case 'h':
            fputs(usage_replay, stdout);
            return 0;
        default:
            fputs(usage_replay, stderr);
            return 2;
        }
    }
    o.threads = e.threads;
    o.max_event_bytes = e.max_event_bytes;
    o.lateness_ms = e.lateness_ms;
    o.max_keys = e.max_keys;
    o.max_reported = e.max_reported;
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

static bool is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

static int cmd_rules_check(int argc, char **argv)
{
    if (argc == 2 && is_help(argv[1])) {
        fputs(usage_rules, stdout);
        return 0;
    }
    /* -v (anywhere after check): watchlist expiry counts too */
    bool verbose = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i - 1) * sizeof *argv);
            argc--;
            break;
        }
    if (argc == 4 && strcmp(argv[2], "--max-regex-per-event") == 0) {
        if (set_max_regexes("rules check", argv[3]) != 0)
            return 2;
        argc = 2;
    }
    if (argc != 2) {
        fputs(usage_rules, stderr);
        return 2;
    }
    fw_ruleset *rs;
    char err[16384];
    if (fw_ruleset_load_dir(argv[1], 1, &rs, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch: rules in %s refused:\n%s\n", argv[1], err);
        return 1;
    }
    printf("%s: ok\n", argv[1]);
    fw_ruleset_describe(rs, stdout);
    if (verbose)
        fw_ruleset_describe_expiry(rs, fw_wall_ms(), stdout);
    fw_ruleset_unref(rs);
    return 0;
}

#ifdef FW_HAVE_REDIS
struct redis_opts {
    const char *url;
    int timeout_ms;
    bool force;
};

/* --redis URL, copied out of argv before its password is blanked there. */
static char redis_url_copy[8192];

/* Options shared by the Redis subcommands.  argv[0] is the subcommand; the
 * positional arguments end up in argv[optind..argc).  Returns -1 to go on,
 * or the exit status. */
static int parse_redis_opts(int argc, char **argv, const char *cmd,
                            const char *usage, bool allow_force,
                            struct redis_opts *o)
{
    enum { OPT_TIMEOUT = 256, OPT_MAX_REGEXES, OPT_PASSWORD_FILE };
    static const struct option opts[] = {
        { "redis", required_argument, NULL, 'r' },
        { "redis-password-file", required_argument, NULL, OPT_PASSWORD_FILE },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "max-regex-per-event", required_argument, NULL, OPT_MAX_REGEXES },
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    o->url = NULL;
    o->timeout_ms = 5000;
    o->force = false;
    const char *password_file = NULL;
    bool password_in_argv = false;
    unsigned long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (strlen(optarg) >= sizeof redis_url_copy) {
                fprintf(stderr, "fraudwatch %s: --redis URL is longer than %zu bytes\n", cmd,
                        sizeof redis_url_copy - 1);
                return 2;
            }
            snprintf(redis_url_copy, sizeof redis_url_copy, "%s", optarg);
            o->url = redis_url_copy;
            password_in_argv = scrub_url_password(optarg) || password_in_argv;
            break;
        case OPT_PASSWORD_FILE:
            password_file = optarg;
            break;
        case OPT_MAX_REGEXES:
            if (set_max_regexes(cmd, optarg) != 0)
                return 2;
            break;
        case OPT_TIMEOUT:
            if (fw_parse_u64(optarg, 1, 3600000, &v) != 0) {
                fprintf(stderr, "fraudwatch %s: --timeout must be 1..3600000 ms, "
                                "not '%s'\n", cmd, optarg);
                return 2;
            }
            o->timeout_ms = (int)v;
            break;
        case 'f':
            if (!allow_force) {
                fprintf(stderr, "fraudwatch %s: --force is only for rules pull\n", cmd);
                return 2;
            }
            o->force = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (password_in_argv)
        fprintf(stderr, "fraudwatch %s: warning: the password in --redis URL is readable "
                        "by every user of this machine in the process list (blanked there "
                        "now, but visible at the start); give it with --redis-password-file "
                        "FILE or FRAUDWATCH_REDIS_PASSWORD instead, or the whole URL in "
                        "FRAUDWATCH_REDIS (docs/redis.md)\n", cmd);
    if (!o->url || !*o->url) {
        const char *env = getenv("FRAUDWATCH_REDIS");
        if (env && *env)
            o->url = env;
    }
    if (!o->url) {
        fprintf(stderr, "fraudwatch %s: --redis URL (or FRAUDWATCH_REDIS) is "
                        "required\n", cmd);
        fputs(usage, stderr);
        return 2;
    }
    /* The password: --redis-password-file, else FRAUDWATCH_REDIS_PASSWORD,
     * else the URL's. */
    char err[4600];
    const char *env_pw = getenv("FRAUDWATCH_REDIS_PASSWORD");
    if (password_file) {
        if (fw_rstore_set_password_file(password_file, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch %s: --redis-password-file: %s\n", cmd, err);
            return 1;
        }
    } else if (env_pw && *env_pw &&
               fw_rstore_set_password(env_pw, "FRAUDWATCH_REDIS_PASSWORD", err,
                                      sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
        return 1;
    }
    return -1;
}

static int connect_store(const char *cmd, const struct redis_opts *o,
                         fw_rstore **r)
{
    /* hiredis writes with write(2): a server that closes the connection
     * must give an error message, not a silent death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    if (fw_rstore_connect(o->url, o->timeout_ms, r, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
        return 1;
    }
    return 0;
}

static int cmd_rules_pull(int argc, char **argv)
{
    struct redis_opts o;
    int rc = parse_redis_opts(argc, argv, "rules pull", usage_rules_pull, true, &o);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1) {
        fputs("fraudwatch rules pull: expected one target directory\n", stderr);
        fputs(usage_rules_pull, stderr);
        return 2;
    }
    const char *dir = argv[optind];
    fw_rstore *r;
    if (connect_store("rules pull", &o, &r) != 0)
        return 1;
    char err[4096];
    fw_rstore_pull_result res;
    rc = fw_rstore_pull_dir(r, dir, o.force, &res, err, sizeof err);
    if (rc == 0) {
        printf("%s: version %llu (generation %llu) pulled from %s: %zu rule "
               "file%s, %zu watchlist%s (%zu entries)\n", dir,
               (unsigned long long)res.version, (unsigned long long)res.generation,
               fw_rstore_where(r), res.nfiles, res.nfiles == 1 ? "" : "s",
               res.nlists, res.nlists == 1 ? "" : "s", res.nentries);
        if (res.nremoved)
            printf("%s: %zu stale *.json / *.list file%s removed (--force)\n", dir,
                   res.nremoved, res.nremoved == 1 ? "" : "s");
    } else {
        fprintf(stderr, "fraudwatch rules pull: %s\n", err);
    }
    fw_rstore_free(r);
    return rc == 0 ? 0 : 1;
}

static int cmd_rules_status(int argc, char **argv)
{
    struct redis_opts o;
    int rc = parse_redis_opts(argc, argv, "rules status", usage_rules_status, false, &o);
    if (rc >= 0)
        return rc;
    if (argc != optind) {
        fputs("fraudwatch rules status: unexpected argument\n", stderr);
        fputs(usage_rules_status, stderr);
        return 2;
    }
    fw_rstore *r;
    if (connect_store("rules status", &o, &r) != 0)
        return 1;
    char err[4096];
    fw_rstore_status *st;
    rc = fw_rstore_status_read(r, &st, err, sizeof err);
    if (rc == 0) {
        printf("store: %s\n", fw_rstore_where(r));
        fw_rstore_status_print(st, fw_wall_ms(), stdout);
        fw_rstore_status_free(st);
    } else {
        fprintf(stderr, "fraudwatch rules status: %s\n", err);
    }
    fw_rstore_free(r);
    return rc == 0 ? 0 : 1;
}

/* The list options of `lists` (--until, --ttl, --reason, --by, --lateness),
 * taken out of argv before the Redis options are parsed; values after "--"
 * are left alone.  -1 to go on, or the exit status. */
struct list_opts {
    const char *until, *ttl, *reason, *by, *lateness;
};

static int take_list_opts(int *argc, char **argv, const char *cmd, struct list_opts *lo)
{
    static const struct { const char *name; size_t off; } names[] = {
        { "--until", offsetof(struct list_opts, until) },
        { "--ttl", offsetof(struct list_opts, ttl) },
        { "--reason", offsetof(struct list_opts, reason) },
        { "--by", offsetof(struct list_opts, by) },
        { "--lateness", offsetof(struct list_opts, lateness) },
    };
    int w = 0;
    bool rest = false;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        bool taken = false;
        if (!rest && strcmp(a, "--") == 0)
            rest = true;
        for (size_t k = 0; !rest && !taken && k < sizeof names / sizeof *names; k++) {
            size_t nl = strlen(names[k].name);
            const char **slot = (const char **)((char *)lo + names[k].off);
            if (strcmp(a, names[k].name) == 0) {
                if (i + 1 >= *argc) {
                    fprintf(stderr, "fraudwatch %s: %s needs a value\n", cmd, a);
                    return 2;
                }
                *slot = argv[++i];
                taken = true;
            } else if (strncmp(a, names[k].name, nl) == 0 && a[nl] == '=') {
                *slot = a + nl + 1;
                taken = true;
            }
        }
        if (!taken)
            argv[w++] = argv[i];
    }
    *argc = w;
    return -1;
}

static int lists_expire_one(fw_rstore *r, const char *cmd, const char *name,
                            int64_t before, bool quiet_if_none)
{
    char err[4096], at[FW_TIMETEXT_MAX];
    fw_rstore_list_result res;
    if (fw_rstore_list_expire(r, name, before, &res, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
        return 1;
    }
    fw_time_format(before, at, sizeof at);
    if (res.changed || !quiet_if_none)
        printf("watchlist %s: %zu expired entr%s removed (UNTIL at or before %s)%s",
               name, res.changed, res.changed == 1 ? "y" : "ies", at,
               res.changed ? "" : "\n");
    if (res.changed)
        printf(", %zu entries, version %llu (generation %llu)\n", res.size,
               (unsigned long long)res.version, (unsigned long long)res.generation);
    return 0;
}

static int lists_show(fw_rstore *r, const char *cmd, const char *name, const char *value)
{
    char err[4096], at[FW_TIMETEXT_MAX];
    fw_rstore_entry e;
    if (fw_rstore_list_show(r, name, value, &e, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
        return 1;
    }
    if (!e.list_exists) {
        printf("watchlist %s: there is no such list\n", name);
        return 1;
    }
    if (!e.member) {
        printf("watchlist %s (version %llu): %s is not an entry\n", name,
               (unsigned long long)e.version, value);
        return 1;
    }
    printf("watchlist %s (version %llu): %s\n", name, (unsigned long long)e.version, value);
    int64_t now = fw_wall_ms();
    if (e.until == FW_UNTIL_NEVER) {
        printf("  until:   never\n");
    } else {
        fw_time_format(e.until, at, sizeof at);
        printf("  until:   %s (%lld): a member for events before then%s\n", at,
               (long long)e.until, e.until <= now ? "; already past" : "");
    }
    if (e.own_record) {
        printf("  reason:  %s\n", e.reason[0] ? e.reason : "(none given)");
        fw_time_format(e.added_at, at, sizeof at);
        printf("  added:   %s by %s\n", at, e.by[0] ? e.by : "(unknown)");
    } else if (e.loaded_at) {
        fw_time_format(e.loaded_at, at, sizeof at);
        printf("  reason:  (none given)\n");
        printf("  added:   %s by %s, with the whole list (%s)\n", at,
               e.loaded_by[0] ? e.loaded_by : "(unknown)", e.loaded_how);
    } else {
        printf("  reason:  (none given)\n");
        printf("  added:   (not recorded: written before entries carried a record)\n");
    }
    return 0;
}

static int cmd_lists(int argc, char **argv)
{
    if (argc < 2 || is_help(argv[1])) {
        fputs(usage_lists, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    bool add = strcmp(sub, "add") == 0, rem = strcmp(sub, "remove") == 0,
         load = strcmp(sub, "load") == 0, show = strcmp(sub, "show") == 0,
         expire = strcmp(sub, "expire") == 0;
    if (!add && !rem && !load && !show && !expire) {
        fprintf(stderr, "fraudwatch lists: unknown subcommand '%s'\n", sub);
        fputs(usage_lists, stderr);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "lists %s", sub);
    struct list_opts lo = { 0 };
    int rc = take_list_opts(&argc, argv, cmd, &lo);
    if (rc >= 0)
        return rc;
    if ((lo.until || lo.ttl || lo.reason) && !add) {
        fprintf(stderr, "fraudwatch %s: --until, --ttl and --reason are for lists add "
                        "(a .list file gives them per line)\n", cmd);
        return 2;
    }
    if (lo.until && lo.ttl) {
        fprintf(stderr, "fraudwatch %s: give --until or --ttl, not both\n", cmd);
        return 2;
    }
    if (lo.lateness && show) {
        fprintf(stderr, "fraudwatch %s: --lateness is not for show\n", cmd);
        return 2;
    }
    char terr[256];
    fw_rstore_entry_meta meta = { .until = FW_UNTIL_NEVER, .reason = lo.reason };
    if (lo.until && fw_time_parse(lo.until, &meta.until, terr, sizeof terr) != 0) {
        fprintf(stderr, "fraudwatch %s: --until: %s\n", cmd, terr);
        return 2;
    }
    int64_t ttl;
    if (lo.ttl) {
        if (fw_duration_parse(lo.ttl, &ttl, terr, sizeof terr) != 0) {
            fprintf(stderr, "fraudwatch %s: --ttl: %s\n", cmd, terr);
            return 2;
        }
        meta.until = fw_wall_ms() + ttl;
    }
    int64_t lateness = 86400000;   /* engine.lateness_s's default */
    if (lo.lateness && fw_duration_parse(lo.lateness, &lateness, terr, sizeof terr) != 0) {
        fprintf(stderr, "fraudwatch %s: --lateness: %s\n", cmd, terr);
        return 2;
    }
    fw_rstore_set_actor(lo.by);
    struct redis_opts o;
    rc = parse_redis_opts(argc - 1, argv + 1, cmd, usage_lists, false, &o);
    if (rc >= 0)
        return rc;
    char **pos = argv + 1 + optind;
    int npos = argc - 1 - optind;
    if ((!expire && npos < 2) || ((load || show) && npos != 2)) {
        fprintf(stderr, "fraudwatch %s: expected %s\n", cmd,
                load ? "NAME FILE" : show ? "NAME VALUE" : "NAME VALUE...");
        fputs(usage_lists, stderr);
        return 2;
    }
    const char *name = npos > 0 ? pos[0] : NULL;
    fw_rstore *r;
    if (connect_store(cmd, &o, &r) != 0)
        return 1;
    int64_t before = fw_wall_ms() - lateness;
    if (show || expire) {
        if (show) {
            rc = lists_show(r, cmd, name, pos[1]);
        } else if (npos > 0) {
            rc = 0;
            for (int i = 0; i < npos && rc == 0; i++)
                rc = lists_expire_one(r, cmd, pos[i], before, false);
        } else {
            char **names, err[4096];
            size_t n;
            rc = fw_rstore_list_names(r, &names, &n, err, sizeof err);
            if (rc != 0)
                fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
            for (size_t i = 0; rc == 0 && i < n; i++)
                rc = lists_expire_one(r, cmd, names[i], before, false);
            if (rc == 0 && n == 0)
                printf("no watchlists\n");
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
        }
        fw_rstore_free(r);
        return rc == 0 ? 0 : 1;
    }
    char err[4096];
    fw_rstore_list_result res;
    if (load)
        rc = fw_rstore_list_load(r, name, pos[1], &res, err, sizeof err);
    else if (add)
        rc = fw_rstore_list_add_meta(r, name, (const char *const *)(pos + 1),
                                     (size_t)(npos - 1), &meta, &res, err, sizeof err);
    else
        rc = fw_rstore_list_remove(r, name, (const char *const *)(pos + 1),
                                   (size_t)(npos - 1), &res, err, sizeof err);
    if (rc == 0) {
        char at[FW_TIMETEXT_MAX];
        if (load)
            printf("watchlist %s: loaded from %s, %zu entries, version %llu "
                   "(generation %llu), %.2f s\n", name, pos[1], res.size,
                   (unsigned long long)res.version,
                   (unsigned long long)res.generation, res.seconds);
        else
            printf("watchlist %s: %zu %s, %zu entries, version %llu "
                   "(generation %llu)", name, res.changed,
                   add ? "added" : "removed", res.size,
                   (unsigned long long)res.version,
                   (unsigned long long)res.generation);
        if (add && meta.until != FW_UNTIL_NEVER) {
            fw_time_format(meta.until, at, sizeof at);
            printf(", until %s", at);
        }
        if (!load)
            printf("\n");
        /* The list's own expired entries go at the same time. */
        rc = lists_expire_one(r, cmd, name, before, true);
    } else {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
    }
    fw_rstore_free(r);
    return rc == 0 ? 0 : 1;
}
#endif

static int cmd_rules(int argc, char **argv)
{
    if (argc < 2 || is_help(argv[1])) {
        fputs(usage_rules, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_rules_check(argc - 1, argv + 1);
#ifdef FW_HAVE_REDIS
    if (fw_cli_history_handles(argv[1]))   /* push, history, show, diff, rollback */
        return fw_cli_history(argc - 1, argv + 1);
    if (strcmp(argv[1], "pull") == 0)
        return cmd_rules_pull(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return cmd_rules_status(argc - 1, argv + 1);
#else
    if (strcmp(argv[1], "push") == 0 || strcmp(argv[1], "pull") == 0 ||
        strcmp(argv[1], "status") == 0 || strcmp(argv[1], "history") == 0 ||
        strcmp(argv[1], "show") == 0 || strcmp(argv[1], "diff") == 0 ||
        strcmp(argv[1], "rollback") == 0) {
        fprintf(stderr, "fraudwatch rules %s: this build has no Redis support "
                        "(hiredis was not found when it was built)\n", argv[1]);
        return 1;
    }
#endif
    fprintf(stderr, "fraudwatch rules: unknown subcommand '%s'\n", argv[1]);
    fputs(usage_rules, stderr);
    return 2;
}

#ifdef FW_HAVE_DAEMON
int fw_cli_state(int argc, char **argv);
#endif

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
#ifdef FW_HAVE_REDIS
    if (strcmp(cmd, "lists") == 0)
        return cmd_lists(argc - 1, argv + 1);
#else
    if (strcmp(cmd, "lists") == 0) {
        fputs("fraudwatch lists: this build has no Redis support (hiredis was "
              "not found when it was built)\n", stderr);
        return 1;
    }
#endif
#ifdef FW_HAVE_REDIS
    if (strcmp(cmd, "snooze") == 0)
        return fw_cli_snooze(argc - 1, argv + 1);   /* src/cli_snooze.c */
#endif
#ifdef FW_HAVE_DAEMON
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "state") == 0)
        return fw_cli_state(argc - 1, argv + 1);   /* src/cli_state.c */
#endif
#ifdef FW_HAVE_CONSOLE
    if (strcmp(cmd, "console") == 0)
        return fw_console_main(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0)
        return fw_cli_routes(argc - 1, argv + 1);
#endif
    fprintf(stderr, "fraudwatch: unknown command '%s'\n\n", cmd);
    fputs(usage_main, stderr);
    return 2;
}
