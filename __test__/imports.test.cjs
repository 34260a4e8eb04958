// The CommonJS entry point works, and shares its objects with the ESM one.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const bw = require('breakwater')

test('require("breakwater") exposes the API', async () => {
  for (const k of [
    'CircuitBreaker',
    'CircuitBreakerRegistry',
    'globalRegistry',
    'ManualClock',
    'configFromEnv',
    'isCircuitOpenError',
    'isCallTimeoutError',
  ]) {
    assert.ok(k in bw, k)
  }
  const b = new bw.CircuitBreaker('cjs', { registry: null })
  assert.equal(await b.call(async () => 42), 42)
  const esm = await import('breakwater')
  assert.equal(esm.CircuitBreaker, bw.CircuitBreaker)
  assert.equal(esm.globalRegistry, bw.globalRegistry)
})
