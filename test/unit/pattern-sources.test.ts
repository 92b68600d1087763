/** Resolution of pattern sources against a topic list (lib/app/pattern-sources.ts), no broker. */
import { describe, expect, it } from 'vitest'
import { resolvePatternSources } from '../../lib/app/pattern-sources.js'
import { Serdes, StreamsBuilder, StreamsConfigError, TopologyError } from '../../lib/index.js'

const S = Serdes.String()

describe('resolvePatternSources', () => {
  it('fills the pattern source and its sub-topology with full matches, skipping __ and own internal topics', () => {
    const b = new StreamsBuilder()
    b.stream<string, string>(/in-.*|app-.*/, { keySerde: S, valueSerde: S })
      .groupByKey()
      .count({ storeName: 'counts' })
      .toStream()
      .to('out-x')
    const def = b.build().resolve('app')
    const changelog = def.changelogTopics[0]!.name
    expect(changelog.startsWith('app-')).toBe(true)
    const out = resolvePatternSources(def, ['in-b', 'xin-a', 'in-a', '__consumer_offsets', changelog, 'app-other', 'out-x'])
    const source = out.subtopologies[0]!.nodes.find((n) => n.type === 'source')!
    expect(source.type === 'source' && source.topics).toEqual(['app-other', 'in-a', 'in-b'])
    expect(out.subtopologies[0]!.sourceTopics).toEqual(['app-other', 'in-a', 'in-b'])
    // the input def is not mutated
    expect(def.subtopologies[0]!.sourceTopics).toEqual([])
  })

  it('throws StreamsConfigError naming the pattern when nothing matches', () => {
    const b = new StreamsBuilder()
    b.stream<string, string>(/nothing-\d+/).to('out')
    expect(() => resolvePatternSources(b.build().resolve('app'), ['nothing-x', 'out'])).toThrow(StreamsConfigError)
    expect(() => resolvePatternSources(b.build().resolve('app'), ['out'])).toThrow(/\/nothing-\\d\+\//)
  })

  it('throws TopologyError when a matched topic is also a named source', () => {
    const b = new StreamsBuilder()
    b.stream<string, string>(/t-.*/).to('out')
    b.stream<string, string>('t-1').to('out2')
    expect(() => resolvePatternSources(b.build().resolve('app'), ['t-1', 't-2'])).toThrow(TopologyError)
  })

  it('returns a topology without pattern sources unchanged', () => {
    const b = new StreamsBuilder()
    b.stream<string, string>('a').to('out')
    const def = b.build().resolve('app')
    expect(resolvePatternSources(def, ['a', 'out'])).toBe(def)
  })
})
