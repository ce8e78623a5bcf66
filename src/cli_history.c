/* cli_history.c — the CLI of the rule history: `rules push` (recorded),
 * `rules history`, `rules show`, `rules diff`, `rules rollback`.
 *
 * Owns only the command line and the presentation; the history itself is
 * src/rstore_history.c, the comparison src/rules_diff.c.  main.c's `rules`
 * dispatcher hands these subcommands here (fw_cli_history_handles).
 *
 * The Redis options (--redis, --redis-password-file, --timeout) are parsed
 * as main.c parses them for the other Redis commands, with the same
 * password rules (a password in --redis URL is warned about and blanked in
 * argv; FRAUDWATCH_REDIS / FRAUDWATCH_REDIS_PASSWORD): kept here, in one
 * table with each command's own options, so that `rules push -m ...` and
 * `rules history --limit N` parse in one getopt pass. */
#include "cli_history.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fraudwatch/text.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/rulehistory.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/secret.h"

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
    "  -h, --help               this help\n"

#define AUTHOR_OPTIONS \
    "  -m, --message TEXT       why (recorded; default: names the source)\n" \
    "      --author NAME        who (recorded; default: the login name of the\n" \
    "                           user running the command)\n"

static const char usage_push[] =
    "usage: fraudwatch rules push DIR --redis URL [-m MESSAGE] [--author NAME]\n"
    "                             [--keep N] [--timeout MS]\n"
    "\n"
    "Reads every *.json and NAME.list in DIR, validates them exactly as\n"
    "`fraudwatch rules check DIR` does and, if the set is valid, makes it the\n"
    "active set in Redis in one transaction: the rule files, the watchlists\n"
    "(lists that DIR does not have are removed), a new rules version and a new\n"
    "generation, and a notification on fraudwatch:notify.  Running daemons load\n"
    "it within a second.  A refused set changes nothing in Redis; every problem\n"
    "is printed with its file and rule id.\n"
    "\n"
    "Every push is recorded in the rule history (fraudwatch rules history):\n"
    "version, time, author, message and the SHA-256 of every file; a refused\n"
    "push is recorded as refused, with its reason.  The contents of the last N\n"
    "versions are kept whole for show / diff / rollback (watchlists of more\n"
    "than 100000 entries: by hash only); older versions keep their record.\n"
    "\n"
    "options:\n"
    AUTHOR_OPTIONS
    "      --keep N             keep the last N versions whole from now on\n"
    "                           (1..100000; stored in Redis, so it holds for\n"
    "                           every later push until changed; default 100)\n"
    "      --max-regex-per-event N\n"
    "                           refuse a set whose events of some type would run\n"
    "                           more regex searches (default 1000)\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 pushed, 1 refused or Redis failure, 2 usage error\n";

static const char usage_history[] =
    "usage: fraudwatch rules history --redis URL [--limit N] [--json]\n"
    "\n"
    "Lists the rule history, newest first: every push, rollback and refused\n"
    "push, with its record number, the version it made, when (UTC), who,\n"
    "what, whether the version's contents are still kept, and the message (a\n"
    "refused push: the first line of its reason).\n"
    "\n"
    "options:\n"
    "  -n, --limit N            the last N records (default 20; 0: all)\n"
    "      --json               one record per line, as stored, with \"seq\"\n"
    "                           and \"kept\" added\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 printed, 1 Redis failure, 2 usage error\n";

static const char usage_show[] =
    "usage: fraudwatch rules show VERSION --redis URL [--file NAME]\n"
    "\n"
    "Prints the record of VERSION (who, when, why, what it was based on) and\n"
    "the files it held: each rule file and watchlist with its SHA-256, size,\n"
    "and whether its contents are kept.  VERSION may be \"active\".\n"
    "\n"
    "options:\n"
    "  -f, --file NAME          print the contents of one file of VERSION\n"
    "                           instead: a rule file (NAME.json) byte for byte,\n"
    "                           or a watchlist (NAME or NAME.list) one entry a\n"
    "                           line, sorted\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 printed, 1 no such version / not kept / Redis failure,\n"
    "2 usage error\n";

static const char usage_diff[] =
    "usage: fraudwatch rules diff A B --redis URL\n"
    "       fraudwatch rules diff VERSION DIR --redis URL\n"
    "\n"
    "Compares two kept versions A and B (numbers, or \"active\"), or a kept\n"
    "VERSION and the rules directory DIR (what `rules push DIR` would change\n"
    "compared to VERSION; DIR is also validated as a push would).  Rule by\n"
    "rule: rules added, removed, and for a changed rule the members added,\n"
    "removed or changed (compared as JSON values) and a move to another file;\n"
    "watchlists added, removed, and how many entries were added and removed.\n"
    "A watchlist kept by hash only is reported as changed or not.  Watchlist\n"
    "changes made with `lists add/remove/load` after a push are not part of\n"
    "any version.\n"
    "\n"
    "options:\n"
    REDIS_OPTIONS
    "\n"
    "exit status: 0 compared (with or without differences), 1 a version not\n"
    "kept, DIR unreadable or refused, Redis failure, 2 usage error\n";

static const char usage_rollback[] =
    "usage: fraudwatch rules rollback VERSION --redis URL [-m MESSAGE]\n"
    "                                 [--author NAME]\n"
    "\n"
    "Publishes a NEW version whose rule files and watchlists equal those of\n"
    "kept version VERSION, recorded as a rollback of VERSION (the history is\n"
    "never rewritten).  The daemons swap it in like any push: rules that did\n"
    "not change keep their window and sequence state.  A version never\n"
    "recorded, or whose contents were trimmed (only the last N are kept: see\n"
    "rules push --keep), is refused and nothing changes; so is a version with\n"
    "a watchlist kept by hash only that is no longer the same in Redis.\n"
    "\n"
    "options:\n"
    AUTHOR_OPTIONS
    REDIS_OPTIONS
    "\n"
    "exit status: 0 rolled back, 1 refused or Redis failure, 2 usage error\n";

enum {
    O_MSG = 1 << 0,
    O_KEEP = 1 << 1,
    O_LIMIT = 1 << 2,
    O_JSON = 1 << 3,
    O_FILE = 1 << 4,
    O_REGEX = 1 << 5,
};

struct opts {
    const char *cmd, *usage;
    unsigned allowed;
    const char *url;
    int timeout_ms;
    const char *message, *author, *file;
    unsigned keep;
    size_t limit;
    bool json;
    char **pos;
    int npos;
};

static char url_copy[8192];

static int usage_error(const struct opts *o, const char *what)
{
    fprintf(stderr, "fraudwatch %s: %s\n", o->cmd, what);
    fputs(o->usage, stderr);
    return 2;
}

/* Returns -1 to go on, or the exit status. */
static int parse(int argc, char **argv, struct opts *o)
{
    enum { T_TIMEOUT = 256, T_PWFILE, T_AUTHOR, T_KEEP, T_JSON, T_REGEX };
    static const struct option table[] = {
        { "redis", required_argument, NULL, 'r' },
        { "redis-password-file", required_argument, NULL, T_PWFILE },
        { "timeout", required_argument, NULL, T_TIMEOUT },
        { "message", required_argument, NULL, 'm' },
        { "author", required_argument, NULL, T_AUTHOR },
        { "keep", required_argument, NULL, T_KEEP },
        { "limit", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, T_JSON },
        { "file", required_argument, NULL, 'f' },
        { "max-regex-per-event", required_argument, NULL, T_REGEX },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    o->timeout_ms = 5000;
    o->limit = 20;
    const char *pwfile = NULL;
    bool pw_in_argv = false;
    unsigned long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:m:n:f:h", table, NULL)) != -1) {
        unsigned need = c == 'm' || c == T_AUTHOR ? O_MSG : c == T_KEEP ? O_KEEP
                      : c == 'n' ? O_LIMIT : c == T_JSON ? O_JSON : c == 'f' ? O_FILE
                      : c == T_REGEX ? O_REGEX : 0;
        if (need && !(o->allowed & need)) {
            char what[128];
            snprintf(what, sizeof what, "option %s is not one of this command's",
                     argv[optind - 1]);
            return usage_error(o, what);
        }
        switch (c) {
        case 'r':
            if (strlen(optarg) >= sizeof url_copy)
                return usage_error(o, "--redis URL is too long");
            snprintf(url_copy, sizeof url_copy, "%s", optarg);
            o->url = url_copy;
            {
                size_t off, len;
                if (fw_secret_url_password(optarg, &off, &len)) {
                    memset(optarg + off, '*', len);
                    pw_in_argv = true;
                }
            }
            break;
        case T_PWFILE:
            pwfile = optarg;
            break;
        case T_TIMEOUT:
            if (fw_parse_u64(optarg, 1, 3600000, &v) != 0)
                return usage_error(o, "--timeout must be 1..3600000 ms");
            o->timeout_ms = (int)v;
            break;
        case 'm':
            o->message = optarg;
            break;
        case T_AUTHOR:
            if (!*optarg)
                return usage_error(o, "--author must not be empty");
            o->author = optarg;
            break;
        case T_KEEP:
            if (fw_parse_u64(optarg, 1, FW_RHIST_KEEP_MAX, &v) != 0)
                return usage_error(o, "--keep must be 1..100000");
            o->keep = (unsigned)v;
            break;
        case 'n':
            if (fw_parse_u64(optarg, 0, 1000000000, &v) != 0)
                return usage_error(o, "--limit must be a number (0: all)");
            o->limit = (size_t)v;
            break;
        case T_JSON:
            o->json = true;
            break;
        case 'f':
            o->file = optarg;
            break;
        case T_REGEX:
            if (fw_parse_u64(optarg, 1, 1000000, &v) != 0)
                return usage_error(o, "--max-regex-per-event must be 1..1000000");
            fw_ruleset_set_max_regexes((uint32_t)v);
            break;
        case 'h':
            fputs(o->usage, stdout);
            return 0;
        default:
            fputs(o->usage, stderr);
            return 2;
        }
    }
    if (pw_in_argv)
        fprintf(stderr, "fraudwatch %s: warning: the password in --redis URL is readable "
                        "by every user of this machine in the process list (blanked there "
                        "now, but visible at the start); give it with --redis-password-file "
                        "FILE or FRAUDWATCH_REDIS_PASSWORD instead, or the whole URL in "
                        "FRAUDWATCH_REDIS (docs/redis.md)\n", o->cmd);
    if (!o->url || !*o->url) {
        const char *env = getenv("FRAUDWATCH_REDIS");
        if (env && *env)
            o->url = env;
    }
    if (!o->url)
        return usage_error(o, "--redis URL (or FRAUDWATCH_REDIS) is required");
    char err[4600];
    const char *env_pw = getenv("FRAUDWATCH_REDIS_PASSWORD");
    if (pwfile) {
        if (fw_rstore_set_password_file(pwfile, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch %s: --redis-password-file: %s\n", o->cmd, err);
            return 1;
        }
    } else if (env_pw && *env_pw &&
               fw_rstore_set_password(env_pw, "FRAUDWATCH_REDIS_PASSWORD", err,
                                      sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", o->cmd, err);
        return 1;
    }
    o->pos = argv + optind;
    o->npos = argc - optind;
    return -1;
}

static int open_store(const struct opts *o, fw_rstore **r)
{
    signal(SIGPIPE, SIG_IGN);   /* a closed connection is an error, not a death */
    char err[1024];
    if (fw_rstore_connect(o->url, o->timeout_ms, r, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", o->cmd, err);
        return 1;
    }
    return 0;
}

/* The login name of the user running the command: getlogin() (the session's
 * user, also under sudo), else the password entry of the real uid, else
 * $USER / $LOGNAME. */
static const char *login_name(void)
{
    static char buf[256];
    const char *s = getlogin();
    if (!s || !*s) {
        struct passwd *pw = getpwuid(getuid());
        s = pw ? pw->pw_name : NULL;
    }
    if (!s || !*s)
        s = getenv("USER");
    if (!s || !*s)
        s = getenv("LOGNAME");
    if (!s || !*s) {
        snprintf(buf, sizeof buf, "uid %u", (unsigned)getuid());
        return buf;
    }
    snprintf(buf, sizeof buf, "%s", s);
    return buf;
}

static void meta_of(const struct opts *o, fw_rhist_meta *m, char *host, size_t hostlen)
{
    memset(m, 0, sizeof *m);
    m->author = o->author ? o->author : login_name();
    if (gethostname(host, hostlen) == 0) {
        host[hostlen - 1] = '\0';
        m->host = host;
    }
    m->message = o->message;
    m->keep = o->keep;
}

static void utc(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "active" or a version number; 0 with a message on error. */
static uint64_t version_arg(const struct opts *o, fw_rstore *r, const char *s)
{
    unsigned long long v;
    if (strcmp(s, "active") == 0) {
        uint64_t a;
        char err[1024];
        if (fw_rhist_active(r, &a, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch %s: %s\n", o->cmd, err);
            return 0;
        }
        if (a == 0)
            fprintf(stderr, "fraudwatch %s: %s holds no rule set yet\n", o->cmd,
                    fw_rstore_where(r));
        return a;
    }
    if (fw_parse_u64(s, 1, UINT64_MAX, &v) != 0) {
        fprintf(stderr, "fraudwatch %s: '%s' is not a version (a number from 1, or "
                        "\"active\")\n", o->cmd, s);
        return 0;
    }
    return v;
}

static void print_pushed(const char *what, fw_rstore *r, const fw_rstore_push_result *res)
{
    printf("%s: pushed to %s as version %llu (generation %llu): %zu rule file%s, "
           "%zu rules, %zu watchlist%s (%zu entries); %lld subscriber%s notified\n",
           what, fw_rstore_where(r), (unsigned long long)res->version,
           (unsigned long long)res->generation, res->nfiles, res->nfiles == 1 ? "" : "s",
           res->nrules, res->nlists, res->nlists == 1 ? "" : "s", res->nentries,
           res->notified, res->notified == 1 ? "" : "s");
    if (res->nremoved)
        printf("%zu watchlist%s that %s no longer has removed from redis\n",
               res->nremoved, res->nremoved == 1 ? "" : "s", what);
}

/* ---- push ------------------------------------------------------------------ */

static int cmd_push(int argc, char **argv)
{
    struct opts o = { .cmd = "rules push", .usage = usage_push,
                      .allowed = O_MSG | O_KEEP | O_REGEX };
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.npos != 1)
        return usage_error(&o, "expected one rules directory");
    const char *dir = o.pos[0];
    fw_rstore *r;
    if (open_store(&o, &r) != 0)
        return 1;
    static char err[65536];
    char host[256];
    fw_rhist_meta m;
    meta_of(&o, &m, host, sizeof host);
    fw_rstore_push_result res;
    uint64_t seq = 0;
    rc = fw_rhist_push_dir(r, dir, &m, &res, &seq, err, sizeof err);
    if (rc == 0) {
        print_pushed(dir, r, &res);
        printf("recorded in the rule history as #%llu (author %s)\n",
               (unsigned long long)seq, m.author);
        if (o.keep)
            printf("the last %u versions are kept whole from now on\n", o.keep);
    } else if (rc == FW_RSTORE_REFUSED) {
        fprintf(stderr, "fraudwatch rules push: %s: %s\n", dir, err);
        if (seq)
            fprintf(stderr, "(recorded in the rule history as refused, #%llu)\n",
                    (unsigned long long)seq);
    } else {
        fprintf(stderr, "fraudwatch rules push: %s\n", err);
    }
    fw_rstore_free(r);
    return rc == 0 ? 0 : 1;
}

/* ---- history --------------------------------------------------------------- */

static void first_line(const char *s, char *buf, size_t n)
{
    if (!s)
        s = "";
    size_t k = strcspn(s, "\n");
    snprintf(buf, n, "%.*s%s", (int)(k < n - 4 ? k : n - 4), s,
             s[k] ? " ..." : "");
}

static int cmd_history(int argc, char **argv)
{
    struct opts o = { .cmd = "rules history", .usage = usage_history,
                      .allowed = O_LIMIT | O_JSON };
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.npos != 0)
        return usage_error(&o, "unexpected argument");
    fw_rstore *r;
    if (open_store(&o, &r) != 0)
        return 1;
    char err[4096];
    fw_rhist_record *recs;
    size_t n;
    unsigned keep;
    rc = fw_rhist_list(r, o.limit, &recs, &n, &keep, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fraudwatch rules history: %s\n", err);
        fw_rstore_free(r);
        return 1;
    }
    if (!o.json)
        printf("%-5s %-8s %-20s %-14s %-16s %-8s %s\n", "SEQ", "VERSION", "WHEN (UTC)",
               "AUTHOR", "ACTION", "CONTENTS", "MESSAGE");
    for (size_t i = 0; i < n; i++) {
        const fw_rhist_record *x = &recs[i];
        if (o.json) {
            /* the stored record with seq and kept put in front */
            const char *j = x->json ? x->json : "{}";
            printf("{\"seq\":%llu,\"kept\":%s%s%s\n", (unsigned long long)x->seq,
                   x->kept ? "true" : "false", j[0] == '{' && j[1] != '}' ? "," : "",
                   j[0] == '{' ? j + 1 : "}");
            continue;
        }
        char when[32] = "?", ver[24] = "-", act[40], msg[240];
        if (x->ts_ms)
            utc(x->ts_ms, when, sizeof when);
        if (x->version)
            snprintf(ver, sizeof ver, "%llu", (unsigned long long)x->version);
        if (x->rollback_of)
            snprintf(act, sizeof act, "%s of %llu",
                     strcmp(x->action, "refused") == 0 ? "refused rollback" : "rollback",
                     (unsigned long long)x->rollback_of);
        else
            snprintf(act, sizeof act, "%s", x->action);
        if (strcmp(x->action, "refused") == 0 && x->reason) {
            /* the first line that says what is wrong, after the message */
            const char *why = x->reason;
            if (strncmp(why, "the rule set", 12) == 0 && strchr(why, '\n'))
                why = strchr(why, '\n') + 1;
            char w[160];
            first_line(why, w, sizeof w);
            snprintf(msg, sizeof msg, "%.60s: %s", x->message ? x->message : "", w);
        } else {
            first_line(x->message, msg, sizeof msg);
        }
        printf("%-5llu %-8s %-20s %-14s %-16s %-8s %s\n", (unsigned long long)x->seq, ver,
               when, x->author ? x->author : "?", act,
               !x->version ? "-" : x->kept ? "kept" : "trimmed", msg);
    }
    if (!o.json)
        printf("(%zu record%s shown; the contents of the last %u versions are kept "
               "whole: rules push --keep N)\n", n, n == 1 ? "" : "s", keep);
    fw_rhist_records_free(recs, n);
    fw_rstore_free(r);
    return 0;
}

/* ---- show ------------------------------------------------------------------ */

static const fw_rhist_file *find_named(const fw_rhist_record *rec, const char *name)
{
    size_t n = strlen(name);
    bool dotlist = n > 5 && strcmp(name + n - 5, ".list") == 0;
    for (size_t i = 0; i < rec->nfiles; i++) {
        const fw_rhist_file *f = &rec->files[i];
        if (strcmp(f->name, name) == 0)
            return f;
        if (f->is_list && dotlist && strlen(f->name) == n - 5 &&
            strncmp(f->name, name, n - 5) == 0)
            return f;
    }
    return NULL;
}

/* The start of the commands that take one VERSION: the options, the store
 * opened, the version resolved.  -1 to go on (*r open, *v set), else the
 * exit status. */
static int one_version(int argc, char **argv, struct opts *o, fw_rstore **r, uint64_t *v)
{
    int rc = parse(argc, argv, o);
    if (rc >= 0)
        return rc;
    if (o->npos != 1)
        return usage_error(o, "expected one VERSION");
    if (open_store(o, r) != 0)
        return 1;
    *v = version_arg(o, *r, o->pos[0]);
    if (!*v) {
        fw_rstore_free(*r);
        return 1;
    }
    return -1;
}

static int cmd_show(int argc, char **argv)
{
    struct opts o = { .cmd = "rules show", .usage = usage_show, .allowed = O_FILE };
    fw_rstore *r;
    uint64_t v;
    int rc = one_version(argc, argv, &o, &r, &v);
    if (rc >= 0)
        return rc;
    char err[4096];
    fw_rhist_record rec;
    rc = fw_rhist_get(r, v, o.file != NULL, &rec, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fraudwatch rules show: %s\n", err);
        fw_rstore_free(r);
        return 1;
    }
    if (o.file) {
        const fw_rhist_file *f = find_named(&rec, o.file);
        if (!f)
            fprintf(stderr, "fraudwatch rules show: version %llu has no file %s\n",
                    (unsigned long long)v, o.file);
        else if (!f->data)
            fprintf(stderr, "fraudwatch rules show: the contents of %s of version %llu "
                            "are not kept (%s; sha256 %s)\n", o.file,
                    (unsigned long long)v,
                    !rec.kept ? "the version's contents were trimmed"
                              : "a watchlist kept by hash only",
                    f->sha256);
        else
            fwrite(f->data, 1, f->len, stdout);
        rc = f && f->data ? 0 : 1;
        fw_rhist_record_free(&rec);
        fw_rstore_free(r);
        return rc;
    }
    char when[32] = "?";
    if (rec.ts_ms)
        utc(rec.ts_ms, when, sizeof when);
    printf("version %llu (history record #%llu)\n", (unsigned long long)rec.version,
           (unsigned long long)rec.seq);
    if (rec.rollback_of)
        printf("action:   rollback of version %llu\n", (unsigned long long)rec.rollback_of);
    else
        printf("action:   %s\n", rec.action);
    printf("when:     %s\n", when);
    printf("author:   %s%s%s\n", rec.author ? rec.author : "?", rec.host ? " on " : "",
           rec.host ? rec.host : "");
    printf("message:  %s\n", rec.message ? rec.message : "");
    if (rec.source)
        printf("source:   %s\n", rec.source);
    printf("based on: version %llu\n", (unsigned long long)rec.base);
    printf("rules:    %zu\n", rec.nrules);
    printf("contents: %s\n", rec.kept ? "kept whole (show --file, diff, rollback)"
                                      : "trimmed: only this record remains");
    for (size_t i = 0; i < rec.nfiles; i++) {
        const fw_rhist_file *f = &rec.files[i];
        if (f->is_list)
            printf("  list %-24s sha256 %s  %zu entries%s\n", f->name, f->sha256,
                   f->entries, f->kept ? "" : "  (kept by hash only)");
        else
            printf("  file %-24s sha256 %s  %zu bytes\n", f->name, f->sha256, f->bytes);
    }
    fw_rhist_record_free(&rec);
    fw_rstore_free(r);
    return 0;
}

/* ---- diff ------------------------------------------------------------------- */

/* The kept files of version v, or 1 with a message. */
static int version_files(const struct opts *o, fw_rstore *r, uint64_t v,
                         fw_rhist_record *rec)
{
    char err[4096];
    if (fw_rhist_get(r, v, true, rec, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch %s: %s\n", o->cmd, err);
        return 1;
    }
    if (!rec->kept) {
        fprintf(stderr, "fraudwatch %s: version %llu was not kept: its contents were "
                        "trimmed (only its record remains: rules show %llu), so its "
                        "rules cannot be compared\n", o->cmd, (unsigned long long)v,
                (unsigned long long)v);
        fw_rhist_record_free(rec);
        return 1;
    }
    return 0;
}

static void print_summary(const fw_rhist_diff_stats *st, size_t n)
{
    if (n == 0) {
        printf("no differences\n");
        return;
    }
    printf("rules: %zu added, %zu removed, %zu changed; watchlists: %zu added, %zu "
           "removed, %zu changed\n", st->rules_added, st->rules_removed,
           st->rules_changed, st->lists_added, st->lists_removed, st->lists_changed);
}

static int cmd_diff(int argc, char **argv)
{
    struct opts o = { .cmd = "rules diff", .usage = usage_diff, .allowed = 0 };
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.npos != 2)
        return usage_error(&o, "expected A B (two versions) or VERSION DIR");
    struct stat st;
    bool to_dir = stat(o.pos[1], &st) == 0 && S_ISDIR(st.st_mode);
    fw_rstore *r;
    if (open_store(&o, &r) != 0)
        return 1;
    unsigned long long dummy;
    if (!to_dir && strcmp(o.pos[1], "active") != 0 &&
        fw_parse_u64(o.pos[1], 1, UINT64_MAX, &dummy) != 0) {
        fprintf(stderr, "fraudwatch rules diff: '%s' is neither a version nor a "
                        "directory\n", o.pos[1]);
        fw_rstore_free(r);
        return 1;
    }
    uint64_t a = version_arg(&o, r, o.pos[0]);
    uint64_t b = a && !to_dir ? version_arg(&o, r, o.pos[1]) : 0;
    fw_rhist_record ra, rb;
    rc = !a || (!to_dir && !b) ? 1 : version_files(&o, r, a, &ra);
    if (rc == 0 && !to_dir && (rc = version_files(&o, r, b, &rb)) != 0)
        fw_rhist_record_free(&ra);
    fw_rstore_free(r);
    if (rc != 0)
        return 1;
    fw_rhist_diff_stats ds;
    if (!to_dir) {
        printf("diff version %llu -> version %llu\n", (unsigned long long)a,
               (unsigned long long)b);
        size_t n = fw_rhist_diff(ra.files, ra.nfiles, rb.files, rb.nfiles, stdout, &ds);
        print_summary(&ds, n);
        fw_rhist_record_free(&ra);
        fw_rhist_record_free(&rb);
        return 0;
    }
    const char *dir = o.pos[1];
    fw_rulefile *files;
    size_t nfiles;
    static char err[65536];
    if (fw_rulefiles_read_dir(dir, &files, &nfiles, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch rules diff: %s cannot be read:\n%s\n", dir, err);
        fw_rhist_record_free(&ra);
        return 1;
    }
    fw_rhist_file *f;
    size_t nf;
    fw_rhist_files_from(files, nfiles, &f, &nf);
    printf("diff version %llu -> %s (what `rules push %s` would change)\n",
           (unsigned long long)a, dir, dir);
    size_t n = fw_rhist_diff(ra.files, ra.nfiles, f, nf, stdout, &ds);
    print_summary(&ds, n);
    fw_ruleset *rs = NULL;
    rc = fw_ruleset_load_files(files, nfiles, 1, &rs, err, sizeof err);
    if (rc != 0)
        printf("a push of %s would be refused:\n%s\n", dir, err);
    else
        fw_ruleset_unref(rs);
    fw_rhist_files_free(f, nf);
    fw_rulefiles_free(files, nfiles);
    fw_rhist_record_free(&ra);
    return rc != 0 ? 1 : 0;
}

/* ---- rollback ---------------------------------------------------------------- */

static int cmd_rollback(int argc, char **argv)
{
    struct opts o = { .cmd = "rules rollback", .usage = usage_rollback, .allowed = O_MSG };
    fw_rstore *r;
    uint64_t v;
    int rc = one_version(argc, argv, &o, &r, &v);
    if (rc >= 0)
        return rc;
    static char err[65536];
    char host[256], what[64];
    fw_rhist_meta m;
    meta_of(&o, &m, host, sizeof host);
    fw_rstore_push_result res;
    uint64_t seq = 0;
    rc = fw_rhist_rollback(r, v, &m, &res, &seq, err, sizeof err);
    if (rc == 0) {
        snprintf(what, sizeof what, "version %llu", (unsigned long long)v);
        print_pushed(what, r, &res);
        printf("recorded in the rule history as #%llu: rollback of version %llu "
               "(author %s)\n", (unsigned long long)seq, (unsigned long long)v, m.author);
    } else {
        fprintf(stderr, "fraudwatch rules rollback: %s\n", err);
        if (seq)
            fprintf(stderr, "(recorded in the rule history as refused, #%llu)\n",
                    (unsigned long long)seq);
    }
    fw_rstore_free(r);
    return rc == 0 ? 0 : 1;
}

/* ---- dispatch ------------------------------------------------------------------ */

bool fw_cli_history_handles(const char *sub)
{
    return strcmp(sub, "push") == 0 || strcmp(sub, "history") == 0 ||
           strcmp(sub, "show") == 0 || strcmp(sub, "diff") == 0 ||
           strcmp(sub, "rollback") == 0;
}

int fw_cli_history(int argc, char **argv)
{
    const char *sub = argv[0];
    if (strcmp(sub, "push") == 0)
        return cmd_push(argc, argv);
    if (strcmp(sub, "history") == 0)
        return cmd_history(argc, argv);
    if (strcmp(sub, "show") == 0)
        return cmd_show(argc, argv);
    if (strcmp(sub, "diff") == 0)
        return cmd_diff(argc, argv);
    return cmd_rollback(argc, argv);
}
