/**
 * Late records to a side topic (`withLateRecords`) against the real broker, exactly-once: a record
 * that arrives after its window and grace closed lands on the side topic with its key, value,
 * timestamp and the late-record headers, read_committed (in the task's transaction), and the
 * on-time windowed counts are unaffected.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { LATE_RECORD_HEADERS, LateRecords, Materialized, Produced, Serdes, StreamsBuilder, TimeWindows } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const S = Serdes.String()
const L = Serdes.Long()
const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

describe('late records to a side topic (withLateRecords)', () => {
  it('writes a record later than window + grace to the side topic in the task transaction, with its headers', async () => {
    const input = randomTopic('late-in')
    const counts = randomTopic('late-counts')
    const late = randomTopic('late-side')
    await createTopics(input, counts, late)
    const b = new StreamsBuilder()
    b.stream<string, string>(input, { keySerde: S, valueSerde: S })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(1000, 500))
      .withLateRecords(LateRecords.to(late, Produced.with(S, S)))
      .count(Materialized.with(S, L))
      .toStream()
      .map((w, n) => ({ key: `${w.key}@${w.window.startMs}`, value: String(n) }))
      .to(counts, { keySerde: S, valueSerde: S })
    const streams = new KafkaStreams(b.build(), {
      applicationId: randomTopic('late-app'),
      bootstrapServers: brokers(),
      stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-late-')),
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 200,
      logLevel: 'error',
    })
    clients.push(streams)

    // event time behind the wall clock, aligned to the 1 s window
    const t = Math.floor((Date.now() - 60_000) / 1000) * 1000
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const rec = (key: string, value: string, ts: number) => ({ key, value, timestamp: String(ts) })
    // a@t, a@t+100 (window [t, t+1000)); b@t+5000 moves stream-time past t+1000+500; then a@t+200
    // is late for [t, t+1000) by 4800 ms; c@t+5100 is on time
    await producer.send({
      topic: input,
      messages: [rec('a', '1', t), rec('a', '2', t + 100), rec('b', '3', t + 5000), rec('a', 'late', t + 200), rec('c', '4', t + 5100)],
    })
    await producer.disconnect()
    await streams.start()

    const read = await consumeUntil({
      topics: [counts, late],
      timeoutMs: 60_000,
      until: (rs) => rs.some((r) => r.topic === late) && rs.some((r) => r.topic === counts && r.key === `c@${t + 5000}`),
    })
    const lateRecords = read.filter((r) => r.topic === late)
    expect(lateRecords.map((r) => [r.key, r.value, r.timestamp])).toEqual([['a', 'late', String(t + 200)]])
    const h = lateRecords[0]!.headers ?? {}
    const header = (name: string) => h[name]?.toString()
    expect(header(LATE_RECORD_HEADERS.windowStart)).toBe(String(t))
    expect(header(LATE_RECORD_HEADERS.windowEnd)).toBe(String(t + 1000))
    expect(header(LATE_RECORD_HEADERS.streamTime)).toBe(String(t + 5000))
    expect(header(LATE_RECORD_HEADERS.lateness)).toBe('4800')
    expect(header(LATE_RECORD_HEADERS.processor)).toBeTruthy()
    // the late record did not count; the on-time ones did (updates of each window in order)
    const lastCount = new Map(read.filter((r) => r.topic === counts).map((r) => [r.key, r.value]))
    expect(Object.fromEntries(lastCount)).toEqual({ [`a@${t}`]: '2', [`b@${t + 5000}`]: '1', [`c@${t + 5000}`]: '1' })
  }, 120_000)
})
