import { describe, expect, it } from 'vitest'
import {
  Consumed,
  Grouped,
  JoinWindows,
  Materialized,
  Produced,
  Serdes,
  Stores,
  StreamsBuilder,
  Topology,
  type Processor,
  type StreamRecord,
} from '../../lib/index.js'
import { StreamJoined } from '../../topology/dsl/joins.js'

/**
 * Expected strings are Kafka Streams' own: copied from apache/kafka's TopologyTest and
 * RepartitionTopicNamingTest (streams module) for the equivalent Java topologies.
 */

const S = Serdes.String()

// RepartitionTopicNamingTest.EXPECTED_UNOPTIMIZED_TOPOLOGY
const EXPECTED_UNOPTIMIZED_TOPOLOGY = [
  'Topologies:',
  '   Sub-topology: 0',
  '    Source: KSTREAM-SOURCE-0000000000 (topics: [input])',
  '      --> KSTREAM-MAP-0000000001',
  '    Processor: KSTREAM-MAP-0000000001 (stores: [])',
  '      --> KSTREAM-FILTER-0000000029, KSTREAM-FILTER-0000000002, KSTREAM-FILTER-0000000020, aggregate-stream-repartition-filter, count-stream-repartition-filter',
  '      <-- KSTREAM-SOURCE-0000000000',
  '    Processor: KSTREAM-FILTER-0000000020 (stores: [])',
  '      --> KSTREAM-PEEK-0000000021',
  '      <-- KSTREAM-MAP-0000000001',
  '    Processor: KSTREAM-FILTER-0000000002 (stores: [])',
  '      --> KSTREAM-MAPVALUES-0000000003',
  '      <-- KSTREAM-MAP-0000000001',
  '    Processor: KSTREAM-FILTER-0000000029 (stores: [])',
  '      --> joined-stream-left-repartition-filter',
  '      <-- KSTREAM-MAP-0000000001',
  '    Processor: KSTREAM-PEEK-0000000021 (stores: [])',
  '      --> reduced-stream-repartition-filter',
  '      <-- KSTREAM-FILTER-0000000020',
  '    Processor: KSTREAM-MAPVALUES-0000000003 (stores: [])',
  '      --> KSTREAM-PROCESSOR-0000000004',
  '      <-- KSTREAM-FILTER-0000000002',
  '    Processor: aggregate-stream-repartition-filter (stores: [])',
  '      --> aggregate-stream-repartition-sink',
  '      <-- KSTREAM-MAP-0000000001',
  '    Processor: count-stream-repartition-filter (stores: [])',
  '      --> count-stream-repartition-sink',
  '      <-- KSTREAM-MAP-0000000001',
  '    Processor: joined-stream-left-repartition-filter (stores: [])',
  '      --> joined-stream-left-repartition-sink',
  '      <-- KSTREAM-FILTER-0000000029',
  '    Processor: reduced-stream-repartition-filter (stores: [])',
  '      --> reduced-stream-repartition-sink',
  '      <-- KSTREAM-PEEK-0000000021',
  '    Processor: KSTREAM-PROCESSOR-0000000004 (stores: [])',
  '      --> none',
  '      <-- KSTREAM-MAPVALUES-0000000003',
  '    Sink: aggregate-stream-repartition-sink (topic: aggregate-stream-repartition)',
  '      <-- aggregate-stream-repartition-filter',
  '    Sink: count-stream-repartition-sink (topic: count-stream-repartition)',
  '      <-- count-stream-repartition-filter',
  '    Sink: joined-stream-left-repartition-sink (topic: joined-stream-left-repartition)',
  '      <-- joined-stream-left-repartition-filter',
  '    Sink: reduced-stream-repartition-sink (topic: reduced-stream-repartition)',
  '      <-- reduced-stream-repartition-filter',
  '',
  '  Sub-topology: 1',
  '    Source: count-stream-repartition-source (topics: [count-stream-repartition])',
  '      --> KSTREAM-AGGREGATE-0000000007',
  '    Processor: KSTREAM-AGGREGATE-0000000007 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000006])',
  '      --> KTABLE-TOSTREAM-0000000011',
  '      <-- count-stream-repartition-source',
  '    Processor: KTABLE-TOSTREAM-0000000011 (stores: [])',
  '      --> KSTREAM-SINK-0000000012, joined-stream-other-windowed',
  '      <-- KSTREAM-AGGREGATE-0000000007',
  '    Source: joined-stream-left-repartition-source (topics: [joined-stream-left-repartition])',
  '      --> joined-stream-this-windowed',
  '    Processor: joined-stream-other-windowed (stores: [joined-stream-other-join-store])',
  '      --> joined-stream-other-join',
  '      <-- KTABLE-TOSTREAM-0000000011',
  '    Processor: joined-stream-this-windowed (stores: [joined-stream-this-join-store])',
  '      --> joined-stream-this-join',
  '      <-- joined-stream-left-repartition-source',
  '    Processor: joined-stream-other-join (stores: [joined-stream-this-join-store])',
  '      --> joined-stream-merge',
  '      <-- joined-stream-other-windowed',
  '    Processor: joined-stream-this-join (stores: [joined-stream-other-join-store])',
  '      --> joined-stream-merge',
  '      <-- joined-stream-this-windowed',
  '    Processor: joined-stream-merge (stores: [])',
  '      --> KSTREAM-SINK-0000000038',
  '      <-- joined-stream-this-join, joined-stream-other-join',
  '    Sink: KSTREAM-SINK-0000000012 (topic: outputTopic_0)',
  '      <-- KTABLE-TOSTREAM-0000000011',
  '    Sink: KSTREAM-SINK-0000000038 (topic: outputTopicForJoin)',
  '      <-- joined-stream-merge',
  '',
  '  Sub-topology: 2',
  '    Source: aggregate-stream-repartition-source (topics: [aggregate-stream-repartition])',
  '      --> KSTREAM-AGGREGATE-0000000014',
  '    Processor: KSTREAM-AGGREGATE-0000000014 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000013])',
  '      --> KTABLE-TOSTREAM-0000000018',
  '      <-- aggregate-stream-repartition-source',
  '    Processor: KTABLE-TOSTREAM-0000000018 (stores: [])',
  '      --> KSTREAM-SINK-0000000019',
  '      <-- KSTREAM-AGGREGATE-0000000014',
  '    Sink: KSTREAM-SINK-0000000019 (topic: outputTopic_1)',
  '      <-- KTABLE-TOSTREAM-0000000018',
  '',
  '  Sub-topology: 3',
  '    Source: reduced-stream-repartition-source (topics: [reduced-stream-repartition])',
  '      --> KSTREAM-REDUCE-0000000023',
  '    Processor: KSTREAM-REDUCE-0000000023 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000022])',
  '      --> KTABLE-TOSTREAM-0000000027',
  '      <-- reduced-stream-repartition-source',
  '    Processor: KTABLE-TOSTREAM-0000000027 (stores: [])',
  '      --> KSTREAM-SINK-0000000028',
  '      <-- KSTREAM-REDUCE-0000000023',
  '    Sink: KSTREAM-SINK-0000000028 (topic: outputTopic_2)',
  '      <-- KTABLE-TOSTREAM-0000000027',
  '',
  '',
].join('\n')

describe('Topology.describe() matches Kafka Streams', () => {
  it('KGroupedStream zero-arg count (TopologyTest.kGroupedStreamZeroArgCountShouldPreserveTopologyStructure)', () => {
    const b = new StreamsBuilder()
    b.stream('input-topic').groupByKey().count()
    expect(b.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n' +
        '      --> KSTREAM-AGGREGATE-0000000002\n' +
        '    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n' +
        '      --> none\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n\n',
    )
  })

  it('KGroupedStream named and anonymous Materialized count', () => {
    const named = new StreamsBuilder()
    named.stream('input-topic').groupByKey().count(Materialized.as<unknown, number>('count-store').withStoreType('inMemory'))
    expect(named.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n' +
        '      --> KSTREAM-AGGREGATE-0000000001\n' +
        '    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])\n' +
        '      --> none\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n\n',
    )
    const anonymous = new StreamsBuilder()
    anonymous.stream('input-topic').groupByKey().count(Materialized.with(undefined, Serdes.Long()))
    expect(anonymous.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n' +
        '      --> KSTREAM-AGGREGATE-0000000003\n' +
        '    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])\n' +
        '      --> none\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n\n',
    )
  })

  it('KTable groupBy count: source table materialized on demand, repartition without filter (TopologyTest.tableZeroArgCount...)', () => {
    const b = new StreamsBuilder()
    b.table('input-topic')
      .groupBy(() => null as never)
      .count()
    expect(b.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n' +
        '      --> KTABLE-SOURCE-0000000002\n' +
        '    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])\n' +
        '      --> KTABLE-SELECT-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000001\n' +
        '    Processor: KTABLE-SELECT-0000000003 (stores: [])\n' +
        '      --> KSTREAM-SINK-0000000005\n' +
        '      <-- KTABLE-SOURCE-0000000002\n' +
        '    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)\n' +
        '      <-- KTABLE-SELECT-0000000003\n' +
        '\n' +
        '  Sub-topology: 1\n' +
        '    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])\n' +
        '      --> KTABLE-AGGREGATE-0000000007\n' +
        '    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])\n' +
        '      --> none\n' +
        '      <-- KSTREAM-SOURCE-0000000006\n' +
        '\n',
    )
  })

  it('KTable groupBy count into a named store (TopologyTest.tableNamedMaterializedCount...)', () => {
    const b = new StreamsBuilder()
    b.table('input-topic')
      .groupBy(() => null as never)
      .count(Materialized.as<unknown, number>('count-store').withStoreType('inMemory'))
    expect(b.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n' +
        '      --> KTABLE-SOURCE-0000000002\n' +
        '    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])\n' +
        '      --> KTABLE-SELECT-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000001\n' +
        '    Processor: KTABLE-SELECT-0000000003 (stores: [])\n' +
        '      --> KSTREAM-SINK-0000000004\n' +
        '      <-- KTABLE-SOURCE-0000000002\n' +
        '    Sink: KSTREAM-SINK-0000000004 (topic: count-store-repartition)\n' +
        '      <-- KTABLE-SELECT-0000000003\n' +
        '\n' +
        '  Sub-topology: 1\n' +
        '    Source: KSTREAM-SOURCE-0000000005 (topics: [count-store-repartition])\n' +
        '      --> KTABLE-AGGREGATE-0000000006\n' +
        '    Processor: KTABLE-AGGREGATE-0000000006 (stores: [count-store])\n' +
        '      --> none\n' +
        '      <-- KSTREAM-SOURCE-0000000005\n' +
        '\n',
    )
  })

  it('KTable filter / mapValues: not materialized, anonymous Materialized (burns a store name), named store', () => {
    const nonMat = new StreamsBuilder()
    nonMat.table('input-topic').mapValues(() => null)
    expect(nonMat.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n' +
        '      --> KTABLE-SOURCE-0000000002\n' +
        '    Processor: KTABLE-SOURCE-0000000002 (stores: [])\n' +
        '      --> KTABLE-MAPVALUES-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000001\n' +
        '    Processor: KTABLE-MAPVALUES-0000000003 (stores: [])\n' +
        '      --> none\n' +
        '      <-- KTABLE-SOURCE-0000000002\n\n',
    )
    const anon = new StreamsBuilder()
    anon.table('input-topic').filter(() => false, Materialized.with(undefined, undefined))
    expect(anon.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n' +
        '      --> KTABLE-SOURCE-0000000002\n' +
        '    Processor: KTABLE-SOURCE-0000000002 (stores: [])\n' +
        '      --> KTABLE-FILTER-0000000004\n' +
        '      <-- KSTREAM-SOURCE-0000000001\n' +
        '    Processor: KTABLE-FILTER-0000000004 (stores: [])\n' +
        '      --> none\n' +
        '      <-- KTABLE-SOURCE-0000000002\n' +
        '\n',
    )
    const named = new StreamsBuilder()
    named.table('input-topic').mapValues(() => null, Materialized.as('store-name'))
    expect(named.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n' +
        '      --> KTABLE-SOURCE-0000000002\n' +
        '    Processor: KTABLE-SOURCE-0000000002 (stores: [])\n' +
        '      --> KTABLE-MAPVALUES-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000001\n' +
        '    Processor: KTABLE-MAPVALUES-0000000003 (stores: [store-name])\n' +
        '      --> none\n' +
        '      <-- KTABLE-SOURCE-0000000002\n' +
        '\n',
    )
  })

  it('a multi-operation topology with named repartitions and a stream-stream join (RepartitionTopicNamingTest, unoptimized)', () => {
    const b = new StreamsBuilder()
    const collected: string[] = []
    const source = b.stream('input', Consumed.with(S, S))
    const mapped = source.map((k, v) => ({ key: k.toUpperCase(), value: v }))
    mapped
      .filter((k) => k === 'B')
      .mapValues((v) => v.toUpperCase())
      .process(() => ({ process: (r: StreamRecord<string, string>) => void collected.push(r.value) }) satisfies Processor<string, string>)
    const countStream = mapped.groupByKey(Grouped.as('count-stream')).count(Materialized.with(S, Serdes.Long())).toStream()
    countStream.to('outputTopic_0', Produced.with(S, Serdes.Long()))
    mapped
      .groupByKey(Grouped.as('aggregate-stream'))
      .aggregate(
        () => 0,
        (_k, v, agg) => agg + v.length,
        Materialized.with(S, Serdes.Integer()),
      )
      .toStream()
      .to('outputTopic_1', Produced.with(S, Serdes.Integer()))
    mapped
      .filter(() => true)
      .peek(() => undefined)
      .groupByKey(Grouped.as('reduced-stream'))
      .reduce((v1, v2) => `${v1}:${v2}`, Materialized.with(S, S))
      .toStream()
      .to('outputTopic_2', Produced.with(S, S))
    mapped
      .filter((k) => k === 'A')
      .join(
        countStream,
        (v1: string, v2: number | null) => `${v1}:${v2}`,
        JoinWindows.ofTimeDifferenceWithNoGrace(5000),
        StreamJoined.with<string, string, number | null>(S, S, Serdes.Long()).withStoreName('joined-stream').withName('joined-stream'),
      )
      .to('outputTopicForJoin')
    expect(b.build().describe().toString()).toBe(EXPECTED_UNOPTIMIZED_TOPOLOGY)
  })

  it('sink with a topic name extractor prints the extractor', () => {
    const b = new StreamsBuilder()
    b.stream('input-topic').to(function byKey(key) {
      return `out-${String(key)}`
    })
    expect(b.build().describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n' +
        '      --> KSTREAM-SINK-0000000001\n' +
        '    Sink: KSTREAM-SINK-0000000001 (extractor class: byKey)\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n\n',
    )
  })

  it('global stores interleave with sub-topologies by id (InternalTopologyBuilder.GlobalStore format)', () => {
    const topology = new Topology()
      .addSource('source', 'input')
      .addProcessor('p', () => ({ process() {} }), 'source')
      .addGlobalStore(Stores.keyValueStoreBuilder('globalStore', S, S), 'global-source', 'globalTopic', {}, 'global-processor', () => ({
        process() {},
      }))
      .addSource('source2', 'input2')
    expect(topology.describe().toString()).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: source (topics: [input])\n' +
        '      --> p\n' +
        '    Processor: p (stores: [])\n' +
        '      --> none\n' +
        '      <-- source\n' +
        '\n' +
        '  Sub-topology: 1 for global store (will not generate tasks)\n' +
        '    Source: global-source (topics: [globalTopic])\n' +
        '      --> global-processor\n' +
        '    Processor: global-processor (stores: [globalStore])\n' +
        '      --> none\n' +
        '      <-- global-source\n' +
        '  Sub-topology: 2\n' +
        '    Source: source2 (topics: [input2])\n' +
        '      --> none\n' +
        '\n',
    )
  })

  it('processors sharing a store are one sub-topology; multi-topic and pattern sources', () => {
    const topology = new Topology()
      .addSource('a', ['t-b', 't-a', 'topic-c'])
      .addSource('p', /logs-\d+/)
      .addProcessor('pa', () => ({ process() {} }), 'a')
      .addProcessor('pp', () => ({ process() {} }), 'p')
      .addStateStore(Stores.keyValueStoreBuilder('shared', S, S), 'pa', 'pp')
    const text = topology.describe().toString()
    // Java HashSet<String> iteration order: "t-b" hashes to bucket 8, "t-a" to bucket 9
    expect(text).toContain('    Source: a (topics: [t-b, t-a, topic-c])\n')
    expect(text).toContain('    Source: p (topics: logs-\\d+)\n')
    expect(text.match(/Sub-topology/g)).toHaveLength(1)
    expect(topology.describe().subtopologies[0]!.nodes.map((n) => n.name)).toEqual(['a', 'p', 'pa', 'pp'])
  })

  it('toMermaid renders sub-topologies, topics, stores and edges', () => {
    const b = new StreamsBuilder()
    b.stream('words', Consumed.with(S, S))
      .groupBy((_k, w) => w, Grouped.with(S, S))
      .count(Materialized.as('counts'))
      .toStream()
      .to('word-counts')
    const topology = b.build()
    const mermaid = topology.toMermaid()
    expect(mermaid).toBe(topology.describe().toMermaid())
    expect(mermaid.startsWith('flowchart TD\n')).toBe(true)
    expect(mermaid).toContain('  subgraph sub_0["Sub-topology: 0"]\n')
    expect(mermaid).toContain('  subgraph sub_1["Sub-topology: 1"]\n')
    expect(mermaid).toContain('  topic_words --> KSTREAM_SOURCE_0000000000\n')
    expect(mermaid).toContain('    counts_repartition_sink[\\"counts-repartition-sink"\\]\n')
    expect(mermaid).toContain('  counts_repartition_sink --> topic_counts_repartition\n')
    expect(mermaid).toContain('  topic_counts_repartition --> counts_repartition_source\n')
    expect(mermaid).toContain('  KSTREAM_AGGREGATE_0000000002 <-.-> store_counts\n')
    expect(mermaid).toContain('  store_counts[("counts")]\n')
    expect(mermaid).toContain('  topic_counts_repartition{{"counts-repartition"}}\n')
    expect(mermaid).toContain('  KSTREAM_SINK_0000000007 --> topic_word_counts\n')
  })
})

describe('Topology.resolve()', () => {
  it('prefixes internal topics and lists repartition and changelog topics with their configs', () => {
    const b = new StreamsBuilder()
    b.addStateStore(Stores.keyValueStoreBuilder('plain', S, S).withLoggingDisabled())
    b.stream('words', Consumed.with(S, S)).process(() => ({ process() {} }), 'plain')
    b.stream('lines', Consumed.with(S, S))
      .groupBy((_k, w) => w, Grouped.with(S, S))
      .count(Materialized.as<string, number>('counts').withLoggingEnabled({ 'min.insync.replicas': '2' }))
      .toStream()
      .to('word-counts')
    b.addStateStore(Stores.windowStoreBuilder('win', { retentionMs: 1000, windowSizeMs: 100 }, S, S))
    const def = b.build().resolve('my-app')
    expect(def.applicationId).toBe('my-app')
    expect(def.repartitionTopics).toEqual([
      { name: 'my-app-counts-repartition', kind: 'repartition', config: { 'cleanup.policy': 'delete', 'segment.bytes': '52428800' } },
    ])
    expect(def.changelogTopics).toEqual([
      { name: 'my-app-counts-changelog', kind: 'changelog', config: { 'cleanup.policy': 'compact', 'min.insync.replicas': '2' } },
      {
        name: 'my-app-win-changelog',
        kind: 'changelog',
        config: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(1000 + 86_400_000) },
      },
    ])
    const sinks = def.subtopologies.flatMap((s) => s.nodes).filter((n) => n.type === 'sink')
    expect(sinks.map((n) => n.type === 'sink' && n.topic)).toEqual(['my-app-counts-repartition', 'word-counts'])
    expect(def.subtopologies.map((s) => s.sourceTopics)).toEqual([['words'], ['lines'], ['my-app-counts-repartition']])
    expect(def.subtopologies[2]!.stores).toEqual(['counts'])
    expect(def.stores.get('counts')).toMatchObject({ type: 'keyValue', timestamped: true, loggingEnabled: true })
  })
})
