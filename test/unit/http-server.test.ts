/**
 * kstreams/http without a broker: probes, routing errors and the answers that do not need an
 * assignment (the multi-instance routing is in test/integration/http-interactive-queries.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Consumed, KafkaStreams, Materialized, Serdes, StreamsBuilder } from '../../lib/index.js'
import { FORWARDED_HEADER, StreamsHttpServer, type HttpStreamsSource } from '../../lib/http/index.js'

const servers: StreamsHttpServer[] = []
afterEach(async () => {
  while (servers.length) await servers.pop()!.close()
})

function topology() {
  const b = new StreamsBuilder()
  b.stream('in', Consumed.with(Serdes.String(), Serdes.String()))
    .groupByKey()
    .count(Materialized.as<string, number>('counts').withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
  return b.build()
}

async function serve(source: HttpStreamsSource | (() => HttpStreamsSource | undefined)) {
  const s = new StreamsHttpServer(source, { port: 0 })
  servers.push(s)
  const { host, port } = await s.listen()
  expect(host).toBe('127.0.0.1')
  return async (p: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}${p}`, { headers })
    return { status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as Record<string, unknown> }
  }
}

describe('StreamsHttpServer', () => {
  const streams = () => new KafkaStreams(topology(), { applicationId: 'http-unit', bootstrapServers: '127.0.0.1:1' })

  it('answers 503 with Retry-After everywhere until the client exists', async () => {
    const get = await serve(() => undefined)
    expect(await get('/health/ready')).toEqual({ status: 503, retryAfter: '1', body: { error: 'the streams client is not created yet' } })
  })

  it('reads the probes from the client state when it has no health()', async () => {
    const get = await serve(streams())
    // CREATED: alive, not ready
    expect((await get('/health/live')).status).toBe(200)
    expect(await get('/health/ready')).toMatchObject({ status: 503, body: { state: 'CREATED', ready: false } })
  })

  it('uses health() when the client has it', async () => {
    const s = streams()
    let ready = false
    // an own health() (shadowing the class's, if it has one) that the test controls
    Object.assign(s, { health: () => ({ live: true, ready, state: s.state }) })
    const get = await serve(s)
    expect((await get('/health/ready')).status).toBe(503)
    ready = true
    expect(await get('/health/ready')).toMatchObject({ status: 200, body: { ready: true, live: true } })
  })

  it('serves the live topology at /topology (JSON, mermaid, table) when given the topology, 404 otherwise', async () => {
    const t = topology()
    const s = new KafkaStreams(t, { applicationId: 'http-unit', bootstrapServers: '127.0.0.1:1' })
    const withTopology = new StreamsHttpServer(s, { port: 0, topology: t })
    servers.push(withTopology)
    const { port } = await withTopology.listen()
    const r = await fetch(`http://127.0.0.1:${port}/topology`)
    expect(r.status).toBe(200)
    const body = (await r.json()) as { state: string; health: { ready: boolean }; sources: unknown[]; stores: unknown[] }
    // not started: state and health of the client, the topology's source and store without live values yet
    expect(body.state).toBe('CREATED')
    expect(body.health.ready).toBe(false)
    expect(body.sources).toEqual([{ topic: 'in', subtopology: 0 }])
    expect(body.stores).toEqual([{ store: 'counts', subtopology: 0 }])
    const mermaid = await fetch(`http://127.0.0.1:${port}/topology?format=mermaid`)
    expect(mermaid.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await mermaid.text()).toMatch(/^(flowchart|graph) /)
    expect(await (await fetch(`http://127.0.0.1:${port}/topology?format=table`)).text()).toMatch(/topic in/)
    expect((await fetch(`http://127.0.0.1:${port}/topology?format=svg`)).status).toBe(400)
    const get = await serve(s)
    expect(await get('/topology')).toMatchObject({
      status: 404,
      body: { error: 'no topology given to the HTTP server (option `topology`)' },
    })
  })

  it('gives clear 404/503 answers for stores and keys', async () => {
    const get = await serve(streams())
    expect(await get('/stores/nope/keys/a')).toMatchObject({ status: 404, body: { error: "unknown store 'nope'" } })
    expect(await get('/stores/counts/keys/a/windows')).toMatchObject({
      status: 404,
      body: { error: "store 'counts' is a keyValue store: query /stores/counts/keys/<key>" },
    })
    // no assignment yet: the owner is unknown
    expect(await get('/stores/counts/keys/a')).toMatchObject({
      status: 503,
      retryAfter: '1',
      body: { error: "the owner of key 'a' of store 'counts' is not known now (rebalancing or no assignment yet)" },
    })
    expect(await get('/stores/counts/keys/a', { [FORWARDED_HEADER]: 'x' })).toMatchObject({ status: 503, retryAfter: '1' })
    expect((await get('/nowhere')).status).toBe(404)
  })
})
