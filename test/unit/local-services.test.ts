/**
 * The start/reuse/stop bookkeeping behind ensureKafka() and ensureRegistry()
 * (scripts/local-common.ts), exercised with a tiny Node HTTP server standing in for the JVM, and
 * the broker configuration the local script writes.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ensureService,
  isAlive,
  serviceStatus,
  stopService,
  terminate,
  withLock,
  type ServiceSpec,
} from '../../scripts/local-common.js';
import { brokerProperties, randomClusterId } from '../../scripts/local-kafka.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kstreams-local-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A spec whose "service" is a Node HTTP server; `exitAtOnce` makes it die during start-up. */
async function fakeSpec(options: { exitAtOnce?: boolean } = {}): Promise<ServiceSpec & { launches: number }> {
  const runDir = await tempDir();
  const port = await freePort();
  const marker = `--fake-service=${runDir}`;
  const logFile = path.join(runDir, 'service.log');
  const program = options.exitAtOnce
    ? `console.log('fatal: cannot bind'); process.exit(3)`
    : `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
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
        return (await fetch(`http://127.0.0.1:${port}`, { signal: AbortSignal.timeout(500) })).ok;
      } catch {
        return false;
      }
    },
    async launch() {
      spec.launches++;
      const { openSync, closeSync } = await import('node:fs');
      const out = openSync(logFile, 'a');
      const child = spawn(process.execPath, ['-e', program, '--', marker], { detached: true, stdio: ['ignore', out, out] });
      closeSync(out);
      child.unref();
      const pid = child.pid!;
      cleanups.push(async () => void (await terminate(pid, 2_000)));
      return pid;
    },
  };
  return spec;
}

describe('ensureService', () => {
  it('launches once, lets a second caller reuse it, and stops an auto service with its last lease', async () => {
    const spec = await fakeSpec();
    const first = await ensureService(spec, 'auto');
    const second = await ensureService(spec, 'auto');

    expect(first.started).toBe(true);
    expect(first.startMs).toBeGreaterThanOrEqual(0);
    expect(second.started).toBe(false);
    expect(second.pid).toBe(first.pid);
    expect(spec.launches).toBe(1);

    await first.stop();
    expect(isAlive(first.pid!)).toBe(true); // `second` still holds a lease
    await second.stop();
    expect(isAlive(first.pid!)).toBe(false);
    expect(await spec.probe()).toBe(false);
  });

  it('cleans up a stale pid file and launches afresh', async () => {
    const spec = await fakeSpec();
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.on('exit', resolve));
    await writeFile(path.join(spec.runDir, 'pid'), String(dead.pid));

    const handle = await ensureService(spec, 'auto');
    cleanups.push(() => handle.stop());

    expect(handle.started).toBe(true);
    expect(handle.pid).not.toBe(dead.pid);
    expect(Number(await readFile(path.join(spec.runDir, 'pid'), 'utf8'))).toBe(handle.pid);
  });

  it('keeps a pinned service running after stop(); the CLI stop refuses while another process leases it', async () => {
    const spec = await fakeSpec();
    const pinned = await ensureService(spec, 'pinned');
    await pinned.stop();
    expect(isAlive(pinned.pid!)).toBe(true);
    expect(await serviceStatus(spec)).toMatchObject({ pid: pinned.pid, mode: 'pinned', leases: [] });

    // A lease held by another live process (here: this test's parent process).
    await writeFile(path.join(spec.runDir, 'leases', `${process.ppid}-1`), '');
    expect(await stopService(spec, false)).toMatch(/in use by running process\(es\) \d+; not stopped/);
    expect(isAlive(pinned.pid!)).toBe(true);

    expect(await stopService(spec, true)).toBe(`fake service (pid ${pinned.pid}) terminated`);
    expect(isAlive(pinned.pid!)).toBe(false);
    expect(await stopService(spec, false)).toMatch(/nothing stopped/);
  });

  it('refuses to start when the port is taken by something that does not answer the probe', async () => {
    const spec = await fakeSpec();
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(spec.port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => squatter.close(() => resolve())));

    await expect(ensureService(spec, 'auto')).rejects.toThrow(
      `Port ${spec.port} is in use by a process that does not answer as a fake service`,
    );
    expect(spec.launches).toBe(0);
  });

  it('reports a process that exits during start-up with the tail of its log', async () => {
    const spec = await fakeSpec({ exitAtOnce: true });
    await expect(ensureService(spec, 'auto')).rejects.toThrow(/fake service \(pid \d+\) exited during start-up[^]*fatal: cannot bind/);
  });
});

describe('withLock', () => {
  it('serialises holders and takes over a lock whose owner is dead', async () => {
    const dir = await tempDir();
    const lock = path.join(dir, 'lock');
    const order: string[] = [];
    await Promise.all([
      withLock(lock, async () => {
        order.push('a-in');
        await new Promise((r) => setTimeout(r, 100));
        order.push('a-out');
      }),
      withLock(lock, async () => {
        order.push('b-in');
        order.push('b-out');
      }),
    ]);
    expect(order.join(',')).toMatch(/^(a-in,a-out,b-in,b-out|b-in,b-out,a-in,a-out)$/);

    const { mkdir } = await import('node:fs/promises');
    await mkdir(lock);
    await writeFile(path.join(lock, 'owner'), '999999999');
    await expect(withLock(lock, async () => 'taken over', 2_000)).resolves.toBe('taken over');
  });
});

describe('local broker configuration', () => {
  it('makes transactions work on one node and creates no topic implicitly', () => {
    const props = Object.fromEntries(
      brokerProperties({ port: 19092, controllerPort: 19093, dataDir: '/tmp/data' })
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    );
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
    });
  });

  it('generates KRaft cluster ids as 22 base64url characters not starting with "-"', () => {
    for (let i = 0; i < 200; i++) expect(randomClusterId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  });
});
