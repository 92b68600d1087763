/**
 * `StreamsConfig`: the configuration of a {@link KafkaStreams} instance (Kafka Streams:
 * `StreamsConfig`), with keys in camelCase of Kafka Streams' config names. Resolved once, by
 * {@link resolveStreamsConfig}, into a frozen {@link ResolvedStreamsConfig}; an invalid value
 * throws {@link StreamsConfigError} naming the key. This module holds the defaults and the
 * validation; the keys and their documentation are in ./streams-config.ts.
 */
import os from 'node:os'
import path from 'node:path'
import type { KafkaConfig } from './client/kafkajs.js'
import { StreamsConfigError } from '../../topology/errors.js'
import type { Serde } from '../../topology/serde.js'
import { createDefaultLogger, filterLogger } from './logger.js'
import { isRecordingLevel } from '../metrics/registry.js'
import type { ResolvedStreamsConfig, StreamsConfig } from './streams-config.js'

export type {
  DeserializationHandlerConfig,
  ProcessingGuarantee,
  ProcessingHandlerConfig,
  ProductionHandlerConfig,
  ResolvedStreamsConfig,
  StreamsConfig,
} from './streams-config.js'

const KNOWN_KEYS = new Set<string>([
  'applicationId',
  'bootstrapServers',
  'kafka',
  'clientId',
  'processingGuarantee',
  'commitIntervalMs',
  'stateDir',
  'numStandbyReplicas',
  'acceptableRecoveryLag',
  'maxWarmupReplicas',
  'probingRebalanceIntervalMs',
  'defaultKeySerde',
  'defaultValueSerde',
  'defaultTimestampExtractor',
  'maxTaskIdleMs',
  'idleAdvanceMs',
  'idleAdvanceDelayMs',
  'statestoreCacheMaxBytes',
  'bufferedRecordsPerPartition',
  'topicConfig',
  'replicationFactor',
  'deserializationExceptionHandler',
  'processingExceptionHandler',
  'productionExceptionHandler',
  'applicationServer',
  'taskTimeoutMs',
  'retryBackoffMs',
  'retryBackoffMaxMs',
  'sessionTimeoutMs',
  'heartbeatIntervalMs',
  'rebalanceTimeoutMs',
  'logLevel',
  'logger',
  'metricsRecordingLevel',
])

function fail(key: string, message: string): never {
  throw new StreamsConfigError(`invalid config '${key}': ${message}`)
}

function int(config: StreamsConfig, key: keyof StreamsConfig, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = config[key]
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(key, `expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(v)}`)
  }
  return v
}

function isSerde(v: unknown): v is Serde<unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Serde<unknown>).serialize === 'function' &&
    typeof (v as Serde<unknown>).deserialize === 'function'
  )
}

function handler(key: string, v: unknown, allowed: ReadonlyArray<string>, allowDlq: boolean): void {
  if (v === undefined || typeof v === 'function') return
  if (typeof v === 'string' && allowed.includes(v)) return
  if (
    allowDlq &&
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { deadLetterTopic?: unknown }).deadLetterTopic === 'string' &&
    (v as { deadLetterTopic: string }).deadLetterTopic.length > 0
  )
    return
  fail(
    key,
    `expected ${allowed.map((a) => `'${a}'`).join(' | ')}${allowDlq ? ' | { deadLetterTopic: string }' : ''} | a function, got ${JSON.stringify(v)}`,
  )
}

/**
 * Applies defaults and validates. Unknown keys are rejected (a typo should not silently fall back
 * to a default).
 * @throws StreamsConfigError naming the offending key.
 */
export function resolveStreamsConfig(config: StreamsConfig): ResolvedStreamsConfig {
  if (typeof config !== 'object' || config === null) throw new StreamsConfigError('invalid config: expected an object')
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key)) fail(key, 'unknown config key')
  }
  const applicationId = config.applicationId
  if (typeof applicationId !== 'string' || !/^[a-zA-Z0-9._-]+$/.test(applicationId)) {
    fail('applicationId', `required; letters, digits, '.', '_', '-' only, got ${JSON.stringify(applicationId)}`)
  }
  const processingGuarantee = config.processingGuarantee ?? 'at_least_once'
  if (!['at_least_once', 'exactly_once', 'exactly_once_v2'].includes(processingGuarantee)) {
    fail('processingGuarantee', `expected 'at_least_once' | 'exactly_once' | 'exactly_once_v2', got ${JSON.stringify(processingGuarantee)}`)
  }
  const exactlyOnceV2 = processingGuarantee === 'exactly_once_v2'
  const exactlyOnce = processingGuarantee === 'exactly_once' || exactlyOnceV2

  const logLevel = config.logLevel ?? 'warn'
  if (!['nothing', 'error', 'warn', 'info', 'debug'].includes(logLevel)) {
    fail('logLevel', `expected 'nothing' | 'error' | 'warn' | 'info' | 'debug', got ${JSON.stringify(logLevel)}`)
  }
  if (config.logger !== undefined && (typeof config.logger !== 'object' || typeof config.logger.error !== 'function')) {
    fail('logger', 'expected an object with error/warn/info/debug methods')
  }
  const logger = config.logger ? filterLogger(config.logger, logLevel) : createDefaultLogger(logLevel, `kstreams:${applicationId}`)

  const metricsRecordingLevel = config.metricsRecordingLevel ?? 'INFO'
  if (!isRecordingLevel(metricsRecordingLevel))
    fail('metricsRecordingLevel', `expected 'INFO' | 'DEBUG' | 'TRACE', got ${JSON.stringify(metricsRecordingLevel)}`)

  const clientId = config.clientId ?? applicationId
  if (typeof clientId !== 'string' || clientId.length === 0) fail('clientId', 'expected a non-empty string')

  let kafka: KafkaConfig
  if (config.kafka !== undefined) {
    if (typeof config.kafka !== 'object' || config.kafka === null) fail('kafka', 'expected a kafkajs KafkaConfig object')
    const brokers = config.kafka.brokers ?? (config.bootstrapServers !== undefined ? brokersOf(config.bootstrapServers) : undefined)
    if (brokers === undefined || (Array.isArray(brokers) && brokers.length === 0))
      fail('kafka', 'kafka.brokers (or bootstrapServers) is required')
    kafka = { ...config.kafka, brokers, clientId: config.kafka.clientId ?? clientId }
  } else {
    if (config.bootstrapServers === undefined) fail('bootstrapServers', 'required (or give a kafkajs config as `kafka`)')
    kafka = { brokers: brokersOf(config.bootstrapServers), clientId }
  }

  const commitIntervalMs = int(config, 'commitIntervalMs', exactlyOnce ? 100 : 30_000, 1)
  const stateDir = config.stateDir ?? path.join(os.tmpdir(), 'kstreams')
  if (typeof stateDir !== 'string' || stateDir.length === 0) fail('stateDir', 'expected a non-empty path')

  if (config.defaultKeySerde !== undefined && !isSerde(config.defaultKeySerde))
    fail('defaultKeySerde', 'expected a Serde (serialize/deserialize)')
  if (config.defaultValueSerde !== undefined && !isSerde(config.defaultValueSerde))
    fail('defaultValueSerde', 'expected a Serde (serialize/deserialize)')
  if (config.defaultTimestampExtractor !== undefined && typeof config.defaultTimestampExtractor?.extract !== 'function') {
    fail('defaultTimestampExtractor', 'expected a TimestampExtractor (extract)')
  }

  const topicConfig = config.topicConfig ?? {}
  if (typeof topicConfig !== 'object' || topicConfig === null) fail('topicConfig', 'expected a record of string values')
  for (const [k, v] of Object.entries(topicConfig)) {
    if (typeof v !== 'string') fail('topicConfig', `value of '${k}' must be a string, got ${JSON.stringify(v)}`)
  }
  const replicationFactor = config.replicationFactor ?? -1
  if (!Number.isInteger(replicationFactor) || (replicationFactor < 1 && replicationFactor !== -1)) {
    fail('replicationFactor', `expected -1 or a positive integer, got ${JSON.stringify(replicationFactor)}`)
  }

  handler('deserializationExceptionHandler', config.deserializationExceptionHandler, ['fail', 'logAndContinue'], true)
  handler('processingExceptionHandler', config.processingExceptionHandler, ['fail', 'logAndContinue'], false)
  handler('productionExceptionHandler', config.productionExceptionHandler, ['fail', 'logAndContinue'], false)

  let applicationServer: ResolvedStreamsConfig['applicationServer']
  if (config.applicationServer !== undefined) {
    const m = typeof config.applicationServer === 'string' ? /^(.+):(\d{1,5})$/.exec(config.applicationServer) : null
    const port = m ? Number(m[2]) : NaN
    if (!m || port < 1 || port > 65535) fail('applicationServer', `expected 'host:port', got ${JSON.stringify(config.applicationServer)}`)
    applicationServer = Object.freeze({ host: m[1]!, port })
  }

  const retryBackoffMs = int(config, 'retryBackoffMs', 500, 1)
  const retryBackoffMaxMs = int(config, 'retryBackoffMaxMs', 10_000, 1)
  if (retryBackoffMaxMs < retryBackoffMs)
    fail('retryBackoffMaxMs', `must be at least retryBackoffMs (${retryBackoffMs}), got ${retryBackoffMaxMs}`)
  const sessionTimeoutMs = int(config, 'sessionTimeoutMs', 45_000, 1_000)
  const heartbeatIntervalMs = int(config, 'heartbeatIntervalMs', 3_000, 100)
  if (heartbeatIntervalMs >= sessionTimeoutMs)
    fail('heartbeatIntervalMs', `must be lower than sessionTimeoutMs (${sessionTimeoutMs}), got ${heartbeatIntervalMs}`)

  return Object.freeze({
    applicationId,
    clientId,
    kafka: Object.freeze(kafka),
    processingGuarantee,
    exactlyOnce,
    exactlyOnceV2,
    commitIntervalMs,
    stateDir: path.resolve(stateDir),
    numStandbyReplicas: int(config, 'numStandbyReplicas', 0, 0, 100),
    acceptableRecoveryLag: int(config, 'acceptableRecoveryLag', 10_000, 0),
    maxWarmupReplicas: int(config, 'maxWarmupReplicas', 2, 1),
    probingRebalanceIntervalMs: int(config, 'probingRebalanceIntervalMs', 600_000, 1_000),
    defaultKeySerde: config.defaultKeySerde,
    defaultValueSerde: config.defaultValueSerde,
    defaultTimestampExtractor: config.defaultTimestampExtractor,
    maxTaskIdleMs: int(config, 'maxTaskIdleMs', 0, -1),
    idleAdvanceMs: int(config, 'idleAdvanceMs', -1, -1),
    idleAdvanceDelayMs: int(config, 'idleAdvanceDelayMs', 0, 0),
    statestoreCacheMaxBytes: int(config, 'statestoreCacheMaxBytes', 10 * 1024 * 1024, 0),
    bufferedRecordsPerPartition: int(config, 'bufferedRecordsPerPartition', 1000, 1),
    topicConfig: Object.freeze({ ...topicConfig }),
    replicationFactor,
    deserializationExceptionHandler: config.deserializationExceptionHandler ?? 'fail',
    processingExceptionHandler: config.processingExceptionHandler ?? 'fail',
    productionExceptionHandler: config.productionExceptionHandler ?? 'fail',
    applicationServer,
    taskTimeoutMs: int(config, 'taskTimeoutMs', 300_000, 0),
    retryBackoffMs,
    retryBackoffMaxMs,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    rebalanceTimeoutMs: int(config, 'rebalanceTimeoutMs', 60_000, 1_000),
    logLevel,
    logger,
    metricsRecordingLevel,
  })
}

function brokersOf(v: string | ReadonlyArray<string>): string[] {
  const list =
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [...v]
  if (list.length === 0 || list.some((b) => typeof b !== 'string' || !/^.+:\d+$/.test(b))) {
    fail('bootstrapServers', `expected 'host:port' or a list of them, got ${JSON.stringify(v)}`)
  }
  return list
}

/** Topic configs from `topicConfig` that apply to internal topics of `kind`. */
export function internalTopicOverrides(config: ResolvedStreamsConfig, kind: 'changelog' | 'repartition'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(config.topicConfig)) {
    if (k.startsWith('changelog.')) {
      if (kind === 'changelog') out[k.slice('changelog.'.length)] = v
    } else if (k.startsWith('repartition.')) {
      if (kind === 'repartition') out[k.slice('repartition.'.length)] = v
    } else out[k] = v
  }
  return out
}
