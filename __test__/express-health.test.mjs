// The monitoring routes with the real HealthMonitor (the other Express tests pin the JSON mapping
// with a fixed stand-in in fake-monitor.mjs): statuses, counts and values come from the monitor.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import express from 'express'
import { HealthMonitor, ManualClock, CircuitBreakerRegistry } from '../index.mjs'
import { registerCircuitBreakerRoutes } from '../express.mjs'

function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) })
    })
  })
}

test('GET /health and /status report the real monitor', async (t) => {
  const clock = new ManualClock(1_700_000_000_000)
  const monitor = new HealthMonitor({ clock })
  t.after(() => monitor.stop())
  let degradedCalls = 0
  monitor.registerService('openai_api', async () => true)
  monitor.registerService('gemini_api', async () => {
    throw new Error('connect ECONNREFUSED 127.0.0.1:1')
  })
  // One failure in ten checks: a 10 % error rate, past the 5 % warning, below the 20 % critical.
  monitor.registerService('meta_api', async () => ++degradedCalls !== 1)
  monitor.registerService('never_checked', async () => true)
  for (let i = 0; i < 10; i++) {
    await monitor.checkServiceHealth('openai_api')
    await monitor.checkServiceHealth('meta_api')
    if (i < 3) await monitor.checkServiceHealth('gemini_api')
    clock.advance(1_000)
  }
  const registry = new CircuitBreakerRegistry()
  registry.getOrCreate('openai_api', { clock }).forceOpen()
  const app = express()
  registerCircuitBreakerRoutes(app, { registry, monitor })
  const server = await listen(app)
  t.after(() => server.close())

  const health = await (await fetch(`${server.url}/api/circuit-breaker/health`)).json()
  const expected = {
    openai_api: 'healthy',
    gemini_api: 'unhealthy',
    meta_api: 'degraded',
    never_checked: 'unknown',
  }
  for (const [name, status] of Object.entries(expected)) {
    const real = monitor.getServiceHealth(name)
    assert.equal(real.status, status, name)
    assert.equal(health.services[name].status, status, name)
    assert.equal(health.services[name].error_rate, real.errorRate, name)
    assert.equal(health.services[name].uptime, real.uptime, name)
  }
  assert.match(health.services.gemini_api.last_error, /ECONNREFUSED/)
  assert.equal(health.services.meta_api.error_rate, 0.1)

  const status = await (await fetch(`${server.url}/api/circuit-breaker/status`)).json()
  assert.equal(status.status, 'unhealthy')
  assert.deepEqual(
    [status.summary.total_services, status.summary.healthy_services, status.summary.degraded_services, status.summary.unhealthy_services],
    [4, 1, 1, 1],
  )

  const prom = await (await fetch(`${server.url}/api/circuit-breaker/prometheus`)).text()
  assert.match(prom, /health_check_status\{service="gemini_api"\} 2/)
  assert.match(prom, /health_check_status\{service="openai_api"\} 0/)
  assert.match(prom, /circuit_breaker_state\{name="openai_api"\} 3/)
})
