/**
 * Offered-load generator for the latency phase: produces the benchmark's records to one topic at
 * a fixed rate for a fixed time, each stamped with its send time (CreateTime), so that the
 * harness measures end-to-end latency as (receive time of the output − timestamp).
 *
 * Invoked by bench/run.ts as `node --import tsx bench/workers/loadgen.ts '<json LoadArgs>'`.
 * Emits `first` when it starts sending and `done` with the records sent and the achieved rate.
 */
import type { Message } from 'kafkajs'
import { kafkaClient } from '../lib/kafka.js'
import { emit } from '../lib/proc.js'
import { keyName, valueOf } from '../lib/data.js'

export interface LoadArgs {
  brokers: string
  topic: string
  /** Records per second. */
  rate: number
  durationMs: number
  keys: number
}

const args = JSON.parse(process.argv[2] ?? '{}') as LoadArgs
const TICK_MS = 10

async function main(): Promise<void> {
  const producer = kafkaClient(args.brokers, 'kbench-loadgen').producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const start = Date.now()
  emit({ type: 'first', t: start })
  let sent = 0
  const inFlight = new Set<Promise<unknown>>()
  while (Date.now() - start < args.durationMs) {
    const due = Math.floor(((Date.now() - start) * args.rate) / 1000)
    if (due > sent && inFlight.size < 8) {
      const now = Date.now()
      const messages = new Array<Message>(due - sent)
      for (let i = sent; i < due; i++) {
        messages[i - sent] = { key: keyName(i % args.keys), value: valueOf(i, args.keys), timestamp: String(now) }
      }
      sent = due
      const p = producer.send({ topic: args.topic, messages, acks: -1 }).finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    await new Promise((r) => setTimeout(r, TICK_MS))
  }
  await Promise.all(inFlight)
  const end = Date.now()
  await producer.disconnect()
  emit({ type: 'done', t: end, sent, achievedRate: (sent * 1000) / (end - start) })
  process.exit(0)
}

main().catch((err: unknown) => {
  emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  process.exit(1)
})
