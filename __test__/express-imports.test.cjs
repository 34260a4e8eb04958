// require('breakwater/express') and import ... from 'breakwater/express' give the same objects,
// and share the registry of require('breakwater').
const { test } = require('node:test')
const assert = require('node:assert/strict')

test('require("breakwater/express") and import("breakwater/express") expose the same API', async () => {
  const cjs = require('breakwater/express')
  const esm = await import('breakwater/express')
  for (const k of ['withCircuitBreaker', 'registerCircuitBreakerRoutes', 'prometheusMetrics', 'registerPromClientCollector']) {
    assert.equal(typeof cjs[k], 'function', k)
    assert.equal(esm[k], cjs[k], k)
  }
  assert.equal(esm.default, cjs)
  const { globalRegistry } = require('breakwater')
  cjs.withCircuitBreaker('imports_cjs_breaker', (req, res) => res.end())
  assert.ok(globalRegistry.has('imports_cjs_breaker'), 'the wrapped route registers in the shared globalRegistry')
  assert.match(cjs.prometheusMetrics({ monitor: null }), /circuit_breaker_state\{name="imports_cjs_breaker"\} 0/)
  globalRegistry.delete('imports_cjs_breaker')
})
