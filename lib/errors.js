'use strict'
// Breakwater's errors: one class with a stable `code`, and type guards that check the code
// (not `instanceof`), so errors from another copy of the package are recognised too.

class BreakwaterError extends Error {
  constructor(code, message, props) {
    super(message)
    this.code = code
    if (props !== undefined) Object.assign(this, props)
  }
}
Object.defineProperty(BreakwaterError.prototype, 'name', { value: 'BreakwaterError', writable: true, configurable: true })

const CODES = Object.freeze({
  CIRCUIT_OPEN: 'ERR_CIRCUIT_OPEN',
  CALL_TIMEOUT: 'ERR_CALL_TIMEOUT',
  INVALID_CONFIG: 'ERR_INVALID_CONFIG',
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  DUPLICATE_BREAKER: 'ERR_DUPLICATE_BREAKER',
  UNKNOWN_BREAKER: 'ERR_UNKNOWN_BREAKER',
  SHARED_STATE: 'ERR_SHARED_STATE',
  NATIVE_BINDING_MISSING: 'ERR_NATIVE_BINDING_MISSING',
  INTERNAL: 'ERR_INTERNAL',
  QUEUE_FULL: 'ERR_QUEUE_FULL',
  QUEUE_DISABLED: 'ERR_QUEUE_DISABLED',
  QUEUE_CLOSED: 'ERR_QUEUE_CLOSED',
  // The Redis queue backend cannot reach Redis: the item was not queued (the caller still owns it).
  QUEUE_UNAVAILABLE: 'ERR_QUEUE_UNAVAILABLE',
  NOT_SERIALIZABLE: 'ERR_NOT_SERIALIZABLE',
  CORRUPT_JOURNAL: 'ERR_CORRUPT_JOURNAL',
  JOURNAL_IO: 'ERR_JOURNAL_IO',
  JOURNAL_LOCKED: 'ERR_JOURNAL_LOCKED',
  NO_HANDLER: 'ERR_NO_HANDLER',
  // breakwater/providers: no provider could serve a call; `retryAfterMs` says when one might.
  ALL_PROVIDERS_UNAVAILABLE: 'ERR_ALL_PROVIDERS_UNAVAILABLE',
})

/**
 * The rejection of an open circuit. A rejection is the hot path of an outage, so this error is
 * an ordinary object whose prototype chain runs through BreakwaterError and Error (so
 * `instanceof Error` holds): it captures no stack trace (about 2.4 µs with one) and builds its
 * message only when read. Its `stack` is just the name and message.
 */
function CircuitOpenError(breaker, state, retryAfterMs) {
  this.code = CODES.CIRCUIT_OPEN
  this.breaker = breaker
  this.state = state
  this.retryAfterMs = retryAfterMs
}
CircuitOpenError.prototype = Object.create(BreakwaterError.prototype, {
  constructor: { value: CircuitOpenError, writable: true, configurable: true },
  name: { value: 'CircuitOpenError', writable: true, configurable: true },
  message: {
    get() {
      return this.retryAfterMs === null
        ? `Circuit "${this.breaker}" is ${this.state}: call rejected`
        : `Circuit "${this.breaker}" is ${this.state}: call rejected, retry after ${Math.ceil(this.retryAfterMs)} ms`
    },
    configurable: true,
  },
  stack: {
    get() {
      return `${this.name}: ${this.message}`
    },
    configurable: true,
  },
})

function circuitOpenError(name, state, retryAfterMs) {
  return new CircuitOpenError(name, state, retryAfterMs)
}

function callTimeoutError(name, timeoutMs) {
  return new BreakwaterError(CODES.CALL_TIMEOUT, `Call through circuit "${name}" timed out after ${timeoutMs} ms`, {
    name: 'CallTimeoutError',
    breaker: name,
    timeoutMs,
  })
}

/** Native errors carry their code as a `CODE: ` message prefix (see src/napi/error.rs). */
function fromNative(err) {
  const m = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(err && err.message)
  if (m === null) return err
  return new BreakwaterError(m[1], m[2])
}

/** Calls `fn`, turning a native error into a BreakwaterError with its code. */
function native(fn) {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

function hasCode(err, code) {
  return err !== null && typeof err === 'object' && err.code === code
}

const isCircuitOpenError = (err) => hasCode(err, CODES.CIRCUIT_OPEN)
const isCallTimeoutError = (err) => hasCode(err, CODES.CALL_TIMEOUT)
const isQueueFullError = (err) => hasCode(err, CODES.QUEUE_FULL)
const isQueueUnavailableError = (err) => hasCode(err, CODES.QUEUE_UNAVAILABLE)
const isNotSerializableError = (err) => hasCode(err, CODES.NOT_SERIALIZABLE)
const isAllProvidersUnavailableError = (err) => hasCode(err, CODES.ALL_PROVIDERS_UNAVAILABLE)
const isBreakwaterError = (err) =>
  err !== null && typeof err === 'object' && typeof err.code === 'string' && Object.values(CODES).includes(err.code)

function describe(value) {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'bigint') return `${value}n`
  return String(value)
}

function invalidArgument(field, value, expected) {
  return new BreakwaterError(CODES.INVALID_ARGUMENT, `Invalid argument: ${field} = ${describe(value)} (expected ${expected})`)
}

function invalidConfig(context, field, value, expected) {
  return new BreakwaterError(CODES.INVALID_CONFIG, `Invalid ${context}: ${field} = ${describe(value)} (expected ${expected})`)
}

module.exports = {
  BreakwaterError,
  CircuitOpenError,
  CODES,
  circuitOpenError,
  callTimeoutError,
  fromNative,
  native,
  isCircuitOpenError,
  isCallTimeoutError,
  isAllProvidersUnavailableError,
  isBreakwaterError,
  isQueueFullError,
  isQueueUnavailableError,
  isNotSerializableError,
  invalidArgument,
  invalidConfig,
  describe,
}
