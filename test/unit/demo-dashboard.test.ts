/**
 * The demo's terminal dashboard (`npm run demo -- --dashboard`), rendered from `/topology` answers
 * captured from a demo run (three instances running, one right after its restart).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  dashboardLine,
  dashboardRows,
  renderDashboard,
  type InstanceView,
  type TopologyEndpointBody,
} from '../../scripts/demo-dashboard.js'

const fixture = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'demo-topology-snapshots.json'), 'utf8'),
) as { running: TopologyEndpointBody[]; rebalancing: TopologyEndpointBody }

const views = (bodies: Array<TopologyEndpointBody | undefined>, errors: Array<string | undefined> = []): InstanceView[] =>
  bodies.map((body, i) => ({
    name: `instance ${i + 1}`,
    url: `http://127.0.0.1:${9000 + i}`,
    ...(body ? { body } : {}),
    ...(errors[i] ? { error: errors[i] } : {}),
  }))

describe('demo dashboard', () => {
  it('shows per instance and sub-topology the state, sources, lag, rate and restore progress', () => {
    const [first] = fixture.running
    const rows = dashboardRows(views([first]))
    const subs = [...new Set(first!.sources.map((s) => s.subtopology))]
    expect(rows).toHaveLength(subs.length)
    const sub0 = first!.sources.filter((s) => s.subtopology === 0)
    const lag0 = Math.max(...sub0.map((s) => s.lag!))
    const rate0 = sub0[0]!.rate!
    expect(rows[0]).toEqual([
      'instance 1',
      `RUNNING ready · ${first!.health!.tasks.length} tasks`,
      '0',
      sub0.map((s) => s.topic).join(', '),
      String(lag0),
      rate0 >= 100 ? `${Math.round(rate0)}/s` : `${rate0.toFixed(1)}/s`,
      'restored 0',
    ])
    // the second sub-topology's row names only the sub-topology, not the instance again
    expect(rows[1]!.slice(0, 3)).toEqual(['', '', '1'])
    expect(rows[1]![3]).toBe('ctr-by-campaign-repartition')
  })

  it('renders every instance, an instance without assigned partitions with "-", and a down or rebalancing one', () => {
    const table = renderDashboard(
      views([...fixture.running, fixture.rebalancing, undefined], [undefined, undefined, undefined, undefined, 'ECONNREFUSED']),
    )
    for (const i of [1, 2, 3, 4, 5]) expect(table).toContain(`instance ${i}`)
    expect(table).toContain('REBALANCING · 0 tasks')
    expect(table).toContain('down (ECONNREFUSED)')
    // instance 2 owns no sub-topology 0 task: its lag and rate are unknown
    const second = dashboardRows(views([fixture.running[1]]))[0]!
    expect(second.slice(4, 6)).toEqual(['-', '-'])
    // a stale answer (the last body, then the poll failed) says so
    expect(renderDashboard(views([fixture.running[0]], ['ECONNREFUSED']))).toContain('stale: ECONNREFUSED')
  })

  it('shows restore progress while stores restore', () => {
    const body = fixture.running[0]!
    const restoring: TopologyEndpointBody = {
      ...body,
      stores: body.stores.map((s, i) => ({ ...s, restored: 100 * (i + 1), remaining: i === 0 ? 300 : 0 })),
    }
    // per sub-topology: sub-topology 0 (with the store still restoring) and 1 (done)
    const sum = (sub: number) => restoring.stores.filter((s) => s.subtopology === sub).reduce((n, s) => n + s.restored!, 0)
    const table = renderDashboard(views([restoring]))
    expect(table).toContain(`restoring ${sum(0)}/${sum(0) + 300} (${Math.floor((100 * sum(0)) / (sum(0) + 300))}%)`)
    expect(table).toContain(`restored ${sum(1)}`)
  })

  it('prints one plain line for all instances without a TTY', () => {
    const line = dashboardLine(views([...fixture.running, undefined]))
    expect(line.split(' | ')).toHaveLength(4)
    expect(line).toMatch(/^instance 1: RUNNING ready · \d+ tasks; sub 0 lag \d+ [\d.]+\/s, sub 1 lag \d+ [\d.]+\/s; restored 0 \| /)
    expect(line.endsWith('instance 4: starting')).toBe(true)
  })
})
