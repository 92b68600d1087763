/**
 * One fault run: the application (3 instances of test/eos/app.ts by default) on a cluster the
 * harness owns, paced input, a fault injected by the scenario while input flows, then drain,
 * graceful stop and the independent verdict (test/chaos/verify.ts).
 *
 * A scenario is a function of a {@link RunContext}: it injects its fault(s) and returns when the
 * last fault has ended, telling when (for the catch-up time). Everything else — topics, instances,
 * input, lag sampling, verification, logs — is here, the same for every scenario.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Admin, Kafka } from 'kafkajs'
import { sleep, stamp } from './clock.js'
import type { Cluster } from './cluster.js'
import { AppInstance, allDeaths, ROOT, type Death, type InstanceOptions } from './instances.js'
import { chooseKeys, createTopics, PacedInput } from './input.js'
import { kafkaFor, randomName } from './kafka.js'
import type { CodeVersion } from './snapshot.js'
import { LagWatch, verify, waitDrained, type Verdict } from './verify.js'

export type Guarantee = 'exactly_once' | 'exactly_once_v2' | 'at_least_once'

/** Knobs of one run (defaults: issue 16's setup). */
export interface RunOptions {
  readonly guarantee: Guarantee
  /** @defaultValue 3 */
  readonly instances?: number
  /** @defaultValue 6 */
  readonly partitions?: number
  /** Keys per input partition. @defaultValue 10 (60 keys) */
  readonly keysPerPartition?: number
  /** @defaultValue 400 */
  readonly ratePerSec?: number
  /** Seconds of input at `ratePerSec` (stalls make it take longer). @defaultValue 45 */
  readonly inputSeconds?: number
  /** @defaultValue 100 */
  readonly commitIntervalMs?: number
  /** @defaultValue 6000 */
  readonly sessionTimeoutMs?: number
  /** Restart dead instances (issue 16's operator); the pass criterion runs without. @defaultValue false */
  readonly supervise?: boolean
  /** Replication factor of the topics the harness creates. @defaultValue 1 */
  readonly replicationFactor?: number
  /** Extra environment of every instance (e.g. REPLICATION_FACTOR for a 3-node cluster). */
  readonly appEnv?: Record<string, string>
  /** Per-instance overrides (network namespace prefix, state directory). */
  readonly instanceOptions?: (index: number) => Partial<InstanceOptions>
  /** Milliseconds to wait for the group to consume everything after the input ended. @defaultValue 300000 */
  readonly drainTimeoutMs?: number
  /** Where the run's logs go. */
  readonly logDir: string
  /** The runtime under test. @defaultValue the working tree */
  readonly code?: CodeVersion
}

/** What a scenario gets to work with. */
export interface RunContext {
  readonly cluster: Cluster
  readonly kafka: Kafka
  readonly admin: Admin
  readonly appId: string
  readonly instances: ReadonlyArray<AppInstance>
  readonly input: PacedInput
  readonly options: RunOptions
  /** Writes a harness line (fault start/end) into every instance's log and the run log. */
  note(line: string): void
}

/** A fault scenario: injects its fault(s) while input flows; resolves with the time the last fault ended. */
export type ScenarioFn = (ctx: RunContext) => Promise<{ faultEnd: number }>

/** The result of one run (a row of the matrix). */
export interface RunResult {
  readonly scenario: string
  readonly guarantee: Guarantee
  readonly run: number
  readonly deaths: Death[]
  readonly verdict: Verdict | undefined
  /** Milliseconds from the fault's end until the group lag was ≤ 1 s of input. */
  readonly catchUpMs: number | undefined
  /** Milliseconds from the last input record until lag 0. */
  readonly drainMs: number | undefined
  readonly error: string | undefined
  readonly logDir: string
  /** The runtime under test (`worktree` or a commit). */
  readonly code: string
  readonly pass: boolean
}

/** Runs `scenario` once on `cluster`. Never throws: a harness failure is the row's `error`. */
export async function runOnce(name: string, scenario: ScenarioFn, cluster: Cluster, run: number, options: RunOptions): Promise<RunResult> {
  await mkdir(options.logDir, { recursive: true })
  const runLog: string[] = []
  const note = (line: string): void => {
    runLog.push(`${stamp()} ${line}`)
    process.stderr.write(`[chaos ${name}/${options.guarantee}#${run}] ${line}\n`)
    for (const i of instances) i.note(line)
  }
  const kafka = kafkaFor(cluster.brokers, { retry: { retries: 10, maxRetryTime: 5000 } })
  const admin = kafka.admin()
  const appId = randomName('chaos-app')
  const topics = { input: randomName('chaos-in'), echo: randomName('chaos-echo'), agg: randomName('chaos-agg') }
  const partitions = options.partitions ?? 6
  const rate = options.ratePerSec ?? 400
  const instances: AppInstance[] = []
  let input: PacedInput | undefined
  let lag: LagWatch | undefined
  let verdict: Verdict | undefined
  let catchUpMs: number | undefined
  let drainMs: number | undefined
  let error: string | undefined
  try {
    await admin.connect()
    await createTopics(admin, [topics.input, topics.echo, topics.agg], partitions, options.replicationFactor ?? 1)
    const keys = chooseKeys(partitions, options.keysPerPartition ?? 10)
    for (let i = 0; i < (options.instances ?? 3); i++) {
      instances.push(
        await AppInstance.create(`app${i + 1}`, {
          logDir: options.logDir,
          supervise: options.supervise ?? false,
          ...(options.code ? { cwd: options.code.root, script: options.code.appScript } : {}),
          env: {
            BROKERS: cluster.brokers,
            APP_ID: appId,
            INPUT: topics.input,
            ECHO: topics.echo,
            AGG: topics.agg,
            TOPOLOGY: 'echo-agg',
            GUARANTEE: options.guarantee,
            COMMIT_INTERVAL_MS: String(options.commitIntervalMs ?? 100),
            SESSION_TIMEOUT_MS: String(options.sessionTimeoutMs ?? 6000),
            LOG_LEVEL: 'info',
            TRACE_COMMITS: '1',
            ...options.appEnv,
          },
          ...options.instanceOptions?.(i),
        }),
      )
    }
    note(
      `runtime ${options.code?.id ?? 'worktree'}; app ${appId}, input ${topics.input} (${partitions} partitions, ${keys.length} keys, ${rate}/s), guarantee ${options.guarantee}`,
    )
    for (const i of instances) i.start()
    await Promise.all(instances.map((i) => i.waitRunning()))
    await sleep(1000)
    note('all instances RUNNING; input starts')
    lag = new LagWatch(admin, appId, topics.input)
    input = await new PacedInput(kafka, {
      topic: topics.input,
      keys,
      ratePerSec: rate,
      total: rate * (options.inputSeconds ?? 45),
      partitions,
    }).start()
    const ctx: RunContext = { cluster, kafka, admin, appId, instances, input, options, note }
    const { faultEnd } = await scenario(ctx)
    note('fault over')
    await input.finished(600_000)
    const lastInput = input.lastAt
    note(`input done: ${input.produced} records`)
    await waitDrained(admin, appId, topics.input, options.drainTimeoutMs ?? 300_000)
    note('group drained (lag 0)')
    const drainedAt = Date.now()
    await lag.stop()
    lag.record(drainedAt, 0)
    catchUpMs = lag.caughtUpAfter(faultEnd, rate)
    drainMs = drainedAt - lastInput
    const deathsBeforeStop = allDeaths(instances).length
    const codes = await Promise.all(instances.map((i) => i.stop()))
    note(`instances stopped: exit codes ${codes.join(',')} (deaths so far ${deathsBeforeStop})`)
    const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`))
    verdict = await verify(kafka, admin, { brokers: cluster.brokers, appId, ...topics, internal }, options.guarantee, input.produced)
    note(
      `verdict: ${verdict.ok ? 'exact' : 'ANOMALIES'} lost=${verdict.lost} dup=${verdict.duplicated} open=${verdict.openTransactions.length} problems=${verdict.problems.length}`,
    )
  } catch (e) {
    error = (e as Error).message
    note(`harness error: ${error}`)
  } finally {
    await lag?.stop()
    await input?.stop().catch(() => undefined)
    for (const i of instances) await i.dispose()
    try {
      const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`))
      await admin.deleteTopics({ topics: [topics.input, topics.echo, topics.agg, ...internal], timeout: 30_000 })
    } catch {
      // a broken cluster: the topics go with it
    }
    await admin.disconnect().catch(() => undefined)
  }
  const deaths = allDeaths(instances)
  const result: RunResult = {
    scenario: name,
    guarantee: options.guarantee,
    run,
    deaths,
    verdict,
    catchUpMs,
    drainMs,
    error,
    logDir: path.relative(ROOT, options.logDir),
    code: options.code?.id ?? 'worktree',
    pass: error === undefined && deaths.length === 0 && verdict?.ok === true,
  }
  await writeFile(path.join(options.logDir, 'result.json'), JSON.stringify(result, null, 2))
  await writeFile(path.join(options.logDir, 'run.log'), runLog.join('\n') + '\n')
  return result
}
