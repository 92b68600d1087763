/**
 * (d) The schema registry frozen (SIGSTOP) for 30 s while Avro input flows through the
 * impression/click topology (stream-stream join + windowed CTR, exactly-once by default), three
 * instances (test/chaos/apps/impression-click.ts), on a private broker and a PRIVATE registry
 * (never the shared one on 8081). 5 s into the outage one instance is restarted (an outage bites
 * when a registry call is needed: a starting instance resolves its schemas); it must come up when
 * the registry is back, and none may die.
 *
 * Input and verdict are the example's own: examples/impression-click/generator.ts plans the input
 * and the truth (every AdEvent, every final CTR window), examples/impression-click/verify.ts
 * compares the outputs (read_committed) with it. Exactly-once: the report must be exact.
 * At-least-once: nothing missing (duplicates allowed).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ensureRegistry, type LocalRegistry } from '../../scripts/local-registry.js'
import { defaultGeneratorOptions, replayStartTime, runGenerator } from '../../examples/impression-click/generator.js'
import { topicNames } from '../../examples/impression-click/config.js'
import { formatReport, readOutputs, verify as verifyExample } from '../../examples/impression-click/verify.js'
import { sleep, stamp } from './clock.js'
import { signal, type Cluster } from './cluster.js'
import { AppInstance, allDeaths, ROOT } from './instances.js'
import { createTopics } from './input.js'
import { kafkaFor, randomName } from './kafka.js'
import type { Guarantee, RunResult } from './scenario.js'
import type { CodeVersion } from './snapshot.js'
import { LagWatch } from './verify.js'

/** A private registry for the fault runs (Apicurio, in-memory: freezing keeps its schemas, a restart would not). */
export async function startPrivateRegistry(port = 28081, log: (m: string) => void = () => {}): Promise<LocalRegistry> {
  if (port === 8081) throw new Error('the fault harness never freezes the shared registry on 8081')
  const r = await ensureRegistry({ port, useEnv: false, mode: 'auto', log })
  if (r.pid === undefined) throw new Error(`a registry answers on ${port} but was not started by these scripts: refusing to freeze it`)
  return r
}

/** One run of the registry-freeze scenario. Never throws (a harness failure is the row's `error`). */
export async function runRegistryFreeze(
  cluster: Cluster,
  registry: LocalRegistry,
  run: number,
  options: { guarantee: Guarantee; logDir: string; freezeMs?: number; code?: CodeVersion; supervise?: boolean },
): Promise<RunResult> {
  const name = 'registry-freeze'
  await mkdir(options.logDir, { recursive: true })
  const runLog: string[] = []
  const instances: AppInstance[] = []
  const note = (line: string): void => {
    runLog.push(`${stamp()} ${line}`)
    process.stderr.write(`[chaos ${name}/${options.guarantee}#${run}] ${line}\n`)
    for (const i of instances) i.note(line)
  }
  const prefix = `${randomName('chaos-ic')}-`
  const topics = topicNames(prefix)
  const dlq = `${prefix}dlq`
  const appId = `${prefix}impression-click`
  const kafka = kafkaFor(cluster.brokers, { retry: { retries: 10, maxRetryTime: 5000 } })
  const admin = kafka.admin()
  let lag: LagWatch | undefined
  let error: string | undefined
  let catchUpMs: number | undefined
  let report: ReturnType<typeof verifyExample> | undefined
  const freezeMs = options.freezeMs ?? 30_000
  const registryPid = registry.pid!
  try {
    await admin.connect()
    await createTopics(admin, [topics.impressions, topics.clicks, topics.adEvents, topics.campaignCtr], 4)
    await createTopics(admin, [dlq], 1)
    const root = options.code?.root ?? ROOT
    for (let i = 0; i < 3; i++) {
      instances.push(
        await AppInstance.create(`app${i + 1}`, {
          logDir: options.logDir,
          supervise: options.supervise ?? false,
          cwd: root,
          script: path.join(root, 'test/chaos/apps/impression-click.ts'),
          env: {
            KAFKA_BROKERS: cluster.brokers,
            SCHEMA_REGISTRY_URL: registry.url,
            TOPIC_PREFIX: prefix,
            DEAD_LETTER_TOPIC: dlq,
            PROCESSING_GUARANTEE: options.guarantee,
            INSTANCE_ID: String(i + 1),
            COMMIT_INTERVAL_MS: '100',
            SESSION_TIMEOUT_MS: '6000',
            LOG_LEVEL: 'info',
          },
        }),
      )
    }
    note(
      `runtime ${options.code?.id ?? 'worktree'}; app ${appId}, registry ${registry.url} (pid ${registryPid}), guarantee ${options.guarantee}`,
    )
    for (const i of instances) i.start()
    await Promise.all(instances.map((i) => i.waitRunning()))
    note('all instances RUNNING; generator starts')
    lag = new LagWatch(admin, appId, topics.impressions)
    // speedup 10: a rebalance of ~20 s of wall time is ~200 s of event time, inside the join grace
    // (5 min) and far inside the CTR grace (60 min); at the end-to-end test's 600 the same
    // rebalance is 3 h of event time and rightly drops AdEvents as too late for their CTR window
    const planned = { ...defaultGeneratorOptions(), count: 8_000, rate: 200, speedup: 10, campaigns: 4, seed: 7 + run }
    // event time at or behind the wall clock (Kafka 4.x rejects records stamped > 1 h ahead)
    const generatorOptions = { ...planned, startTime: replayStartTime(planned) }
    const generator = runGenerator(generatorOptions, {
      brokers: cluster.brokers.split(','),
      registryUrl: registry.url,
      topics,
      waitForGroup: appId,
    })
    generator.catch(() => undefined)
    await sleep(10_000)
    note(`FAULT: schema registry frozen (SIGSTOP pid ${registryPid}) for ${freezeMs / 1000} s`)
    signal(registryPid, 'SIGSTOP')
    try {
      // an outage bites when a registry call is needed: an instance (re)starting resolves its schemas
      await sleep(5000)
      note('app3 restarted (graceful stop, start) while the registry is frozen')
      await instances[2]!.stop()
      instances[2]!.start()
      await sleep(Math.max(0, freezeMs - 5000))
    } finally {
      signal(registryPid, 'SIGCONT')
    }
    const faultEnd = Date.now()
    note('FAULT END: registry resumed (SIGCONT)')
    await instances[2]!
      .waitRunning(120_000)
      .catch((e: unknown) => note(`app3 not RUNNING after the registry returned: ${(e as Error).message}`))
    const truth = await generator
    note(`generator done (${truth.impressions} impressions, ${truth.clicks} clicks); group caught up`)
    await lag.stop()
    lag.record(Date.now(), 0)
    catchUpMs = lag.caughtUpAfter(faultEnd, generatorOptions.rate)
    const outputs = await readOutputs({
      brokers: cluster.brokers.split(','),
      registryUrl: registry.url,
      topics,
      expectedAdEvents: truth.impressions - truth.tooLate,
      expectedCtr: truth.windows.length,
      settleMs: 2_000,
      timeoutMs: 120_000,
    })
    const codes = await Promise.all(instances.map((i) => i.stop()))
    note(`instances stopped: exit codes ${codes.join(',')}`)
    report = verifyExample(truth, outputs)
    note(`verdict: ${report.exact ? 'EXACT' : 'NOT EXACT'}\n${formatReport(report)}`)
  } catch (e) {
    error = (e as Error).message
    note(`harness error: ${error}`)
  } finally {
    signal(registryPid, 'SIGCONT')
    await lag?.stop()
    for (const i of instances) await i.dispose()
    try {
      const internal = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
      await admin.deleteTopics({ topics: internal, timeout: 30_000 })
    } catch {
      // a broken cluster: the topics go with it
    }
    await admin.disconnect().catch(() => undefined)
  }
  const deaths = allDeaths(instances)
  const lost = report ? report.missing.adEvents + report.missing.ctr : 0
  const duplicated = report ? report.duplicates.adEvents + report.duplicates.ctr : 0
  const exactlyOnce = options.guarantee !== 'at_least_once'
  const problems = report ? (exactlyOnce ? report.problems : report.problems.filter((p) => /missing/i.test(p))) : []
  const ok = report !== undefined && (exactlyOnce ? report.exact : lost === 0)
  const result: RunResult = {
    scenario: name,
    guarantee: options.guarantee,
    run,
    deaths,
    verdict: report && {
      guarantee: options.guarantee,
      produced: report.impressionsGenerated + report.clicksGenerated,
      inputRead: report.impressionsGenerated + report.clicksGenerated,
      echoRead: report.actual.clicked + report.actual.notClicked,
      aggRead: report.actual.ctrWindows,
      abortedRecords: 0,
      openTransactions: [],
      problems: ok ? [] : problems.length ? problems : report.problems,
      anomalies: [],
      lost,
      duplicated,
      ok,
    },
    catchUpMs,
    drainMs: undefined,
    error,
    logDir: path.relative(ROOT, options.logDir),
    code: options.code?.id ?? 'worktree',
    pass: error === undefined && deaths.length === 0 && ok,
  }
  await writeFile(path.join(options.logDir, 'result.json'), JSON.stringify({ ...result, report }, null, 2))
  await writeFile(path.join(options.logDir, 'run.log'), runLog.join('\n') + '\n')
  return result
}
