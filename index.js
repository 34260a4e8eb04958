'use strict'
// The public entry point of `breakwater` (CommonJS). `index.mjs` re-exports it for ESM.

const { CircuitBreaker, Permit } = require('./lib/breaker')
const { CircuitBreakerRegistry, globalRegistry } = require('./lib/registry')
const { ManualClock, systemClock } = require('./lib/clock')
const { HealthMonitor, globalMonitor } = require('./lib/health')
const { FallbackHandler } = require('./lib/fallback')
const { FallbackCache } = require('./lib/cache')
const { RequestQueue } = require('./lib/queue')
const errors = require('./lib/errors')
const native = require('./lib/native')

/** The breaker defaults that the environment sets (`CB_*`, `CIRCUIT_BREAKER_ENABLED`). */
function configFromEnv(env = process.env) {
  const out = errors.native(() => native.configFromEnv(env))
  for (const k of Object.keys(out)) if (out[k] === undefined || out[k] === null) delete out[k]
  return out
}

module.exports = {
  CircuitBreaker,
  CircuitBreakerRegistry,
  globalRegistry,
  ManualClock,
  systemClock,
  Permit,
  configFromEnv,
  HealthMonitor,
  globalMonitor,
  BreakwaterError: errors.BreakwaterError,
  CircuitOpenError: errors.CircuitOpenError,
  ErrorCodes: errors.CODES,
  isCircuitOpenError: errors.isCircuitOpenError,
  isCallTimeoutError: errors.isCallTimeoutError,
  isBreakwaterError: errors.isBreakwaterError,
  FallbackHandler,
  FallbackCache,
  RequestQueue,
  isQueueFullError: errors.isQueueFullError,
  isQueueUnavailableError: errors.isQueueUnavailableError,
  isNotSerializableError: errors.isNotSerializableError,
}
