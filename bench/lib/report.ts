/**
 * Results: the JSON file, the Markdown tables and the chart (Vega-Lite compiled to Vega, rendered
 * to SVG by Vega's headless renderer: no browser, no canvas).
 */
import { writeFile } from 'node:fs/promises'
import { Resvg } from '@resvg/resvg-js'
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'
import type { Guarantee, Impl, WorkloadId } from './plan.js'

/** The numbers of one measured run. */
export interface RunResult {
  run: number
  ok: boolean
  /** Why the run does not count (failure, wrong or incomplete output). */
  error?: string
  inputRecords: number
  outputRecords?: number
  durationMs?: number
  recordsPerSec?: number
  mbPerSec?: number
  /** CPU of the measured process, % of one core. */
  cpuPct?: number
  brokerCpuPct?: number
  rssPeakMB?: number
  heapPeakMB?: number
  eldP99Ms?: number
  /** Workload-specific numbers (W7: `restorePhaseMs`, `restorePhaseRecordsPerSec`). */
  extra?: Record<string, number>
  /** Untimed phases of the run (topic setup, process start-up, settling, verification, stop), ms. */
  phasesMs?: Record<string, number>
}

/** One row of the matrix: a workload on one implementation, guarantee and data set. */
export interface CaseResult {
  id: string
  workload: WorkloadId
  impl: Impl
  guarantee?: Guarantee
  commitMs?: number
  /** kstreams' `metricsRecordingLevel` of this case. */
  metricsLevel?: string
  dataset: string
  keys: number
  label: string
  runs: RunResult[]
  /** Medians over the runs that passed verification. */
  median?: Omit<RunResult, 'run' | 'ok' | 'error' | 'inputRecords' | 'phasesMs' | 'extra'>
  skipped?: string
}

/** End-to-end latency at a fixed offered load. */
export interface LatencyResult {
  id: string
  label: string
  offeredRate: number
  achievedRate?: number
  received?: number
  p50Ms?: number
  p99Ms?: number
  p999Ms?: number
  maxMs?: number
  error?: string
}

/** A ratio printed at the end, with its target when the issue sets one. */
export interface Ratio {
  name: string
  value?: number
  target?: number
  note?: string
}

export interface BenchReport {
  startedAt: string
  finishedAt: string
  durationMs: number
  machine: Record<string, string | number>
  config: Record<string, unknown>
  preload: Array<{ topic: string; records: number; ms: number }>
  cases: CaseResult[]
  latency: LatencyResult[]
  ratios: Ratio[]
}

const fmtInt = (n: number | undefined) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US'))
const fmt1 = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(1))
const fmt2 = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(2))

/** Median of numbers (undefined when empty). */
export function median(values: Array<number | undefined>): number | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return undefined
  const mid = Math.floor(xs.length / 2)
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1]! + xs[mid]!) / 2
}

/** Fills `median` of a case from its passing runs. */
export function summarize(c: CaseResult): void {
  const ok = c.runs.filter((r) => r.ok)
  if (ok.length === 0) {
    delete c.median
    return
  }
  const m = (f: (r: RunResult) => number | undefined) => median(ok.map(f))
  c.median = {
    outputRecords: m((r) => r.outputRecords),
    durationMs: m((r) => r.durationMs),
    recordsPerSec: m((r) => r.recordsPerSec),
    mbPerSec: m((r) => r.mbPerSec),
    cpuPct: m((r) => r.cpuPct),
    brokerCpuPct: m((r) => r.brokerCpuPct),
    rssPeakMB: m((r) => r.rssPeakMB),
    heapPeakMB: m((r) => r.heapPeakMB),
    eldP99Ms: m((r) => r.eldP99Ms),
  }
}

/** The Markdown report. */
export function markdown(report: BenchReport): string {
  const lines: string[] = []
  lines.push(`# kstreams benchmarks — ${report.startedAt}`, '')
  lines.push(
    `Machine: ${Object.entries(report.machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. Total time ${(report.durationMs / 60000).toFixed(1)} min.`,
    '',
  )
  lines.push(
    `Config: ${Object.entries(report.config)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(', ')}.`,
    '',
  )
  lines.push('## Throughput (median of the runs whose output verified)', '')
  lines.push('| case | runs ok | records/s | min–max | MB/s | CPU % | broker CPU % | RSS MB | heap MB | ELD p99 ms |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|')
  for (const c of report.cases) {
    if (c.skipped) {
      lines.push(`| ${c.label} | skipped: ${c.skipped} | | | | | | | | |`)
      continue
    }
    const ok = c.runs.filter((r) => r.ok)
    const rates = ok.map((r) => r.recordsPerSec ?? 0)
    const m = c.median
    const errors = c.runs.filter((r) => !r.ok).map((r) => r.error)
    lines.push(
      `| ${c.label} | ${ok.length}/${c.runs.length}${errors.length ? ` (${errors[0]})` : ''} | ${fmtInt(m?.recordsPerSec)} | ${
        rates.length ? `${fmtInt(Math.min(...rates))}–${fmtInt(Math.max(...rates))}` : '–'
      } | ${fmt1(m?.mbPerSec)} | ${fmtInt(m?.cpuPct)} | ${fmtInt(m?.brokerCpuPct)} | ${fmtInt(m?.rssPeakMB)} | ${fmtInt(m?.heapPeakMB)} | ${fmt1(m?.eldP99Ms)} |`,
    )
  }
  if (report.latency.length > 0) {
    lines.push('', '## End-to-end latency at 50 % of the measured maximum', '')
    lines.push('| case | offered rec/s | achieved rec/s | outputs | p50 ms | p99 ms | p99.9 ms | max ms |')
    lines.push('|---|---|---|---|---|---|---|---|')
    for (const l of report.latency) {
      if (l.error) {
        lines.push(`| ${l.label} | ${fmtInt(l.offeredRate)} | failed: ${l.error} | | | | | |`)
        continue
      }
      lines.push(
        `| ${l.label} | ${fmtInt(l.offeredRate)} | ${fmtInt(l.achievedRate)} | ${fmtInt(l.received)} | ${fmtInt(l.p50Ms)} | ${fmtInt(l.p99Ms)} | ${fmtInt(l.p999Ms)} | ${fmtInt(l.maxMs)} |`,
      )
    }
  }
  lines.push('', '## Ratios', '')
  lines.push('| ratio | value | target | |')
  lines.push('|---|---|---|---|')
  for (const r of report.ratios) {
    const verdict = r.value === undefined || r.target === undefined ? '' : r.value >= r.target ? 'met' : '**missed**'
    lines.push(
      `| ${r.name} | ${r.value !== undefined && r.value >= 1000 ? fmtInt(r.value) : fmt2(r.value)} | ${r.target === undefined ? '' : `≥ ${r.target}`} | ${verdict}${r.note ? ` ${r.note}` : ''} |`,
    )
  }
  if (report.preload.length > 0) {
    lines.push('', '## Preload (untimed phase)', '')
    for (const p of report.preload) lines.push(`- ${p.topic}: ${fmtInt(p.records)} records in ${(p.ms / 1000).toFixed(1)} s`)
  }
  lines.push('')
  return lines.join('\n')
}

/** The ratios as aligned text lines for the console. */
export function ratioLines(ratios: Ratio[]): string[] {
  const width = Math.max(...ratios.map((r) => r.name.length), 10)
  return ratios.map((r) => {
    const target =
      r.target === undefined ? '' : `  (target ≥ ${r.target}: ${r.value !== undefined && r.value >= r.target ? 'met' : 'MISSED'})`
    const value = r.value === undefined ? '–' : r.value >= 1000 ? fmtInt(r.value) : r.value.toFixed(2)
    return `${r.name.padEnd(width)}  ${value.padStart(8)}${target}${r.note ? `  ${r.note}` : ''}`
  })
}

/**
 * Renders the chart: throughput per workload (one bar per implementation and guarantee) and,
 * when measured, latency percentiles. Vega-Lite spec → Vega → SVG string.
 */
export async function chartSvg(report: BenchReport): Promise<string> {
  const throughput = report.cases
    .filter((c) => c.median?.recordsPerSec !== undefined)
    .map((c) => ({
      workload: `${c.workload}${c.dataset === 'large' ? ' (1M keys)' : ''}${c.commitMs !== undefined && c.workload === 'W0c' ? ` ${c.commitMs} ms` : ''}`,
      series: `${c.impl}${c.guarantee ? ` ${c.guarantee}` : ''}`,
      recordsPerSec: Math.round(c.median!.recordsPerSec!),
    }))
  const latency = report.latency
    .filter((l) => l.p50Ms !== undefined)
    .flatMap((l) => [
      { case: l.label, percentile: 'p50', ms: Math.max(l.p50Ms!, 0.5) },
      { case: l.label, percentile: 'p99', ms: Math.max(l.p99Ms!, 0.5) },
      { case: l.label, percentile: 'p99.9', ms: Math.max(l.p999Ms!, 0.5) },
    ])
  const views: vegaLite.TopLevelSpec[] = []
  // A dot plot on a log axis: the physical limits (W0a, W0d) are orders of magnitude above the
  // topologies, and bars cannot start at 0 on a log scale.
  const throughputView = {
    title: 'Throughput (records/s, median of verified runs, log scale)',
    data: { values: throughput },
    mark: { type: 'point', filled: true, size: 90, opacity: 0.9 },
    encoding: {
      y: { field: 'workload', type: 'nominal', title: null, sort: null },
      x: { field: 'recordsPerSec', type: 'quantitative', title: 'records/s', scale: { type: 'log' } },
      color: { field: 'series', type: 'nominal', title: 'implementation' },
      shape: { field: 'series', type: 'nominal', title: 'implementation' },
    },
    width: 640,
    height: { step: 24 },
  }
  const latencyView = {
    title: 'End-to-end latency at 50 % of max load (ms, log scale)',
    data: { values: latency },
    mark: { type: 'point', filled: true, size: 80 },
    encoding: {
      y: { field: 'case', type: 'nominal', title: null, sort: null },
      x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' },
      color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99', 'p99.9'] },
      shape: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99', 'p99.9'] },
    },
    width: 640,
    height: { step: 20 },
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `kstreams benchmarks ${report.startedAt}`,
    vconcat: latency.length > 0 ? [throughputView, latencyView] : [throughputView],
    resolve: { scale: { color: 'independent', shape: 'independent' } },
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif' },
  } as unknown as vegaLite.TopLevelSpec
  views.push(spec)
  const compiled = vegaLite.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

/** Rasterises the chart SVG to PNG (resvg, system fonts). */
export function svgToPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
  return resvg.render().asPng()
}

/** Writes `<base>.json`, `<base>.md`, `<base>.svg` and `<base>.png`. */
export async function writeReport(base: string, report: BenchReport): Promise<{ json: string; md: string; svg: string; png: string }> {
  const files = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg`, png: `${base}.png` }
  await writeFile(files.json, JSON.stringify(report, null, 2) + '\n')
  const svg = await chartSvg(report)
  await writeFile(files.svg, svg)
  await writeFile(files.png, svgToPng(svg))
  await writeFile(files.md, markdown(report) + `\n![chart](${base.split('/').pop()}.png)\n`)
  return files
}
