'use strict'
// What FallbackHandler, FallbackCache and RequestQueue share: the checks of the options that
// only the JS layer uses (the native side validates every option too, and names each field),
// argument checks, and how an 'error' event is raised without ever crashing the process.

const { systemClock, systemNow } = require('./clock')
const errors = require('./errors')
const { toJson } = require('./serialize')

const CONTEXT = 'fallback options'

/** The options object, checked to be a plain object (or absent); never kept or mutated. */
function optionsOf(options) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidConfig(CONTEXT, 'options', options, 'an object')
  }
  return options
}

/** The clock and a fast `now` for it. */
function clockOf(opts) {
  const clock = opts.clock ?? systemClock
  if (typeof clock.now !== 'function' || typeof clock.setTimer !== 'function' || typeof clock.clearTimer !== 'function') {
    throw errors.invalidConfig(CONTEXT, 'clock', clock, 'a clock with now(), setTimer() and clearTimer() (a ManualClock)')
  }
  return { clock, now: clock === systemClock ? systemNow : () => clock.now() }
}

function loggerOf(opts) {
  const logger = opts.logger ?? console
  if (typeof logger.warn !== 'function' || typeof logger.error !== 'function') {
    throw errors.invalidConfig(CONTEXT, 'logger', logger, 'an object with warn() and error() methods (console)')
  }
  return logger
}

function checkService(service) {
  if (typeof service !== 'string' || service.length === 0 || service.length > 256) {
    throw errors.invalidArgument('service', service, 'a non-empty string of at most 256 characters')
  }
}

function checkHandler(operation, handler) {
  if (typeof operation !== 'string' || operation.length === 0) {
    throw errors.invalidArgument('operation', operation, 'a non-empty string')
  }
  if (typeof handler !== 'function') throw errors.invalidArgument('handler', handler, 'a function')
}

function checkKey(field, key) {
  if (typeof key !== 'string') throw errors.invalidArgument(field, key, 'a string')
}

/**
 * Checks an enqueue's arguments: `item` is `{ operation, payload }` (payload as JSON) or, unless
 * `noFunctions` names the kind of queue that cannot keep one, a function. Returns
 * `{ operation, json, key }` (`null`s for a function item or no key).
 */
function checkItem(service, item, options, noFunctions) {
  checkService(service)
  let operation = null
  let json = null
  if (typeof item === 'function') {
    if (noFunctions !== null) {
      throw new errors.BreakwaterError(
        errors.CODES.NOT_SERIALIZABLE,
        `a function item cannot be stored as JSON: ${noFunctions} keeps only { operation, payload } items; register a handler for the operation`,
      )
    }
  } else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    operation = item.operation
    if (typeof operation !== 'string' || operation.length === 0) {
      throw errors.invalidArgument('item.operation', operation, 'a non-empty string (or pass a function as the item)')
    }
    json = toJson(item.payload === undefined ? null : item.payload, 'payload')
  } else {
    throw errors.invalidArgument('item', item, 'an object { operation, payload } or a function')
  }
  let key = null
  if (options !== undefined) {
    if (options === null || typeof options !== 'object') throw errors.invalidArgument('options', options, 'an object { idempotencyKey }')
    if (options.idempotencyKey !== undefined) {
      key = options.idempotencyKey
      if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
        throw errors.invalidArgument('idempotencyKey', key, 'a non-empty string of at most 1024 characters')
      }
    }
  }
  return { operation, json, key }
}

/** A public view of a native item (of the local queue or the Redis backend). */
function itemView(item) {
  const out = {
    id: item.id,
    service: item.service,
    kind: item.operation === undefined || item.operation === null ? 'function' : 'operation',
    operation: item.operation ?? undefined,
    payload: item.payload === undefined || item.payload === null ? undefined : JSON.parse(item.payload),
    idempotencyKey: item.idempotencyKey ?? undefined,
    attempts: item.attempts,
    enqueuedAt: item.enqueuedAt,
    nextAttemptAt: item.nextAttemptAt,
    lastError: item.lastError ?? null,
    state: item.deadAt !== undefined && item.deadAt !== null ? 'dead' : item.running ? 'running' : 'queued',
  }
  if (out.state === 'dead') {
    out.deadAt = item.deadAt
    out.reason = item.reason
  }
  return out
}

const MAX_DURATION_MS = 2_147_483_647

function checkTtl(ttlMs) {
  if (ttlMs !== undefined && (typeof ttlMs !== 'number' || !(ttlMs > 0) || ttlMs > MAX_DURATION_MS)) {
    throw errors.invalidArgument('ttlMs', ttlMs, `a number of milliseconds greater than 0 and at most ${MAX_DURATION_MS}`)
  }
}

/**
 * Emits 'error' when someone listens; otherwise logs it. An EventEmitter throws an 'error'
 * that nobody listens to, and from a timer that would crash the process.
 */
function raise(emitter, logger, err) {
  if (emitter.listenerCount('error') > 0) emitter.emit('error', err)
  else logger.error(`breakwater: ${err && err.code ? `${err.code}: ` : ''}${err && err.message}`)
}

/** Emits an event; a listener that throws is reported through `raise`, not to the caller. */
function emitSafe(emitter, logger, event, payload) {
  try {
    emitter.emit(event, payload)
  } catch (err) {
    raise(emitter, logger, err)
  }
}

/** The public, frozen view of a queue's resolved options (`r`: the native side's), plus `extra`. */
function queueOptionsView(r, extra) {
  return Object.freeze({
    queueEnabled: r.queueEnabled,
    maxQueueSize: r.maxQueueSize,
    queueTtlMs: r.queueTtlMs,
    autoRetryEnabled: r.autoRetryEnabled,
    maxRetryAttempts: r.maxRetryAttempts,
    retryDelayMs: r.retryDelayMs,
    retryBackoffMultiplier: r.retryBackoffMultiplier,
    retryJitterRatio: r.retryJitterRatio,
    concurrency: r.concurrency,
    idempotencyRetentionMs: r.idempotencyRetentionMs,
    ...extra,
  })
}

/** A short text for an error of any type, for the journal and `lastError`. */
function errorText(err) {
  let text
  if (err instanceof Error) text = typeof err.code === 'string' ? `${err.code}: ${err.message}` : err.message || err.name
  else if (typeof err === 'string') text = err
  else {
    try {
      text = JSON.stringify(err) ?? String(err)
    } catch {
      text = String(err)
    }
  }
  return text.length > 4096 ? `${text.slice(0, 4093)}...` : text
}

module.exports = {
  CONTEXT,
  optionsOf,
  clockOf,
  loggerOf,
  checkService,
  checkHandler,
  checkItem,
  itemView,
  queueOptionsView,
  checkKey,
  checkTtl,
  raise,
  emitSafe,
  errorText,
}
