import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder, liveTopology, type Topology } from '../../lib/index.js'
import { StreamsMetrics } from '../../lib/metrics/streams-metrics.js'

const S = Serdes.String()

/** Word count: sub-topology 0 reads `words`, sub-topology 1 reads the repartition topic and holds store `counts`. */
function wordCount(): Topology {
  const b = new StreamsBuilder()
  b.stream('words', Consumed.with(S, S))
    .groupBy((_k, w) => w, Grouped.with(S, S).withName('by-word'))
    .count(Materialized.as('counts'))
    .toStream()
    .to('word-counts')
  return b.build()
}

/** A label-free outline of a Mermaid chart: node ids, shapes' ids and edges, in order. */
function outline(mermaid: string): string[] {
  return mermaid
    .trimEnd()
    .split('\n')
    .map((line) => line.replace(/"[^"]*"/g, '""'))
}

describe('Topology.toMermaid({ annotations })', () => {
  it('puts each annotation under the named topic, store and node, and keeps every node id and edge', () => {
    const topology = wordCount()
    const plain = topology.toMermaid()
    const annotated = topology.toMermaid({
      annotations: {
        sources: { words: 'lag 7', 'by-word-repartition': 'lag 0', nowhere: 'ignored' },
        stores: { counts: 'restored 10/10' },
        processors: { 'KSTREAM-AGGREGATE-0000000002': '12.5/s' },
      },
    })
    expect(outline(annotated)).toEqual(outline(plain))
    expect(annotated).toContain('  topic_words{{"words<br/>lag 7"}}\n')
    expect(annotated).toContain('  topic_by_word_repartition{{"by-word-repartition<br/>lag 0"}}\n')
    expect(annotated).toContain('  store_counts[("counts<br/>restored 10/10")]\n')
    expect(annotated).toContain('    KSTREAM_AGGREGATE_0000000002["KSTREAM-AGGREGATE-0000000002<br/>12.5/s"]\n')
    expect(annotated).not.toContain('ignored')
    // nodes without an annotation keep their plain label
    expect(annotated).toContain('  topic_word_counts{{"word-counts"}}\n')
  })

  it('escapes quotes, angle brackets and line breaks of annotations so the label stays one quoted string', () => {
    const annotated = wordCount().toMermaid({ annotations: { stores: { counts: 'say "hi" <b>\nnext' } } })
    expect(annotated).toContain('  store_counts[("counts<br/>say #quot;hi#quot; #lt;b#gt;<br/>next")]\n')
    expect(outline(annotated)).toEqual(outline(wordCount().toMermaid()))
  })

  it('without annotations renders exactly as before', () => {
    const topology = wordCount()
    expect(topology.toMermaid({})).toBe(topology.toMermaid())
    expect(topology.toMermaid({ annotations: {} })).toBe(topology.describe().toMermaid())
  })
})

describe('liveTopology', () => {
  function client(level: 'INFO' | 'DEBUG' = 'DEBUG') {
    let now = 1_000_000
    const metrics = new StreamsMetrics({ clientId: 'wc-1', recordingLevel: level, clock: () => now })
    return {
      metrics,
      advance: (ms: number) => (now += ms),
      streams: { config: { applicationId: 'wc' }, metrics: () => metrics.metrics() },
    }
  }

  it('collects lag (max over partitions), task process rate per sub-topology and restore progress per store', () => {
    const { metrics, advance, streams } = client()
    const lag = metrics.consumerLag()
    lag.record('words', 0, 5)
    lag.record('words', 1, 12)
    lag.record('wc-by-word-repartition', 0, 3)
    const t00 = metrics.task('wc-1-StreamThread-1', '0_0')
    const t10 = metrics.task('wc-1-StreamThread-1', '1_0')
    for (let i = 0; i < 100; i++) t00.process.record(0.1)
    advance(10_000)
    t10.restore.record(40)
    t10.restoreRemainingRecords(() => 60)

    const view = liveTopology(wordCount(), streams)
    expect(view.sources.map((s) => [s.topic, s.subtopology, s.lag])).toEqual([
      ['words', 0, 12],
      ['by-word-repartition', 1, 3],
    ])
    const rate0 = view.sources[0]!.rate!
    expect(rate0).toBeGreaterThan(0)
    expect(view.sources[1]!.rate).toBe(0)
    expect(view.stores).toEqual([{ store: 'counts', subtopology: 1, restored: 40, remaining: 60 }])
    expect(view.annotations.stores).toEqual({ counts: 'restoring 40/100 (40%)' })
    expect(view.annotations.sources!['words']).toBe(`lag 12 · ${rate0.toFixed(1)}/s`)

    const mermaid = view.toMermaid()
    expect(mermaid).toContain('  topic_words{{"words<br/>lag 12 · ')
    expect(mermaid).toContain('  store_counts[("counts<br/>restoring 40/100 (40%)")]\n')
    expect(outline(mermaid)).toEqual(outline(wordCount().toMermaid()))

    const table = view.toTable().split('\n')
    expect(table[0]).toMatch(/^sub\s+node\s+lag\s+rate\s+restore$/)
    expect(table.find((l) => l.includes('topic words'))).toMatch(/^0\s+topic words\s+12\s+\d+\.\d\/s$/)
    expect(table.find((l) => l.includes('store counts'))).toMatch(/^1\s+store counts\s+restoring 40\/100 \(40%\)$/)
  })

  it('the lag follows the latest fetch, and a finished restoration reads as restored', () => {
    const { metrics, streams } = client()
    const lag = metrics.consumerLag()
    lag.record('words', 0, 50)
    expect(liveTopology(wordCount(), streams).sources[0]!.lag).toBe(50)
    lag.record('words', 0, 0)
    const t10 = metrics.task('wc-1-StreamThread-1', '1_0')
    t10.restore.record(100)
    t10.restoreRemainingRecords(() => 0)
    const view = liveTopology(wordCount(), streams)
    expect(view.sources[0]!.lag).toBe(0)
    expect(view.annotations.stores).toEqual({ counts: 'restored 100/100' })
  })

  it('at INFO level there is no per-task rate: a multi-sub-topology view leaves the rate out', () => {
    const { metrics, streams } = client('INFO')
    metrics.thread('wc-1-StreamThread-1').recordProcess(100, 5)
    const view = liveTopology(wordCount(), streams)
    expect(view.sources.map((s) => s.rate)).toEqual([undefined, undefined])
    expect(view.annotations.sources!['words']).toBe('lag -')
  })

  it('with one sub-topology the thread-level process rate stands for it', () => {
    const { metrics, advance, streams } = client('INFO')
    metrics.thread('wc-1-StreamThread-1').recordProcess(100, 5)
    advance(10_000)
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).to('out')
    const view = liveTopology(b.build(), streams)
    expect(view.sources).toHaveLength(1)
    expect(view.sources[0]!.rate).toBeGreaterThan(0)
  })
})
