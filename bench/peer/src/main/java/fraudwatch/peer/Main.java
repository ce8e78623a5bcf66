/* Main.java — the Kafka Streams peer of `fraudwatch run` (bench/peer/README.md).
 *
 *   java -cp 'target/peer.jar:target/lib/*' fraudwatch.peer.Main
 *        --bootstrap HOST:PORT --input TOPIC --alerts TOPIC --rules DIR
 *        --ids R101,R105,R201,R302,R401 --count N --app-id ID --state-dir DIR
 *        [--threads T] [--commit-ms 5000] [--passes 1|2] [--alerts-warm TOPIC]
 *        [--repartition auto|always|never] [--timeout-s 900]
 *
 * Owns the application: its topology, its configuration and its timing.  It
 * drains TOPIC from the start with a fresh application id, applies the rules
 * (Engine.java) and writes alerts {"rule_id","subject","event_id",...} keyed
 * by subject to the alert topic, and when N input events are processed (and
 * every keyed update sent through the repartition topic has met its state)
 * prints one line on stdout:
 *
 *   peer-result {"pass":1,"events":N,"span_s":S,"events_per_s":R,"cpu_s":C,
 *                "cpu_total_s":T,"hwm_kib":K,"alerts":A,"malformed":M,...}
 *
 * events_per_s is (N - 1) / S, S from the first event processed to the
 * N-th; cpu_s is the process's CPU time over S, cpu_total_s since the JVM
 * started; hwm_kib the JVM's peak RSS (VmHWM).  With --passes 2 a second
 * KafkaStreams instance in the same JVM (application id ID-warm, fresh state)
 * drains the topic again: the warm-JVM figures (its alerts to --alerts-warm,
 * if given, so each pass's alert set can be compared on its own).
 *
 * The topology: with one input partition (auto) every event is handled in
 * one processor with one RocksDB store, so one key's events meet its state
 * without leaving the task.  With more, the keyed updates are repartitioned
 * by rule key first (Repartitioned, `ID-keyed-repartition`), the one way a
 * Streams application can bring a key's events from several input
 * partitions together; plain rules alert straight from the input task.
 * Kafka Streams defaults otherwise: at-least-once, RocksDB store with a
 * changelog topic, record cache; commit.interval.ms = --commit-ms (the
 * daemon's checkpoint interval), num.stream.threads = --threads.  Internal
 * topics are deleted when the run ends.
 */
package fraudwatch.peer;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class Main {
    static final String STORE = "fw-state";

    // Progress of the running pass, shared by the stream threads.
    static final AtomicLong events = new AtomicLong();
    static final AtomicLong malformed = new AtomicLong();
    static final AtomicLong keyedSent = new AtomicLong();
    static final AtomicLong keyedDone = new AtomicLong();
    static final AtomicLong alerts = new AtomicLong();
    static volatile long firstNanos, firstCpu;

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static void counted() {
        if (events.incrementAndGet() == 1) {
            firstNanos = System.nanoTime();
            firstCpu = cpuNanos();
        }
    }

    /** One input partition: route and apply in one task. */
    static final class AllProcessor implements Processor<String, String, String, String> {
        final Engine engine;
        ProcessorContext<String, String> ctx;
        KeyValueStore<String, byte[]> store;

        AllProcessor(Engine engine) {
            this.engine = engine;
        }

        @Override
        public void init(ProcessorContext<String, String> ctx) {
            this.ctx = ctx;
            this.store = ctx.getStateStore(STORE);
        }

        @Override
        public void process(Record<String, String> rec) {
            Event e = rec.value() == null ? null : Event.parse(rec.value());
            if (e == null) {
                malformed.incrementAndGet();
            } else {
                engine.route(e, new Engine.Out() {
                    public void alert(String subject, String json) {
                        alerts.incrementAndGet();
                        ctx.forward(new Record<>(subject, json, rec.timestamp()));
                    }

                    public void keyed(String key, Engine.Update u) {
                        String a = engine.apply(store, key, u);
                        if (a != null)
                            alert(key, a);
                    }
                });
            }
            counted();
        }
    }

    /** Several input partitions, first half: plain alerts ('A') and keyed updates ('K'). */
    static final class RouteProcessor implements Processor<String, String, String, String> {
        final Engine engine;
        ProcessorContext<String, String> ctx;

        RouteProcessor(Engine engine) {
            this.engine = engine;
        }

        @Override
        public void init(ProcessorContext<String, String> ctx) {
            this.ctx = ctx;
        }

        @Override
        public void process(Record<String, String> rec) {
            Event e = rec.value() == null ? null : Event.parse(rec.value());
            if (e == null) {
                malformed.incrementAndGet();
            } else {
                engine.route(e, new Engine.Out() {
                    public void alert(String subject, String json) {
                        alerts.incrementAndGet();
                        ctx.forward(new Record<>(subject, "A" + json, rec.timestamp()));
                    }

                    public void keyed(String key, Engine.Update u) {
                        keyedSent.incrementAndGet();
                        ctx.forward(new Record<>(key, "K" + u.encode(), rec.timestamp()));
                    }
                });
            }
            counted();
        }
    }

    /** Several input partitions, second half: keyed updates against the store. */
    static final class KeyedProcessor implements Processor<String, String, String, String> {
        final Engine engine;
        ProcessorContext<String, String> ctx;
        KeyValueStore<String, byte[]> store;

        KeyedProcessor(Engine engine) {
            this.engine = engine;
        }

        @Override
        public void init(ProcessorContext<String, String> ctx) {
            this.ctx = ctx;
            this.store = ctx.getStateStore(STORE);
        }

        @Override
        public void process(Record<String, String> rec) {
            String a = engine.apply(store, rec.key(), Engine.Update.decode(rec.value()));
            if (a != null) {
                alerts.incrementAndGet();
                ctx.forward(new Record<>(rec.key(), a, rec.timestamp()));
            }
            keyedDone.incrementAndGet();
        }
    }

    static Topology topology(Engine engine, String input, String alertTopic, boolean repartition) {
        StreamsBuilder b = new StreamsBuilder();
        b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE),
                Serdes.String(), Serdes.ByteArray()));
        Produced<String, String> out = Produced.with(Serdes.String(), Serdes.String());
        KStream<String, String> src = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        if (!repartition) {
            src.process(() -> new AllProcessor(engine), STORE).to(alertTopic, out);
            return b.build();
        }
        KStream<String, String> routed = src.process(() -> new RouteProcessor(engine));
        routed.filter((k, v) -> v.charAt(0) == 'A').mapValues(v -> v.substring(1)).to(alertTopic, out);
        routed.filter((k, v) -> v.charAt(0) == 'K').mapValues(v -> v.substring(1))
                .repartition(Repartitioned.<String, String>as("keyed")
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.String()))
                .process(() -> new KeyedProcessor(engine), STORE)
                .to(alertTopic, out);
        return b.build();
    }

    static long hwmKib() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status")))
                if (l.startsWith("VmHWM:"))
                    return Long.parseLong(l.split("\\s+")[1]);
        } catch (Exception e) {
            // not Linux: reported as -1
        }
        return -1;
    }

    static void die(String msg) {
        System.err.println("peer: " + msg);
        System.exit(1);
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length)
                die("usage: see the top of bench/peer/src/main/java/fraudwatch/peer/Main.java "
                        + "(bad argument " + argv[i] + ")");
            a.put(argv[i].substring(2), argv[++i]);
        }
        for (String k : new String[] { "bootstrap", "input", "alerts", "rules", "ids", "count",
                "app-id", "state-dir" })
            if (!a.containsKey(k))
                die("--" + k + " is required");
        Set<String> ids = new HashSet<>(List.of(a.get("ids").split(",")));
        Engine engine = new Engine(Rules.load(Path.of(a.get("rules")), ids));
        long count = Long.parseLong(a.get("count"));
        int threads = Integer.parseInt(a.getOrDefault("threads", "1"));
        int passes = Integer.parseInt(a.getOrDefault("passes", "1"));
        double timeout = Double.parseDouble(a.getOrDefault("timeout-s", "900"));
        String mode = a.getOrDefault("repartition", "auto");
        String appId = a.get("app-id");

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        int partitions;
        try (Admin admin = Admin.create(ap)) {
            partitions = admin.describeTopics(List.of(a.get("input"))).allTopicNames().get()
                    .get(a.get("input")).partitions().size();
        }
        boolean repartition = mode.equals("always") || (mode.equals("auto") && partitions > 1);

        for (int pass = 1; pass <= passes; pass++) {
            String id = pass == 1 ? appId : appId + "-warm";
            Properties p = new Properties();
            p.put(StreamsConfig.APPLICATION_ID_CONFIG, id);
            p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
            p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Integer.parseInt(a.getOrDefault("commit-ms", "5000")));
            p.put(StreamsConfig.STATE_DIR_CONFIG, a.get("state-dir"));
            p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
            p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
            events.set(0);
            malformed.set(0);
            keyedSent.set(0);
            keyedDone.set(0);
            alerts.set(0);
            firstNanos = 0;
            final Throwable[] failed = new Throwable[1];
            String alertTopic = pass == 1 ? a.get("alerts") : a.getOrDefault("alerts-warm", a.get("alerts"));
            KafkaStreams ks = new KafkaStreams(topology(engine, a.get("input"), alertTopic, repartition), p);
            ks.setUncaughtExceptionHandler(ex -> {
                failed[0] = ex;
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            long t0 = System.nanoTime();
            ks.start();
            long doneNanos, doneCpu;
            for (;;) {
                Thread.sleep(20);
                if (events.get() >= count && keyedDone.get() >= keyedSent.get()) {
                    doneNanos = System.nanoTime();
                    doneCpu = cpuNanos();
                    break;
                }
                if (failed[0] != null)
                    die("stream thread failed: " + failed[0]);
                if ((System.nanoTime() - t0) / 1e9 > timeout)
                    die("timeout after " + timeout + " s at " + events.get() + " of " + count + " events");
            }
            double span = (doneNanos - firstNanos) / 1e9;
            ks.close(Duration.ofSeconds(60));
            ks.cleanUp();
            try (Admin admin = Admin.create(ap)) {
                List<String> internal = new ArrayList<>();
                for (String t : admin.listTopics().names().get())
                    if (t.startsWith(id + "-"))
                        internal.add(t);
                admin.deleteTopics(internal).all().get();
            }
            System.out.printf(java.util.Locale.ROOT,
                    "peer-result {\"pass\":%d,\"events\":%d,\"span_s\":%.3f,\"events_per_s\":%.1f,"
                            + "\"cpu_s\":%.3f,\"cpu_total_s\":%.3f,\"hwm_kib\":%d,\"alerts\":%d,"
                            + "\"malformed\":%d,\"keyed_updates\":%d,\"partitions\":%d,\"threads\":%d,"
                            + "\"repartition\":%b,\"join_s\":%.3f}%n",
                    pass, events.get(), span, span > 0 ? (events.get() - 1) / span : 0.0,
                    (doneCpu - firstCpu) / 1e9, doneCpu / 1e9, hwmKib(), alerts.get(), malformed.get(),
                    keyedSent.get(), partitions, threads, repartition, (firstNanos - t0) / 1e9);
            System.out.flush();
        }
        System.exit(0);
    }
}
