import { describe, expect, it } from 'vitest'
import {
  Consumed,
  IllegalStateError,
  InvalidStateStoreError,
  JoinWindows,
  Materialized,
  Produced,
  Repartitioned,
  Serdes,
  Stores,
  StreamsBuilder,
  Topology,
  TopologyError,
  type ProcessorContext,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const L = Serdes.Long()

function expectTopologyError(fn: () => unknown, message: string): void {
  let caught: unknown
  try {
    fn()
  } catch (e) {
    caught = e
  }
  expect(caught).toBeInstanceOf(TopologyError)
  expect((caught as TopologyError).code).toBe('KSTREAMS_TOPOLOGY')
  expect((caught as Error).message).toBe(message)
}

describe('TopologyError for invalid topologies', () => {
  it('names the offending parameter', () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    b.addStateStore(Stores.keyValueStoreBuilder('store', S, S))
    expectTopologyError(
      () => b.addStateStore(Stores.keyValueStoreBuilder('store', S, L)),
      "addStateStore: a state store named 'store' has already been added",
    )
    expectTopologyError(() => s.to(undefined as never), "to: parameter 'topic' must be a non-empty string or a TopicNameExtractor")
    expectTopologyError(() => s.groupBy(null as never), "groupBy: parameter 'keySelector' must be a function")
    expectTopologyError(() => s.groupByKey().reduce(undefined as never), "reduce: parameter 'reducer' must be a function")
    expectTopologyError(
      () => s.process(() => ({ process() {} }), 'missing'),
      "process: state store 'missing' is not added yet; add it with StreamsBuilder.addStateStore first",
    )
    expectTopologyError(
      () => s.repartition(Repartitioned.numberOfPartitions(0)),
      "repartition: parameter 'repartitioned.numberOfPartitions' must be a positive integer, got 0",
    )
    expectTopologyError(() => b.table('', Consumed.with(S, S)), "table: parameter 'topic' must be a non-empty string")
    expectTopologyError(() => Materialized.as(''), "Materialized.as: parameter 'name' must be a non-empty string")
    expectTopologyError(
      () => Stores.windowStoreBuilder('w', { retentionMs: 10, windowSizeMs: 100 }),
      "Stores.windowStoreBuilder: parameter 'retentionMs' (10) must be >= 'windowSizeMs' (100)",
    )
    expectTopologyError(
      () => s.join(s, (a: string, c: string) => a + c, undefined as never),
      "join: parameter 'windows' must be a JoinWindows (a stream-stream join needs a join window)",
    )
    expect(() => s.join(s, (a: string, c: string) => a + c, JoinWindows.ofTimeDifferenceWithNoGrace(10))).not.toThrow()
  })

  it('hand-built topologies: unknown parents, sinks as parents, store checks', () => {
    expectTopologyError(
      () => new Topology().addProcessor('p', () => ({ process() {} }), 'nope'),
      "addProcessor: parent processor 'nope' of 'p' is not added yet",
    )
    expectTopologyError(
      () =>
        new Topology()
          .addSource('s', 't')
          .addSink('k', 'out', 's')
          .addProcessor('p', () => ({ process() {} }), 'k'),
      "addProcessor: sink 'k' cannot be used as a parent of 'p'",
    )
    expectTopologyError(
      () => new Topology().addSource('s', 't').addSink('k', '', 's'),
      "addSink: parameter 'topic' of sink 'k' must be a non-empty string or a TopicNameExtractor",
    )
    expectTopologyError(
      () => new Topology().addSource('s', []),
      "addSource: parameter 'topics' must name at least one topic for source 's'",
    )
    expectTopologyError(
      () => new Topology().addSource('s', 't').connectProcessorAndStateStores('s', 'x'),
      "connectProcessorAndStores: 's' is a source, only processors can use stores",
    )
    expectTopologyError(() => new Topology().resolve(''), "resolve: parameter 'applicationId' must be a non-empty string")
  })
})

describe('TopologyTestDriver', () => {
  it('feeds repartition topics back in order and exposes their prefixed names', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .selectKey((_k, v) => v)
      .repartition(Repartitioned.with(S, S))
      .groupByKey()
      .count(Materialized.as('c'))
      .toStream()
      .to('out', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'drv' }, 0)
    const input = d.createInputTopic('in', S, S)
    for (const v of ['a', 'b', 'a', 'a']) await input.pipeInput('k', v, 1)
    expect(d.createOutputTopic('out', S, L).readKeyValuesToList()).toEqual([
      { key: 'a', value: 1 },
      { key: 'b', value: 1 },
      { key: 'a', value: 2 },
      { key: 'a', value: 3 },
    ])
    expect(d.producedTopicNames()).toEqual(new Set(['drv-KSTREAM-REPARTITION-0000000002-repartition', 'out']))
    // the repartition topic's records are also readable
    expect(d.createOutputTopic('drv-KSTREAM-REPARTITION-0000000002-repartition', S, S).getQueueSize()).toBe(4)
    await d.close()
  })

  it('an output topic that the topology also reads is fed back (Kafka Streams driver behaviour)', async () => {
    const b = new StreamsBuilder()
    b.stream('a', Consumed.with(S, S))
      .mapValues((v) => v + '!')
      .to('b', Produced.with(S, S))
    b.stream('b', Consumed.with(S, S))
      .mapValues((v) => v + '?')
      .to('c', Produced.with(S, S))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'drv' }, 0)
    await d.createInputTopic('a', S, S).pipeInput('k', 'x', 1)
    expect(d.createOutputTopic('b', S, S).readValue()).toBe('x!')
    expect(d.createOutputTopic('c', S, S).readValue()).toBe('x!?')
    await d.close()
  })

  it('reading an empty topic throws; store getters check names and types', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).groupByKey().count(Materialized.as('counts'))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'drv' }, 0)
    expect(() => d.getKeyValueStore('counts')).toThrow(IllegalStateError)
    await d.ready()
    expect(() => d.createOutputTopic('none', S, S).readValue()).toThrow("output topic 'none' is empty")
    expect(() => d.getKeyValueStore('nope')).toThrow(InvalidStateStoreError)
    expect(() => d.getWindowStore('counts')).toThrow("getWindowStore: store 'counts' is a keyValue store")
    // stores can be written through the driver before records arrive
    await d.getKeyValueStore<string, number>('counts').put('k', 41)
    await d.createInputTopic('in', S, S).pipeInput('k', 'v', 1)
    expect(await d.getKeyValueStore<string, number>('counts').get('k')).toBe(42)
    await d.close()
    expect(() => d.createInputTopic('in', S, S)).toThrow('the TopologyTestDriver is closed')
  })

  it('context.currentSystemTimeMs follows the virtual clock; metadata is the input record', async () => {
    const seen: Array<[number, string | undefined, string | undefined]> = []
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).process(() => {
      let ctx: ProcessorContext<never, never>
      return {
        init: (c: ProcessorContext<never, never>) => void (ctx = c),
        process: () => void seen.push([ctx.currentSystemTimeMs(), ctx.recordMetadata()?.topic, ctx.recordMetadata()?.offset]),
      }
    })
    const d = new TopologyTestDriver(b.build(), { applicationId: 'drv' }, 5000)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', 1)
    await d.advanceWallClockTime(250)
    await input.pipeInput('k', 'v', 2)
    expect(seen).toEqual([
      [5000, 'in', '0'],
      [5250, 'in', '1'],
    ])
    await d.close()
  })
})
