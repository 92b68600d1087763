/**
 * `npm run demo`: the README's "run the main job" command.
 *
 * PLACEHOLDER until the impression/click example lands (examples/impression-click/): it makes
 * sure a broker and a schema registry answer (KAFKA_BROKERS / SCHEMA_REGISTRY_URL, or the local
 * ones started on demand), registers an Avro schema, produces a few Avro records in Confluent
 * wire format, reads them back with read_committed and prints a summary. The example's owner
 * replaces this file.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { ensureKafka } from './local-kafka.js';
import { ensureRegistry } from './local-registry.js';

const { Kafka, logLevel } = kafkajs;
const RECORDS = 5;

async function main(): Promise<void> {
  const [kafka, registry] = await Promise.all([ensureKafka(), ensureRegistry()]);
  const client = new Kafka({ clientId: 'kstreams-demo', brokers: kafka.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = client.admin();
  const topic = `demo-impressions-${randomBytes(3).toString('hex')}`;
  try {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });

    const schemas = new SchemaRegistry({ host: registry.url });
    const { id } = await schemas.register(
      {
        type: SchemaType.AVRO,
        schema: JSON.stringify({
          type: 'record',
          name: 'Impression',
          namespace: 'kstreams.demo',
          fields: [
            { name: 'impressionId', type: 'string' },
            { name: 'userId', type: 'string' },
            { name: 'ts', type: 'long' },
          ],
        }),
      },
      { subject: `${topic}-value` },
    );

    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const now = Date.now();
    const messages = await Promise.all(
      Array.from({ length: RECORDS }, async (_, i) => {
        const value = { impressionId: `imp-${i}`, userId: `user-${i % 2}`, ts: now + i };
        return { key: value.userId, value: await schemas.encode(id, value), timestamp: String(value.ts) };
      }),
    );
    await producer.send({ topic, messages });
    await producer.disconnect();

    const consumer = client.consumer({ groupId: `${topic}-reader`, readUncommitted: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const perUser = new Map<string, number>();
    let read = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read only ${read} of ${RECORDS} records in 30 s`)), 30_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const impression = (await schemas.decode(message.value!)) as { userId: string };
            perUser.set(impression.userId, (perUser.get(impression.userId) ?? 0) + 1);
            if (++read === RECORDS) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    console.log(`kstreams demo (placeholder until examples/impression-click lands)`);
    console.log(`  broker            ${kafka.brokers}${kafka.started ? ` (started, ${((kafka.startMs ?? 0) / 1000).toFixed(1)} s)` : ''}`);
    console.log(`  schema registry   ${registry.url}${registry.started ? ` (started, ${((registry.startMs ?? 0) / 1000).toFixed(1)} s)` : ''}`);
    console.log(`  topic             ${topic}, Avro schema id ${id}`);
    console.log(`  produced/consumed ${RECORDS}/${read} records`);
    console.log(`  impressions/user  ${[...perUser].map(([user, n]) => `${user}=${n}`).join(' ')}`);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect().catch(() => {});
    await Promise.all([kafka.stop(), registry.stop()]);
  }
}

main().catch((err: Error) => {
  console.error(`demo failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
