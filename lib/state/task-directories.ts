/**
 * What the task directories under `<stateDir>/<applicationId>/` hold, for the assignor (Kafka
 * Streams: `TaskManager#taskOffsetSums` reading the checkpoint files of task directories it does
 * not own): per task, the sum of the changelog positions its stores' data reflect. The position of
 * a persistent store lives in its own LevelDB (stores.ts `POSITION_KEY`), so each store is opened
 * briefly (never created) and its position read.
 *
 * A store that cannot be read (its LevelDB LOCK is held by another process, a damaged database, a
 * `<store>.corrupted` marker that has it wiped at the next open) counts as having no state. A
 * store without a position of its own but an offset in the task's checkpoint file of earlier
 * versions counts with that offset (it is migrated at the next open).
 */
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import { readCheckpoint } from './checkpoint.js'
import { decodePosition, POSITION_KEY } from './stores.js'

/** Names of task directories: `<subtopology>_<partition>`. */
const TASK_DIR = /^\d+_\d+$/

/**
 * Reads the changelog positions of the task directories found under `<stateDir>/<applicationId>/`.
 * @param skip task ids not to read (their state is open in this process)
 * @returns task id → (changelog topic → next offset its data reflects); tasks without any readable
 *   position are absent. Never throws for an unreadable directory or store.
 */
export async function readTaskDirectoryPositions(
  stateDir: string,
  applicationId: string,
  skip: ReadonlySet<string> = new Set(),
): Promise<Map<string, Map<string, bigint>>> {
  const out = new Map<string, Map<string, bigint>>()
  const appDir = path.join(stateDir, applicationId)
  let entries: Array<{ name: string; isDirectory(): boolean }>
  try {
    entries = await readdir(appDir, { withFileTypes: true })
  } catch {
    return out
  }
  for (const e of entries) {
    if (!e.isDirectory() || !TASK_DIR.test(e.name) || skip.has(e.name)) continue
    const positions = await readTaskPositions(path.join(appDir, e.name))
    if (positions.size > 0) out.set(e.name, positions)
  }
  return out
}

/** The positions of one task directory's stores (changelog topic → next offset). */
async function readTaskPositions(taskDir: string): Promise<Map<string, bigint>> {
  const positions = new Map<string, bigint>()
  let stores: Array<{ name: string; isDirectory(): boolean }>
  try {
    stores = await readdir(taskDir, { withFileTypes: true })
  } catch {
    return positions
  }
  for (const s of stores) {
    if (!s.isDirectory()) continue
    const dir = path.join(taskDir, s.name)
    if (!existsSync(path.join(dir, 'CURRENT')) || existsSync(`${dir}.corrupted`)) continue
    for (const [topic, offset] of await readStorePosition(dir)) positions.set(topic, BigInt(offset))
  }
  const legacy = await readCheckpoint(path.join(taskDir, '.checkpoint'))
  if (legacy.status === 'ok') for (const [topic, offset] of legacy.offsets) if (!positions.has(topic)) positions.set(topic, BigInt(offset))
  return positions
}

async function readStorePosition(dir: string): Promise<ReadonlyMap<string, string>> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  try {
    await db.open({ createIfMissing: false })
  } catch {
    return new Map()
  }
  try {
    const raw = await db.get(POSITION_KEY)
    return (raw && decodePosition(raw)?.offsets) ?? new Map()
  } catch {
    return new Map()
  } finally {
    await db.close().catch(() => undefined)
  }
}
