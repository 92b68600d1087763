/**
 * `kstreams/http`: an optional HTTP server for a running kstreams instance: liveness and
 * readiness probes, Prometheus metrics, and interactive queries answered by the instance that owns
 * a key (forwarded to it by its `applicationServer`).
 */
export { FORWARDED_HEADER, StreamsHttpServer } from './server.js'
export type { HealthLike, HttpStreamsSource, StoreRoute, StreamsHttpServerOptions } from './server.js'
