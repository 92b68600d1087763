package kstreams.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.function.Function;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Record-caching (KIP-63) fidelity check: replays the driver-level scenarios of
 * test/unit/record-caching.test.ts ("record caching in the TopologyTestDriver (commit after each
 * record)") on Kafka Streams 3.9.2's own TopologyTestDriver, each with caching enabled (the
 * default, statestore.cache.max.bytes 10 MiB) and with {@code withCachingDisabled()}, and prints
 * every output record as {@code key value timestamp} in the text form our tests use.
 *
 * <p>Run by hand only (not part of the bench, CI or {@code npm test}), from the repository root:
 *
 * <pre>
 * cd bench/reference &amp;&amp; mvn -B -q -Dmaven.repo.local=/work/main/.cache/m2 package \
 *   &amp;&amp; java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp target/classes:$(cat target/classpath.txt) kstreams.bench.CachingFidelity
 * </pre>
 */
public final class CachingFidelity {
  private static final Serde<String> S = Serdes.String();
  private static final Serde<Long> L = Serdes.Long();

  private CachingFidelity() {}

  private record In(String key, String value, long ts, String trace) {
    In(String key, String value, long ts) {
      this(key, value, ts, null);
    }
  }

  private static Properties props(Long cacheMaxBytes) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, "app");
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    try {
      p.put(StreamsConfig.STATE_DIR_CONFIG, java.nio.file.Files.createTempDirectory("caching-fidelity").toString());
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    if (cacheMaxBytes != null) {
      p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheMaxBytes);
    }
    return p;
  }

  /** Pipes {@code inputs} into {@code inTopic} and prints topic "out" (string keys, {@code valueSerde} values). */
  private static <V> List<String> run(
      StreamsBuilder b, String inTopic, Serde<?> inValueSerde, List<In> inputs, Serde<V> valueSerde, Long cacheMaxBytes) {
    List<String> lines = new ArrayList<>();
    try (TopologyTestDriver d = new TopologyTestDriver(b.build(), props(cacheMaxBytes), java.time.Instant.ofEpochMilli(0))) {
      @SuppressWarnings("unchecked")
      TestInputTopic<String, Object> input =
          d.createInputTopic(inTopic, S.serializer(), (org.apache.kafka.common.serialization.Serializer<Object>) inValueSerde.serializer());
      for (In r : inputs) {
        RecordHeaders h = new RecordHeaders();
        if (r.trace() != null) h.add("trace", r.trace().getBytes());
        Object v = inValueSerde == L ? (Object) Long.valueOf(r.value()) : r.value();
        input.pipeInput(new TestRecord<>(r.key(), v, h, r.ts()));
      }
      TestOutputTopic<String, V> out = d.createOutputTopic("out", S.deserializer(), valueSerde.deserializer());
      for (TestRecord<String, V> r : out.readRecordsToList()) {
        var trace = r.headers().lastHeader("trace");
        lines.add("[" + r.key() + ", " + r.value() + ", " + r.timestamp()
            + (trace == null ? "" : ", " + new String(trace.value())) + "]");
      }
    }
    return lines;
  }

  private static void print(String name, List<String> lines) {
    System.out.println("== " + name);
    for (String l : lines) System.out.println("  " + l);
  }

  private static KStream<String, String> words(StreamsBuilder b) {
    return b.stream("in", Consumed.with(S, S)).flatMapValues(v -> List.of(v.split(" ")));
  }

  private static Materialized<String, Long, KeyValueStore<Bytes, byte[]>> kv(String name, boolean caching) {
    Materialized<String, Long, KeyValueStore<Bytes, byte[]>> m = Materialized.as(name);
    return caching ? m : m.withCachingDisabled();
  }

  private static Materialized<String, Long, WindowStore<Bytes, byte[]>> win(String name, boolean caching) {
    Materialized<String, Long, WindowStore<Bytes, byte[]>> m = Materialized.as(name);
    return caching ? m : m.withCachingDisabled();
  }

  private static Materialized<String, Long, SessionStore<Bytes, byte[]>> ses(String name, boolean caching) {
    Materialized<String, Long, SessionStore<Bytes, byte[]>> m = Materialized.as(name);
    return caching ? m : m.withCachingDisabled();
  }

  private static void both(String name, Function<Boolean, List<String>> scenario) {
    print(name + " (cached)", scenario.apply(true));
    print(name + " (withCachingDisabled)", scenario.apply(false));
  }

  public static void main(String[] args) {
    both("word count per key", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().count(kv("counts", caching)).toStream().to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("k", "a b c", 5, "first"), new In("k", "d e", 7, "second")), L, null);
    });

    {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().count(kv("counts", true)).toStream().to("out", Produced.with(S, L));
      print("word count per key, statestore.cache.max.bytes 0", run(b, "in", S, List.of(new In("k", "a b c", 5)), L, 0L));
    }

    both("count -> groupBy -> reduce (old values)", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().count(kv("c", caching))
          .groupBy((k, v) -> KeyValue.pair("total", v), Grouped.with(S, L))
          .reduce((agg, v) -> agg + v, (agg, v) -> agg - v, kv("total", true).withValueSerde(L))
          .toStream().to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("x", "a b c", 1), new In("y", "a", 2), new In("x", "d e", 3)), L, null);
    });

    {
      StreamsBuilder b = new StreamsBuilder();
      Materialized<String, String, KeyValueStore<Bytes, byte[]>> m = Materialized.as("t");
      words(b).toTable(m).toStream().to("out", Produced.with(S, S));
      print("toTable (cached)", run(b, "in", S, List.of(new In("k", "v1 v2 v3", 1)), S, null));
    }

    {
      StreamsBuilder b = new StreamsBuilder();
      b.table("t", Consumed.with(S, L)).filter((k, v) -> v % 2 == 1, kv("odd", false).withValueSerde(L))
          .toStream().to("out", Produced.with(S, L));
      print("materialized filter (withCachingDisabled)", run(b, "t", L, List.of(new In("a", "1", 1), new In("b", "2", 2)), L, null));
    }

    both("count -> suppress(untilTimeLimit 10)", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().count(kv("c", caching))
          .suppress(Suppressed.untilTimeLimit(Duration.ofMillis(10), Suppressed.BufferConfig.unbounded()))
          .toStream().to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 0), new In("b", "x", 3), new In("a", "z", 8),
          new In("c", "x", 11), new In("a", "x x x", 12), new In("d", "x", 30)), L, null);
    });

    both("tumbling windowed count", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(10)))
          .count(win("w", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "@" + w.window().start(), v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 1), new In("a", "z", 12)), L, null);
    });

    both("session count", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapWithNoGrace(Duration.ofMillis(5)))
          .count(ses("s", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "[" + w.window().start() + "," + w.window().end() + "]", v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 1), new In("a", "z", 3)), L, null);
    });

    both("sliding-window count", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey()
          .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(10), Duration.ofMillis(100)))
          .count(win("s", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "[" + w.window().start() + "," + w.window().end() + "]", v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 100), new In("a", "z", 105), new In("a", "u v", 103)), L, null);
    });

    both("windowed count -> groupBy -> reduce (old values)", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(10)))
          .count(win("w", caching))
          .groupBy((w, v) -> KeyValue.pair("total", v), Grouped.with(S, L))
          .reduce((agg, v) -> agg + v, (agg, v) -> agg - v, kv("total", true).withValueSerde(L))
          .toStream().to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("x", "a b c", 1), new In("y", "a", 2), new In("x", "d e", 3),
          new In("x", "f", 14)), L, null);
    });

    both("emit-on-window-close tumbling count", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(10)))
          .emitStrategy(EmitStrategy.onWindowClose())
          .count(win("w", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "@" + w.window().start(), v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 1), new In("b", "x", 5), new In("a", "z", 12),
          new In("a", "z", 25)), L, null);
    });
    // Beyond the unit tests: flush order across keys and windows.
    both("count by word (repartition)", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupBy((k, v) -> v).count(kv("c", caching)).toStream().to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("k", "a b a", 1), new In("k", "c a", 2)), L, null);
    });

    both("hopping windowed count (size 10, advance 5)", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey()
          .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(10)).advanceBy(Duration.ofMillis(5)))
          .count(win("w", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "@" + w.window().start(), v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x y", 7), new In("b", "x", 8), new In("a", "z", 12)), L, null);
    });

    // "z w" at 5 reaches back to the session [1,1], which the store below already treats as
    // expired (retention gap + grace = 5 ms, stream time 10): uncached, Kafka Streams does not find
    // it; cached, it still reads it from the cache (flushed entries stay there until evicted).
    both("session count, one record merging two sessions", caching -> {
      StreamsBuilder b = new StreamsBuilder();
      words(b).groupByKey().windowedBy(SessionWindows.ofInactivityGapWithNoGrace(Duration.ofMillis(5)))
          .count(ses("s", caching)).toStream()
          .map((w, v) -> KeyValue.pair(w.key() + "[" + w.window().start() + "," + w.window().end() + "]", v))
          .to("out", Produced.with(S, L));
      return run(b, "in", S, List.of(new In("a", "x", 1), new In("a", "y", 10), new In("a", "z w", 5)), L, null);
    });
  }
}
