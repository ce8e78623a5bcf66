/* cli_snooze.c — `fraudwatch snooze add|list|remove|log`: snoozes in Redis
 * (SPEC §2, "Snoozes"; the store is rstore_snooze.c).
 *
 * Owns the command line of the one command, in a file of its own so that
 * main.c only dispatches to it.  The Redis options are the other store
 * commands' (--redis, --redis-password-file, FRAUDWATCH_REDIS,
 * FRAUDWATCH_REDIS_PASSWORD, --timeout), parsed here the same way,
 * including blanking a password given in --redis URL in argv at once. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/rulestore.h"
#include "fraudwatch/secret.h"
#include "fraudwatch/snooze.h"
#include "fraudwatch/snoozestore.h"
#include "fraudwatch/timetext.h"

int fw_cli_snooze(int argc, char **argv);

static const char usage[] =
    "usage: fraudwatch snooze add RULE|* SUBJECT (--until TIME | --for DURATION)\n"
    "                             --reason TEXT [--by NAME] --redis URL\n"
    "       fraudwatch snooze list --redis URL\n"
    "       fraudwatch snooze remove RULE|* SUBJECT [--reason TEXT] [--by NAME] --redis URL\n"
    "       fraudwatch snooze log [--last N] --redis URL\n"
    "\n"
    "A snooze mutes one rule (or every rule: *) for one subject until a time:\n"
    "when the rule fires for SUBJECT on an event with ts < UNTIL, the alert is not\n"
    "a live warning.  It goes to the shadow output (output.shadow_topic) flagged\n"
    "\"snoozed\": true and is counted; window state and suppression advance exactly\n"
    "as if it had fired.  Every running daemon applies a change within a second,\n"
    "without reloading its rules.  Every change is recorded: who, when, why.\n"
    "\n"
    "add     sets the snooze (or changes the UNTIL and reason of one that exists).\n"
    "        RULE must be a rule of the active set, or *.  A reason is required.\n"
    "list    every snooze: rule, subject, until, who set it, when, why.\n"
    "remove  ends the snooze now.\n"
    "log     the record of changes, oldest first (JSON lines).\n"
    "\n"
    "options:\n"
    "      --until TIME         epoch milliseconds, or ISO 8601 with an offset:\n"
    "                           2026-12-07T09:00:00+08:00, 2026-12-07T01:00:00Z\n"
    "      --for DURATION       from now: 30s, 15m, 24h, 7d (a number and one unit)\n"
    "      --reason TEXT        why (required for add; recorded for remove)\n"
    "      --by NAME            who (default: the login name)\n"
    "      --last N             log: only the last N changes\n"
    "  -r, --redis URL          redis://[[user][:password]@]host[:port][/db]\n"
    "                           (default: the environment variable\n"
    "                           FRAUDWATCH_REDIS); rediss:// is not supported.\n"
    "                           A password in it is visible to every user in\n"
    "                           the process list: give it as below instead\n"
    "      --redis-password-file FILE\n"
    "                           the password is FILE's first line (chmod 600);\n"
    "                           without it, FRAUDWATCH_REDIS_PASSWORD\n"
    "      --timeout MS         connect and per-command timeout (default 5000)\n"
    "  -h, --help               this help\n"
    "\n"
    "Put -- before a SUBJECT that starts with '-'.  Replay reads snoozes from a\n"
    "file instead: fraudwatch replay --snoozes FILE (docs/rules.md, \"Snoozes\").\n"
    "\n"
    "exit status: 0 done, 1 refused or Redis failure, 2 usage error\n";

struct opts {
    const char *sub;
    const char *url;
    const char *password_file;
    int timeout_ms;
    const char *until, *dur, *reason, *by;
    long long last;
    char **pos;
    int npos;
};

static char url_copy[8192];

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "fraudwatch %s: %s\n", cmd, msg);
    fputs(usage, stderr);
    return 2;
}

static int parse(int argc, char **argv, const char *cmd, struct opts *o)
{
    enum { OPT_UNTIL = 256, OPT_FOR, OPT_REASON, OPT_BY, OPT_LAST, OPT_TIMEOUT, OPT_PWFILE };
    static const struct option opts[] = {
        { "redis", required_argument, NULL, 'r' },
        { "redis-password-file", required_argument, NULL, OPT_PWFILE },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "for", required_argument, NULL, OPT_FOR },
        { "reason", required_argument, NULL, OPT_REASON },
        { "by", required_argument, NULL, OPT_BY },
        { "last", required_argument, NULL, OPT_LAST },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool password_in_argv = false;
    o->timeout_ms = 5000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'r': {
            if (strlen(optarg) >= sizeof url_copy)
                return usage_error(cmd, "--redis URL is too long");
            snprintf(url_copy, sizeof url_copy, "%s", optarg);
            o->url = url_copy;
            size_t off, len;
            if (fw_secret_url_password(optarg, &off, &len)) {
                memset(optarg + off, '*', len);
                password_in_argv = true;
            }
            break;
        }
        case OPT_PWFILE: o->password_file = optarg; break;
        case OPT_TIMEOUT:
            errno = 0;
            long t = strtol(optarg, &end, 10);
            if (errno || *end || t < 1 || t > 3600000)
                return usage_error(cmd, "--timeout must be 1..3600000 ms");
            o->timeout_ms = (int)t;
            break;
        case OPT_UNTIL: o->until = optarg; break;
        case OPT_FOR: o->dur = optarg; break;
        case OPT_REASON: o->reason = optarg; break;
        case OPT_BY: o->by = optarg; break;
        case OPT_LAST:
            errno = 0;
            o->last = strtoll(optarg, &end, 10);
            if (errno || *end || o->last < 1)
                return usage_error(cmd, "--last must be a count of 1 or more");
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    o->pos = argv + optind;
    o->npos = argc - optind;
    if (password_in_argv)
        fprintf(stderr, "fraudwatch %s: warning: the password in --redis URL is readable "
                        "by every user of this machine in the process list (blanked there "
                        "now, but visible at the start); give it with --redis-password-file "
                        "FILE or FRAUDWATCH_REDIS_PASSWORD instead, or the whole URL in "
                        "FRAUDWATCH_REDIS (docs/redis.md)\n", cmd);
    if (!o->url || !*o->url) {
        const char *env = getenv("FRAUDWATCH_REDIS");
        o->url = env && *env ? env : NULL;
    }
    if (!o->url)
        return usage_error(cmd, "--redis URL (or FRAUDWATCH_REDIS) is required");
    char err[4600];
    const char *env_pw = getenv("FRAUDWATCH_REDIS_PASSWORD");
    if (o->password_file) {
        if (fw_rstore_set_password_file(o->password_file, err, sizeof err) != 0) {
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

static const char *login_name(void)
{
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    if (!u || !*u) {
        struct passwd *pw = getpwuid(getuid());
        u = pw ? pw->pw_name : NULL;
    }
    return u && *u ? u : "unknown";
}

/* "2026-12-07T01:00:00Z (in 23h)" / "(ended 2h ago)". */
static void when(int64_t ms, int64_t now, char *out, size_t n)
{
    char iso[FW_TIMETEXT_MAX];
    fw_time_format(ms, iso, sizeof iso);
    int64_t d = (ms > now ? ms - now : now - ms) / 1000;
    char rel[32];
    if (d < 120)
        snprintf(rel, sizeof rel, "%llds", (long long)d);
    else if (d < 7200)
        snprintf(rel, sizeof rel, "%lldm", (long long)d / 60);
    else if (d < 172800)
        snprintf(rel, sizeof rel, "%lldh", (long long)d / 3600);
    else
        snprintf(rel, sizeof rel, "%lldd", (long long)d / 86400);
    snprintf(out, n, "%s (%s %s%s)", iso, ms > now ? "in" : "ended", rel,
             ms > now ? "" : " ago");
}

static int do_add(fw_rstore *r, const struct opts *o)
{
    if (o->npos != 2)
        return usage_error("snooze add", "expected RULE|* SUBJECT");
    if (!o->until == !o->dur)
        return usage_error("snooze add", "give exactly one of --until TIME and --for DURATION");
    if (!o->reason || !*o->reason)
        return usage_error("snooze add", "--reason TEXT is required: whoever finds the rule "
                                         "muted must learn why");
    int64_t now = fw_wall_ms(), until;
    char why[256];
    if (o->until && fw_time_parse(o->until, &until, why, sizeof why) != 0) {
        fprintf(stderr, "fraudwatch snooze add: --until: %s\n", why);
        return 2;
    }
    if (o->dur) {
        int64_t d;
        if (fw_duration_parse(o->dur, &d, why, sizeof why) != 0) {
            fprintf(stderr, "fraudwatch snooze add: --for: %s\n", why);
            return 2;
        }
        until = now + d;
    }
    if (until <= now) {
        char iso[FW_TIMETEXT_MAX];
        fw_time_format(until, iso, sizeof iso);
        fprintf(stderr, "fraudwatch snooze add: UNTIL %s is in the past: the snooze would "
                        "mute nothing from now on; nothing was changed\n", iso);
        return 1;
    }
    fw_snooze s = { .rule = o->pos[0], .subject = o->pos[1], .subject_len = strlen(o->pos[1]),
                    .until = until, .reason = o->reason, .by = o->by ? o->by : login_name() };
    char err[4096];
    bool replaced = false;
    uint64_t version = 0;
    if (fw_rstore_snooze_add(r, &s, &replaced, &version, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch snooze add: %s\n", err);
        return 1;
    }
    char u[96];
    when(until, now, u, sizeof u);
    printf("snooze %s: rule %s, subject %s, until %s, by %s (snoozes version %llu)\n",
           replaced ? "changed" : "added", s.rule, s.subject, u, s.by,
           (unsigned long long)version);
    return 0;
}

static int do_remove(fw_rstore *r, const struct opts *o)
{
    if (o->npos != 2)
        return usage_error("snooze remove", "expected RULE|* SUBJECT");
    if (o->until || o->dur)
        return usage_error("snooze remove", "--until and --for are for snooze add");
    char err[4096];
    uint64_t version = 0;
    const char *by = o->by ? o->by : login_name();
    if (fw_rstore_snooze_remove(r, o->pos[0], o->pos[1], by, o->reason, &version, err,
                                sizeof err) != 0) {
        fprintf(stderr, "fraudwatch snooze remove: %s\n", err);
        return 1;
    }
    printf("snooze removed: rule %s, subject %s, by %s (snoozes version %llu)\n", o->pos[0],
           o->pos[1], by, (unsigned long long)version);
    return 0;
}

static int do_list(fw_rstore *r, const struct opts *o)
{
    if (o->npos != 0)
        return usage_error("snooze list", "takes no arguments");
    char err[4096];
    fw_snoozes *s;
    uint64_t version;
    if (fw_rstore_snooze_read(r, &s, &version, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch snooze list: %s\n", err);
        return 1;
    }
    int64_t now = fw_wall_ms();
    printf("snoozes version %llu: %zu snooze%s\n", (unsigned long long)version,
           fw_snoozes_count(s), fw_snoozes_count(s) == 1 ? "" : "s");
    if (fw_snoozes_count(s))
        printf("%-12s %-20s %-42s %-12s %-22s %s\n", "RULE", "SUBJECT", "UNTIL", "BY", "SET",
               "REASON");
    for (size_t i = 0; i < fw_snoozes_count(s); i++) {
        const fw_snooze *z = fw_snoozes_at(s, i);
        char u[96], at[FW_TIMETEXT_MAX] = "-";
        when(z->until, now, u, sizeof u);
        if (z->at)
            fw_time_format(z->at, at, sizeof at);
        printf("%-12s %-20s %-42s %-12s %-22s %s\n", z->rule, z->subject, u,
               z->by ? z->by : "-", at,
               z->reason ? z->reason : "");
    }
    fw_snoozes_unref(s);
    return 0;
}

static int do_log(fw_rstore *r, const struct opts *o)
{
    if (o->npos != 0)
        return usage_error("snooze log", "takes no arguments");
    char err[4096], **lines;
    size_t n;
    if (fw_rstore_snooze_log(r, (size_t)o->last, &lines, &n, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch snooze log: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s\n", lines[i]);
    fw_rstore_snooze_log_free(lines, n);
    return 0;
}

int fw_cli_snooze(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    int (*fn)(fw_rstore *, const struct opts *) =
        strcmp(sub, "add") == 0      ? do_add
        : strcmp(sub, "remove") == 0 ? do_remove
        : strcmp(sub, "list") == 0   ? do_list
        : strcmp(sub, "log") == 0    ? do_log
                                     : NULL;
    if (!fn) {
        fprintf(stderr, "fraudwatch snooze: unknown subcommand '%s'\n", sub);
        fputs(usage, stderr);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "snooze %s", sub);
    struct opts o = { .sub = sub };
    int rc = parse(argc - 1, argv + 1, cmd, &o);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);   /* a closed connection: a message, not a silent death */
    fw_rstore *r;
    char err[1024];
    if (fw_rstore_connect(o.url, o.timeout_ms, &r, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", cmd, err);
        return 1;
    }
    rc = fn(r, &o);
    fw_rstore_free(r);
    return rc;
}
