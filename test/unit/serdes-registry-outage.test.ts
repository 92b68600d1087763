/**
 * Schema registry outages seen by the Schema Registry Avro serde through the REAL client
 * (@kafkajs/confluent-schema-registry over mappersmith and node:http) talking to a fake registry:
 * a node:http server on 127.0.0.1 that answers like a Confluent registry, or answers 503, or never
 * answers (a frozen registry), or resets the connection, or is not there at all.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import avsc from 'avsc'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { classifyError } from '../../lib/app/error-policy.js'
import { deserializationHandler } from '../../lib/app/error-handlers.js'
import { encodeWireFormat, schemaRegistryAvroSerde } from '../../lib/serdes/index.js'
import { RegistryTimeoutError } from '../../lib/serdes/registry-call.js'
import { SerializationError } from '../../topology/errors.js'

interface Impression {
  impressionId: string
  campaignId: string
}
const impressionV1 = {
  type: 'record',
  name: 'Impression',
  namespace: 'test',
  fields: [
    { name: 'impressionId', type: 'string' },
    { name: 'campaignId', type: 'string' },
  ],
}
const imp: Impression = { impressionId: 'i-1', campaignId: 'c-1' }

type Mode = 'ok' | '503' | 'hang' | 'reset' | '400'

/** A Confluent-compatible registry in memory, whose behaviour a test switches with `mode`. */
class FakeRegistryServer {
  mode: Mode = 'ok'
  readonly schemas = new Map<number, string>()
  readonly subjects = new Map<string, number>()
  /** Requests received, as `METHOD path`. */
  readonly requests: string[] = []
  /** Requests left hanging whose connection the client has since closed. */
  closedWhileHanging = 0
  private server: Server | undefined
  port = 0

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res))
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async stop(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  add(subject: string, schema: object): number {
    const id = this.schemas.size + 1
    this.schemas.set(id, JSON.stringify(schema))
    this.subjects.set(subject, id)
    return id
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      this.requests.push(`${req.method} ${req.url}`)
      const json = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' })
        res.end(JSON.stringify(payload))
      }
      if (this.mode === 'hang') {
        res.on('close', () => this.closedWhileHanging++)
        return
      }
      if (this.mode === 'reset') return void req.socket.destroy()
      if (this.mode === '503') return json(503, { error_code: 50301, message: 'Service unavailable' })
      if (this.mode === '400') return json(400, { error_code: 400, message: 'Bad request' })
      const url = req.url ?? ''
      let m: RegExpMatchArray | null
      if ((m = url.match(/^\/schemas\/ids\/(\d+)$/))) {
        const schema = this.schemas.get(Number(m[1]))
        return schema === undefined ? json(404, { error_code: 40403, message: 'Schema not found' }) : json(200, { schema })
      }
      if ((m = url.match(/^\/subjects\/([^/]+)$/)) && req.method === 'POST') {
        const id = this.subjects.get(decodeURIComponent(m[1]!))
        return id === undefined ? json(404, { error_code: 40401, message: 'Subject not found' }) : json(200, { id, version: 1 })
      }
      if ((m = url.match(/^\/config\/([^/]+)$/))) {
        return req.method === 'GET' ? json(404, { error_code: 40401, message: 'Subject not found' }) : json(200, JSON.parse(body))
      }
      if ((m = url.match(/^\/subjects\/([^/]+)\/versions$/)) && req.method === 'POST') {
        return json(200, { id: this.add(decodeURIComponent(m[1]!), JSON.parse(JSON.parse(body).schema)) })
      }
      json(404, { error_code: 404, message: `no route ${req.method} ${url}` })
    })
  }
}

const servers: FakeRegistryServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop()
})

async function fakeRegistry(): Promise<FakeRegistryServer> {
  const s = new FakeRegistryServer()
  servers.push(s)
  await s.start()
  return s
}

/** The real client, without its own retries of 5xx (so each test call is one HTTP request). */
function client(url: string): SchemaRegistry {
  return new SchemaRegistry({ host: url, retry: { retries: 0 } })
}

function wire(id: number): Buffer {
  return encodeWireFormat(id, avsc.Type.forSchema(impressionV1 as avsc.Schema).toBuffer(imp))
}

async function failure(p: Promise<unknown>): Promise<SerializationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SerializationError)
  return err as SerializationError
}

/** The errors of a cause chain. */
function chain(e: unknown): Array<{ name?: string; code?: unknown; status?: unknown }> {
  const out: Array<{ name?: string; code?: unknown; status?: unknown }> = []
  for (let x = e as { cause?: unknown } | undefined; x && out.length < 10; x = x.cause as { cause?: unknown } | undefined)
    out.push(x as never)
  return out
}

describe('Schema Registry Avro serde: registry outages are retriable, and never cached', () => {
  it('HTTP 503 on a schema fetch: retriable SerializationError with the ResponseError as cause; the next batch asks again', async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    reg.mode = '503'
    const err = await failure(serde.prepareDeserialize('impressions', [wire(id)]))
    expect(err.retriable).toBe(true)
    expect(err.message).toMatch(
      /^fetching schema id 1 from the schema registry failed: .*Service unavailable \(registry unavailable: retriable\)$/,
    )
    expect(err.cause).toMatchObject({ name: 'ResponseError', status: 503 })
    expect(classifyError(err)).toBe('retriable')
    // what the engine does with it: a record is retried, never sent to the dead-letter topic
    expect(() => serde.deserialize('impressions', wire(id))).toThrow(/has not been fetched/)
    reg.mode = 'ok'
    await serde.prepareDeserialize('impressions', [wire(id)])
    expect(serde.deserialize('impressions', wire(id))).toEqual(imp)
    expect(reg.requests.filter((r) => r === `GET /schemas/ids/${id}`)).toHaveLength(2)
  })

  it('a frozen registry (accepts, never answers) fails within registryTimeoutMs, retriable, and its request is closed', async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1, registryTimeoutMs: 300 })
    reg.mode = 'hang'
    const started = Date.now()
    const err = await failure(serde.prepareDeserialize('impressions', [wire(id)]))
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(280)
    expect(took).toBeLessThan(3000)
    expect(err.retriable).toBe(true)
    expect(err.cause).toBeInstanceOf(RegistryTimeoutError)
    expect(err.cause).toMatchObject({ code: 'ETIMEDOUT', timeoutMs: 300 })
    expect(err.message).toBe(
      'fetching schema id 1 from the schema registry failed: the schema registry did not answer within 300 ms (registry unavailable: retriable)',
    )
    expect(classifyError(err)).toBe('retriable')
    await expect.poll(() => reg.closedWhileHanging).toBe(1) // no socket left hanging
    reg.mode = 'ok'
    await serde.prepareDeserialize('impressions', [wire(id)])
    expect(serde.deserialize('impressions', wire(id))).toEqual(imp)
  })

  it('a registry that is not there (ECONNREFUSED): retriable, the socket error in the cause chain; recovers when it returns', async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const port = reg.port
    await reg.stop()
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(`http://127.0.0.1:${port}`), schema: impressionV1 })
    const err = await failure(serde.prepareDeserialize('impressions', [wire(id)]))
    expect(err.retriable).toBe(true)
    const causes = chain(err)
    expect(causes[1]).toMatchObject({ name: 'ResponseError', status: 400 }) // the client's made-up status
    expect(causes[2]).toMatchObject({ code: 'ECONNREFUSED' })
    expect(err.message).toMatch(
      /^fetching schema id 1 from the schema registry failed: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(registry unavailable: retriable\)$/,
    )
    expect(classifyError(err)).toBe('retriable')
    // the same serde also fails to register while the registry is away
    const ser = await failure(serde.prepareSerialize('impressions'))
    expect(ser.retriable).toBe(true)
    expect(ser.message).toMatch(/^schema registry lookup of subject impressions-value failed: connect ECONNREFUSED/)
    // the registry comes back on the same port
    await reg.start(port)
    await serde.prepareDeserialize('impressions', [wire(id)])
    expect(serde.deserialize('impressions', wire(id))).toEqual(imp)
    await serde.prepareSerialize('impressions')
    expect(serde.schemaIdFor('impressions')).toBe(id)
  })

  it('a connection reset mid-request (ECONNRESET) is retriable', async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    reg.mode = 'reset'
    const err = await failure(serde.prepareDeserialize('impressions', [wire(id)]))
    expect(err.retriable).toBe(true)
    expect(chain(err)[2]).toMatchObject({ code: 'ECONNRESET' })
    expect(classifyError(err)).toBe('retriable')
  })

  it('prepareSerialize: a 503 on lookup is retriable and not remembered; registration works once the registry is back', async () => {
    const reg = await fakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    reg.mode = '503'
    const err = await failure(serde.prepareSerialize('impressions'))
    expect(err.retriable).toBe(true)
    expect(classifyError(err)).toBe('retriable')
    // serialize without an id starts a lookup in the background and fails retriably meanwhile
    expect(() => serde.serialize('impressions', imp)).toThrow(/^no schema id for subject impressions-value yet \(it is being looked up\)/)
    await expect.poll(() => reg.requests.length).toBe(2)
    await new Promise((r) => setTimeout(r, 20))
    const again = (() => {
      try {
        serde.serialize('impressions', imp)
      } catch (e) {
        return e as SerializationError
      }
      throw new Error('expected a failure')
    })()
    expect(again.message).toMatch(
      /^no schema id for subject impressions-value yet \(looking it up failed: schema registry lookup of subject impressions-value failed: .*Service unavailable/,
    )
    expect(again.retriable).toBe(true)
    expect(classifyError(again)).toBe('retriable')
    reg.mode = 'ok'
    await serde.prepareSerialize('impressions')
    const id = serde.schemaIdFor('impressions')!
    expect(reg.schemas.get(id)).toBe(JSON.stringify(impressionV1))
    expect(serde.serialize('impressions', imp)).toEqual(wire(id))
  })
})

describe('Schema Registry Avro serde: topics nobody prepared (store changelogs, dynamic sink topics)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('without any known id, serialize fails retriably while the registry is down and succeeds once a background lookup has', async () => {
    const reg = await fakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    reg.mode = '503'
    expect(() => serde.serialize('app-store-changelog', imp)).toThrow(SerializationError)
    await expect.poll(() => reg.requests.length).toBe(1)
    await new Promise((r) => setTimeout(r, 20))
    reg.mode = 'ok'
    // the failed background attempt is not repeated at once (one attempt per BACKGROUND_RETRY_MS)
    expect(() => serde.serialize('app-store-changelog', imp)).toThrow(/looking it up failed/)
    expect(reg.requests).toHaveLength(1)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 6_000)
    expect(() => serde.serialize('app-store-changelog', imp)).toThrow(SerializationError)
    await expect.poll(() => serde.schemaIdFor('app-store-changelog')).toBeDefined()
    const id = serde.schemaIdFor('app-store-changelog')!
    expect(serde.serialize('app-store-changelog', imp)).toEqual(wire(id))
    expect(reg.subjects.get('app-store-changelog-value')).toBe(id)
  })
})

describe('Schema Registry Avro serde: definite answers are not retriable', () => {
  it('an unknown schema id (404) fails only its records, non-retriable, remembered for unknownIdRetryMs', async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1, unknownIdRetryMs: 60_000 })
    await serde.prepareDeserialize('impressions', [wire(id), wire(99)])
    expect(serde.deserialize('impressions', wire(id))).toEqual(imp)
    const err = (() => {
      try {
        serde.deserialize('impressions', wire(99))
      } catch (e) {
        return e as SerializationError
      }
      throw new Error('expected a failure')
    })()
    expect(err).toBeInstanceOf(SerializationError)
    expect(err.retriable).toBe(false)
    expect(err.message).toBe('unknown schema id 99: the schema registry has no schema with this id (topic impressions)')
    expect(err.cause).toMatchObject({ name: 'ResponseError', status: 404 })
    expect(classifyError(err)).toBe('fatal')
    await serde.prepareDeserialize('impressions', [wire(99)])
    expect(reg.requests.filter((r) => r === 'GET /schemas/ids/99')).toHaveLength(1)
  })

  it("a real HTTP 400 answer is not mistaken for the client's made-up 400 of a failed connection", async () => {
    const reg = await fakeRegistry()
    const id = reg.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    reg.mode = '400'
    const err = await failure(serde.prepareDeserialize('impressions', [wire(id)]))
    expect(err.retriable).toBe(false)
    expect(err.cause).toMatchObject({ name: 'ResponseError', status: 400 })
    expect(classifyError(err)).toBe('fatal')
  })

  it('bytes not in wire format stay non-retriable (they go to the deserialization handler)', async () => {
    const reg = await fakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry: client(reg.url), schema: impressionV1 })
    await serde.prepareDeserialize('impressions', [Buffer.from([1, 0, 0, 0, 1, 2])])
    expect(() => serde.deserialize('impressions', Buffer.from([1, 0, 0, 0, 1, 2]))).toThrow(/unknown magic byte 1/)
    expect(reg.requests).toHaveLength(0)
  })
})

describe('deserialization handler and retriable serde errors', () => {
  it('a retriable error fails the task (retried) instead of reaching the dead-letter topic; a bad record still goes there', () => {
    const sent: unknown[] = []
    const skipped: unknown[] = []
    const logger = { debug() {}, info() {}, warn() {}, error() {} }
    const handler = deserializationHandler(
      { deadLetterTopic: 'dlq' },
      () => ({ send: (r: unknown) => void sent.push(r) }) as never,
      logger as never,
      (r) => void skipped.push(r),
    )
    const record = {
      topic: 'impressions',
      partition: 0,
      offset: '5',
      key: null,
      value: Buffer.from([0, 0, 0, 0, 7]),
      timestamp: 1,
      headers: {},
    }
    const outage = new SerializationError("failed to deserialize value from topic 'impressions'", {
      cause: new SerializationError('fetching schema id 7 failed', { retriable: true }),
    })
    expect(handler(outage, record as never, { subtopology: 0, partition: 0 })).toBe('fail')
    expect(sent).toHaveLength(0)
    const bad = new SerializationError('not in Confluent wire format: unknown magic byte 1 (expected 0)')
    expect(handler(bad, record as never, { subtopology: 0, partition: 0 })).toBe('continue')
    expect(sent).toHaveLength(1)
    expect(skipped).toHaveLength(1)
  })
})
