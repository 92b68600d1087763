package kstreams.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * Java Kafka Streams reference for kstreams' benchmarks: runs one of the workloads W1-W6 with
 * one stream thread, the same topologies, commit interval and cache size as the kstreams
 * workers (bench/workers/kstreams.ts), and speaks the harness's line protocol on stdout
 * ({@code @@bench {json}}): "ready" when RUNNING, "first" when the first input record reaches
 * the topology, "stats" before exiting after "stop" on stdin.
 *
 * <p>Arguments: {@code --workload=W1 --bootstrap=host:port --app-id=... --guarantee=alos|eos
 * --commit-ms=100 --cache-bytes=10485760 --state-dir=... --in=topic [--in2=topic] --out=topic}.
 *
 * <p>The data rules (value layout, W1 filter, W6 group field, window sizes) mirror
 * bench/lib/data.ts: keep them in step.
 */
public final class Reference {
    private static final String PREFIX = "@@bench ";
    private static final AtomicLong FIRST = new AtomicLong();
    private static final AtomicLong HEAP_PEAK = new AtomicLong();

    private Reference() {}

    static synchronized void emit(String json) {
        System.out.println(PREFIX + json);
        System.out.flush();
    }

    static void markFirst() {
        if (FIRST.get() == 0) {
            long now = System.currentTimeMillis();
            if (FIRST.compareAndSet(0, now)) emit("{\"type\":\"first\",\"t\":" + now + "}");
        }
    }

    static String jsonString(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (String a : argv) {
            int eq = a.indexOf('=');
            if (!a.startsWith("--") || eq < 0) throw new IllegalArgumentException("bad argument " + a);
            args.put(a.substring(2, eq), a.substring(eq + 1));
        }
        String workload = req(args, "workload");
        String in = req(args, "in");
        String in2 = args.get("in2");
        String out = req(args, "out");

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, req(args, "app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, req(args, "bootstrap"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(req(args, "commit-ms")));
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.parseLong(req(args, "cache-bytes")));
        props.put(StreamsConfig.STATE_DIR_CONFIG, req(args, "state-dir"));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
            "eos".equals(req(args, "guarantee")) ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        Serde<String> str = Serdes.String();
        Serde<Long> lng = Serdes.Long();
        StreamsBuilder b = new StreamsBuilder();
        switch (workload) {
            case "W1": {
                b.stream(in, Consumed.with(str, str))
                    .peek((k, v) -> markFirst())
                    .filter((k, v) -> Long.parseLong(v.substring(0, 10)) % 4 != 0)
                    .mapValues(v -> v.toUpperCase(Locale.ROOT))
                    .to(out, Produced.with(str, str));
                break;
            }
            case "W2": {
                b.stream(in, Consumed.with(str, str))
                    .peek((k, v) -> markFirst())
                    .groupByKey()
                    .count(Materialized.as("counts"))
                    .toStream()
                    .to(out, Produced.with(str, lng));
                break;
            }
            case "W3": {
                b.stream(in, Consumed.with(str, str))
                    .peek((k, v) -> markFirst())
                    .groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(60_000), Duration.ofMillis(30_000)))
                    .count(Materialized.as("wcounts"))
                    .toStream()
                    .map((wk, v) -> KeyValue.pair(wk.key() + "@" + wk.window().start(), v))
                    .to(out, Produced.with(str, lng));
                break;
            }
            case "W4": {
                KTable<String, String> table = b.table(req(args, "in2"), Consumed.with(str, str), Materialized.as("table"));
                b.stream(in, Consumed.with(str, str))
                    .peek((k, v) -> markFirst())
                    .join(table, (v, tv) -> v.substring(0, 50) + tv.substring(0, 50))
                    .to(out, Produced.with(str, str));
                break;
            }
            case "W5": {
                KStream<String, String> left = b.stream(in, Consumed.with(str, str)).peek((k, v) -> markFirst());
                KStream<String, String> right = b.stream(req(args, "in2"), Consumed.with(str, str)).peek((k, v) -> markFirst());
                left.join(right,
                        (l, r) -> l.substring(0, 50) + r.substring(0, 50),
                        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(1_000), Duration.ofMillis(3_600_000)),
                        StreamJoined.<String, String, String>with(str, str, str).withStoreName("join"))
                    .to(out, Produced.with(str, str));
                break;
            }
            case "W6": {
                b.stream(in, Consumed.with(str, str))
                    .peek((k, v) -> markFirst())
                    .selectKey((k, v) -> v.substring(11, 19))
                    .groupByKey(Grouped.as("rekey"))
                    .count(Materialized.as("gcounts"))
                    .toStream()
                    .to(out, Produced.with(str, lng));
                break;
            }
            default:
                throw new IllegalArgumentException("unknown workload " + workload + (in2 == null ? "" : ""));
        }

        ScheduledExecutorService heap = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "bench-heap");
            t.setDaemon(true);
            return t;
        });
        heap.scheduleAtFixedRate(() -> {
            long used = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
            HEAP_PEAK.accumulateAndGet(used, Math::max);
        }, 0, 200, TimeUnit.MILLISECONDS);

        KafkaStreams streams = new KafkaStreams(b.build(), props);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                emit("{\"type\":\"ready\",\"t\":" + System.currentTimeMillis() + "}");
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            emit("{\"type\":\"error\",\"message\":" + jsonString(String.valueOf(e)) + "}");
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = stdin.readLine()) != null; ) {
            if (line.contains("stop")) break;
        }
        streams.close(Duration.ofSeconds(30));
        emit("{\"type\":\"stats\",\"heapPeakBytes\":" + HEAP_PEAK.get() + "}");
        System.exit(0);
    }

    private static String req(Map<String, String> args, String name) {
        String v = args.get(name);
        if (v == null) throw new IllegalArgumentException("missing --" + name);
        return v;
    }
}
