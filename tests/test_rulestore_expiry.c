/* test_rulestore_expiry.c — watchlist entries that expire, in Redis (issue
 * 11.5), against a real redis-server the test starts on a free port of
 * 127.0.0.1 (skipped, exit 77, without redis-server):
 *
 *   - a push of VALUE<TAB>UNTIL<TAB>REASON lines: the daemon's read
 *     (fw_rstore_fetch_update) gives the same membership at the boundary
 *     as the files (ts == UNTIL is not a member), and `rules pull` writes
 *     the three columns back (a valid set again, same instants);
 *   - `lists add` with an UNTIL and a reason reaches a daemon as a delta
 *     (no full read), a plain add clears an UNTIL, `lists show` has who,
 *     when, why and until;
 *   - cleaning: entries past the cut are removed (a '-' change in the log,
 *     so daemons apply it as a delta), a renewed entry is kept, other
 *     entries are untouched;
 *   - `lists load` of a bad UNTIL is refused with its line and changes
 *     nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/event.h"
#include "fraudwatch/rulefiles.h"
#include "fraudwatch/rulestore.h"
#include "fraudwatch/ruleset.h"

static pid_t srv_pid;
static int srv_port;
static char srv_url[128];
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

static redisContext *raw(void)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv_port, tv);
    if (c && !c->err)
        redisSetTimeout(c, tv);
    return c;
}

static void stop_server(void)
{
    if (srv_pid <= 0)
        return;
    kill(srv_pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(srv_pid, NULL, WNOHANG) != srv_pid; i++)
        usleep(50000);
    kill(srv_pid, SIGKILL);
    waitpid(srv_pid, NULL, 0);
    srv_pid = 0;
}

static int start_server(void)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        srv_port = free_port();
        char port[16];
        snprintf(port, sizeof port, "%d", srv_port);
        srv_pid = fork();
        if (srv_pid < 0)
            return -1;
        if (srv_pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", tmp_root, "--loglevel",
                   "warning", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            if (waitpid(srv_pid, NULL, WNOHANG) == srv_pid) {
                srv_pid = 0;
                break;
            }
            redisContext *c = raw();
            bool up = c && !c->err;
            if (up) {
                redisReply *r = redisCommand(c, "PING");
                up = r != NULL;
                if (r)
                    freeReplyObject(r);
            }
            if (c)
                redisFree(c);
            if (up) {
                snprintf(srv_url, sizeof srv_url, "redis://127.0.0.1:%d", srv_port);
                return 0;
            }
            usleep(50000);
        }
        stop_server();
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/fw-test-rexp-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    return start_server();
}

static int group_teardown(void **state)
{
    (void)state;
    stop_server();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int flush(void **state)
{
    (void)state;
    redisContext *c = raw();
    redisReply *r = redisCommand(c, "FLUSHALL");
    freeReplyObject(r);
    redisFree(c);
    return 0;
}

static fw_rstore *store(void)
{
    fw_rstore *r;
    char err[1024];
    if (fw_rstore_connect(srv_url, 2000, &r, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    return r;
}

static const char rules_json[] =
    "[{\"id\":\"R1\",\"event\":\"call\",\"where\":"
    "[{\"field\":\"caller\",\"in_list\":\"fraud\"}]}]";

/* T = 1700000000000 = 2023-11-14T22:13:20Z; U = T + 5000. */
#define U INT64_C(1700000005000)
static const char list_text[] =
    "# reported numbers\n"
    "a\t1700000005000\treported by bank A\n"
    "b\t2023-11-15T06:13:25+08:00\n"
    "c\t-\tnever\n"
    "d\n";

static void push(fw_rstore *r, const char *list)
{
    fw_rulefile f[2] = {
        { "fraud.list", list, strlen(list) },
        { "r.json", rules_json, strlen(rules_json) },
    };
    char err[4096];
    fw_rstore_push_result res;
    if (fw_rstore_push_files(r, f, 2, &res, err, sizeof err) != 0)
        fail_msg("push: %s", err);
}

/* The daemon's read, built into a set on top of `have`. */
static fw_ruleset *daemon_read(fw_rstore *r, const fw_ruleset *have, fw_rstore_update *u)
{
    char err[4096];
    memset(u, 0, sizeof *u);
    if (fw_rstore_fetch_update(r, have, u, err, sizeof err) != 0)
        fail_msg("fetch_update: %s", err);
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_parts(u->files, u->nfiles, u->lists, u->nlists, have, u->version,
                              &rs, err, sizeof err) != 0)
        fail_msg("load_parts: %s", err);
    return rs;
}

static void test_push_fetch_pull(void **state)
{
    (void)state;
    fw_rstore *r = store();
    push(r, list_text);
    fw_rstore_update u;
    fw_ruleset *rs = daemon_read(r, NULL, &u);
    assert_int_equal(u.full_reads, 1);
    fw_rstore_update_free(&u);
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "a", U - 1));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "a", U));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "b", U - 1));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "b", U));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "c", INT64_C(253402300799999)));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "d", INT64_C(253402300799999)));
    fw_ruleset_unref(rs);

    /* pull: the three columns back, UNTIL as ISO 8601 UTC, a valid set */
    char dir[128], path[200];
    snprintf(dir, sizeof dir, "%s/pulled", tmp_root);
    char err[4096];
    fw_rstore_pull_result pr;
    if (fw_rstore_pull_dir(r, dir, true, &pr, err, sizeof err) != 0)
        fail_msg("pull: %s", err);
    snprintf(path, sizeof path, "%s/fraud.list", dir);
    char *data;
    size_t len;
    assert_int_equal(fw_rulefiles_read_file(path, FW_RULEFILE_LIST, &data, &len, err,
                                            sizeof err), 0);
    assert_non_null(strstr(data, "\na\t2023-11-14T22:13:25Z\treported by bank A\n"));
    assert_non_null(strstr(data, "\nb\t2023-11-14T22:13:25Z\n"));
    assert_non_null(strstr(data, "\nc\t-\tnever\n"));
    assert_non_null(strstr(data, "\nd\n"));
    free(data);
    if (fw_ruleset_load_dir(dir, 1, &rs, err, sizeof err) != 0)
        fail_msg("pulled set: %s", err);
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "a", U - 1));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "a", U));
    fw_ruleset_unref(rs);

    /* fw_rstore_fetch (the tools' files) holds the columns too */
    fw_rulefile *files;
    size_t nfiles;
    uint64_t v, g;
    if (fw_rstore_fetch(r, &files, &nfiles, &v, &g, err, sizeof err) != 0)
        fail_msg("fetch: %s", err);
    if (fw_ruleset_load_files(files, nfiles, v, &rs, err, sizeof err) != 0)
        fail_msg("fetched set: %s", err);
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "b", U));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "b", U - 1));
    fw_ruleset_unref(rs);
    fw_rulefiles_free(files, nfiles);
    fw_rstore_free(r);
}

static void test_add_delta_show(void **state)
{
    (void)state;
    fw_rstore *r = store();
    push(r, list_text);
    fw_rstore_update u;
    fw_ruleset *rs = daemon_read(r, NULL, &u);
    fw_rstore_update_free(&u);

    char err[4096];
    fw_rstore_list_result res;
    const char *vals[2] = { "e", "d" };
    fw_rstore_entry_meta meta = { .until = U + 1000, .reason = "bank B\treport 9" };
    fw_rstore_set_actor("alice");
    if (fw_rstore_list_add_meta(r, "fraud", vals, 2, &meta, &res, err, sizeof err) != 0)
        fail_msg("add: %s", err);
    const char *plain[1] = { "a" };   /* a plain add: a never expires now */
    fw_rstore_set_actor(NULL);
    if (fw_rstore_list_add(r, "fraud", plain, 1, &res, err, sizeof err) != 0)
        fail_msg("add: %s", err);

    fw_ruleset *rs2 = daemon_read(r, rs, &u);
    assert_int_equal(u.deltas, 1);        /* the change log carried it */
    assert_int_equal(u.full_reads, 0);
    fw_rstore_update_free(&u);
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "e", U + 999));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "e", U + 1000));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "d", U + 1000));   /* was never */
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "a", U + 100000));  /* was U */
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "a", U));           /* old set */

    /* the same from a full read (what a restarted daemon sees) */
    fw_ruleset *rs3 = daemon_read(r, NULL, &u);
    fw_rstore_update_free(&u);
    assert_false(fw_ruleset_list_has_at(rs3, "fraud", "e", U + 1000));
    assert_true(fw_ruleset_list_has_at(rs3, "fraud", "e", U + 999));
    assert_true(fw_ruleset_list_has_at(rs3, "fraud", "a", U + 100000));

    fw_rstore_entry e;
    assert_int_equal(fw_rstore_list_show(r, "fraud", "e", &e, err, sizeof err), 0);
    assert_true(e.list_exists && e.member && e.own_record);
    assert_int_equal(e.until, U + 1000);
    assert_string_equal(e.by, "alice");
    assert_string_equal(e.reason, "bank B\treport 9");
    assert_true(e.added_at > fw_wall_ms() - 60000 && e.added_at <= fw_wall_ms());
    assert_int_equal(fw_rstore_list_show(r, "fraud", "c", &e, err, sizeof err), 0);
    assert_true(e.member && e.own_record);   /* loaded with a reason */
    assert_string_equal(e.reason, "never");
    assert_true(e.until == FW_UNTIL_NEVER);
    assert_string_equal(e.loaded_how, "rules push");
    assert_int_equal(fw_rstore_list_show(r, "fraud", "b", &e, err, sizeof err), 0);
    assert_true(e.member && !e.own_record);  /* loaded without a reason: the load's */
    assert_int_equal(e.until, U);
    assert_true(e.loaded_at > 0);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "zz", &e, err, sizeof err), 0);
    assert_false(e.member);

    /* a removal drops UNTIL and record with the entry */
    const char *gone[1] = { "e" };
    if (fw_rstore_list_remove(r, "fraud", gone, 1, &res, err, sizeof err) != 0)
        fail_msg("remove: %s", err);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "e", &e, err, sizeof err), 0);
    assert_false(e.member || e.own_record);
    assert_true(e.until == FW_UNTIL_NEVER);

    /* a tab in a value is refused (it would split a .list line) */
    const char *tabbed[1] = { "x\ty" };
    assert_int_equal(fw_rstore_list_add(r, "fraud", tabbed, 1, &res, err, sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "tab"));
    fw_ruleset_unref(rs);
    fw_ruleset_unref(rs2);
    fw_ruleset_unref(rs3);
    fw_rstore_free(r);
}

static void test_expire(void **state)
{
    (void)state;
    fw_rstore *r = store();
    push(r, "old1\t1000\nold2\t2000\tr\nkeep\t5000\nplain\nrenewed\t1500\n");
    fw_rstore_update u;
    fw_ruleset *rs = daemon_read(r, NULL, &u);
    fw_rstore_update_free(&u);
    char err[4096];
    fw_rstore_list_result res;
    /* renewed before the cleaner runs: its new UNTIL is in the future */
    const char *ren[1] = { "renewed" };
    fw_rstore_entry_meta meta = { .until = 9000, .reason = NULL };
    if (fw_rstore_list_add_meta(r, "fraud", ren, 1, &meta, &res, err, sizeof err) != 0)
        fail_msg("add: %s", err);
    /* entries with UNTIL <= 2000 go */
    if (fw_rstore_list_expire(r, "fraud", 2000, &res, err, sizeof err) != 0)
        fail_msg("expire: %s", err);
    assert_int_equal(res.changed, 2);
    assert_int_equal(res.size, 3);
    fw_rstore_entry e;
    assert_int_equal(fw_rstore_list_show(r, "fraud", "old2", &e, err, sizeof err), 0);
    assert_false(e.member || e.own_record);
    assert_true(e.until == FW_UNTIL_NEVER);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "renewed", &e, err, sizeof err), 0);
    assert_true(e.member);
    assert_int_equal(e.until, 9000);
    /* nothing left to clean: no change, no new version */
    uint64_t version = res.version;
    if (fw_rstore_list_expire(r, "fraud", 2000, &res, err, sizeof err) != 0)
        fail_msg("expire: %s", err);
    assert_int_equal(res.changed, 0);
    /* daemons get it as a delta */
    fw_ruleset *rs2 = daemon_read(r, rs, &u);
    assert_int_equal(u.full_reads, 0);
    assert_int_equal(u.deltas, 1);
    fw_rstore_update_free(&u);
    uint64_t lv;
    size_t count;
    assert_true(fw_ruleset_list_info(rs2, "fraud", &lv, &count));
    assert_int_equal(lv, version);
    assert_int_equal(count, 3);
    assert_false(fw_ruleset_list_has(rs2, "fraud", "old1"));
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "keep", 4999));
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "renewed", 8999));
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "plain", 1 << 30));
    /* a list name that is not one is refused */
    assert_int_equal(fw_rstore_list_expire(r, ".x", 0, &res, err, sizeof err),
                     FW_RSTORE_REFUSED);
    fw_ruleset_unref(rs);
    fw_ruleset_unref(rs2);
    fw_rstore_free(r);
}

/* Many expired entries: cleaned 1000 per transaction, all of them. */
static void test_expire_many(void **state)
{
    (void)state;
    fw_rstore *r = store();
    enum { N = 2500 };
    char *text = malloc(N * 32 + 64), *p = text;
    for (int i = 0; i < N; i++)
        p += sprintf(p, "v%d\t%d\n", i, 100 + i % 7);
    p += sprintf(p, "stay\n");
    push(r, text);
    free(text);
    char err[4096];
    fw_rstore_list_result res;
    if (fw_rstore_list_expire(r, "fraud", 1000, &res, err, sizeof err) != 0)
        fail_msg("expire: %s", err);
    assert_int_equal(res.changed, N);
    assert_int_equal(res.size, 1);
    fw_rstore_free(r);
}

static void test_load_bad_until_changes_nothing(void **state)
{
    (void)state;
    fw_rstore *r = store();
    push(r, list_text);
    char err[4096];
    fw_rstore_list_result res;
    const char *bad = "x\t2030-01-01T00:00:00Z\ny\tnext week\tr\n";
    assert_int_equal(fw_rstore_list_replace(r, "fraud", bad, strlen(bad), &res, err,
                                            sizeof err),
                     FW_RSTORE_REFUSED);
    assert_non_null(strstr(err, "line 2: UNTIL \"next week\" is not a time"));
    fw_rstore_entry e;
    assert_int_equal(fw_rstore_list_show(r, "fraud", "a", &e, err, sizeof err), 0);
    assert_true(e.member);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "x", &e, err, sizeof err), 0);
    assert_false(e.member);
    /* a good load replaces the UNTILs with the entries */
    const char *good = "x\t2030-01-01T00:00:00Z\twhy\na\n";
    if (fw_rstore_list_replace(r, "fraud", good, strlen(good), &res, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "a", &e, err, sizeof err), 0);
    assert_true(e.member && e.until == FW_UNTIL_NEVER && !e.own_record);
    assert_int_equal(fw_rstore_list_show(r, "fraud", "x", &e, err, sizeof err), 0);
    assert_int_equal(e.until, INT64_C(1893456000000));
    assert_string_equal(e.reason, "why");
    assert_int_equal(fw_rstore_list_show(r, "fraud", "b", &e, err, sizeof err), 0);
    assert_false(e.member);
    /* no staged key is left behind */
    redisContext *c = raw();
    redisReply *k = redisCommand(c, "KEYS fraudwatch:tmp:*");
    assert_int_equal(k->elements, 0);
    freeReplyObject(k);
    redisFree(c);
    fw_rstore_free(r);
}

/* A list whose every entry expires, then one plain entry more; an UNTIL
 * left without its member (a writer that changed the set alone) is no
 * entry, even when the counts happen to agree. */
static void test_all_timed_full_read(void **state)
{
    (void)state;
    fw_rstore *r = store();
    push(r, "a\t1000\nb\t2000\nc\t3000\n");
    fw_rstore_update u;
    fw_ruleset *rs = daemon_read(r, NULL, &u);
    assert_int_equal(u.full_entries, 3);
    fw_rstore_update_free(&u);
    size_t count;
    assert_true(fw_ruleset_list_info(rs, "fraud", NULL, &count));
    assert_int_equal(count, 3);
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "c", 2999));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "c", 3000));
    fw_ruleset_unref(rs);
    char err[1024];
    fw_rstore_list_result res;
    const char *plain[1] = { "p" };
    if (fw_rstore_list_add(r, "fraud", plain, 1, &res, err, sizeof err) != 0)
        fail_msg("add: %s", err);
    rs = daemon_read(r, NULL, &u);
    fw_rstore_update_free(&u);
    assert_true(fw_ruleset_list_info(rs, "fraud", NULL, &count));
    assert_int_equal(count, 4);
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "p", INT64_C(253402300799999)));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "a", 1000));
    fw_ruleset_unref(rs);
    redisContext *c = raw();
    redisReply *x = redisCommand(c, "ZADD fraudwatch:list:fraud:until 5000 ghost");
    freeReplyObject(x);
    x = redisCommand(c, "SREM fraudwatch:list:fraud a");   /* a's UNTIL stays */
    freeReplyObject(x);
    redisFree(c);
    rs = daemon_read(r, NULL, &u);
    fw_rstore_update_free(&u);
    assert_true(fw_ruleset_list_info(rs, "fraud", NULL, &count));
    assert_int_equal(count, 3);
    assert_false(fw_ruleset_list_has(rs, "fraud", "ghost"));
    assert_false(fw_ruleset_list_has(rs, "fraud", "a"));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "b", 1999));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "p", INT64_C(253402300799999)));
    fw_ruleset_unref(rs);
    fw_rstore_free(r);
}

int main(void)
{
    fw_event_init();
    if (system("redis-server --version >/dev/null 2>&1") != 0) {
        printf("redis-server is not installed: skipped (scripts/deps.sh installs it)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_push_fetch_pull, flush),
        cmocka_unit_test_setup(test_add_delta_show, flush),
        cmocka_unit_test_setup(test_expire, flush),
        cmocka_unit_test_setup(test_expire_many, flush),
        cmocka_unit_test_setup(test_load_bad_until_changes_nothing, flush),
        cmocka_unit_test_setup(test_all_timed_full_read, flush),
    };
    return cmocka_run_group_tests_name("rulestore_expiry", tests, group_setup,
                                       group_teardown);
}
