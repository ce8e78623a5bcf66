/* config.c — the daemon's settings: defaults, a properties file, --set
 * overrides, and keys passed through to librdkafka.
 *
 * Owns two tables, `daemon_keys[]` and `console_keys[]` (the console's
 * settings, `fraudwatch console`; a struct cfg knows which it was made
 * with): for every setting its name, type, place in
 * fw_settings (offsetof), default text, range and meaning.  Everything
 * walks that table — fw_config_new() parses each default, fw_config_set()
 * finds the key and parses and checks the value, fw_config_validate()
 * re-checks every field, fw_config_print() prints them, and
 * fw_config_write_docs() prints the Markdown table that
 * docs/configuration.md embeds (a test keeps the two equal).  Adding a
 * setting is one row plus the field; there is no per-key code path, only
 * per-type ones (string, topic list, integer of some width, enumeration)
 * and a few value checkers (topic name, rules source, loopback listen
 * address) that rows point at.
 *
 * How a value flows: text → parse() into a `struct val` (a string, a topic
 * list or an int64) → check() against the row → store() into the field,
 * freeing what was there.  A value that fails leaves the field alone.
 * fw_config_validate() runs the same check() on load()ed fields, so a
 * field written by hand is held to the same rules, and then the rules
 * between keys (topics that would loop back into the input).
 *
 * Values are checked when set, not at the end, because that is when we
 * know where they came from: each row remembers the origin of its last
 * value ("conf:12", "--set k=v") in the private `struct cfg` that wraps
 * fw_settings, so even a cross-key error in fw_config_validate() points at
 * a line.
 *
 * Pass-through: "kafka.consumer.P" / "kafka.producer.P" hand P to
 * librdkafka untouched, the way Fluent Bit's rdkafka.* and kcat -X do.  We
 * check them now rather than at rd_kafka_new(): P must not be one the
 * daemon fixes (`fixed[]`: the group, the commit discipline, idempotence —
 * what the at-least-once checkpoint depends on), P must belong to that
 * client type (librdkafka's own property table, read from
 * rd_kafka_conf_properties_show(), says C, P or both), and
 * rd_kafka_conf_set() on a scratch conf must accept it — so an unknown
 * property or a bad value fails `--check-config` with librdkafka's own
 * words, not the daemon's start.  Conflicts that librdkafka only detects
 * when a client is created (max.in.flight > 5 with idempotence, say) still
 * surface at rd_kafka_new(); creating clients here would run kinit and
 * load certificates during a config check.
 *
 * Secrets never leave this file in clear (include/fraudwatch/secret.h
 * decides what is one): print shows a secret setting as ********, a URL
 * with its password as ****, and a value read from a file as the
 * "@file:PATH" it was written as.  Error messages echo the caller's origin
 * ("--set KEY=VALUE") with the value hidden when the key is a secret or is
 * not known at all (a misspelt secret key is still a secret), and URLs
 * with their whole userinfo hidden; librdkafka's message is masked too.
 * rules.source is parsed by the connection's own URL parser
 * (redis_url.c), whose messages quote no part of the URL.  A line of the
 * file that is not "key = value" is not quoted: it may be a stray secret.
 *
 * Secrets out of the file: rules.redis_password_file names a file with
 * the Redis password (main.c hands it to the store; the file is read at
 * every connect), and a secret pass-through property may be written
 * "@file:PATH" — its value is PATH's first line, read when the key is set.
 * Both files are read by fw_secret_read_file(), which refuses files other
 * users may read. */
#include "fraudwatch/config.h"
#include "fraudwatch/pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "fraudwatch/secret.h"
#include "listen_addr.h"
#include "redis_url.h"

#define MASK FW_SECRET_MASK
#define CONSUMER_PREFIX "kafka.consumer."
#define PRODUCER_PREFIX "kafka.producer."
#define MAX_TOPIC 249           /* Kafka's limit on a topic name */

/* ---- the table -------------------------------------------------------------- */

enum ktype {
    K_STR,      /* char *; min..max is the length in bytes */
    K_TOPICS,   /* char ** + size_t count right after it; comma-separated */
    K_ENUM,     /* char *, one of `choices` (case-insensitive, stored as listed) */
    K_U32,      /* uint32_t */
    K_INT,      /* int */
    K_I64,      /* int64_t */
    K_SIZE,     /* size_t */
};

/* A value checker for strings: 0, or -1 with the reason (after "KEY: ") in why. */
typedef int (*check_fn)(const char *v, char *why, size_t whylen);

struct key {
    const char *name;
    enum ktype type;
    size_t off;
    const char *def;
    int64_t min, max;       /* numbers: the range; strings: length; topics: per name */
    const char *choices;    /* K_ENUM: "debug|info|warn|error"; may add "|warning=warn"
                             * aliases, accepted and stored as the value after '=' */
    check_fn check;         /* strings: extra format check, or NULL */
    const char *syntax;     /* strings: what the docs list as the range */
    const char *desc;
};

static int check_topic(const char *v, char *why, size_t whylen);
static int check_brokers(const char *v, char *why, size_t whylen);
static int check_rules_source(const char *v, char *why, size_t whylen);
static int check_password_file(const char *v, char *why, size_t whylen);
static int check_listen(const char *v, char *why, size_t whylen);
static int check_console_listen(const char *v, char *why, size_t whylen);
static int check_readable_file(const char *v, char *why, size_t whylen);
static int check_private_file(const char *v, char *why, size_t whylen);
static int check_auth_user(const char *v, char *why, size_t whylen);
static int check_printable(const char *v, char *why, size_t whylen);
static int check_redis_url(const char *v, char *why, size_t whylen);
static int check_topic_or_empty(const char *v, char *why, size_t whylen);

#define F(field) offsetof(fw_settings, field)

static const struct key daemon_keys[] = {
    { "kafka.bootstrap.servers", K_STR, F(brokers), "127.0.0.1:9092", 1, 4096, NULL,
      check_brokers, "HOST:PORT[,HOST:PORT...]",
      "Kafka brokers to bootstrap from, comma-separated." },
    { "kafka.group.id", K_STR, F(group_id), "fraudwatch", 1, 1024, NULL,
      check_printable, "non-empty",
      "Consumer group.  Instances with the same group share the input partitions; "
      "the checkpoint records it and is refused under another group." },
    { "input.topics", K_TOPICS, F(input_topics), "fraudwatch.events", 1, MAX_TOPIC, NULL,
      check_topic, "topic[,topic...]",
      "Topics to consume events from, comma-separated (required)." },
    { "input.order_wait_ms", K_INT, F(order_wait_ms), "1000", 0, 60000, NULL, NULL, NULL,
      "With several input partitions, events are taken oldest message timestamp "
      "first across them, so keys that span partitions see the stream in the order "
      "it was produced.  A partition the broker holds unread messages of, with none "
      "fetched yet, holds the others back for at most this long.  0: partitions are "
      "taken in the order their messages arrive." },
    { "output.topic", K_STR, F(alert_topic), "fraudwatch.alerts", 1, MAX_TOPIC, NULL,
      check_topic, "topic name",
      "Topic the alerts are produced to." },
    { "output.shadow_topic", K_STR, F(shadow_topic), "", 0, MAX_TOPIC, NULL,
      check_topic, "topic name, or empty",
      "Topic the alerts that are not live warnings are produced to: those of rules "
      "with \"mode\": \"shadow\" (flagged \"shadow\": true) and those muted by a "
      "snooze (flagged \"snoozed\": true).  They never go to output.topic.  Empty: "
      "output.topic followed by \".shadow\"." },
    { "output.latency_stamps", K_ENUM, F(latency_stamps), "off", 0, 0, "off|on", NULL, NULL,
      "Diagnostics: on adds to every alert message the headers fw.t.input_append "
      "(the input message's Kafka timestamp), fw.t.polled (when the daemon took the "
      "event from the consumer), fw.t.batched (when its batch went to the workers) "
      "and fw.t.retired (when the alert went to the producer), wall-clock epoch "
      "milliseconds; with the alert's detected_ts and its broker append time they "
      "split an alert's latency into stages (bench/run does).  The alert's JSON is "
      "unchanged." },
    { "deadletter.topic", K_STR, F(dlq_topic), "fraudwatch.deadletter", 1, MAX_TOPIC, NULL,
      check_topic, "topic name",
      "Topic malformed events are copied to, with the reason in a header." },
    { "rules.source", K_STR, F(rules_source), "dir:rules", 1, 4000, NULL,
      check_rules_source, "dir:PATH or " FW_REDIS_URL_FORM,
      "Where the rule set comes from.  dir:PATH reads the `*.json` rules and `*.list` "
      "watchlists in PATH (relative to the working directory) and reloads on SIGHUP "
      "and when the files change.  redis://... reads the set published with "
      "`fraudwatch rules push` and reloads when a new version or a watchlist "
      "change is published; its password is better given with "
      "rules.redis_password_file than in the URL." },
    { "rules.redis_password_file", K_STR, F(redis_password_file), "", 0, 4000, NULL,
      check_password_file, "path; empty: none",
      "With a redis:// rules.source: the file whose first line is the Redis password "
      "(it wins over a password in the URL; the URL's user, if any, is kept).  It must "
      "be a regular file that other users cannot read (e.g. mode 0640, owner root, "
      "the daemon's group); it is read again whenever the daemon reconnects." },
    { "rules.max_regex_per_event", K_U32, F(max_regex_per_event), "1000", 1, 1000000, NULL,
      NULL, NULL,
      "A rule set whose events of some type would run more regex searches than this "
      "is refused as too costly (at start and on every reload, which keeps the last "
      "good set); `fraudwatch rules check` prints each type's cost." },
    { "engine.threads", K_U32, F(threads), "2", 1, 64, NULL, NULL, NULL,
      "Worker threads.  Each owns the state of its share of the keys." },
    { "engine.lateness_s", K_I64, F(lateness_s), "86400", FW_MIN_LATENESS_S,
      FW_MAX_LATENESS_S, NULL, NULL, NULL,
      "How long, in event time, a key's idle state is kept past its window (or "
      "suppression), so late events still find it.  The clock that expires state "
      "is the median of the last 1024 event times, so a few absurd timestamps do "
      "not move it (docs/rules.md, \"Event time\")." },
    { "engine.max_keys", K_I64, F(max_keys), "10000000", FW_MIN_MAX_KEYS, FW_MAX_MAX_KEYS,
      NULL, NULL, NULL,
      "Key state budget: how many (rule, key) states the engine keeps.  A new key "
      "beyond it evicts the key whose state ends first among a few sampled "
      "(fraudwatch_state_evictions_total, a warning in the log); about 450 bytes a "
      "key with the shipped rules." },
    { "limits.max_future_s", K_I64, F(max_future_s), "3600", 0, 31536000, NULL, NULL, NULL,
      "Events whose ts is further ahead of this machine's clock than this are "
      "malformed (dead-lettered with the reason), so a bad clock upstream cannot "
      "blind a key's windows for longer.  0: no limit." },
    { "limits.max_event_bytes", K_SIZE, F(max_event_bytes), "1048576",
      FW_MIN_MAX_EVENT_BYTES, FW_MAX_MAX_EVENT_BYTES, NULL,
      NULL, NULL,
      "Events larger than this are malformed (dead-lettered), not parsed." },
    { "state.dir", K_STR, F(state_dir), "state", 1, 4000, NULL, NULL, "path",
      "Directory for checkpoints (window state and the partition positions it "
      "matches), created if missing." },
    { "state.checkpoint_interval_ms", K_INT, F(checkpoint_interval_ms), "5000", 100, 3600000,
      NULL, NULL, NULL,
      "How often state is checkpointed and offsets committed.  Bounds the "
      "alerts produced twice after a crash." },
    { "metrics.listen", K_STR, F(metrics_listen), "127.0.0.1:9464", 1, 128, NULL,
      check_listen, "loopback HOST:PORT, or off",
      "Prometheus /metrics and /healthz.  Loopback only (127.0.0.0/8, [::1], "
      "localhost): the endpoint has no authentication, unless metrics.tls_* and "
      "metrics.auth_* are both set (then any address).  off disables it." },
    { "log.level", K_ENUM, F(log_level), "info", 0, 0, "debug|info|warn|error|warning=warn", NULL,
      NULL,
      "Lowest level logged (logfmt on stderr); any case." },
    { "shutdown.timeout_s", K_INT, F(shutdown_timeout_s), "30", 1, 3600, NULL, NULL, NULL,
      "On SIGTERM, how long the final checkpoint may take (acknowledgements, the file, the "
      "offset commit); the stop ends within this + 10 s, exit 1 if the checkpoint failed "
      "(docs/faults.md)." },
    { "metrics.healthz_unsaved_s", K_I64, F(healthz_unsaved_s), "0", 0, 86400, NULL, NULL, NULL,
      "/healthz answers 503 once consumed events have waited this long for a checkpoint "
      "to cover them (every checkpoint failing).  0: ten checkpoint intervals, and at "
      "least 60 s." },
    { "instance.id", K_STR, F(instance_id), "", 0, 255, NULL, check_printable,
      "text; empty: HOSTNAME-PID",
      "Names this process in logs and as the Kafka client.id.  When set (not "
      "empty), it is also the daemon's static member id in its consumer group "
      "(group.instance.id): a restart within the session timeout takes its "
      "partitions back at once, without a rebalance.  Two running daemons of one "
      "group must not share it." },
    /* /metrics exposure (issue 13): TLS and basic authentication, which
     * together let metrics.listen leave the loopback. */
    { "metrics.tls_cert_file", K_STR, F(metrics_tls_cert_file), "", 0, 4000, NULL,
      check_readable_file, "path; empty: plain HTTP",
      "With metrics.tls_key_file: /metrics and /healthz are served over HTTPS with this "
      "PEM certificate (chain).  Read at start; restart to change it." },
    { "metrics.tls_key_file", K_STR, F(metrics_tls_key_file), "", 0, 4000, NULL,
      check_private_file, "path; empty: plain HTTP",
      "The PEM private key of metrics.tls_cert_file.  A regular file that other users cannot "
      "read (e.g. mode 0640, owner root, the daemon's group)." },
    { "metrics.auth_user", K_STR, F(metrics_auth_user), "", 0, 255, NULL, check_auth_user,
      "text without ':'; empty: no authentication",
      "With metrics.auth_password_file: /metrics and /healthz ask for HTTP basic "
      "authentication as this user (401 otherwise)." },
    { "metrics.auth_password_file", K_STR, F(metrics_auth_password_file), "", 0, 4000, NULL,
      check_password_file, "path; empty: no authentication",
      "The file whose first line is metrics.auth_user's password; a regular file that "
      "other users cannot read.  Read at start.  With TLS and authentication both set, "
      "metrics.listen may be any address (0.0.0.0:9464); without them, loopback only." },
    { "state.store", K_ENUM, F(state_store), "local", 0, 0, "local|kafka", NULL, NULL,
      "Where checkpoints go: local, a file in state.dir; kafka, the compacted state "
      "topic of the group, so that any daemon of the group can restore them "
      "(docs/scaling.md)." },
    { "state.topic", K_STR, F(state_topic), "", 0, MAX_TOPIC, NULL, check_topic_or_empty,
      "topic; empty: GROUP.state",
      "With state.store = kafka: the state topic (one partition, compacted; created "
      "by the daemon on a first start or by `fraudwatch state init`)." },
    { "state.chunk_bytes", K_SIZE, F(state_chunk_bytes), "524288", 1024, 8388608, NULL, NULL,
      NULL,
      "With state.store = kafka: largest record a checkpoint is cut into; keep it "
      "under the brokers' message.max.bytes (1 MiB by default) less 64 KiB." },
    { "state.on_lost", K_ENUM, F(state_on_lost), "refuse", 0, 0, "refuse|empty", NULL, NULL,
      "With state.store = kafka, when the state topic is missing or holds no complete "
      "checkpoint but the group has committed positions: refuse to start (saying so), "
      "or empty: start from the committed positions with empty windows, logged as an "
      "error.  Set empty for one start only (docs/scaling.md, \"Lost state\")." },
    { "ha.mode", K_ENUM, F(ha_mode), "off", 0, 0, "off|standby|scaleout", NULL, NULL,
      "standby: daemons of the group elect one active daemon through the control "
      "topic; the others wait and take over, restoring the last checkpoint, when it "
      "dies.  scaleout: every daemon of the group is active; matched events are "
      "re-keyed through the repartition topic and each of its partitions' state is "
      "owned by one daemon, moving with its checkpoint when daemons join or leave.  "
      "Both need state.store = kafka (docs/scaling.md)." },
    { "ha.control_topic", K_STR, F(ha_control_topic), "", 0, MAX_TOPIC, NULL,
      check_topic_or_empty, "topic; empty: GROUP.control",
      "With ha.mode = standby: the one-partition topic whose owner in the group "
      "GROUP.control is the active daemon (created if missing)." },
    { "ha.session_timeout_ms", K_INT, F(ha_session_timeout_ms), "6000", 1000, 300000, NULL,
      NULL, NULL,
      "With ha.mode = standby: how long a silent active daemon keeps its role (and "
      "its input partitions) before a standby takes over; also the input consumer's "
      "session.timeout.ms unless kafka.consumer.session.timeout.ms is set.  Within the "
      "brokers' group.min/max.session.timeout.ms." },
    { "scale.partitions", K_INT, F(scale_partitions), "8", 1, 1024, NULL, NULL, NULL,
      "With ha.mode = scaleout: partitions of the repartition topic, the unit of state "
      "ownership (each is owned by one daemon at a time); fixed when the topics are "
      "created.  More partitions than daemons lets work move in small steps." },
    { "scale.topic", K_STR, F(scale_topic), "", 0, MAX_TOPIC, NULL, check_topic_or_empty,
      "topic; empty: GROUP.repartition",
      "With ha.mode = scaleout: the repartition topic (created if missing, with "
      "scale.partitions partitions).  The state topic is then GROUP.scale-state (or "
      "state.topic) and the control topic GROUP.scale-control, one partition per "
      "repartition partition." },
    { "scale.mark_interval_ms", K_INT, F(scale_mark_interval_ms), "100", 10, 10000, NULL,
      NULL, NULL,
      "With ha.mode = scaleout: how often a daemon tells every repartition partition how "
      "far it has read each input partition it owns (a progress mark).  Lower: less "
      "waiting for idle inputs; higher: fewer records." },
    { "scale.takeover_wait_ms", K_INT, F(scale_takeover_wait_ms), "30000", 0, 600000, NULL,
      NULL, NULL,
      "With ha.mode = scaleout: how long a partition's owner holds events back for an "
      "input partition whose reader went silent (a daemon died, its inputs not yet "
      "taken over), so that its events are applied in time order when they come.  Past "
      "it the owner goes on and what comes later is applied late (logged)." },
};

#undef F
#define NDAEMON_KEYS (sizeof daemon_keys / sizeof daemon_keys[0])

/* The console's table (`fraudwatch console`, src/console_*.c): the same
 * machinery, its own keys, the fields at the end of fw_settings. */
#define F(field) offsetof(fw_settings, field)
static const struct key console_keys[] = {
    { "kafka.bootstrap.servers", K_STR, F(brokers), "127.0.0.1:9092", 1, 4096, NULL,
      check_brokers, "HOST:PORT[,HOST:PORT...]",
      "Kafka brokers to bootstrap from, comma-separated." },
    { "kafka.group.id", K_STR, F(group_id), "fraudwatch-console", 1, 1024, NULL,
      check_printable, "non-empty",
      "The console's own consumer group on the alert topic.  Consoles sharing one "
      "Redis may share the group (they split the partitions) or not (each stores "
      "every alert; storing is idempotent on alert_id)." },
    { "console.alerts_topic", K_STR, F(console_alerts_topic), "fraudwatch.alerts", 1,
      MAX_TOPIC, NULL, check_topic, "topic name",
      "The topic the daemon produces live alerts to (its output.topic)." },
    { "console.redis", K_STR, F(console_redis), "redis://127.0.0.1:6379", 1, 4000, NULL,
      check_redis_url, FW_REDIS_URL_FORM,
      "The Redis that is the console's store of record: alerts, their state and "
      "history, users, sessions, routes, snoozes.  Run it with appendonly yes "
      "(docs/console.md)." },
    { "console.listen", K_STR, F(console_listen), "127.0.0.1:8080", 1, 128, NULL,
      check_console_listen, "HOST:PORT (off the loopback: with TLS)",
      "Where the page and the API are served.  An address off the loopback "
      "(0.0.0.0:8443) needs console.tls_cert_file and console.tls_key_file: logins "
      "and session cookies never cross a network in clear.  Or keep it on the "
      "loopback behind a TLS reverse proxy (docs/console.md)." },
    { "console.tls_cert_file", K_STR, F(console_tls_cert_file), "", 0, 4000, NULL,
      check_readable_file, "path; empty: plain HTTP",
      "With console.tls_key_file: the page and the API are served over HTTPS with "
      "this PEM certificate (chain), and the session cookie is marked Secure.  Read "
      "at start; restart to change it." },
    { "console.tls_key_file", K_STR, F(console_tls_key_file), "", 0, 4000, NULL,
      check_private_file, "path; empty: plain HTTP",
      "The PEM private key of console.tls_cert_file; a regular file that other users "
      "cannot read." },
    { "console.retention_days", K_INT, F(console_retention_days), "180", 1, 3650, NULL,
      NULL, NULL,
      "Closed alerts older than this (by detection time) are deleted from Redis "
      "with their history; open alerts are kept." },
    { "console.web_dir", K_STR, F(console_web_dir), "web", 1, 4000, NULL, NULL, "path",
      "Directory of the page's static files (index.html, app.js, app.css)." },
    { "console.session_ttl_s", K_INT, F(console_session_ttl_s), "28800", 60, 604800, NULL,
      NULL, NULL,
      "How long a login lasts (the session cookie's Max-Age and the Redis key's TTL)." },
    { "console.webhook_attempts", K_INT, F(console_webhook_attempts), "5", 1, 50, NULL,
      NULL, NULL,
      "Deliveries of a unit's webhook tried per alert before it is recorded as failed "
      "on the alert's history." },
    { "console.webhook_backoff_ms", K_INT, F(console_webhook_backoff_ms), "2000", 10,
      600000, NULL, NULL, NULL,
      "Wait before the second delivery attempt; doubled for each further one (at "
      "most 10 minutes)." },
    { "console.webhook_timeout_ms", K_INT, F(console_webhook_timeout_ms), "5000", 100,
      60000, NULL, NULL, NULL,
      "How long one webhook delivery may take (connect and answer)." },
    { "log.level", K_ENUM, F(log_level), "info", 0, 0, "debug|info|warn|error|warning=warn",
      NULL, NULL, "Lowest level logged (logfmt on stderr); any case." },
    { "instance.id", K_STR, F(instance_id), "", 0, 255, NULL, check_printable,
      "text; empty: HOSTNAME-PID",
      "Names this console in logs and as the Kafka client.id." },
};
#undef F
#define NCONSOLE_KEYS (sizeof console_keys / sizeof console_keys[0])
#define MAX_TABLE_KEYS 64
_Static_assert(NDAEMON_KEYS <= MAX_TABLE_KEYS && NCONSOLE_KEYS <= MAX_TABLE_KEYS,
               "raise MAX_TABLE_KEYS");

/* K_TOPICS: the count is the field right after the array. */
_Static_assert(offsetof(fw_settings, ninput_topics) ==
               offsetof(fw_settings, input_topics) + sizeof(char **),
               "input_topics must be followed by ninput_topics");

/* Pass-through properties the daemon sets itself or depends on.  Each is
 * refused outright, or limited to the values in `allowed` ("a|b", compared
 * case-insensitively), or to integers in lo..hi. */
enum side { CONSUMER = 1, PRODUCER = 2, BOTH = 3 };

static const struct fixed {
    unsigned sides;
    const char *prop;
    const char *allowed;
    int64_t lo, hi;         /* hi > 0: an integer in lo..hi is accepted */
    const char *why;
} fixed[] = {
    { BOTH, "bootstrap.servers", NULL, 0, 0, "set kafka.bootstrap.servers instead" },
    { BOTH, "metadata.broker.list", NULL, 0, 0, "set kafka.bootstrap.servers instead" },
    { BOTH, "client.id", NULL, 0, 0, "the daemon sets it to instance.id; set instance.id instead" },
    { CONSUMER, "group.id", NULL, 0, 0,
      "set kafka.group.id instead (the checkpoint records the group)" },
    { CONSUMER, "group.instance.id", NULL, 0, 0,
      "the daemon sets it to instance.id when that is set; set instance.id instead" },
    { CONSUMER, "enable.auto.commit", NULL, 0, 0,
      "fixed to false: offsets are committed with each checkpoint, only after every "
      "alert before them is acknowledged" },
    { CONSUMER, "auto.commit.enable", NULL, 0, 0,
      "fixed to false: offsets are committed with each checkpoint, only after every "
      "alert before them is acknowledged" },
    { CONSUMER, "enable.auto.offset.store", NULL, 0, 0,
      "fixed to false: the daemon stores the offsets of checkpointed positions itself" },
    { CONSUMER, "enable.partition.eof", NULL, 0, 0,
      "fixed to false: the daemon does not handle end-of-partition events" },
    { CONSUMER, "partition.assignment.strategy", "cooperative-sticky", 0, 0,
      "the rebalance handling assigns incrementally, which only the cooperative-sticky "
      "assignor does" },
    { PRODUCER, "enable.idempotence", NULL, 0, 0,
      "fixed to true: a retried send must not duplicate or reorder alerts" },
    { PRODUCER, "acks", "all|-1", 0, 0,
      "the idempotent producer needs acknowledgement by all in-sync replicas" },
    { PRODUCER, "request.required.acks", "all|-1", 0, 0,
      "the idempotent producer needs acknowledgement by all in-sync replicas" },
    { PRODUCER, "max.in.flight", NULL, 1, 5,
      "the idempotent producer keeps order with at most 5 requests in flight" },
    { PRODUCER, "max.in.flight.requests.per.connection", NULL, 1, 5,
      "the idempotent producer keeps order with at most 5 requests in flight" },
    { PRODUCER, "retries", NULL, 1, INT32_MAX,
      "the idempotent producer must be allowed to retry" },
    { PRODUCER, "message.send.max.retries", NULL, 1, INT32_MAX,
      "the idempotent producer must be allowed to retry" },
    { PRODUCER, "transactional.id", NULL, 0, 0,
      "fraudwatch does not use transactions: delivery is made safe by idempotence and checkpoints" },
};

/* fw_settings plus what only this file sees.  `s` comes first, so the
 * caller's pointer is the struct's. */
struct cfg {
    fw_settings s;
    const struct key *keys; /* daemon_keys or console_keys */
    size_t nkeys;
    char *origin[MAX_TABLE_KEYS]; /* where each key got its value; NULL: the default */
    size_t consumer_cap, producer_cap;
    /* Next to consumer_values / producer_values: the PATH of a value given
     * as "@file:PATH" (printed as such), or NULL. */
    char **consumer_files, **producer_files;
};

/* ---- small things ------------------------------------------------------------ */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, const char *origin, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    size_t n = 0;
    if (origin && *origin) {
        int k = snprintf(err, errlen, "%s: ", origin);
        n = k < 0 ? 0 : (size_t)k < errlen ? (size_t)k : errlen - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_secret(const char *key)
{
    return fw_secret_name(key);
}

/* A value of the form "@file:PATH" (read from PATH; see secret.h). */
static bool is_file_ref(const char *value)
{
    return strncmp(value, FW_SECRET_FILE_PREFIX, strlen(FW_SECRET_FILE_PREFIX)) == 0;
}

/* Could be a key or property name: letters, digits, '.', '_', '-'.  Text
 * that is not one (a line with its "=" in the wrong place, a URL) is never
 * quoted as a key: it may hold a secret. */
static bool key_like(const char *k)
{
    size_t n = strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    return n > 0 && !k[n] && n <= 200;
}

/* Replaces every occurrence of `what` in `s` (capacity cap) by MASK. */
static void mask_in(char *s, size_t cap, const char *what)
{
    size_t wl = strlen(what), ml = strlen(MASK);
    if (!wl)
        return;
    for (char *p = strstr(s, what); p; p = strstr(p + ml, what)) {
        size_t tail = strlen(p + wl);
        if ((size_t)(p - s) + ml + tail + 1 > cap)
            return;
        memmove(p + ml, p + wl, tail + 1);
        memcpy(p, MASK, ml);
    }
}

/* The origin to show in a message about a value: the caller's, with the
 * value hidden (`hide`: a secret, or a key nobody knows, which may be a
 * misspelt secret) or, if it is shown, with the userinfo of a URL in it
 * masked.  "--set k=VALUE" has the value as its tail; any other origin is
 * masked where the value appears, if it is not too short to be found by
 * accident. */
static const char *shown_origin(const char *value, bool hide, const char *origin,
                                char *buf, size_t cap)
{
    if (!origin || !*origin)
        return NULL;
    if (!value || !*value)
        return origin;
    size_t ol = strlen(origin), vl = strlen(value);
    if (ol > vl && origin[ol - vl - 1] == '=' && strcmp(origin + ol - vl, value) == 0) {
        char shown[4200];
        if (hide)
            snprintf(shown, sizeof shown, "%s", MASK);
        else
            fw_secret_url_shown(value, FW_URL_HIDE_USERINFO, shown, sizeof shown);
        snprintf(buf, cap, "%.*s%s", (int)(ol - vl), origin, shown);
        return buf;
    }
    snprintf(buf, cap, "%s", origin);
    size_t off, len;
    if (hide && vl >= 4) {
        mask_in(buf, cap, value);
    } else if (!hide && fw_secret_url_password(value, &off, &len) && len >= 4) {
        char pw[FW_SECRET_MAX];
        snprintf(pw, sizeof pw, "%.*s", (int)len, value + off);
        mask_in(buf, cap, pw);
        explicit_bzero(pw, sizeof pw);
    }
    return buf;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static size_t lev(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 128 || lb > 128)
        return SIZE_MAX;
    size_t row[129];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* Close enough to be a typo: a third of the length, at least 2 edits. */
static bool near(size_t d, const char *typed)
{
    size_t limit = strlen(typed) / 3;
    return d <= (limit < 2 ? 2 : limit);
}

/* ---- values ----------------------------------------------------------------- */

struct val {
    char *str;          /* K_STR, K_ENUM */
    char **list;        /* K_TOPICS */
    size_t n;
    int64_t num;        /* integers */
};

static void val_free(struct val *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++)
        free(v->list[i]);
    free(v->list);
    memset(v, 0, sizeof *v);
}

static bool is_number_type(enum ktype t)
{
    return t == K_U32 || t == K_INT || t == K_I64 || t == K_SIZE;
}

/* The length of the choices before the first alias. */
static int choices_len(const struct key *k)
{
    const char *eq = strchr(k->choices, '=');
    size_t n = eq ? (size_t)(eq - k->choices) : strlen(k->choices);
    while (eq && n && k->choices[n - 1] != '|')
        n--;
    return (int)(n && k->choices[n - 1] == '|' ? n - 1 : n);
}

/* Text → value, for the type only (no range).  0, or -1 with the reason. */
static int parse(const struct key *k, const char *text, struct val *v, char *why, size_t whylen)
{
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case K_STR:
        v->str = strdup(text);
        break;
    case K_ENUM: {
        size_t tl = strlen(text);
        for (const char *c = k->choices; *c;) {
            size_t cl = strcspn(c, "|");
            const char *eq = memchr(c, '=', cl);
            size_t nl = eq ? (size_t)(eq - c) : cl;
            if (nl == tl && strncasecmp(c, text, tl) == 0) {
                /* stored as listed, an alias as what it stands for */
                v->str = eq ? strndup(eq + 1, cl - nl - 1) : strndup(c, cl);
                break;
            }
            c += cl + (c[cl] == '|');
        }
        if (!v->str && tl) {
            snprintf(why, whylen, "must be one of %.*s (got \"%s\")", choices_len(k), k->choices,
                     text);
            return -1;
        }
        if (!v->str)
            v->str = strdup("");
        break;
    }
    case K_TOPICS: {
        size_t cap = 1;
        for (const char *p = text; *p; p++)
            cap += *p == ',';
        v->list = calloc(cap, sizeof *v->list);
        if (!v->list)
            break;
        char *copy = strdup(text), *save = copy;
        if (!copy) {
            free(v->list);
            v->list = NULL;
            break;
        }
        bool blank = *trim(copy) == '\0';   /* "": no topics; check() says so */
        for (size_t i = 0; !blank && i < cap; i++) {
            char *end = strchr(save, ',');
            if (end)
                *end = '\0';
            char *t = trim(save);
            if (!*t)
                snprintf(why, whylen, "entry %zu of \"%s\" is empty (a stray comma?)",
                         i + 1, text);
            else if (!(v->list[v->n++] = strdup(t)))
                snprintf(why, whylen, "out of memory");
            else {
                save = end ? end + 1 : save + strlen(save);
                continue;
            }
            free(copy);
            val_free(v);
            return -1;
        }
        free(copy);
        return 0;
    }
    case K_U32:
    case K_INT:
    case K_I64:
    case K_SIZE: {
        char *end;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        bool digits = (text[0] >= '0' && text[0] <= '9') ||
                      ((text[0] == '-' || text[0] == '+') && text[1] >= '0' && text[1] <= '9');
        if (!digits || *end) {
            snprintf(why, whylen, "must be an integer %" PRId64 "..%" PRId64 " (got \"%s\")%s",
                     k->min, k->max, text,
                     strpbrk(text, "#;") ? "; comments go on a line of their own" : "");
            return -1;
        }
        if (errno == ERANGE) {
            snprintf(why, whylen, "must be %" PRId64 "..%" PRId64 " (got %s)", k->min, k->max,
                     text);
            return -1;
        }
        v->num = x;
        return 0;
    }
    }
    if (!v->str && !v->list) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

static int check_string(const struct key *k, const char *s, char *why, size_t whylen)
{
    size_t len = strlen(s);
    if (len == 0 && k->min > 0) {
        snprintf(why, whylen, "must not be empty (want %s)", k->syntax ? k->syntax : "a value");
        return -1;
    }
    if ((int64_t)len > k->max) {
        snprintf(why, whylen, "is %zu bytes long; at most %" PRId64 " are allowed", len, k->max);
        return -1;
    }
    return k->check && len ? k->check(s, why, whylen) : 0;
}

/* The row's rules for a parsed or loaded value. */
static int check(const struct key *k, const struct val *v, char *why, size_t whylen)
{
    switch (k->type) {
    case K_STR:
        return check_string(k, v->str ? v->str : "", why, whylen);
    case K_ENUM:
        if (!v->str || !*v->str) {
            snprintf(why, whylen, "must be one of %.*s", choices_len(k), k->choices);
            return -1;
        }
        return 0;
    case K_TOPICS:
        if (v->n == 0) {
            snprintf(why, whylen, "is required: name at least one topic (%s)", k->syntax);
            return -1;
        }
        for (size_t i = 0; i < v->n; i++) {
            if (check_string(k, v->list[i] ? v->list[i] : "", why, whylen) != 0)
                return -1;
            for (size_t j = 0; j < i; j++)
                if (strcmp(v->list[i], v->list[j]) == 0) {
                    snprintf(why, whylen, "lists \"%s\" twice", v->list[i]);
                    return -1;
                }
        }
        return 0;
    default:
        if (v->num < k->min || v->num > k->max) {
            snprintf(why, whylen, "must be %" PRId64 "..%" PRId64 " (got %" PRId64 ")",
                     k->min, k->max, v->num);
            return -1;
        }
        return 0;
    }
}

/* The field's current value, borrowed (not to be freed). */
static struct val load(const struct key *k, const fw_settings *s)
{
    const char *p = (const char *)s + k->off;
    struct val v = { 0 };
    switch (k->type) {
    case K_STR:
    case K_ENUM:
        memcpy(&v.str, p, sizeof v.str);
        break;
    case K_TOPICS:
        memcpy(&v.list, p, sizeof v.list);
        memcpy(&v.n, p + sizeof(char **), sizeof v.n);
        break;
    case K_U32: { uint32_t x; memcpy(&x, p, sizeof x); v.num = x; break; }
    case K_INT: { int x; memcpy(&x, p, sizeof x); v.num = x; break; }
    case K_I64: { int64_t x; memcpy(&x, p, sizeof x); v.num = x; break; }
    case K_SIZE: { size_t x; memcpy(&x, p, sizeof x); v.num = (int64_t)x; break; }
    }
    return v;
}

/* Moves a checked value into the field, freeing the old one. */
static void store(const struct key *k, fw_settings *s, struct val *v)
{
    char *p = (char *)s + k->off;
    struct val old = load(k, s);
    switch (k->type) {
    case K_STR:
    case K_ENUM:
        memcpy(p, &v->str, sizeof v->str);
        free(old.str);
        break;
    case K_TOPICS:
        memcpy(p, &v->list, sizeof v->list);
        memcpy(p + sizeof(char **), &v->n, sizeof v->n);
        val_free(&old);
        break;
    case K_U32: { uint32_t x = (uint32_t)v->num; memcpy(p, &x, sizeof x); break; }
    case K_INT: { int x = (int)v->num; memcpy(p, &x, sizeof x); break; }
    case K_I64: { int64_t x = v->num; memcpy(p, &x, sizeof x); break; }
    case K_SIZE: { size_t x = (size_t)v->num; memcpy(p, &x, sizeof x); break; }
    }
    memset(v, 0, sizeof *v);
}

/* The field as config text, into buf. */
static const char *format(const struct key *k, const fw_settings *s, char *buf, size_t cap)
{
    struct val v = load(k, s);
    if (is_number_type(k->type)) {
        snprintf(buf, cap, "%" PRId64, v.num);
        return buf;
    }
    if (k->type != K_TOPICS)
        return v.str ? v.str : "";
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v.n && n < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? "," : "", v.list[i] ? v.list[i] : "");
        n += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

static const struct key *find_key_in(const struct key *keys, size_t nkeys, const char *name)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* ---- value checkers ---------------------------------------------------------- */

static int check_topic(const char *v, char *why, size_t whylen)
{
    size_t bad = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    if (v[bad] || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        snprintf(why, whylen, "\"%s\" is not a valid Kafka topic name (letters, digits, "
                 "'.', '_' and '-' only)", v);
        return -1;
    }
    return 0;
}

static int check_topic_or_empty(const char *v, char *why, size_t whylen)
{
    return *v ? check_topic(v, why, whylen) : 0;
}

static int check_brokers(const char *v, char *why, size_t whylen)
{
    for (const char *p = v;;) {
        size_t n = strcspn(p, ",");
        size_t lead = strspn(p, " \t");
        if (lead >= n) {
            snprintf(why, whylen, "\"%s\" has an empty entry (want HOST:PORT[,HOST:PORT...])", v);
            return -1;
        }
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

static int check_printable(const char *v, char *why, size_t whylen)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "contains a control character");
            return -1;
        }
    return 0;
}

/* dir:PATH, or a redis:// URL the connection's own parser takes.  The
 * messages quote the value only when it cannot hold a password. */
static int check_rules_source(const char *v, char *why, size_t whylen)
{
    static const char want[] = "want dir:PATH, e.g. dir:rules, or " FW_REDIS_URL_FORM;
    if (strncmp(v, "dir:", 4) == 0) {
        if (v[4])
            return 0;
        snprintf(why, whylen, "\"dir:\" needs a path (%s)", want);
        return -1;
    }
    if (strncasecmp(v, "redis", 5) == 0 && (strncmp(v + 5, "://", 3) == 0 ||
                                             strncasecmp(v + 5, "s://", 4) == 0)) {
        fw_redis_url u;
        char e[1024];
        int rc = fw_redis_url_parse(v, &u, e, sizeof e);
        fw_redis_url_wipe(&u);
        if (rc == 0)
            return 0;
        snprintf(why, whylen, "is refused: %s", e);
        return -1;
    }
    size_t scheme = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    if (scheme && scheme <= 16 && strncmp(v + scheme, "://", 3) == 0)
        snprintf(why, whylen, "is a %.*s:// URL, not a rule source (%s)", (int)scheme, v, want);
    else if (!strpbrk(v, ":@"))
        snprintf(why, whylen, "\"%s\" is not a rule source (%s)", v, want);
    else    /* "u:pw@host" without a scheme, "redis//...": not quoted */
        snprintf(why, whylen, "is not a rule source (%s)", want);
    return -1;
}

/* rules.redis_password_file: readable now, by this user, and safe. */
static int check_password_file(const char *v, char *why, size_t whylen)
{
    char pw[FW_SECRET_MAX], e[4400];
    int rc = fw_secret_read_file(v, pw, sizeof pw, e, sizeof e);
    explicit_bzero(pw, sizeof pw);
    if (rc != 0)
        snprintf(why, whylen, "is refused: %s", e);
    return rc;
}

/* console.redis: a redis:// URL the connection's parser takes (not quoted). */
static int check_redis_url(const char *v, char *why, size_t whylen)
{
    fw_redis_url u;
    char e[1024];
    int rc = fw_redis_url_parse(v, &u, e, sizeof e);
    fw_redis_url_wipe(&u);
    if (rc != 0)
        snprintf(why, whylen, "is refused: %s", e);
    return rc;
}

/* What fw_http_start() takes (listen_addr.c), or "off".  Any address
 * parses here; one off the loopback needs TLS and authentication, which
 * fw_config_validate() checks between keys. */
static int check_listen(const char *v, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    if (strcmp(v, "off") == 0)
        return 0;
    return fw_listen_parse_any(v, &ss, why, whylen);
}

/* console.listen: any address parses here; one off the loopback needs
 * TLS, which validate_console() checks between keys. */
static int check_console_listen(const char *v, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    return fw_listen_parse_any(v, &ss, why, whylen);
}

/* metrics.tls_cert_file: a regular file this user can read now. */
static int check_readable_file(const char *v, char *why, size_t whylen)
{
    struct stat st;
    if (stat(v, &st) != 0) {
        snprintf(why, whylen, "%s: cannot open: %s", v, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s: not a regular file", v);
        return -1;
    }
    if (access(v, R_OK) != 0) {
        snprintf(why, whylen, "%s: cannot read: %s", v, strerror(errno));
        return -1;
    }
    return 0;
}

/* metrics.tls_key_file: readable, and by nobody but its owner and group. */
static int check_private_file(const char *v, char *why, size_t whylen)
{
    if (check_readable_file(v, why, whylen) != 0)
        return -1;
    struct stat st;
    if (stat(v, &st) == 0 && (st.st_mode & 0007)) {
        snprintf(why, whylen, "%s: other users may read it (mode %04o): a private key must "
                 "not be; chmod o-rwx %s", v, (unsigned)(st.st_mode & 07777), v);
        return -1;
    }
    return 0;
}

/* metrics.auth_user: printable, and no ':' (basic authentication's
 * separator between user and password). */
static int check_auth_user(const char *v, char *why, size_t whylen)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == ':') {
            snprintf(why, whylen, "must be printable and have no ':' (basic authentication "
                     "separates user and password with it)");
            return -1;
        }
    return 0;
}

/* ---- librdkafka pass-through -------------------------------------------------- */

/* librdkafka's property table, as rd_kafka_conf_properties_show() writes
 * it ("name | C/P | range | default | importance | description" rows).
 * Read on demand: only while a pass-through key is checked. */
struct props {
    char *text;
    size_t len;
};

static int props_read(struct props *p)
{
    p->text = NULL;
    p->len = 0;
    FILE *f = open_memstream(&p->text, &p->len);
    if (!f)
        return -1;
    rd_kafka_conf_properties_show(f);
    if (fclose(f) != 0) {
        free(p->text);
        p->text = NULL;
        return -1;
    }
    return 0;
}

/* Calls fn(name, namelen, scope, arg) for each property row; stops when fn
 * returns nonzero. */
static void props_each(const struct props *p,
                       int (*fn)(const char *name, size_t nl, char scope, void *arg), void *arg)
{
    for (const char *line = p->text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        size_t nl = strcspn(line, " |\n");
        const char *bar = memchr(line, '|', ll);
        if (nl && bar && line[0] != '-' && strncmp(line, "Property ", 9) != 0) {
            const char *sc = bar + 1;
            while (*sc == ' ')
                sc++;
            if (fn(line, nl, *sc, arg))
                return;
        }
        line = eol ? eol + 1 : line + ll;
    }
}

struct scope_q {
    const char *prop;
    char scope;
};

static int scope_hit(const char *name, size_t nl, char scope, void *arg)
{
    struct scope_q *q = arg;
    if (strlen(q->prop) != nl || strncmp(name, q->prop, nl) != 0)
        return 0;
    /* A property may be listed twice (global and topic level). */
    q->scope = !q->scope || q->scope == scope ? scope : '*';
    return 0;
}

struct near_q {
    const char *typed;
    unsigned side;
    char best[128];
    size_t dist;
};

static int near_hit(const char *name, size_t nl, char scope, void *arg)
{
    struct near_q *q = arg;
    if (nl >= sizeof q->best || (scope == 'C' && q->side == PRODUCER) ||
        (scope == 'P' && q->side == CONSUMER))
        return 0;
    char n[128];
    memcpy(n, name, nl);
    n[nl] = '\0';
    size_t d = lev(q->typed, n);
    if (d < q->dist) {
        q->dist = d;
        memcpy(q->best, n, nl + 1);
    }
    return 0;
}

/* Checks kafka.consumer.PROP / kafka.producer.PROP = value.  `where` is the
 * (already masked) origin. */
static int check_pass(unsigned side, const char *prop, const char *value, const char *where,
                      char *err, size_t errlen)
{
    const char *prefix = side == CONSUMER ? CONSUMER_PREFIX : PRODUCER_PREFIX;
    const char *other = side == CONSUMER ? PRODUCER_PREFIX : CONSUMER_PREFIX;
    if (!*prop)
        return fail(err, errlen, where, "\"%s\" needs a librdkafka property after it, e.g. "
                    "%s%s", prefix, prefix,
                    side == CONSUMER ? "auto.offset.reset" : "compression.type");
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        const struct fixed *f = &fixed[i];
        if (!(f->sides & side) || strcmp(f->prop, prop) != 0)
            continue;
        if (f->hi > 0) {
            char *end;
            errno = 0;
            long long x = strtoll(value, &end, 10);
            if (*value && !*end && errno == 0 && x >= f->lo && x <= f->hi)
                goto allowed;
            return fail(err, errlen, where, "%s%s must be %" PRId64 "..%" PRId64
                        " (got \"%s\"): %s", prefix, prop, f->lo, f->hi, value, f->why);
        }
        if (f->allowed) {
            size_t vl = strlen(value);
            for (const char *a = f->allowed; *a;) {
                size_t al = strcspn(a, "|");
                if (al == vl && strncasecmp(a, value, vl) == 0)
                    goto allowed;
                a += al + (a[al] == '|');
            }
            return fail(err, errlen, where, "%s%s must be %s (got \"%s\"): %s", prefix, prop,
                        f->allowed, value, f->why);
        }
        return fail(err, errlen, where, "%s%s cannot be set: %s", prefix, prop, f->why);
    }
allowed:;
    struct props p;
    bool have_props = props_read(&p) == 0;
    if (have_props) {
        struct scope_q q = { prop, 0 };
        props_each(&p, scope_hit, &q);
        if ((q.scope == 'C' && side == PRODUCER) || (q.scope == 'P' && side == CONSUMER)) {
            free(p.text);
            return fail(err, errlen, where, "%s%s: \"%s\" is a %s property; did you mean "
                        "%s%s?", prefix, prop, prop,
                        q.scope == 'C' ? "consumer" : "producer", other, prop);
        }
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!c) {
        free(p.text);
        return fail(err, errlen, where, "out of memory");
    }
    char e[512] = "";
    rd_kafka_conf_res_t r = rd_kafka_conf_set(c, prop, value, e, sizeof e);
    rd_kafka_conf_destroy(c);
    if (r == RD_KAFKA_CONF_OK) {
        free(p.text);
        return 0;
    }
    char hint[200] = "";
    if (r == RD_KAFKA_CONF_UNKNOWN && have_props) {
        struct near_q q = { .typed = prop, .side = side, .dist = SIZE_MAX };
        props_each(&p, near_hit, &q);
        if (q.dist != SIZE_MAX && near(q.dist, prop))
            snprintf(hint, sizeof hint, " (did you mean \"%s%s\"?)", prefix, q.best);
    }
    free(p.text);
    if (is_secret(prop) && *value) {
        char quoted[FW_SECRET_MAX + 3];
        snprintf(quoted, sizeof quoted, "\"%s\"", value);
        mask_in(e, sizeof e, quoted);
        if (strstr(e, value))   /* quoted some other way: say less */
            snprintf(e, sizeof e, "the value is refused (the reason would show it)");
    }
    return fail(err, errlen, where, "%s%s: librdkafka: %s%s", prefix, prop, e, hint);
}

/* Sets or replaces prop in one side's arrays; file: the @file: path the
 * value was read from, or NULL. */
static int pass_put(char ***pk, char ***pv, char ***pf, size_t *n, size_t *cap,
                    const char *prop, const char *value, const char *file)
{
    char *v = strdup(value);
    char *f = file ? strdup(file) : NULL;
    if (!v || (file && !f)) {
        free(v);
        free(f);
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*pk)[i], prop) == 0) {
            if ((*pv)[i])
                explicit_bzero((*pv)[i], strlen((*pv)[i]));
            free((*pv)[i]);
            free((*pf)[i]);
            (*pv)[i] = v;
            (*pf)[i] = f;
            return 0;
        }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **nk = realloc(*pk, nc * sizeof *nk);
        if (nk)
            *pk = nk;
        char **nv = nk ? realloc(*pv, nc * sizeof *nv) : NULL;
        if (nv)
            *pv = nv;
        char **nf = nv ? realloc(*pf, nc * sizeof *nf) : NULL;
        if (nf)
            *pf = nf;
        if (!nk || !nv || !nf) {
            free(v);
            free(f);
            return -1;
        }
        *cap = nc;
    }
    char *k = strdup(prop);
    if (!k) {
        free(v);
        free(f);
        return -1;
    }
    (*pk)[*n] = k;
    (*pv)[*n] = v;
    (*pf)[*n] = f;
    (*n)++;
    return 0;
}

/* True when librdkafka lists prop (in its property table). */
static bool prop_known(const char *prop)
{
    struct props p;
    if (props_read(&p) != 0)
        return false;
    struct scope_q q = { prop, 0 };
    props_each(&p, scope_hit, &q);
    free(p.text);
    return q.scope != 0;
}

/* kafka.consumer.PROP / kafka.producer.PROP = value: checked, a value
 * "@file:PATH" of a secret property read from PATH, then stored. */
static int set_pass(struct cfg *c, unsigned side, const char *prop, const char *value,
                    const char *where, char *err, size_t errlen)
{
    fw_settings *s = &c->s;
    const char *prefix = side == CONSUMER ? CONSUMER_PREFIX : PRODUCER_PREFIX;
    if (*prop && !key_like(prop))
        return fail(err, errlen, where, "the text after \"%s\" is not a librdkafka "
                    "property name (letters, digits, '.', '_' and '-')", prefix);
    const char *file = NULL;
    char secret[FW_SECRET_MAX];
    if (is_file_ref(value)) {
        file = value + strlen(FW_SECRET_FILE_PREFIX);
        if (!is_secret(prop))
            return fail(err, errlen, where, "%s%s: \"%s\" is read only for secret "
                        "properties (names with password, secret, token, ... see "
                        "docs/configuration.md), and %s is not a secret: write its value",
                        prefix, prop, FW_SECRET_FILE_PREFIX, prop);
        if (!*file)
            return fail(err, errlen, where, "%s%s: \"%s\" needs a path", prefix, prop,
                        FW_SECRET_FILE_PREFIX);
        char why[4400];
        if (fw_secret_read_file(file, secret, sizeof secret, why, sizeof why) != 0)
            return fail(err, errlen, where, "%s%s: %s", prefix, prop, why);
        value = secret;
    }
    int rc = check_pass(side, prop, value, where, err, errlen);
    if (rc == 0) {
        rc = side == CONSUMER
                 ? pass_put(&s->consumer_keys, &s->consumer_values, &c->consumer_files,
                            &s->nconsumer, &c->consumer_cap, prop, value, file)
                 : pass_put(&s->producer_keys, &s->producer_values, &c->producer_files,
                            &s->nproducer, &c->producer_cap, prop, value, file);
        if (rc != 0)
            fail(err, errlen, where, "out of memory");
    }
    if (file)
        explicit_bzero(secret, sizeof secret);
    return rc;
}

/* ---- suggestions -------------------------------------------------------------- */

/* The closest known key to an unknown one, into out ("" if none is close). */
static void suggest(const struct key *keys, size_t nkeys, const char *typed, char *out,
                    size_t cap)
{
    out[0] = '\0';
    /* "kafka.consumr.x" → "kafka.consumer.x": compare the first two parts. */
    const char *dot1 = strchr(typed, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 && dot2[1] && (size_t)(dot2 - typed) < 32) {
        char head[32];
        size_t hl = (size_t)(dot2 - typed) + 1;
        memcpy(head, typed, hl);
        head[hl] = '\0';
        size_t dc = lev(head, CONSUMER_PREFIX), dp = lev(head, PRODUCER_PREFIX);
        if ((dc < dp ? dc : dp) <= 3) {
            snprintf(out, cap, "%s%s", dc <= dp ? CONSUMER_PREFIX : PRODUCER_PREFIX, dot2 + 1);
            return;
        }
    }
    size_t best = SIZE_MAX;
    const char *name = NULL;
    for (size_t i = 0; i < nkeys; i++) {
        size_t d = lev(typed, keys[i].name);
        if (d < best) {
            best = d;
            name = keys[i].name;
        }
    }
    if (name && near(best, typed)) {
        snprintf(out, cap, "%s", name);
        return;
    }
    /* "threads" → "engine.threads": the key without its section. */
    for (size_t i = 0; i < nkeys; i++) {
        const char *last = strrchr(keys[i].name, '.');
        if (last && strcmp(last + 1, typed) == 0) {
            snprintf(out, cap, "%s", keys[i].name);
            return;
        }
    }
}

/* ---- the API ------------------------------------------------------------------ */

void fw_config_free(fw_settings *s)
{
    if (!s)
        return;
    struct cfg *c = (struct cfg *)s;
    const struct key *keys = c->keys;
    for (size_t i = 0; i < c->nkeys; i++) {
        struct val v = load(&keys[i], s);
        if (!is_number_type(keys[i].type))
            val_free(&v);
        free(c->origin[i]);
    }
    for (size_t i = 0; i < s->nconsumer; i++) {
        free(s->consumer_keys[i]);
        explicit_bzero(s->consumer_values[i], strlen(s->consumer_values[i]));
        free(s->consumer_values[i]);
        free(c->consumer_files[i]);
    }
    for (size_t i = 0; i < s->nproducer; i++) {
        free(s->producer_keys[i]);
        explicit_bzero(s->producer_values[i], strlen(s->producer_values[i]));
        free(s->producer_values[i]);
        free(c->producer_files[i]);
    }
    free(s->consumer_keys);
    free(s->consumer_values);
    free(c->consumer_files);
    free(s->producer_keys);
    free(s->producer_values);
    free(c->producer_files);
    free(c);
}

static fw_settings *config_new(const struct key *keys, size_t nkeys)
{
    struct cfg *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->keys = keys;
    c->nkeys = nkeys;
    for (size_t i = 0; i < nkeys; i++) {
        struct val v;
        char why[256];
        if (parse(&keys[i], keys[i].def, &v, why, sizeof why) != 0) {
            fw_config_free(&c->s);
            return NULL;
        }
        store(&keys[i], &c->s, &v);
    }
    return &c->s;
}

fw_settings *fw_config_new(void)
{
    return config_new(daemon_keys, NDAEMON_KEYS);
}

fw_settings *fw_console_config_new(void)
{
    return config_new(console_keys, NCONSOLE_KEYS);
}

int fw_config_set(fw_settings *s, const char *key, const char *value, const char *origin,
                  char *err, size_t errlen)
{
    struct cfg *c = (struct cfg *)s;
    const struct key *keys = c->keys;
    char masked[4400];
    if (!key)
        key = "";
    if (!value)
        value = "";
    unsigned side = strncmp(key, CONSUMER_PREFIX, strlen(CONSUMER_PREFIX)) == 0 ? CONSUMER
                  : strncmp(key, PRODUCER_PREFIX, strlen(PRODUCER_PREFIX)) == 0 ? PRODUCER
                  : 0;
    const char *prop = side ? key + strlen(side == CONSUMER ? CONSUMER_PREFIX
                                                            : PRODUCER_PREFIX) : NULL;
    const struct key *k = side ? NULL : find_key_in(keys, c->nkeys, key);
    /* The value is not echoed when it is a secret, or when nobody knows
     * the key: a misspelt secret key still holds a secret. */
    bool hide = side ? (is_secret(prop) && !is_file_ref(value)) || !prop_known(prop) : !k;
    /* A rules.source that is not a good one is not echoed at all: the
     * parts of a URL that does not parse cannot be told apart. */
    char why_src[1024];
    if (k && k->check == check_rules_source && *value &&
        check_rules_source(value, why_src, sizeof why_src) != 0 && strpbrk(value, ":@"))
        hide = true;
    const char *where = shown_origin(value, hide, origin, masked, sizeof masked);

    if (side)
        return set_pass(c, side, prop, value, where, err, errlen);
    if (!k) {
        char best[256];
        if (!*key)
            return fail(err, errlen, where, "missing key before \"=\"");
        if (!key_like(key))
            return fail(err, errlen, where, "the text before \"=\" is not a key (keys are "
                        "letters, digits, '.', '_' and '-'; docs/configuration.md lists "
                        "them)");
        suggest(keys, c->nkeys, key, best, sizeof best);
        if (*best)
            return fail(err, errlen, where, "unknown key \"%s\" (did you mean \"%s\"?)", key,
                        best);
        return fail(err, errlen, where, "unknown key \"%s\" (docs/configuration.md lists "
                    "every key)", key);
    }
    struct val v;
    char why[4600];
    if (parse(k, value, &v, why, sizeof why) != 0)
        return fail(err, errlen, where, "%s %s", k->name, why);
    if (check(k, &v, why, sizeof why) != 0) {
        val_free(&v);
        return fail(err, errlen, where, "%s %s", k->name, why);
    }
    char *o = where ? strdup(where) : NULL;
    if (where && !o) {
        val_free(&v);
        return fail(err, errlen, where, "out of memory");
    }
    size_t i = (size_t)(k - keys);
    free(c->origin[i]);
    c->origin[i] = o;
    store(k, s, &v);
    return 0;
}

int fw_config_load_file(fw_settings *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, path, "cannot open: %s", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *p = line;
        if (lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3;     /* a UTF-8 byte order mark */
        if (memchr(p, '\0', (size_t)got - (size_t)(p - line))) {
            rc = fail(err, errlen, NULL, "%s:%u: NUL byte in line (not a text file?)",
                      path, lineno);
            break;
        }
        p = trim(p);
        if (!*p || *p == '#' || *p == ';')
            continue;
        char origin[4200];
        snprintf(origin, sizeof origin, "%s:%u", path, lineno);
        char *eq = strchr(p, '=');
        if (!eq) {
            /* Not quoted: the line may be a secret that lost its key. */
            size_t kl = strcspn(p, " \t");
            char first[256] = "";
            if (kl < sizeof first)
                snprintf(first, sizeof first, "%.*s", (int)kl, p);
            if (p[kl] && key_like(first) &&
                (find_key_in(((struct cfg *)s)->keys, ((struct cfg *)s)->nkeys, first) || strncmp(first, "kafka.", 6) == 0))
                rc = fail(err, errlen, origin, "\"%s\": no \"=\" between the key and its "
                          "value (expected \"key = value\")", first);
            else
                rc = fail(err, errlen, origin, "no \"=\" on the line (expected \"key = "
                          "value\"; the line is not shown: it may hold a secret)");
            break;
        }
        *eq = '\0';
        if (fw_config_set(s, trim(p), trim(eq + 1), origin, err, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = fail(err, errlen, path, "read error: %s", strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

const char *fw_config_shadow_topic(const fw_settings *s, char *buf, size_t n)
{
    if (s->shadow_topic && *s->shadow_topic)
        return s->shadow_topic;
    snprintf(buf, n, "%s.shadow", s->alert_topic);
    return buf;
}

/* Where key i got its value, for a message. */
static const char *origin_of(const struct cfg *c, size_t i)
{
    return c->origin[i];
}

static int validate_daemon(struct cfg *c, char *err, size_t errlen);
static int validate_instance(fw_settings *s, char *err, size_t errlen);

/* The console's rules between keys: TLS needs both files, and an address
 * off the loopback needs TLS (the console has its own logins, but a
 * password or a session cookie in clear is one anybody on the path has). */
static int validate_console(struct cfg *c, char *err, size_t errlen)
{
    const struct key *keys = c->keys;
    fw_settings *s = &c->s;
    size_t cert = (size_t)(find_key_in(keys, c->nkeys, "console.tls_cert_file") - keys);
    size_t key = (size_t)(find_key_in(keys, c->nkeys, "console.tls_key_file") - keys);
    size_t listen = (size_t)(find_key_in(keys, c->nkeys, "console.listen") - keys);
    if (!*s->console_tls_cert_file != !*s->console_tls_key_file)
        return fail(err, errlen, origin_of(c, *s->console_tls_cert_file ? cert : key),
                    "console.tls_cert_file and console.tls_key_file go together: set both "
                    "(HTTPS) or neither (plain HTTP on the loopback)");
    struct sockaddr_storage ss;
    char lwhy[512];
    if (fw_listen_parse(s->console_listen, &ss, lwhy, sizeof lwhy) != 0 &&
        !*s->console_tls_cert_file)
        return fail(err, errlen, origin_of(c, listen), "console.listen \"%s\" refused: not a "
                    "loopback address, and no TLS (logins and session cookies would cross "
                    "the network in clear).  Set console.tls_cert_file and "
                    "console.tls_key_file, or keep it on 127.0.0.1 behind a TLS reverse proxy",
                    s->console_listen);
    return 0;
}

int fw_config_validate(fw_settings *s, char *err, size_t errlen)
{
    struct cfg *c = (struct cfg *)s;
    const struct key *keys = c->keys;
    char why[4600];
    for (size_t i = 0; i < c->nkeys; i++) {
        struct val v = load(&keys[i], s);
        if (keys[i].type == K_ENUM && v.str) {     /* as parse() would */
            struct val p;
            if (parse(&keys[i], v.str, &p, why, sizeof why) != 0)
                return fail(err, errlen, origin_of(c, i), "%s %s", keys[i].name, why);
            val_free(&p);
        }
        if (check(&keys[i], &v, why, sizeof why) != 0)
            return fail(err, errlen, origin_of(c, i), "%s %s", keys[i].name, why);
    }
    for (size_t i = 0; i < s->nconsumer; i++)
        if (check_pass(CONSUMER, s->consumer_keys[i], s->consumer_values[i], NULL, err,
                       errlen) != 0)
            return -1;
    for (size_t i = 0; i < s->nproducer; i++)
        if (check_pass(PRODUCER, s->producer_keys[i], s->producer_values[i], NULL, err,
                       errlen) != 0)
            return -1;

    if (keys == daemon_keys && validate_daemon(c, err, errlen) != 0)
        return -1;
    if (keys == console_keys && validate_console(c, err, errlen) != 0)
        return -1;
    return validate_instance(s, err, errlen);
}

/* The daemon's rules between keys. */
static int validate_daemon(struct cfg *c, char *err, size_t errlen)
{
    const struct key *keys = c->keys;
    fw_settings *s = &c->s;
#define find_key(name) find_key_in(keys, c->nkeys, name)
    /* Rules between keys.  An output among the inputs is a loop: the daemon
     * would read its own alerts (or dead letters) back as events. */
    size_t in = (size_t)(find_key("input.topics") - keys);
    size_t outs[2] = { (size_t)(find_key("output.topic") - keys),
                       (size_t)(find_key("deadletter.topic") - keys) };
    for (size_t o = 0; o < 2; o++) {
        const char *t = load(&keys[outs[o]], s).str;
        for (size_t i = 0; i < s->ninput_topics; i++)
            if (strcmp(t, s->input_topics[i]) == 0)
                return fail(err, errlen, origin_of(c, c->origin[outs[o]] ? outs[o] : in),
                            "%s \"%s\" is also in input.topics: the daemon would consume "
                            "its own %s", keys[outs[o]].name, t,
                            o == 0 ? "alerts" : "dead letters");
    }
    if (strcmp(s->alert_topic, s->dlq_topic) == 0)
        return fail(err, errlen, origin_of(c, c->origin[outs[1]] ? outs[1] : outs[0]),
                    "deadletter.topic \"%s\" is also output.topic: alerts and malformed "
                    "events need topics of their own", s->dlq_topic);
    /* The shadow topic: its own, never one of the others or an input. */
    size_t sh = (size_t)(find_key("output.shadow_topic") - keys);
    char shadow[MAX_TOPIC + 16];
    const char *st = fw_config_shadow_topic(s, shadow, sizeof shadow);
    const char *sh_origin = origin_of(c, c->origin[sh] ? sh : outs[0]);
    if (strlen(st) > MAX_TOPIC)
        return fail(err, errlen, sh_origin, "output.shadow_topic \"%s\" is longer than %d "
                    "bytes: set output.shadow_topic to a shorter name", st, MAX_TOPIC);
    if (strcmp(st, s->alert_topic) == 0 || strcmp(st, s->dlq_topic) == 0)
        return fail(err, errlen, sh_origin, "output.shadow_topic \"%s\" is also %s: shadow "
                    "and snoozed alerts need a topic of their own", st,
                    strcmp(st, s->alert_topic) == 0 ? "output.topic" : "deadletter.topic");
    for (size_t i = 0; i < s->ninput_topics; i++)
        if (strcmp(st, s->input_topics[i]) == 0)
            return fail(err, errlen, sh_origin, "output.shadow_topic \"%s\" is also in "
                        "input.topics: the daemon would consume its own shadow alerts", st);

    /* The Redis password: a file for a source that is not Redis is a
     * mistake, and a user without a password cannot log in. */
    size_t src = (size_t)(find_key("rules.source") - keys);
    size_t pwf = (size_t)(find_key("rules.redis_password_file") - keys);
    bool redis = strncmp(s->rules_source, "redis://", 8) == 0;
    if (*s->redis_password_file && !redis)
        return fail(err, errlen, origin_of(c, pwf), "rules.redis_password_file is set, but "
                    "rules.source is not a redis:// URL: the password is only for the Redis "
                    "rule store; remove one of them");
    if (redis && !*s->redis_password_file) {
        fw_redis_url u;
        char e[1024];
        bool user_only = fw_redis_url_parse(s->rules_source, &u, e, sizeof e) == 0 &&
                         u.has_user && !u.has_pass;
        fw_redis_url_wipe(&u);
        if (user_only)
            return fail(err, errlen, origin_of(c, src), "rules.source names a user but no "
                        "password: give the password with rules.redis_password_file (a file "
                        "only the daemon's user can read), or in the URL");
    }
    /* /metrics exposure: TLS needs both files, authentication both
     * settings, and an address off the loopback needs both. */
    size_t cert = (size_t)(find_key("metrics.tls_cert_file") - keys);
    size_t key = (size_t)(find_key("metrics.tls_key_file") - keys);
    size_t user = (size_t)(find_key("metrics.auth_user") - keys);
    size_t mpw = (size_t)(find_key("metrics.auth_password_file") - keys);
    if (!*s->metrics_tls_cert_file != !*s->metrics_tls_key_file)
        return fail(err, errlen, origin_of(c, *s->metrics_tls_cert_file ? cert : key),
                    "metrics.tls_cert_file and metrics.tls_key_file go together: set both "
                    "(HTTPS) or neither (plain HTTP on the loopback)");
    if (!*s->metrics_auth_user != !*s->metrics_auth_password_file)
        return fail(err, errlen, origin_of(c, *s->metrics_auth_user ? user : mpw),
                    "metrics.auth_user and metrics.auth_password_file go together: set both "
                    "(basic authentication) or neither");
    if (strcmp(s->metrics_listen, "off") != 0) {
        struct sockaddr_storage ss;
        char lwhy[512];
        size_t ml = (size_t)(find_key("metrics.listen") - keys);
        if (fw_listen_parse(s->metrics_listen, &ss, lwhy, sizeof lwhy) != 0 &&
            !(*s->metrics_tls_cert_file && *s->metrics_auth_user))
            return fail(err, errlen, origin_of(c, ml), "metrics.listen \"%s\" refused: not a "
                        "loopback address, and the endpoint %s.  Off the loopback it needs "
                        "both HTTPS (metrics.tls_cert_file, metrics.tls_key_file) and a "
                        "password (metrics.auth_user, metrics.auth_password_file); or keep "
                        "it on 127.0.0.1 behind a proxy", s->metrics_listen,
                        *s->metrics_tls_cert_file ? "has no password"
                        : *s->metrics_auth_user ? "has no TLS (the password would cross the "
                                                  "network in clear)"
                                                : "has neither TLS nor a password");
    }

    if (strcmp(s->ha_mode, "standby") == 0 && strcmp(s->state_store, "kafka") != 0)
        return fail(err, errlen, origin_of(c, (size_t)(find_key("ha.mode") - keys)),
                    "ha.mode = standby needs state.store = kafka: a standby restores the "
                    "active daemon's last checkpoint from the state topic");
    if (strcmp(s->ha_mode, "scaleout") == 0 && strcmp(s->state_store, "kafka") != 0)
        return fail(err, errlen, origin_of(c, (size_t)(find_key("ha.mode") - keys)),
                    "ha.mode = scaleout needs state.store = kafka: a repartition partition's "
                    "state moves between daemons through the state topic");
#undef find_key
    return 0;
}

/* instance.id: filled in when empty. */
static int validate_instance(fw_settings *s, char *err, size_t errlen)
{
    s->instance_id_given = *s->instance_id != '\0';
    if (!*s->instance_id) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !*host)
            snprintf(host, sizeof host, "fraudwatch");
        char id[320];
        snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
        char *dup = strdup(id);
        if (!dup)
            return fail(err, errlen, "instance.id", "out of memory");
        free(s->instance_id);
        s->instance_id = dup;
    }
    return 0;
}

static void print_kv(FILE *out, const char *key, const char *value, const char *file)
{
    char shown[8300];
    if (file) {     /* read from a file: where from is what the file said */
        snprintf(shown, sizeof shown, "%s%s", FW_SECRET_FILE_PREFIX, file);
        value = shown;
    } else if (is_secret(key) && *value) {
        value = MASK;
    } else if (strstr(value, "://")) {
        fw_secret_url_shown(value, FW_URL_SHOW_USER, shown, sizeof shown);
        value = shown;
    }
    fprintf(out, *value ? "%s = %s\n" : "%s =%s\n", key, value);
}

void fw_config_print(const fw_settings *s, FILE *out)
{
    const struct cfg *c = (const struct cfg *)s;
    const struct key *keys = c->keys;
    char buf[8192];
    for (size_t i = 0; i < c->nkeys; i++)
        print_kv(out, keys[i].name, format(&keys[i], s, buf, sizeof buf), NULL);
    for (size_t i = 0; i < s->nconsumer; i++) {
        snprintf(buf, sizeof buf, "%s%s", CONSUMER_PREFIX, s->consumer_keys[i]);
        print_kv(out, buf, s->consumer_values[i], c->consumer_files[i]);
    }
    for (size_t i = 0; i < s->nproducer; i++) {
        snprintf(buf, sizeof buf, "%s%s", PRODUCER_PREFIX, s->producer_keys[i]);
        print_kv(out, buf, s->producer_values[i], c->producer_files[i]);
    }
}

static void write_docs(const struct key *keys, size_t nkeys, FILE *out);

void fw_config_write_docs(FILE *out)
{
    write_docs(daemon_keys, NDAEMON_KEYS, out);
}

void fw_console_config_write_docs(FILE *out)
{
    write_docs(console_keys, NCONSOLE_KEYS, out);
}

static void write_docs(const struct key *keys, size_t nkeys, FILE *out)
{
    fputs("| key | default | range | meaning |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < nkeys; i++) {
        const struct key *k = &keys[i];
        fprintf(out, "| `%s` | %s%s%s | ", k->name, *k->def ? "`" : "", *k->def ? k->def : "(empty)",
                *k->def ? "`" : "");
        if (is_number_type(k->type))
            fprintf(out, "%" PRId64 " .. %" PRId64, k->min, k->max);
        else if (k->type == K_ENUM)
            for (const char *ch = k->choices; *ch;) {
                size_t n = strcspn(ch, "|");
                const char *eq = memchr(ch, '=', n);
                if (eq)
                    fprintf(out, " (`%.*s` = `%.*s`)", (int)(eq - ch), ch,
                            (int)(n - (size_t)(eq - ch) - 1), eq + 1);
                else
                    fprintf(out, "%s`%.*s`", ch == k->choices ? "" : ", ", (int)n, ch);
                ch += n + (ch[n] == '|');
            }
        else
            fputs(k->syntax, out);
        fprintf(out, " | %s |\n", k->desc);
    }
}
