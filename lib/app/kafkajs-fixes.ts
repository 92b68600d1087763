/**
 * A fix for kafkajs 2.2.4 (pinned exactly in package.json) that exactly-once depends on, applied
 * once per process by patching kafkajs' `Broker.prototype.fetch` when this module is imported
 * (lib/app/kafka-streams.ts and lib/app/client/kafkajs.ts import it).
 *
 * ## read_committed returned records of aborted transactions
 * A read_committed Fetch response lists the aborted transactions overlapping the fetched range
 * (`producerId`, `firstOffset`); the consumer must drop every transactional record of such a
 * producer from `firstOffset` up to that producer's ABORT marker. kafkajs'
 * `filterAbortedMessages` assumes the list is sorted by `firstOffset` and activates at most one
 * aborted transaction per record. Brokers list them in completion order instead (seen: `5963@142`
 * before `5968@138`), so records 138-141 of the aborted transaction of producer 5968 reached
 * `eachBatch` as if committed — the repartition topic of an exactly-once app after a kill -9 gave
 * 20 extra aggregates out of 810 (test/integration/runtime-eos.test.ts, re-keying scenario). The
 * same kafkajs code drops aborted records for the changelog reader (restoration) and for any
 * kafkajs consumer, test verifiers included.
 *
 * The patch drops aborted records itself, the way the Java consumer does (all aborted transactions
 * starting at or before a record are active; a producer's ABORT marker ends its), by flagging them
 * as control records: kafkajs' `Batch` then filters them out like transaction markers, while their
 * offsets still count for the batch's last offset (the fetch position moves past them). The list is
 * emptied so kafkajs' own filter does nothing.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** The fields of kafkajs' decoded fetch response this fix reads and writes. */
export interface FetchedPartitionData {
  abortedTransactions?: Array<{ producerId: string; firstOffset: string }>
  messages?: Array<{
    offset: string
    key: Buffer | null
    isControlRecord?: boolean
    batchContext?: { producerId?: string; inTransaction?: boolean }
  }>
}

const PATCHED = Symbol.for('kstreams.kafkajs.fetch.abortedTransactions')
const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]) // control record key: version 0, type 0 (ABORT)

/**
 * Flags the records of aborted transactions in one partition's fetch data as control records and
 * empties its aborted-transaction list (see the module comment).
 * @returns how many records were flagged.
 */
export function markAbortedRecords(pd: FetchedPartitionData): number {
  const list = pd.abortedTransactions
  if (!Array.isArray(list) || list.length === 0 || !Array.isArray(pd.messages)) return 0
  const pending = [...list].sort((a, b) => {
    const x = BigInt(a.firstOffset)
    const y = BigInt(b.firstOffset)
    return x < y ? -1 : x > y ? 1 : 0
  })
  const active = new Set<string>()
  let marked = 0
  for (const m of pd.messages) {
    const offset = BigInt(m.offset)
    while (pending.length > 0 && BigInt(pending[0]!.firstOffset) <= offset) active.add(String(pending.shift()!.producerId))
    const producerId = String(m.batchContext?.producerId)
    if (m.isControlRecord) {
      if (m.key && Buffer.from(m.key).equals(ABORT_MARKER_KEY)) active.delete(producerId)
      continue
    }
    if (m.batchContext?.inTransaction && active.has(producerId)) {
      m.isControlRecord = true
      marked++
    }
  }
  pd.abortedTransactions = []
  return marked
}

/** Patches kafkajs' Broker.prototype.fetch (idempotent). */
export function applyKafkajsFixes(): void {
  const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string | symbol, unknown> }
  const proto = Broker.prototype
  if (proto[PATCHED]) return
  const original = proto.fetch as (
    this: unknown,
    request: unknown,
  ) => Promise<{ responses?: Array<{ partitions?: FetchedPartitionData[] }> }>
  proto.fetch = async function fetch(this: unknown, request: unknown) {
    const response = await original.call(this, request)
    for (const t of response?.responses ?? []) for (const pd of t.partitions ?? []) markAbortedRecords(pd)
    return response
  }
  proto[PATCHED] = true
}

applyKafkajsFixes()
