import { describe, expect, it } from 'vitest'
import {
  Consumed,
  InvalidStateStoreError,
  InvalidTimestampError,
  ProcessingError,
  Produced,
  SerializationError,
  Serdes,
  Stores,
  StreamsBuilder,
  Topology,
  type KeyValueStore,
  type Processor,
  type ProcessorContext,
  type StreamRecord,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const L = Serdes.Long()

/** Counts per key in a store; emits the running count. */
class CountingProcessor implements Processor<string, string, string, number> {
  private ctx!: ProcessorContext<string, number>
  private store!: KeyValueStore<string, number>
  init(context: ProcessorContext<string, number>): void {
    this.ctx = context
    this.store = context.getStateStore<KeyValueStore<string, number>>('counts')
  }
  async process(record: StreamRecord<string, string>): Promise<void> {
    const n = ((await this.store.get(record.key)) ?? 0) + 1
    await this.store.put(record.key, n)
    await this.ctx.forward({ ...record, value: n })
  }
}

describe('Processor API', () => {
  it('process() with a connected store, forward, and store inspection', async () => {
    const b = new StreamsBuilder()
    b.addStateStore(Stores.keyValueStoreBuilder('counts', S, L))
    b.stream('in', Consumed.with(S, S))
      .process(() => new CountingProcessor(), { stores: ['counts'] })
      .to('out', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('a', 'x', 1)
    await input.pipeInput('a', 'y', 2)
    await input.pipeInput('b', 'z', 3)
    expect(d.createOutputTopic('out', S, L).readKeyValuesToList()).toEqual([
      { key: 'a', value: 1 },
      { key: 'a', value: 2 },
      { key: 'b', value: 1 },
    ])
    const store = d.getKeyValueStore<string, number>('counts')
    expect(await store.get('a')).toBe(2)
    const all: Array<[string, number]> = []
    for await (const e of store.all()) all.push([e.key, e.value])
    expect(all).toEqual([
      ['a', 2],
      ['b', 1],
    ])
    await d.close()
  })

  it('getStateStore on a store that is not connected throws InvalidStateStoreError with the place', async () => {
    const b = new StreamsBuilder()
    b.addStateStore(Stores.keyValueStoreBuilder('counts', S, L))
    b.stream('in', Consumed.with(S, S)).process(() => new CountingProcessor())
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    await expect(d.ready()).rejects.toThrow(InvalidStateStoreError)
    await expect(d.ready()).rejects.toThrow("processor 'KSTREAM-PROCESSOR-0000000001' has no access to state store 'counts'")
  })

  it('stream-time punctuators fire when stream-time reaches the next multiple of the interval', async () => {
    const fired: number[] = []
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .process<string, string>(() => {
        let ctx: ProcessorContext<string, string>
        return {
          init(c) {
            ctx = c
            ctx.schedule(10, 'STREAM_TIME', async (ts) => {
              fired.push(ts)
              await ctx.forward({ key: 'tick', value: String(ts), timestamp: ts, headers: {} })
            })
          },
          process() {},
        }
      })
      .to('ticks', Produced.with(S, S))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', 3) // first punctuation at stream-time >= 0
    await input.pipeInput('k', 'v', 5) // next due at 10
    await input.pipeInput('k', 'v', 12) // fires at 12; next 20
    await input.pipeInput('k', 'v', 8) // stream-time stays 12
    await input.pipeInput('k', 'v', 45) // missed 20, 30, 40: fires once at 45; next 50
    await input.pipeInput('k', 'v', 49)
    await input.pipeInput('k', 'v', 50)
    expect(fired).toEqual([3, 12, 45, 50])
    expect(d.createOutputTopic('ticks', S, S).readValuesToList()).toEqual(['3', '12', '45', '50'])
    await d.close()
  })

  it('wall-clock punctuators fire on advanceWallClockTime; cancel stops them', async () => {
    const fired: number[] = []
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).process(() => ({
      init(c: ProcessorContext<never, never>) {
        const handle = c.schedule(100, 'WALL_CLOCK_TIME', (ts) => {
          fired.push(ts)
          if (fired.length === 3) handle.cancel()
        })
      },
      process() {},
    }))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 1000)
    await d.ready()
    await d.advanceWallClockTime(50)
    expect(fired).toEqual([])
    await d.advanceWallClockTime(50) // 1100
    await d.advanceWallClockTime(250) // 1350: one punctuation, next at 1400
    await d.advanceWallClockTime(50) // 1400
    await d.advanceWallClockTime(500)
    expect(fired).toEqual([1100, 1350, 1400])
    await d.close()
  })

  it('Topology built by hand: sources, processors, sinks, stores', async () => {
    const topology = new Topology()
      .addSource('src', 'in', { keySerde: S, valueSerde: S })
      .addProcessor(
        'upper',
        () => {
          let ctx: ProcessorContext<string, string>
          return {
            init: (c: ProcessorContext<string, string>) => void (ctx = c),
            process: (r: StreamRecord<string, string>) => ctx.forward({ ...r, value: r.value.toUpperCase() }),
          }
        },
        'src',
      )
      .addProcessor('count', () => new CountingProcessor(), 'upper')
      .addStateStore(Stores.keyValueStoreBuilder('counts', S, L).withLoggingDisabled(), 'count')
      .addSink('sink-upper', 'upper-out', { keySerde: S, valueSerde: S }, 'upper')
      .addSink('sink-count', 'count-out', { keySerde: S, valueSerde: L }, 'count')
    const d = new TopologyTestDriver(topology, { applicationId: 'app' }, 0)
    await d.createInputTopic('in', S, S).pipeInput('k', 'hi', 1)
    expect(d.createOutputTopic('upper-out', S, S).readValue()).toBe('HI')
    expect(d.createOutputTopic('count-out', S, L).readValue()).toBe(1)
    await d.close()
  })

  it('processValues keeps the key and may use stores', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .processValues<number>(() => {
        let ctx: ProcessorContext<string, number>
        return { init: (c) => void (ctx = c), process: (r) => ctx.forward({ ...r, value: r.value.length }) }
      })
      .to('out', Produced.with(S, Serdes.Integer()))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    await d.createInputTopic('in', S, S).pipeInput('k', 'four', 1)
    expect(d.createOutputTopic('out', S, Serdes.Integer()).readKeyValue()).toEqual({ key: 'k', value: 4 })
    await d.close()
  })

  it('processing errors become ProcessingError with the place; a handler may continue', async () => {
    const build = () => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .mapValues((v) => {
          if (v === 'bad') throw new Error('boom')
          return v
        })
        .to('out', Produced.with(S, S))
      return b.build()
    }
    const failing = new TopologyTestDriver(build(), { applicationId: 'app' }, 0)
    const err = await failing
      .createInputTopic('in', S, S)
      .pipeInput('k', 'bad', 1)
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(ProcessingError)
    expect((err as Error).message).toBe(
      "processor 'KSTREAM-MAPVALUES-0000000001' failed: boom (task 0_0, processor KSTREAM-MAPVALUES-0000000001, topic in, partition 0, offset 0)",
    )
    await failing.close()

    const handled: string[] = []
    const lenient = new TopologyTestDriver(
      build(),
      {
        applicationId: 'app',
        processingExceptionHandler: (_e, place) => {
          handled.push(place.processor)
          return 'continue'
        },
      },
      0,
    )
    const input = lenient.createInputTopic('in', S, S)
    await input.pipeInput('k', 'bad', 1)
    await input.pipeInput('k', 'good', 2)
    expect(lenient.createOutputTopic('out', S, S).readValuesToList()).toEqual(['good'])
    expect(handled).toEqual(['KSTREAM-MAPVALUES-0000000001'])
    expect(lenient.droppedRecords('processing-error')).toBe(1)
    await lenient.close()
  })

  it('deserialization errors: fail by default, continue + count with a handler', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, Serdes.Integer())).to('out', Produced.with(S, Serdes.Integer()))
    const topology = b.build()
    const strict = new TopologyTestDriver(topology, { applicationId: 'app' }, 0)
    await expect(strict.createInputTopic('in', S, S).pipeInput('k', 'not-4-bytes-long', 1)).rejects.toThrow(SerializationError)
    await strict.close()
    const lenient = new TopologyTestDriver(topology, { applicationId: 'app', deserializationExceptionHandler: () => 'continue' }, 0)
    await lenient.createInputTopic('in', S, S).pipeInput('k', 'xx', 1)
    await lenient.createInputTopic('in', S, Serdes.Integer()).pipeInput('k', 42, 2)
    expect(lenient.createOutputTopic('out', S, Serdes.Integer()).readValuesToList()).toEqual([42])
    expect(lenient.droppedRecords('deserialization-error')).toBe(1)
    await lenient.close()
  })

  it('negative timestamps: fail by default, skip + count with log-and-skip', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).to('out', Produced.with(S, S))
    const strict = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    await expect(strict.createInputTopic('in', S, S).pipeInput('k', 'v', -1)).rejects.toThrow(InvalidTimestampError)
    await strict.close()
    const lenient = new TopologyTestDriver(b.build(), { applicationId: 'app', invalidTimestampPolicy: 'log-and-skip' }, 0)
    await lenient.createInputTopic('in', S, S).pipeInput('k', 'v', -5)
    expect(lenient.createOutputTopic('out', S, S).isEmpty()).toBe(true)
    expect(lenient.droppedRecords('invalid-timestamp')).toBe(1)
    await lenient.close()
  })

  it('a custom TimestampExtractor sets event time (seen by stream-time and sinks)', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S).withTimestampExtractor({ extract: (r) => Number(r.value) })).to('out', Produced.with(S, S))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    await d.createInputTopic('in', S, S).pipeInput('k', '777', 1)
    expect(d.createOutputTopic('out', S, S).readRecord().timestamp).toBe(777)
    await d.close()
  })
})
