/**
 * Traces the anomalies of a fault run to the runtime's log: for every input partition with lost or
 * duplicated records, which records (input offsets, when produced, whether an aborted transaction
 * carried them), and the timeline of everything the instances said about the owning task
 * (`0_<partition>`) around that time: assignments, commits of that task, errors, warnings,
 * migrations, closes, deaths and the harness' fault marks.
 *
 * `tsx test/chaos/analyze.ts <run dir> [--window-s 15]` (a run dir holds result.json and app*.log).
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import type { RunResult } from './scenario.js'
import type { Anomaly } from './verify.js'

/** One log line with its arrival time (ms of the day, UTC) and instance. */
interface Line {
  readonly ms: number
  readonly instance: string
  readonly text: string
}

const msOfDay = (hms: string): number => {
  const [h, m, s] = hms.split(':')
  return (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000
}

/** Lines of every `app*.log` in `dir`, by time. */
export async function readLogs(dir: string): Promise<Line[]> {
  const out: Line[] = []
  for (const f of (await readdir(dir)).filter((f) => /^app\d+\.log$/.test(f)).sort()) {
    const instance = f.replace(/\.log$/, '')
    for (const l of (await readFile(path.join(dir, f), 'utf8')).split('\n')) {
      const m = /^(\d\d:\d\d:\d\d\.\d\d\d) (.*)$/.exec(l)
      if (m) out.push({ ms: msOfDay(m[1]!), instance, text: m[2]! })
    }
  }
  return out.sort((a, b) => a.ms - b.ms)
}

/** Whether a log line concerns task `taskId` (or the whole instance: errors, deaths, faults, rebalances). */
function relevant(text: string, taskId: string): boolean {
  if (text.startsWith('[harness]')) return true
  if (text.includes('[kafkajs')) return false
  if (text.startsWith('[debug]')) return false
  if (text.startsWith('{')) {
    try {
      const e = JSON.parse(text) as { ev: string; tasks?: string[]; active?: string[]; taskId?: string }
      if (e.ev === 'commit') return e.tasks?.includes(taskId) ?? false
      if (e.ev === 'assignment') return true
      if (e.ev === 'state' || e.ev === 'error') return true
      return e.taskId === taskId
    } catch {
      return false
    }
  }
  return text.startsWith('[error]') || text.startsWith('[warn]') || text.startsWith('[info]')
}

const fmt = (ms: number): string => {
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const s = ((ms % 60_000) / 1000).toFixed(3).padStart(6, '0')
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${s}`
}

/** The report as text. */
export async function analyze(dir: string, windowS = 15): Promise<string> {
  const result = JSON.parse(await readFile(path.join(dir, 'result.json'), 'utf8')) as RunResult
  const anomalies: Anomaly[] = result.verdict?.anomalies ?? []
  const lines = await readLogs(dir)
  const out: string[] = [`${result.scenario} ${result.guarantee} #${result.run} (runtime ${result.code}): ${result.pass ? 'PASS' : 'FAIL'}`]
  out.push(
    `deaths: ${result.deaths.length}${result.deaths.map((d) => `\n  ${fmt(msOfDay(new Date(d.t).toISOString().slice(11, 23)))} ${d.instance} ${d.kind}: ${d.detail.slice(0, 240)}`).join('')}`,
  )
  if (result.verdict) {
    const v = result.verdict
    out.push(
      `verdict: produced ${v.produced}, echo ${v.echoRead}, agg ${v.aggRead}, aborted records ${v.abortedRecords}, lost ${v.lost}, dup ${v.duplicated}, open txns ${v.openTransactions.length}`,
    )
    for (const p of v.problems.slice(0, 8)) out.push(`  problem: ${p}`)
  }
  const byPartition = new Map<number, Anomaly[]>()
  for (const a of anomalies) byPartition.set(a.partition, [...(byPartition.get(a.partition) ?? []), a])
  for (const [p, list] of [...byPartition].sort((a, b) => a[0] - b[0])) {
    const taskId = `0_${p}`
    const kinds = new Map<string, number>()
    for (const a of list) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1)
    out.push(`\n== partition ${p} (task ${taskId}): ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`)
    const offsets = list.map((a) => a.inputOffset)
    out.push(
      `input offsets ${Math.min(...offsets)}..${Math.max(...offsets)}; produced ${list[0]!.produced}..${list[list.length - 1]!.produced}`,
    )
    for (const a of list.slice(0, 20))
      out.push(`  ${a.kind} ${a.value} @${a.inputOffset} produced ${a.produced}, in aborted txns: ${a.inAborted}`)
    if (list.length > 20) out.push(`  ... ${list.length - 20} more`)
    const from = msOfDay(list[0]!.produced) - windowS * 1000
    const to = msOfDay(list[list.length - 1]!.produced) + windowS * 1000
    out.push(`-- timeline ${fmt(from)} .. ${fmt(to)} (commits of ${taskId}, errors, warnings, assignments, deaths):`)
    let lastCommit = ''
    for (const l of lines) {
      if (l.ms < from || l.ms > to || !relevant(l.text, taskId)) continue
      // collapse runs of plain successful commits of the task into first/last
      const isCommit = l.text.startsWith('{"t"') && l.text.includes('"ev":"commit"')
      const key = `${l.instance} commit`
      if (isCommit && lastCommit === key) continue
      lastCommit = isCommit ? key : ''
      out.push(`${fmt(l.ms)} ${l.instance} ${l.text.slice(0, 400)}`)
    }
  }
  return out.join('\n')
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { 'window-s': { type: 'string', default: '15' } } })
  for (const dir of positionals) process.stdout.write((await analyze(dir, Number(values['window-s']))) + '\n\n')
}
