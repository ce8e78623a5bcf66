/* test_config.c — the settings module: defaults, the file format, --set
 * overrides, every refusal (with its place and key), librdkafka
 * pass-through, secret masking, and docs/configuration.md agreeing with
 * the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fraudwatch/config.h"
#include "kafka.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"

static char tmpdir[] = "/tmp/fw-test-config-XXXXXX";
static int nfiles;

/* Writes `text` to a new file in the test directory; returns its path. */
static const char *write_conf(const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%d.conf", tmpdir, nfiles++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    for (int i = 0; i < nfiles; i++) {
        snprintf(path, sizeof path, "%s/%d.conf", tmpdir, i);
        unlink(path);
    }
    return rmdir(tmpdir);
}

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                   \
    } while (0)

/* A --set that must fail; returns the message. */
static const char *set_fails(fw_settings *s, const char *key, const char *value)
{
    static char err[2048];
    char origin[512];
    snprintf(origin, sizeof origin, "--set %s=%s", key, value);
    err[0] = '\0';
    if (fw_config_set(s, key, value, origin, err, sizeof err) == 0)
        fail_msg("--set %s=%s was accepted", key, value);
    assert_true(strncmp(err, origin, strlen(origin)) == 0 || strstr(err, "********"));
    return err;
}

static void set_ok(fw_settings *s, const char *key, const char *value)
{
    char err[2048] = "";
    if (fw_config_set(s, key, value, "test", err, sizeof err) != 0)
        fail_msg("%s=%s refused: %s", key, value, err);
}

/* fw_config_print() into a string (caller frees). */
static char *printed(const fw_settings *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fw_config_print(s, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_defaults(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    assert_non_null(s);
    assert_string_equal(s->brokers, "127.0.0.1:9092");
    assert_int_equal(s->ninput_topics, 1);
    assert_string_equal(s->input_topics[0], "fraudwatch.events");
    assert_string_equal(s->group_id, "fraudwatch");
    assert_string_equal(s->alert_topic, "fraudwatch.alerts");
    assert_string_equal(s->dlq_topic, "fraudwatch.deadletter");
    assert_int_equal(s->threads, 2);
    assert_string_equal(s->rules_source, "dir:rules");
    /* The engine's defaults are replay's: one table (pipeline.h). */
    assert_true(s->lateness_s * 1000 == FW_DEFAULT_LATENESS_MS);
    assert_true(s->max_event_bytes == FW_DEFAULT_MAX_EVENT_BYTES);
    assert_true((uint64_t)s->max_keys == FW_DEFAULT_MAX_KEYS);
    assert_true(s->max_regex_per_event == FW_DEFAULT_MAX_REGEX_PER_EVENT);
    assert_int_equal(s->max_event_bytes, 1048576);
    assert_int_equal(s->lateness_s, 86400);
    assert_string_equal(s->state_dir, "state");
    assert_int_equal(s->checkpoint_interval_ms, 5000);
    assert_string_equal(s->metrics_listen, "127.0.0.1:9464");
    assert_string_equal(s->log_level, "info");
    assert_int_equal(s->shutdown_timeout_s, 30);
    assert_string_equal(s->instance_id, "");
    assert_int_equal(s->nconsumer, 0);
    assert_int_equal(s->nproducer, 0);

    /* The defaults are valid; validate fills instance.id in. */
    char err[1024] = "";
    assert_int_equal(fw_config_validate(s, err, sizeof err), 0);
    char want[64];
    snprintf(want, sizeof want, "-%ld", (long)getpid());
    assert_true(strlen(s->instance_id) > strlen(want));
    assert_string_equal(s->instance_id + strlen(s->instance_id) - strlen(want), want);
    fw_config_free(s);
    fw_config_free(NULL);
}

static void test_file_format(void **state)
{
    (void)state;
    const char *path = write_conf(
        "\xEF\xBB\xBF# a comment\n"
        "; another comment\n"
        "   # indented comment\n"
        "\n"
        "   \t \n"
        "engine.threads=3\n"
        "  engine.lateness_s   =   600  \n"
        "\tlog.level\t=\tdebug\r\n"
        "instance.id =\n"
        "kafka.group.id = g1\n"
        "kafka.group.id = g2\n"                      /* the later line wins */
        "input.topics = a, b ,c\n"
        "rules.source = dir:/etc/fraudwatch/rules\n"
        "state.dir = /var/lib/fraudwatch state\n"    /* inner spaces are kept */
        "kafka.consumer.auto.offset.reset = earliest\n"
        "kafka.consumer.fetch.wait.max.ms = 50\n"
        "kafka.consumer.auto.offset.reset = latest\n" /* replaced in place */
        "kafka.producer.linger.ms = 10\n"
        "kafka.producer.client.rack=\n"               /* empty value passed on */
        "metrics.listen = off");                      /* no final newline */
    fw_settings *s = fw_config_new();
    char err[1024] = "";
    if (fw_config_load_file(s, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(s->threads, 3);
    assert_int_equal(s->lateness_s, 600);
    assert_string_equal(s->log_level, "debug");
    assert_string_equal(s->instance_id, "");
    assert_string_equal(s->group_id, "g2");
    assert_int_equal(s->ninput_topics, 3);
    assert_string_equal(s->input_topics[0], "a");
    assert_string_equal(s->input_topics[1], "b");
    assert_string_equal(s->input_topics[2], "c");
    assert_string_equal(s->rules_source, "dir:/etc/fraudwatch/rules");
    assert_string_equal(s->state_dir, "/var/lib/fraudwatch state");
    assert_string_equal(s->metrics_listen, "off");
    assert_int_equal(s->nconsumer, 2);
    assert_string_equal(s->consumer_keys[0], "auto.offset.reset");
    assert_string_equal(s->consumer_values[0], "latest");
    assert_string_equal(s->consumer_keys[1], "fetch.wait.max.ms");
    assert_string_equal(s->consumer_values[1], "50");
    assert_int_equal(s->nproducer, 2);
    assert_string_equal(s->producer_keys[0], "linger.ms");
    assert_string_equal(s->producer_values[0], "10");
    assert_string_equal(s->producer_keys[1], "client.rack");
    assert_string_equal(s->producer_values[1], "");
    /* Keys not in the file keep their defaults. */
    assert_string_equal(s->brokers, "127.0.0.1:9092");
    assert_int_equal(s->shutdown_timeout_s, 30);
    assert_int_equal(fw_config_validate(s, err, sizeof err), 0);
    fw_config_free(s);
}

static void test_file_errors(void **state)
{
    (void)state;
    char err[1024], want[256];
    fw_settings *s = fw_config_new();

    const char *path = write_conf("# x\nengine.threads = 2\nengine.thread = 4\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3: unknown key \"engine.thread\" (did you mean "
             "\"engine.threads\"?)", path);
    assert_string_equal(err, want);

    /* A line without "=" is not quoted: it may be a secret on its own. */
    path = write_conf("engine.threads = 2\nthis line has no equals sign\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: no \"=\" on the line (expected \"key = value\"", path);
    assert_contains(err, want);
    assert_null(strstr(err, "equals sign"));
    path = write_conf("engine.threads 4\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: \"engine.threads\": no \"=\" between the key and "
             "its value", path);
    assert_contains(err, want);

    path = write_conf("\n = 3\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: missing key", path);
    assert_contains(err, want);

    path = write_conf("engine.threads = 4 # four\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: engine.threads must be an integer 1..64", path);
    assert_contains(err, want);
    assert_contains(err, "comments go on a line of their own");

    path = write_conf("\n\n\n\n\nkafka.consumer.enable.auto.commit = true\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:6: kafka.consumer.enable.auto.commit cannot be set", path);
    assert_contains(err, want);

    snprintf(want, sizeof want, "%s/missing.conf", tmpdir);
    assert_int_equal(fw_config_load_file(s, want, err, sizeof err), -1);
    assert_contains(err, want);
    assert_contains(err, "cannot open");

    /* A tiny buffer is still terminated. */
    char small[8];
    assert_int_equal(fw_config_set(s, "nope", "1", "origin", small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
    fw_config_free(s);
}

static void test_overrides(void **state)
{
    (void)state;
    const char *path = write_conf("engine.threads = 8\nlog.level = warn\n"
                                  "kafka.producer.linger.ms = 10\n");
    fw_settings *s = fw_config_new();
    char err[1024] = "";
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), 0);
    assert_int_equal(fw_config_set(s, "engine.threads", "16", "--set engine.threads=16", err,
                                   sizeof err), 0);
    assert_int_equal(fw_config_set(s, "kafka.producer.linger.ms", "20", NULL, err, sizeof err),
                     0);
    set_ok(s, "log.level", "ERROR");                 /* any case, stored as listed */
    assert_int_equal(s->threads, 16);
    assert_string_equal(s->log_level, "error");
    assert_int_equal(s->nproducer, 1);
    assert_string_equal(s->producer_values[0], "20");

    /* A refused value leaves the old one. */
    set_fails(s, "engine.threads", "65");
    assert_int_equal(s->threads, 16);
    set_fails(s, "input.topics", "a,,b");
    assert_int_equal(s->ninput_topics, 1);
    assert_string_equal(s->input_topics[0], "fraudwatch.events");

    /* Without an origin the message starts with the key. */
    assert_int_equal(fw_config_set(s, "engine.threads", "0", NULL, err, sizeof err), -1);
    assert_string_equal(err, "engine.threads must be 1..64 (got 0)");
    fw_config_free(s);
}

static void test_numbers(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    assert_string_equal(set_fails(s, "engine.threads", "0"),
                        "--set engine.threads=0: engine.threads must be 1..64 (got 0)");
    assert_contains(set_fails(s, "engine.threads", "65"), "engine.threads must be 1..64");
    assert_contains(set_fails(s, "engine.threads", "-1"), "engine.threads must be 1..64");
    assert_contains(set_fails(s, "engine.threads", "4294967298"), "must be 1..64");
    assert_contains(set_fails(s, "engine.threads", "99999999999999999999999"),
                    "must be 1..64");
    assert_contains(set_fails(s, "engine.threads", "two"),
                    "engine.threads must be an integer 1..64 (got \"two\")");
    assert_contains(set_fails(s, "engine.threads", ""), "must be an integer");
    assert_contains(set_fails(s, "engine.threads", "2.5"), "must be an integer");
    assert_contains(set_fails(s, "engine.threads", "0x10"), "must be an integer");
    assert_contains(set_fails(s, "engine.threads", " 2"), "must be an integer");
    assert_contains(set_fails(s, "limits.max_event_bytes", "63"),
                    "limits.max_event_bytes must be 64..16777216");
    assert_contains(set_fails(s, "limits.max_event_bytes", "16777217"), "64..16777216");
    assert_contains(set_fails(s, "engine.lateness_s", "0"), "engine.lateness_s must be 1..31536000");
    assert_contains(set_fails(s, "state.checkpoint_interval_ms", "99"),
                    "state.checkpoint_interval_ms must be 100..3600000");
    assert_contains(set_fails(s, "shutdown.timeout_s", "3601"),
                    "shutdown.timeout_s must be 1..3600");

    set_ok(s, "engine.threads", "64");
    set_ok(s, "engine.threads", "+1");
    set_ok(s, "limits.max_event_bytes", "16777216");
    set_ok(s, "engine.lateness_s", "31536000");
    set_ok(s, "state.checkpoint_interval_ms", "100");
    set_ok(s, "shutdown.timeout_s", "3600");
    assert_int_equal(s->threads, 1);
    assert_int_equal(s->max_event_bytes, 16777216);
    assert_int_equal(s->lateness_s, 31536000);
    assert_int_equal(s->checkpoint_interval_ms, 100);
    assert_int_equal(s->shutdown_timeout_s, 3600);
    fw_config_free(s);
}

static void test_strings(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    assert_contains(set_fails(s, "log.level", "verbose"),
                    "log.level must be one of debug|info|warn|error (got \"verbose\")");
    assert_contains(set_fails(s, "log.level", "warn=warn"), "must be one of");
    assert_contains(set_fails(s, "log.level", "fatal"),
                    "must be one of debug|info|warn|error (got \"fatal\")");
    set_ok(s, "log.level", "Warning");              /* the alias log.h also takes */
    assert_string_equal(s->log_level, "warn");
    set_ok(s, "log.level", "DEBUG");
    assert_string_equal(s->log_level, "debug");
    assert_contains(set_fails(s, "log.level", ""), "must be one of");

    /* Off the loopback: parsed by the key, refused between keys (it needs
     * metrics.tls_* and metrics.auth_*; tests/test_metrics_tls.py). */
    static const char *const remote[] = { "0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464",
                                          "[::ffff:127.0.0.1]:9464" };
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        char verr[2048];
        set_ok(s, "metrics.listen", remote[i]);
        assert_int_equal(fw_config_validate(s, verr, sizeof verr), -1);
        assert_contains(verr, "not a loopback address");
        assert_contains(verr, "metrics.tls_cert_file");
    }
    assert_contains(set_fails(s, "metrics.listen", "example.com:9464"),
                    "not an IP address or localhost");
    assert_contains(set_fails(s, "metrics.listen", "127.0.0.1"), "want HOST:PORT");
    assert_contains(set_fails(s, "metrics.listen", "::1:9464"), "want HOST:PORT");
    assert_contains(set_fails(s, "metrics.listen", "127.0.0.1:65536"), "port must be 0..65535");
    assert_contains(set_fails(s, "metrics.listen", "127.0.0.1:x"), "port must be 0..65535");
    assert_contains(set_fails(s, "metrics.listen", ""), "metrics.listen must not be empty");
    set_ok(s, "metrics.listen", "127.0.0.1:9464");
    set_ok(s, "metrics.listen", "127.10.20.30:0");
    set_ok(s, "metrics.listen", "[::1]:9464");
    set_ok(s, "metrics.listen", "localhost:9464");
    set_ok(s, "metrics.listen", "LOCALHOST:1");
    set_ok(s, "metrics.listen", "off");

    assert_contains(set_fails(s, "rules.source", "rules"), "want dir:PATH");
    assert_contains(set_fails(s, "rules.source", "dir:"), "want dir:PATH");
    set_ok(s, "rules.source", "redis://:secret@127.0.0.1:6379/2");
    assert_contains(set_fails(s, "rules.source", "rediss://127.0.0.1:6380"),
                    "hiredis 0.14, which has no TLS");
    assert_contains(set_fails(s, "output.topic", ""), "output.topic must not be empty");
    assert_contains(set_fails(s, "output.topic", "my alerts"), "not a valid Kafka topic name");
    assert_contains(set_fails(s, "deadletter.topic", ".."), "not a valid Kafka topic name");
    char longname[300];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    assert_contains(set_fails(s, "output.topic", longname), "at most 249");
    assert_contains(set_fails(s, "kafka.bootstrap.servers", ""), "must not be empty");
    assert_contains(set_fails(s, "kafka.bootstrap.servers", "a:1,,b:2"), "empty entry");
    assert_contains(set_fails(s, "kafka.group.id", ""), "kafka.group.id must not be empty");
    assert_contains(set_fails(s, "state.dir", ""), "state.dir must not be empty");
    assert_contains(set_fails(s, "instance.id", "a\tb"), "control character");
    set_ok(s, "instance.id", "node-7");
    set_ok(s, "kafka.bootstrap.servers", "k1:9092,k2:9092");
    assert_string_equal(s->instance_id, "node-7");

    char err[1024];
    assert_int_equal(fw_config_validate(s, err, sizeof err), 0);
    assert_string_equal(s->instance_id, "node-7");     /* not replaced */
    fw_config_free(s);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    assert_contains(set_fails(s, "engine.thread", "2"),
                    "unknown key \"engine.thread\" (did you mean \"engine.threads\"?)");
    assert_contains(set_fails(s, "Log.Level", "info"), "(did you mean \"log.level\"?)");
    assert_contains(set_fails(s, "threads", "2"), "(did you mean \"engine.threads\"?)");
    assert_contains(set_fails(s, "kafka.consumr.auto.offset.reset", "earliest"),
                    "(did you mean \"kafka.consumer.auto.offset.reset\"?)");
    assert_contains(set_fails(s, "kafka.producers.linger.ms", "5"),
                    "(did you mean \"kafka.producer.linger.ms\"?)");
    const char *e = set_fails(s, "completely.different", "1");
    assert_contains(e, "unknown key \"completely.different\"");
    assert_null(strstr(e, "did you mean"));
    fw_config_free(s);
}

static void test_topics(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    set_ok(s, "input.topics", "a, b ,c");
    assert_int_equal(s->ninput_topics, 3);
    assert_string_equal(s->input_topics[0], "a");
    assert_string_equal(s->input_topics[1], "b");
    assert_string_equal(s->input_topics[2], "c");
    set_ok(s, "input.topics", "calls.v1");
    assert_int_equal(s->ninput_topics, 1);
    assert_string_equal(s->input_topics[0], "calls.v1");

    assert_contains(set_fails(s, "input.topics", "a,,b"),
                    "input.topics entry 2 of \"a,,b\" is empty");
    assert_contains(set_fails(s, "input.topics", "a,b,"), "entry 3 of \"a,b,\" is empty");
    assert_contains(set_fails(s, "input.topics", ",a"), "entry 1");
    assert_contains(set_fails(s, "input.topics", " , "), "is empty");
    assert_contains(set_fails(s, "input.topics", ""), "input.topics is required");
    assert_contains(set_fails(s, "input.topics", "   "), "input.topics is required");
    assert_contains(set_fails(s, "input.topics", "a,b,a"), "lists \"a\" twice");
    assert_contains(set_fails(s, "input.topics", "a,b c"), "\"b c\" is not a valid Kafka topic");
    assert_int_equal(s->ninput_topics, 1);
    fw_config_free(s);
}

static void test_cross_keys(void **state)
{
    (void)state;
    char err[1024];
    const char *path = write_conf("input.topics = in, fraudwatch.alerts\n");
    fw_settings *s = fw_config_new();
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), 0);
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:1: output.topic \"fraudwatch.alerts\" is also in "
             "input.topics: the daemon would consume its own alerts", path);
    assert_string_equal(err, want);
    fw_config_free(s);

    s = fw_config_new();
    set_ok(s, "deadletter.topic", "fraudwatch.events");
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_contains(err, "deadletter.topic \"fraudwatch.events\" is also in input.topics");
    fw_config_free(s);

    s = fw_config_new();
    assert_int_equal(fw_config_set(s, "deadletter.topic", "fraudwatch.alerts",
                                   "--set deadletter.topic=fraudwatch.alerts", err, sizeof err), 0);
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_contains(err, "--set deadletter.topic=fraudwatch.alerts: deadletter.topic "
                         "\"fraudwatch.alerts\" is also output.topic");
    fw_config_free(s);

    /* A field written by hand is checked too. */
    s = fw_config_new();
    s->threads = 0;
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_string_equal(err, "engine.threads must be 1..64 (got 0)");
    s->threads = 2;
    free(s->log_level);
    s->log_level = strdup("loud");
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_contains(err, "log.level must be one of");
    fw_config_free(s);
}

static void test_passthrough(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    set_ok(s, "kafka.consumer.auto.offset.reset", "earliest");
    set_ok(s, "kafka.consumer.partition.assignment.strategy", "cooperative-sticky");
    set_ok(s, "kafka.consumer.session.timeout.ms", "30000");
    set_ok(s, "kafka.producer.compression.type", "lz4");
    set_ok(s, "kafka.producer.acks", "all");
    set_ok(s, "kafka.producer.acks", "-1");
    set_ok(s, "kafka.producer.max.in.flight", "5");
    set_ok(s, "kafka.consumer.security.protocol", "plaintext");  /* a "both" property */
    assert_int_equal(s->nconsumer, 4);
    assert_int_equal(s->nproducer, 3);

    /* librdkafka's own refusals, with its words. */
    const char *e = set_fails(s, "kafka.consumer.auto.ofset.reset", "earliest");
    assert_contains(e, "kafka.consumer.auto.ofset.reset: librdkafka: No such configuration "
                       "property: \"auto.ofset.reset\"");
    assert_contains(e, "(did you mean \"kafka.consumer.auto.offset.reset\"?)");
    assert_contains(set_fails(s, "kafka.consumer.auto.offset.reset", "earlist"),
                    "librdkafka: Invalid value \"earlist\" for configuration property "
                    "\"auto.offset.reset\"");
    assert_contains(set_fails(s, "kafka.producer.linger.ms", "soon"),
                    "kafka.producer.linger.ms: librdkafka:");
    assert_contains(set_fails(s, "kafka.consumer.", "x"), "needs a librdkafka property");

    /* The right property on the wrong client. */
    assert_contains(set_fails(s, "kafka.producer.auto.offset.reset", "earliest"),
                    "\"auto.offset.reset\" is a consumer property; did you mean "
                    "kafka.consumer.auto.offset.reset?");
    assert_contains(set_fails(s, "kafka.consumer.linger.ms", "5"),
                    "\"linger.ms\" is a producer property");

    /* What the daemon owns, each with what to do instead. */
    assert_contains(set_fails(s, "kafka.consumer.enable.auto.offset.store", "true"),
                    "kafka.consumer.enable.auto.offset.store cannot be set: fixed to false");
    assert_contains(set_fails(s, "kafka.consumer.enable.auto.commit", "false"),
                    "kafka.consumer.enable.auto.commit cannot be set: fixed to false");
    assert_contains(set_fails(s, "kafka.consumer.group.id", "g"),
                    "cannot be set: set kafka.group.id instead");
    assert_contains(set_fails(s, "kafka.consumer.bootstrap.servers", "h:1"),
                    "cannot be set: set kafka.bootstrap.servers instead");
    assert_contains(set_fails(s, "kafka.consumer.metadata.broker.list", "h:1"),
                    "set kafka.bootstrap.servers instead");
    assert_contains(set_fails(s, "kafka.producer.bootstrap.servers", "h:1"),
                    "kafka.producer.bootstrap.servers cannot be set: set "
                    "kafka.bootstrap.servers instead");
    assert_contains(set_fails(s, "kafka.producer.enable.idempotence", "true"),
                    "kafka.producer.enable.idempotence cannot be set: fixed to true");
    assert_contains(set_fails(s, "kafka.producer.client.id", "x"), "set instance.id instead");
    assert_contains(set_fails(s, "kafka.producer.transactional.id", "x"),
                    "does not use transactions");
    assert_contains(set_fails(s, "kafka.consumer.partition.assignment.strategy", "range"),
                    "must be cooperative-sticky (got \"range\")");
    assert_contains(set_fails(s, "kafka.producer.acks", "1"), "must be all|-1 (got \"1\")");
    assert_contains(set_fails(s, "kafka.producer.max.in.flight", "6"), "must be 1..5");
    assert_contains(set_fails(s, "kafka.producer.retries", "0"), "must be 1..");

    /* Nothing refused was kept. */
    assert_int_equal(s->nconsumer, 4);
    assert_int_equal(s->nproducer, 3);
    char err[1024];
    assert_int_equal(fw_config_validate(s, err, sizeof err), 0);

    /* A pass-through list edited by hand is re-checked. */
    free(s->consumer_values[0]);
    s->consumer_values[0] = strdup("sometime");
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_contains(err, "kafka.consumer.auto.offset.reset: librdkafka: Invalid value");
    fw_config_free(s);
}

static void test_print_masks_secrets(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    set_ok(s, "kafka.consumer.sasl.username", "fraudwatch");
    set_ok(s, "kafka.consumer.sasl.password", "hunter2");
    set_ok(s, "kafka.producer.sasl.password", "hunter3");
    set_ok(s, "kafka.producer.ssl.key.password", "keypw");
    set_ok(s, "kafka.producer.ssl.key.pem", "-----BEGIN PRIVATE KEY-----");
    set_ok(s, "kafka.consumer.ssl.keystore.password", "s3cr3t");
    set_ok(s, "input.topics", "a, b ,c");
    set_ok(s, "instance.id", "i-1");
    char *text = printed(s);
    assert_contains(text, "kafka.bootstrap.servers = 127.0.0.1:9092\n");
    assert_contains(text, "input.topics = a,b,c\n");
    assert_contains(text, "engine.threads = 2\n");
    assert_contains(text, "limits.max_event_bytes = 1048576\n");
    assert_contains(text, "log.level = info\n");
    assert_contains(text, "instance.id = i-1\n");
    assert_contains(text, "kafka.consumer.sasl.username = fraudwatch\n");
    assert_contains(text, "kafka.consumer.sasl.password = ********\n");
    assert_contains(text, "kafka.producer.sasl.password = ********\n");
    assert_contains(text, "kafka.producer.ssl.key.password = ********\n");
    assert_contains(text, "kafka.producer.ssl.key.pem = ********\n");
    assert_contains(text, "kafka.consumer.ssl.keystore.password = ********\n");
    assert_null(strstr(text, "hunter"));
    assert_null(strstr(text, "keypw"));
    assert_null(strstr(text, "PRIVATE"));
    assert_null(strstr(text, "s3cr3t"));
    /* One line per key: 38 keys (21; metrics.tls_*, metrics.auth_*; output.shadow_topic,
     * output.latency_stamps; state.*, ha.* and scale.*), 6 pass-through. */
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 38 + 6);

    /* What print writes reads back to the same settings (secrets aside). */
    fw_config_free(s);
    s = fw_config_new();
    set_ok(s, "engine.threads", "7");
    set_ok(s, "input.topics", "x,y");
    set_ok(s, "kafka.producer.linger.ms", "3");
    free(text);
    text = printed(s);
    fw_settings *back = fw_config_new();
    char err[1024];
    assert_int_equal(fw_config_load_file(back, write_conf(text), err, sizeof err), 0);
    char *again = printed(back);
    assert_string_equal(text, again);
    free(again);
    free(text);
    fw_config_free(back);
    fw_config_free(s);
}

static void test_errors_mask_secrets(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    /* A property librdkafka does not know may be a misspelt secret: hidden. */
    const char *e = set_fails(s, "kafka.consumer.sasl.pasword", "hunter2");
    assert_contains(e, "--set kafka.consumer.sasl.pasword=********: ");
    assert_contains(e, "did you mean \"kafka.consumer.sasl.password\"");
    e = set_fails(s, "kafka.consumer.auto.offset.reset", "hunter2");
    assert_contains(e, "=hunter2: ");
    e = set_fails(s, "kafka.consumer.ssl.key.passwordx", "hunter2");
    assert_null(strstr(e, "hunter2"));
    assert_contains(e, "--set kafka.consumer.ssl.key.passwordx=********: ");
    e = set_fails(s, "kafka.producer.my_token", "tok");     /* short values too */
    assert_contains(e, "--set kafka.producer.my_token=********: ");
    e = set_fails(s, "kafka.consumer.client_secret", "x");
    assert_contains(e, "--set kafka.consumer.client_secret=********: ");

    char err[1024];
    const char *path = write_conf("kafka.producer.sasl.jaas.config = hunter2-long\n");
    assert_int_equal(fw_config_load_file(s, path, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    assert_contains(err, "kafka.producer.sasl.jaas.config: librdkafka:");
    fw_config_free(s);
}

static void test_shipped_config(void **state)
{
    (void)state;
    fw_settings *s = fw_config_new();
    char err[1024] = "";
    if (fw_config_load_file(s, FW_SOURCE_DIR "/config/fraudwatch.conf", err, sizeof err) != 0 ||
        fw_config_validate(s, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(s->brokers, "127.0.0.1:9092");
    assert_int_equal(s->threads, 2);
    assert_string_equal(s->rules_source, "dir:rules");
    assert_string_equal(s->metrics_listen, "127.0.0.1:9464");
    assert_int_equal(s->nconsumer, 2);
    assert_string_equal(s->consumer_keys[0], "auto.offset.reset");
    assert_string_equal(s->consumer_values[0], "earliest");
    assert_string_equal(s->consumer_keys[1], "partition.assignment.strategy");
    assert_string_equal(s->consumer_values[1], "cooperative-sticky");
    fw_config_free(s);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = fread(buf + len, 1, 4096, f);
        len += got;
    } while (got);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void test_docs_match_table(void **state)
{
    (void)state;
    char *table = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&table, &len);
    assert_non_null(f);
    fw_config_write_docs(f);
    assert_int_equal(fclose(f), 0);
    char *doc = slurp(FW_SOURCE_DIR "/docs/configuration.md");
    assert_non_null(doc);
    if (!strstr(doc, table)) {
        /* Name the first row that differs; the whole table is
         * fw_config_write_docs()'s output. */
        for (char *line = table, *eol; (eol = strchr(line, '\n')); line = eol + 1) {
            *eol = '\0';
            if (!strstr(doc, line))
                fail_msg("docs/configuration.md: the key table differs from "
                         "fw_config_write_docs(), first at:\n%s", line);
        }
        fail_msg("docs/configuration.md: the key table rows are out of order");
    }
    free(doc);
    free(table);
}

/* librdkafka refusing a setting: the message names the key, and quotes
 * the value only when the key is not a secret's. */
static void test_kafka_set_masks_secrets(void **state)
{
    (void)state;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[512];
    assert_int_equal(fw_kafka_set(c, "consumer", "my.secret.token", "CANARY-7f3a", err,
                                  sizeof err), -1);
    assert_null(strstr(err, "CANARY"));
    assert_non_null(strstr(err, "my.secret.token"));
    assert_int_equal(fw_kafka_set(c, "consumer", "no.such.property", "visible", err,
                                  sizeof err), -1);
    assert_non_null(strstr(err, "no.such.property=visible"));
    rd_kafka_conf_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_format),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_cross_keys),
        cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_print_masks_secrets),
        cmocka_unit_test(test_errors_mask_secrets),
        cmocka_unit_test(test_shipped_config),
        cmocka_unit_test(test_docs_match_table),
        cmocka_unit_test(test_kafka_set_masks_secrets),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
