// ESM half of the installed-package smoke test.
import assert from 'node:assert/strict'
import { CircuitBreaker, ManualClock, globalRegistry } from 'breakwater'

const clock = new ManualClock(0)
const b = new CircuitBreaker('smoke_esm', { clock, failureThreshold: 1, resetTimeoutMs: 1000, successThreshold: 1 })
assert.equal(globalRegistry.get('smoke_esm'), b)
await b
  .call(async () => {
    throw new Error('down')
  })
  .catch(() => {})
clock.advance(1000)
assert.equal(await b.call(async () => 'back'), 'back')
assert.equal(b.state, 'closed')
console.log('esm ok')
