// ESM named imports of 'breakwater/express' work and match the CommonJS entry.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import expressEntry, {
  withCircuitBreaker,
  registerCircuitBreakerRoutes,
  prometheusMetrics,
  registerPromClientCollector,
  PROMETHEUS_CONTENT_TYPE,
} from 'breakwater/express'

test('import { withCircuitBreaker, ... } from "breakwater/express"', () => {
  const cjs = createRequire(import.meta.url)('breakwater/express')
  assert.equal(withCircuitBreaker, cjs.withCircuitBreaker)
  assert.equal(registerCircuitBreakerRoutes, cjs.registerCircuitBreakerRoutes)
  assert.equal(prometheusMetrics, cjs.prometheusMetrics)
  assert.equal(registerPromClientCollector, cjs.registerPromClientCollector)
  assert.equal(expressEntry, cjs)
  assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8')
})
