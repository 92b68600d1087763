/**
 * The terminal dashboard of `npm run demo -- --dashboard`: per app instance (separate processes,
 * each serving kstreams/http), its state and, per sub-topology, the consumer lag and processing rate
 * of its sources and the restore progress of its stores, read from each instance's `/topology`
 * JSON (the live topology: `liveTopology` plus the client state and health).
 *
 * Rendering is pure ({@link renderDashboard}, {@link dashboardLine}) so it is unit-tested from a
 * captured snapshot; {@link pollInstances} does the HTTP.
 */
import Table from 'cli-table3'
import type { LiveTopologySnapshot } from '../lib/index.js'

/** The body of an instance's `/topology` (JSON form). */
export interface TopologyEndpointBody extends LiveTopologySnapshot {
  readonly state: string
  readonly health?: {
    readonly ready: boolean
    readonly maxLag: number
    readonly tasks: ReadonlyArray<{ readonly taskId: string; readonly state: string }>
  }
}

/** One instance as last polled. */
export interface InstanceView {
  /** Shown name, e.g. `instance 2`. */
  readonly name: string
  /** `http://host:port` of its kstreams/http server. */
  readonly url: string
  /** The last answer of `/topology`; undefined when it never answered. */
  readonly body?: TopologyEndpointBody
  /** Why the last poll failed (process down, not listening yet), if it did. */
  readonly error?: string
}

const rate = (r: number | undefined): string => (r === undefined ? '-' : r >= 100 ? `${Math.round(r)}/s` : `${r.toFixed(1)}/s`)

function restoreText(stores: LiveTopologySnapshot['stores']): string {
  if (stores.length === 0) return ''
  let restored = 0
  let remaining = 0
  let known = false
  for (const s of stores) {
    if (s.restored === undefined && s.remaining === undefined) continue
    known = true
    restored += s.restored ?? 0
    remaining += s.remaining ?? 0
  }
  if (!known) return '-'
  const total = restored + remaining
  return remaining === 0 ? `restored ${restored}` : `restoring ${restored}/${total} (${Math.floor((100 * restored) / total)}%)`
}

function stateText(v: InstanceView): string {
  if (!v.body) return v.error ? `down (${v.error})` : 'starting'
  const h = v.body.health
  const tasks = h
    ? ` · ${h.tasks.length} tasks${h.tasks.some((t) => t.state !== 'running') ? ` (${h.tasks.filter((t) => t.state !== 'running').length} not running)` : ''}`
    : ''
  const stale = v.error ? ' (stale: ' + v.error + ')' : ''
  return `${v.body.state}${h?.ready ? ' ready' : ''}${tasks}${stale}`
}

/** Rows per instance and sub-topology: sources with their lag and rate, stores with their restore progress. */
export function dashboardRows(views: ReadonlyArray<InstanceView>): string[][] {
  const rows: string[][] = []
  for (const v of views) {
    const state = stateText(v)
    if (!v.body) {
      rows.push([v.name, state, '', '', '', '', ''])
      continue
    }
    const subs = [...new Set([...v.body.sources, ...v.body.stores].map((x) => x.subtopology))].sort((a, b) => a - b)
    if (subs.length === 0) rows.push([v.name, state, '', '', '', '', ''])
    for (const [i, sub] of subs.entries()) {
      const sources = v.body.sources.filter((s) => s.subtopology === sub)
      const stores = v.body.stores.filter((s) => s.subtopology === sub)
      const lags = sources.map((s) => s.lag).filter((l): l is number => l !== undefined)
      const subRate = sources.find((s) => s.rate !== undefined)?.rate
      rows.push([
        i === 0 ? v.name : '',
        i === 0 ? state : '',
        String(sub),
        sources.map((s) => s.topic).join(', '),
        lags.length ? String(Math.max(...lags)) : '-',
        rate(subRate),
        restoreText(stores),
      ])
    }
  }
  return rows
}

/** The dashboard as a table (for a TTY, redrawn in place). */
export function renderDashboard(views: ReadonlyArray<InstanceView>): string {
  const table = new Table({
    head: ['instance', 'state', 'sub', 'sources', 'lag', 'rate', 'restore'],
    colAligns: ['left', 'left', 'right', 'left', 'right', 'right', 'left'],
    // no separator lines between rows: the frame shares the terminal with the campaign table
    style: { head: [], border: [], compact: true },
  })
  for (const row of dashboardRows(views)) table.push(row)
  return table.toString()
}

/** One plain line per instance (without a TTY, e.g. CI): state, total lag and rate per sub-topology, restore. */
export function dashboardLine(views: ReadonlyArray<InstanceView>): string {
  return views
    .map((v) => {
      if (!v.body) return `${v.name}: ${stateText(v)}`
      const subs = [...new Set(v.body.sources.map((s) => s.subtopology))].sort((a, b) => a - b)
      const parts = subs.map((sub) => {
        const sources = v.body!.sources.filter((s) => s.subtopology === sub)
        const lags = sources.map((s) => s.lag).filter((l): l is number => l !== undefined)
        return `sub ${sub} lag ${lags.length ? Math.max(...lags) : '-'} ${rate(sources.find((s) => s.rate !== undefined)?.rate)}`
      })
      const restore = restoreText(v.body.stores)
      return `${v.name}: ${stateText(v)}; ${parts.join(', ')}${restore ? `; ${restore}` : ''}`
    })
    .join(' | ')
}

/** Polls `/topology` of every instance once (1 s timeout each); keeps the last body when a poll fails. */
export async function pollInstances(views: ReadonlyArray<InstanceView>): Promise<InstanceView[]> {
  return Promise.all(
    views.map(async (v): Promise<InstanceView> => {
      try {
        const res = await fetch(`${v.url}/topology`, { signal: AbortSignal.timeout(1_000) })
        if (!res.ok) return { ...v, error: `HTTP ${res.status}` }
        return { name: v.name, url: v.url, body: (await res.json()) as TopologyEndpointBody }
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code
        return { ...v, error: cause ?? (e instanceof Error ? e.name : String(e)) }
      }
    }),
  )
}
