/**
 * A task's state directory on disk (Kafka Streams: `StateDirectory`): where each store's LevelDB
 * lives, the in-process lock on the task directory, opening LevelDB while another instance on
 * this host still holds its LOCK, and the corruption marker that makes the next open wipe a store.
 */
import { writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ProcessorStateError } from '../../topology/errors.js'
import { isLockError, LevelDbBackend } from './backend.js'
import type { CreateTaskStateManagerOptions, StateLogger } from './task-state-options.js'

/** Task directories held by task state managers of this process. */
const heldDirs = new Set<string>()

/** Suffix of the marker file left next to a store in which corruption was found while running. */
const CORRUPTED_SUFFIX = '.corrupted'

export class StoreDirectory {
  private holdsDir = false

  constructor(
    readonly taskDir: string,
    private readonly options: CreateTaskStateManagerOptions,
    private readonly log: StateLogger,
  ) {}

  storeDir(name: string): string {
    return path.join(this.taskDir, name)
  }

  corruptedMarker(name: string): string {
    return path.join(this.taskDir, `${name}${CORRUPTED_SUFFIX}`)
  }

  /** Deletes a store's directory and corruption marker (the store is closed). */
  async wipe(name: string, error: unknown): Promise<void> {
    const found =
      error !== undefined
        ? `LevelDB reports corruption (${(error as { code?: string }).code ?? 'LEVEL_CORRUPTION'}: ${(error as Error).message})`
        : 'an earlier run found it corrupted'
    this.log.warn(`Store ${name} of task ${this.options.taskId}: ${found}; deleting its local data for a full restore from the changelog`, {
      taskId: this.options.taskId,
      store: name,
    })
    this.options.onStoreWiped?.({
      taskId: this.options.taskId,
      store: name,
      reason: 'corruption',
      ...(error !== undefined ? { error } : {}),
    })
    await rm(this.storeDir(name), { recursive: true, force: true })
    await rm(this.corruptedMarker(name), { force: true })
  }

  /** Corruption found while the store is open: leave a marker so the next open wipes it. */
  markCorrupted(name: string, error: unknown): void {
    this.log.error(
      `Store ${name} of task ${this.options.taskId} is corrupted (${(error as Error).message}); it is wiped and restored from its changelog when the task is opened again`,
      { taskId: this.options.taskId, store: name },
    )
    try {
      writeFileSync(this.corruptedMarker(name), `${(error as Error).message}\n`)
    } catch (err) {
      this.log.error(`Failed to leave the corruption marker of store ${name}: ${(err as Error).message}`, {
        taskId: this.options.taskId,
        store: name,
      })
    }
  }

  async openLevelDb(dir: string, store: string): Promise<LevelDbBackend> {
    const deadline = Date.now() + (this.options.lockWaitMs ?? 2000)
    for (;;) {
      try {
        return await LevelDbBackend.open(dir, {
          place: { taskId: this.options.taskId, store },
          onCorruption: (e) => this.markCorrupted(store, e),
        })
      } catch (err) {
        if (!(err instanceof ProcessorStateError && isLockError(err.cause)) || Date.now() >= deadline) throw err
        await sleep(100)
      }
    }
  }

  async acquire(): Promise<void> {
    const deadline = Date.now() + (this.options.lockWaitMs ?? 2000)
    while (heldDirs.has(this.taskDir)) {
      if (Date.now() >= deadline) {
        throw new ProcessorStateError(
          `State directory ${this.taskDir} is in use by another task state manager in this process; retry once it has closed`,
          { retriable: true, place: { taskId: this.options.taskId } },
        )
      }
      await sleep(50)
    }
    heldDirs.add(this.taskDir)
    this.holdsDir = true
  }

  release(): void {
    if (this.holdsDir) heldDirs.delete(this.taskDir)
    this.holdsDir = false
  }
}
