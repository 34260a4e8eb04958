'use strict'
// What FallbackHandler, FallbackCache and RequestQueue share: the checks of the options that
// only the JS layer uses (the native side validates every option too, and names each field),
// argument checks, and how an 'error' event is raised without ever crashing the process.

const { systemClock, systemNow } = require('./clock')
const errors = require('./errors')

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

function checkKey(field, key) {
  if (typeof key !== 'string') throw errors.invalidArgument(field, key, 'a string')
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

module.exports = { CONTEXT, optionsOf, clockOf, loggerOf, checkService, checkKey, checkTtl, raise, emitSafe, errorText }
