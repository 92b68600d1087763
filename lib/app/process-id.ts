/**
 * The process id of the instance owning `<stateDir>/<applicationId>` (Kafka Streams keeps it in
 * the state directory's `kafka-streams-process-metadata`): the same across restarts, so a restarted
 * instance's thread producers (exactly-once v2: `<applicationId>-<processId>-<threadIdx>`) fence
 * those of its killed predecessor and abort their open transactions at once instead of after the
 * transaction timeout.
 */
import { randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

export async function processIdOf(stateDir: string, applicationId: string): Promise<string> {
  const dir = path.join(stateDir, applicationId)
  const file = path.join(dir, 'kafka-streams-process-metadata')
  try {
    const id = (JSON.parse(await fs.readFile(file, 'utf8')) as { processId?: unknown }).processId
    if (typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)) return id
  } catch {
    // none yet, or unreadable: a new one
  }
  const id = randomUUID()
  try {
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(file, JSON.stringify({ processId: id }))
  } catch {
    // a read-only state directory: the id lives as long as the process
  }
  return id
}
