import { afterEach, describe, expect, it } from 'vitest'
import {
  EmitStrategy,
  JoinWindows,
  StreamJoined,
  LATE_RECORD_HEADERS as H,
  LateRecords,
  Materialized,
  Produced,
  Serdes,
  SessionWindows,
  SlidingWindows,
  StreamsBuilder,
  TimeWindows,
  TopologyError,
  sessionWindowedSerde,
  timeWindowedSerde,
  type KStream,
  type Windowed,
} from '../../topology/index.js'
import { TopologyTestDriver, type TestRecord } from '../../lib/testing/index.js'

const S = Serdes.String()
const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

function driverOf(build: (input: KStream<string, string>) => void): TopologyTestDriver {
  const b = new StreamsBuilder()
  build(b.stream<string, string>('in', { keySerde: S, valueSerde: S }))
  const d = new TopologyTestDriver(b.build())
  drivers.push(d)
  return d
}

/** A late record as `key:value@ts` and its late-record headers. */
function lateOf(r: TestRecord<string, string>) {
  const h = (name: string) => r.headers[name]
  return {
    record: `${r.key}:${r.value}@${r.timestamp}`,
    processor: h(H.processor),
    window: [Number(h(H.windowStart)), Number(h(H.windowEnd))],
    streamTime: Number(h(H.streamTime)),
    lateness: Number(h(H.lateness)),
  }
}

describe('late records of windowed aggregations go to a side topic', () => {
  it('tumbling count: the late record lands on the side topic with its headers, on-time records are counted as before', async () => {
    const d = driverOf((s) =>
      s
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
        .withLateRecords(LateRecords.to('late', Produced.with(S, S)))
        .count(Materialized.as('counts'), { name: 'count-clicks' })
        .toStream()
        .to('out', { keySerde: timeWindowedSerde(S, 10), valueSerde: Serdes.Long() }),
    )
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic<Windowed<string>, number>('out', timeWindowedSerde(S, 10), Serdes.Long())
    const late = d.createOutputTopic('late', S, S)

    await input.pipeInput('a', 'x', 3)
    await input.pipeInput('a', 'y', 16) // stream-time 16: window [0,10) closes at 10 + 5 = 15
    await input.pipeInput('a', 'late', 4, { trace: 'abc' })
    await input.pipeInput('a', 'ontime', 12) // window [10,20) still open
    expect(out.readRecordsToList().map((r) => `${r.key!.key}@${r.key!.window.startMs}=${r.value}`)).toEqual(['a@0=1', 'a@10=1', 'a@10=2'])

    const records = late.readRecordsToList()
    expect(records.map(lateOf)).toEqual([{ record: 'a:late@4', processor: 'count-clicks', window: [0, 10], streamTime: 16, lateness: 12 }])
    // the record's own headers are kept
    expect(records[0]!.headers['trace']).toBe('abc')
    expect(d.droppedRecords()).toBe(1)
  })

  it('hopping windows: one late record per closed window the record missed, as dropped-records counts; open windows still take it', async () => {
    const d = driverOf((s) =>
      s
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(10, 0).advanceBy(5))
        .withLateRecords(LateRecords.to('late'))
        .count(undefined, { name: 'hop' })
        .toStream()
        .to('out', { keySerde: timeWindowedSerde(S, 10), valueSerde: Serdes.Long() }),
    )
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic<Windowed<string>, number>('out', timeWindowedSerde(S, 10), Serdes.Long())
    const late = d.createOutputTopic('late', S, S)
    await input.pipeInput('k', 'a', 17) // windows [10,20) [15,25)
    out.readRecordsToList()
    // t=8 is in windows [0,10) (closed at 10 <= 17) and [5,15) (closed at 15 <= 17): both missed
    await input.pipeInput('k', 'b', 8)
    // t=12 is in [5,15) (closed) and [10,20) (open)
    await input.pipeInput('k', 'c', 12)
    expect(late.readRecordsToList().map(lateOf)).toEqual([
      { record: 'k:b@8', processor: 'hop', window: [0, 10], streamTime: 17, lateness: 9 },
      { record: 'k:b@8', processor: 'hop', window: [5, 15], streamTime: 17, lateness: 9 },
      { record: 'k:c@12', processor: 'hop', window: [5, 15], streamTime: 17, lateness: 5 },
    ])
    expect(out.readRecordsToList().map((r) => `${r.key!.window.startMs}=${r.value}`)).toEqual(['10=2'])
    expect(d.droppedRecords('late')).toBe(3)
  })

  it('onWindowClose: late records still go to the side topic; final results are unaffected', async () => {
    const d = driverOf((s) =>
      s
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(10, 0))
        .emitStrategy(EmitStrategy.onWindowClose())
        .withLateRecords(LateRecords.to('late'))
        .count()
        .toStream()
        .to('out', { keySerde: timeWindowedSerde(S, 10), valueSerde: Serdes.Long() }),
    )
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic<Windowed<string>, number>('out', timeWindowedSerde(S, 10), Serdes.Long())
    const late = d.createOutputTopic('late', S, S)
    await input.pipeInput('k', 'a', 1)
    await input.pipeInput('k', 'b', 2)
    await input.pipeInput('k', 'c', 25) // closes [0,10) and emits it
    await input.pipeInput('k', 'late', 9)
    expect(out.readRecordsToList().map((r) => `${r.key!.window.startMs}=${r.value}`)).toEqual(['0=2'])
    expect(late.readRecordsToList().map((r) => lateOf(r).record)).toEqual(['k:late@9'])
  })

  it('sliding windows: a record whose every window closed goes to the side topic with its own window [t - d, t]; a partly late record once per window it missed', async () => {
    const d = driverOf((s) =>
      s
        .groupByKey()
        .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 5))
        .withLateRecords(LateRecords.to('late'))
        .count(undefined, { name: 'slide' })
        .toStream()
        .to('out', { keySerde: timeWindowedSerde(S, 10), valueSerde: Serdes.Long() }),
    )
    const input = d.createInputTopic('in', S, S)
    const late = d.createOutputTopic('late', S, S)
    await input.pipeInput('k', 'a', 100)
    // close time 100 - 5 = 95: a window [s, s + 10] is closed when s + 10 < 95
    await input.pipeInput('k', 'old', 84) // even its right window [84, 94] is closed: dropped whole
    expect(late.readRecordsToList().map(lateOf)).toEqual([
      { record: 'k:old@84', processor: 'slide', window: [74, 84], streamTime: 100, lateness: 16 },
    ])
    // 85 passes the whole-record check (85 + 10 = 95 is not before 95) but the window it would
    // create, its left window [75, 85], is closed: that window update is dropped and sent
    await input.pipeInput('k', 'edge', 85)
    expect(late.readRecordsToList().map(lateOf)).toEqual([
      { record: 'k:edge@85', processor: 'slide', window: [75, 85], streamTime: 100, lateness: 15 },
    ])
    // 92's left window [82, 92] is closed too, but it also falls into 100's window [90, 100]: that update is not late
    await input.pipeInput('k', 'mid', 92)
    expect(late.readRecordsToList().map((r) => lateOf(r).window)).toEqual([[82, 92]])
    expect(d.droppedRecords('late')).toBe(3)
  })

  it('session windows: a record whose session would already be closed goes to the side topic with that session', async () => {
    const d = driverOf((s) =>
      s
        .groupByKey()
        .windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 0))
        .withLateRecords(LateRecords.to('late', Produced.as('session-late-sink')))
        .count(undefined, { name: 'sessions' })
        .toStream()
        .to('out', { keySerde: sessionWindowedSerde(S), valueSerde: Serdes.Long() }),
    )
    const input = d.createInputTopic('in', S, S)
    const late = d.createOutputTopic('late', S, S)
    await input.pipeInput('k', 'a', 100) // close time 100 - 10 - 0 = 90
    await input.pipeInput('j', 'early', 50) // session [50,50] ends before 90: late
    await input.pipeInput('k', 'b', 95) // merges into [95, 100]: fine
    expect(late.readRecordsToList().map(lateOf)).toEqual([
      { record: 'j:early@50', processor: 'sessions', window: [50, 50], streamTime: 100, lateness: 50 },
    ])
    expect(d.droppedRecords('late')).toBe(1)
  })

  it('the side sink is part of the topology (described as a sink below the aggregate) and Produced.name names it', () => {
    const b = new StreamsBuilder()
    b.stream<string, string>('in', { keySerde: S, valueSerde: S })
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 0))
      .withLateRecords(LateRecords.to('late-topic', Produced.as('session-late-sink')))
      .count(undefined, { name: 'sessions' })
    const text = b.build().describe().toString()
    expect(text).toMatch(/Processor: sessions \(stores: \[[^\]]*\]\)\n\s+--> session-late-sink/)
    expect(text).toContain('Sink: session-late-sink (topic: late-topic)')
  })

  it('rejects late records without a topic', () => {
    const w = new StreamsBuilder().stream<string, string>('in').groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(10))
    expect(() => w.withLateRecords({ topic: '' })).toThrow(TopologyError)
    expect(() => w.withLateRecords({ topic: '' })).toThrow("parameter 'topic' of the late records must be a non-empty string")
    expect(() => LateRecords.to('')).toThrow(TopologyError)
  })
})

describe('late records of stream-stream joins go to side topics', () => {
  function joinDriver(sj: StreamJoined<string, string, number>) {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
    const r = b.stream<string, number>('right', { keySerde: S, valueSerde: Serdes.Long() })
    l.join(r, (a: string, n: number) => `${a}+${n}`, JoinWindows.ofTimeDifferenceAndGrace(10, 5), sj).to('out', {
      keySerde: S,
      valueSerde: S,
    })
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    return {
      d,
      left: d.createInputTopic('left', S, S),
      right: d.createInputTopic('right', S, Serdes.Long()),
      out: d.createOutputTopic('out', S, S),
      lateLeft: d.createOutputTopic('late-left', S, S),
      lateRight: d.createOutputTopic('late-right', S, Serdes.Long()),
    }
  }

  it('each side goes to its own typed topic with the join window, side and stream-time; late records are not joined', async () => {
    const j = joinDriver(
      StreamJoined.with(S, S, Serdes.Long())
        .withName('ad')
        .withLateRecords(LateRecords.to('late-left', Produced.with(S, S)), LateRecords.to('late-right', Produced.with(S, Serdes.Long()))),
    )
    await j.right.pipeInput('k', 7, 100)
    await j.left.pipeInput('s', 'S', 200) // stream-time 200
    await j.left.pipeInput('k', 'A', 96) // 96 + 10 + 5 = 111 < 200: late (would have matched 7@100)
    await j.right.pipeInput('k', 8, 90) // late too
    await j.left.pipeInput('k', 'B', 195) // on time, no match
    await j.right.pipeInput('k', 9, 199) // on time, joins B
    expect(j.out.readRecordsToList().map((r) => `${r.key}:${r.value}@${r.timestamp}`)).toEqual(['k:B+9@199'])

    const left = j.lateLeft.readRecordsToList()
    expect(left.map((r) => ({ ...lateOf(r), side: r.headers[H.joinSide] }))).toEqual([
      { record: 'k:A@96', processor: 'ad-this-join', window: [86, 106], streamTime: 200, lateness: 104, side: 'this' },
    ])
    const right = j.lateRight.readRecordsToList()
    expect(
      right.map((r) => [
        r.key,
        r.value,
        r.timestamp,
        r.headers[H.processor],
        r.headers[H.joinSide],
        r.headers[H.windowStart],
        r.headers[H.windowEnd],
      ]),
    ).toEqual([['k', 8, 90, 'ad-other-join', 'other', '80', '100']])
    expect(j.d.droppedRecords()).toBe(2)
  })

  it('a side without a topic only counts its late records; the on-time output is the same as without side topics', async () => {
    const j = joinDriver(StreamJoined.with(S, S, Serdes.Long()).withLateRecords(null, LateRecords.to('late-right')))
    await j.left.pipeInput('s', 'S', 200)
    await j.left.pipeInput('k', 'A', 50)
    await j.right.pipeInput('k', 8, 50)
    expect(j.lateRight.readRecordsToList().map((r) => [r.key, r.value])).toEqual([['k', 8]])
    expect(j.d.producedTopicNames().has('late-left')).toBe(false)
    expect(j.d.droppedRecords()).toBe(2)
    expect(j.out.isEmpty()).toBe(true)
  })

  it("side topics need the drop policy: lateRecords 'join' with lateRecordsTo is rejected", () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('l')
    const r = b.stream<string, string>('r')
    expect(() =>
      l.join(r, (a: string, c: string) => a + c, JoinWindows.ofTimeDifferenceWithNoGrace(10), {
        lateRecords: 'join',
        lateRecordsTo: { thisSide: { topic: 'x' } },
      }),
    ).toThrow("join: late records sent to a side topic are not joined; lateRecords must be 'drop' with lateRecordsTo")
  })
})

describe('late records of windowed cogroups go to a side topic', () => {
  const concat = (_k: string, v: string, agg: string) => agg + v

  function cogroupDriver(windows: 'time' | 'session') {
    const b = new StreamsBuilder()
    const one = b.stream<string, string>('one', { keySerde: S, valueSerde: S }).groupByKey()
    const two = b.stream<string, string>('two', { keySerde: S, valueSerde: S }).groupByKey()
    const cogrouped = one.cogroup(concat).cogroup(two, concat)
    if (windows === 'time') {
      cogrouped
        .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
        .withLateRecords(LateRecords.to('late'))
        .aggregate(() => '', Materialized.as<string, string>('agg').withValueSerde(S), { name: 'activity' })
        .toStream()
        .to('out', { keySerde: timeWindowedSerde(S, 10), valueSerde: S })
    } else {
      cogrouped
        .windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 0))
        .withLateRecords(LateRecords.to('late', Produced.as('cogroup-late-sink')))
        .aggregate(
          () => '',
          (_k, a, b2) => a + b2,
          Materialized.as<string, string>('sessions').withValueSerde(S),
          { name: 'sessions' },
        )
    }
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    return d
  }

  it('time windows: each input drops its late records to the one side topic, naming its own aggregate processor; on-time records aggregate as before', async () => {
    const d = cogroupDriver('time')
    const one = d.createInputTopic('one', S, S)
    const two = d.createInputTopic('two', S, S)
    const out = d.createOutputTopic<Windowed<string>, string>('out', timeWindowedSerde(S, 10), S)
    const late = d.createOutputTopic('late', S, S)
    await one.pipeInput('a', 'x', 3)
    await two.pipeInput('a', 'y', 5)
    await one.pipeInput('a', 'z', 16) // stream-time 16: window [0,10) closed at 10 + 5 = 15
    await one.pipeInput('a', 'late1', 4, { trace: 't1' })
    // each input's aggregate processor observes its own stream-time (Kafka Streams' per-processor
    // observedStreamTime): input two is at 5 here, so 6 would still be on time
    await two.pipeInput('a', 'w', 12) // window [10,20) still open
    await two.pipeInput('a', 'v', 21) // input two's stream-time 21
    await two.pipeInput('a', 'late2', 6)
    expect(out.readRecordsToList().map((r) => `${r.key!.key}@${r.key!.window.startMs}=${r.value}`)).toEqual([
      'a@0=x',
      'a@0=xy',
      'a@10=z',
      'a@10=zw',
      'a@20=v',
    ])
    const records = late.readRecordsToList()
    expect(records.map(lateOf)).toEqual([
      { record: 'a:late1@4', processor: 'activity-cogroup-agg-0', window: [0, 10], streamTime: 16, lateness: 12 },
      { record: 'a:late2@6', processor: 'activity-cogroup-agg-1', window: [0, 10], streamTime: 21, lateness: 15 },
    ])
    expect(records[0]!.headers['trace']).toBe('t1')
    expect(d.droppedRecords()).toBe(2)
  })

  it('session windows: a record whose session would already be closed goes to the side topic; the sink hangs below every input aggregate', async () => {
    const d = cogroupDriver('session')
    const one = d.createInputTopic('one', S, S)
    const two = d.createInputTopic('two', S, S)
    const late = d.createOutputTopic('late', S, S)
    await one.pipeInput('k', 'a', 100)
    await two.pipeInput('k', 'c', 100) // input two's stream-time 100: close time 100 - 10 - 0 = 90
    await two.pipeInput('j', 'early', 50) // session [50,50] ends before 90: late
    await one.pipeInput('k', 'b', 95) // merges into [95, 100]: fine
    expect(late.readRecordsToList().map(lateOf)).toEqual([
      { record: 'j:early@50', processor: 'sessions-cogroup-agg-1', window: [50, 50], streamTime: 100, lateness: 50 },
    ])
    expect(d.droppedRecords('late')).toBe(1)
  })

  it('describes one side sink below every input aggregate (named by Produced, else <store>-late-records) and rejects a missing topic', () => {
    const b = new StreamsBuilder()
    const one = b.stream<string, string>('one', { keySerde: S, valueSerde: S }).groupByKey()
    const two = b.stream<string, string>('two', { keySerde: S, valueSerde: S }).groupByKey()
    const windowed = one.cogroup(concat).cogroup(two, concat).windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
    windowed
      .withLateRecords(LateRecords.to('late-topic'))
      .aggregate(() => '', Materialized.as<string, string>('agg').withValueSerde(S), { name: 'activity' })
    const text = b.build().describe().toString()
    expect(text).toContain('Sink: agg-late-records (topic: late-topic)\n      <-- activity-cogroup-agg-0, activity-cogroup-agg-1')
    expect(() => windowed.withLateRecords({ topic: '' })).toThrow("parameter 'topic' of the late records must be a non-empty string")
  })
})
