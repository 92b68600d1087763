/** Free TCP ports on 127.0.0.1 for private brokers. */
import net from 'node:net'

/** Whether nothing listens on 127.0.0.1:`port` (a bind succeeds). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** The first port ≥ `from` such that `count` consecutive ports are free. */
export async function freePorts(from: number, count: number): Promise<number> {
  for (let p = from; p < from + 2000; p += count) {
    let ok = true
    for (let i = 0; i < count && ok; i++) ok = await portFree(p + i)
    if (ok) return p
  }
  throw new Error(`no ${count} consecutive free ports from ${from}`)
}
