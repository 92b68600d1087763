import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * An independent verifier's view of a topic, with Kafka's own Java clients (no kafkajs), driven by
 * test/chaos/tools/java-reader.ts. Output is one tab-separated line per item on stdout:
 *
 * <pre>
 * read &lt;bootstrap&gt; &lt;topic&gt; &lt;timeoutMs&gt; &lt;openTxnWaitMs&gt;
 *   R partition offset timestamp key value   (key/value base64 of the bytes, "-" for null)
 *   D count                                   (done)
 * open-transactions &lt;bootstrap&gt; [topic ...]
 *   T transactionalId producerId epoch state startTimeMs timeoutMs topic-partition,...
 *   H topic partition producerId epoch transactionStartOffset lastTimestamp   (a partition's open transaction)
 * </pre>
 *
 * A failure prints {@code E message} and exits with 2.
 */
public final class ReadCommitted {
  private ReadCommitted() {}

  public static void main(String[] args) {
    try {
      if (args.length >= 5 && args[0].equals("read")) {
        read(args[1], args[2], Long.parseLong(args[3]), Long.parseLong(args[4]));
      } else if (args.length >= 2 && args[0].equals("open-transactions")) {
        List<String> topics = new ArrayList<>();
        for (int i = 2; i < args.length; i++) topics.add(args[i]);
        openTransactions(args[1], topics);
      } else {
        fail("usage: read <bootstrap> <topic> <timeoutMs> <openTxnWaitMs> | open-transactions <bootstrap> [topic ...]");
      }
      System.out.flush();
      System.exit(0);
    } catch (Exception e) {
      fail(e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  private static void fail(String message) {
    System.out.flush();
    System.out.println("E\t" + message.replace('\n', ' ').replace('\t', ' '));
    System.out.flush();
    System.exit(2);
  }

  private static Properties common(String bootstrap) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    return p;
  }

  private static void read(String bootstrap, String topic, long timeoutMs, long openTxnWaitMs) throws Exception {
    long deadline = System.currentTimeMillis() + timeoutMs;
    Properties cp = common(bootstrap);
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "kstreams-java-reader");
    cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    try (Admin admin = Admin.create(common(bootstrap));
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())));
      if (infos == null || infos.isEmpty()) {
        fail("unknown topic " + topic);
      }
      List<TopicPartition> tps = infos.stream().map(i -> new TopicPartition(i.topic(), i.partition())).collect(Collectors.toList());

      // The end of a read_committed read is the last stable offset; it equals the high watermark
      // unless a transaction is open on the partition.
      long stableDeadline = Math.min(deadline, System.currentTimeMillis() + openTxnWaitMs);
      Map<TopicPartition, Long> stable;
      Map<TopicPartition, Long> high;
      for (;;) {
        stable = endOffsets(admin, tps, IsolationLevel.READ_COMMITTED);
        high = endOffsets(admin, tps, IsolationLevel.READ_UNCOMMITTED);
        boolean open = false;
        for (TopicPartition tp : tps) open |= stable.get(tp) < high.get(tp);
        if (!open) break;
        if (System.currentTimeMillis() >= stableDeadline) {
          List<String> parts = new ArrayList<>();
          for (TopicPartition tp : tps) {
            if (stable.get(tp) < high.get(tp)) {
              parts.add("open transaction on " + tp.topic() + "-" + tp.partition() + " (last stable offset " + stable.get(tp) + ", high watermark " + high.get(tp) + ")");
            }
          }
          fail(String.join("; ", parts) + " after waiting " + openTxnWaitMs + " ms");
        }
        Thread.sleep(200);
      }

      Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())));
      List<TopicPartition> pending = new ArrayList<>();
      for (TopicPartition tp : tps) if (begin.get(tp) < stable.get(tp)) pending.add(tp);
      consumer.assign(pending);
      consumer.seekToBeginning(pending);
      Base64.Encoder b64 = Base64.getEncoder();
      long count = 0;
      StringBuilder line = new StringBuilder();
      while (!pending.isEmpty()) {
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
          List<String> parts = new ArrayList<>();
          for (TopicPartition tp : pending) parts.add(tp.topic() + "-" + tp.partition() + " at " + consumer.position(tp) + " of " + stable.get(tp));
          fail("timed out after " + timeoutMs + " ms reading " + topic + ": " + String.join(", ", parts));
        }
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
          TopicPartition tp = new TopicPartition(r.topic(), r.partition());
          if (r.offset() >= stable.get(tp)) continue;
          line.setLength(0);
          line.append("R\t").append(r.partition()).append('\t').append(r.offset()).append('\t').append(r.timestamp()).append('\t')
              .append(r.key() == null ? "-" : b64.encodeToString(r.key())).append('\t')
              .append(r.value() == null ? "-" : b64.encodeToString(r.value()));
          System.out.println(line);
          count++;
        }
        List<TopicPartition> done = new ArrayList<>();
        for (TopicPartition tp : pending) if (consumer.position(tp) >= stable.get(tp)) done.add(tp);
        if (!done.isEmpty()) {
          pending.removeAll(done);
          consumer.pause(done);
        }
      }
      System.out.println("D\t" + count);
    }
  }

  private static Map<TopicPartition, Long> endOffsets(Admin admin, List<TopicPartition> tps, IsolationLevel level) throws Exception {
    Map<TopicPartition, OffsetSpec> request = new HashMap<>();
    for (TopicPartition tp : tps) request.put(tp, OffsetSpec.latest());
    Map<TopicPartition, Long> result = new HashMap<>();
    admin.listOffsets(request, new ListOffsetsOptions(level)).all().get().forEach((tp, info) -> result.put(tp, info.offset()));
    return result;
  }

  private static void openTransactions(String bootstrap, List<String> topics) throws Exception {
    try (Admin admin = Admin.create(common(bootstrap))) {
      Set<TransactionState> open = EnumSet.of(TransactionState.ONGOING, TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT, TransactionState.PREPARE_EPOCH_FENCE);
      List<String> ids = new ArrayList<>();
      for (TransactionListing l : admin.listTransactions(new ListTransactionsOptions().filterStates(open)).all().get()) ids.add(l.transactionalId());
      if (!ids.isEmpty()) {
        for (Map.Entry<String, TransactionDescription> e : admin.describeTransactions(ids).all().get().entrySet()) {
          TransactionDescription d = e.getValue();
          if (!open.contains(d.state())) continue;
          Set<String> parts = new TreeSet<>();
          for (TopicPartition tp : d.topicPartitions()) parts.add(tp.topic() + "-" + tp.partition());
          System.out.println("T\t" + e.getKey() + "\t" + d.producerId() + "\t" + d.producerEpoch() + "\t" + d.state().name() + "\t"
              + (d.transactionStartTimeMs().isPresent() ? d.transactionStartTimeMs().getAsLong() : -1) + "\t" + d.transactionTimeoutMs() + "\t" + String.join(",", parts));
        }
      }
      if (!topics.isEmpty()) {
        List<TopicPartition> tps = new ArrayList<>();
        admin.describeTopics(topics).allTopicNames().get().forEach((name, desc) -> desc.partitions().forEach(p -> tps.add(new TopicPartition(name, p.partition()))));
        admin.describeProducers(tps).all().get().forEach((tp, desc) -> {
          for (ProducerState s : desc.activeProducers()) {
            if (s.currentTransactionStartOffset().isPresent()) {
              System.out.println("H\t" + tp.topic() + "\t" + tp.partition() + "\t" + s.producerId() + "\t" + s.producerEpoch() + "\t"
                  + s.currentTransactionStartOffset().getAsLong() + "\t" + s.lastTimestamp());
            }
          }
        });
      }
    }
  }
}
