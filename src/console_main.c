/* console_main.c — the command lines of the anti-fraud centre's console:
 *
 *   fraudwatch console -c FILE [--set K=V]... [--check-config]
 *   fraudwatch console user add NAME --role admin|dispatcher|officer [--unit U] --redis URL
 *   fraudwatch console user disable|passwd NAME --redis URL
 *   fraudwatch console user list --redis URL
 *   fraudwatch console webhook set UNIT URL | remove UNIT | list --redis URL
 *   fraudwatch routes load FILE --redis URL
 *   fraudwatch routes list --redis URL
 *
 * The settings go through the daemon's machinery (src/config.c, the
 * console's own table), so files, --set, kafka.consumer.* and the error
 * messages work as for `fraudwatch run`.  A password is read from stdin
 * (its first line), never from the command line.  Exit status: 0, 1 a
 * failure of the work, 2 a usage error. */
#include "console.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "redis_conn.h"

static const char usage_console[] =
    "usage: fraudwatch console -c FILE [--set KEY=VALUE]... [--check-config]\n"
    "       fraudwatch console user add NAME --role admin|dispatcher|officer [--unit U] --redis URL\n"
    "       fraudwatch console user disable NAME --redis URL\n"
    "       fraudwatch console user passwd NAME --redis URL\n"
    "       fraudwatch console user list --redis URL\n"
    "       fraudwatch console webhook set UNIT URL --redis URL   (signing secret on stdin)\n"
    "       fraudwatch console webhook remove UNIT --redis URL\n"
    "       fraudwatch console webhook list --redis URL\n"
    "\n"
    "The anti-fraud centre's console: reads the live alert topic into Redis (the\n"
    "store of record), routes each alert to a unit, and serves the page and the\n"
    "API on console.listen (default http://127.0.0.1:8080/; HTTPS with\n"
    "console.tls_cert_file and console.tls_key_file, needed off the loopback).\n"
    "Settings: docs/console.md.  --check-config prints the effective settings and exits.\n"
    "user add / passwd read the password from the first line of stdin; the\n"
    "officer role needs --unit.  --redis may be given as FRAUDWATCH_REDIS.\n";

static const char usage_routes[] =
    "usage: fraudwatch routes load FILE --redis URL\n"
    "       fraudwatch routes list --redis URL\n"
    "\n"
    "The console's routing table, one row a line, tab-separated:\n"
    "  FIELD<TAB>prefix:TEXT<TAB>UNIT   or   FIELD<TAB>regex:PATTERN<TAB>UNIT\n"
    "FIELD is subject, a path into the alert's fields, or * (every alert: the\n"
    "default unit); the first matching row names the unit, else unit \"default\".\n"
    "load checks the whole file, then replaces the table; every running console\n"
    "uses it within a second.\n";

/* --redis URL (or FRAUDWATCH_REDIS) out of argv; the rest kept in order. */
static const char *take_redis(int *argc, char **argv)
{
    const char *url = NULL;
    int o = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--redis") == 0 && i + 1 < *argc) {
            url = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--redis=", 8) == 0) {
            url = argv[i] + 8;
            continue;
        }
        argv[o++] = argv[i];
    }
    *argc = o;
    if (!url)
        url = getenv("FRAUDWATCH_REDIS");
    return url;
}

static redisContext *open_redis(const char *cmdname, const char *url)
{
    signal(SIGPIPE, SIG_IGN);
    int t = 5000;
    char shown[640], err[1024];
    redisContext *c = fw_redis_open(url, &t, shown, sizeof shown, err, sizeof err);
    if (!c)
        fprintf(stderr, "fraudwatch %s: %s\n", cmdname, err);
    return c;
}

static int read_password(char *pw, size_t cap)
{
    if (isatty(STDIN_FILENO))
        fputs("password: ", stderr);
    if (!fgets(pw, (int)cap, stdin)) {
        fputs("fraudwatch console user: no password on stdin\n", stderr);
        return -1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < 8) {
        explicit_bzero(pw, cap);
        fputs("fraudwatch console user: the password must be at least 8 characters\n", stderr);
        return -1;
    }
    return 0;
}

static bool reply_ok(redisReply *r)
{
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* -h or --help anywhere among the arguments (`routes load --help`). */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

static int cmd_user(int argc, char **argv)
{
    const char *url = take_redis(&argc, argv);
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_console, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    const char *name = NULL, *role = NULL, *unit = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(argv[i], "--unit") == 0 && i + 1 < argc)
            unit = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "fraudwatch console user: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    bool add = strcmp(sub, "add") == 0, dis = strcmp(sub, "disable") == 0,
         pwd = strcmp(sub, "passwd") == 0, list = strcmp(sub, "list") == 0;
    if (!add && !dis && !pwd && !list) {
        fprintf(stderr, "fraudwatch console user: unknown subcommand \"%s\"\n", sub);
        fputs(usage_console, stderr);
        return 2;
    }
    if (!list && (!name || !fw_con_name_ok(name))) {
        fputs("fraudwatch console user: NAME is required: letters, digits, _ . : @ -\n", stderr);
        return 2;
    }
    if (add && (!role || (strcmp(role, "admin") && strcmp(role, "dispatcher") &&
                          strcmp(role, "officer")))) {
        fputs("fraudwatch console user add: --role admin|dispatcher|officer is required\n", stderr);
        return 2;
    }
    if (add && strcmp(role, "officer") == 0 && !unit) {
        fputs("fraudwatch console user add: an officer needs --unit U (the unit whose queue "
              "they see)\n", stderr);
        return 2;
    }
    if (unit && !fw_con_name_ok(unit)) {
        fputs("fraudwatch console user add: --unit must be a name (letters, digits, _ . : @ -)\n",
              stderr);
        return 2;
    }
    if (!url) {
        fputs("fraudwatch console user: --redis URL (or FRAUDWATCH_REDIS) is required\n", stderr);
        return 2;
    }
    char pw[1100], hash[512];
    if ((add || pwd) && read_password(pw, sizeof pw) != 0)
        return 1;
    if ((add || pwd) && fw_con_hash_password(pw, hash, sizeof hash) != 0) {
        explicit_bzero(pw, sizeof pw);
        fputs("fraudwatch console user: hashing the password failed\n", stderr);
        return 1;
    }
    if (add || pwd)
        explicit_bzero(pw, sizeof pw);
    redisContext *c = open_redis("console user", url);
    if (!c)
        return 1;
    int rc = 0;
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)fw_wall_ms());
    if (list) {
        redisReply *r = redisCommand(c, "SMEMBERS fw:con:users");
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *x = redisCommand(c, "HMGET fw:con:user:%s role unit disabled",
                                         r->element[i]->str);
            if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 3)
                printf("%s\t%s\t%s%s\n", r->element[i]->str,
                       x->element[0]->str ? x->element[0]->str : "?",
                       x->element[1]->str && *x->element[1]->str ? x->element[1]->str : "-",
                       x->element[2]->str && strcmp(x->element[2]->str, "1") == 0 ? "\tdisabled" : "");
            if (x)
                freeReplyObject(x);
        }
        rc = r && r->type == REDIS_REPLY_ARRAY ? 0 : 1;
        if (r)
            freeReplyObject(r);
    } else {
        redisReply *r = redisCommand(c, "EXISTS fw:con:user:%s", name);
        bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (r)
            freeReplyObject(r);
        if (add && exists) {
            fprintf(stderr, "fraudwatch console user add: user %s exists (use passwd, or "
                    "disable)\n", name);
            rc = 1;
        } else if (!add && !exists) {
            fprintf(stderr, "fraudwatch console user %s: no user %s\n", sub, name);
            rc = 1;
        } else {
            bool ok;
            if (add)
                ok = reply_ok(redisCommand(c, "HSET fw:con:user:%s hash %s role %s unit %s "
                                           "disabled 0 created %s", name, hash, role,
                                           unit ? unit : "", now)) &&
                     reply_ok(redisCommand(c, "SADD fw:con:users %s", name)) &&
                     (!unit || reply_ok(redisCommand(c, "SADD fw:con:units %s", unit)));
            else if (pwd)
                ok = reply_ok(redisCommand(c, "HSET fw:con:user:%s hash %s disabled 0", name, hash));
            else
                ok = reply_ok(redisCommand(c, "HSET fw:con:user:%s disabled 1", name));
            char e[600];
            snprintf(e, sizeof e, "{\"ts\":%s,\"user\":\"cli\",\"action\":\"user_%s\",\"target\":\"%s\"}",
                     now, sub, name);
            ok = ok && reply_ok(redisCommand(c, "RPUSH fw:con:audit %s", e));
            if (ok)
                printf("user %s: %s\n", name, add ? "added" : pwd ? "password changed" : "disabled");
            else
                fprintf(stderr, "fraudwatch console user %s: Redis refused the change: %s\n",
                        sub, c->errstr[0] ? c->errstr : "error reply");
            rc = ok ? 0 : 1;
        }
    }
    explicit_bzero(hash, sizeof hash);
    redisFree(c);
    return rc;
}

static int cmd_webhook(int argc, char **argv)
{
    const char *url = take_redis(&argc, argv);
    if (wants_help(argc, argv)) {
        fputs(usage_console, stdout);
        return 0;
    }
    bool set = argc == 4 && strcmp(argv[1], "set") == 0;
    bool rem = argc == 3 && strcmp(argv[1], "remove") == 0;
    bool list = argc == 2 && strcmp(argv[1], "list") == 0;
    if (!set && !rem && !list) {
        fputs(usage_console, stderr);
        return 2;
    }
    if (!list && !fw_con_name_ok(argv[2])) {
        fputs("fraudwatch console webhook: UNIT must be a name (letters, digits, _ . : @ -)\n",
              stderr);
        return 2;
    }
    if (set && strncmp(argv[3], "http://", 7) != 0 && strncmp(argv[3], "https://", 8) != 0) {
        fputs("fraudwatch console webhook set: the URL must start with http:// or https://\n",
              stderr);
        return 2;
    }
    if (!url) {
        fputs("fraudwatch console webhook: --redis URL (or FRAUDWATCH_REDIS) is required\n", stderr);
        return 2;
    }
    char secret[600] = "";
    if (set) {
        if (isatty(STDIN_FILENO))
            fputs("signing secret: ", stderr);
        if (!fgets(secret, sizeof secret, stdin))
            secret[0] = '\0';
        secret[strcspn(secret, "\r\n")] = '\0';
        if (strlen(secret) < 16) {
            fputs("fraudwatch console webhook set: the signing secret (first line of stdin) "
                  "must be at least 16 characters\n", stderr);
            explicit_bzero(secret, sizeof secret);
            return 1;
        }
    }
    redisContext *c = open_redis("console webhook", url);
    if (!c)
        return 1;
    int rc = 0;
    if (list) {
        redisReply *r = redisCommand(c, "SMEMBERS fw:con:units");
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *x = redisCommand(c, "HGET fw:con:webhook:%s url", r->element[i]->str);
            if (x && x->type == REDIS_REPLY_STRING)
                printf("%s\t%s\n", r->element[i]->str, x->str);
            if (x)
                freeReplyObject(x);
        }
        if (r)
            freeReplyObject(r);
    } else {
        bool ok = set ? reply_ok(redisCommand(c, "HSET fw:con:webhook:%s url %s secret %s", argv[2],
                                              argv[3], secret)) &&
                            reply_ok(redisCommand(c, "SADD fw:con:units %s", argv[2]))
                      : reply_ok(redisCommand(c, "DEL fw:con:webhook:%s", argv[2]));
        if (ok)
            printf("unit %s: webhook %s\n", argv[2], set ? "set" : "removed");
        else
            fprintf(stderr, "fraudwatch console webhook: Redis refused: %s\n",
                    c->errstr[0] ? c->errstr : "error reply");
        rc = ok ? 0 : 1;
    }
    explicit_bzero(secret, sizeof secret);
    redisFree(c);
    return rc;
}

int fw_cli_routes(int argc, char **argv)
{
    const char *url = take_redis(&argc, argv);
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_routes, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    bool load = strcmp(argv[1], "load") == 0, list = strcmp(argv[1], "list") == 0;
    if ((!load && !list) || (load && argc != 3) || (list && argc != 2)) {
        fputs(usage_routes, stderr);
        return 2;
    }
    if (!url) {
        fputs("fraudwatch routes: --redis URL (or FRAUDWATCH_REDIS) is required\n", stderr);
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    if (load) {
        FILE *f = fopen(argv[2], "rb");
        if (!f) {
            fprintf(stderr, "fraudwatch routes load: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            text = fw_xrealloc(text, len + n + 1);
            memcpy(text + len, buf, n);
            len += n;
        }
        fclose(f);
        if (!text)
            text = fw_xstrdup("");
        text[len] = '\0';
        char err[600];
        fw_con_routes *r = fw_con_routes_parse(text, len, err, sizeof err);
        if (!r) {
            fprintf(stderr, "fraudwatch routes load: %s: %s; nothing changed\n", argv[2], err);
            free(text);
            return 1;
        }
        size_t rows = fw_con_routes_count(r);
        fw_con_routes_free(r);
        redisContext *c = open_redis("routes load", url);
        if (!c) {
            free(text);
            return 1;
        }
        redisAppendCommand(c, "MULTI");
        redisAppendCommand(c, "SET fw:con:routes %b", text, len);
        redisAppendCommand(c, "INCR fw:con:routes:version");
        redisAppendCommand(c, "EXEC");
        bool ok = true;
        long long version = 0;
        for (int i = 0; i < 4; i++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) != REDIS_OK) {
                ok = false;
                break;
            }
            redisReply *x = rep;
            if (x->type == REDIS_REPLY_ERROR || (i == 3 && x->type != REDIS_REPLY_ARRAY))
                ok = false;
            if (i == 3 && x->type == REDIS_REPLY_ARRAY && x->elements == 2)
                version = x->element[1]->integer;
            freeReplyObject(x);
        }
        if (ok)
            printf("%s: %zu route%s loaded as version %lld\n", argv[2], rows, rows == 1 ? "" : "s",
                   version);
        else
            fprintf(stderr, "fraudwatch routes load: Redis refused: %s\n",
                    c->errstr[0] ? c->errstr : "error reply");
        redisFree(c);
        free(text);
        return ok ? 0 : 1;
    }
    redisContext *c = open_redis("routes list", url);
    if (!c)
        return 1;
    redisReply *r = redisCommand(c, "GET fw:con:routes");
    int rc = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "fraudwatch routes list: %s\n", c->errstr[0] ? c->errstr : "error reply");
        rc = 1;
    } else if (r->type == REDIS_REPLY_STRING) {
        fwrite(r->str, 1, r->len, stdout);
        if (r->len && r->str[r->len - 1] != '\n')
            putchar('\n');
    } else {
        printf("# no routes: every alert goes to unit \"%s\"\n", FW_CON_DEFAULT_UNIT);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

int fw_console_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "user") == 0)
        return cmd_user(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "webhook") == 0)
        return cmd_webhook(argc - 1, argv + 1);
    const char *file = NULL;
    bool check = false;
    fw_settings *s = fw_console_config_new();
    if (!s) {
        fputs("fraudwatch console: out of memory\n", stderr);
        return 1;
    }
    char err[8192];
    /* The file first, then every --set in order, whatever the order given. */
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            check = true;
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
            i++;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_console, stdout);
            fw_config_free(s);
            return 0;
        } else {
            fprintf(stderr, "fraudwatch console: unexpected argument \"%s\"\n", argv[i]);
            fputs(usage_console, stderr);
            fw_config_free(s);
            return 2;
        }
    }
    if (file && fw_config_load_file(s, file, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch console: %s\n", err);
        fw_config_free(s);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") != 0 || i + 1 >= argc)
            continue;
        char *kv = argv[++i], *eq = strchr(kv, '=');
        char origin[4200];
        snprintf(origin, sizeof origin, "--set %s", kv);
        if (!eq) {
            fprintf(stderr, "fraudwatch console: --set wants KEY=VALUE\n");
            fw_config_free(s);
            return 2;
        }
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        if (fw_config_set(s, key, eq + 1, origin, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch console: %s\n", err);
            fw_config_free(s);
            return 1;
        }
    }
    if (fw_config_validate(s, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch console: %s\n", err);
        fw_config_free(s);
        return 1;
    }
    if (check) {
        fw_config_print(s, stdout);
        fw_config_free(s);
        return 0;
    }
    enum fw_log_level lvl;
    if (fw_log_parse_level(s->log_level, &lvl) == 0)
        fw_log_set_level(lvl);
    struct stat sb;
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/index.html", s->console_web_dir);
    if (stat(idx, &sb) != 0)
        fw_log(FW_LOG_WARN, "console", "the page is missing: console.web_dir has no index.html "
               "(the API works without it)", "web_dir=\"%s\"", s->console_web_dir);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    fw_con_store *st = fw_con_store_new(s->console_redis, 2000);
    fw_metrics *m = fw_metrics_new();
    if (!m) {
        fputs("fraudwatch console: out of memory\n", stderr);
        return 1;
    }
    fw_con_http *h = fw_con_http_start(s, st, m, err, sizeof err);
    if (!h) {
        fprintf(stderr, "fraudwatch console: %s\n", err);
        fw_con_store_free(st);
        fw_metrics_free(m);
        fw_config_free(s);
        return 1;
    }
    fw_con_ingest *in = fw_con_ingest_start(s, st, m, err, sizeof err);
    if (!in) {
        fprintf(stderr, "fraudwatch console: %s\n", err);
        fw_con_http_stop(h);
        fw_con_store_free(st);
        fw_metrics_free(m);
        fw_config_free(s);
        return 1;
    }
    fw_con_webhooks *wh = fw_con_webhooks_start(s, st, m, err, sizeof err);
    if (!wh)
        fw_log(FW_LOG_ERROR, "console", "webhooks disabled", "reason=\"%s\"", err);
    fw_log(FW_LOG_INFO, "console", "started", "listen=\"%s://%s/\" topic=\"%s\" group=\"%s\"",
           *s->console_tls_cert_file ? "https" : "http", s->console_listen,
           s->console_alerts_topic, s->group_id);
    int sig = 0;
    sigwait(&set, &sig);
    fw_log(FW_LOG_INFO, "console", "stopping", "signal=%d", sig);
    fw_con_ingest_stop(in);
    fw_con_webhooks_stop(wh);
    fw_con_http_stop(h);
    fw_con_store_free(st);
    fw_metrics_free(m);
    fw_config_free(s);
    return 0;
}
