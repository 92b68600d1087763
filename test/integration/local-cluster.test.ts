/**
 * The local 3-node KRaft cluster (scripts/local-cluster.ts) against the claim it exists for: with
 * replication factor 3 and min ISR 2, a transactional producer keeps committing while one node is
 * killed -9, the node comes back on its own data, and Kafka's Java consumer
 * (test/chaos/tools/java-reader.ts) reads exactly the committed records.
 *
 * The cluster is private (its own ports, never the shared broker) and stopped at the end; its data
 * folder is removed when the test passes and kept (path printed) when it fails.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import kafkajs, { type Admin, type Kafka as KafkaClient, type Producer } from 'kafkajs'
import { describe, expect, it, onTestFailed } from 'vitest'
import { javaBin, portOpen } from '../../scripts/local-common.js'
import { startLocalCluster, type LocalCluster } from '../../scripts/local-cluster.js'
import { readCommittedJava, openTransactions } from '../chaos/tools/java-reader.js'
import { onCleanup, randomTopic } from './helpers.js'

const { Kafka, logLevel } = kafkajs

/** A client port base whose 3 client and 3 controller ports (base + 100 …) are all free. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 19092 + 10 * Math.floor(Math.random() * 80)
    const ports = [0, 1, 2, 100, 101, 102].map((d) => base + d)
    const taken = await Promise.all(ports.map((p) => portOpen(p)))
    if (!taken.some(Boolean)) return base
  }
  throw new Error('no free port range for the test cluster')
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** In-sync replica node ids of every partition of `topic`. */
async function isrs(admin: Admin, topic: string): Promise<number[][]> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
  return topics[0]!.partitions.sort((a, b) => a.partitionId - b.partitionId).map((p) => [...p.isr].sort())
}

/** The cluster needs a JVM and the Java reader a JDK; a run against KAFKA_BROKERS may have neither. */
const hasJdk = spawnSync(javaBin().replace(/java$/, 'javac'), ['-version']).status === 0

describe.skipIf(!hasJdk)('local 3-node cluster (needs a JDK: javac)', () => {
  it('keeps committing transactions while one node is killed -9 and restarted on its data; the Java reader sees exactly the committed records', async () => {
    const began = Date.now()
    const timings: string[] = []
    const mark = (what: string) => timings.push(`${what} ${((Date.now() - began) / 1000).toFixed(1)} s`)

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kstreams-cluster-'))
    let failed = false
    onTestFailed(() => {
      failed = true
      process.stderr.write(`[local-cluster.test] failed; the cluster's data and logs stay in ${dataDir}\n`)
    })
    onCleanup(async () => {
      if (!failed) await rm(dataDir, { recursive: true, force: true })
    })
    const cluster: LocalCluster = await startLocalCluster({ size: 3, basePort: await freeBasePort(), dataDir })
    onCleanup(() => cluster.stop())
    mark('cluster up')
    expect(cluster.brokers.split(',')).toHaveLength(3)
    expect(cluster.nodes.map((n) => n.id)).toEqual([1, 2, 3])

    const client: KafkaClient = new Kafka({
      clientId: 'kstreams-cluster-test',
      brokers: cluster.brokers.split(','),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 3_000 },
    })
    const admin = client.admin()
    await admin.connect()
    onCleanup(() => admin.disconnect())
    const topic = randomTopic('cluster')
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: false })
    await waitFor('3 in-sync replicas on every partition', async () => (await isrs(admin, topic)).every((isr) => isr.length === 3), 30_000)

    const transactionalId = randomTopic('cluster-txn')
    const producer: Producer = client.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    onCleanup(() => producer.disconnect())

    const expected: Array<{ partition: number; key: string; value: string }> = []
    let next = 0
    // One send per partition, one after the other: a kafkajs 2.2.4 send that spans several leaders
    // runs one request per broker concurrently and, when one fails (CONCURRENT_TRANSACTIONS from
    // their concurrent AddPartitionsToTxn), re-sends the other broker's records too, which commits
    // them twice (seen here once in 11 runs, before any node was killed; test/chaos/FINDINGS.md,
    // "kafkajs' producer duplicates and drops records on a multi-broker cluster"). This test is
    // about the cluster and the Java reader, not that client bug.
    const sendPerPartition = async (
      txn: Awaited<ReturnType<Producer['transaction']>>,
      messages: Array<{ partition: number; key: string; value: string }>,
    ) => {
      for (const partition of [0, 1, 2]) {
        const part = messages.filter((m) => m.partition === partition)
        if (part.length > 0) await txn.send({ topic, messages: part })
      }
    }
    /** One committed transaction of 12 records, 4 per partition. */
    const commitBatch = async () => {
      const messages = Array.from({ length: 12 }, () => {
        const i = next++
        return { partition: i % 3, key: `k${i}`, value: `v${i}` }
      })
      const txn = await producer.transaction()
      await sendPerPartition(txn, messages)
      await txn.commit()
      expected.push(...messages)
    }
    const abortBatch = async () => {
      const txn = await producer.transaction()
      await sendPerPartition(
        txn,
        [0, 1, 2].map((partition) => ({ partition, key: 'aborted', value: 'aborted' })),
      )
      await txn.abort()
    }

    for (let i = 0; i < 3; i++) await commitBatch()
    await abortBatch()
    mark('before the kill')

    // The transaction coordinator is the node whose loss hurts a transactional producer most.
    const victimId = await cluster.transactionCoordinator(transactionalId)
    const victim = cluster.nodes[victimId - 1]!
    const oldPid = victim.pid()
    await victim.kill()
    expect(victim.pid()).toBeUndefined()
    mark(`node ${victimId} killed`)

    for (let i = 0; i < 3; i++) await commitBatch()
    await abortBatch()
    mark('3 transactions with a node down')
    expect(await cluster.transactionCoordinator(transactionalId)).not.toBe(victimId)
    await waitFor(
      'the ISR to shrink to 2',
      async () => (await isrs(admin, topic)).every((isr) => isr.length === 2 && !isr.includes(victimId)),
      30_000,
    )

    await victim.restart()
    expect(victim.pid()).toBeDefined()
    expect(victim.pid()).not.toBe(oldPid)
    mark(`node ${victimId} restarted`)
    // Back in every ISR: it caught up from its kept log, not from scratch as a new replica.
    await waitFor('the restarted node back in every ISR', async () => (await isrs(admin, topic)).every((isr) => isr.length === 3), 60_000)
    mark('ISR full again')

    for (let i = 0; i < 2; i++) await commitBatch()

    // A transaction left open: the reader refuses to pretend it read everything, and says where.
    const open = await producer.transaction()
    await open.send({ topic, messages: [{ partition: 2, key: 'open', value: 'open' }] })
    const { transactions, partitions } = await openTransactions(cluster.brokers, { topics: [topic] })
    expect(transactions.map((t) => [t.transactionalId, t.state, t.partitions])).toEqual([[transactionalId, 'ONGOING', [`${topic}-2`]]])
    expect(partitions.map((p) => [p.topic, p.partition, p.producerId])).toEqual([[topic, 2, transactions[0]!.producerId]])
    await expect(readCommittedJava(cluster.brokers, topic, { openTransactionWaitMs: 500 })).rejects.toThrow(
      new RegExp(`^open transaction on ${topic}-2 \\(last stable offset \\d+, high watermark \\d+\\) after waiting 500 ms$`),
    )
    await open.abort()
    mark('open transaction seen')
    await producer.disconnect()

    const records = await readCommittedJava(cluster.brokers, topic, { timeoutMs: 60_000 })
    mark('Java read')
    const read = (p: number) => records.filter((r) => r.partition === p).map((r) => `${r.key}=${r.value}`)
    const sent = (p: number) => expected.filter((e) => e.partition === p).map((e) => `${e.key}=${e.value}`)
    const offsets = records.map((r) => `${r.partition}@${r.offset}:${r.key}`).join(' ')
    for (const p of [0, 1, 2]) expect(read(p), `partition ${p}; read ${offsets}; ${timings.join(', ')}`).toEqual(sent(p))
    expect(records).toHaveLength(8 * 12)
    expect(records.every((r) => r.topic === topic && r.value !== 'aborted')).toBe(true)
    expect((await openTransactions(cluster.brokers, { topics: [topic] })).partitions).toEqual([])

    await cluster.stop()
    expect(cluster.nodes.map((n) => n.pid())).toEqual([undefined, undefined, undefined])
    mark('cluster stopped')
    process.stderr.write(`[local-cluster.test] ${timings.join(', ')}\n`)
  }, 240_000)
})
