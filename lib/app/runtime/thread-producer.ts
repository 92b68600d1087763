/**
 * The transactional producer of a stream thread under exactly-once v2 (KIP-447; Kafka Streams:
 * `StreamsProducer` with `processing.guarantee=exactly_once_v2`): ONE producer,
 * `transactionalId = <applicationId>-<processId>-<threadIdx>`, and one transaction at a time that
 * covers the output, changelog records and consumed offsets of every active task of the thread.
 *
 * Created and initialised (InitProducerId) on first use. After a failure whose outcome is unknown
 * or that fenced it (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH), {@link ThreadProducerHolder.reset}
 * throws it away: the next use creates a new one, whose InitProducerId bumps the epoch and so
 * aborts whatever the old one left open.
 */
import type { StreamsClient, TaskProducer, ThreadProducer, TopicMessages, SendResult } from '../client/types.js'
import type { Logger } from '../logger.js'

export class ThreadProducerHolder {
  #producer: Promise<ThreadProducer> | undefined
  #ready: ThreadProducer | undefined

  constructor(
    private readonly client: Pick<StreamsClient, 'threadProducer'>,
    readonly transactionalId: string,
    private readonly logger: Logger,
  ) {}

  /** The producer, created and initialised on first use. */
  get(): Promise<ThreadProducer> {
    if (!this.#producer) {
      const p = (async () => {
        const producer = await this.client.threadProducer(this.transactionalId)
        try {
          await producer.init()
        } catch (e) {
          await producer.close()
          throw e
        }
        return producer
      })()
      this.#producer = p
      p.then(
        (x) => {
          if (this.#producer === p) this.#ready = x
        },
        () => {
          if (this.#producer === p) this.#producer = undefined
        },
      )
    }
    return this.#producer
  }

  /** The initialised producer, if there is one. */
  get current(): ThreadProducer | undefined {
    return this.#ready
  }

  /** Whether the thread's transaction is open (something was sent or added since the last commit / abort). */
  get inTransaction(): boolean {
    return this.#ready?.inTransaction ?? false
  }

  /** The producer as a task's collector uses it: sends go into the thread's transaction. */
  readonly taskProducer: TaskProducer = {
    send: async (batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]> => (await this.get()).send(batch),
    close: async () => undefined, // the thread closes its producer, not a task
  }

  /** Aborts the open transaction; when that fails (fenced, unknown outcome), the producer is replaced. */
  async abort(): Promise<void> {
    const p = this.#ready
    if (!p?.inTransaction) return
    try {
      await p.abort()
    } catch (e) {
      this.logger.warn(`aborting the thread transaction failed (${(e as Error).message}); replacing the producer`)
      await this.reset()
    }
  }

  /** Throws the producer away (its open transaction is aborted by the next one's InitProducerId). */
  async reset(): Promise<void> {
    const p = this.#producer
    this.#producer = undefined
    this.#ready = undefined
    if (p) await p.then((x) => x.close()).catch(() => undefined)
  }

  async close(): Promise<void> {
    await this.abort()
    await this.reset()
  }
}
