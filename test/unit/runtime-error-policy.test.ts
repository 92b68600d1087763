/**
 * The error policy (lib/app/error-policy.ts) on REAL kafkajs 2.2.4 error objects: every protocol
 * error the runtime meets is built with kafkajs' own `createErrorFromCode` (so its `type`,
 * `code` and `retriable` flag are kafkajs'), every client error with kafkajs' own classes.
 * User errors whose messages imitate Kafka's must go to the handlers (fatal), whatever they say.
 */
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterEach, describe, expect, it } from 'vitest'
import { backoffMs, classifyError, type ErrorKind } from '../../lib/app/error-policy.js'
import { isCorruptionError as isStateCorruptionError, isLockError as isStateLockedError } from '../../lib/state/backend.js'
import { isFencingError, isGroupMovedError, isUnknownOutcomeError } from '../../lib/app/error-handlers.js'
import {
  ProcessingError,
  ProcessorStateError,
  ProductionError,
  SerializationError,
  StreamsError,
  TaskMigratedError,
} from '../../topology/errors.js'

const require = createRequire(import.meta.url)
const { createErrorFromCode, errorCodes } = require('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error & { type: string; code: number; retriable: boolean }
  errorCodes: Array<{ type: string; code: number; retriable: boolean }>
}
type Ctor = new (...args: any[]) => Error
const kjs = require('kafkajs/src/errors.js') as Record<string, Ctor>

/** The kafkajs protocol error for a protocol error NAME, checked against kafkajs' table. */
function protocolError(type: string): Error & { type: string; code: number; retriable: boolean } {
  const entry = errorCodes.find((e) => e.type === type)
  if (!entry) throw new Error(`kafkajs 2.2.4 has no protocol error named ${type}`)
  const e = createErrorFromCode(entry.code)
  expect(e.name).toBe('KafkaJSProtocolError')
  expect(e.type).toBe(type)
  return e
}

/** What kafkajs' retrier throws once its retries are exhausted (src/retry/index.js). */
function retriesExceeded(cause: Error): Error {
  return new kjs.KafkaJSNumberOfRetriesExceeded!(cause, { retryCount: 5, retryTime: 1000 })
}

// Kafka protocol error code → kafkajs `type` (kafkajs keeps pre-KIP-599 names for 6, 14, 15, 16)
const RETRIABLE: Array<[number, string]> = [
  [16, 'NOT_COORDINATOR_FOR_GROUP'], // NOT_COORDINATOR
  [15, 'GROUP_COORDINATOR_NOT_AVAILABLE'], // COORDINATOR_NOT_AVAILABLE
  [14, 'GROUP_LOAD_IN_PROGRESS'], // COORDINATOR_LOAD_IN_PROGRESS
  [6, 'NOT_LEADER_FOR_PARTITION'], // NOT_LEADER_OR_FOLLOWER
  [5, 'LEADER_NOT_AVAILABLE'],
  [7, 'REQUEST_TIMED_OUT'],
  [13, 'NETWORK_EXCEPTION'],
  [51, 'CONCURRENT_TRANSACTIONS'],
  [3, 'UNKNOWN_TOPIC_OR_PARTITION'],
  [19, 'NOT_ENOUGH_REPLICAS'],
  [20, 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'],
  [9, 'REPLICA_NOT_AVAILABLE'],
  [56, 'KAFKA_STORAGE_ERROR'], // by kafkajs' retriable flag
  [74, 'FENCED_LEADER_EPOCH'], // "FENCED" in the name, yet a stale-metadata error: retriable
  [88, 'UNSTABLE_OFFSET_COMMIT'],
]
const MIGRATED: Array<[number, string]> = [
  [47, 'INVALID_PRODUCER_EPOCH'],
  [49, 'INVALID_PRODUCER_ID_MAPPING'],
  [59, 'UNKNOWN_PRODUCER_ID'],
  [45, 'OUT_OF_ORDER_SEQUENCE_NUMBER'],
  [48, 'INVALID_TXN_STATE'],
  [25, 'UNKNOWN_MEMBER_ID'],
  [22, 'ILLEGAL_GENERATION'],
  [27, 'REBALANCE_IN_PROGRESS'],
  [82, 'FENCED_INSTANCE_ID'],
]
const FATAL: Array<[number, string]> = [
  [53, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'], // an ACL: retrying does not help
  [29, 'TOPIC_AUTHORIZATION_FAILED'],
  [30, 'GROUP_AUTHORIZATION_FAILED'],
  [10, 'MESSAGE_TOO_LARGE'],
  [87, 'INVALID_RECORD'],
  [35, 'UNSUPPORTED_VERSION'],
  [1, 'OFFSET_OUT_OF_RANGE'],
  [52, 'TRANSACTION_COORDINATOR_FENCED'], // broker-to-broker; "FENCED" in the name, not ours
  [-1, 'UNKNOWN'],
]

describe('classifyError: Kafka protocol errors (kafkajs createErrorFromCode)', () => {
  const cases: Array<[number, string, ErrorKind]> = [
    ...RETRIABLE.map(([c, t]): [number, string, ErrorKind] => [c, t, 'retriable']),
    ...MIGRATED.map(([c, t]): [number, string, ErrorKind] => [c, t, 'task-migrated']),
    ...FATAL.map(([c, t]): [number, string, ErrorKind] => [c, t, 'fatal']),
  ]
  it.each(cases)('code %i %s → %s', (code, type, kind) => {
    const e = protocolError(type)
    expect(e.code).toBe(code)
    expect(classifyError(e)).toBe(kind)
    // the same inside kafkajs' retry wrappers and a kstreams wrapper (the runtime's commit path)
    expect(classifyError(retriesExceeded(e))).toBe(kind)
    expect(classifyError(new kjs.KafkaJSNonRetriableError!(e, { cause: e }))).toBe(kind)
    expect(classifyError(new ProductionError('transactional commit failed', { cause: retriesExceeded(e) }))).toBe(kind)
  })

  it('an unknown protocol code (a newer broker, e.g. 90 PRODUCER_FENCED) is fatal: kafkajs keeps only its text', () => {
    const e = createErrorFromCode(90)
    expect(e.type).toBe('KAFKAJS_UNKNOWN_ERROR_CODE')
    expect(classifyError(e)).toBe('fatal')
  })

  it('the protocol table and classification agree on PRODUCER_FENCED / THROTTLING_QUOTA_EXCEEDED once named', () => {
    // what createErrorFromCode yields if kafkajs' table is extended with the newer codes
    const fenced = new kjs.KafkaJSProtocolError!({ type: 'PRODUCER_FENCED', code: 90, retriable: false, message: 'x' })
    const throttled = new kjs.KafkaJSProtocolError!({ type: 'THROTTLING_QUOTA_EXCEEDED', code: 89, retriable: false, message: 'x' })
    expect(classifyError(fenced)).toBe('task-migrated')
    expect(classifyError(throttled)).toBe('retriable')
  })
})

describe('classifyError: kafkajs client errors', () => {
  it.each([
    [
      'KafkaJSConnectionError',
      () =>
        new kjs.KafkaJSConnectionError!('Connection error: connect ECONNREFUSED 127.0.0.1:9092', {
          broker: '127.0.0.1:9092',
          code: 'ECONNREFUSED',
        }),
    ],
    ['KafkaJSConnectionClosedError', () => new kjs.KafkaJSConnectionClosedError!('Closed connection', { host: '127.0.0.1', port: 9092 })],
    [
      'KafkaJSRequestTimeoutError',
      () =>
        new kjs.KafkaJSRequestTimeoutError!('Request Produce(key: 0, version: 7) timed out', {
          broker: '127.0.0.1:9092',
          correlationId: 3,
        }),
    ],
    ['KafkaJSGroupCoordinatorNotFound', () => new kjs.KafkaJSGroupCoordinatorNotFound!('Failed to find group coordinator')],
    ['KafkaJSBrokerNotFound', () => new kjs.KafkaJSBrokerNotFound!('No brokers in the broker pool')],
    ['KafkaJSNoBrokerAvailableError', () => new kjs.KafkaJSNoBrokerAvailableError!()],
    ['KafkaJSMetadataNotLoaded', () => new kjs.KafkaJSMetadataNotLoaded!('Topic metadata not loaded')],
    ['KafkaJSLockTimeout', () => new kjs.KafkaJSLockTimeout!('Timeout while acquiring lock (1 waiting locks)')],
  ])('%s → retriable', (name, make) => {
    const e = make()
    expect(e.name).toBe(name)
    expect(classifyError(e)).toBe('retriable')
  })

  it('KafkaJSNumberOfRetriesExceeded is what it wraps: retriable around a connection error, fatal around an authorization failure', () => {
    expect(classifyError(retriesExceeded(new kjs.KafkaJSConnectionError!('Connection timeout', { broker: 'b:9092' })))).toBe('retriable')
    expect(classifyError(retriesExceeded(protocolError('TOPIC_AUTHORIZATION_FAILED')))).toBe('fatal')
  })

  it('non-retriable kafkajs errors are fatal (argument errors, unsupported API, invariant violations)', () => {
    expect(classifyError(new kjs.KafkaJSNonRetriableError!('Invalid topics array'))).toBe('fatal')
    expect(classifyError(new kjs.KafkaJSServerDoesNotSupportApiKey!('not supported', { apiKey: 22, apiName: 'InitProducerId' }))).toBe(
      'fatal',
    )
    expect(classifyError(new kjs.KafkaJSInvariantViolation!('bad state'))).toBe('fatal')
  })

  it('a kafkajs aggregate counts each member; a migration among them wins', () => {
    const agg = (...errors: Error[]): Error => new kjs.KafkaJSAggregateError!('several', errors)
    expect(classifyError(agg(new Error('x'), protocolError('NOT_COORDINATOR_FOR_GROUP')))).toBe('retriable')
    expect(classifyError(agg(protocolError('REQUEST_TIMED_OUT'), protocolError('INVALID_PRODUCER_EPOCH')))).toBe('task-migrated')
  })

  it('kafkajs crash events carry the error as originalError', () => {
    const wrapper = Object.assign(new Error('consumer crashed'), { originalError: protocolError('GROUP_LOAD_IN_PROGRESS') })
    expect(classifyError(wrapper)).toBe('retriable')
  })
})

describe('classifyError: a full disk', () => {
  it('ENOSPC from fs and classic-level LEVEL_IO_ERROR (as a failed batch and as the cause of a failed open) → retriable', () => {
    expect(
      classifyError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })),
    ).toBe('retriable')
    const io = Object.assign(new Error('IO error: /state/0_1/kv/000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })
    expect(classifyError(io)).toBe('retriable')
    expect(classifyError(Object.assign(new Error('Database failed to open'), { code: 'LEVEL_DATABASE_NOT_OPEN', cause: io }))).toBe(
      'retriable',
    )
  })

  it('a LevelDB corruption found while running → retriable (the rewound task reopens its state, which wipes and restores the damaged store)', () => {
    const corruption = Object.assign(new Error('Corruption: bad block'), { code: 'LEVEL_CORRUPTION' })
    expect(classifyError(new ProcessorStateError('get failed', { cause: corruption }))).toBe('retriable')
  })
})

describe('classifyError: Node network errors', () => {
  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])('%s → retriable', (code) => {
    const e = Object.assign(new Error(`connect ${code} 127.0.0.1:8081`), { code, errno: -1, syscall: 'connect' })
    expect(classifyError(e)).toBe('retriable')
    // as Node >= 20 reports a failed connection to every address of a name
    expect(classifyError(new AggregateError([e], ''))).toBe('retriable')
  })

  it('a name that does not resolve (ENOTFOUND) and a permission error are fatal', () => {
    expect(classifyError(Object.assign(new Error('getaddrinfo ENOTFOUND registry'), { code: 'ENOTFOUND' }))).toBe('fatal')
    expect(classifyError(Object.assign(new Error('EACCES'), { code: 'EACCES' }))).toBe('fatal')
  })
})

describe('classifyError: schema registry (HTTP status of @kafkajs/confluent-schema-registry ResponseError)', () => {
  const responseError = (status: number): Error =>
    Object.assign(new Error(`Confluent_Schema_Registry - status ${status}`), { name: 'ResponseError', status })
  it.each([500, 502, 503, 504, 408, 429])('HTTP %i → retriable', (status) => {
    expect(classifyError(responseError(status))).toBe('retriable')
  })
  it.each([400, 401, 403, 404, 409, 422])('HTTP %i → fatal', (status) => {
    expect(classifyError(responseError(status))).toBe('fatal')
  })
  it('a retriable SerializationError is retriable, also when the engine wraps it in a non-retriable one', () => {
    const outage = new SerializationError('fetching schema id 7 failed', { retriable: true, cause: responseError(503) })
    expect(classifyError(outage)).toBe('retriable')
    expect(classifyError(new SerializationError("failed to deserialize value from topic 't'", { cause: outage }))).toBe('retriable')
    expect(classifyError(new SerializationError('unknown schema id 7', { cause: responseError(404) }))).toBe('fatal')
  })
})

describe('classifyError: kstreams errors', () => {
  it('TaskMigratedError → task-migrated (it is retriable: true, yet not "retriable")', () => {
    const e = new TaskMigratedError('producer fenced', { place: { taskId: '0_1' } })
    expect(e.retriable).toBe(true)
    expect(classifyError(e)).toBe('task-migrated')
  })
  it('a StreamsError follows its retriable flag, then its cause', () => {
    expect(classifyError(new ProcessorStateError('store is locked', { retriable: true }))).toBe('retriable')
    expect(classifyError(new StreamsError('offset commit failed', { cause: protocolError('NOT_COORDINATOR_FOR_GROUP') }))).toBe('retriable')
    expect(classifyError(new StreamsError('offset commit failed', { cause: protocolError('GROUP_AUTHORIZATION_FAILED') }))).toBe('fatal')
    expect(classifyError(new StreamsError('bug'))).toBe('fatal')
  })
})

describe('classifyError: precedence', () => {
  it('a fencing error anywhere in the chain wins over retriable ones', () => {
    const fenced = protocolError('INVALID_PRODUCER_EPOCH')
    expect(classifyError(new SerializationError('x', { retriable: true, cause: fenced }))).toBe('task-migrated')
    expect(classifyError(Object.assign(retriesExceeded(protocolError('REQUEST_TIMED_OUT')), { originalError: fenced }))).toBe(
      'task-migrated',
    )
  })
  it('a retriable error below fatal-looking wrappers wins over them', () => {
    const inner = protocolError('CONCURRENT_TRANSACTIONS')
    // as kafkajs' retrier wraps (src/retry/index.js: `{ cause: e.cause || e }`)
    const e = new ProductionError('transactional commit failed', { cause: new kjs.KafkaJSNonRetriableError!(inner, { cause: inner }) })
    expect(classifyError(e)).toBe('retriable')
  })
  it('survives cycles and very deep chains', () => {
    const a: Error & { cause?: unknown } = new Error('a')
    const b = new Error('b', { cause: a })
    a.cause = b
    expect(classifyError(a)).toBe('fatal')
    let deep: Error = protocolError('NOT_COORDINATOR_FOR_GROUP')
    for (let i = 0; i < 100; i++) deep = new Error(`w${i}`, { cause: deep })
    expect(classifyError(deep)).toBe('fatal') // beyond the depth guard: not followed
  })
  it.each([undefined, null, 'NOT_COORDINATOR', 42, { type: 'INVALID_PRODUCER_EPOCH' }])('non-errors (%s) are fatal', (x) => {
    expect(classifyError(x)).toBe('fatal')
  })
})

describe('classifyError: user errors with misleading messages go to the handlers', () => {
  const messages = [
    'invalid epoch',
    'producer fenced',
    'The producer has been fenced by a newer epoch',
    'NOT_COORDINATOR',
    'NOT_COORDINATOR_FOR_GROUP',
    'lock',
    'IO error: lock /x/LOCK: already held by process',
    'ECONNREFUSED',
    'Request timed out',
    "The coordinator is loading and hence can't process requests",
  ]
  it.each(messages)('user Error(%j) → fatal, also as a ProcessingError cause', (message) => {
    const user = new Error(message)
    expect(classifyError(user)).toBe('fatal')
    const wrapped = new ProcessingError(`processor 'KSTREAM-MAP-0000000001' failed: ${message}`, { cause: user, place: { taskId: '0_0' } })
    expect(classifyError(wrapped)).toBe('fatal')
    expect(isFencingError(wrapped)).toBe(false)
    expect(isGroupMovedError(wrapped)).toBe(false)
    expect(isUnknownOutcomeError(wrapped)).toBe(false)
    expect(isStateLockedError(wrapped)).toBe(false)
  })
  it("a user error named like a Kafka error, or wrapping a real kafkajs error, is still the user's", () => {
    class InvalidProducerEpoch extends Error {
      override name = 'InvalidProducerEpochException'
    }
    expect(classifyError(new InvalidProducerEpoch('epoch'))).toBe('fatal')
    // user code that talks to Kafka (or an HTTP service) itself: its failure is a processing error
    const ownProducer = new ProcessingError("processor 'enrich' failed", { cause: protocolError('INVALID_PRODUCER_EPOCH') })
    expect(classifyError(ownProducer)).toBe('fatal')
    const ownHttp = new ProcessingError("processor 'enrich' failed", {
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    })
    expect(classifyError(ownHttp)).toBe('fatal')
  })
})

describe('error-handlers on top of the policy', () => {
  it('isFencingError: producer fencing and group migration by type, TaskMigratedError', () => {
    expect(isFencingError(protocolError('INVALID_PRODUCER_EPOCH'))).toBe(true)
    expect(isFencingError(retriesExceeded(protocolError('UNKNOWN_PRODUCER_ID')))).toBe(true)
    expect(isFencingError(new TaskMigratedError('x'))).toBe(true)
    expect(isFencingError(protocolError('FENCED_LEADER_EPOCH'))).toBe(false)
    expect(isFencingError(new Error('producer fenced: epoch 3'))).toBe(false)
  })
  it('isGroupMovedError: only the group codes', () => {
    for (const t of ['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']) {
      expect(isGroupMovedError(retriesExceeded(protocolError(t)))).toBe(true)
    }
    expect(isGroupMovedError(protocolError('INVALID_PRODUCER_EPOCH'))).toBe(false)
    expect(isGroupMovedError(Object.assign(new Error('rebalance'), { type: 'REBALANCE_IN_PROGRESS' }))).toBe(false)
  })
  it('isUnknownOutcomeError: every retriable error (the commit is aborted and the task re-created)', () => {
    expect(isUnknownOutcomeError(new kjs.KafkaJSRequestTimeoutError!('timed out'))).toBe(true)
    expect(isUnknownOutcomeError(protocolError('GROUP_LOAD_IN_PROGRESS'))).toBe(true)
    expect(isUnknownOutcomeError(protocolError('INVALID_PRODUCER_EPOCH'))).toBe(false)
    expect(isUnknownOutcomeError(protocolError('TOPIC_AUTHORIZATION_FAILED'))).toBe(false)
  })
})

describe('isStateLockedError / isStateCorruptionError (classic-level codes)', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('recognises a real LEVEL_LOCKED from opening one database twice, not by message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kstreams-lock-'))
    dirs.push(dir)
    const first = new ClassicLevel(dir)
    await first.open()
    try {
      const second = new ClassicLevel(dir)
      const err = await second.open().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(Error)
      expect((err as { code?: string }).code).toBe('LEVEL_DATABASE_NOT_OPEN')
      expect(((err as Error).cause as { code?: string }).code).toBe('LEVEL_LOCKED')
      expect(isStateLockedError(err)).toBe(true)
      expect(isStateLockedError(new ProcessorStateError('State directory is locked', { cause: err, retriable: true }))).toBe(true)
      expect(isStateCorruptionError(err)).toBe(false)
    } finally {
      await first.close()
    }
    expect(isStateLockedError(new Error('IO error: lock /x/LOCK: already held by process'))).toBe(false)
    expect(isStateLockedError(new ProcessorStateError('state directory in use by another task state manager'))).toBe(false)
  })

  it('recognises LEVEL_CORRUPTION in the chain', () => {
    const corrupt = Object.assign(new Error('Corruption: bad block'), { code: 'LEVEL_CORRUPTION' })
    expect(isStateCorruptionError(new ProcessorStateError('open failed', { cause: new Error('x', { cause: corrupt }) }))).toBe(true)
    expect(isStateCorruptionError(new Error('Corruption: checksum mismatch'))).toBe(false)
    expect(isStateLockedError(corrupt)).toBe(false)
  })
})

describe('backoffMs', () => {
  it('starts near retryBackoffMs, doubles, and stays within ±20 % jitter', () => {
    for (let i = 0; i < 200; i++) {
      const a0 = backoffMs(0, 100, 10_000)
      expect(a0).toBeGreaterThanOrEqual(80)
      expect(a0).toBeLessThanOrEqual(120)
      const a3 = backoffMs(3, 100, 10_000)
      expect(a3).toBeGreaterThanOrEqual(640)
      expect(a3).toBeLessThanOrEqual(960)
    }
  })
  it('never exceeds maxMs (default 1000) and handles huge and odd attempts', () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffMs(50, 100)).toBeLessThanOrEqual(1000)
      expect(backoffMs(50, 100)).toBeGreaterThanOrEqual(800)
      expect(backoffMs(10_000, 100, 5000)).toBeLessThanOrEqual(5000)
      expect(backoffMs(Number.POSITIVE_INFINITY, 100, 5000)).toBeLessThanOrEqual(5000)
    }
    expect(backoffMs(-3, 100, 5000)).toBeLessThanOrEqual(120)
    expect(backoffMs(Number.NaN, 100, 5000)).toBeLessThanOrEqual(120)
    expect(backoffMs(2, 0, 5000)).toBe(0)
    expect(backoffMs(2, 100, 0)).toBe(0)
  })
  it('varies (jitter), so instances that failed together do not retry together', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffMs(4, 100, 60_000)))
    expect(seen.size).toBeGreaterThan(5)
  })
})
