/**
 * The lifecycle of a {@link KafkaStreams} client (Kafka Streams: `KafkaStreams.State`), as a table
 * of allowed transitions. Any other transition is a bug and throws {@link IllegalStateError}.
 *
 * ```
 * CREATED ──start()──▶ REBALANCING ⇄ RUNNING
 *    │                     │            │
 *    └──────close()────────┴────────────┴──▶ PENDING_SHUTDOWN ──▶ NOT_RUNNING
 * REBALANCING / RUNNING ──fatal error──▶ PENDING_ERROR ──▶ ERROR
 * ```
 */
import { IllegalStateError, StreamsError } from '../../topology/errors.js'

/** Client states. */
export type KafkaStreamsState = 'CREATED' | 'REBALANCING' | 'RUNNING' | 'PENDING_SHUTDOWN' | 'NOT_RUNNING' | 'PENDING_ERROR' | 'ERROR'

/** Allowed transitions: `from → [to...]`. */
export const STATE_TRANSITIONS: Readonly<Record<KafkaStreamsState, ReadonlyArray<KafkaStreamsState>>> = Object.freeze({
  CREATED: ['REBALANCING', 'PENDING_SHUTDOWN', 'PENDING_ERROR'],
  REBALANCING: ['RUNNING', 'REBALANCING', 'PENDING_SHUTDOWN', 'PENDING_ERROR'],
  RUNNING: ['REBALANCING', 'PENDING_SHUTDOWN', 'PENDING_ERROR'],
  PENDING_SHUTDOWN: ['NOT_RUNNING'],
  NOT_RUNNING: [],
  PENDING_ERROR: ['ERROR'],
  ERROR: ['PENDING_SHUTDOWN'],
})

/** Whether the client is (or may become) active: REBALANCING or RUNNING. */
export function isRunningOrRebalancing(state: KafkaStreamsState): boolean {
  return state === 'RUNNING' || state === 'REBALANCING'
}

/** A state listener: called synchronously after each transition. */
export type StateListener = (newState: KafkaStreamsState, oldState: KafkaStreamsState) => void

/** Holds the current state, checks transitions and notifies listeners. */
export class StateMachine {
  #state: KafkaStreamsState = 'CREATED'
  readonly #listeners = new Set<StateListener>()
  constructor(private readonly onTransition?: StateListener) {}

  get state(): KafkaStreamsState {
    return this.#state
  }

  /** Whether `to` is allowed from the current state. */
  canTransition(to: KafkaStreamsState): boolean {
    return STATE_TRANSITIONS[this.#state].includes(to)
  }

  /**
   * Moves to `to`. A self-transition other than REBALANCING → REBALANCING is a no-op.
   * @throws IllegalStateError when the table does not allow it.
   */
  transition(to: KafkaStreamsState): void {
    const from = this.#state
    if (from === to && to !== 'REBALANCING') return
    if (!STATE_TRANSITIONS[from].includes(to)) {
      throw new IllegalStateError(`illegal KafkaStreams state transition ${from} → ${to}`)
    }
    this.#state = to
    if (from === to) return
    this.onTransition?.(to, from)
    for (const l of this.#listeners) {
      try {
        l(to, from)
      } catch {
        // a listener's error must not break the lifecycle
      }
    }
  }

  /** Transitions only if allowed; returns whether it did. */
  tryTransition(to: KafkaStreamsState): boolean {
    if (this.#state === to) return to !== 'REBALANCING'
    if (!this.canTransition(to)) return false
    this.transition(to)
    return true
  }

  addListener(listener: StateListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Resolves when the state reaches `state`; rejects after `timeoutMs`, or when it reaches ERROR / NOT_RUNNING instead. */
  waitFor(state: KafkaStreamsState, timeoutMs: number): Promise<void> {
    if (this.#state === state) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off()
        reject(new StreamsError(`timed out after ${timeoutMs} ms waiting for state ${state} (now ${this.#state})`))
      }, timeoutMs)
      const off = this.addListener((n) => {
        if (n === state) {
          clearTimeout(timer)
          off()
          resolve()
        } else if ((n === 'ERROR' || n === 'NOT_RUNNING') && state !== 'ERROR' && state !== 'NOT_RUNNING') {
          clearTimeout(timer)
          off()
          reject(new StreamsError(`client went to ${n} while waiting for ${state}`))
        }
      })
    })
  }
}
