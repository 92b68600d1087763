import { describe, expect, it } from 'vitest'
import { Branched, Consumed, Named, Produced, Repartitioned, Serdes, StreamsBuilder, TopologyError } from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const I = Serdes.Integer()

function driverFor(builder: StreamsBuilder): TopologyTestDriver {
  return new TopologyTestDriver(builder.build(), { applicationId: 'app', defaultKeySerde: S, defaultValueSerde: S }, 0)
}

describe('stateless KStream operations', () => {
  it('filter, filterNot, mapValues, map, selectKey, peek keep order and timestamps', async () => {
    const b = new StreamsBuilder()
    const seen: string[] = []
    const nums = b.stream('in', Consumed.with(S, I))
    nums
      .filter((_k, v) => v % 2 === 0)
      .mapValues((v) => v * 10)
      .to('evens', Produced.with(S, I))
    nums
      .filterNot((_k, v) => v % 2 === 0)
      .peek((k) => seen.push(k))
      .map((k, v) => ({ key: `${k}!`, value: String(v) }))
      .to('odds', Produced.with(S, S))
    nums.selectKey((_k, v) => v).to('rekeyed', Produced.with(I, I))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, I)
    await input.pipeInput('a', 1, 100)
    await input.pipeInput('b', 2, 200)
    await input.pipeInput('c', 3, 300)
    await input.pipeInput('d', 4, 400)
    expect(
      d
        .createOutputTopic('evens', S, I)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      ['b', 20, 200],
      ['d', 40, 400],
    ])
    expect(d.createOutputTopic('odds', S, S).readKeyValuesToList()).toEqual([
      { key: 'a!', value: '1' },
      { key: 'c!', value: '3' },
    ])
    expect(
      d
        .createOutputTopic('rekeyed', I, I)
        .readKeyValuesToList()
        .map((kv) => kv.key),
    ).toEqual([1, 2, 3, 4])
    expect(seen).toEqual(['a', 'c'])
    await d.close()
  })

  it('map accepts [key, value] tuples; mapValues gets (value, key)', async () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    s.map((k, v) => [v, k] as const).to('swapped', Produced.with(S, S))
    s.mapValues((v, k) => `${k}=${v}`).to('joined', Produced.with(S, S))
    const d = driverFor(b)
    await d.createInputTopic('in', S, S).pipeInput('k', 'v', 1)
    expect(d.createOutputTopic('swapped', S, S).readKeyValue()).toEqual({ key: 'v', value: 'k' })
    expect(d.createOutputTopic('joined', S, S).readValue()).toBe('k=v')
    await d.close()
  })

  it('flatMap and flatMapValues emit zero or more records per input', async () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    s.flatMapValues((line) => line.split(' ').filter((w) => w.length > 0)).to('words', Produced.with(S, S))
    s.flatMap((k, line) =>
      line
        .split(' ')
        .filter((w) => w.length > 0)
        .map((w) => ({ key: w, value: k })),
    ).to('byWord', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('l1', 'hello big world', 5)
    await input.pipeInput('l2', '', 6)
    expect(
      d
        .createOutputTopic('words', S, S)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      ['l1', 'hello', 5],
      ['l1', 'big', 5],
      ['l1', 'world', 5],
    ])
    expect(d.createOutputTopic('byWord', S, S).readKeyValuesToList()).toEqual([
      { key: 'hello', value: 'l1' },
      { key: 'big', value: 'l1' },
      { key: 'world', value: 'l1' },
    ])
    await d.close()
  })

  it('foreach is terminal and sees every record', async () => {
    const b = new StreamsBuilder()
    const seen: Array<[string, number]> = []
    b.stream('in', Consumed.with(S, I)).foreach((k, v) => seen.push([k, v]))
    const d = driverFor(b)
    await d.createInputTopic('in', S, I).pipeKeyValueList([['x', 1], { key: 'y', value: 2 }])
    expect(seen).toEqual([
      ['x', 1],
      ['y', 2],
    ])
    await d.close()
  })

  it('split() routes each record to the first matching branch, then the default', async () => {
    const b = new StreamsBuilder()
    const branches = b
      .stream('in', Consumed.with(S, I))
      .split(Named.as('num-'))
      .branch((_k, v) => v < 0, Branched.as('neg'))
      .branch(
        (_k, v) => v < 10,
        Branched.withFunction((s) => s.mapValues((v) => v * 100), 'small'),
      )
      .branch(
        (_k, v) => v > 1000,
        Branched.withConsumer((s) => s.to('huge', Produced.with(S, I)), 'huge'),
      )
      .defaultBranch(Branched.as('other'))
    expect([...branches.keys()]).toEqual(['num-neg', 'num-small', 'num-other'])
    branches.get('num-neg')!.to('neg', Produced.with(S, I))
    branches.get('num-small')!.to('small', Produced.with(S, I))
    branches.get('num-other')!.to('other', Produced.with(S, I))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, I)
    for (const v of [-5, 3, 50, 5000, -1]) await input.pipeInput('k', v, 1)
    expect(d.createOutputTopic('neg', S, I).readValuesToList()).toEqual([-5, -1])
    expect(d.createOutputTopic('small', S, I).readValuesToList()).toEqual([300])
    expect(d.createOutputTopic('huge', S, I).readValuesToList()).toEqual([5000])
    expect(d.createOutputTopic('other', S, I).readValuesToList()).toEqual([50])
    await d.close()
  })

  it('noDefaultBranch drops unmatched records; generated branch names follow Kafka Streams', async () => {
    const b = new StreamsBuilder()
    const branches = b
      .stream('in', Consumed.with(S, I))
      .split()
      .branch((_k, v) => v === 1)
      .branch((_k, v) => v === 2)
      .noDefaultBranch()
    // splitter KSTREAM-BRANCH-0000000001, branch children "<splitter><index>"
    expect([...branches.keys()]).toEqual(['KSTREAM-BRANCH-00000000011', 'KSTREAM-BRANCH-00000000012'])
    branches.get('KSTREAM-BRANCH-00000000011')!.to('one', Produced.with(S, I))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, I)
    for (const v of [1, 2, 3, 1]) await input.pipeInput('k', v, 1)
    expect(d.createOutputTopic('one', S, I).readValuesToList()).toEqual([1, 1])
    await d.close()
  })

  it('merge combines streams in processing order', async () => {
    const b = new StreamsBuilder()
    const a = b.stream('a', Consumed.with(S, S))
    const c = b.stream('c', Consumed.with(S, S))
    a.merge(c)
      .mapValues((v) => v.toUpperCase())
      .to('out', Produced.with(S, S))
    const d = driverFor(b)
    await d.createInputTopic('a', S, S).pipeInput('1', 'x', 1)
    await d.createInputTopic('c', S, S).pipeInput('2', 'y', 2)
    await d.createInputTopic('a', S, S).pipeInput('3', 'z', 3)
    expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual(['X', 'Y', 'Z'])
    await d.close()
  })

  it('to() with a TopicNameExtractor chooses the topic per record', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).to((key, _value, ctx) => `out-${key}-${ctx.topic}`, Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('a', '1', 1)
    await input.pipeInput('b', '2', 2)
    await input.pipeInput('a', '3', 3)
    expect(d.createOutputTopic('out-a-in', S, S).readValuesToList()).toEqual(['1', '3'])
    expect(d.createOutputTopic('out-b-in', S, S).readValuesToList()).toEqual(['2'])
    await d.close()
  })

  it('stream() with several topics and with a RegExp', async () => {
    const b = new StreamsBuilder()
    b.stream(['t1', 't2'], Consumed.with(S, S)).to('out', Produced.with(S, S))
    b.stream(/logs-.*/, Consumed.with(S, S))
      .mapValues((v) => `log:${v}`)
      .to('logs', Produced.with(S, S))
    const d = driverFor(b)
    await d.createInputTopic('t2', S, S).pipeInput('k', 'two', 1)
    await d.createInputTopic('t1', S, S).pipeInput('k', 'one', 2)
    await d.createInputTopic('logs-app', S, S).pipeInput('k', 'a', 3)
    await d.createInputTopic('logs-db', S, S).pipeInput('k', 'b', 4)
    expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual(['two', 'one'])
    expect(d.createOutputTopic('logs', S, S).readValuesToList()).toEqual(['log:a', 'log:b'])
    await expect(d.createInputTopic('nope', S, S).pipeInput('k', 'x', 1)).rejects.toThrow("unknown input topic 'nope'")
    await d.close()
  })

  it('repartition() goes through <applicationId>-<name>-repartition and back', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .selectKey((_k, v) => v)
      .repartition(Repartitioned.with(S, S).withName('by-value'))
      .to('out', Produced.with(S, S))
    const d = driverFor(b)
    await d.createInputTopic('in', S, S).pipeInput('k1', 'v1', 7)
    expect(
      d
        .createOutputTopic('out', S, S)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([['v1', 'v1', 7]])
    expect(d.producedTopicNames()).toEqual(new Set(['app-by-value-repartition', 'out']))
    await d.close()
  })

  it('auto-advancing input timestamps', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).to('out', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, S, { startTimestampMs: 1000, autoAdvanceMs: 10 })
    await input.pipeInput('a', '1')
    await input.pipeInput('b', '2')
    await input.pipeInput('c', '3', 5)
    await input.pipeInput('d', '4')
    expect(
      d
        .createOutputTopic('out', S, S)
        .readRecordsToList()
        .map((r) => r.timestamp),
    ).toEqual([1000, 1010, 5, 1020])
    await d.close()
  })

  it('returns new objects and never mutates the receiver', () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    const f = s.filter(() => true)
    expect(f).not.toBe(s)
    expect(s.name).toBe('KSTREAM-SOURCE-0000000000')
    expect(f.name).toBe('KSTREAM-FILTER-0000000001')
    expect(Object.isFrozen(s)).toBe(true)
  })

  it('rejects bad arguments with TopologyError naming the parameter', () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    expect(() => s.filter(undefined as never)).toThrow(TopologyError)
    expect(() => s.filter(undefined as never)).toThrow("filter: parameter 'predicate' must be a function")
    expect(() => s.mapValues(null as never)).toThrow("mapValues: parameter 'mapper' must be a function")
    expect(() => s.to('')).toThrow("to: parameter 'topic' must be a non-empty string or a TopicNameExtractor")
    expect(() => b.stream('in')).toThrow("addSource: topic 'in' has already been registered by source 'KSTREAM-SOURCE-0000000000'")
    expect(() => s.filter(() => true, Named.as('dup')).filter(() => true, Named.as('dup'))).toThrow(
      "addProcessor: processor 'dup' is already added",
    )
    expect(() => Named.as('bad name!')).toThrow(TopologyError)
  })
})
