// The ESM entry point: the same objects as the CommonJS one, so both share one registry.
import cjs from './index.js'

export const {
  CircuitBreaker,
  CircuitBreakerRegistry,
  globalRegistry,
  ManualClock,
  systemClock,
  Permit,
  configFromEnv,
  HealthMonitor,
  globalMonitor,
  BreakwaterError,
  CircuitOpenError,
  ErrorCodes,
  isCircuitOpenError,
  isCallTimeoutError,
  isBreakwaterError,
  FallbackHandler,
  FallbackCache,
  RequestQueue,
  isQueueFullError,
  isQueueUnavailableError,
  isNotSerializableError,
} = cjs
export default cjs
