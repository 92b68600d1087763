import type { Windowed } from '../../../topology/state/types.js'

/** Kafka Streams' `Windowed#toString` shape: `[key@start/end]`. */
export const windowedString = (k: Windowed<string>): string => `[${k.key}@${k.window.startMs}/${k.window.endMs}]`
