/**
 * Re-renders the Markdown, SVG and PNG of a results file (after a change to the report format):
 * `npx tsx bench/render.ts bench/results/<date>.json`.
 */
import { readFileSync } from 'node:fs'
import { writeReport, type BenchReport } from './lib/report.js'

async function main(): Promise<void> {
  const file = process.argv[2]
  if (!file?.endsWith('.json')) {
    process.stderr.write('usage: tsx bench/render.ts <results.json>\n')
    process.exit(2)
  }
  const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport
  const files = await writeReport(file.slice(0, -'.json'.length), report)
  process.stdout.write(`${files.md}\n${files.svg}\n${files.png}\n`)
}

void main()
