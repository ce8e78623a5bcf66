/* test_rulestore.c — the Redis rule store against real redis-server
 * processes: push/pull round trip, a refused push changes nothing, fetch
 * feeds the loader, versions and generation, watchlists (a 200k-line load,
 * timed), heartbeats and status, URLs and AUTH (password and ACL user),
 * notifications, and a stalled server (SIGSTOP) that must fail calls within
 * the timeout instead of hanging them.
 *
 * Issue 10: watchlists changed by deltas (in memory, against a reference),
 * the change log (what it covers, and the full reads when it does not), and
 * the daemon's reloader driven in-process: a push applied while a 1M-entry
 * list churns, the heartbeat during a fetch slowed by a proxy, the least
 * ACL lines of docs/redis.md, and users lacking SUBSCRIBE or write rights
 * (what is logged, and that every log line is one logfmt record).
 *
 * The group setup starts two servers on free ports of 127.0.0.1 without
 * persistence — an open one and one with --requirepass plus an ACL user —
 * and the teardown stops them; the stall test starts a third of its own.
 * Without redis-server installed the test is skipped (exit 77). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>

#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "fraudwatch/event.h"
#include "fraudwatch/rulestore.h"
#include "fraudwatch/ruleset.h"

#define RULES_DIR FW_SOURCE_DIR "/rules"

/* ---- redis-server processes ------------------------------------------------- */

struct server {
    pid_t pid;
    int port;
    char url[128];
};

static struct server open_srv, auth_srv;
static redisContext *raw;   /* to open_srv, for looking behind the API */
static char tmp_root[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *connect_raw(int port, int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && !c->err)
        redisSetTimeout(c, tv);
    return c;
}

static void stop_server(struct server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGCONT);
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* Starts redis-server on a free port; extra: NULL-terminated arguments. */
static int start_server(struct server *s, const char *const *extra)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (s->port <= 0)
            continue;
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        const char *argv[32] = { "redis-server", "--port", port, "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", tmp_root, "--loglevel", "warning" };
        int n = 13;
        for (int i = 0; extra && extra[i] && n < 31; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        s->pid = fork();
        if (s->pid < 0)
            return -1;
        if (s->pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the test */
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execvp("redis-server", (char *const *)argv);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
                s->pid = 0;
                break;   /* died: the port was taken meanwhile? try another */
            }
            redisContext *c = connect_raw(s->port, 500);
            bool up = c && !c->err;
            if (up) {
                redisReply *r = redisCommand(c, "PING");
                up = r != NULL;   /* +PONG, or -NOAUTH: it answers */
                if (r)
                    freeReplyObject(r);
            }
            if (c)
                redisFree(c);
            if (up) {
                snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
                return 0;
            }
            usleep(50000);
        }
        stop_server(s);
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/fw-test-rstore-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    if (start_server(&open_srv, NULL) != 0)
        return -1;
    const char *auth[] = { "--requirepass", "secret", NULL };
    if (start_server(&auth_srv, auth) != 0)
        return -1;
    /* An ACL user with the permissions docs/redis.md asks for, no more. */
    redisContext *c = connect_raw(auth_srv.port, 2000);
    redisReply *r = redisCommand(c, "AUTH secret");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    r = redisCommand(c, "ACL SETUSER fwuser on >pw@x ~fraudwatch:* "
                        "&fraudwatch:notify -@all +@read +@write +@keyspace "
                        "+@transaction +@pubsub +@connection -@dangerous");
    ok = ok && r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    raw = connect_raw(open_srv.port, 5000);
    return ok && raw && !raw->err ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (raw)
        redisFree(raw);
    stop_server(&open_srv);
    stop_server(&auth_srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmp_root);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static redisReply *rcmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long rint_of(const char *fmt, const char *arg)
{
    redisReply *r = rcmd(fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                : r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

static void flush(void)
{
    freeReplyObject(rcmd("FLUSHALL"));
}

static size_t count_keys(const char *pattern)
{
    redisReply *r = rcmd("KEYS %s", pattern);
    size_t n = r->elements;
    freeReplyObject(r);
    return n;
}

static fw_rstore *connect_open(void)
{
    fw_rstore *r;
    char err[1024];
    if (fw_rstore_connect(open_srv.url, 2000, &r, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    return r;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a .list text, as loaded (trimmed, no comments), sorted and
 * unique, joined by '\n'. */
static char *list_set(const char *text)
{
    size_t n = 0, cap = 64;
    char **v = malloc(cap * sizeof *v);
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t' || *line == '\r')
            line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (!l || line[0] == '#')
            continue;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = line;
    }
    qsort(v, n, sizeof *v, str_cmp);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(v[i]) + 1;
    char *out = calloc(1, total);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0) {
            strcat(out, v[i]);
            strcat(out, "\n");
        }
    free(v);
    free(copy);
    return out;
}

static void make_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp_root, name);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    assert_int_equal(system(cmd), 0);
}

/* A copy of the repo's rules/ in tmp_root/name. */
static void copy_rules(char *out, size_t n, const char *name)
{
    make_dir(out, n, name);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", RULES_DIR, out);
    assert_int_equal(system(cmd), 0);
}

static size_t shipped_rule_count(void)
{
    fw_ruleset *rs;
    char err[4096];
    if (fw_ruleset_load_dir(RULES_DIR, 1, &rs, err, sizeof err) != 0)
        fail_msg("shipped rules: %s", err);
    size_t n = fw_ruleset_rule_count(rs);
    fw_ruleset_unref(rs);
    return n;
}

static void push_shipped(fw_rstore *r, fw_rstore_push_result *res)
{
    char err[16384];
    if (fw_rstore_push_dir(r, RULES_DIR, res, err, sizeof err) != 0)
        fail_msg("push: %s", err);
}

/* Everything under fraudwatch:* (but heartbeats) as one comparable text. */
static char *dump_store(void)
{
    redisReply *keys = rcmd("KEYS fraudwatch:*");
    char **names = malloc((keys->elements + 1) * sizeof *names);
    for (size_t i = 0; i < keys->elements; i++)
        names[i] = strdup(keys->element[i]->str);
    size_t nk = keys->elements;
    freeReplyObject(keys);
    qsort(names, nk, sizeof *names, str_cmp);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < nk; i++) {
        redisReply *dump = rcmd("DUMP %s", names[i]);
        size_t need = len + strlen(names[i]) + 2 * dump->len + 8;
        if (need > cap)
            out = realloc(out, cap = need * 2);
        len += (size_t)sprintf(out + len, "%s=", names[i]);
        for (size_t j = 0; j < dump->len; j++)
            len += (size_t)sprintf(out + len, "%02x", (unsigned char)dump->str[j]);
        out[len++] = '\n';
        out[len] = '\0';
        freeReplyObject(dump);
        free(names[i]);
    }
    free(names);
    return out;
}

/* ---- URLs and AUTH -------------------------------------------------------------- */

static void expect_connect_error(const char *url, const char *needle, const char *absent)
{
    fw_rstore *r = (fw_rstore *)1;
    char err[1024] = "";
    if (fw_rstore_connect(url, 1000, &r, err, sizeof err) == 0)
        fail_msg("connected to %s", url);
    assert_null(r);
    if (!strstr(err, needle))
        fail_msg("%s: error \"%s\" lacks \"%s\"", url, err, needle);
    if (absent && strstr(err, absent))
        fail_msg("%s: error \"%s\" shows \"%s\"", url, err, absent);
}

static void test_urls(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", open_srv.port);
    expect_connect_error(url, "TLS", NULL);
    expect_connect_error(url, "hiredis 0.14", NULL);
    expect_connect_error("redis://127.0.0.1:99999", "the port is not a number 1..65535", NULL);
    expect_connect_error("redis://127.0.0.1:0", "1..65535", NULL);
    expect_connect_error("redis://127.0.0.1:6x79", "port", NULL);
    expect_connect_error("redis://127.0.0.1:", "port", NULL);
    expect_connect_error("http://127.0.0.1:6379", "not a Redis URL", NULL);
    expect_connect_error("redis://", "no host", NULL);
    expect_connect_error("redis://:6379", "no host", NULL);
    expect_connect_error("redis://127.0.0.1:6379/x", "database", NULL);
    expect_connect_error("redis://127.0.0.1:6379?db=1", "unexpected", NULL);
    expect_connect_error("redis://user@127.0.0.1", "no password", NULL);
    expect_connect_error("redis://:@127.0.0.1", "password is empty", NULL);
    expect_connect_error("redis://:a%zz@127.0.0.1", "%-encoded", NULL);
    expect_connect_error("", "no Redis URL", NULL);

    /* Nobody listens: the error names the address and the cause. */
    int port = free_port();
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%d", port);
    char needle[64];
    snprintf(needle, sizeof needle, "redis://:****@127.0.0.1:%d: cannot connect", port);
    expect_connect_error(url, needle, "hunter2");
    expect_connect_error(url, "refused", NULL);

    /* A good URL with a database and an IPv6-style host parse. */
    fw_rstore *r;
    char err[1024];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", open_srv.port);
    assert_int_equal(fw_rstore_connect(url, 1000, &r, err, sizeof err), 0);
    assert_string_equal(fw_rstore_where(r), open_srv.url);
    fw_rstore_free(r);
}

static void test_auth(void **state)
{
    (void)state;
    char url[256], err[16384];
    fw_rstore *r;
    /* No password: the server says NOAUTH at the first command (our PING). */
    expect_connect_error(auth_srv.url, "requires a password", NULL);
    snprintf(url, sizeof url, "redis://:wrong-pw@127.0.0.1:%d", auth_srv.port);
    expect_connect_error(url, "authentication failed", "wrong-pw");
    snprintf(url, sizeof url, "redis://fwuser:nope@127.0.0.1:%d", auth_srv.port);
    expect_connect_error(url, "check the user in the URL and the password in the URL", "nope");

    /* The default user's password. */
    snprintf(url, sizeof url, "redis://:secret@127.0.0.1:%d", auth_srv.port);
    assert_int_equal(fw_rstore_connect(url, 1000, &r, err, sizeof err), 0);
    assert_null(strstr(fw_rstore_where(r), "secret"));
    fw_rstore_free(r);

    /* The ACL user (password "pw@x", %-encoded) can do everything, in db 3. */
    snprintf(url, sizeof url, "redis://fwuser:pw%%40x@127.0.0.1:%d/3", auth_srv.port);
    if (fw_rstore_connect(url, 1000, &r, err, sizeof err) != 0)
        fail_msg("ACL user: %s", err);
    fw_rstore_push_result pr;
    if (fw_rstore_push_dir(r, RULES_DIR, &pr, err, sizeof err) != 0)
        fail_msg("ACL user push: %s", err);
    const char *vals[] = { "13811112222" };
    fw_rstore_list_result lr;
    if (fw_rstore_list_add(r, "fraud_numbers", vals, 1, &lr, err, sizeof err) != 0)
        fail_msg("ACL user list add: %s", err);
    if (fw_rstore_list_remove(r, "fraud_numbers", vals, 1, &lr, err, sizeof err) != 0)
        fail_msg("ACL user list remove: %s", err);
    if (fw_rstore_list_replace(r, "extra", "1\n2\n", 4, &lr, err, sizeof err) != 0)
        fail_msg("ACL user list load: %s", err);
    fw_rulefile *files;
    size_t n;
    uint64_t v, g;
    if (fw_rstore_fetch(r, &files, &n, &v, &g, err, sizeof err) != 0)
        fail_msg("ACL user fetch: %s", err);
    fw_rulefiles_free(files, n);
    fw_heartbeat hb = { .instance = "acl-1", .host = "h", .pid = 1, .last_ok = true };
    if (fw_rstore_heartbeat(r, &hb, 5, err, sizeof err) != 0)
        fail_msg("ACL user heartbeat: %s", err);
    fw_rstore_status *st;
    if (fw_rstore_status_read(r, &st, err, sizeof err) != 0)
        fail_msg("ACL user status: %s", err);
    assert_int_equal(st->ndaemons, 1);
    fw_rstore_status_free(st);
    char dir[256];
    make_dir(dir, sizeof dir, "acl-pull");
    if (fw_rstore_pull_dir(r, dir, false, NULL, err, sizeof err) != 0)
        fail_msg("ACL user pull: %s", err);
    fw_rstore_free(r);
    fw_rsub *s;
    if (fw_rsub_connect(url, 1000, &s, err, sizeof err) != 0)
        fail_msg("ACL user subscribe: %s", err);
    fw_rsub_free(s);

    /* It all went to db 3, not db 0. */
    redisContext *c = connect_raw(auth_srv.port, 2000);
    redisReply *rep = redisCommand(c, "AUTH secret");
    freeReplyObject(rep);
    rep = redisCommand(c, "EXISTS fraudwatch:rules:version");
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    rep = redisCommand(c, "SELECT 3");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET fraudwatch:rules:version");
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    redisFree(c);
}

/* ---- push, pull, fetch ------------------------------------------------------------ */

static void test_push_pull_roundtrip(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    assert_int_equal(pr.version, 1);
    assert_int_equal(pr.generation, 1);
    assert_int_equal(pr.nrules, shipped_rule_count());
    assert_int_equal(pr.nlists, 2);
    assert_int_equal(count_keys("fraudwatch:tmp:*"), 0);
    assert_int_equal(rint_of("TTL %s", "fraudwatch:list:fraud_numbers"), -1);

    char dir[256], err[4096];
    make_dir(dir, sizeof dir, "pulled/deeper");
    fw_rstore_pull_result res;
    if (fw_rstore_pull_dir(r, dir, false, &res, err, sizeof err) != 0)
        fail_msg("pull: %s", err);
    assert_int_equal(res.version, 1);
    assert_int_equal(res.nlists, 2);

    /* Every file of rules/ is back: .json byte for byte, .list as a set. */
    DIR *d = opendir(RULES_DIR);
    struct dirent *de;
    size_t nfiles = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", RULES_DIR, de->d_name);
        snprintf(b, sizeof b, "%s/%s", dir, de->d_name);
        size_t la, lb;
        char *da = slurp(a, &la), *db = slurp(b, &lb);
        if (!db)
            fail_msg("%s was not pulled", de->d_name);
        if (strstr(de->d_name, ".json")) {
            assert_int_equal(la, lb);
            assert_memory_equal(da, db, la);
        } else {
            char *sa = list_set(da), *sb = list_set(db);
            assert_string_equal(sa, sb);
            free(sa);
            free(sb);
        }
        free(da);
        free(db);
        nfiles++;
    }
    closedir(d);
    assert_int_equal(nfiles, pr.nfiles + pr.nlists);

    /* The pulled directory is a valid set again. */
    fw_ruleset *rs;
    if (fw_ruleset_load_dir(dir, 1, &rs, err, sizeof err) != 0)
        fail_msg("pulled set refused: %s", err);
    assert_int_equal(fw_ruleset_rule_count(rs), pr.nrules);
    fw_ruleset_unref(rs);

    /* A non-empty directory needs --force; --force leaves DIR = the set. */
    assert_int_equal(fw_rstore_pull_dir(r, dir, false, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "not empty"));
    assert_non_null(strstr(err, "--force"));
    char path[512];
    snprintf(path, sizeof path, "%s/stale.json", dir);
    spit(path, "[]");
    snprintf(path, sizeof path, "%s/old.list", dir);
    spit(path, "1\n");
    snprintf(path, sizeof path, "%s/README.txt", dir);
    spit(path, "keep me");
    if (fw_rstore_pull_dir(r, dir, true, &res, err, sizeof err) != 0)
        fail_msg("pull --force: %s", err);
    assert_int_equal(res.nremoved, 2);
    snprintf(path, sizeof path, "%s/stale.json", dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/README.txt", dir);
    assert_int_equal(access(path, F_OK), 0);

    /* Pulling from an empty store is an error, not an empty directory. */
    flush();
    make_dir(dir, sizeof dir, "pulled-empty");
    assert_int_not_equal(fw_rstore_pull_dir(r, dir, false, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, "no rule set yet"));
    assert_int_equal(access(dir, F_OK), -1);
    fw_rstore_free(r);
}

static void test_refused_push_changes_nothing(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    const char *vals[] = { "13899990000" };
    char err[16384];
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", vals, 1, NULL, err,
                                        sizeof err), 0);
    char *before = dump_store();

    char dir[256], path[512];
    copy_rules(dir, sizeof dir, "bad-set");
    snprintf(path, sizeof path, "%s/zz_bad.json", dir);
    spit(path, "[{\"id\":\"BAD1\",\"event\":\"call\",\"treshold\":{}},"
               "{\"id\":\"BAD2\",\"event\":\"sms\",\"where\":[{\"field\":\"sender\","
               "\"in_list\":\"no_such_list\"}]}]");
    snprintf(path, sizeof path, "%s/fraud_numbers.list", dir);
    spit(path, "# shrunk\n1\n");
    int rc = fw_rstore_push_dir(r, dir, &pr, err, sizeof err);
    assert_int_equal(rc, FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "nothing was changed"));
    assert_non_null(strstr(err, "zz_bad.json: rule BAD1: treshold"));
    assert_non_null(strstr(err, "zz_bad.json: rule BAD2"));
    assert_non_null(strstr(err, "no_such_list"));

    char *after = dump_store();
    assert_string_equal(before, after);
    assert_int_equal(count_keys("fraudwatch:tmp:*"), 0);
    free(after);

    /* No rule file at all is refused as well. */
    make_dir(dir, sizeof dir, "only-lists");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/a.list", dir);
    spit(path, "1\n");
    assert_int_equal(fw_rstore_push_dir(r, dir, NULL, err, sizeof err), FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "no rules files"));
    after = dump_store();
    assert_string_equal(before, after);
    free(after);

    /* A FIFO in the directory: refused unread (it would block the read),
     * naming it; Redis untouched. */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/x.json", dir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    alarm(60);
    assert_int_equal(fw_rstore_push_dir(r, dir, NULL, err, sizeof err), FW_RSTORE_REFUSED);
    alarm(0);
    assert_non_null(strstr(err, "nothing was changed in redis"));
    assert_non_null(strstr(err, "x.json: not a regular file (a FIFO)"));
    unlink(fifo);
    after = dump_store();
    assert_string_equal(before, after);
    free(after);
    free(before);

    /* A directory that cannot be read is an error that names it. */
    assert_int_not_equal(fw_rstore_push_dir(r, "/nonexistent/rules", NULL, err,
                                            sizeof err), 0);
    assert_non_null(strstr(err, "/nonexistent/rules"));
    fw_rstore_free(r);
}

static void test_fetch_feeds_loader(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rulefile *files;
    size_t n;
    uint64_t version = 9, gen = 9;
    char err[16384];
    /* Empty store: no files, version 0, generation 0. */
    assert_int_equal(fw_rstore_fetch(r, &files, &n, &version, &gen, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(version, 0);
    assert_int_equal(gen, 0);
    fw_rulefiles_free(files, n);

    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    push_shipped(r, &pr);
    assert_int_equal(pr.version, 2);
    if (fw_rstore_fetch(r, &files, &n, &version, &gen, err, sizeof err) != 0)
        fail_msg("fetch: %s", err);
    assert_int_equal(version, 2);
    assert_int_equal(gen, 2);
    assert_int_equal(n, pr.nfiles + pr.nlists);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(files[i - 1].name, files[i].name) < 0);
    fw_ruleset *rs;
    if (fw_ruleset_load_files(files, n, version, &rs, err, sizeof err) != 0)
        fail_msg("fetched set refused: %s", err);
    assert_int_equal(fw_ruleset_rule_count(rs), shipped_rule_count());
    assert_int_equal(fw_ruleset_version(rs), 2);
    fw_ruleset_unref(rs);
    fw_rulefiles_free(files, n);

    /* A list change: the next fetch has it (the other list from the cache). */
    const char *vals[] = { "8613800001111", "8613800002222" };
    assert_int_equal(fw_rstore_list_add(r, "mule_accounts", vals, 2, NULL, err,
                                        sizeof err), 0);
    const char *gone[] = { "8613800001111" };
    assert_int_equal(fw_rstore_list_remove(r, "mule_accounts", gone, 1, NULL, err,
                                           sizeof err), 0);
    if (fw_rstore_fetch(r, &files, &n, &version, &gen, err, sizeof err) != 0)
        fail_msg("fetch: %s", err);
    assert_int_equal(gen, 4);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(files[i].name, "mule_accounts.list") == 0) {
            assert_non_null(strstr(files[i].data, "8613800002222\n"));
            assert_null(strstr(files[i].data, "8613800001111"));
            seen = true;
        }
        if (strcmp(files[i].name, "fraud_numbers.list") == 0) {
            char orig[512];
            snprintf(orig, sizeof orig, "%s/fraud_numbers.list", RULES_DIR);
            char *o = slurp(orig, NULL), *a = list_set(o),
                 *b = list_set(files[i].data);
            assert_string_equal(a, b);
            free(o);
            free(a);
            free(b);
        }
    }
    assert_true(seen);
    if (fw_ruleset_load_files(files, n, version, &rs, err, sizeof err) != 0)
        fail_msg("fetched set refused: %s", err);
    fw_ruleset_unref(rs);
    fw_rulefiles_free(files, n);
    fw_rstore_free(r);
}

/* ---- versions, generation, notifications -------------------------------------------- */

static void test_generation_and_versions(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    char err[4096];
    uint64_t gen = 99;
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_int_equal(gen, 0);

    fw_rsub *s;
    if (fw_rsub_connect(open_srv.url, 1000, &s, err, sizeof err) != 0)
        fail_msg("subscribe: %s", err);
    assert_int_equal(fw_rsub_wait(s, 0), 0);
    redisReply *sub = rcmd("PUBSUB NUMSUB fraudwatch:notify");
    assert_int_equal(sub->element[1]->integer, 1);
    freeReplyObject(sub);

    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    assert_int_equal(pr.notified, 1);
    assert_int_equal(fw_rsub_wait(s, 2000), 1);
    assert_int_equal(fw_rsub_wait(s, 0), 0);
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_int_equal(gen, 1);
    assert_int_equal(rint_of("GET %s", "fraudwatch:list:fraud_numbers:version"), 1);

    fw_rstore_list_result lr;
    const char *vals[] = { "13800000001", "  13800000002\t", "13800000001" };
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", vals, 3, &lr, err, sizeof err), 0);
    assert_int_equal(lr.changed, 2);
    assert_int_equal(lr.version, 2);
    assert_int_equal(lr.generation, 2);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:list:fraud_numbers %s", "13800000002"), 1);
    assert_int_equal(fw_rsub_wait(s, 2000), 1);

    assert_int_equal(fw_rstore_list_remove(r, "fraud_numbers", vals, 1, &lr, err, sizeof err), 0);
    assert_int_equal(lr.changed, 1);
    assert_int_equal(lr.version, 3);
    assert_int_equal(lr.generation, 3);
    assert_int_equal(fw_rsub_wait(s, 2000), 1);

    /* A brand-new list by add; versions are per list. */
    assert_int_equal(fw_rstore_list_add(r, "new_list", vals, 1, &lr, err, sizeof err), 0);
    assert_int_equal(lr.version, 1);
    assert_int_equal(lr.generation, 4);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:lists %s", "new_list"), 1);

    assert_int_equal(fw_rstore_list_replace(r, "new_list", "# x\n1\n2\n", 8, &lr, err,
                                            sizeof err), 0);
    assert_int_equal(lr.version, 2);
    assert_int_equal(lr.generation, 5);
    assert_int_equal(lr.size, 2);

    /* A push bumps every list it writes and the rules version. */
    push_shipped(r, &pr);
    assert_int_equal(pr.version, 2);
    assert_int_equal(pr.generation, 6);
    assert_int_equal(pr.nremoved, 1);   /* new_list is not in rules/ */
    assert_int_equal(rint_of("GET %s", "fraudwatch:list:fraud_numbers:version"), 4);
    assert_int_equal(rint_of("GET %s", "fraudwatch:list:new_list:version"), 3);
    assert_int_equal(rint_of("EXISTS %s", "fraudwatch:list:new_list"), 0);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:lists %s", "new_list"), 0);
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_int_equal(gen, 6);

    /* What cannot change. */
    assert_int_equal(fw_rstore_list_remove(r, "nope", vals, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "no watchlist \"nope\""));
    assert_int_equal(fw_rstore_list_add(r, "bad name", vals, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "not a valid watchlist name"));
    assert_int_equal(fw_rstore_list_add(r, ".hidden", vals, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    assert_int_equal(fw_rstore_list_add(r, longname, vals, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    const char *bad1[] = { "  " }, *bad2[] = { "#123" }, *bad3[] = { "1\n2" };
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", bad1, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", bad2, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", bad3, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_int_equal(fw_rstore_list_load(r, "../etc", "/dev/null", NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    /* Entries that could never match an event field (issue 10, item 10). */
    char *huge = malloc(20000);
    memset(huge, '7', 19999);
    huge[19999] = '\0';
    const char *bad4[] = { huge }, *bad5[] = { "138\xff" };
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", bad4, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "longer than 1024 bytes"));
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", bad5, 1, NULL, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "not valid UTF-8"));
    free(huge);
    static const char nul[] = "13800000000\n138\0" "00\n";
    assert_int_equal(fw_rstore_list_replace(r, "fraud_numbers", nul, sizeof nul - 1, NULL, err,
                                            sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "line 2: the entry holds a NUL byte"));
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_int_equal(gen, 6);
    fw_rsub_free(s);
    fw_rstore_free(r);
}

static void test_list_load_large(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    char path[512], err[4096];
    snprintf(path, sizeof path, "%s/big.list", tmp_root);
    FILE *f = fopen(path, "w");
    fputs("# 200k synthetic numbers\n\n", f);
    for (int i = 0; i < 200000; i++)
        fprintf(f, i % 1000 == 0 ? "  %d  \n# c\n\n" : "%d\n", 1390000000 + i);
    fclose(f);

    fw_rstore_list_result lr;
    int64_t t0 = fw_mono_ms();
    if (fw_rstore_list_load(r, "fraud_numbers", path, &lr, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    int64_t ms = fw_mono_ms() - t0;
    printf("lists load: 200000 entries in %lld ms (%.0f entries/s)\n", (long long)ms,
           200000.0 / ((double)(ms ? ms : 1) / 1000.0));
    assert_int_equal(lr.size, 200000);
    assert_int_equal(lr.version, 2);
    assert_int_equal(rint_of("SCARD %s", "fraudwatch:list:fraud_numbers"), 200000);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:list:fraud_numbers %s", "1390000000"), 1);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:list:fraud_numbers %s", "1390199999"), 1);
    /* The old entries are gone: load replaces. */
    assert_int_equal(rint_of("SISMEMBER fraudwatch:list:fraud_numbers %s", "13800138000"), 0);
    assert_int_equal(rint_of("TTL %s", "fraudwatch:list:fraud_numbers"), -1);
    assert_int_equal(count_keys("fraudwatch:tmp:*"), 0);

    /* Fetch reads it with SSCAN; the loader takes it. */
    fw_rulefile *files;
    size_t n;
    uint64_t v, g;
    t0 = fw_mono_ms();
    if (fw_rstore_fetch(r, &files, &n, &v, &g, err, sizeof err) != 0)
        fail_msg("fetch: %s", err);
    printf("fetch with a 200000-entry list: %lld ms\n", (long long)(fw_mono_ms() - t0));
    fw_ruleset *rs;
    if (fw_ruleset_load_files(files, n, v, &rs, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    fw_ruleset_unref(rs);
    fw_rulefiles_free(files, n);

    /* Loading an empty file empties the list; it still exists. */
    snprintf(path, sizeof path, "%s/empty.list", tmp_root);
    spit(path, "# nothing left\n\n");
    assert_int_equal(fw_rstore_list_load(r, "fraud_numbers", path, &lr, err, sizeof err), 0);
    assert_int_equal(lr.size, 0);
    assert_int_equal(lr.version, 3);
    assert_int_equal(rint_of("EXISTS %s", "fraudwatch:list:fraud_numbers"), 0);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:lists %s", "fraud_numbers"), 1);
    char dir[256];
    make_dir(dir, sizeof dir, "pull-empty-list");
    assert_int_equal(fw_rstore_pull_dir(r, dir, false, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/fraud_numbers.list", dir);
    char *text = slurp(path, NULL), *set = list_set(text);
    assert_string_equal(set, "");
    free(text);
    free(set);

    assert_int_not_equal(fw_rstore_list_load(r, "x", "/nonexistent.list", NULL, err,
                                             sizeof err), 0);
    assert_non_null(strstr(err, "/nonexistent.list"));

    /* A FIFO is refused without blocking (the alarm is the hang guard), a
     * sparse 3 GiB file by its size, unread; the list is unchanged. */
    int64_t size_before = rint_of("SCARD %s", "fraudwatch:list:fraud_numbers");
    snprintf(path, sizeof path, "%s/fifo.list", tmp_root);
    assert_int_equal(mkfifo(path, 0644), 0);
    alarm(60);
    assert_int_equal(fw_rstore_list_load(r, "fraud_numbers", path, NULL, err, sizeof err),
                     FW_RSTORE_ERR);
    alarm(0);
    assert_non_null(strstr(err, "fifo.list: not a regular file (a FIFO)"));
    unlink(path);
    snprintf(path, sizeof path, "%s/huge.list", tmp_root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)3 << 30), 0);
    close(fd);
    assert_int_equal(fw_rstore_list_load(r, "fraud_numbers", path, NULL, err, sizeof err),
                     FW_RSTORE_ERR);
    assert_non_null(strstr(err, "huge.list: 3221225472 bytes, over the 256 MiB limit "
                                "for a watchlist file"));
    unlink(path);
    assert_int_equal(rint_of("SCARD %s", "fraudwatch:list:fraud_numbers"), size_before);
    fw_rstore_free(r);
}

static void test_push_with_empty_list(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    char dir[256], path[512], err[16384];
    copy_rules(dir, sizeof dir, "with-empty");
    snprintf(path, sizeof path, "%s/nobody.list", dir);
    spit(path, "# no entries yet\n");
    fw_rstore_push_result pr;
    if (fw_rstore_push_dir(r, dir, &pr, err, sizeof err) != 0)
        fail_msg("push: %s", err);
    assert_int_equal(pr.nlists, 3);
    assert_int_equal(rint_of("SISMEMBER fraudwatch:lists %s", "nobody"), 1);
    assert_int_equal(rint_of("EXISTS %s", "fraudwatch:list:nobody"), 0);
    fw_rstore_status *st;
    assert_int_equal(fw_rstore_status_read(r, &st, err, sizeof err), 0);
    assert_int_equal(st->nlists, 3);
    assert_string_equal(st->lists[1].name, "mule_accounts");
    assert_string_equal(st->lists[2].name, "nobody");
    assert_int_equal(st->lists[2].size, 0);
    assert_int_equal(st->lists[2].version, 1);
    fw_rstore_status_free(st);
    fw_rstore_free(r);
}

/* Writers at once: 3 processes add to one list while the parent pushes and
 * a 4th process fetches.  WATCH conflicts are retried, no change is lost
 * (every version and the generation count every change exactly once), and
 * every fetched snapshot is a valid set. */
static void test_concurrent_writers(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    enum { ADDERS = 3, ADDS = 20, PUSHES = 5, FETCHES = 20 };
    pid_t kids[ADDERS + 1];
    for (int k = 0; k < ADDERS + 1; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] > 0)
            continue;
        fw_rstore *c;
        char err[16384];
        if (fw_rstore_connect(open_srv.url, 5000, &c, err, sizeof err) != 0)
            _exit(10);
        for (int i = 0; i < (k < ADDERS ? ADDS : FETCHES); i++) {
            if (k < ADDERS) {
                char v[32];
                snprintf(v, sizeof v, "1770000%02d%03d", k, i);
                const char *vals[] = { v };
                if (fw_rstore_list_add(c, "fraud_numbers", vals, 1, NULL, err,
                                       sizeof err) != 0) {
                    fprintf(stderr, "adder %d: %s\n", k, err);
                    _exit(11);
                }
            } else {
                fw_rulefile *files;
                size_t n;
                uint64_t v, g;
                fw_ruleset *rs;
                if (fw_rstore_fetch(c, &files, &n, &v, &g, err, sizeof err) != 0 ||
                    fw_ruleset_load_files(files, n, v, &rs, err, sizeof err) != 0) {
                    fprintf(stderr, "fetcher: %s\n", err);
                    _exit(12);
                }
                fw_ruleset_unref(rs);
                fw_rulefiles_free(files, n);
            }
        }
        fw_rstore_free(c);
        _exit(0);
    }
    for (int i = 0; i < PUSHES; i++)
        push_shipped(r, &pr);
    for (int k = 0; k < ADDERS + 1; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    uint64_t gen;
    char err[1024];
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_int_equal(gen, 1 + PUSHES + ADDERS * ADDS);
    assert_int_equal(rint_of("GET %s", "fraudwatch:rules:version"), 1 + PUSHES);
    assert_int_equal(rint_of("GET %s", "fraudwatch:list:fraud_numbers:version"),
                     1 + PUSHES + ADDERS * ADDS);
    assert_int_equal(rint_of("GET %s", "fraudwatch:list:mule_accounts:version"),
                     1 + PUSHES);
    assert_int_equal(count_keys("fraudwatch:tmp:*"), 0);
    fw_rstore_free(r);
}

/* ---- heartbeats and status ------------------------------------------------------------ */

static void test_heartbeat_status(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    char err[4096];
    int64_t now = fw_wall_ms();
    fw_heartbeat a = { .instance = "fw-a", .host = "node1", .pid = 4242,
                       .version = 1, .generation = 1, .last_reload_ms = now - 3000,
                       .last_ok = true, .last_error = "", .started_ms = now - 60000 };
    fw_heartbeat b = { .instance = "fw-b", .host = "node2", .pid = 17,
                       .version = 0, .generation = 0, .last_reload_ms = now,
                       .last_ok = false,
                       .last_error = "calls.json: rule R101: threshold: bad",
                       .started_ms = now };
    assert_int_equal(fw_rstore_heartbeat(r, &a, 5, err, sizeof err), 0);
    assert_int_equal(fw_rstore_heartbeat(r, &b, 1, err, sizeof err), 0);
    long long ttl = rint_of("PTTL %s", "fraudwatch:daemon:fw-a");
    assert_true(ttl > 0 && ttl <= 5000);

    fw_rstore_status *st;
    assert_int_equal(fw_rstore_status_read(r, &st, err, sizeof err), 0);
    assert_int_equal(st->version, 1);
    assert_int_equal(st->generation, 1);
    assert_int_equal(st->nfiles, pr.nfiles);
    assert_int_equal(st->nlists, 2);
    assert_string_equal(st->lists[0].name, "fraud_numbers");
    assert_int_equal(st->ndaemons, 2);
    const fw_rstore_daemon *d = &st->daemons[0];
    assert_string_equal(d->instance, "fw-a");
    assert_string_equal(d->host, "node1");
    assert_int_equal(d->pid, 4242);
    assert_int_equal(d->version, 1);
    assert_int_equal(d->last_reload_ms, now - 3000);
    assert_int_equal(d->started_ms, now - 60000);
    assert_true(d->last_ok);
    assert_true(d->ttl_ms > 0 && d->ttl_ms <= 5000);
    assert_false(st->daemons[1].last_ok);
    assert_string_equal(st->daemons[1].last_error, b.last_error);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    fw_rstore_status_print(st, now, out);
    fclose(out);
    printf("%s", text);
    assert_non_null(strstr(text, "active rule set: version 1, generation 1"));
    assert_non_null(strstr(text, "fw-a"));
    assert_non_null(strstr(text, "node2"));
    assert_non_null(strstr(text, "behind"));
    assert_non_null(strstr(text, "last error: calls.json: rule R101"));
    free(text);
    fw_rstore_status_free(st);

    /* A daemon that stops beating disappears when its TTL runs out. */
    usleep(1300 * 1000);
    assert_int_equal(fw_rstore_status_read(r, &st, err, sizeof err), 0);
    assert_int_equal(st->ndaemons, 1);
    assert_string_equal(st->daemons[0].instance, "fw-a");
    fw_rstore_status_free(st);
    fw_rstore_free(r);
}

/* ---- a stalled server ----------------------------------------------------------------- */

static void test_stalled_server(void **state)
{
    (void)state;
    struct server s = { 0 };
    assert_int_equal(start_server(&s, NULL), 0);
    fw_rstore *r;
    fw_rsub *sub;
    char err[4096];
    const int timeout = 400;
    assert_int_equal(fw_rstore_connect(s.url, timeout, &r, err, sizeof err), 0);
    assert_int_equal(fw_rsub_connect(s.url, timeout, &sub, err, sizeof err), 0);
    uint64_t gen;
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);

    kill(s.pid, SIGSTOP);
    int64_t t0 = fw_mono_ms();
    assert_int_not_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    int64_t took = fw_mono_ms() - t0;
    printf("stalled server: GET failed after %lld ms: %s\n", (long long)took, err);
    assert_true(took >= timeout - 50 && took < 3 * timeout);
    assert_non_null(strstr(err, "no answer within 400 ms"));
    /* The handle is dead now: no second wait, an instruction instead. */
    t0 = fw_mono_ms();
    assert_int_not_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    assert_true(fw_mono_ms() - t0 < 50);
    assert_non_null(strstr(err, "reconnect"));
    fw_rulefile *files;
    size_t n;
    uint64_t v;
    assert_int_not_equal(fw_rstore_fetch(r, &files, &n, &v, &gen, err, sizeof err), 0);
    fw_rstore_free(r);

    /* A new connection: the kernel accepts it, the server never answers. */
    t0 = fw_mono_ms();
    assert_int_not_equal(fw_rstore_connect(s.url, timeout, &r, err, sizeof err), 0);
    took = fw_mono_ms() - t0;
    printf("stalled server: connect failed after %lld ms: %s\n", (long long)took, err);
    assert_true(took < 3 * timeout);

    /* The subscriber: quiet, then a PING without PONG ends it. */
    t0 = fw_mono_ms();
    int got = fw_rsub_wait(sub, 200);
    assert_int_equal(got, 0);
    got = fw_rsub_wait(sub, 10000);
    took = fw_mono_ms() - t0;
    printf("stalled server: subscriber gave up after %lld ms\n", (long long)took);
    assert_int_equal(got, -1);
    assert_true(took < 5000 + 3 * timeout);
    assert_int_equal(fw_rsub_wait(sub, 0), -1);
    fw_rsub_free(sub);

    kill(s.pid, SIGCONT);
    if (fw_rstore_connect(s.url, timeout, &r, err, sizeof err) != 0)
        fail_msg("after SIGCONT: %s", err);
    assert_int_equal(fw_rstore_generation(r, &gen, err, sizeof err), 0);
    fw_rstore_free(r);

    /* A server that goes away: the subscriber reports it at once. */
    assert_int_equal(fw_rsub_connect(s.url, timeout, &sub, err, sizeof err), 0);
    stop_server(&s);
    t0 = fw_mono_ms();
    assert_int_equal(fw_rsub_wait(sub, 2000), -1);
    assert_true(fw_mono_ms() - t0 < 1000);
    fw_rsub_free(sub);
}

/* ---- watchlists changed by deltas (watchlist.c) ------------------------------- */

/* Random adds and removes over a value space, in batches from one value to
 * several thousand (so the delta is folded into a new base now and then),
 * each batch a new set built on the previous one: every set answers for
 * every value exactly as a reference does, and a set keeps its answers
 * after newer ones are built from it (the shared parts never change). */
static void test_watchlist_deltas(void **state)
{
    (void)state;
    enum { SPACE = 30000, ROUNDS = 120 };
    static unsigned char ref[SPACE], pre[SPACE], old_ref[SPACE];
    fw_buf text = { 0 };
    fw_buf_puts(&text, "# start\n");
    for (int i = 0; i < SPACE; i += 3) {
        fw_buf_printf(&text, "v%d\n", i);
        ref[i] = 1;
    }
    fw_rulefile files[2] = {
        { .name = "r.json", .data = "[{\"id\":\"A\",\"event\":\"x\",\"where\":[{\"field\":"
                                    "\"f\",\"in_list\":\"l\"}]}]" },
        { .name = "l.list", .data = text.p, .len = text.len },
    };
    files[0].len = strlen(files[0].data);
    fw_ruleset *rs, *old = NULL;
    char err[4096];
    if (fw_ruleset_load_files(files, 2, 1, &rs, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    unsigned seed = 12345;
    for (int round = 0; round < ROUNDS; round++) {
        int batch = round % 10 == 9 ? 6000 : 1 + (int)(rand_r(&seed) % 40);
        fw_listbuild *b = fw_listbuild_from(rs, "l");
        assert_non_null(b);
        memcpy(pre, ref, sizeof ref);   /* what rs holds */
        for (int k = 0; k < batch; k++) {
            int v = (int)(rand_r(&seed) % SPACE);
            bool add = rand_r(&seed) % 2;
            char val[32];
            int n = snprintf(val, sizeof val, k % 7 == 0 ? "  v%d \t" : "v%d", v);
            if (add)
                fw_listbuild_add(b, val, (size_t)n);
            else
                fw_listbuild_remove(b, val, (size_t)n);
            ref[v] = add;
        }
        fw_listpart part = { .name = "l", .version = (uint64_t)round + 2, .entries = b };
        fw_ruleset *next;
        if (fw_ruleset_load_parts(files, 1, &part, 1, rs, 1, &next, err, sizeof err) != 0)
            fail_msg("round %d: %s", round, err);
        fw_listbuild_free(b);
        if (old) {   /* two sets back: still as it was */
            for (int v = 0; v < SPACE; v += 7) {
                char val[32];
                snprintf(val, sizeof val, "v%d", v);
                assert_int_equal(fw_ruleset_list_has(old, "l", val), old_ref[v]);
            }
            fw_ruleset_unref(old);
        }
        old = rs;
        memcpy(old_ref, pre, sizeof pre);
        rs = next;
        size_t count = 0, want = 0;
        uint64_t version = 0;
        assert_true(fw_ruleset_list_info(rs, "l", &version, &count));
        assert_int_equal(version, (uint64_t)round + 2);
        for (int v = 0; v < SPACE; v++) {
            char val[32];
            snprintf(val, sizeof val, "v%d", v);
            if (fw_ruleset_list_has(rs, "l", val) != ref[v])
                fail_msg("round %d: v%d should be %s", round, v, ref[v] ? "in" : "out");
            want += ref[v];
        }
        assert_int_equal(count, want);
    }
    /* A part without entries keeps the previous set's list, shared. */
    fw_listpart keep = { .name = "l", .version = 777 };
    fw_ruleset *kept;
    assert_int_equal(fw_ruleset_load_parts(files, 1, &keep, 1, rs, 2, &kept, err,
                                           sizeof err), 0);
    size_t c1, c2;
    fw_ruleset_list_info(rs, "l", NULL, &c1);
    fw_ruleset_list_info(kept, "l", NULL, &c2);
    assert_int_equal(c1, c2);
    assert_true(fw_ruleset_list_has(kept, "l", "v0") == ref[0]);
    /* ...and needs one: without a previous set it is an error, as is an
     * entry that could never match. */
    fw_ruleset *bad;
    assert_int_not_equal(fw_ruleset_load_parts(files, 1, &keep, 1, NULL, 2, &bad, err,
                                               sizeof err), 0);
    assert_non_null(strstr(err, "l.list"));
    fw_listbuild *b = fw_listbuild_from(rs, "l");
    fw_listbuild_add(b, "13800138000\n138\xff", 16);
    fw_listpart badpart = { .name = "l", .version = 9, .entries = b };
    assert_int_not_equal(fw_ruleset_load_parts(files, 1, &badpart, 1, rs, 2, &bad, err,
                                               sizeof err), 0);
    assert_non_null(strstr(err, "l.list: 1 entry could never match an event"));
    assert_non_null(strstr(err, "not valid UTF-8"));
    fw_listbuild_free(b);
    fw_ruleset_unref(kept);
    fw_ruleset_unref(old);
    fw_ruleset_unref(rs);
    fw_buf_free(&text);
}

/* ---- the change log: what it covers, and what it does not ---------------------- */

static fw_ruleset *update_from(fw_rstore *r, fw_ruleset *have, fw_rstore_update *u)
{
    char err[16384];
    if (fw_rstore_fetch_update(r, have, u, err, sizeof err) != 0)
        fail_msg("fetch_update: %s", err);
    fw_ruleset *rs;
    if (fw_ruleset_load_parts(u->files, u->nfiles, u->lists, u->nlists, have, u->version,
                              &rs, err, sizeof err) != 0)
        fail_msg("load_parts: %s", err);
    return rs;
}

/* A daemon's fetch takes a list change from the log when the log has every
 * change since its version, and reads the list whole when it does not: a
 * `lists load` (replaced), a push, a change made without a log entry (an
 * older fraudwatch, by hand), a change too big to log.  Either way the
 * result is Redis's list. */
static void test_change_log_coverage(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    char err[16384];
    fw_rstore_update u = { 0 };
    fw_ruleset *rs = update_from(r, NULL, &u);
    assert_int_equal(u.full_reads, 2);
    fw_rstore_update_free(&u);

    /* Two adds and a remove: one delta of three changes, no read whole. */
    const char *a[] = { "13900000001", "13900000002" }, *b[] = { "13900000003" };
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", a, 2, NULL, err, sizeof err), 0);
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", b, 1, NULL, err, sizeof err), 0);
    assert_int_equal(fw_rstore_list_remove(r, "fraud_numbers", a, 1, NULL, err, sizeof err), 0);
    redisReply *lg = rcmd("LRANGE fraudwatch:list:fraud_numbers:log 0 -1");
    assert_int_equal(lg->elements, 3);
    assert_string_equal(lg->element[0]->str, "2 +\n13900000001\n13900000002");
    assert_string_equal(lg->element[2]->str, "4 -\n13900000001");
    freeReplyObject(lg);
    fw_ruleset *next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 0);
    assert_int_equal(u.deltas, 1);
    assert_int_equal(u.kept, 1);
    assert_int_equal(u.delta_changes, 3);
    assert_int_equal(u.delta_values, 4);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    assert_false(fw_ruleset_list_has(rs, "fraud_numbers", "13900000001"));
    assert_true(fw_ruleset_list_has(rs, "fraud_numbers", "13900000002"));
    assert_true(fw_ruleset_list_has(rs, "fraud_numbers", "13900000003"));
    uint64_t v;
    size_t n;
    assert_true(fw_ruleset_list_info(rs, "fraud_numbers", &v, &n));
    assert_int_equal(v, 4);
    assert_int_equal(n, (size_t)rint_of("SCARD %s", "fraudwatch:list:fraud_numbers"));

    /* A change with no log entry (SADD + INCR by hand, as fraudwatch before
     * the log did): the gap sends the fetch to a full read. */
    freeReplyObject(rcmd("SADD fraudwatch:list:fraud_numbers 13900000009"));
    freeReplyObject(rcmd("INCR fraudwatch:list:fraud_numbers:version"));
    freeReplyObject(rcmd("INCR fraudwatch:generation"));
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", b, 1, NULL, err, sizeof err), 0);
    next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 1);
    assert_int_equal(u.deltas, 0);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    assert_true(fw_ruleset_list_has(rs, "fraud_numbers", "13900000009"));

    /* lists load replaces the list and drops the log: a full read. */
    assert_int_equal(fw_rstore_list_replace(r, "fraud_numbers", "1\n2\n", 4, NULL, err,
                                            sizeof err), 0);
    assert_int_equal(rint_of("EXISTS %s", "fraudwatch:list:fraud_numbers:log"), 0);
    const char *c3[] = { "3" };
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", c3, 1, NULL, err, sizeof err), 0);
    next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 1);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    assert_true(fw_ruleset_list_info(rs, "fraud_numbers", NULL, &n));
    assert_int_equal(n, 3);
    assert_false(fw_ruleset_list_has(rs, "fraud_numbers", "13900000002"));

    /* A change too big for the log: logged as nothing, the log dropped. */
    enum { MANY = 7000 };
    char **vals = malloc(MANY * sizeof *vals);
    for (int i = 0; i < MANY; i++) {
        vals[i] = malloc(24);
        snprintf(vals[i], 24, "1770000%05d", i);
    }
    assert_int_equal(fw_rstore_list_add(r, "fraud_numbers", (const char *const *)vals, MANY,
                                        NULL, err, sizeof err), 0);
    assert_int_equal(rint_of("EXISTS %s", "fraudwatch:list:fraud_numbers:log"), 0);
    next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 1);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    assert_true(fw_ruleset_list_has(rs, "fraud_numbers", vals[MANY - 1]));
    for (int i = 0; i < MANY; i++)
        free(vals[i]);
    free(vals);

    /* A push replaces every list: read whole; a list nobody touched since
     * is kept. */
    push_shipped(r, &pr);
    next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 2);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    assert_int_equal(fw_rstore_list_add(r, "mule_accounts", c3, 1, NULL, err, sizeof err), 0);
    next = update_from(r, rs, &u);
    assert_int_equal(u.full_reads, 0);
    assert_int_equal(u.kept, 1);
    assert_int_equal(u.deltas, 1);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    rs = next;
    /* The log keeps its last LIST_LOG_KEEP changes (LTRIM). */
    assert_int_equal(rint_of("LLEN %s", "fraudwatch:list:mule_accounts:log"), 1);

    /* The text fetch (rules pull, tools) gets the same: a fetch after
     * changes equals Redis's set. */
    fw_rulefile *files;
    uint64_t ver, gen;
    if (fw_rstore_fetch(r, &files, &n, &ver, &gen, err, sizeof err) != 0)
        fail_msg("fetch: %s", err);
    fw_rulefiles_free(files, n);
    fw_ruleset_unref(rs);
    fw_rstore_free(r);
}

/* ---- reloads while a big list churns (issue 10.4) ------------------------------ */

#ifdef FW_HAVE_DAEMON
#include "fraudwatch/config.h"
#include "fraudwatch/metrics.h"
#include "reload.h"

static long long sscan_calls(void)
{
    redisReply *r = rcmd("INFO commandstats");
    const char *p = strstr(r->str, "cmdstat_sscan:calls=");
    long long n = p ? atoll(p + strlen("cmdstat_sscan:calls=")) : 0;
    freeReplyObject(r);
    return n;
}

struct churn {
    const char *url;
    atomic_bool stop;
    atomic_int adds;
    int failed;
};

/* lists add of one new number every 0.5 s until told to stop. */
static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    fw_rstore *r;
    char err[4096];
    if (fw_rstore_connect(c->url, 5000, &r, err, sizeof err) != 0) {
        c->failed = 1;
        return NULL;
    }
    for (int i = 0; !atomic_load(&c->stop); i++) {
        char v[32];
        snprintf(v, sizeof v, "1990000%04d", i);
        const char *vals[] = { v };
        if (fw_rstore_list_add(r, "big", vals, 1, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "churn: %s\n", err);
            c->failed = 1;
            break;
        }
        atomic_fetch_add(&c->adds, 1);
        usleep(500 * 1000);
    }
    fw_rstore_free(r);
    return NULL;
}

static bool daemon_listed(fw_rstore *r, const char *instance)
{
    fw_rstore_status *st;
    char err[4096];
    if (fw_rstore_status_read(r, &st, err, sizeof err) != 0)
        fail_msg("status: %s", err);
    bool seen = false;
    for (size_t i = 0; i < st->ndaemons; i++)
        seen = seen || strcmp(st->daemons[i].instance, instance) == 0;
    fw_rstore_status_free(st);
    return seen;
}

static fw_ruleset *take_newer(fw_reloader *rl, fw_ruleset *cur, size_t *swaps)
{
    fw_ruleset *n = fw_reloader_take(rl);
    if (!n)
        return cur;
    fw_ruleset_unref(cur);
    (*swaps)++;
    return n;
}

static uint64_t counter(fw_metrics *m, const char *name)
{
    return fw_counter_get(fw_metrics_counter(m, name, "", ""));
}

/* Issue 10.4: a 1M-entry list gets a one-number `lists add` every 0.5 s
 * while a new set is pushed.  The reloader (driven here as the daemon's
 * main loop drives it) swaps the pushed version in (the deadline is a hang
 * guard: before the fix it never did, every read of the list was restarted
 * by the next add), the heartbeat stays in `rules status` throughout (it
 * dropped out), and a one-number change makes no full read of the list:
 * neither an SSCAN on the server nor fraudwatch_watchlist_full_reads_total
 * moves (before: ~1000 SSCANs per add). */
static void test_reload_while_lists_churn(void **state)
{
    (void)state;
    flush();
    enum { BIG = 1000000 };
    char dir[256], path[512], err[16384];
    copy_rules(dir, sizeof dir, "churn");
    snprintf(path, sizeof path, "%s/big.list", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < BIG; i++)
        fprintf(f, "%d\n", 1500000000 + i);
    fclose(f);
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    if (fw_rstore_push_dir(r, dir, &pr, err, sizeof err) != 0)
        fail_msg("push: %s", err);

    fw_settings s = { .rules_source = open_srv.url, .instance_id = "churn-1" };
    fw_metrics *m = fw_metrics_new();
    fw_ruleset *cur;
    fw_reloader *rl;
    if (fw_reloader_start(&s, m, &cur, &rl, err, sizeof err) != 0)
        fail_msg("reloader: %s", err);
    assert_int_equal(counter(m, "fraudwatch_watchlist_full_reads_total"), 3);
    size_t n;
    assert_true(fw_ruleset_list_info(cur, "big", NULL, &n));
    assert_int_equal(n, BIG);
    int64_t guard = fw_mono_ms() + 30000;
    while (!daemon_listed(r, "churn-1") && fw_mono_ms() < guard)
        usleep(50 * 1000);
    assert_true(daemon_listed(r, "churn-1"));

    struct churn c = { .url = open_srv.url };
    atomic_init(&c.stop, false);
    atomic_init(&c.adds, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, churn_thread, &c), 0);

    /* Churn for a while, then push a new set: the rules plus a rule on the
     * big list, and the list itself (a push is the whole set). */
    int64_t t_start = fw_mono_ms();
    bool missing = false;
    size_t swaps = 0;
    guard = fw_mono_ms() + 60000;
    while (atomic_load(&c.adds) < 6 && fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        missing = missing || !daemon_listed(r, "churn-1");
        usleep(250 * 1000);
    }
    snprintf(path, sizeof path, "%s/extra.json", dir);
    spit(path, "{\"rules\":[{\"id\":\"X1\",\"event\":\"call\",\"where\":[{\"field\":"
               "\"caller\",\"in_list\":\"big\"}],\"subject\":\"caller\"}]}");
    if (fw_rstore_push_dir(r, dir, &pr, err, sizeof err) != 0)
        fail_msg("push: %s", err);
    int64_t t_push = fw_mono_ms();
    int64_t applied_ms = -1;
    while (fw_mono_ms() - t_push < 90000) {   /* hang guard */
        cur = take_newer(rl, cur, &swaps);
        if (fw_ruleset_version(cur) == pr.version) {
            applied_ms = fw_mono_ms() - t_push;
            break;
        }
        missing = missing || !daemon_listed(r, "churn-1");
        usleep(100 * 1000);
    }
    printf("churn: push of version %llu applied after %lld ms (-1: never); %zu swaps "
           "in %lld ms, %d adds\n", (unsigned long long)pr.version,
           (long long)applied_ms, swaps, (long long)(fw_mono_ms() - t_start),
           atomic_load(&c.adds));
    assert_true(applied_ms >= 0);

    /* Four more one-number adds, each applied: no read of the list. */
    long long sscan0 = sscan_calls();
    uint64_t full0 = counter(m, "fraudwatch_watchlist_full_reads_total");
    uint64_t delta0 = counter(m, "fraudwatch_watchlist_delta_reads_total");
    int want = atomic_load(&c.adds) + 4;
    char last[32];
    snprintf(last, sizeof last, "1990000%04d", want - 1);
    guard = fw_mono_ms() + 60000;
    while (!fw_ruleset_list_has(cur, "big", last) && fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        missing = missing || !daemon_listed(r, "churn-1");
        usleep(100 * 1000);
    }
    assert_true(fw_ruleset_list_has(cur, "big", last));
    long long sscans = sscan_calls() - sscan0;
    uint64_t fulls = counter(m, "fraudwatch_watchlist_full_reads_total") - full0;
    uint64_t deltas = counter(m, "fraudwatch_watchlist_delta_reads_total") - delta0;
    printf("churn: 4 one-number adds: %lld SSCAN calls, %llu full reads, %llu delta "
           "reads; heartbeat missing: %s\n", sscans, (unsigned long long)fulls,
           (unsigned long long)deltas, missing ? "yes" : "no");
    atomic_store(&c.stop, true);
    pthread_join(th, NULL);
    assert_int_equal(c.failed, 0);
    assert_false(missing);
    assert_int_equal(sscans, 0);
    assert_int_equal(fulls, 0);
    assert_true(deltas >= 1);

    /* When the churn stops, the daemon's list is Redis's list. */
    uint64_t lv = (uint64_t)rint_of("GET %s", "fraudwatch:list:big:version");
    uint64_t have = 0;
    guard = fw_mono_ms() + 60000;
    while (fw_ruleset_list_info(cur, "big", &have, &n) && have != lv &&
           fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        usleep(100 * 1000);
    }
    assert_int_equal(have, lv);
    assert_int_equal(n, rint_of("SCARD %s", "fraudwatch:list:big"));
    for (int i = 0; i < atomic_load(&c.adds); i++) {
        char v[32];
        snprintf(v, sizeof v, "1990000%04d", i);
        assert_int_equal(fw_ruleset_list_has(cur, "big", v),
                         rint_of("SISMEMBER fraudwatch:list:big %s", v) == 1);
    }
    assert_true(fw_ruleset_list_has(cur, "big", "1500000000"));
    assert_true(daemon_listed(r, "churn-1"));
    fw_reloader_stop(rl);
    fw_ruleset_unref(cur);
    fw_metrics_free(m);
    fw_rstore_free(r);
}

/* ---- a slow fetch does not stop the heartbeat ------------------------------------- */

/* A TCP proxy in front of open_srv that holds back every command holding
 * "SSCAN" by delay_ms: a fetch that reads a list whole becomes slow (as a
 * ten-million-entry list is), everything else goes through at once. */
static struct proxy {
    int lfd, port;
    atomic_int delay_ms;
    atomic_bool stop;
    atomic_int pipes;
    pthread_t th;
} px;

struct pipe_fds {
    int a, b;   /* client, server */
};

static void *proxy_pipe(void *arg)
{
    struct pipe_fds p = *(struct pipe_fds *)arg;
    free(arg);
    char buf[65536];
    while (!atomic_load(&px.stop)) {
        struct pollfd fds[2] = { { .fd = p.a, .events = POLLIN },
                                 { .fd = p.b, .events = POLLIN } };
        if (poll(fds, 2, 100) < 0)
            break;
        bool done = false;
        for (int k = 0; k < 2 && !done; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[k].fd, buf, sizeof buf);
            if (n <= 0) {
                done = true;
                break;
            }
            if (k == 0 && memmem(buf, (size_t)n, "SSCAN", 5) && atomic_load(&px.delay_ms))
                usleep((useconds_t)atomic_load(&px.delay_ms) * 1000);
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(k == 0 ? p.b : p.a, buf + off, (size_t)(n - off));
                if (w <= 0) {
                    done = true;
                    break;
                }
                off += w;
            }
        }
        if (done)
            break;
    }
    close(p.a);
    close(p.b);
    atomic_fetch_sub(&px.pipes, 1);
    return NULL;
}

static void *proxy_accept(void *arg)
{
    (void)arg;
    while (!atomic_load(&px.stop)) {
        struct pollfd pf = { .fd = px.lfd, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int a = accept(px.lfd, NULL, NULL);
        if (a < 0)
            continue;
        int b = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)open_srv.port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(a);
            if (b >= 0)
                close(b);
            continue;
        }
        struct pipe_fds *p = malloc(sizeof *p);
        p->a = a;
        p->b = b;
        pthread_t t;
        atomic_fetch_add(&px.pipes, 1);
        if (pthread_create(&t, NULL, proxy_pipe, p) == 0)
            pthread_detach(t);
        else
            atomic_fetch_sub(&px.pipes, 1);
    }
    return NULL;
}

static void proxy_start(void)
{
    px.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(px.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(px.lfd, 16), 0);
    assert_int_equal(getsockname(px.lfd, (struct sockaddr *)&a, &len), 0);
    px.port = ntohs(a.sin_port);
    atomic_store(&px.stop, false);
    atomic_store(&px.delay_ms, 0);
    assert_int_equal(pthread_create(&px.th, NULL, proxy_accept, NULL), 0);
}

static void proxy_stop(void)
{
    atomic_store(&px.stop, true);
    pthread_join(px.th, NULL);
    close(px.lfd);
    for (int i = 0; i < 100 && atomic_load(&px.pipes) > 0; i++)
        usleep(20 * 1000);
}

/* A log captured from fw_log, for the tests that read what was logged. */
static FILE *log_capture;

static void capture_logs(void)
{
    log_capture = tmpfile();
    assert_non_null(log_capture);
    fw_log_set_stream(log_capture);
}

static char *captured_logs(void)
{
    fw_log_set_stream(NULL);
    fflush(log_capture);
    long n = ftell(log_capture);
    char *text = calloc(1, (size_t)n + 1);
    rewind(log_capture);
    assert_int_equal(fread(text, 1, (size_t)n, log_capture), (size_t)n);
    fclose(log_capture);
    log_capture = NULL;
    fputs(text, stderr);   /* still shown */
    return text;
}

/* Issue 10.4: the heartbeat never waits for a fetch.  Reading a list whole
 * is slowed to ~16 s (20 SSCANs held back 800 ms each, as a big list over a
 * busy link is); meanwhile `rules status` must keep listing the daemon,
 * whose heartbeat TTL is 10 s.  Before, the heartbeat was written by the
 * thread doing the fetch, and the daemon dropped out. */
static void test_heartbeat_during_slow_fetch(void **state)
{
    (void)state;
    flush();
    fw_rstore *r = connect_open();
    fw_rstore_push_result pr;
    push_shipped(r, &pr);
    proxy_start();
    char url[128], err[16384];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", px.port);
    fw_settings s = { .rules_source = url, .instance_id = "slow-1" };
    fw_metrics *m = fw_metrics_new();
    fw_ruleset *cur;
    fw_reloader *rl;
    capture_logs();
    if (fw_reloader_start(&s, m, &cur, &rl, err, sizeof err) != 0)
        fail_msg("reloader: %s", err);
    int64_t guard = fw_mono_ms() + 30000;
    while (!daemon_listed(r, "slow-1") && fw_mono_ms() < guard)
        usleep(50 * 1000);
    assert_true(daemon_listed(r, "slow-1"));

    /* Replace a list with 20 000 entries: a read whole, slowed down. */
    fw_buf text = { 0 };
    for (int i = 0; i < 20000; i++)
        fw_buf_printf(&text, "%d\n", 1600000000 + i);
    atomic_store(&px.delay_ms, 800);
    fw_rstore_list_result lr;
    if (fw_rstore_list_replace(r, "fraud_numbers", text.p, text.len, &lr, err, sizeof err) != 0)
        fail_msg("replace: %s", err);
    fw_buf_free(&text);
    int64_t t0 = fw_mono_ms();
    bool missing = false;
    size_t swaps = 0, polls = 0;
    uint64_t have = 0;
    guard = fw_mono_ms() + 120000;   /* hang guard */
    while (have != lr.version && fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        fw_ruleset_list_info(cur, "fraud_numbers", &have, NULL);
        missing = missing || !daemon_listed(r, "slow-1");
        polls++;
        usleep(500 * 1000);
    }
    int64_t took = fw_mono_ms() - t0;
    atomic_store(&px.delay_ms, 0);
    fw_reloader_stop(rl);
    char *logs = captured_logs();
    printf("slow fetch: list applied after %lld ms; %zu status reads, heartbeat "
           "missing: %s\n", (long long)took, polls, missing ? "yes" : "no");
    assert_int_equal(have, lr.version);
    assert_false(missing);
    /* It said what it was doing. */
    const char *start = strstr(logs, "msg=\"reading watchlist whole\" list=fraud_numbers");
    assert_non_null(start);
    assert_non_null(strstr(start, "msg=\"watchlist read whole\" list=fraud_numbers "
                                  "entries=20000 seconds="));
    free(logs);
    fw_ruleset_unref(cur);
    fw_metrics_free(m);
    fw_rstore_free(r);
    proxy_stop();
}

/* ---- ACL users: the least the daemon and the commands need ----------------------- */

/* Exactly the lines of docs/redis.md, "ACL users" (PASSWORD → pw). */
#define ACL_DAEMON                                                                       \
    "ACL SETUSER fw-daemon on >pw resetchannels &fraudwatch:notify resetkeys "            \
    "%R~fraudwatch:* %RW~fraudwatch:daemon:* -@all +ping +select +get +hgetall "          \
    "+smembers +scard +sscan +zscan +lrange +multi +exec +hset +expire +subscribe"
#define ACL_OPERATOR                                                                     \
    "ACL SETUSER fw-operator on >pw resetchannels &fraudwatch:notify resetkeys "          \
    "~fraudwatch:* -@all +ping +select +get +incr +del +unlink +rename +persist "         \
    "+expire +pttl +scan +hset +hgetall +hlen +sadd +srem +scard +sismember "             \
    "+smembers +sscan +rpush +ltrim +lrange +watch +unwatch +multi +exec +publish "    \
    "+zadd +zrem +zscore +zrangebyscore +zscan +hget +hdel +hscan +time"

static void acl(const char *line)
{
    redisContext *c = connect_raw(auth_srv.port, 2000);
    redisReply *rep = redisCommand(c, "AUTH secret");
    freeReplyObject(rep);
    /* Split by hand: the line holds '%' (%R~...), which redisCommand reads
     * as a format. */
    char *copy = strdup(line), *save = NULL;
    const char *argv[64];
    int argc = 0;
    for (char *w = strtok_r(copy, " ", &save); w && argc < 64; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    rep = redisCommandArgv(c, argc, argv, NULL);
    free(copy);
    if (!rep || rep->type != REDIS_REPLY_STATUS)
        fail_msg("%s: %s", line, rep && rep->str ? rep->str : "no reply");
    freeReplyObject(rep);
    rep = redisCommand(c, "FLUSHALL");
    freeReplyObject(rep);
    redisFree(c);
}

/* One logfmt record: key=value pairs separated by one space, each value
 * bare (no space, quote or '=') or quoted with only \\ \" \n \r \t \uXXXX
 * escapes inside; no key twice.  NULL, or what is wrong. */
static const char *logfmt_bad(const char *line)
{
    static char why[200];
    char keys[40][40];
    int nkeys = 0;
    const char *p = line;
    while (*p) {
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '"')
            p++;
        if (p == k || *p != '=')
            return snprintf(why, sizeof why, "no key=value at \"%.30s\"", k), why;
        for (int i = 0; i < nkeys; i++)
            if (strlen(keys[i]) == (size_t)(p - k) && !memcmp(keys[i], k, (size_t)(p - k)))
                return snprintf(why, sizeof why, "key %.*s twice", (int)(p - k), k), why;
        if (nkeys < 40)
            snprintf(keys[nkeys++], sizeof keys[0], "%.*s", (int)(p - k), k);
        p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if ((unsigned char)*p < 0x20)
                    return "a control byte in a value";
                if (*p == '\\') {
                    p++;
                    if (*p == 'u' && p[1] && p[2] && p[3] && p[4])
                        p += 4;
                    else if (!*p || !strchr("\\\"nrt", *p))
                        return snprintf(why, sizeof why, "bad escape at \"%.30s\"", p - 1), why;
                }
            }
            if (*p != '"')
                return "an unterminated quoted value";
            p++;
        } else {
            while (*p && *p != ' ') {
                if (*p == '"' || *p == '=')
                    return snprintf(why, sizeof why, "a bare value holds %c at \"%.30s\"",
                                    *p, p), why;
                p++;
            }
        }
        if (*p == ' ')
            p++;
        else if (*p)
            return "no space between pairs";
    }
    return NULL;
}

/* Every line of a captured log parses (issue 10.9). */
static void assert_logfmt(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *why = logfmt_bad(line);
        if (why)
            fail_msg("not one logfmt record (%s):\n%s", why, line);
    }
    free(copy);
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The two ACL lines of docs/redis.md, each enough for its side and no
 * more: the operator user pushes, changes lists, pulls and reads the
 * status; the daemon user starts a reloader that reads everything, takes a
 * delta, takes a push, subscribes (a notification arrives) and writes its
 * heartbeat; and the daemon user cannot change a list. */
static void test_acl_least_privilege(void **state)
{
    (void)state;
    acl(ACL_DAEMON);
    acl(ACL_OPERATOR);
    char op_url[128], d_url[128], err[16384];
    snprintf(op_url, sizeof op_url, "redis://fw-operator:pw@127.0.0.1:%d", auth_srv.port);
    snprintf(d_url, sizeof d_url, "redis://fw-daemon:pw@127.0.0.1:%d", auth_srv.port);
    fw_rstore *op;
    if (fw_rstore_connect(op_url, 2000, &op, err, sizeof err) != 0)
        fail_msg("operator: %s", err);
    fw_rstore_push_result pr;
    if (fw_rstore_push_dir(op, RULES_DIR, &pr, err, sizeof err) != 0)
        fail_msg("operator push: %s", err);
    const char *vals[] = { "13811112222" };
    if (fw_rstore_list_add(op, "fraud_numbers", vals, 1, NULL, err, sizeof err) != 0 ||
        fw_rstore_list_remove(op, "fraud_numbers", vals, 1, NULL, err, sizeof err) != 0 ||
        fw_rstore_list_replace(op, "mule_accounts", "1\n2\n", 4, NULL, err, sizeof err) != 0)
        fail_msg("operator lists: %s", err);
    char dir[256];
    make_dir(dir, sizeof dir, "acl-op-pull");
    if (fw_rstore_pull_dir(op, dir, false, NULL, err, sizeof err) != 0)
        fail_msg("operator pull: %s", err);

    capture_logs();
    fw_settings s = { .rules_source = d_url, .instance_id = "acl-daemon" };
    fw_metrics *m = fw_metrics_new();
    fw_ruleset *cur;
    fw_reloader *rl;
    if (fw_reloader_start(&s, m, &cur, &rl, err, sizeof err) != 0)
        fail_msg("daemon user: %s", err);
    fw_rsub *sub;
    if (fw_rsub_connect(d_url, 2000, &sub, err, sizeof err) != 0)
        fail_msg("daemon user subscribe: %s", err);
    fw_rstore *d;
    if (fw_rstore_connect(d_url, 2000, &d, err, sizeof err) != 0)
        fail_msg("daemon user: %s", err);
    assert_int_equal(fw_rstore_list_add(d, "fraud_numbers", vals, 1, NULL, err, sizeof err),
                     FW_RSTORE_ERR);
    assert_non_null(strstr(err, "NOPERM"));
    assert_non_null(strstr(err, "the ACL user lacks the permission +watch"));
    fw_rstore_free(d);

    /* A delta, then a push, both taken; the notification arrives. */
    if (fw_rstore_list_add(op, "fraud_numbers", vals, 1, NULL, err, sizeof err) != 0)
        fail_msg("operator add: %s", err);
    assert_int_equal(fw_rsub_wait(sub, 5000), 1);
    size_t swaps = 0;
    int64_t guard = fw_mono_ms() + 30000;
    while (!fw_ruleset_list_has(cur, "fraud_numbers", vals[0]) && fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        usleep(50 * 1000);
    }
    assert_true(fw_ruleset_list_has(cur, "fraud_numbers", vals[0]));
    if (fw_rstore_push_dir(op, RULES_DIR, &pr, err, sizeof err) != 0)
        fail_msg("operator push: %s", err);
    while (fw_ruleset_version(cur) != pr.version && fw_mono_ms() < guard) {
        cur = take_newer(rl, cur, &swaps);
        usleep(50 * 1000);
    }
    assert_int_equal(fw_ruleset_version(cur), pr.version);
    bool listed = false;
    fw_rstore_status *st = NULL;
    while (!listed && fw_mono_ms() < guard) {
        if (fw_rstore_status_read(op, &st, err, sizeof err) != 0)
            fail_msg("operator status: %s", err);
        for (size_t i = 0; i < st->ndaemons; i++)
            listed = listed || (strcmp(st->daemons[i].instance, "acl-daemon") == 0 &&
                                st->daemons[i].version == pr.version);
        fw_rstore_status_free(st);
        usleep(100 * 1000);
    }
    assert_true(listed);
    fw_reloader_stop(rl);
    char *logs = captured_logs();
    assert_null(strstr(logs, "NOPERM"));
    assert_null(strstr(logs, "level=warn"));
    assert_null(strstr(logs, "level=error"));
    assert_logfmt(logs);
    free(logs);
    fw_rsub_free(sub);
    fw_ruleset_unref(cur);
    fw_metrics_free(m);
    fw_rstore_free(op);
}

/* Issue 10.8: a daemon user without SUBSCRIBE still reloads (the version
 * check runs without the subscriber) and the log says the ACL lacks
 * +subscribe, not "redis unreachable"; a daemon user that may not write
 * its heartbeat says which permission it lacks, once, not every 2 s.
 * Issue 10.9: those messages quote Redis's reply, and every line is still
 * one logfmt record. */
static void test_acl_missing_permissions(void **state)
{
    (void)state;
    acl("ACL SETUSER fw-nosub on >pw resetchannels &fraudwatch:notify resetkeys "
        "%R~fraudwatch:* %RW~fraudwatch:daemon:* -@all +ping +get +hgetall +smembers "
        "+scard +sscan +zscan +lrange +multi +exec +hset +expire");
    acl("ACL SETUSER fw-nowrite on >pw resetchannels &fraudwatch:notify resetkeys "
        "~fraudwatch:* -@all +ping +get +hgetall +smembers +scard +sscan +zscan +lrange "
        "+multi +exec +subscribe");
    char url[128], err[16384];
    snprintf(url, sizeof url, "redis://:secret@127.0.0.1:%d", auth_srv.port);
    fw_rstore *op;
    if (fw_rstore_connect(url, 2000, &op, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    fw_rstore_push_result pr;
    if (fw_rstore_push_dir(op, RULES_DIR, &pr, err, sizeof err) != 0)
        fail_msg("push: %s", err);

    capture_logs();
    char nosub_url[128], nowrite_url[128];
    snprintf(nosub_url, sizeof nosub_url, "redis://fw-nosub:pw@127.0.0.1:%d", auth_srv.port);
    snprintf(nowrite_url, sizeof nowrite_url, "redis://fw-nowrite:pw@127.0.0.1:%d",
             auth_srv.port);
    fw_settings s1 = { .rules_source = nosub_url, .instance_id = "nosub" };
    fw_settings s2 = { .rules_source = nowrite_url, .instance_id = "nowrite" };
    fw_metrics *m1 = fw_metrics_new(), *m2 = fw_metrics_new();
    fw_ruleset *cur1, *cur2;
    fw_reloader *r1, *r2;
    if (fw_reloader_start(&s1, m1, &cur1, &r1, err, sizeof err) != 0)
        fail_msg("no-subscribe user: %s", err);
    if (fw_reloader_start(&s2, m2, &cur2, &r2, err, sizeof err) != 0)
        fail_msg("no-write user: %s", err);
    usleep(1500 * 1000);
    if (fw_rstore_push_dir(op, RULES_DIR, &pr, err, sizeof err) != 0)
        fail_msg("push: %s", err);
    size_t swaps = 0;
    int64_t guard = fw_mono_ms() + 30000;   /* hang guard */
    while ((fw_ruleset_version(cur1) != pr.version || fw_ruleset_version(cur2) != pr.version)
           && fw_mono_ms() < guard) {
        cur1 = take_newer(r1, cur1, &swaps);
        cur2 = take_newer(r2, cur2, &swaps);
        usleep(50 * 1000);
    }
    /* Several heartbeat periods (2 s) for the refusal to repeat, were it
     * logged each time. */
    usleep(5000 * 1000);
    fw_rstore_status *st;
    if (fw_rstore_status_read(op, &st, err, sizeof err) != 0)
        fail_msg("status: %s", err);
    bool nosub_listed = false, nowrite_listed = false;
    for (size_t i = 0; i < st->ndaemons; i++) {
        nosub_listed = nosub_listed || strcmp(st->daemons[i].instance, "nosub") == 0;
        nowrite_listed = nowrite_listed || strcmp(st->daemons[i].instance, "nowrite") == 0;
    }
    fw_rstore_status_free(st);
    uint64_t beat_failures =
        counter(m2, "fraudwatch_rules_heartbeat_failures_total");
    fw_reloader_stop(r1);
    fw_reloader_stop(r2);
    char *logs = captured_logs();
    assert_int_equal(fw_ruleset_version(cur1), pr.version);   /* reloaded without SUBSCRIBE */
    assert_int_equal(fw_ruleset_version(cur2), pr.version);
    assert_true(nosub_listed);
    assert_false(nowrite_listed);
    assert_null(strstr(logs, "redis unreachable"));
    assert_non_null(strstr(logs, "msg=\"the redis ACL refuses SUBSCRIBE to "
                                 "fraudwatch:notify: changes are noticed by the "
                                 "once-a-second version check alone\" missing=\"+subscribe\""));
    assert_int_equal(count_of(logs, "msg=\"heartbeat refused by the redis ACL"), 1);
    assert_non_null(strstr(logs, "missing=\"+hset\""));
    assert_int_equal(count_of(logs, "heartbeat failed"), 0);
    assert_true(beat_failures >= 3);
    /* Redis's words are quoted inside the value, escaped. */
    assert_non_null(strstr(logs, "redis answered \\\"NOPERM this user has no permissions "
                                 "to run the 'hset' command\\\""));
    assert_logfmt(logs);
    free(logs);
    fw_ruleset_unref(cur1);
    fw_ruleset_unref(cur2);
    fw_metrics_free(m1);
    fw_metrics_free(m2);
    fw_rstore_free(op);
}
#endif

static bool have_redis_server(void)
{
    return system("redis-server --version >/dev/null 2>&1") == 0;
}

int main(void)
{
    fw_event_init();
    if (!have_redis_server()) {
        printf("redis-server is not installed: skipped (scripts/deps.sh installs it)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_push_pull_roundtrip),
        cmocka_unit_test(test_refused_push_changes_nothing),
        cmocka_unit_test(test_fetch_feeds_loader),
        cmocka_unit_test(test_generation_and_versions),
        cmocka_unit_test(test_list_load_large),
        cmocka_unit_test(test_push_with_empty_list),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_heartbeat_status),
        cmocka_unit_test(test_stalled_server),
        cmocka_unit_test(test_watchlist_deltas),
        cmocka_unit_test(test_change_log_coverage),
#ifdef FW_HAVE_DAEMON
        cmocka_unit_test(test_reload_while_lists_churn),
        cmocka_unit_test(test_heartbeat_during_slow_fetch),
        cmocka_unit_test(test_acl_least_privilege),
        cmocka_unit_test(test_acl_missing_permissions),
#endif
    };
    return cmocka_run_group_tests_name("rulestore", tests, group_setup, group_teardown);
}
