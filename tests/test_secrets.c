/* test_secrets.c — the pieces every output path relies on to print no
 * secret (include/fraudwatch/secret.h, src/redis_url.h): which names are
 * secrets, how a URL is shown (well formed or not), where its password is,
 * how a password file is read and when it is refused, and that the Redis
 * URL parser's messages quote no part of the URL.  The black-box canary over
 * every command is tests/test_secrets.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/secret.h"
#include "redis_url.h"

#define PW "CANARY-pw-7f3a"

static char tmpdir[] = "/tmp/fw-test-secrets-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                   \
    } while (0)

static void test_names(void **state)
{
    (void)state;
    static const char *const secret[] = {
        "sasl.password", "ssl.key.password", "ssl.key.pem", "ssl.keystore.password",
        "ssl_key", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.extensions", "sasl.jaas.config", "SASL.PASSWORD", "my_token",
        "kafka.consumer.sasl.password", "x.credentials", "db.passwd", "key.passphrase",
    };
    static const char *const plain[] = {
        "sasl.username", "sasl.mechanisms", "ssl.ca.location", "ssl.certificate.pem",
        "rules.source", "rules.redis_password_file", "bootstrap.servers",
        "sasl.oauthbearer.method", "auto.offset.reset",
    };
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (!fw_secret_name(secret[i]))
            fail_msg("%s is a secret", secret[i]);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (fw_secret_name(plain[i]))
            fail_msg("%s is not a secret", plain[i]);
}

static void test_url_shown(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum fw_url_show how;
        const char *out;
    } cases[] = {
        { "redis://127.0.0.1:6379", FW_URL_SHOW_USER, "redis://127.0.0.1:6379" },
        { "redis://:" PW "@h:1/2", FW_URL_SHOW_USER, "redis://:****@h:1/2" },
        { "redis://u:" PW "@h", FW_URL_SHOW_USER, "redis://u:****@h" },
        { "redis://fraudwatch@h", FW_URL_SHOW_USER, "redis://fraudwatch@h" },
        { "redis://fraudwatch@h", FW_URL_HIDE_USERINFO, "redis://****@h" },
        { "redis://u:" PW "@h", FW_URL_HIDE_USERINFO, "redis://****@h" },
        /* unencoded '@', '/', '#', ':' in the password: the last '@' ends it */
        { "redis://u:p@ss/w#o:rd" PW "@h:6379", FW_URL_SHOW_USER, "redis://u:****@h:6379" },
        /* no scheme, a scheme in capitals, another scheme */
        { "u:" PW "@h", FW_URL_SHOW_USER, "u:****@h" },
        { "Redis://u:" PW "@h", FW_URL_SHOW_USER, "Redis://u:****@h" },
        { "https://u:" PW "@idp/token", FW_URL_SHOW_USER, "https://u:****@idp/token" },
        /* no '@': a port that is not a number may be a password */
        { "redis://u:" PW, FW_URL_SHOW_USER, "redis://u:****" },
        { "redis://u:" PW "/0", FW_URL_SHOW_USER, "redis://u:****" },
        { "redis://h:6379/0", FW_URL_SHOW_USER, "redis://h:6379/0" },
        { "redis://[::1]:6379", FW_URL_SHOW_USER, "redis://[::1]:6379" },
        { "redis://[::1:" PW, FW_URL_SHOW_USER, "redis://[****" },
        /* not URLs: as they are */
        { "dir:rules", FW_URL_SHOW_USER, "dir:rules" },
        { "a:9092,b:9093", FW_URL_SHOW_USER, "a:9092,b:9093" },
        { "redis://:@h", FW_URL_SHOW_USER, "redis://:@h" },
        { "", FW_URL_SHOW_USER, "" },
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fw_secret_url_shown(cases[i].in, cases[i].how, out, sizeof out);
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("%s shown as \"%s\", want \"%s\"", cases[i].in, out, cases[i].out);
    }
    /* Cut short, still terminated, and never the password's first bytes. */
    fw_secret_url_shown("redis://u:" PW "@h", FW_URL_SHOW_USER, out, 12);
    assert_string_equal(out, "redis://u:*");

    size_t off, len;
    const char *url = "redis://u:" PW "@h";
    assert_true(fw_secret_url_password(url, &off, &len));
    assert_int_equal(off, strlen("redis://u:"));
    assert_int_equal(len, strlen(PW));
    assert_false(fw_secret_url_password("redis://u@h", &off, &len));
    assert_false(fw_secret_url_password("redis://h:6379", &off, &len));
}

/* Writes content to a new file with mode; returns its path. */
static const char *file_with(const char *name, const char *content, size_t n, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void read_ok(const char *content, size_t n, mode_t mode, const char *want)
{
    char out[FW_SECRET_MAX], why[512] = "";
    const char *path = file_with("ok", content, n, mode);
    if (fw_secret_read_file(path, out, sizeof out, why, sizeof why) != 0)
        fail_msg("%s refused: %s", path, why);
    assert_string_equal(out, want);
}

static void read_refused(const char *name, const char *content, size_t n, mode_t mode,
                         const char *reason)
{
    char out[64], why[512] = "";
    const char *path = file_with(name, content, n, mode);
    assert_int_equal(fw_secret_read_file(path, out, sizeof out, why, sizeof why), -1);
    assert_contains(why, path);
    assert_contains(why, reason);
    assert_null(strstr(why, "CANARY"));
    assert_string_equal(out, "");
}

static void test_read_file(void **state)
{
    (void)state;
    read_ok(PW "\n", strlen(PW) + 1, 0600, PW);
    read_ok(PW, strlen(PW), 0600, PW);                 /* no line end */
    read_ok(PW "\r\n", strlen(PW) + 2, 0640, PW);      /* CRLF; group may read */
    read_ok(PW "\n\n\n", strlen(PW) + 3, 0400, PW);    /* blank lines after it */
    read_ok(" a b \n", 6, 0600, " a b ");              /* spaces are the password's */

    read_refused("world", PW "\n", strlen(PW) + 1, 0644, "readable by every user (mode 0644)");
    read_refused("world-w", PW "\n", strlen(PW) + 1, 0602, "writable by every user");
    read_refused("two", "user\n" PW "\n", strlen(PW) + 6, 0600, "more than one line");
    read_refused("empty", "", 0, 0600, "is empty");
    read_refused("blank", "\n", 1, 0600, "is empty");
    read_refused("nul", PW "\0x\n", strlen(PW) + 3, 0600, "NUL byte");
    char big[100];
    memset(big, 'C', sizeof big);
    read_refused("big", big, sizeof big, 0600, "larger than 63 bytes");

    char out[64], why[512];
    char path[256];
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_int_equal(fw_secret_read_file(path, out, sizeof out, why, sizeof why), -1);
    assert_contains(why, "No such file or directory");
    assert_int_equal(fw_secret_read_file(tmpdir, out, sizeof out, why, sizeof why), -1);
    assert_contains(why, "not a regular file");
    /* A FIFO is refused, not waited on. */
    snprintf(path, sizeof path, "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(fw_secret_read_file(path, out, sizeof out, why, sizeof why), -1);
    assert_contains(why, "not a regular file");
}

static void test_redis_url(void **state)
{
    (void)state;
    fw_redis_url u;
    char why[512], shown[640];
    assert_int_equal(fw_redis_url_parse("redis://fw%40x:p%40ss@[::1]:6380/3", &u, why,
                                        sizeof why), 0);
    assert_string_equal(u.user, "fw@x");
    assert_string_equal(u.pass, "p@ss");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    fw_redis_url_format(&u, shown, sizeof shown);
    assert_string_equal(shown, "redis://fw@x:****@[::1]:6380/3");
    fw_redis_url_wipe(&u);
    assert_string_equal(u.pass, "");

    /* A user without a password is a URL; whether it may connect is the
     * caller's decision (a password file may come with it). */
    assert_int_equal(fw_redis_url_parse("redis://fraudwatch@h", &u, why, sizeof why), 0);
    assert_true(u.has_user);
    assert_false(u.has_pass);
    fw_redis_url_format(&u, shown, sizeof shown);
    assert_string_equal(shown, "redis://fraudwatch@h:6379");

    static const struct {
        const char *url, *reason;
    } bad[] = {
        { "", "no Redis URL" },
        { "rediss://u:" PW "@h", "TLS" },
        { "REDISS://u:" PW "@h", "TLS" },
        { "Redis://u:" PW "@h", "lower case" },
        { "http://u:" PW "@h", "must start with redis://" },
        { "u:" PW "@h", "must start with redis://" },
        { "redis://u:" PW "@", "no host" },
        { "redis://u:" PW "@:6379", "no host" },
        { "redis://u:" PW, "port" },
        { "redis://u:" PW "/0", "port" },
        { "redis://u:" PW "@h:99999", "port" },
        { "redis://u:" PW "@h:0", "port" },
        { "redis://u:" PW "@h:", "port" },
        { "redis://u:" PW "@h/x", "database" },
        { "redis://u:" PW "@h/1" PW, "database" },
        { "redis://u:" PW "@h?db=1", "unexpected" },
        { "redis://u:" PW "@h#" PW, "unexpected" },
        { "redis://u:" PW "@[::1", "without \"]\"" },
        { "redis://u:" PW "%zz@h", "%-encoded" },
        { "redis://u:@h", "password is empty" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (fw_redis_url_parse(bad[i].url, &u, why, sizeof why) == 0)
            fail_msg("%s accepted", bad[i].url);
        if (!strstr(why, bad[i].reason))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].url, why, bad[i].reason);
        if (strstr(why, "CANARY") || strstr(why, "u:") || strstr(why, "@h"))
            fail_msg("%s: \"%s\" quotes the URL", bad[i].url, why);
        assert_string_equal(u.pass, "");   /* wiped */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_url_shown),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_redis_url),
    };
    return cmocka_run_group_tests_name("secrets", tests, setup, teardown);
}
