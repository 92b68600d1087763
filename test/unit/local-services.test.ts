/**
 * The start/reuse/stop bookkeeping behind ensureKafka() and ensureRegistry()
 * (scripts/local-common.ts), exercised with a tiny Node HTTP server standing in for the JVM, and
 * the broker configuration the local script writes (one node, and each node of a local cluster),
 * and the cluster CLI's argument parsing.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ensureService,
  isAlive,
  readPidLines,
  serviceStatus,
  setPidLine,
  stopService,
  terminate,
  withLock,
  type ServiceSpec,
} from '../../scripts/local-common.js'
import { parseClusterArgs, processState } from '../../scripts/local-cluster.js'
import { brokerProperties, clusterLayout, clusterNodes, envClusterSize, randomClusterId } from '../../scripts/local-kafka.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kstreams-local-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A spec whose "service" is a Node HTTP server; `exitAtOnce` makes it die during start-up;
 * `helpers` adds that many idle processes (a cluster's other nodes; `helperExits` makes the last
 * one die during start-up).
 */
async function fakeSpec(
  options: { exitAtOnce?: boolean; helpers?: number; helperExits?: boolean } = {},
): Promise<ServiceSpec & { launches: number }> {
  const runDir = await tempDir()
  const port = await freePort()
  const marker = `--fake-service=${runDir}`
  const logFile = path.join(runDir, 'service.log')
  const listen = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`
  const exitedFile = path.join(runDir, 'exited.pid')
  // With an exiting helper, the main process answers only once that helper is gone, so the test
  // does not depend on which of the two processes the machine happens to start first.
  const program = options.exitAtOnce
    ? `console.log('fatal: cannot bind'); process.exit(3)`
    : options.helperExits
      ? `const fs = require('node:fs'); const gone = (pid) => { try { process.kill(pid, 0); return false } catch { return true } };
         const wait = () => { let pid; try { pid = Number(fs.readFileSync(${JSON.stringify(exitedFile)}, 'utf8')) } catch {}
           if (pid && gone(pid)) ${listen}; else setTimeout(wait, 20) }; wait()`
      : listen
  const spec = {
    name: 'fake service',
    runDir,
    address: `http://127.0.0.1:${port}`,
    port,
    marker,
    logFile,
    startTimeoutMs: 10_000,
    log: () => {},
    launches: 0,
    probe: async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}`, { signal: AbortSignal.timeout(500) })).ok
      } catch {
        return false
      }
    },
    async launch() {
      spec.launches++
      const { openSync, closeSync } = await import('node:fs')
      const out = openSync(logFile, 'a')
      const child = spawn(process.execPath, ['-e', program, '--', marker], { detached: true, stdio: ['ignore', out, out] })
      const pids = [child.pid!]
      for (let i = 0; i < (options.helpers ?? 0); i++) {
        const exits = options.helperExits && i === (options.helpers ?? 0) - 1
        const exitProgram = `require('node:fs').writeFileSync(${JSON.stringify(exitedFile)}, String(process.pid)); console.log('node ${i + 2} failed'); process.exit(1)`
        const helper = spawn(process.execPath, ['-e', exits ? exitProgram : 'setInterval(() => {}, 1000)', '--', marker], {
          detached: true,
          stdio: ['ignore', out, out],
        })
        helper.unref()
        pids.push(helper.pid!)
      }
      closeSync(out)
      child.unref()
      for (const pid of pids) cleanups.push(async () => void (await terminate(pid, 2_000)))
      return pids.length === 1 ? pids[0]! : pids
    },
  }
  return spec
}

describe('ensureService', () => {
  it('launches once, lets a second caller reuse it, and stops an auto service with its last lease', async () => {
    const spec = await fakeSpec()
    const first = await ensureService(spec, 'auto')
    const second = await ensureService(spec, 'auto')

    expect(first.started).toBe(true)
    expect(first.startMs).toBeGreaterThanOrEqual(0)
    expect(second.started).toBe(false)
    expect(second.pid).toBe(first.pid)
    expect(spec.launches).toBe(1)

    await first.stop()
    expect(isAlive(first.pid!)).toBe(true) // `second` still holds a lease
    await second.stop()
    expect(isAlive(first.pid!)).toBe(false)
    expect(await spec.probe()).toBe(false)
  })

  it('cleans up a stale pid file and launches afresh', async () => {
    const spec = await fakeSpec()
    const dead = spawn(process.execPath, ['-e', '0'])
    await new Promise((resolve) => dead.on('exit', resolve))
    await writeFile(path.join(spec.runDir, 'pid'), String(dead.pid))

    const handle = await ensureService(spec, 'auto')
    cleanups.push(() => handle.stop())

    expect(handle.started).toBe(true)
    expect(handle.pid).not.toBe(dead.pid)
    expect(Number(await readFile(path.join(spec.runDir, 'pid'), 'utf8'))).toBe(handle.pid)
  })

  it('keeps a pinned service running after stop(); the CLI stop refuses while another process leases it', async () => {
    const spec = await fakeSpec()
    const pinned = await ensureService(spec, 'pinned')
    await pinned.stop()
    expect(isAlive(pinned.pid!)).toBe(true)
    expect(await serviceStatus(spec)).toMatchObject({ pid: pinned.pid, mode: 'pinned', leases: [] })

    // A lease held by another live process (here: this test's parent process).
    await writeFile(path.join(spec.runDir, 'leases', `${process.ppid}-1`), '')
    expect(await stopService(spec, false)).toMatch(/in use by running process\(es\) \d+; not stopped/)
    expect(isAlive(pinned.pid!)).toBe(true)

    expect(await stopService(spec, true)).toBe(`fake service (pid ${pinned.pid}) terminated`)
    expect(isAlive(pinned.pid!)).toBe(false)
    expect(await stopService(spec, false)).toMatch(/nothing stopped/)
  })

  it('refuses to start when the port is taken by something that does not answer the probe', async () => {
    const spec = await fakeSpec()
    const squatter = net.createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => squatter.listen(spec.port, '127.0.0.1', resolve))
    cleanups.push(() => new Promise((resolve) => squatter.close(() => resolve())))

    await expect(ensureService(spec, 'auto')).rejects.toThrow(
      `Port ${spec.port} is in use by a process that does not answer as a fake service`,
    )
    expect(spec.launches).toBe(0)
  })

  it('reports a process that exits during start-up with the tail of its log', async () => {
    const spec = await fakeSpec({ exitAtOnce: true })
    await expect(ensureService(spec, 'auto')).rejects.toThrow(/fake service \(pid \d+\) exited during start-up[^]*fatal: cannot bind/)
  })
})

describe('ensureService with several processes (a cluster)', () => {
  it('records one pid per line, reports them all, and stops them all with the last lease', async () => {
    const spec = await fakeSpec({ helpers: 2 })
    const handle = await ensureService(spec, 'auto')
    expect(handle.pids).toHaveLength(3)
    expect(handle.pid).toBe(handle.pids[0])
    expect(await readPidLines(path.join(spec.runDir, 'pid'))).toEqual(handle.pids)
    expect((await serviceStatus(spec)).pids).toEqual(handle.pids)

    await handle.stop()
    expect(handle.pids.map(isAlive)).toEqual([false, false, false])
  })

  it('keeps counting a service as running while one of its processes is down (pid line 0)', async () => {
    const spec = await fakeSpec({ helpers: 1 })
    const pinned = await ensureService(spec, 'pinned')
    await pinned.stop() // releases the lease; a pinned service keeps running
    const [first, second] = pinned.pids as [number, number]
    await terminate(second, 2_000)
    await setPidLine(spec.runDir, 1, 0)
    expect(await readPidLines(path.join(spec.runDir, 'pid'))).toEqual([first, 0])

    const again = await ensureService(spec, 'auto')
    expect(again.started).toBe(false)
    expect(again.pids).toEqual([first])
    await again.stop()
    expect(await stopService(spec, false)).toBe(`fake service (pid ${first}) terminated`)
  })

  it('fails the start-up when any process exits, and stops the others', async () => {
    const spec = await fakeSpec({ helpers: 2, helperExits: true })
    await expect(ensureService(spec, 'auto')).rejects.toThrow(/fake service \(pid \d+\) exited during start-up/)
    expect(await readPidLines(path.join(spec.runDir, 'pid'))).toEqual([])
  })
})

describe('processState', () => {
  it('tells a running, a frozen (SIGSTOP) and a gone process apart', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
    const pid = child.pid!
    cleanups.push(async () => void (await terminate(pid, 2_000)))
    expect(processState(pid)).toBe('running')
    process.kill(pid, 'SIGSTOP')
    await new Promise((r) => setTimeout(r, 100))
    expect(processState(pid)).toBe('frozen')
    process.kill(pid, 'SIGCONT')
    await new Promise((r) => setTimeout(r, 100))
    expect(processState(pid)).toBe('running')
    expect(await terminate(pid, 2_000)).toBe('terminated')
    expect(processState(pid)).toBe('down')
    expect(processState(undefined)).toBe('down')
  })
})

describe('withLock', () => {
  it('serialises holders and takes over a lock whose owner is dead', async () => {
    const dir = await tempDir()
    const lock = path.join(dir, 'lock')
    const order: string[] = []
    await Promise.all([
      withLock(lock, async () => {
        order.push('a-in')
        await new Promise((r) => setTimeout(r, 100))
        order.push('a-out')
      }),
      withLock(lock, async () => {
        order.push('b-in')
        order.push('b-out')
      }),
    ])
    expect(order.join(',')).toMatch(/^(a-in,a-out,b-in,b-out|b-in,b-out,a-in,a-out)$/)

    const { mkdir } = await import('node:fs/promises')
    await mkdir(lock)
    await writeFile(path.join(lock, 'owner'), '999999999')
    await expect(withLock(lock, async () => 'taken over', 2_000)).resolves.toBe('taken over')
  })
})

describe('local broker configuration', () => {
  it('makes transactions work on one node and creates no topic implicitly', () => {
    const props = Object.fromEntries(
      brokerProperties({ port: 19092, controllerPort: 19093, dataDir: '/tmp/data' })
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    )
    expect(props).toMatchObject({
      'process.roles': 'broker,controller',
      listeners: 'PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:19092',
      'controller.quorum.voters': '1@127.0.0.1:19093',
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
      'auto.create.topics.enable': 'false',
      'num.partitions': '1',
      'log.dirs': '/tmp/data',
    })
  })

  it('generates KRaft cluster ids as 22 base64url characters not starting with "-"', () => {
    for (let i = 0; i < 200; i++) expect(randomClusterId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
  })
})

describe('local cluster configuration', () => {
  const propsOf = (text: string) =>
    Object.fromEntries(
      text
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    )

  it('makes every node of 3 a voter with replication factor 3 and min ISR 2 for internal and new topics', () => {
    const layout = clusterLayout({ size: 3, basePort: 19092, runDir: '/tmp/c' })
    const node2 = layout.nodes[1]!
    const props = propsOf(
      brokerProperties({
        port: node2.port,
        controllerPort: node2.controllerPort,
        dataDir: node2.files.dataDir,
        nodeId: 2,
        nodes: layout.nodes,
      }),
    )
    expect(props).toMatchObject({
      'process.roles': 'broker,controller',
      'node.id': '2',
      'controller.quorum.voters': '1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194',
      listeners: 'PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19193',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:19093',
      'offsets.topic.replication.factor': '3',
      'transaction.state.log.replication.factor': '3',
      'transaction.state.log.min.isr': '2',
      'min.insync.replicas': '2',
      'default.replication.factor': '3',
      'auto.create.topics.enable': 'false',
      'log.dirs': '/tmp/c/node-2/data',
    })
  })

  it('caps replication at the node count: 1 node of a cluster gets factor 1 and min ISR 1', () => {
    const layout = clusterLayout({ size: 1, basePort: 19092, runDir: '/tmp/c' })
    const props = propsOf(brokerProperties({ port: 19092, controllerPort: 19192, dataDir: '/d', nodeId: 1, nodes: layout.nodes }))
    expect(props).toMatchObject({
      'controller.quorum.voters': '1@127.0.0.1:19192',
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'min.insync.replicas': '1',
    })
  })

  it('lays nodes out on consecutive ports, controllers 100 above, one folder per node', () => {
    const layout = clusterLayout({ size: 3, basePort: 9092, runDir: '/tmp/c' })
    expect(layout.brokers).toBe('127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094')
    expect(layout.nodes.map((n) => [n.id, n.port, n.controllerPort, n.files.configFile])).toEqual([
      [1, 9092, 9192, '/tmp/c/node-1/server.properties'],
      [2, 9093, 9193, '/tmp/c/node-2/server.properties'],
      [3, 9094, 9194, '/tmp/c/node-3/server.properties'],
    ])
    expect(layout.marker).toBe('/tmp/c/node-')
    expect(clusterLayout({ size: 3, basePort: 19092 }).runDir).toMatch(/kafka[/\\]cluster-19092-x3$/)
  })

  it('refuses overlapping client and controller ports and impossible sizes', () => {
    expect(() => clusterNodes(3, 9092, 9093)).toThrow('client ports 9092..9094 overlap controller ports 9093..9095')
    expect(() => clusterNodes(0, 9092, 9192)).toThrow('cluster size must be a positive integer, got 0')
    expect(() => clusterNodes(3, 65534, 9192)).toThrow(/leave 1\.\.65535/)
  })

  it('reads KAFKA_CLUSTER_SIZE', () => {
    const saved = process.env.KAFKA_CLUSTER_SIZE
    cleanups.push(async () => {
      if (saved === undefined) delete process.env.KAFKA_CLUSTER_SIZE
      else process.env.KAFKA_CLUSTER_SIZE = saved
    })
    delete process.env.KAFKA_CLUSTER_SIZE
    expect(envClusterSize()).toBe(1)
    process.env.KAFKA_CLUSTER_SIZE = '3'
    expect(envClusterSize()).toBe(3)
    process.env.KAFKA_CLUSTER_SIZE = 'three'
    expect(() => envClusterSize()).toThrow('KAFKA_CLUSTER_SIZE="three" is not a node count (1..9)')
  })
})

describe('local cluster CLI arguments', () => {
  it('parses commands and node ids', () => {
    expect(parseClusterArgs([], 3)).toEqual({ command: 'start' })
    expect(parseClusterArgs(['status'], 3)).toEqual({ command: 'status' })
    expect(parseClusterArgs(['stop', '--force'], 3)).toEqual({ command: 'stop', force: true })
    expect(parseClusterArgs(['kill', '2'], 3)).toEqual({ command: 'kill', node: 2 })
    expect(parseClusterArgs(['freeze', '1'], 3)).toEqual({ command: 'freeze', node: 1 })
    expect(parseClusterArgs(['resume', '3'], 3)).toEqual({ command: 'resume', node: 3 })
    expect(parseClusterArgs(['restart', '3'], 3)).toEqual({ command: 'restart', node: 3 })
  })

  it('rejects a missing or out-of-range node id and unknown commands, with the usage line', () => {
    expect(() => parseClusterArgs(['kill'], 3)).toThrow(/^kill needs a node id from 1 to 3, got none\nusage: /)
    expect(() => parseClusterArgs(['kill', '4'], 3)).toThrow('kill needs a node id from 1 to 3, got "4"')
    expect(() => parseClusterArgs(['freeze', '1.5'], 3)).toThrow('freeze needs a node id from 1 to 3, got "1.5"')
    expect(() => parseClusterArgs(['explode'], 3)).toThrow(/^unknown command "explode"\nusage: tsx scripts\/local-cluster.ts/)
  })
})
