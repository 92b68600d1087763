/**
 * Avro with a schema registry, in Confluent wire format (Confluent's `KafkaAvroSerializer` /
 * `KafkaAvroDeserializer`, as wrapped by Kafka Streams' `SpecificAvroSerde` / `GenericAvroSerde`).
 *
 * The registry is only awaited in the `prepare*` hooks the runtime calls once per batch
 * (see the `Serde` contract in topology/serde.ts); `serialize`/`deserialize` are synchronous and
 * only look ids up in in-memory maps.
 */
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry'
import avsc from 'avsc'
import type { Resolver, Type } from 'avsc'
import { SerializationError } from '../../topology/errors.js'
import type { Serde } from '../../topology/serde.js'
import { decodeAvro, encodeAvro, errorMessage, toAvroType, typeName } from './avro.js'
import type { AvroSchemaInput, AvroTypeOptions } from './avro.js'
import { decodeWireFormat, encodeWireFormat, peekSchemaId } from './wire-format.js'
import { callRegistry, RegistryCallError, type RegistryFailure } from './registry-call.js'

/** Connection settings of a Confluent-compatible schema registry (those of @kafkajs/confluent-schema-registry). */
export type SchemaRegistryConfig = ConstructorParameters<typeof SchemaRegistry>[0]

/**
 * Chooses the registry subject of a topic's keys or values (Confluent: `subject.name.strategy`).
 * @param topic the Kafka topic
 * @param isKey whether the serde is used for record keys
 * @param recordName the full name of the Avro schema (`namespace.Name`), or its type name
 */
export type SubjectNameStrategy = (topic: string, isKey: boolean, recordName: string) => string

/** `<topic>-key` / `<topic>-value` (Confluent's default `TopicNameStrategy`). */
export const TopicNameStrategy: SubjectNameStrategy = (topic, isKey) => `${topic}-${isKey ? 'key' : 'value'}`
/** The schema's full name, whatever the topic (Confluent's `RecordNameStrategy`). */
export const RecordNameStrategy: SubjectNameStrategy = (_topic, _isKey, recordName) => recordName
/** `<topic>-<full name>` (Confluent's `TopicRecordNameStrategy`). */
export const TopicRecordNameStrategy: SubjectNameStrategy = (topic, _isKey, recordName) => `${topic}-${recordName}`

/** Options of {@link schemaRegistryAvroSerde}. */
export interface SchemaRegistryAvroSerdeOptions {
  /**
   * The registry client to use (share one between serdes to share its cache), or the settings to
   * create one. For Apicurio, the Confluent-compatible API lives under `<url>/apis/ccompat/v7`.
   */
  registry: SchemaRegistry | SchemaRegistryConfig
  /** The READER schema: values are decoded into it and written with it. */
  schema: AvroSchemaInput
  /** Whether this serde is used for record keys (changes the default subject to `<topic>-key`). @defaultValue false */
  isKey?: boolean
  /**
   * A fixed subject name, or a strategy computing it per topic.
   * @defaultValue {@link TopicNameStrategy}: `<topic>-key` / `<topic>-value`
   */
  subject?: string | SubjectNameStrategy
  /**
   * Register the schema under the subject when it is not registered yet (Confluent:
   * `auto.register.schemas`). When false, the schema must already be registered, otherwise
   * `prepareSerialize` throws.
   * @defaultValue true
   */
  autoRegister?: boolean
  /**
   * Compatibility level set on a subject this serde registers first, and expected on a subject
   * it adds a new version to (@kafkajs/confluent-schema-registry rejects a mismatch).
   * @defaultValue `BACKWARD` (the registry default)
   */
  compatibility?: COMPATIBILITY
  /** avsc options for the reader type (e.g. `logicalTypes`). @defaultValue avsc defaults */
  typeOptions?: AvroTypeOptions
  /**
   * How long a schema id the registry did not know is remembered as unknown (records with it fail
   * without asking the registry again), in milliseconds.
   * @defaultValue 10000
   */
  unknownIdRetryMs?: number
  /**
   * How long one registry call (lookup, registration, schema fetch, including the client's own
   * retries) may take, in milliseconds. A registry that does not answer in time (frozen, or
   * unreachable without a connection error) fails the call with a retriable
   * {@link SerializationError}, and its HTTP requests are destroyed. 0 disables the deadline.
   * @defaultValue 10000
   */
  registryTimeoutMs?: number
}

/** A {@link Serde} backed by a schema registry. Both `prepare*` hooks are present and must be awaited. */
export interface SchemaRegistryAvroSerde<T> extends Serde<T> {
  /** The registry client (shared or created from the options). */
  readonly registry: SchemaRegistry
  /** The subject used for `topic`. */
  subjectFor(topic: string): string
  /** The schema id used to write to `topic`, once `prepareSerialize(topic)` has resolved. */
  schemaIdFor(topic: string): number | undefined
  prepareSerialize(topic: string): Promise<void>
  prepareDeserialize(topic: string, payloads: ReadonlyArray<Buffer | null>): Promise<void>
}

/** How records written with one schema id are read. */
type ReaderEntry = { ok: true; resolver: Resolver | undefined } | { ok: false; message: string; until: number; cause?: unknown }

const NEVER = Number.POSITIVE_INFINITY

/**
 * How long a subject lookup or registration that failed in the background (for a topic nobody
 * prepared: a store changelog, a dynamic sink topic) waits before it is tried again, in milliseconds.
 */
const BACKGROUND_RETRY_MS = 5_000

/**
 * A serde for Avro records in Confluent wire format, backed by a Confluent-compatible schema
 * registry (Kafka Streams: `SpecificAvroSerde` / `GenericAvroSerde`).
 *
 * - **Writing**: `prepareSerialize(topic)` looks the reader schema up under the topic's subject
 *   and registers it if missing (`autoRegister`); `serialize` then writes magic byte `0`, the
 *   4-byte big-endian schema id and the avsc binary.
 *   A topic nobody prepared (e.g. the changelog of a state store holding these values) is
 *   written with an id already known for this exact schema, while its subject is registered in
 *   the background.
 * - **Reading**: `prepareDeserialize(topic, payloads)` fetches the writer schema of every id in
 *   the batch not seen before and builds an avsc resolver into the reader schema (schema evolution:
 *   fields added by the writer are skipped, fields missing from the writer take the reader's
 *   defaults), cached per id; `deserialize` decodes with it.
 *
 * `deserialize` throws {@link SerializationError} for bytes not in wire format (short or wrong
 * magic byte), ids the registry does not know, writer schemas that cannot be resolved into the
 * reader schema, and truncated or malformed Avro bodies. The runtime adds partition and offset and
 * hands the record to the deserialization exception handler (e.g. a dead-letter topic).
 *
 * **Registry outages.** When the registry is unreachable (connection refused or reset), answers
 * HTTP 5xx, 408 or 429, or does not answer within `registryTimeoutMs`, the `prepare*` hooks throw a
 * {@link SerializationError} with `retriable: true` and the client's error as `cause` (with the socket
 * error below it). Nothing is cached for such a failure: the next call asks the registry again. The
 * runtime retries the batch (KIP-572 `task.timeout.ms`); no record is skipped or sent to the
 * dead-letter topic for it. A definite answer (404 unknown id, a schema that cannot be read) is
 * remembered per id (`unknownIdRetryMs` for 404) and fails only the records written with that id.
 *
 * @typeParam T the TypeScript shape of the reader schema (not checked at compile time)
 * @throws SerializationError at construction when the schema is not valid Avro
 *
 * @example
 * ```ts
 * const registry = new SchemaRegistry({ host: 'http://localhost:8081/apis/ccompat/v7' })
 * const impressionSerde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionAvsc })
 * builder.stream('impressions', Consumed.with(Serdes.String(), impressionSerde))
 * ```
 */
export function schemaRegistryAvroSerde<T>(options: SchemaRegistryAvroSerdeOptions): SchemaRegistryAvroSerde<T> {
  const registry = options.registry instanceof SchemaRegistry ? options.registry : new SchemaRegistry(options.registry)
  const readerType = toAvroType(options.schema, options.typeOptions)
  const rawSchema = schemaJson(options.schema, readerType)
  const isKey = options.isKey ?? false
  const autoRegister = options.autoRegister ?? true
  const compatibility = options.compatibility ?? COMPATIBILITY.BACKWARD
  const unknownIdRetryMs = options.unknownIdRetryMs ?? 10_000
  const registryTimeoutMs = options.registryTimeoutMs ?? 10_000
  const call = <R>(fn: () => Promise<R>): Promise<R> => callRegistry(fn, registryTimeoutMs)
  const recordName = typeName(readerType)
  const strategy: SubjectNameStrategy =
    typeof options.subject === 'string' ? () => options.subject as string : (options.subject ?? TopicNameStrategy)

  const subjectIds = new Map<string, number>()
  const subjectPending = new Map<string, Promise<number>>()
  const topicIds = new Map<string, number>()
  const readers = new Map<number, ReaderEntry>()
  const readerPending = new Map<number, Promise<void>>()

  const subjectFor = (topic: string): string => strategy(topic, isKey, recordName)
  // An id the registry gave to exactly this schema (registered, looked up, or fetched as a writer
  // schema equal to ours). Ids are global, so any of them decodes our bytes.
  let ownId: number | undefined
  // topic → when its background subject lookup / registration may be tried (again)
  const background = new Map<string, number>()
  // topic → why its last background attempt failed
  const backgroundFailure = new Map<string, SerializationError>()

  async function lookupOrRegister(subject: string): Promise<number> {
    const confluentSchema = { type: SchemaType.AVRO as const, schema: rawSchema }
    try {
      return await call(() => registry.getRegistryIdBySchema(subject, confluentSchema))
    } catch (err) {
      const f = failureOf(err)
      if (f.outage || !isNotFound(f)) {
        throw registryError(`schema registry lookup of subject ${subject} failed`, f)
      }
      if (!autoRegister) {
        throw new SerializationError(`schema ${recordName} is not registered under subject ${subject} and autoRegister is false`, {
          cause: f.cause,
        })
      }
    }
    try {
      const { id } = await call(() => registry.register(confluentSchema, { subject, compatibility }))
      return id
    } catch (err) {
      const f = failureOf(err)
      if (!f.outage) {
        // Another instance may have registered the subject at the same moment (the client then
        // fails setting the subject's compatibility, e.g. HTTP 409 from Apicurio): look it up again.
        const id = await call(() => registry.getRegistryIdBySchema(subject, confluentSchema)).catch(() => undefined)
        if (id !== undefined) return id
      }
      throw registryError(`registering schema ${recordName} under subject ${subject} failed`, f)
    }
  }

  async function prepareSerialize(topic: string): Promise<void> {
    if (topicIds.has(topic)) return
    const subject = subjectFor(topic)
    let id = subjectIds.get(subject)
    if (id === undefined) {
      let pending = subjectPending.get(subject)
      if (!pending) {
        pending = lookupOrRegister(subject).finally(() => subjectPending.delete(subject))
        subjectPending.set(subject, pending)
      }
      id = await pending
      subjectIds.set(subject, id)
    }
    topicIds.set(topic, id)
    ownId ??= id
    // Records we wrote are read without asking the registry: the id stands for our own schema.
    if (!readers.get(id)?.ok) readers.set(id, { ok: true, resolver: undefined })
  }

  /** The id to write to a topic nobody prepared (e.g. a state store's changelog), or undefined. */
  function unpreparedTopicId(topic: string): number | undefined {
    // Look the topic's subject up (and register it, as Confluent's serializer would) in the
    // background. Meanwhile, and while the registry is down, the schema's known global id is used;
    // without one, serialize fails retriably until the background attempt has succeeded.
    if ((autoRegister || ownId === undefined) && (background.get(topic) ?? 0) <= Date.now()) {
      background.set(topic, NEVER)
      prepareSerialize(topic).then(
        () => backgroundFailure.delete(topic),
        (err: unknown) => {
          const e = err instanceof SerializationError ? err : new SerializationError(errorMessage(err), { cause: err })
          backgroundFailure.set(topic, e)
          background.set(topic, Date.now() + BACKGROUND_RETRY_MS)
        },
      )
    }
    return ownId
  }

  async function fetchWriter(id: number): Promise<void> {
    let writer: unknown
    try {
      writer = await call(() => registry.getSchema(id))
    } catch (err) {
      const f = failureOf(err)
      if (!f.outage && isNotFound(f)) {
        // a definite answer about this id: only its records fail, and only for a while
        readers.set(id, {
          ok: false,
          message: `unknown schema id ${id}: the schema registry has no schema with this id`,
          until: Date.now() + unknownIdRetryMs,
          cause: f.cause,
        })
        return
      }
      if (!f.outage && f.status === undefined) {
        // not an HTTP failure: the client could not read the schema the registry returned
        readers.set(id, {
          ok: false,
          message: `schema id ${id} cannot be read: ${errorMessage(f.cause)}`,
          until: Date.now() + unknownIdRetryMs,
          cause: f.cause,
        })
        return
      }
      // an outage (retriable, never cached) or a refusal of the whole registry (401, 403: fatal)
      throw registryError(`fetching schema id ${id} from the schema registry failed`, f)
    }
    if (!avsc.Type.isType(writer)) {
      readers.set(id, { ok: false, message: `schema id ${id} is not an Avro schema`, until: NEVER })
      return
    }
    const writerType = writer as Type
    if (writerType.equals(readerType)) {
      readers.set(id, { ok: true, resolver: undefined })
      ownId ??= id
      return
    }
    try {
      readers.set(id, { ok: true, resolver: readerType.createResolver(writerType) })
    } catch (err) {
      readers.set(id, {
        ok: false,
        message: `writer schema id ${id} (${typeName(writerType)}) is incompatible with reader schema ${recordName}: ${errorMessage(err)}`,
        until: NEVER,
        cause: err,
      })
    }
  }

  async function prepareDeserialize(_topic: string, payloads: ReadonlyArray<Buffer | null>): Promise<void> {
    const now = Date.now()
    let missing: Set<number> | undefined
    for (const payload of payloads) {
      const id = peekSchemaId(payload)
      if (id === undefined) continue
      const entry = readers.get(id)
      if (entry && (entry.ok || entry.until > now)) continue
      ;(missing ??= new Set()).add(id)
    }
    if (!missing) return
    await Promise.all(
      [...missing].map((id) => {
        let pending = readerPending.get(id)
        if (!pending) {
          pending = fetchWriter(id).finally(() => readerPending.delete(id))
          readerPending.set(id, pending)
        }
        return pending
      }),
    )
  }

  return {
    registry,
    subjectFor,
    schemaIdFor: (topic) => topicIds.get(topic),
    prepareSerialize,
    prepareDeserialize,
    serialize(topic, data) {
      if (data === null || data === undefined) return null
      const id = topicIds.get(topic) ?? unpreparedTopicId(topic)
      if (id === undefined) {
        // retriable while the lookup started above may still succeed (the runtime retries the record)
        const failed = backgroundFailure.get(topic)
        throw new SerializationError(
          `no schema id for subject ${subjectFor(topic)} yet (${failed ? `looking it up failed: ${failed.message}` : 'it is being looked up'}): await prepareSerialize(topic) before serialize`,
          { place: { topic }, retriable: failed?.retriable ?? true, ...(failed ? { cause: failed } : {}) },
        )
      }
      return encodeWireFormat(id, encodeAvro(readerType, data, topic))
    },
    deserialize(topic, data) {
      if (data === null) return null
      const { schemaId, payload } = decodeWireFormat(data, topic)
      const entry = readers.get(schemaId)
      if (entry === undefined) {
        throw new SerializationError(
          `writer schema id ${schemaId} has not been fetched: await prepareDeserialize(topic, payloads) before deserialize`,
          { place: { topic }, retriable: true },
        )
      }
      if (!entry.ok) throw new SerializationError(entry.message, { place: { topic }, cause: entry.cause })
      return decodeAvro<T>(readerType, payload, topic, entry.resolver, ` (writer schema id ${schemaId})`)
    },
  }
}

/** The schema as the JSON string registered with the registry (the user's text, attributes kept). */
function schemaJson(input: AvroSchemaInput, type: Type): string {
  if (typeof input === 'string') return input
  if (avsc.Type.isType(input)) return JSON.stringify(type.schema({ exportAttrs: true }))
  return JSON.stringify(input)
}

/** Why a registry call failed (errors that did not come through {@link callRegistry} are not outages). */
function failureOf(err: unknown): RegistryFailure {
  return err instanceof RegistryCallError ? err.failure : { outage: false, status: undefined, cause: err }
}

/** The {@link SerializationError} for a failed registry call: retriable exactly when the registry was down. */
function registryError(what: string, f: RegistryFailure): SerializationError {
  // for a failure without an answer the client's message names a made-up HTTP status: name the socket error
  const socket = (f.cause as { cause?: unknown } | null | undefined)?.cause
  const detail = f.outage && socket instanceof Error ? socket.message : errorMessage(f.cause)
  return new SerializationError(`${what}: ${detail}${f.outage ? ' (registry unavailable: retriable)' : ''}`, {
    cause: f.cause,
    retriable: f.outage,
  })
}

/**
 * A 404 from the registry. The client rewraps the 404 of `getRegistryIdBySchema` (subject or schema
 * not found) as a `ConfluentSchemaRegistryError` without the status; other calls keep it.
 */
function isNotFound(f: RegistryFailure): boolean {
  if (f.status === 404) return true
  return f.cause instanceof Error && f.cause.name === 'ConfluentSchemaRegistryError'
}
