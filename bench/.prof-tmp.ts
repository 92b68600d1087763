import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { LevelDbBackend } from '../lib/state/backend.js'
import { CacheBudget } from '../lib/state/cache.js'
import { RuntimeWindowStore } from '../lib/state/stores.js'
const key = (i: number) => Buffer.from(`key-${String(i).padStart(9, '0')}`)
const VALUE = Buffer.alloc(64, 0x61)
const dir = await mkdtemp(path.join(tmpdir(), 'prof-'))
const which = process.argv[2] ?? 'join'
const keys = 100_000
const budget = new CacheBudget(10 * 1024 * 1024)
if (which === 'join') {
  const s = new RuntimeWindowStore({ name: 'j', backend: await LevelDbBackend.open(path.join(dir, 'j')), mode: 'managed', budget, windowSizeMs: 2000, retentionMs: 62000, retainDuplicates: true })
  await s.init()
  const ts = (i: number) => Math.floor((i * 60000) / keys)
  for (let i = 0; i < keys; i++) { await s.put(key(i), ts(i), VALUE); if ((i + 1) % 5000 === 0) { s.prepareCommit(); await s.commitLocal() } }
  s.prepareCommit(); await s.commitLocal()
  console.log('index bytes', budget.indexBytes, 'used', budget.used, 'entries', (s as any).index.entries, 'segs', (s as any).index.indexedSegments())
  for (let rep = 0; rep < 3; rep++) {
  let t = performance.now(); const c0 = process.cpuUsage()
  for (let n = 0; n < 20000; n++) { const i = ((n + rep * 20000) * 7919) % keys; for await (const _ of s.fetchRange(key(i), ts(i) - 1000, ts(i) + 1000)) {} }
  const c = process.cpuUsage(c0)
  console.log('hit µs wall', ((performance.now() - t) * 1000 / 20000).toFixed(1), 'cpu', ((c.user + c.system) / 20000).toFixed(1))
  }
} else {
  const s = new RuntimeWindowStore({ name: 'a', backend: await LevelDbBackend.open(path.join(dir, 'a')), mode: 'managed', budget, windowSizeMs: 60000, retentionMs: 86400000 })
  await s.init()
  let x = 7
  const t = performance.now()
  let tc = 0
  for (let n = 0; n < 200000; n++) {
    x = (x * 1103515245 + 12345) % 2147483648
    const k = key(x % keys)
    const ts = n * 10, start = ts - (ts % 60000)
    let old: Buffer | undefined
    for await (const e of s.fetchRange(k, start, start)) old = e.value
    const v = Buffer.alloc(8); v.writeUInt32BE(old ? old.readUInt32BE(0) + 1 : 1, 0)
    await s.put(k, start, v)
    if ((n + 1) % 1000 === 0) { const c = performance.now(); s.prepareCommit(); await s.commitLocal(); tc += performance.now() - c }
  }
  console.log('agg µs', ((performance.now() - t) * 1000 / 200000).toFixed(1), 'commit share µs', (tc * 1000 / 200000).toFixed(1), 'index bytes', budget.indexBytes, 'used', budget.used)
}
