/**
 * KIP-695 task idling (`maxTaskIdleMs`) in the runtime's PartitionGroup, and the consumed offsets
 * of drained partitions moving over transaction markers (StreamTask.advanceDrained).
 */
import { describe, expect, it } from 'vitest'
import type { RawRecord, SubtopologyDef, TaskEngine } from '../../topology/engine/types.js'
import { PartitionGroup } from '../../lib/app/partition-group.js'
import { StreamTask } from '../../lib/app/stream-task.js'
import type { TaskRecordCollector } from '../../lib/app/record-collector.js'
import type { TaskProducer } from '../../lib/app/client/types.js'
import type { TaskStateManager } from '../../lib/state/types.js'

function rec(topic: string, offset: number, timestamp: number): RawRecord {
  return { topic, partition: 0, offset: String(offset), key: null, value: null, timestamp, headers: {} }
}

const AB = [
  { topic: 'a', partition: 0 },
  { topic: 'b', partition: 0 },
]

/** A group where `a` holds records at timestamps 100, 200, 300 (offsets 0..2, fetched to the end) and `b` is empty. */
function group(maxTaskIdleMs: number): PartitionGroup {
  const g = new PartitionGroup(AB, 0, maxTaskIdleMs)
  g.queue('a', 0)!.push([rec('a', 0, 100), rec('a', 1, 200), rec('a', 2, 300)])
  g.queue('a', 0)!.onFetched(2n, 3n, 0)
  return g
}

describe('PartitionGroup task idling (KIP-695)', () => {
  it('an empty partition whose lag is unknown holds the task back, however long (nothing fetched yet)', () => {
    const g = group(0)
    expect(g.processable(0)).toBe(false)
    expect(g.processable(3_600_000)).toBe(false)
    expect(g.blockedBy(0)).toMatchObject({ reason: 'lag', queue: { topic: 'b' } })
    expect(g.take(10, 3_600_000)).toEqual([])
  })

  it('an empty partition with unfetched records holds the task back past maxTaskIdleMs: a catching-up task does not run ahead of its other input', () => {
    const g = group(2000)
    const b = g.queue('b', 0)!
    b.onSeek(10n) // committed offset
    b.onEndOffset(25n, b.version, 0) // 15 records on the broker, not fetched yet
    expect(b.fetchedLag()).toBe(15n)
    expect(g.processable(0)).toBe(false)
    expect(g.processable(60_000)).toBe(false) // not "enforced" after maxTaskIdleMs: the records exist
    // the fetch brings b's records (older than a's): they go first
    b.push([rec('b', 10, 50), rec('b', 11, 150)])
    b.onFetched(11n, 25n, 60_000)
    expect(g.take(3, 60_000).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['b50', 'a100', 'b150'])
    // b drained again with 13 records still to fetch: a's 200 and 300 wait
    expect(g.take(10, 60_000)).toEqual([])
  })

  it('an empty partition fetched to its end lets the task go ahead at once with maxTaskIdleMs 0', () => {
    const g = group(0)
    const b = g.queue('b', 0)!
    b.push([rec('b', 0, 50)])
    b.onFetched(0n, 1n, 0) // fetched up to the end (high watermark 1)
    expect(g.take(10, 0).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['b50', 'a100', 'a200', 'a300'])
  })

  it('with maxTaskIdleMs > 0 a caught-up empty partition is waited for that long from when it was seen caught up, then the task goes ahead (enforced processing)', () => {
    const g = group(100)
    const b = g.queue('b', 0)!
    b.onSeek(7n)
    b.onEndOffset(7n, b.version, 1000) // lag 0
    expect(g.processable(1000)).toBe(false)
    expect(g.idleDeadline()).toBe(1100)
    expect(g.blockedBy(1050)).toMatchObject({ reason: 'idle' })
    expect(g.processable(1099)).toBe(false)
    expect(g.take(1, 1100).map((r) => r.offset)).toEqual(['0'])
    // new data on b ends the idle period; drained again, a new one starts
    b.push([rec('b', 7, 250)])
    b.onFetched(7n, 8n, 1200)
    expect(g.take(10, 1200).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['a200', 'b250'])
    expect(g.idleDeadline()).toBe(1300)
    expect(g.take(10, 1250)).toEqual([])
    expect(g.take(10, 1300).map((r) => r.timestamp)).toEqual([300])
  })

  it('counts every record taken while an idled-out empty partition is passed over (enforced-processing-total)', () => {
    const counted: number[] = []
    const g = group(100)
    g.enforcedProcessing = { record: (n = 1) => void counted.push(n) }
    const b = g.queue('b', 0)!
    b.onSeek(7n)
    b.onEndOffset(7n, b.version, 1000) // lag 0: b idles from 1000 to 1100
    expect(g.take(10, 1000)).toEqual([]) // b seen caught up: it holds the task back until 1100
    expect(g.take(10, 1050)).toEqual([])
    expect(counted).toEqual([])
    expect(g.take(2, 1100).map((r) => r.timestamp)).toEqual([100, 200])
    expect(counted).toEqual([2])
    // b has data again: taking its record is not enforced; drained, b idles again from 1200
    b.push([rec('b', 7, 250)])
    b.onFetched(7n, 8n, 1200)
    expect(g.take(2, 1200).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['b250'])
    expect(counted).toEqual([2])
    expect(g.take(2, 1300).map((r) => `${r.topic}${r.timestamp}`)).toEqual(['a300'])
    expect(counted).toEqual([2, 1])
  })

  it('with maxTaskIdleMs 0 a caught-up empty partition is passed over at once, which counts as enforced; -1 never does', () => {
    const counted: number[] = []
    const g = group(0)
    g.enforcedProcessing = { record: (n = 1) => void counted.push(n) }
    g.queue('b', 0)!.onFetched(0n, 0n, 0) // b fetched to its end (empty)
    expect(g.take(10, 0)).toHaveLength(3)
    expect(counted).toEqual([3])
    const never = group(-1)
    never.enforcedProcessing = { record: (n = 1) => void counted.push(n) }
    expect(never.take(10, 0)).toHaveLength(3)
    expect(counted).toEqual([3])
  })

  it('maxTaskIdleMs -1 never waits', () => {
    const g = group(-1)
    expect(g.take(10, 0).map((r) => r.timestamp)).toEqual([100, 200, 300])
  })

  it('a task with one input partition is never held back', () => {
    const g = new PartitionGroup([{ topic: 'a', partition: 0 }], 0, 5000)
    g.queue('a', 0)!.push([rec('a', 0, 1)])
    expect(g.take(10, 0).map((r) => r.offset)).toEqual(['0'])
  })

  it('an end offset read before a fetch or seek is stale and ignored; an unknown position takes the reset position', () => {
    const g = group(0)
    const b = g.queue('b', 0)!
    const v = b.version
    b.onFetched(4n, 9n, 10) // lag 4 from the fetch
    expect(b.onEndOffset(5n, v, 20)).toBe(false)
    expect(b.fetchedLag()).toBe(4n)
    b.onSeek(undefined) // e.g. reset to earliest: position unknown
    expect(b.fetchedLag()).toBeUndefined()
    expect(b.onEndOffset(12n, b.version, 30, 12n)).toBe(true) // log start 12 = end 12: empty
    expect(b.fetchedLag()).toBe(0n)
    expect(b.positionFetched).toBe(false)
    // a committed offset below the log start (retention deleted it): the consumer resets, the lag is not 20
    b.onSeek(10n)
    expect(b.onEndOffset(30n, b.version, 40, 30n, 30n)).toBe(true)
    expect(b.fetchedLag()).toBe(0n)
  })

  it('a batch of only markers / aborted records moves the position when it reaches over it, and only then', () => {
    const q = new PartitionGroup(AB, 0, 0).queue('b', 0)!
    q.onSeek(10n)
    expect(q.onSkipped(12n, 13n, 14n, 0)).toBe(false) // starts past our position: 10 and 11 may hold records
    expect(q.onSkipped(5n, 9n, 14n, 0)).toBe(false) // ends before our position (an old fetch)
    expect(q.position).toBe(10n)
    expect(q.onSkipped(8n, 11n, 14n, 0)).toBe(true) // 10 and 11 are markers / aborted records
    expect(q.position).toBe(12n)
    expect(q.fetchedLag()).toBe(2n)
    const r = new PartitionGroup(AB, 0, 0).queue('b', 0)!
    r.onSeek(undefined)
    r.onEndOffset(3n, r.version, 0, 0n) // assumed reset position: not a fetched one
    expect(r.onSkipped(0n, 1n, 3n, 0)).toBe(false)
  })
})

describe('StreamTask consumed offsets of drained partitions', () => {
  function task(engine: Partial<TaskEngine> = {}): StreamTask {
    const t = new StreamTask({
      id: '0_0',
      taskId: { subtopology: 0, partition: 0 },
      subtopology: { id: 0, sourceTopics: ['a', 'b'] } as unknown as SubtopologyDef,
      partitions: AB,
      maxTaskIdleMs: -1,
      now: 0,
    })
    t.markRestoring()
    t.initialize({
      engine: {
        prepareBatch: async () => undefined,
        process: async () => undefined,
        streamTime: () => -1,
        ...engine,
      } as unknown as TaskEngine,
      stateManager: {} as TaskStateManager,
      collector: {} as TaskRecordCollector,
      producer: {} as TaskProducer,
      transactional: undefined,
    })
    return t
  }

  it('commits past the transaction markers that follow the last record once the partition is drained', async () => {
    const t = task()
    const a = t.group.queue('a', 0)!
    a.onSeek(0n)
    t.enqueue('a', 0, [rec('a', 0, 1), rec('a', 1, 2)])
    a.onFetched(2n, 3n, 0) // offset 2 is the transaction's commit marker
    await t.process(1, 0)
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '1' }]) // record 1 still queued
    await t.process(10, 0)
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '3' }])
    // a later fetch of only a marker (kafkajs skips it without eachBatch)
    expect(a.onSkipped(3n, 3n, 4n, 0)).toBe(true)
    expect(t.advanceDrained()).toBe(true)
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '4' }])
  })

  it('never moves past records that failed or are in flight', async () => {
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    let calls = 0
    const t = task({
      process: async () => {
        calls++
        if (calls === 1) await gate
        if (calls === 2) throw new Error('boom')
      },
    })
    const a = t.group.queue('a', 0)!
    a.onSeek(0n)
    t.enqueue('a', 0, [rec('a', 0, 1), rec('a', 1, 2), rec('a', 2, 3)])
    a.onFetched(3n, 4n, 0)
    const p = t.process(10, 0)
    await Promise.resolve()
    expect(t.advanceDrained()).toBe(false) // queue empty, but its records are in flight
    release()
    await expect(p).rejects.toThrow(/boom/)
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '1' }])
    expect(t.advanceDrained()).toBe(false)
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '1' }])
  })

  it('does not commit an assumed reset position', () => {
    const t = task()
    const b = t.group.queue('b', 0)!
    b.onSeek(undefined)
    b.onEndOffset(50n, b.version, 0, 50n)
    expect(t.advanceDrained()).toBe(false)
    expect(t.offsetsToCommit()).toEqual([])
  })

  it('commits the stream-time as offset metadata, and every positioned partition when only stream-time moved', async () => {
    let streamTime = -1
    const t = task({ streamTime: () => streamTime })
    const a = t.group.queue('a', 0)!
    a.onSeek(0n)
    t.enqueue('a', 0, [rec('a', 0, 1)])
    a.onFetched(0n, 1n, 0)
    await t.process(10, 0)
    streamTime = 1
    const first = t.offsetsToCommit()
    expect(first).toEqual([{ topic: 'a', partition: 0, offset: '1', metadata: 'kstreams/1 st=1' }])
    t.markCommitted(first)
    expect(t.committedStreamTime).toBe(1)
    expect(t.offsetsToCommit()).toEqual([])
    // an idle advance: no record, stream-time moved
    streamTime = 5000
    expect(t.offsetsToCommit()).toEqual([{ topic: 'a', partition: 0, offset: '1', metadata: 'kstreams/1 st=5000' }])
    expect(t.needsCommit()).toBe(true)
  })

  it('is due for an idle advance only when caught up, idle long enough, and not advanced just before', () => {
    let streamTime = -1
    const t = task({ streamTime: () => streamTime })
    const a = t.group.queue('a', 0)!
    const b = t.group.queue('b', 0)!
    const now = Date.now() + 10_000
    a.onSeek(0n)
    a.onFetched(4n, 5n, 0)
    expect(t.idleAdvanceDue(now, 1000)).toBe(false) // b's lag is unknown
    b.onSeek(0n)
    b.onFetched(1n, 9n, 0)
    expect(t.idleAdvanceDue(now, 1000)).toBe(false) // b has records to fetch
    b.onFetched(8n, 9n, 0)
    expect(t.idleAdvanceDue(now, 20_000)).toBe(false) // input arrived less than 20 s ago
    expect(t.idleAdvanceDue(now, 1000)).toBe(false) // no stream-time yet: nothing to close
    streamTime = 5
    expect(t.idleAdvanceDue(now, 1000)).toBe(true)
    expect(t.idleAdvanceDue(now + 500, 1000)).toBe(false) // advanced 500 ms ago
    expect(t.idleAdvanceDue(now + 1000, 1000)).toBe(true)
  })
})
