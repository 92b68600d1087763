/**
 * The word-count topology (Kafka Streams' WordCountDemo): lines in, `word → count` out.
 * Re-keying by word goes through a repartition topic, so every count for a word is kept by one
 * task whichever instance reads the line.
 */
import { Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'

export interface WordCountTopics {
  readonly input: string
  readonly output: string
}

/** Builds the topology; the counts store is queryable as `counts`. */
export function wordCountTopology(topics: WordCountTopics): Topology {
  const builder = new StreamsBuilder()
  builder
    .stream<string | null, string>(topics.input, { keySerde: Serdes.String(), valueSerde: Serdes.String() })
    .flatMapValues((line) =>
      line
        .toLowerCase()
        .split(/\W+/)
        .filter((w) => w.length > 0),
    )
    .groupBy((_key, word) => word, { keySerde: Serdes.String(), valueSerde: Serdes.String(), name: 'words' })
    .count({ storeName: 'counts' })
    .toStream()
    .to(topics.output, { keySerde: Serdes.String(), valueSerde: Serdes.Long() })
  return builder.build()
}
