/**
 * `kstreams/testing`: unit-test topologies without a broker.
 */
export * from './driver.js'
