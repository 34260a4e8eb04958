// Registries: the global default, named lookup, duplicates, bulk reset and metrics.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CircuitBreaker, CircuitBreakerRegistry, globalRegistry, ManualClock } from '../index.mjs'

test('a new breaker registers in globalRegistry unless registry: null', () => {
  const b = new CircuitBreaker('registry_global_a')
  assert.equal(globalRegistry.get('registry_global_a'), b)
  assert.throws(() => new CircuitBreaker('registry_global_a'), {
    code: 'ERR_DUPLICATE_BREAKER',
    message: /"registry_global_a" already exists/,
  })
  const loose = new CircuitBreaker('registry_global_a', { registry: null })
  assert.notEqual(globalRegistry.get('registry_global_a'), loose)
  assert.equal(globalRegistry.delete('registry_global_a'), true)
  assert.equal(globalRegistry.get('registry_global_a'), undefined)
})

test('getOrCreate, list, resetAll and getAllMetrics', async () => {
  const registry = new CircuitBreakerRegistry()
  const clock = new ManualClock(0)
  const a = registry.getOrCreate('a', { failureThreshold: 1, clock })
  assert.equal(registry.getOrCreate('a', { failureThreshold: 99 }), a, 'the first creator wins')
  const b = new CircuitBreaker('b', { registry, clock })
  assert.deepEqual(
    registry.list().map((x) => x.name),
    ['a', 'b'],
  )
  assert.equal(registry.size, 2)
  await a.call(() => Promise.reject(new Error('x'))).catch(() => {})
  await b.call(async () => 1)
  assert.equal(a.state, 'open')
  const metrics = registry.getAllMetrics()
  assert.deepEqual(
    metrics.map((m) => [m.name, m.state, m.totalRequests]),
    [
      ['a', 'open', 1],
      ['b', 'closed', 1],
    ],
  )
  registry.resetAll()
  assert.equal(a.state, 'closed')
  assert.equal(a.getMetrics().totalRequests, 0)
  assert.equal(globalRegistry.get('a'), undefined, 'other registries are separate')
})
