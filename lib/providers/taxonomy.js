'use strict'
// The error taxonomy of the LLM providers, in one place: for an error thrown by the OpenAI,
// Anthropic or Gemini SDK, whether it counts as a failure of the provider's breaker, whether to
// fail over to the next provider, and for how long to open the breaker.

/**
 * The rows of the taxonomy. `open` says how long the breaker opens: `'hint'` for the provider's
 * own retry hint (`retry-after-ms`, `retry-after`, Gemini's `retryDelay`), falling back to the
 * breaker's `resetTimeoutMs` when there is none; `'max'` for its `maxResetTimeoutMs`.
 */
const KINDS = Object.freeze({
  connection: { countsAsFailure: true, failover: true, open: null },
  timeout: { countsAsFailure: true, failover: true, open: null },
  server_error: { countsAsFailure: true, failover: true, open: null },
  overloaded: { countsAsFailure: true, failover: true, open: null },
  // The provider is healthy but refuses us for a while: its hint says exactly how long, so the
  // breaker opens for that time instead of counting a failure.
  rate_limited: { countsAsFailure: false, failover: true, open: 'hint' },
  quota_exhausted: { countsAsFailure: false, failover: true, open: 'max' },
  auth: { countsAsFailure: false, failover: true, open: 'max' },
  // The caller's fault (a bad request, a model this provider does not have): another provider
  // would be no better, and the provider itself is fine.
  invalid_request: { countsAsFailure: false, failover: false, open: null },
  aborted: { countsAsFailure: false, failover: false, open: null },
  // A circuit that refused, or a chain with no provider left: what failed was already counted by
  // the providers' own breakers (seen by a breaker shared with, say, an Express route).
  unavailable: { countsAsFailure: false, failover: true, open: null },
  // Anything unrecognised (a garbled response, an SDK error without a status) counts, as every
  // error does for a plain breaker.
  unknown: { countsAsFailure: true, failover: true, open: null },
})

const OVERLOADED_STATUS = 529 // Anthropic: "overloaded_error"

// Anthropic's spend limits are 429s (or 402s) whose body names the limit in `error.details.error_code`.
const ANTHROPIC_SPEND_CODES = new Set([
  'contract_spend_limit_reached',
  'enforced_spend_limit_reached',
  'linked_organization_spend_limit_reached',
  'linked_organization_billing_unavailable',
])

// Error `type`s carried by an error event inside a stream, which has no HTTP status.
const BODY_TYPES = {
  overloaded_error: 'overloaded',
  api_error: 'server_error',
  server_error: 'server_error',
  timeout_error: 'timeout',
  rate_limit_error: 'rate_limited',
  insufficient_quota: 'quota_exhausted',
  billing_error: 'quota_exhausted',
  authentication_error: 'auth',
  permission_error: 'auth',
  invalid_request_error: 'invalid_request',
  not_found_error: 'invalid_request',
  request_too_large: 'invalid_request',
  // Gemini's google.rpc status names.
  UNAVAILABLE: 'server_error',
  INTERNAL: 'server_error',
  DEADLINE_EXCEEDED: 'timeout',
  RESOURCE_EXHAUSTED: 'rate_limited',
  UNAUTHENTICATED: 'auth',
  PERMISSION_DENIED: 'auth',
  INVALID_ARGUMENT: 'invalid_request',
  NOT_FOUND: 'invalid_request',
  FAILED_PRECONDITION: 'invalid_request',
}

// Network failures as Node's fetch (undici) and the SDKs report them.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE', // node-fetch (openai 4): the body ended early
])
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** A header of an SDK error: a fetch `Headers` (openai ≥ 5, the Anthropic SDK) or a plain object (openai 4). */
function header(headers, name) {
  if (headers === null || typeof headers !== 'object') return undefined
  if (typeof headers.get === 'function') return headers.get(name) ?? undefined
  const lower = name.toLowerCase()
  for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) return headers[k]
  return undefined
}

/**
 * The wait a response asks for, in ms: `retry-after-ms`, else `retry-after` as seconds or as an
 * HTTP-date (against `nowWallMs`, the wall clock). Undefined when there is no usable hint.
 */
function retryAfterFromHeaders(headers, nowWallMs = Date.now()) {
  const ms = header(headers, 'retry-after-ms')
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Number(ms)
  const after = header(headers, 'retry-after')
  if (after === undefined) return undefined
  if (/^\s*\d+(\.\d+)?\s*$/.test(after)) return Number(after) * 1000
  const at = Date.parse(after)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - nowWallMs)
}

/** A protobuf Duration in its JSON form ("12s", "0.5s", "1.250s") in ms; undefined if malformed. */
function parseDuration(value) {
  if (typeof value !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value)
  return m === null ? undefined : Number(m[1]) * 1000
}

/** The error body of a Gemini ApiError: its message is the JSON of the response body. */
function geminiBody(err) {
  const text = typeof err.message === 'string' ? err.message : ''
  const start = text.indexOf('{')
  if (start === -1) return undefined
  try {
    return JSON.parse(text.slice(start))
  } catch {
    return undefined
  }
}

/** Gemini's hint: the `retryDelay` of a google.rpc.RetryInfo in the body's `error.details`. */
function geminiRetryDelay(body) {
  const details = body?.error?.details
  if (!Array.isArray(details)) return undefined
  for (const d of details) {
    if (d !== null && typeof d === 'object' && 'retryDelay' in d) {
      const ms = parseDuration(d.retryDelay)
      if (ms !== undefined) return ms
    }
  }
  return undefined
}

/** The HTTP status of an SDK error, if it has one. */
function statusOf(err) {
  const s = err.status ?? err.statusCode
  return typeof s === 'number' && s >= 100 && s < 600 ? s : undefined
}

/** An aborted request: `APIUserAbortError` (openai, Anthropic), or fetch's `AbortError` (Gemini). */
function isAbort(err) {
  return err.name === 'APIUserAbortError' || err.constructor?.name === 'APIUserAbortError' || err.name === 'AbortError'
}

// An abort is the caller's only when the caller's own signal fired: the SDKs also abort on their
// own timeouts (Gemini's `httpOptions.timeout` throws the same AbortError), and those are
// timeouts. The failover engine marks the errors of calls whose caller aborted; the breaker's
// `isFailure` sees only the error, so the mark travels with it.
const callerAborts = new WeakSet()

/** Marks `err` as the result of the caller's own abort. */
function markCallerAbort(err) {
  if (err !== null && typeof err === 'object') callerAborts.add(err)
  return err
}

function networkKind(err) {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = e.cause, depth++) {
    if (TIMEOUT_CODES.has(e.code) || e.name === 'TimeoutError') return 'timeout'
    if (NETWORK_CODES.has(e.code)) return 'connection'
  }
  // Node's fetch: `TypeError: fetch failed` (no connection) or `terminated` (dropped mid-body).
  if (err.name === 'TypeError' && /^(fetch failed|terminated)$/.test(err.message)) return 'connection'
  return undefined
}

/** The kind an HTTP status (and body) maps to, for one provider. */
function kindOfStatus(provider, status, err, body) {
  if (status === 429) {
    if (
      provider === 'openai' &&
      (err.code === 'insufficient_quota' || err.type === 'insufficient_quota' || err.error?.code === 'insufficient_quota')
    ) {
      return 'quota_exhausted'
    }
    if (provider === 'anthropic' && ANTHROPIC_SPEND_CODES.has(anthropicErrorCode(err))) return 'quota_exhausted'
    return 'rate_limited'
  }
  if (status === 402) return 'quota_exhausted'
  if (status === 401 || status === 403) return 'auth'
  if (status === 408) return 'timeout'
  if (status === OVERLOADED_STATUS) return 'overloaded'
  if (status >= 500) return 'server_error'
  if (status === 400 && provider === 'anthropic' && /credit balance is too low/i.test(anthropicMessage(err, body))) {
    // Anthropic's prepaid credit running out is a 400 whose only mark is its message.
    return 'quota_exhausted'
  }
  return 'invalid_request' // 400, 404, 409, 413, 422 and the other 4xx
}

function anthropicErrorCode(err) {
  return err.errorCode ?? err.error?.error?.details?.error_code ?? err.details?.error_code
}

function anthropicMessage(err, body) {
  return String(err.apiMessage ?? err.error?.error?.message ?? body?.error?.message ?? err.message ?? '')
}

/** The kind of an error that carries no status: a stream's error event, or a transport failure. */
function kindWithoutStatus(err, callerAborted) {
  if (callerAborted) return 'aborted'
  if (err.code === 'ERR_CIRCUIT_OPEN' || err.code === 'ERR_ALL_PROVIDERS_UNAVAILABLE') return 'unavailable'
  if (err.code === 'ERR_CALL_TIMEOUT') return 'timeout' // breakwater's own callTimeoutMs
  if (err.name === 'APIConnectionTimeoutError' || err.constructor?.name === 'APIConnectionTimeoutError') return 'timeout'
  if (err.name === 'APIConnectionError' || err.constructor?.name === 'APIConnectionError') return 'connection'
  if (isAbort(err)) return 'timeout'
  // An error event in an SSE stream: the body says what it was.
  const bodyType = err.type ?? err.error?.type ?? err.error?.error?.type
  if (typeof bodyType === 'string' && bodyType in BODY_TYPES) {
    if (bodyType === 'rate_limit_error' && ANTHROPIC_SPEND_CODES.has(anthropicErrorCode(err))) return 'quota_exhausted'
    return BODY_TYPES[bodyType]
  }
  if (err.code === 'insufficient_quota') return 'quota_exhausted'
  return networkKind(err) ?? 'unknown'
}

/**
 * Classifies an error thrown by a provider's SDK.
 * @param {'openai'|'anthropic'|'gemini'} provider
 * @param {unknown} err
 * @param {{ nowWallMs?: number, callerAborted?: boolean }} [options] `nowWallMs`: the wall clock,
 *   for an HTTP-date `retry-after`; `callerAborted`: the caller aborted the call (default: whether
 *   `err` was marked by `markCallerAbort`)
 * @returns {{ kind: string, status: number|undefined, countsAsFailure: boolean, failover: boolean,
 *   open: null|'hint'|'max', retryAfterMs: number|undefined, authError: boolean }}
 */
function classify(provider, err, options) {
  if (provider === 'meta') return classifyMeta(err)
  const nowWallMs = options?.nowWallMs ?? Date.now()
  if (err === null || typeof err !== 'object') return verdict('unknown', undefined, undefined)
  const callerAborted = options?.callerAborted ?? callerAborts.has(err)
  const status = statusOf(err)
  let kind
  let retryAfterMs
  if (provider === 'gemini' && (err.name === 'ApiError' || status !== undefined)) {
    // Gemini's ApiError keeps no headers: its status is on the error, and the rest in the body.
    const body = geminiBody(err)
    kind = status !== undefined ? kindOfStatus(provider, status, err, body) : (BODY_TYPES[body?.error?.status] ?? 'unknown')
    if (kind === 'rate_limited') retryAfterMs = geminiRetryDelay(body)
  } else if (status !== undefined && !callerAborted) {
    kind = kindOfStatus(provider, status, err, undefined)
    if (kind === 'rate_limited') retryAfterMs = retryAfterFromHeaders(err.headers, nowWallMs)
  } else {
    kind = kindWithoutStatus(err, callerAborted)
  }
  return verdict(kind, status, retryAfterMs)
}

function verdict(kind, status, retryAfterMs) {
  const row = KINDS[kind]
  return {
    kind,
    status,
    countsAsFailure: row.countsAsFailure,
    failover: row.failover,
    open: row.open,
    retryAfterMs,
    authError: kind === 'auth',
  }
}

// ---- the Meta Marketing (Graph) API ----

/**
 * Meta's rows: `queue` says whether a publish that met this error is queued for retry, and
 * `open: 'usage'` opens the breaker for the time the usage headers give (else `resetTimeoutMs`).
 */
const META_KINDS = Object.freeze({
  throttled: { countsAsFailure: false, queue: true, open: 'usage' },
  transient: { countsAsFailure: true, queue: true, open: null },
  connection: { countsAsFailure: true, queue: true, open: null },
  timeout: { countsAsFailure: true, queue: true, open: null },
  circuit_open: { countsAsFailure: false, queue: true, open: null },
  auth: { countsAsFailure: false, queue: false, open: null },
  invalid_request: { countsAsFailure: false, queue: false, open: null },
  unknown: { countsAsFailure: true, queue: true, open: null },
})

// Rate limiting: 4 (app), 17 (user), 32 (page), 613 (calls within a window), 80000-80014 (the
// business use case limits, 80004 for ads management).
const META_THROTTLE_CODES = new Set([4, 17, 32, 613])
const isMetaThrottleCode = (code) => META_THROTTLE_CODES.has(code) || (code >= 80000 && code <= 80014)
// 190: the token is invalid or expired; 102: the session is; 463/467 (subcodes): expired or invalid.
const META_AUTH_CODES = new Set([190, 102])

function parseJsonHeader(headers, name) {
  const v = header(headers, name)
  if (v === undefined) return undefined
  try {
    return JSON.parse(v)
  } catch {
    return undefined
  }
}

/**
 * The wait Meta's usage headers give, in ms: the largest `estimated_time_to_regain_access`
 * (minutes) of `X-Business-Use-Case-Usage`, and `reset_time_duration` (seconds) of
 * `X-Ad-Account-Usage`. Undefined when neither says.
 */
function metaRegainAccessMs(headers) {
  let ms
  const buc = parseJsonHeader(headers, 'x-business-use-case-usage')
  if (buc !== null && typeof buc === 'object') {
    for (const entries of Object.values(buc)) {
      for (const e of Array.isArray(entries) ? entries : []) {
        const minutes = Number(e?.estimated_time_to_regain_access)
        if (Number.isFinite(minutes) && minutes > 0) ms = Math.max(ms ?? 0, minutes * 60_000)
      }
    }
  }
  const acc = parseJsonHeader(headers, 'x-ad-account-usage')
  const seconds = Number(acc?.reset_time_duration)
  if (Number.isFinite(seconds) && seconds > 0) ms = Math.max(ms ?? 0, seconds * 1000)
  return ms
}

/** Classifies an error of a Graph API call (see lib/providers/meta.js for `MetaGraphError`). */
function classifyMeta(err) {
  if (err === null || typeof err !== 'object') return metaVerdict('unknown', undefined, undefined)
  if (err.code === 'ERR_CIRCUIT_OPEN') return metaVerdict('circuit_open', undefined, undefined)
  if (err.code === 'ERR_CALL_TIMEOUT' || err.name === 'TimeoutError') return metaVerdict('timeout', undefined, undefined)
  const status = statusOf(err)
  const g = err.graph
  if (g !== undefined) {
    let kind
    if (isMetaThrottleCode(g.code)) kind = 'throttled'
    else if (META_AUTH_CODES.has(g.code)) kind = 'auth'
    else if (g.isTransient === true || g.code === 1 || g.code === 2 || (status !== undefined && status >= 500)) kind = 'transient'
    else kind = 'invalid_request'
    return metaVerdict(kind, status, kind === 'throttled' ? metaRegainAccessMs(err.headers) : undefined)
  }
  if (status !== undefined) {
    if (status === 429) return metaVerdict('throttled', status, metaRegainAccessMs(err.headers))
    return metaVerdict(status >= 500 || status === 408 ? 'transient' : status === 401 ? 'auth' : 'invalid_request', status, undefined)
  }
  const net = networkKind(err)
  return metaVerdict(net ?? 'unknown', undefined, undefined)
}

function metaVerdict(kind, status, retryAfterMs) {
  const row = META_KINDS[kind]
  return {
    kind,
    status,
    countsAsFailure: row.countsAsFailure,
    failover: false,
    queue: row.queue,
    open: row.open,
    retryAfterMs,
    authError: kind === 'auth',
  }
}

module.exports = {
  KINDS,
  META_KINDS,
  classify,
  classifyMeta,
  metaRegainAccessMs,
  markCallerAbort,
  retryAfterFromHeaders,
  parseDuration,
  header,
}
