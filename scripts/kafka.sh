#!/usr/bin/env bash
# scripts/kafka.sh: a real single-node Apache Kafka broker (KRaft mode: broker
# and controller in one JVM, no ZooKeeper) on 127.0.0.1, for fraudwatch's
# tests, demo and benchmarks.  Jars come from Maven Central through
# scripts/kafka/pom.xml and are cached outside the repo.
# See docs/kafka-local.md.  Run `scripts/kafka.sh --help` for usage.
#
# "A && B || die" is used on purpose for checks below.
# shellcheck disable=SC2015
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/kafka/pom.xml"

FW_KAFKA_HOME=${FW_KAFKA_HOME:-$HOME/.cache/fraudwatch/kafka}
LIB="$FW_KAFKA_HOME/lib"
STAMP="$LIB/.fetched"                       # pom hash + list of jars
DEFAULT_PORT=${FW_KAFKA_PORT:-9092}
HEAP_OPTS=${FW_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
START_TIMEOUT=${FW_KAFKA_START_TIMEOUT:-60}  # seconds
STOP_TIMEOUT=${FW_KAFKA_STOP_TIMEOUT:-30}    # seconds before SIGKILL
LOG_LEVEL=${FW_KAFKA_LOG_LEVEL:-INFO}
# JVM flags for the short-lived CLI tools (StorageTool, TopicCommand): start fast.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

usage() {
  cat <<EOF
Usage: scripts/kafka.sh COMMAND [OPTIONS]

A real single-node Apache Kafka (KRaft) broker on 127.0.0.1 only.

Commands:
  fetch                     Install java/mvn if missing (apt-get) and fill the
                            jar cache once (skipped when already complete).
  start [--port P] [--dir D] [--fresh]
                            Fetch if needed, format storage on first use, start
                            the broker in the background and wait until it
                            answers (timeout ${START_TIMEOUT}s). Prints
                            "kafka up on 127.0.0.1:P". A second start on the
                            same port does not start a second broker.
                            --fresh wipes D first (broker must be stopped).
  topic NAME [--partitions N] [--port P]
  delete-topic NAME [--port P]   (tests: a topic deleted by mistake)
                            Create topic NAME (replication factor 1) if it does
                            not exist yet. Default 1 partition.
  group NAME [--port P]     Describe consumer group NAME's members (with their
                            static group.instance.id, if any).
  stop [--port P] [--dir D] SIGTERM the broker, SIGKILL after ${STOP_TIMEOUT}s. Idempotent.
  status [--port P] [--dir D]
                            Exit 0 if up and answering, 1 if running but not
                            answering, 3 if not running.
  logs [--port P] [--dir D] [-n LINES]
                            Show the tail of the broker log.

Defaults: port ${DEFAULT_PORT} (FW_KAFKA_PORT), run dir \$FW_KAFKA_HOME/run-PORT.
If you start with --dir, pass the same --dir to stop/status/logs.

Environment:
  FW_KAFKA_HOME          cache + run dirs (now: $FW_KAFKA_HOME)
  FW_KAFKA_PORT          default PLAINTEXT port (9092)
  FW_KAFKA_HEAP_OPTS     broker heap (default: -Xmx512m -Xms256m)
  FW_KAFKA_JVM_OPTS      extra broker JVM flags
  FW_KAFKA_LOG_LEVEL     broker root log level (default INFO)
  FW_KAFKA_START_TIMEOUT seconds to wait for the broker (default 60)
  FW_KAFKA_STOP_TIMEOUT  seconds before SIGKILL on stop (default 30)
  FW_KAFKA_JAVA          java binary to use (default: \$JAVA_HOME/bin/java or java)
  FW_KAFKA_M2            Maven local repository (default: ~/.m2/repository)
  FW_KAFKA_NO_KCAT=1     probe readiness with the Java admin client, not kcat
EOF
}

log() { echo "kafka.sh: $*" >&2; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools ------

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_update() {
  log "apt-get update"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  APT_UPDATED=1
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  # Fresh images have no package lists at all: update first.
  if [ "$APT_UPDATED" = 0 ] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt_update
  fi
  log "apt-get install $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
        --no-install-recommends "$@" >&2; then
    # Stale lists give 404s / unknown packages: refresh once and retry.
    [ "$APT_UPDATED" = 1 ] && die "apt-get install $* failed"
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
      --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
  fi
}

JAVA=""
java_major() {  # prints the major version of java binary $1 (8 for 1.8), or nothing
  local out
  out=$("$1" -version 2>&1) || return 0
  awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }' <<< "$out"
}

ensure_java() {
  [ -n "$JAVA" ] && return 0
  if [ -n "${FW_KAFKA_JAVA:-}" ]; then
    JAVA=$FW_KAFKA_JAVA
  elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    JAVA=$JAVA_HOME/bin/java
  else
    command -v java >/dev/null 2>&1 || apt_install default-jdk-headless
    JAVA=$(command -v java) || die "java still not found after install"
  fi
  local major
  major=$(java_major "$JAVA")
  [ -n "$major" ] && [ "$major" -ge 17 ] ||
    die "Kafka 4.x needs Java 17+, but $JAVA is version '${major:-?}' (set FW_KAFKA_JAVA or JAVA_HOME)"
}

ensure_mvn() {
  command -v mvn >/dev/null 2>&1 || apt_install maven
}

HAVE_KCAT=""
ensure_kcat() {  # best effort: without kcat we probe with the Java admin tools
  [ -n "$HAVE_KCAT" ] && return 0
  if [ "${FW_KAFKA_NO_KCAT:-0}" = 1 ]; then HAVE_KCAT=0; return 0; fi
  if ! command -v kcat >/dev/null 2>&1; then
    apt_install kcat || true
  fi
  if command -v kcat >/dev/null 2>&1; then HAVE_KCAT=1; else HAVE_KCAT=0; log "kcat unavailable, probing with java"; fi
}

# ---------------------------------------------------------------- fetch ------

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetch_complete() {
  [ -f "$STAMP" ] || return 1
  [ "$(head -n1 "$STAMP")" = "$(pom_hash)" ] || return 1
  local jar
  while IFS= read -r jar; do
    [ -f "$LIB/$jar" ] || return 1
  done < <(tail -n +2 "$STAMP")
}

cmd_fetch() {
  ensure_java
  fetch_complete && { log "jars ready in $LIB"; return 0; }
  mkdir -p "$FW_KAFKA_HOME"
  # Serialise concurrent fetches (e.g. two test jobs starting at once).
  exec 9>"$FW_KAFKA_HOME/.fetch.lock"
  flock 9
  if fetch_complete; then exec 9>&-; log "jars ready in $LIB"; return 0; fi
  ensure_mvn
  local tmp="$FW_KAFKA_HOME/lib.tmp.$$" started=$SECONDS
  rm -rf "$tmp"
  log "fetching Kafka jars with Maven into $LIB (first time only)"
  local mvn_args=(-B -q -Dstyle.color=never -f "$POM" "-Dfw.kafka.lib=$tmp")
  [ -n "${FW_KAFKA_M2:-}" ] && mvn_args+=("-Dmaven.repo.local=$FW_KAFKA_M2")
  # (Maven 3.8 prints stray colour resets even in batch mode: strip them.)
  if ! mvn "${mvn_args[@]}" package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "mvn failed to fetch the Kafka jars (see above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "mvn ran but no kafka_2.13 jar in $tmp"; }
  { pom_hash; (cd "$tmp" && ls -1 -- *.jar); } > "$tmp/.fetched"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  exec 9>&-
  log "fetched $(($(wc -l < "$STAMP") - 1)) jars in $((SECONDS - started))s"
}

# ------------------------------------------------------- broker helpers ------

PORT=""; DIR=""; PARTITIONS=1; FRESH=0; LINES=50; TOPIC=""

parse_opts() {  # sets PORT DIR PARTITIONS FRESH LINES TOPIC
  local allowed=" $1 "; shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --port|--dir|--partitions|-n)
        [[ $allowed == *" $1 "* ]] || die "option $1 not valid here (see --help)"
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
          --port) PORT=$2 ;; --dir) DIR=$2 ;; --partitions) PARTITIONS=$2 ;; -n) LINES=$2 ;;
        esac
        shift 2 ;;
      --port=*|--dir=*|--partitions=*)
        local name=${1%%=*}
        [[ $allowed == *" $name "* ]] || die "option $name not valid here (see --help)"
        case "$name" in
          --port) PORT=${1#*=} ;; --dir) DIR=${1#*=} ;; --partitions) PARTITIONS=${1#*=} ;;
        esac
        shift ;;
      --fresh)
        [[ $allowed == *" --fresh "* ]] || die "option --fresh not valid here"
        FRESH=1; shift ;;
      -h|--help) usage; exit 0 ;;
      -*) die "unknown option: $1 (see --help)" ;;
      *)
        [[ $allowed == *" NAME "* ]] && [ -z "$TOPIC" ] || die "unexpected argument: $1"
        TOPIC=$1; shift ;;
    esac
  done
  PORT=${PORT:-$DEFAULT_PORT}
  [[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad port: $PORT"
  [[ $PARTITIONS =~ ^[0-9]+$ ]] && [ "$PARTITIONS" -ge 1 ] || die "bad partition count: $PARTITIONS"
  [[ $LINES =~ ^[0-9]+$ ]] || die "bad line count: $LINES"
  DIR=${DIR:-$FW_KAFKA_HOME/run-$PORT}
  DIR=$(realpath -m -- "$DIR")
  PIDFILE="$DIR/kafka.pid"
  LOGDIR="$DIR/logs"
}

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

who_listens() { ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' || true; }

alive() {  # $1 pid: running and not a zombie
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$state" != Z ]
}

# Prints the broker's pid if the pid file names a live Kafka JVM started for
# $DIR; removes a stale pid file (dead process, or pid reused by something else).
running_pid() {
  [ -f "$PIDFILE" ] || return 0
  local pid cmdline=""
  pid=$(tr -dc '0-9' < "$PIDFILE" 2>/dev/null) || true
  if [ -n "$pid" ] && alive "$pid"; then
    cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || true
  fi
  if [[ $cmdline == *"kafka.Kafka $DIR/server.properties"* ]]; then
    echo "$pid"
  else
    log "removing stale pid file $PIDFILE${pid:+ (pid $pid)}"
    rm -f "$PIDFILE"
  fi
}

write_tools_log4j() {
  TOOLS_LOG4J="$FW_KAFKA_HOME/tools-log4j2.properties"
  [ -f "$TOOLS_LOG4J" ] && return 0
  mkdir -p "$FW_KAFKA_HOME"
  cat > "$TOOLS_LOG4J" <<'EOF'
# Written by scripts/kafka.sh: the CLI tools only log warnings, to stderr.
name = fraudwatch-kafka-tools
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
EOF
}

kafka_tool() {  # kafka_tool MAIN_CLASS ARGS...
  write_tools_log4j
  "$JAVA" "${TOOL_JVM_OPTS[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" \
    -cp "$LIB/*" "$@"
}

# Does a broker answer metadata requests on 127.0.0.1:$1?
probe() {
  if [ "$HAVE_KCAT" = 1 ]; then
    # (no grep -q: with pipefail, kcat dying of SIGPIPE on a long listing
    # would read as failure)
    timeout 10 kcat -b "127.0.0.1:$1" -L -m 2 2>/dev/null | grep ' brokers:' >/dev/null
  else
    timeout 20 "$JAVA" "${TOOL_JVM_OPTS[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" -cp "$LIB/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$1" --list >/dev/null 2>&1
  fi
}

show_logs() {  # $1 = number of lines
  local f
  for f in "$LOGDIR/kafka.out" "$LOGDIR/server.log"; do
    [ -s "$f" ] || continue
    echo "----- last $1 lines of $f -----" >&2
    tail -n "$1" "$f" >&2
  done
}

write_configs() {  # $1 = controller port
  mkdir -p "$DIR/data" "$LOGDIR"
  cat > "$DIR/server.properties" <<EOF
# Written by scripts/kafka.sh on every start; edits are overwritten.
# Single-node KRaft: this one JVM is both broker and controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$1
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$1
log.dirs=$DIR/data

# One broker: every internal topic has replication factor 1.
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers join groups at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
EOF
  cat > "$DIR/log4j2.properties" <<EOF
# Written by scripts/kafka.sh: everything the broker logs goes to
# \${kafka.logs.dir}/server.log (rolled at 50 MB, 3 kept).
name = fraudwatch-kafka
status = warn
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = \${sys:kafka.logs.dir}/server.log
appender.server.filePattern = \${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = $LOG_LEVEL
rootLogger.appenderRef.server.ref = server
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

pick_controller_port() {  # first free port above (else below) $PORT
  local p
  for p in $(seq $((PORT + 1)) $((PORT + 100))) $(seq $((PORT - 1)) -1 $((PORT - 100))); do
    [ "$p" -ge 1024 ] && [ "$p" -le 65535 ] || continue
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free port near $PORT for the controller listener"
}

# Wait until the broker answers; returns 0 up, 1 timeout, 2 process died.
wait_ready() {  # $1 pid
  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    alive "$1" || return 2
    probe "$PORT" && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# --------------------------------------------------------------- commands ----

cmd_start() {
  parse_opts "--port --dir --fresh" "$@"
  cmd_fetch
  ensure_kcat
  write_tools_log4j
  mkdir -p "$DIR"
  exec 8>"$DIR/.lock"                 # one start/stop at a time per run dir
  flock 8

  local pid started=$SECONDS
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    [ "$FRESH" = 1 ] && die "--fresh: broker already running (pid $pid); stop it first"
    log "already running (pid $pid, $DIR); not starting another"
    wait_ready "$pid" || { show_logs 50; die "running broker (pid $pid) does not answer on 127.0.0.1:$PORT"; }
    echo "kafka up on 127.0.0.1:$PORT"
    return 0
  fi
  if port_in_use "$PORT"; then
    who_listens "$PORT" >&2
    die "port $PORT is already taken by another process (another broker with a different --dir?)"
  fi

  if [ "$FRESH" = 1 ]; then
    # Only ever wipe something that looks like one of our run dirs.
    [ -f "$DIR/server.properties" ] ||
      [ -z "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ] ||
      die "--fresh: $DIR has no server.properties; not wiping a directory kafka.sh did not create"
    log "--fresh: wiping $DIR"
    find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  fi

  # The controller port is recorded in the KRaft metadata at format time, so
  # keep it across restarts of the same run dir.
  local cport
  if [ -f "$DIR/data/meta.properties" ]; then
    [ -f "$DIR/controller.port" ] || die "$DIR is formatted but controller.port is missing; use --fresh"
    cport=$(cat "$DIR/controller.port")
    port_in_use "$cport" && { who_listens "$cport" >&2; die "controller port $cport (fixed for $DIR) is taken; free it or use --fresh"; }
  else
    cport=$(pick_controller_port)
  fi
  write_configs "$cport"

  if [ ! -f "$DIR/data/meta.properties" ]; then
    local cid
    cid=$(kafka_tool kafka.tools.StorageTool random-uuid) || die "StorageTool random-uuid failed"
    log "formatting $DIR/data (cluster id $cid)"
    kafka_tool kafka.tools.StorageTool format --standalone \
        --cluster-id "$cid" --config "$DIR/server.properties" > "$LOGDIR/format.log" 2>&1 ||
      { cat "$LOGDIR/format.log" >&2; die "kafka storage format failed"; }
    echo "$cport" > "$DIR/controller.port"
  fi

  # Keep the previous run's logs for post-mortems, start the new ones empty.
  local f
  for f in kafka.out server.log; do
    [ -f "$LOGDIR/$f" ] && mv -f "$LOGDIR/$f" "$LOGDIR/$f.prev"
  done
  rm -f "$PIDFILE"

  local heap extra
  read -r -a heap <<< "$HEAP_OPTS"
  read -r -a extra <<< "${FW_KAFKA_JVM_OPTS:-}"
  local jvm=( "${heap[@]}"
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dkafka.logs.dir=$LOGDIR" "-Dlog4j2.configurationFile=$DIR/log4j2.properties"
    "${extra[@]}" )
  log "starting broker: 127.0.0.1:$PORT (controller 127.0.0.1:$cport), dir $DIR"
  # setsid: own session, so the broker outlives this script and its terminal.
  # The child writes its own pid (it execs java, so it is the JVM's pid).
  # fds 8/9 (our locks) must not leak into the broker.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' _ \
      "$PIDFILE" "$JAVA" "${jvm[@]}" -cp "$LIB/*" kafka.Kafka "$DIR/server.properties" \
      < /dev/null >> "$LOGDIR/kafka.out" 2>&1 8>&- 9>&- &

  local _
  for _ in $(seq 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
  [ -s "$PIDFILE" ] || die "broker did not write its pid file $PIDFILE"
  pid=$(cat "$PIDFILE")

  local rc=0
  wait_ready "$pid" || rc=$?
  if [ "$rc" != 0 ]; then
    show_logs 50
    if [ "$rc" = 2 ]; then
      rm -f "$PIDFILE"
      die "broker exited during startup (logs above, in $LOGDIR)"
    fi
    log "broker not answering after ${START_TIMEOUT}s; stopping it"
    stop_pid "$pid"
    die "broker did not come up on 127.0.0.1:$PORT within ${START_TIMEOUT}s (logs above, in $LOGDIR)"
  fi
  log "up after $((SECONDS - started))s (pid $pid)"
  echo "kafka up on 127.0.0.1:$PORT"
}

stop_pid() {  # SIGTERM, then SIGKILL after STOP_TIMEOUT
  local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT))
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "pid $pid still alive after ${STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local _
      for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
}

cmd_stop() {
  parse_opts "--port --dir" "$@"
  if [ ! -d "$DIR" ]; then echo "kafka not running on 127.0.0.1:$PORT"; return 0; fi
  exec 8>"$DIR/.lock"
  flock 8
  local pid started=$SECONDS
  pid=$(running_pid)
  if [ -z "$pid" ]; then echo "kafka not running on 127.0.0.1:$PORT"; return 0; fi
  stop_pid "$pid"
  echo "kafka stopped on 127.0.0.1:$PORT (pid $pid, $((SECONDS - started))s)"
}

cmd_status() {
  parse_opts "--port --dir" "$@"
  local pid
  pid=$(running_pid 2>/dev/null)
  if [ -z "$pid" ]; then
    echo "kafka not running on 127.0.0.1:$PORT (dir $DIR)"
    port_in_use "$PORT" && log "note: port $PORT is in use by another process (a broker started with another --dir?)"
    return 3
  fi
  ensure_java; ensure_kcat; write_tools_log4j
  if probe "$PORT"; then
    echo "kafka up on 127.0.0.1:$PORT (pid $pid, dir $DIR)"
  else
    echo "kafka process $pid running but not answering on 127.0.0.1:$PORT (dir $DIR)"
    return 1
  fi
}

cmd_topic() {
  parse_opts "--port --partitions NAME" "$@"
  [ -n "$TOPIC" ] || die "usage: kafka.sh topic NAME [--partitions N] [--port P]"
  ensure_java
  fetch_complete || die "no Kafka jars in $LIB; run: scripts/kafka.sh fetch (or start)"
  # Fail fast: the admin client would otherwise retry for a minute.
  port_in_use "$PORT" || die "no broker listening on 127.0.0.1:$PORT (scripts/kafka.sh start --port $PORT)"
  ensure_kcat; write_tools_log4j
  probe "$PORT" || die "broker on 127.0.0.1:$PORT does not answer (scripts/kafka.sh status --port $PORT)"
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --create --if-not-exists --topic "$TOPIC" \
    --partitions "$PARTITIONS" --replication-factor 1 >&2 ||
    die "could not create topic $TOPIC on 127.0.0.1:$PORT (is the broker up? scripts/kafka.sh status --port $PORT)"
  # --if-not-exists keeps an existing topic as it is: say so if it differs.
  if command -v kcat >/dev/null 2>&1; then
    local n
    n=$(kcat -b "127.0.0.1:$PORT" -L -t "$TOPIC" -m 5 2>/dev/null | grep -c '^ *partition ' || true)
    if [ -n "$n" ] && [ "$n" != 0 ] && [ "$n" != "$PARTITIONS" ]; then
      log "warning: topic $TOPIC already exists with $n partitions (asked for $PARTITIONS)"
    fi
  fi
  echo "topic $TOPIC ready on 127.0.0.1:$PORT"
}

# The members of a consumer group, with their static instance ids (the
# GROUP-INSTANCE-ID column; "None" for a dynamic member).
cmd_group() {
  parse_opts "--port NAME" "$@"
  [ -n "$TOPIC" ] || die "usage: kafka.sh group NAME [--port P]"
  ensure_java
  fetch_complete || die "no Kafka jars in $LIB; run: scripts/kafka.sh fetch (or start)"
  port_in_use "$PORT" || die "no broker listening on 127.0.0.1:$PORT (scripts/kafka.sh start --port $PORT)"
  write_tools_log4j
  kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "127.0.0.1:$PORT" --describe --group "$TOPIC" --members --verbose
}

# Deletes a topic (tests: a state topic deleted by mistake, docs/scaling.md).
cmd_delete_topic() {
  parse_opts "--port NAME" "$@"
  [ -n "$TOPIC" ] || die "usage: kafka.sh delete-topic NAME [--port P]"
  ensure_java
  port_in_use "$PORT" || die "no broker listening on 127.0.0.1:$PORT"
  write_tools_log4j
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --delete --topic "$TOPIC" >&2 || die "could not delete topic $TOPIC on 127.0.0.1:$PORT"
  echo "topic $TOPIC deleted on 127.0.0.1:$PORT"
}

cmd_logs() {
  parse_opts "--port --dir -n" "$@"
  [ -f "$LOGDIR/server.log" ] || die "no log at $LOGDIR/server.log"
  tail -n "$LINES" "$LOGDIR/server.log"
}

main() {
  [ $# -ge 1 ] || { usage >&2; exit 2; }
  local cmd=$1; shift
  case "$cmd" in
    fetch)
      case "${1:-}" in -h|--help) usage; exit 0 ;; esac
      [ $# -eq 0 ] || die "fetch takes no arguments"
      cmd_fetch ;;
    start)  cmd_start "$@" ;;
    stop)   cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    topic)  cmd_topic "$@" ;;
    delete-topic) cmd_delete_topic "$@" ;;
    group)  cmd_group "$@" ;;
    logs)   cmd_logs "$@" ;;
    -h|--help|help) usage ;;
    *) die "unknown command: $cmd (see scripts/kafka.sh --help)" ;;
  esac
}

main "$@"
