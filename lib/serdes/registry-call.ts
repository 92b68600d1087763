/**
 * One schema registry call with a deadline, and an answer to "was the registry down, or did it
 * say no?".
 *
 * @kafkajs/confluent-schema-registry (over mappersmith) reports every failure as a `ResponseError`
 * with an HTTP `status`, but a failure without a response (connection refused or reset, a timeout)
 * becomes a made-up status 400 and the socket error is dropped. So the HTTP requests a call makes
 * are watched through Node's `http.client.request.start` diagnostics channel, attributed to the call
 * by an `AsyncLocalStorage`: the call knows whether its last request got a response or a socket
 * error, and the socket error (with its Node `code`) is put back as the `cause`.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import diagnosticsChannel from 'node:diagnostics_channel'
import type { ClientRequest } from 'node:http'

/** What a registry call's requests did. */
interface CallContext {
  readonly requests: Set<ClientRequest>
  /** The outcome of the request started last: a response, or a socket error. */
  last: { response: true } | { error: Error } | undefined
}

const calls = new AsyncLocalStorage<CallContext>()
let watching = false

function watchRequests(): void {
  if (watching) return
  watching = true
  diagnosticsChannel.subscribe('http.client.request.start', (message) => {
    const ctx = calls.getStore()
    if (!ctx) return
    const request = (message as { request: ClientRequest }).request
    ctx.requests.add(request)
    ctx.last = undefined
    request.once('response', () => {
      ctx.last = { response: true }
    })
    // an extra listener: the client's own error handling is unchanged
    request.once('error', (error: Error) => {
      ctx.last = { error }
    })
    request.once('close', () => ctx.requests.delete(request))
  })
}

/** A registry call that did not finish within its deadline (a frozen or unreachable registry). */
export class RegistryTimeoutError extends Error {
  /** Node's code for a timed-out operation: the error policy treats it as retriable. */
  readonly code = 'ETIMEDOUT'
  /** The deadline, in milliseconds. */
  readonly timeoutMs: number
  constructor(timeoutMs: number) {
    super(`the schema registry did not answer within ${timeoutMs} ms`)
    this.name = 'RegistryTimeoutError'
    this.timeoutMs = timeoutMs
  }
}

/** Why a registry call failed. */
export interface RegistryFailure {
  /** The registry is unreachable or briefly unable to answer: retry later, do not cache. */
  readonly outage: boolean
  /** The HTTP status of the registry's answer, when it answered. */
  readonly status: number | undefined
  /** The error to keep as `cause` (the client's error, with the socket error as its own `cause`). */
  readonly cause: unknown
}

/** HTTP status of a client error, if it has one. */
export function httpStatusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null | undefined)?.status
  return typeof s === 'number' ? s : undefined
}

/** 5xx, 408 Request Timeout, 429 Too Many Requests: the registry answered, but it will do better later. */
function isOutageStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/**
 * Runs `fn` (calls on one registry client) with a deadline and classifies its failure.
 *
 * - Resolves with `fn`'s result.
 * - Rejects with a {@link RegistryCallError} whose `failure` says whether it was an outage: no
 *   answer within `timeoutMs` (the call's HTTP requests are destroyed, so a frozen registry leaks no
 *   sockets), a socket error (ECONNREFUSED, ECONNRESET, ...), HTTP 5xx / 408 / 429, or a made-up
 *   status for a request this call did not see (it joined another caller's request to the same URL,
 *   or the client does not use `node:http`). Any other answer (404, 409, 422, 401, ...) or an error
 *   without a status (a schema the client cannot parse) is not an outage.
 *
 * @param fn the registry calls; requests it starts are attributed to this call
 * @param timeoutMs deadline in milliseconds (0 or less: none)
 */
export function callRegistry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  watchRequests()
  const ctx: CallContext = { requests: new Set(), last: undefined }
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            if (settled) return
            settled = true
            const timeout = new RegistryTimeoutError(timeoutMs)
            for (const r of ctx.requests) r.destroy(timeout)
            reject(new RegistryCallError({ outage: true, status: undefined, cause: timeout }))
          }, timeoutMs)
        : undefined
    timer?.unref?.()
    calls.run(ctx, fn).then(
      (value) => {
        if (timer) clearTimeout(timer)
        if (settled) return
        settled = true
        resolve(value)
      },
      (err: unknown) => {
        if (timer) clearTimeout(timer)
        if (settled) return
        settled = true
        reject(new RegistryCallError(classify(err, ctx)))
      },
    )
  })
}

function classify(err: unknown, ctx: CallContext): RegistryFailure {
  const status = httpStatusOf(err)
  const last = ctx.last
  if (last && 'error' in last) {
    // no answer: the client's made-up status means nothing; keep the socket error as the cause
    if (err !== null && typeof err === 'object' && (err as { cause?: unknown }).cause === undefined) {
      Object.defineProperty(err, 'cause', { value: last.error, configurable: true, writable: true })
    }
    return { outage: true, status: undefined, cause: err }
  }
  if (status === undefined) return { outage: false, status, cause: err }
  if (last && 'response' in last) return { outage: isOutageStatus(status), status, cause: err }
  // a status for a request this call did not see: only a 400 can be the client's made-up one
  return { outage: isOutageStatus(status) || status === 400, status, cause: err }
}

/** A failed registry call ({@link callRegistry}); `failure` says why. */
export class RegistryCallError extends Error {
  readonly failure: RegistryFailure
  constructor(failure: RegistryFailure) {
    super('schema registry call failed', { cause: failure.cause })
    this.name = 'RegistryCallError'
    this.failure = failure
  }
}
