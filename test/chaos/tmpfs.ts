/**
 * A small tmpfs for one instance's state directory, to fill it up (ENOSPC during commits) and free
 * it again. Needs root (mount).
 */
import { execFile } from 'node:child_process'
import { open, mkdtemp, rm, unlink } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A mounted tmpfs. */
export interface SmallDisk {
  readonly dir: string
  /** Writes a filler file until the filesystem is full; returns its size in bytes. */
  fill(): Promise<number>
  /** Deletes the filler. */
  free(): Promise<void>
  /** Unmounts and removes the mount point. Idempotent. */
  remove(): Promise<void>
}

/** Mounts a tmpfs of `sizeMb` MiB on a fresh directory. */
export async function mountSmallDisk(sizeMb = 32): Promise<SmallDisk> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kstreams-chaos-disk-'))
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir])
  const filler = path.join(dir, '.filler')
  let removed = false
  return {
    dir,
    async fill() {
      const f = await open(filler, 'w')
      const chunk = Buffer.alloc(64 * 1024, 0x5a)
      let bytes = 0
      try {
        for (;;) {
          const { bytesWritten } = await f.write(chunk, 0, chunk.length)
          bytes += bytesWritten
          if (bytesWritten < chunk.length) break
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
      }
      // the last partial blocks
      for (let size = 4096; size >= 1; size = Math.floor(size / 2)) {
        try {
          for (;;) bytes += (await f.write(Buffer.alloc(size), 0, size)).bytesWritten
        } catch {
          // full at this size
        }
      }
      await f.close().catch(() => undefined)
      return bytes
    },
    async free() {
      await unlink(filler).catch(() => undefined)
    },
    async remove() {
      if (removed) return
      removed = true
      await run('umount', ['-l', dir]).catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
