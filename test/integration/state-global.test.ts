/**
 * Global store against a real broker: bootstrap all partitions of a topic to the end, keep it
 * current, and resume from the global checkpoint after a restart (only new records are read).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { GlobalStoreDef } from '../../topology/engine/types.js'
import type { KeyValueBytesStore, StoreDef } from '../../topology/state/types.js'
import { createChangelogReader } from '../../lib/app/client/kafkajs-changelog-reader.js'
import { createGlobalStateManager, GlobalStoreUpdater } from '../../lib/state/global-state.js'
import { connectedProducer, createTopics, kafkaClient, onCleanup, randomTopic } from './helpers.js'

function globalDef(topic: string): GlobalStoreDef {
  const store: StoreDef = { name: 'gtable', type: 'keyValue', loggingEnabled: false, logConfig: {}, cachingEnabled: true, persistent: true }
  return {
    store,
    source: { type: 'source', name: 'KSTREAM-SOURCE-0000000000', topics: [topic], children: [] },
    processor: {
      type: 'processor',
      name: 'KTABLE-SOURCE-0000000001',
      supplier: () => ({ process: () => {} }) as never,
      stores: ['gtable'],
      children: [],
    },
  }
}

describe('global store (real broker)', () => {
  it('bootstraps every partition to the end, follows new records, and resumes from its checkpoint', async () => {
    const topic = randomTopic('r1global')
    await createTopics({ topic, numPartitions: 3 })
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const expected = new Map<string, string>()
    const messages = Array.from({ length: 900 }, (_, i) => ({ key: `k${i % 300}`, value: `v${i}`, partition: i % 3 }))
    for (const m of messages) expected.set(m.key, m.value)
    await producer.send({ topic, messages })
    await producer.send({ topic, messages: [{ key: 'k5', value: null, partition: 5 % 3 }] })
    expected.delete('k5')

    const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-it-global-'))
    onCleanup(() => rm(dir, { recursive: true, force: true }))
    const reader = createChangelogReader({ kafka: kafkaClient() })
    onCleanup(() => reader.close())
    const def = globalDef(topic)

    const contents = async (kv: KeyValueBytesStore) => {
      const out = new Map<string, string>()
      for await (const [k, v] of kv.range()) out.set(k.toString(), v.toString())
      return out
    }

    const m1 = createGlobalStateManager({ applicationId: 'app', stateDir: dir, def, cacheMaxBytes: 1 << 20 })
    await m1.open()
    const u1 = new GlobalStoreUpdater({ manager: m1, reader, topic, commitIntervalMs: 100 })
    expect(await u1.bootstrap()).toBe(901)
    const kv1 = await m1.provider.keyValue(def.store)
    expect(await contents(kv1)).toEqual(expected)

    await u1.start()
    await producer.send({
      topic,
      messages: [
        { key: 'new', value: 'x', partition: 1 },
        { key: 'k7', value: 'updated', partition: 2 },
      ],
    })
    expected.set('new', 'x')
    expected.set('k7', 'updated')
    const deadline = Date.now() + 15_000
    while (u1.applied < 903 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    await u1.stop()
    expect(await contents(kv1)).toEqual(expected)
    await m1.close()

    // restart: the checkpoint covers everything, so a bootstrap reads only what is new
    await producer.send({ topic, messages: [{ key: 'after', value: 'restart', partition: 0 }] })
    expected.set('after', 'restart')
    const m2 = createGlobalStateManager({ applicationId: 'app', stateDir: dir, def, cacheMaxBytes: 1 << 20 })
    await m2.open()
    expect([...m2.checkpointedOffsets().keys()].sort()).toEqual([0, 1, 2])
    const u2 = new GlobalStoreUpdater({ manager: m2, reader, topic })
    expect(await u2.bootstrap()).toBe(1)
    expect(await contents(await m2.provider.keyValue(def.store))).toEqual(expected)
    await m2.close()
  })
})
