/**
 * Broker connections of one kstreams instance per task count and processing guarantee (the cost
 * of a producer per task made visible). Usage: `npx tsx bench/connections.ts <at_least_once|exactly_once> <partitions>`
 * against the broker at 127.0.0.1:9092; counts the process's TCP connections to :9092 with `ss` once RUNNING.
 */
import { execSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import kafkajs from 'kafkajs'
import { KafkaStreams } from '../lib/app/kafka-streams.js'
import { Consumed, Produced, Serdes, StreamsBuilder } from '../lib/index.js'

const guarantee = process.argv[2] as 'at_least_once' | 'exactly_once'
const parts = Number(process.argv[3])
const kafka = new kafkajs.Kafka({ brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING })
const admin = kafka.admin()
await admin.connect()
const t = `conn-${Date.now()}`
await admin.createTopics({
  topics: [
    { topic: t + '-in', numPartitions: parts },
    { topic: t + '-out', numPartitions: parts },
  ],
  waitForLeaders: false,
})
await new Promise((r) => setTimeout(r, 2000))
await admin.disconnect()
const b = new StreamsBuilder()
b.stream(t + '-in', Consumed.with(Serdes.String(), Serdes.String()))
  .groupByKey()
  .count()
  .toStream()
  .to(t + '-out', Produced.with(Serdes.String(), Serdes.Long()))
const s = new KafkaStreams(b.build(), {
  applicationId: t,
  bootstrapServers: '127.0.0.1:9092',
  processingGuarantee: guarantee,
  stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'conn-')),
  logLevel: 'error',
  defaultKeySerde: Serdes.String(),
  defaultValueSerde: Serdes.String(),
})
await s.start()
await s.waitForState('RUNNING')
const p = kafka.producer()
await p.connect()
await p.send({ topic: t + '-in', messages: Array.from({ length: parts * 10 }, (_, i) => ({ key: `k${i}`, value: 'v' })) })
await new Promise((r) => setTimeout(r, 4000))
await p.disconnect()
const out = execSync(`ss -tnp | grep "pid=${process.pid}," | grep ":9092" | wc -l`).toString().trim()
console.log(JSON.stringify({ guarantee, tasks: parts, connections: Number(out) }))
await s.close({ timeoutMs: 20000 })
process.exit(0)
