import { describe, expect, it } from 'vitest'
import os from 'node:os'
import path from 'node:path'
import { resolveStreamsConfig, internalTopicOverrides, type StreamsConfig } from '../../lib/app/options.js'
import { StateMachine, STATE_TRANSITIONS } from '../../lib/app/state.js'
import { PartitionGroup } from '../../lib/app/partition-group.js'
import { TaskRecordCollector, toTopicMessages } from '../../lib/app/record-collector.js'
import { IllegalStateError, StreamsConfigError } from '../../topology/errors.js'
import type { RawRecord } from '../../topology/engine/types.js'

const base: StreamsConfig = { applicationId: 'app', bootstrapServers: 'localhost:9092' }

describe('resolveStreamsConfig', () => {
  it('applies Kafka Streams defaults and freezes the result', () => {
    const c = resolveStreamsConfig(base)
    expect(c.processingGuarantee).toBe('at_least_once')
    expect(c.commitIntervalMs).toBe(30_000)
    expect(c.stateDir).toBe(path.join(os.tmpdir(), 'kstreams'))
    expect(c.numStandbyReplicas).toBe(0)
    expect(c.acceptableRecoveryLag).toBe(10_000)
    expect(c.maxWarmupReplicas).toBe(2)
    expect(c.probingRebalanceIntervalMs).toBe(600_000)
    expect(c.statestoreCacheMaxBytes).toBe(10 * 1024 * 1024)
    expect(c.bufferedRecordsPerPartition).toBe(1000)
    expect(c.replicationFactor).toBe(-1)
    expect(c.kafka.brokers).toEqual(['localhost:9092'])
    expect(c.kafka.clientId).toBe('app')
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('defaults commitIntervalMs to 100 under exactly-once', () => {
    expect(resolveStreamsConfig({ ...base, processingGuarantee: 'exactly_once' }).commitIntervalMs).toBe(100)
    const v2 = resolveStreamsConfig({ ...base, processingGuarantee: 'exactly_once_v2' })
    expect([v2.commitIntervalMs, v2.exactlyOnce, v2.exactlyOnceV2]).toEqual([100, true, true])
    const alpha = resolveStreamsConfig({ ...base, processingGuarantee: 'exactly_once' })
    expect([alpha.exactlyOnce, alpha.exactlyOnceV2]).toEqual([true, false])
  })

  it('takes brokers from a kafkajs config (SSL/SASL passthrough)', () => {
    const c = resolveStreamsConfig({
      applicationId: 'a',
      kafka: { brokers: ['b:1'], ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'p' } },
    })
    expect(c.kafka.brokers).toEqual(['b:1'])
    expect(c.kafka.ssl).toBe(true)
  })

  it.each([
    [{ applicationId: '' }, "invalid config 'applicationId'"],
    [{ applicationId: 'bad id' }, "invalid config 'applicationId'"],
    [{ commitIntervalMs: 0 }, "invalid config 'commitIntervalMs': expected an integer in [1, ∞], got 0"],
    // Kafka Streams' deprecated name of v2 is not accepted: one spelling per mode
    [
      { processingGuarantee: 'exactly_once_beta' },
      "invalid config 'processingGuarantee': expected 'at_least_once' | 'exactly_once' | 'exactly_once_v2', got \"exactly_once_beta\"",
    ],
    [{ numStandbyReplicas: -1 }, "invalid config 'numStandbyReplicas'"],
    [{ acceptableRecoveryLag: -1 }, "invalid config 'acceptableRecoveryLag': expected an integer in [0, ∞], got -1"],
    [{ maxWarmupReplicas: 0 }, "invalid config 'maxWarmupReplicas': expected an integer in [1, ∞], got 0"],
    [{ probingRebalanceIntervalMs: 500 }, "invalid config 'probingRebalanceIntervalMs': expected an integer in [1000, ∞], got 500"],
    [{ bootstrapServers: 'nohostport' }, "invalid config 'bootstrapServers'"],
    [{ applicationServer: 'host' }, "invalid config 'applicationServer': expected 'host:port', got \"host\""],
    [{ deserializationExceptionHandler: 'ignore' }, "invalid config 'deserializationExceptionHandler'"],
    [{ replicationFactor: 0 }, "invalid config 'replicationFactor'"],
    [{ commitIntervalMS: 5 }, "invalid config 'commitIntervalMS': unknown config key"],
    [{ heartbeatIntervalMs: 50_000 }, "invalid config 'heartbeatIntervalMs': must be lower than sessionTimeoutMs (45000), got 50000"],
  ])('rejects %o naming the key', (override, message) => {
    const fn = () => resolveStreamsConfig({ ...base, ...(override as object) } as StreamsConfig)
    expect(fn).toThrow(StreamsConfigError)
    expect(fn).toThrow(message)
  })

  it('splits topicConfig overrides by internal topic kind', () => {
    const c = resolveStreamsConfig({
      ...base,
      topicConfig: { 'min.insync.replicas': '2', 'changelog.segment.ms': '100', 'repartition.retention.ms': '5' },
    })
    expect(internalTopicOverrides(c, 'changelog')).toEqual({ 'min.insync.replicas': '2', 'segment.ms': '100' })
    expect(internalTopicOverrides(c, 'repartition')).toEqual({ 'min.insync.replicas': '2', 'retention.ms': '5' })
  })
})

describe('StateMachine', () => {
  it('follows the transition table and notifies listeners', () => {
    const sm = new StateMachine()
    const seen: string[] = []
    sm.addListener((n, o) => seen.push(`${o}>${n}`))
    sm.transition('REBALANCING')
    sm.transition('RUNNING')
    sm.transition('REBALANCING')
    sm.transition('PENDING_SHUTDOWN')
    sm.transition('NOT_RUNNING')
    expect(seen).toEqual([
      'CREATED>REBALANCING',
      'REBALANCING>RUNNING',
      'RUNNING>REBALANCING',
      'REBALANCING>PENDING_SHUTDOWN',
      'PENDING_SHUTDOWN>NOT_RUNNING',
    ])
  })
  it('throws IllegalStateError on a transition the table does not allow', () => {
    const sm = new StateMachine()
    expect(() => sm.transition('RUNNING')).toThrow(IllegalStateError)
    expect(() => sm.transition('RUNNING')).toThrow('illegal KafkaStreams state transition CREATED → RUNNING')
    expect(STATE_TRANSITIONS.NOT_RUNNING).toEqual([])
  })
})

function rec(topic: string, offset: number, timestamp: number): RawRecord {
  return { topic, partition: 0, offset: String(offset), key: null, value: null, timestamp, headers: {} }
}

describe('PartitionGroup', () => {
  it('takes records across partitions in timestamp order', () => {
    const g = new PartitionGroup(
      [
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ],
      0,
      0,
    )
    g.queue('a', 0)!.push([rec('a', 0, 10), rec('a', 1, 30), rec('a', 2, 50)])
    g.queue('b', 0)!.push([rec('b', 0, 20), rec('b', 1, 40)])
    g.queue('b', 0)!.onFetched(1n, 2n, 0) // fetched to the end: b drained does not hold a back
    expect(g.take(10, 0).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['a10', 'b20', 'a30', 'b40', 'a50'])
  })
  it('waits up to maxTaskIdleMs for an empty, caught-up partition before going ahead', () => {
    const g = new PartitionGroup(
      [
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ],
      1000,
      100,
    )
    g.queue('a', 0)!.push([rec('a', 0, 10)])
    g.queue('b', 0)!.onSeek(5n)
    g.queue('b', 0)!.onEndOffset(5n, g.queue('b', 0)!.version, 1000) // lag 0 (KIP-695: see runtime-partition-group.test.ts)
    expect(g.processable(1000)).toBe(false)
    expect(g.take(10, 1050)).toEqual([])
    expect(g.idleDeadline()).toBe(1100)
    expect(g.processable(1100)).toBe(true)
    expect(g.take(10, 1100).map((r) => r.offset)).toEqual(['0'])
  })
  it('drops records below an offset (resume at the committed position)', () => {
    const g = new PartitionGroup([{ topic: 'a', partition: 0 }], 0, 0)
    g.queue('a', 0)!.push([rec('a', 5, 1), rec('a', 6, 2), rec('a', 7, 3)])
    expect(g.queue('a', 0)!.dropBefore(7n)).toBe(2)
    expect(g.take(10, 0).map((r) => r.offset)).toEqual(['7'])
  })
})

describe('TaskRecordCollector', () => {
  it('sends in order, in batches, and reports end offsets of explicit partitions', async () => {
    const sent: string[][] = []
    let base = 100
    const c = new TaskRecordCollector({
      taskId: '0_0',
      flushRecords: 2,
      sender: () => async (tms) => {
        sent.push(tms.flatMap((t) => t.messages.map((m) => String(m.value))))
        const n = tms.flatMap((t) => t.messages).filter((m) => m.partition === 3).length
        const res = [{ topicName: 'cl', partition: 3, errorCode: 0, baseOffset: String(base) }]
        base += n
        return res
      },
      onSendError: async (e) => {
        throw e
      },
    })
    for (let i = 0; i < 5; i++) c.send({ topic: 'cl', partition: 3, key: null, value: Buffer.from(String(i)), timestamp: 0, headers: {} })
    await c.flush()
    expect(sent).toEqual([['0', '1'], ['2', '3'], ['4']])
    expect(c.endOffset('cl', 3)).toBe('105')
    expect(c.sentSinceCommit).toBe(5)
    c.resetCommitState()
    expect(c.endOffset('cl', 3)).toBeUndefined()
  })
  it('surfaces a send error from flush', async () => {
    const c = new TaskRecordCollector({
      taskId: '0_0',
      sender: () => async () => Promise.reject(new Error('boom')),
      onSendError: async (e) => Promise.reject(e),
    })
    c.send({ topic: 't', key: null, value: null, timestamp: 0, headers: {} })
    await expect(c.flush()).rejects.toThrow('boom')
  })
  it('groups records by topic as kafkajs messages with string timestamps', () => {
    const tm = toTopicMessages([
      { topic: 'x', key: Buffer.from('k'), value: null, timestamp: 5, headers: {} },
      { topic: 'y', key: null, value: null, timestamp: 6, headers: {}, partition: 1 },
      { topic: 'x', key: null, value: null, timestamp: 7, headers: {} },
    ])
    expect(tm.map((t) => [t.topic, t.messages.map((m) => m.timestamp)])).toEqual([
      ['x', ['5', '7']],
      ['y', ['6']],
    ])
    expect(tm[1]!.messages[0]!.partition).toBe(1)
  })
})
