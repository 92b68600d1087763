/**
 * Network partitions of ONE instance, on this machine only: the instance runs in its own network
 * namespace (`ip netns exec`), joined to the host by a veth pair with private addresses
 * (10.200.<n>.1/30 host side, 10.200.<n>.2/30 namespace side). The broker listens on every
 * address and advertises 10.200.0.1, an address on the host's loopback that the namespace reaches
 * through the veth: `link(false)` (the host end of the veth down) cuts the instance off while
 * every other client keeps reaching the broker. Needs root.
 */
import { execFile, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { cacheDir, javaBin } from '../../scripts/local-common.js'
import { brokerProperties, randomClusterId, resolveKafkaClasspath } from '../../scripts/local-kafka.js'
import { waitFor } from './clock.js'
import { signal, type Cluster } from './cluster.js'
import { kafkaFor } from './kafka.js'

const run = promisify(execFile)
const ip = async (...args: string[]): Promise<string> => (await run('ip', args)).stdout

/** The address the broker advertises, reachable from the host and from every namespace. */
export const BROKER_IP = '10.200.0.1'

/** A namespace with a veth link to the host. */
export interface Netns {
  readonly name: string
  /** Prefix of the instance's command line. */
  readonly prefix: ReadonlyArray<string>
  /** Brings the host end of the veth up (true) or down (false). */
  link(up: boolean): Promise<void>
  /** Deletes the namespace, the veth pair and the route. Idempotent. */
  remove(): Promise<void>
}

/**
 * Creates namespace `kschaos<n>` with veth `vkh<n>` (host, 10.200.<n>.1/30) ↔ `vkn<n>` (namespace,
 * 10.200.<n>.2/30) and a route to {@link BROKER_IP} through the host end. A leftover of an earlier
 * run with the same name is removed first.
 */
export async function createNetns(n: number): Promise<Netns> {
  const name = `kschaos${n}`
  const host = `vkh${n}`
  const inner = `vkn${n}`
  const remove = async (): Promise<void> => {
    await ip('netns', 'del', name).catch(() => undefined)
    await ip('link', 'del', host).catch(() => undefined)
  }
  await remove()
  await ensureBrokerIp()
  await ip('netns', 'add', name)
  try {
    await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inner)
    await ip('link', 'set', inner, 'netns', name)
    await ip('addr', 'add', `10.200.${n}.1/30`, 'dev', host)
    await ip('link', 'set', host, 'up')
    const inNs = (...args: string[]) => ip('netns', 'exec', name, 'ip', ...args)
    await inNs('link', 'set', 'lo', 'up')
    await inNs('addr', 'add', `10.200.${n}.2/30`, 'dev', inner)
    await inNs('link', 'set', inner, 'up')
    await inNs('route', 'add', `${BROKER_IP}/32`, 'via', `10.200.${n}.1`)
  } catch (e) {
    await remove()
    throw e
  }
  return {
    name,
    prefix: ['ip', 'netns', 'exec', name],
    link: async (up) => void (await ip('link', 'set', host, up ? 'up' : 'down')),
    remove,
  }
}

/** Puts {@link BROKER_IP}/32 on the host's loopback (once). */
export async function ensureBrokerIp(): Promise<void> {
  if ((await ip('-4', 'addr', 'show', 'dev', 'lo')).includes(`${BROKER_IP}/32`)) return
  await ip('addr', 'add', `${BROKER_IP}/32`, 'dev', 'lo')
}

/** Removes {@link BROKER_IP} from the loopback. */
export async function removeBrokerIp(): Promise<void> {
  await ip('addr', 'del', `${BROKER_IP}/32`, 'dev', 'lo').catch(() => undefined)
}

/**
 * A private single broker listening on every address (port `port`, controller on 127.0.0.1 at
 * `port + 1`) and advertising {@link BROKER_IP}:`port`, so instances in namespaces reach it.
 * Formatted afresh; data under `.cache/chaos/netns-broker-<port>`.
 */
export async function startNetnsBroker(port = 29492, log: (m: string) => void = () => {}): Promise<Cluster> {
  await ensureBrokerIp()
  const dir = path.join(cacheDir(), 'chaos', `netns-broker-${port}`)
  await rm(dir, { recursive: true, force: true })
  const dataDir = path.join(dir, 'data')
  await mkdir(dataDir, { recursive: true })
  const config = path.join(dir, 'server.properties')
  const props = brokerProperties({ port, controllerPort: port + 1, dataDir })
    .replace(/^listeners=.*$/m, `listeners=PLAINTEXT://0.0.0.0:${port},CONTROLLER://127.0.0.1:${port + 1}`)
    .replace(/^advertised\.listeners=.*$/m, `advertised.listeners=PLAINTEXT://${BROKER_IP}:${port}`)
  await writeFile(config, props)
  const classpath = await resolveKafkaClasspath(log)
  const java = javaBin()
  await run(java, ['-Xmx256m', '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', config])
  const out = openSync(path.join(dir, 'stdout.log'), 'a')
  let pid: number
  try {
    const child = spawn(
      java,
      ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', `-Dkafka.logs.dir=${dir}`, '-cp', classpath, 'kafka.Kafka', config],
      { cwd: dir, detached: true, stdio: ['ignore', out, out] },
    )
    child.unref()
    pid = child.pid!
  } finally {
    closeSync(out)
  }
  const brokers = `${BROKER_IP}:${port}`
  await waitFor(
    `the netns broker at ${brokers}`,
    async () => {
      const admin = kafkaFor(brokers, { retry: { retries: 0 }, connectionTimeout: 1000 }).admin()
      try {
        await admin.connect()
        return (await admin.describeCluster()).brokers.length > 0
      } catch {
        return false
      } finally {
        await admin.disconnect().catch(() => undefined)
      }
    },
    120_000,
  )
  log(`netns broker at ${brokers} (pid ${pid})`)
  let stopped = false
  return {
    brokers,
    nodes: [{ id: 1, port, pid: () => pid, freeze: () => signal(pid, 'SIGSTOP'), resume: () => signal(pid, 'SIGCONT') }],
    async stop() {
      if (stopped) return
      stopped = true
      signal(pid, 'SIGCONT')
      signal(pid, 'SIGTERM')
      await waitFor('the netns broker to exit', () => !alive(pid), 30_000).catch(() => signal(pid, 'SIGKILL'))
    },
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
