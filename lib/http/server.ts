/**
 * An optional HTTP server for a kstreams instance: Kubernetes-style probes, Prometheus metrics, and
 * interactive queries routed to the instance that owns a key (Kafka Streams leaves this RPC layer
 * to the application; its docs show the same shape: `queryMetadataForKey` → the owner's
 * `application.server` → a REST call).
 *
 * Built on `node:http`: seven GET routes and one proxied request need no router, body parser or
 * middleware, and a framework would add a dependency (and its release cadence) to every user of
 * the core package for nothing this module uses.
 *
 * Routes (all GET, JSON bodies unless noted):
 * - `/health/live`: 200 while the processing loop is alive, else 503.
 * - `/health/ready`: 200 when RUNNING with restoration done, else 503.
 * - `/metrics`: Prometheus text (`createPrometheusScraper`), when the client exposes `metrics()`.
 * - `/topology`: the live topology ({@link liveTopology}) of this instance, when the `topology`
 *   option is given and the client exposes `metrics()`: JSON `{ state, health?, takenAt, sources,
 *   stores, processors }` (a {@link LiveTopologySnapshot} with the client state and health);
 *   `?format=mermaid` the annotated Mermaid flowchart, `?format=table` the text table (text/plain).
 * - `/stores/:store/keys/:key`: a key-value store's value of `key`.
 * - `/stores/:store/keys/:key/windows?from=&to=`: a window store's windows of `key` whose start is
 *   in `[from, to]` (epoch ms; open ends when left out).
 * - `/stores/:store/keys/:key/sessions?from=&to=`: a session store's sessions of `key` ending at or
 *   after `from` and starting at or before `to`.
 *
 * A key query is answered locally when this instance runs the key's active task (RUNNING);
 * otherwise it is forwarded once to the owner's `applicationServer` with the
 * {@link FORWARDED_HEADER} header, and an instance receiving a forwarded query it cannot answer
 * locally answers 503 instead of forwarding again (no loops while assignments change). A key whose
 * owner is not known (a rebalance, a task still restoring) gets 503 with `Retry-After`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidStateStoreError } from '../../topology/errors.js'
import { resolveSerde, type Serde } from '../../topology/serde.js'
import type { StoreDef } from '../../topology/state/types.js'
import type { KafkaStreams } from '../app/kafka-streams.js'
import type { QueryableKeyValueStore, QueryableSessionStore, QueryableWindowStore } from '../app/interactive-queries.js'
import { createPrometheusScraper, type PrometheusScraper, type PrometheusScraperOptions } from '../metrics/prometheus.js'
import type { MetricsSource } from '../metrics/types.js'
import { liveTopology, type LiveTopologySnapshot } from '../app/live-topology.js'
import type { TopologyDescription } from '../../topology/internals/describe.js'

/** Header marking a query forwarded by another instance (its value: the forwarding instance's address). */
export const FORWARDED_HEADER = 'x-kstreams-forwarded-by'

/** Health as the probes read it (`KafkaStreams.health()`: at least these fields). */
export interface HealthLike {
  readonly live: boolean
  readonly ready: boolean
}

/**
 * What the server needs from the client: a {@link KafkaStreams} satisfies it. `metrics()` and
 * `health()` are used when present; without `health()` the probes read the client state (live
 * unless shutting down or failed, ready when RUNNING).
 */
export type HttpStreamsSource = Pick<KafkaStreams, 'config' | 'state' | 'store' | 'queryMetadataForKey' | 'topologyDef'> &
  Partial<MetricsSource> & { health?(): HealthLike }

/** How the server reads keys of one store from URLs and writes its values as JSON. */
export interface StoreRoute<K = any, V = any> {
  /** Turns the URL's (decoded) key into the store's key type. @defaultValue the string itself */
  readonly parseKey?: (raw: string) => K
  /**
   * Serializes keys to find their partition, as the store's input topic was keyed.
   * @defaultValue the store's key serde, else the application's default key serde
   */
  readonly keySerializer?: Pick<Serde<K>, 'serialize'>
  /** Turns a value into something `JSON.stringify` writes. @defaultValue the value (Buffers as base64, bigints as strings) */
  readonly encodeValue?: (value: V) => unknown
}

/** Options of {@link StreamsHttpServer}. */
export interface StreamsHttpServerOptions {
  /** Address to bind. @defaultValue '127.0.0.1' (not reachable from other hosts; set '0.0.0.0' or the pod IP to serve them) */
  readonly host?: string
  /** Port to bind; 0 picks a free one. @defaultValue the port of the client's `applicationServer`, else 0 */
  readonly port?: number
  /** Per-store key parsing and value encoding, by store name. Stores not listed use the defaults. */
  readonly stores?: Readonly<Record<string, StoreRoute>>
  /** Time limit of a forwarded query, milliseconds. @defaultValue 5000 */
  readonly forwardTimeoutMs?: number
  /** `Retry-After` of 503 answers, seconds. @defaultValue 1 */
  readonly retryAfterSeconds?: number
  /** Options of the Prometheus scraper behind `/metrics`. */
  readonly prometheus?: PrometheusScraperOptions
  /**
   * The topology the client runs (`builder.build()`, anything with `describe()`): serves the live
   * topology at `/topology`. Without it `/topology` answers 404.
   */
  readonly topology?: { describe(): TopologyDescription }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message)
  }
}

function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('base64')
  }
  return v
}

function num(raw: string | null, name: string, fallback: number): number {
  if (raw === null || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new HttpError(400, `query parameter '${name}' must be a number of epoch milliseconds, got '${raw}'`)
  return n
}

/**
 * The HTTP server (see the module documentation for routes and routing).
 *
 * @example
 * ```ts
 * const streams = new KafkaStreams(topology, { applicationId: 'word-count', bootstrapServers, applicationServer: '127.0.0.1:8080' })
 * const server = new StreamsHttpServer(streams, { stores: { counts: { encodeValue: (n: number) => n } } })
 * await server.listen() // 127.0.0.1:8080, from applicationServer
 * await streams.start()
 * // curl http://127.0.0.1:8080/stores/counts/keys/kafka → {"store":"counts","key":"kafka","value":3}
 * ```
 */
export class StreamsHttpServer {
  /** The underlying `node:http` server. */
  readonly server: http.Server
  readonly #source: () => HttpStreamsSource | undefined
  readonly #options: StreamsHttpServerOptions
  #scraper: Promise<PrometheusScraper> | undefined

  /**
   * @param streams the client, or a function returning it (so the server can listen, and its port
   *   go into the client's `applicationServer`, before the client exists); until it returns one,
   *   every route answers 503.
   */
  constructor(streams: HttpStreamsSource | (() => HttpStreamsSource | undefined), options: StreamsHttpServerOptions = {}) {
    this.#source = typeof streams === 'function' ? streams : () => streams
    this.#options = options
    this.server = http.createServer((req, res) => void this.#handle(req, res))
  }

  /**
   * Binds (`host`, `port` from the options). Resolves with the bound address.
   * @throws the listen error (e.g. EADDRINUSE)
   */
  async listen(): Promise<{ host: string; port: number }> {
    const host = this.#options.host ?? '127.0.0.1'
    const port = this.#options.port ?? this.#source()?.config.applicationServer?.port ?? 0
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    return this.address()
  }

  /** The bound address. @throws Error when not listening */
  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo | null
    if (!a || typeof a === 'string') throw new Error('the HTTP server is not listening')
    return { host: a.address, port: a.port }
  }

  /** Stops accepting connections, closes open ones, and releases the metrics scraper. */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()))
    this.server.closeAllConnections()
    await closed
    const s = this.#scraper
    this.#scraper = undefined
    await s?.then((x) => x.shutdown()).catch(() => undefined)
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method} not allowed; use GET`)
      const url = new URL(req.url ?? '/', 'http://localhost')
      const streams = this.#source()
      if (!streams) throw new HttpError(503, 'the streams client is not created yet', this.#retryAfter())
      const path = url.pathname
      if (path === '/health/live' || path === '/health/ready') return this.#health(streams, path.endsWith('ready'), res)
      if (path === '/metrics') return await this.#metrics(streams, res)
      if (path === '/topology') return this.#topology(streams, url.searchParams.get('format'), res)
      const m = /^\/stores\/([^/]+)\/keys\/([^/]+)(\/windows|\/sessions)?\/?$/.exec(path)
      if (m) return await this.#query(streams, req, res, url, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), m[3])
      throw new HttpError(404, `no route for ${path}`)
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, e instanceof Error ? e.message : String(e))
      this.#json(res, err.status, { error: err.message }, err.retryAfter)
    }
  }

  #retryAfter(): number {
    return this.#options.retryAfterSeconds ?? 1
  }

  #json(res: http.ServerResponse, status: number, body: unknown, retryAfter?: number): void {
    if (res.headersSent) return
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter)
    res.writeHead(status, headers).end(JSON.stringify(body, jsonReplacer))
  }

  #health(streams: HttpStreamsSource, ready: boolean, res: http.ServerResponse): void {
    const state = streams.state
    const h = typeof streams.health === 'function' ? streams.health() : undefined
    const ok = h
      ? ready
        ? h.ready
        : h.live
      : ready
        ? state === 'RUNNING'
        : state === 'CREATED' || state === 'REBALANCING' || state === 'RUNNING'
    this.#json(res, ok ? 200 : 503, h ?? { state, live: ready ? undefined : ok, ready: ready ? ok : undefined })
  }

  async #metrics(streams: HttpStreamsSource, res: http.ServerResponse): Promise<void> {
    if (typeof streams.metrics !== 'function') throw new HttpError(404, 'this client exposes no metrics()')
    this.#scraper ??= createPrometheusScraper(streams as MetricsSource, this.#options.prometheus ?? {})
    let scraper: PrometheusScraper
    try {
      scraper = await this.#scraper
    } catch (e) {
      this.#scraper = undefined
      throw e
    }
    const text = await scraper.scrape()
    res.writeHead(200, { 'content-type': scraper.contentType, 'cache-control': 'no-store' }).end(text)
  }

  #topology(streams: HttpStreamsSource, format: string | null, res: http.ServerResponse): void {
    const topology = this.#options.topology
    if (!topology) throw new HttpError(404, 'no topology given to the HTTP server (option `topology`)')
    if (typeof streams.metrics !== 'function') throw new HttpError(404, 'this client exposes no metrics()')
    const view = liveTopology(topology, streams as HttpStreamsSource & MetricsSource)
    if (format === 'mermaid' || format === 'table') {
      const text = format === 'mermaid' ? view.toMermaid() : view.toTable()
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(text)
      return
    }
    if (format !== null && format !== 'json') throw new HttpError(400, `format must be json, mermaid or table, got '${format}'`)
    const snapshot: LiveTopologySnapshot = {
      takenAt: view.takenAt,
      sources: view.sources,
      stores: view.stores,
      processors: view.processors,
    }
    const health = typeof streams.health === 'function' ? streams.health() : undefined
    this.#json(res, 200, { state: streams.state, ...(health ? { health } : {}), ...snapshot })
  }

  #storeDef(streams: HttpStreamsSource, name: string): StoreDef {
    const def = streams.topologyDef.stores.get(name) ?? streams.topologyDef.globalStores.find((g) => g.store.name === name)?.store
    if (!def) throw new HttpError(404, `unknown store '${name}'`)
    return def
  }

  async #query(
    streams: HttpStreamsSource,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    storeName: string,
    rawKey: string,
    variant: string | undefined,
  ): Promise<void> {
    const def = this.#storeDef(streams, storeName)
    const want = variant === '/windows' ? 'window' : variant === '/sessions' ? 'session' : 'keyValue'
    if (def.type !== want) {
      const route = def.type === 'window' ? '/windows' : def.type === 'session' ? '/sessions' : ''
      throw new HttpError(404, `store '${storeName}' is a ${def.type} store: query /stores/${storeName}/keys/<key>${route}`)
    }
    const route = this.#options.stores?.[storeName] ?? {}
    let key: unknown
    try {
      key = route.parseKey ? route.parseKey(rawKey) : rawKey
    } catch (e) {
      throw new HttpError(400, `invalid key '${rawKey}' for store '${storeName}': ${e instanceof Error ? e.message : String(e)}`)
    }
    const encode = route.encodeValue ?? ((v: unknown) => v)
    const isGlobal = streams.topologyDef.globalStores.some((g) => g.store.name === storeName)
    const keySerializer = route.keySerializer ?? this.#keySerde(streams, def)
    if (!keySerializer && !isGlobal) {
      throw new HttpError(500, `store '${storeName}' has no key serde to find a key's partition: pass stores['${storeName}'].keySerializer`)
    }
    const meta = isGlobal ? undefined : streams.queryMetadataForKey(storeName, key, keySerializer!)
    const answer = async (): Promise<unknown> => {
      const opts = meta && meta.partition >= 0 ? { partition: meta.partition } : {}
      if (def.type === 'window') {
        const store = streams.store<QueryableWindowStore<unknown, unknown>>(storeName, opts)
        const from = num(url.searchParams.get('from'), 'from', 0)
        const to = num(url.searchParams.get('to'), 'to', Number.MAX_SAFE_INTEGER)
        const windows: unknown[] = []
        for await (const e of store.fetchRange(key, from, to)) {
          windows.push({ start: e.key, end: e.key + (store.windowSizeMs ?? 0), value: encode(e.value) })
        }
        return { store: storeName, key: rawKey, windows }
      }
      if (def.type === 'session') {
        const store = streams.store<QueryableSessionStore<unknown, unknown>>(storeName, opts)
        const from = num(url.searchParams.get('from'), 'from', Number.MIN_SAFE_INTEGER)
        const to = num(url.searchParams.get('to'), 'to', Number.MAX_SAFE_INTEGER)
        const sessions: unknown[] = []
        for await (const e of store.findSessions(key, from, to)) {
          sessions.push({ start: e.key.window.startMs, end: e.key.window.endMs, value: encode(e.value) })
        }
        return { store: storeName, key: rawKey, sessions }
      }
      const value = await streams.store<QueryableKeyValueStore<unknown, unknown>>(storeName, opts).get(key)
      if (value === undefined || value === null) throw new HttpError(404, `key '${rawKey}' not found in store '${storeName}'`)
      return { store: storeName, key: rawKey, value: encode(value) }
    }
    // 1. this instance runs the key's task (or holds the global store): answer
    if (isGlobal || (meta && meta.partition >= 0)) {
      try {
        return this.#json(res, 200, await answer())
      } catch (e) {
        if (!(e instanceof InvalidStateStoreError)) throw e
      }
    }
    // 2. forwarded here: never a second hop
    const retry = this.#retryAfter()
    const forwardedBy = req.headers[FORWARDED_HEADER]
    if (forwardedBy !== undefined) {
      throw new HttpError(
        503,
        `this instance does not hold key '${rawKey}' of store '${storeName}' (forwarded by ${String(forwardedBy)})`,
        retry,
      )
    }
    // 3. the owner is known and is not us: forward once
    const owner = meta?.activeHost
    const self = streams.config.applicationServer
    if (owner && !(self && self.host === owner.host && self.port === owner.port)) {
      return this.#forward(res, `${owner.host}:${owner.port}`, url, self ? `${self.host}:${self.port}` : 'unknown')
    }
    throw new HttpError(
      503,
      owner
        ? `key '${rawKey}' of store '${storeName}' belongs to this instance, whose task is not running yet (restoring or rebalancing)`
        : `the owner of key '${rawKey}' of store '${storeName}' is not known now (rebalancing or no assignment yet)`,
      retry,
    )
  }

  #keySerde(streams: HttpStreamsSource, def: StoreDef): Serde<any> | undefined {
    const c = streams.config
    return resolveSerde(def.keySerde, c.defaultKeySerde, {
      ...(c.defaultKeySerde ? { keySerde: c.defaultKeySerde } : {}),
      ...(c.defaultValueSerde ? { valueSerde: c.defaultValueSerde } : {}),
    })
  }

  async #forward(res: http.ServerResponse, owner: string, url: URL, self: string): Promise<void> {
    let r: Response
    try {
      r = await fetch(`http://${owner}${url.pathname}${url.search}`, {
        headers: { [FORWARDED_HEADER]: self, accept: 'application/json' },
        signal: AbortSignal.timeout(this.#options.forwardTimeoutMs ?? 5000),
      })
    } catch (e) {
      throw new HttpError(503, `the owner ${owner} did not answer: ${e instanceof Error ? e.message : String(e)}`, this.#retryAfter())
    }
    const body = Buffer.from(await r.arrayBuffer())
    const headers: http.OutgoingHttpHeaders = {
      'content-type': r.headers.get('content-type') ?? 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-kstreams-served-by': owner,
    }
    const ra = r.headers.get('retry-after')
    if (ra !== null) headers['retry-after'] = ra
    res.writeHead(r.status, headers).end(body)
  }
}
