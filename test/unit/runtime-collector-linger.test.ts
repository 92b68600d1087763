import { describe, expect, it } from 'vitest'
import { TaskRecordCollector } from '../../lib/app/record-collector.js'

describe('TaskRecordCollector linger (producer linger.ms)', () => {
  it('sends a partial batch once its oldest record has waited lingerMs, not before', async () => {
    const sent: string[][] = []
    const c = new TaskRecordCollector({
      taskId: '0_0',
      sender: () => async (tms) => {
        sent.push(tms.flatMap((t) => t.messages.map((m) => String(m.value))))
        return []
      },
      onSendError: async (e) => {
        throw e
      },
    })
    const t0 = Date.now()
    c.send({ topic: 't', key: null, value: Buffer.from('a'), timestamp: 0, headers: {} })
    c.send({ topic: 't', key: null, value: Buffer.from('b'), timestamp: 1, headers: {} })
    c.maybeLinger(t0 - 1, 20) // before the first record was buffered: nothing is old enough
    expect(c.buffered).toBe(2)
    c.maybeLinger(Date.now() + 20, 20)
    expect(c.buffered).toBe(0)
    await c.flush()
    expect(sent).toEqual([['a', 'b']])
    // an empty buffer never sends an empty batch, and the age restarts with the next record
    c.maybeLinger(Date.now() + 1000, 20)
    expect(sent).toHaveLength(1)
    c.send({ topic: 't', key: null, value: Buffer.from('c'), timestamp: 2, headers: {} })
    c.maybeLinger(Date.now() - 1000, 20)
    expect(c.buffered).toBe(1)
    await c.flush()
    expect(sent).toEqual([['a', 'b'], ['c']])
  })
})
