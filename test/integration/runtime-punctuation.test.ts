/**
 * A wall-clock punctuator in a task that receives no more input, on the real broker: what it
 * forwards into a cached count is committed (and so flushed downstream) at the next commit
 * interval, as Kafka Streams commits a task after a punctuation. Without that commit the count's
 * cache kept the ticks until an input record made the task commit.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Consumed,
  KafkaStreams,
  Materialized,
  Produced,
  Serdes,
  StreamsBuilder,
  type FixedKeyProcessorSupplier,
  type ProcessingGuarantee,
} from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, onCleanup, randomTopic } from './helpers.js'

const S = Serdes.String()

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

/**
 * Passes its input through and, once it has seen a record, forwards that record's key again every
 * 200 ms of wall-clock time (a fixed-key processor: no repartition before the count).
 */
const ticker: FixedKeyProcessorSupplier<string, string, string> = () => {
  let key: string | undefined
  return {
    init(context) {
      context.schedule(200, 'WALL_CLOCK_TIME', (timestamp) =>
        key === undefined ? undefined : context.forward({ key, value: 'tick', timestamp, headers: {} }),
      )
    },
    process(record) {
      key = record.key
    },
  }
}

describe('wall-clock punctuation in a task without new input', () => {
  it.each(['at_least_once', 'exactly_once_v2'] as const)(
    '%s: the updates a punctuator makes to a cached count are committed and forwarded at the commit interval',
    { timeout: 60_000 },
    async (guarantee: ProcessingGuarantee) => {
      const input = randomTopic('punct-in')
      const output = randomTopic('punct-out')
      await createTopics({ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 })
      const b = new StreamsBuilder()
      b.stream(input, Consumed.with(S, S))
        .processValues(ticker)
        .groupByKey()
        .count(Materialized.as<string, number>('ticks').withCachingEnabled())
        .toStream()
        .mapValues((n) => String(n))
        .to(output, Produced.with(S, S))
      const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-it-punct-'))
      onCleanup(() => rm(dir, { recursive: true, force: true }))
      const s = new KafkaStreams(b.build(), {
        applicationId: randomTopic('punct'),
        bootstrapServers: brokers(),
        stateDir: dir,
        processingGuarantee: guarantee,
        commitIntervalMs: 300,
        logLevel: 'error',
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1000,
      })
      clients.push(s)
      await s.start()
      // one input record, then only the punctuator feeds the count
      await (await connectedProducer()).send({ topic: input, messages: [{ key: 'k', value: 'x' }] })
      const out = await consumeUntil({ topics: [output], timeoutMs: 40_000, until: (rs) => rs.length >= 4 })
      const counts = out.map((r) => Number(r.value))
      expect(out.every((r) => r.key === 'k')).toBe(true)
      // one update per commit at most (caching), each later than the one before
      for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThan(counts[i - 1]!)
    },
  )
})
