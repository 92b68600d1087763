/**
 * The checkpoint file of earlier versions (Kafka Streams: `OffsetCheckpoint`, `.checkpoint`): per
 * changelog topic, the next changelog offset the local LevelDB state reflected. JSON
 * `{"version":1,"offsets":{"<topic>":"<offset>"}}`, written atomically (temp file, fsync, rename)
 * after the LevelDB batch it described.
 *
 * The runtime no longer writes it: a file that is durable while the LevelDB writes it describes
 * are not (a power loss drops LevelDB's unsynced log tail) leaves a store behind its recorded
 * position. Each store now keeps its position in its own LevelDB, in the same batch as the data
 * (stores.ts `POSITION_KEY`). The task and global state managers read this file once, to migrate
 * a store that has no position yet, and then delete it.
 */
import { open, readFile, rename, rm } from 'node:fs/promises'
import { ProcessorStateError } from '../../topology/errors.js'

/** Result of reading a checkpoint file. */
export type CheckpointRead =
  | { readonly status: 'ok'; readonly offsets: Map<string, string> }
  | { readonly status: 'missing' }
  | { readonly status: 'corrupt'; readonly reason: string }

const OFFSET_RE = /^\d+$/
let tmpCounter = 0

/** Reads and validates a checkpoint file. Never throws for a bad file: reports `corrupt`. */
export async function readCheckpoint(file: string): Promise<CheckpointRead> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' }
    return { status: 'corrupt', reason: `unreadable: ${(err as Error).message}` }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    return { status: 'corrupt', reason: `invalid JSON: ${(err as Error).message}` }
  }
  const p = parsed as { version?: unknown; offsets?: unknown }
  if (typeof p !== 'object' || p === null || p.version !== 1 || typeof p.offsets !== 'object' || p.offsets === null) {
    return { status: 'corrupt', reason: 'unexpected shape (want {"version":1,"offsets":{...}})' }
  }
  const offsets = new Map<string, string>()
  for (const [topic, off] of Object.entries(p.offsets as Record<string, unknown>)) {
    if (typeof off !== 'string' || !OFFSET_RE.test(off))
      return { status: 'corrupt', reason: `bad offset for ${topic}: ${JSON.stringify(off)}` }
    offsets.set(topic, off)
  }
  return { status: 'ok', offsets }
}

/**
 * Writes the checkpoint atomically: `<file>.tmp` is written and fsynced, then renamed over `file`.
 * @throws ProcessorStateError when the file system fails.
 */
export async function writeCheckpoint(file: string, offsets: ReadonlyMap<string, string>, place?: { taskId?: string }): Promise<void> {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`
  const body = JSON.stringify({ version: 1, offsets: Object.fromEntries([...offsets].sort(([a], [b]) => (a < b ? -1 : 1))) })
  try {
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(body, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw new ProcessorStateError(`Failed to write checkpoint ${file}`, { cause: err, ...(place ? { place } : {}) })
  }
}
