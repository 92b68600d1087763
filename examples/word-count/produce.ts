/**
 * Sends lines to the word-count input topic: each argument is one line, or stdin lines without
 * arguments. `npx tsx examples/word-count/produce.ts "to be or not to be" "that is the question"`
 * Environment: KAFKA_BROKERS (default 127.0.0.1:9092), INPUT_TOPIC (default `word-count-input`).
 */
import fs from 'node:fs'
import kafkajs from 'kafkajs'

const lines =
  process.argv.length > 2
    ? process.argv.slice(2)
    : fs
        .readFileSync(0, 'utf8')
        .split('\n')
        .filter((l) => l.trim().length > 0)
const producer = new kafkajs.Kafka({
  brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  logLevel: kafkajs.logLevel.NOTHING,
}).producer()
await producer.connect()
await producer.send({ topic: process.env.INPUT_TOPIC ?? 'word-count-input', messages: lines.map((value) => ({ value })) })
await producer.disconnect()
process.stderr.write(`sent ${lines.length} line(s)\n`)
