// withCircuitBreaker from the installed package, on a real Express server on 127.0.0.1.
const assert = require('node:assert/strict')
const express = require('express')
const { withCircuitBreaker, registerCircuitBreakerRoutes } = require('breakwater/express')
const { CircuitBreakerRegistry } = require('breakwater')

async function main() {
  const registry = new CircuitBreakerRegistry()
  const app = express()
  let up = false
  app.get(
    '/api/generate',
    withCircuitBreaker('smoke_api', (req, res) => (up ? res.json({ ok: true }) : res.status(502).end()), {
      registry,
      breakerOptions: { failureThreshold: 2 },
    }),
  )
  registerCircuitBreakerRoutes(app, { registry })
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  try {
    const base = `http://127.0.0.1:${server.address().port}`
    assert.equal((await fetch(`${base}/api/generate`)).status, 502)
    assert.equal((await fetch(`${base}/api/generate`)).status, 502)
    const rejected = await fetch(`${base}/api/generate`)
    assert.equal(rejected.status, 503)
    assert.ok(Number(rejected.headers.get('retry-after')) >= 1)
    assert.equal((await rejected.json()).error, 'circuit_open')
    const metrics = await (await fetch(`${base}/api/circuit-breaker/metrics`)).json()
    assert.equal(metrics.circuit_breakers[0].state, 'open')
    console.log('express ok')
  } finally {
    server.close()
  }
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
