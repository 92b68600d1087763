/**
 * The README's metrics table ("Operating kstreams") lists exactly the metrics of
 * lib/metrics/names.ts' METRIC_CATALOGUE, with their group, level and description, so the two
 * cannot drift apart.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { METRIC_CATALOGUE } from '../../lib/metrics/names.js'

const README = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8')

function tableRows(): string[][] {
  const start = README.indexOf('| name | group | level | meaning |')
  expect(start, 'the metrics table header').toBeGreaterThan(0)
  const lines = README.slice(start).split('\n')
  const rows: string[][] = []
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim()),
    )
  }
  return rows
}

describe('README metrics table', () => {
  it('matches METRIC_CATALOGUE: every metric once, with its group, level and meaning', () => {
    const rows = tableRows().map(([name, group, level, meaning]) => ({ name: name!.replace(/`/g, ''), group, level, meaning }))
    const catalogue = METRIC_CATALOGUE.map((e) => ({ name: e.name, group: e.group, level: e.level, meaning: e.description }))
    const key = (r: { name: string; group?: string }) => `${r.group} ${r.name}`
    expect(rows.map(key).sort()).toEqual(catalogue.map(key).sort())
    expect([...rows].sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...catalogue].sort((a, b) => key(a).localeCompare(key(b))))
  })
})
