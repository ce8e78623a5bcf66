/* fraudwatch — the daemon's settings: a properties file, command-line
 * overrides, and librdkafka pass-through (see src/config.c and
 * docs/configuration.md).
 *
 * The order of use is fixed:
 *
 *     fw_settings *s = fw_config_new();                 defaults
 *     fw_config_load_file(s, path, err, sizeof err);    the file
 *     fw_config_set(s, key, value, origin, err, ...);   each --set, in order
 *     fw_config_validate(s, err, sizeof err);           cross-key checks,
 *                                                       instance.id filled in
 *     ... read the fields ...
 *     fw_config_free(s);
 *
 * Ownership: every string and array reachable from fw_settings belongs to
 * it and is freed by fw_config_free().  Treat the struct as read-only: the
 * setters keep private bookkeeping (where each key was set) next to it, so
 * only pointers returned by fw_config_new() may be passed back, and a field
 * written by hand is not re-checked until fw_config_validate().
 *
 * Errors: every function that can fail returns 0, or -1 with a message in
 * err (always NUL-terminated when errlen > 0) that starts with where the
 * value came from — "config/fraudwatch.conf:12: ..." or "--set k=v: ..." —
 * and names the key.  No message shows a secret: see fw_config_set().
 * A failed call may leave some keys of s updated;
 * callers give up on s (the daemon exits), they do not retry on it.
 *
 * Not thread-safe for writing; a validated fw_settings may be read from any
 * number of threads. */
#ifndef FRAUDWATCH_CONFIG_H
#define FRAUDWATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fw_settings {
    char *brokers;            /* kafka.bootstrap.servers, default "127.0.0.1:9092" */
    char **input_topics;      /* input.topics, comma-separated, required, default "fraudwatch.events" */
    size_t ninput_topics;
    int order_wait_ms;        /* input.order_wait_ms 0..60000, default 1000; 0: arrival order */
    char *group_id;           /* kafka.group.id, default "fraudwatch" */
    char *alert_topic;        /* output.topic, default "fraudwatch.alerts" */
    char *shadow_topic;       /* output.shadow_topic, default "" (= output.topic + ".shadow";
                               * use fw_config_shadow_topic) */
    char *dlq_topic;          /* deadletter.topic, default "fraudwatch.deadletter" */
    uint32_t threads;         /* engine.threads 1..64, default 2 */
    char *rules_source;       /* rules.source: "dir:PATH" or a redis:// URL, default "dir:rules" */
    char *redis_password_file; /* rules.redis_password_file: the Redis password's file
                               * (its first line), default "" (none: the URL's) */
    size_t max_event_bytes;   /* limits.max_event_bytes 64..16777216, default 1048576 */
    int64_t lateness_s;       /* engine.lateness_s 1..31536000, default 86400 */
    int64_t max_future_s;     /* limits.max_future_s 0..31536000, default 3600 */
    uint32_t max_regex_per_event; /* rules.max_regex_per_event 1..1000000, default 1000 */
    int64_t max_keys;         /* engine.max_keys 1000..4000000000, default 10000000 */
    char *state_dir;          /* state.dir: where checkpoints go, default "state" */
    int checkpoint_interval_ms; /* state.checkpoint_interval_ms 100..3600000, default 5000 */
    char *metrics_listen;     /* metrics.listen, default "127.0.0.1:9464", or "off";
                               * a loopback address (127.0.0.0/8, [::1], localhost)
                               * unless TLS and authentication are both set */
    char *log_level;          /* log.level debug|info|warn|error, default "info" */
    int shutdown_timeout_s;   /* shutdown.timeout_s 1..3600, default 30 */
    int64_t healthz_unsaved_s; /* metrics.healthz_unsaved_s 0..86400, default 0 (auto) */
    char *instance_id;        /* instance.id; "" until fw_config_validate() fills in
                               * "<hostname>-<pid>" */
    bool instance_id_given;   /* set by the operator: static group membership */
    /* /metrics exposure: HTTPS when both files are set, basic authentication
     * when both auth settings are; with both, metrics.listen may leave the
     * loopback.  "" when not set. */
    char *metrics_tls_cert_file;      /* metrics.tls_cert_file: PEM certificate (chain) */
    char *metrics_tls_key_file;       /* metrics.tls_key_file: PEM private key, mode o-rwx */
    char *metrics_auth_user;          /* metrics.auth_user */
    char *metrics_auth_password_file; /* metrics.auth_password_file: its first line */

    char *state_store;        /* state.store local|kafka, default "local" */
    char *latency_stamps;     /* output.latency_stamps off|on, default "off" */
    char *state_topic;        /* state.topic, default "" (= "<kafka.group.id>.state") */
    size_t state_chunk_bytes; /* state.chunk_bytes 1024..8388608, default 524288 */
    char *state_on_lost;      /* state.on_lost refuse|empty, default "refuse" */
    char *ha_mode;            /* ha.mode off|standby|scaleout, default "off" */
    char *ha_control_topic;   /* ha.control_topic, default "" (= "<kafka.group.id>.control") */
    int ha_session_timeout_ms; /* ha.session_timeout_ms 1000..300000, default 6000 */
    /* ha.mode = scaleout (src/scale.c, docs/scaling.md "Scale-out by key") */
    int scale_partitions;     /* scale.partitions 1..1024, default 8 */
    char *scale_topic;        /* scale.topic, default "" (= "<kafka.group.id>.repartition") */
    int scale_mark_interval_ms; /* scale.mark_interval_ms 10..10000, default 100 */
    int scale_takeover_wait_ms; /* scale.takeover_wait_ms 0..600000, default 30000 */
    /* Pass-through to librdkafka, in the order first set; the keys without
     * their "kafka.consumer." / "kafka.producer." prefix, ready for
     * rd_kafka_conf_set().  Each was accepted by librdkafka on a scratch
     * conf; none is one the daemon fixes (see fw_config_set). */
    char **consumer_keys, **consumer_values;
    size_t nconsumer;         /* kafka.consumer.* */
    char **producer_keys, **producer_values;
    size_t nproducer;         /* kafka.producer.* */
    /* `fraudwatch console` only (fw_console_config_new(); NULL / 0 in the
     * daemon's settings).  The console's table also sets brokers, group_id
     * (default "fraudwatch-console"), log_level, instance_id and the
     * kafka.consumer.* pass-through. */
    char *console_alerts_topic;   /* console.alerts_topic, default "fraudwatch.alerts" */
    char *console_redis;          /* console.redis, a redis:// URL */
    char *console_listen;         /* console.listen, default "127.0.0.1:8080"; off the
                                   * loopback only with TLS */
    char *console_tls_cert_file;  /* console.tls_cert_file, "" = plain HTTP */
    char *console_tls_key_file;   /* console.tls_key_file, "" = plain HTTP */
    int console_retention_days;   /* console.retention_days 1..3650, default 180 */
    char *console_web_dir;        /* console.web_dir, default "web" */
    int console_session_ttl_s;    /* console.session_ttl_s 60..604800, default 28800 */
    int console_webhook_attempts; /* console.webhook_attempts 1..50, default 5 */
    int console_webhook_backoff_ms; /* console.webhook_backoff_ms 10..600000, default 2000 */
    int console_webhook_timeout_ms; /* console.webhook_timeout_ms 100..60000, default 5000 */
} fw_settings;

/* All defaults (instance.id empty).  NULL on out-of-memory. */
fw_settings *fw_config_new(void);

/* The console's settings (`fraudwatch console`): the same functions work
 * on it (load_file, set, validate, print, free) with the console's own
 * table of keys; the daemon's cross-key rules do not apply.  NULL on
 * out-of-memory. */
fw_settings *fw_console_config_new(void);
/* The console's table for docs/console.md. */
void fw_console_config_write_docs(FILE *out);

/* NULL is fine. */
void fw_config_free(fw_settings *s);
/* The topic of shadow and snoozed alerts: output.shadow_topic, or when it
 * is empty output.topic + ".shadow" (written into buf, n bytes). */
const char *fw_config_shadow_topic(const fw_settings *s, char *buf, size_t n);

/* Reads a properties file: "key = value" (or "key=value") per line; lines
 * whose first non-blank character is '#' or ';' and blank lines are
 * skipped; the key and the value are trimmed; the value may be empty.  No
 * quoting, no inline comments, no continuation lines.  A key given twice:
 * the later line wins.  Each line goes through fw_config_set() with the
 * origin "PATH:LINE". */
int fw_config_load_file(fw_settings *s, const char *path, char *err, size_t errlen);

/* Sets one key from its text.  `origin` says where the value came from and
 * starts the error message ("--set engine.threads=0"); NULL means the key
 * itself.  The value is parsed and checked now (type, range, format), so
 * the error can name the place; an unknown key is an error, with the
 * closest known key suggested.  Keys "kafka.consumer.P" / "kafka.producer.P"
 * pass P to librdkafka: P must be a librdkafka property of that client
 * type, its value must be accepted by rd_kafka_conf_set(), and P must not
 * be one the daemon fixes (bootstrap.servers, group.id, client.id, commits
 * and offset stores, idempotence, ...; the message says what to set
 * instead).  The value of a secret property may be "@file:PATH": PATH's
 * first line is read now (fw_secret_read_file(): refused when other users
 * may read PATH) and stored, and fw_config_print() prints "@file:PATH".
 * When the key is a secret (fw_secret_name()) or unknown, the value is
 * replaced by "********" wherever it appears in `origin` before the
 * message is written; a URL in it is shown without its userinfo. */
int fw_config_set(fw_settings *s, const char *key, const char *value,
                  const char *origin, char *err, size_t errlen);

/* Re-checks every key (fields may have been written by hand), then the
 * rules between keys: input topics distinct, and neither the alert topic
 * nor the dead-letter topic among them nor equal to each other.  Fills in
 * instance.id when empty.  Also: rules.redis_password_file only with a
 * redis:// rules.source, and a URL with a user but no password only with
 * rules.redis_password_file. */
int fw_config_validate(fw_settings *s, char *err, size_t errlen);

/* The effective settings, one "key = value" per line: every key in the
 * order of docs/configuration.md, then the pass-through keys in order.
 * Values of secret keys (fw_secret_name()) are printed as "********", or
 * as the "@file:PATH" they were read from; a URL's password as "****".
 * The output reads back with fw_config_load_file() (secrets aside). */
void fw_config_print(const fw_settings *s, FILE *out);

/* The Markdown table of every key (key, default, range, meaning) that
 * docs/configuration.md embeds; tests/test_config.c checks they agree. */
void fw_config_write_docs(FILE *out);

#endif
