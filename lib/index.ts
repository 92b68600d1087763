/**
 * kstreams: Kafka Streams for TypeScript. Public entry point (`import { ... } from 'kstreams'`).
 * Each module adds its exports as one `export * from` line.
 */
export * from '../topology/index.js'
export * from './serdes/index.js'
export * from './app/index.js'
