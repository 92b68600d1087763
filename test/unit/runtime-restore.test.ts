/**
 * Restoration through the runtime's task manager and restore coordinator, over the in-memory broker
 * (helpers/fake-kafka.ts): an interrupted restore keeps only what it applied, with the position of
 * exactly that, and the next owner resumes from there.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { StreamsEvents } from '../../lib/app/events.js'
import { RestoreCoordinator } from '../../lib/app/runtime/restore.js'
import { CHANGELOG, MemoryTaskState, createHarness } from './helpers/runtime-harness.js'

describe('restore coordinator', () => {
  it('a restore aborted by a revocation records no position past the data it applied, and the task never runs', async () => {
    const h = createHarness()
    h.broker.produce(
      CHANGELOG,
      0,
      Array.from({ length: 50 }, (_, i): [string, string] => [`k${i}`, '1']),
    )
    h.client.reader.batchSize = 10
    let revoked: Promise<void> | undefined
    h.client.reader.beforeBatch = (n) => {
      // the group takes the task away while its fourth batch is being fetched
      if (n === 3) revoked = h.manager.applyAssignment('member-1', new Set(), false)
    }
    await h.manager.applyAssignment('member-1', new Set(['0_0']), true)
    await new Promise((r) => setTimeout(r, 20))
    await revoked
    const disk = h.disks.get('0_0')!
    expect(disk.position).toBe('30')
    expect(disk.data.size).toBe(30)
    expect(h.eventNames()).toContain(StreamsEvents.RESTORE_START)
    expect(h.eventNames()).not.toContain(StreamsEvents.RESTORE_END)
    expect(h.events.find((e) => e.name === StreamsEvents.TASK_CLOSED)?.payload).toMatchObject({ taskId: '0_0', clean: true })
    expect(h.manager.tasks.size).toBe(0)
    // the producer and state opened for the task were released
    expect(h.client.producers.every((p) => (p as unknown as { closed: boolean }).closed)).toBe(true)

    // the next assignment resumes from the recorded position
    h.client.reader.beforeBatch = undefined
    await h.assign('0_0')
    expect(h.task('0_0').state).toBe('RUNNING')
    const starts = h.events.filter((e) => e.name === StreamsEvents.RESTORE_START).map((e) => e.payload.fromOffset)
    expect(starts).toEqual([undefined, '30'])
    expect(disk.position).toBe('50')
    expect(disk.data.size).toBe(50)
  })

  it('restores a source-topic changelog only up to the committed input offset', async () => {
    const h = createHarness()
    // a source KTable's store uses its input topic as changelog: 6 records, 4 of them consumed and committed
    h.broker.produce(
      CHANGELOG,
      0,
      Array.from({ length: 6 }, (_, i): [string, string] => [`k${i}`, '1']),
    )
    const sm = new MemoryTaskState({ data: new Map(), position: undefined }, 0, [])
    const restore = new RestoreCoordinator({ reader: h.client.reader, emitter: new EventEmitter(), logger: h.config.logger })
    expect(await restore.restore('0_0', sm, new AbortController().signal, (topic) => (topic === CHANGELOG ? 4n : undefined))).toBe(true)
    expect(sm.disk.position).toBe('4')
    expect([...sm.disk.data.keys()]).toEqual(['k0', 'k1', 'k2', 'k3'])
  })
})
