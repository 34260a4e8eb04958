// permit.ignore(): settles a permit without counting it, and frees a half-open trial slot at once
// (what the Express middleware does when a client aborts before the response finishes).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { makeBreaker, failTimes } from './helpers.mjs'

test('permit.ignore() in the closed state counts nothing', () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1 })
  const p = breaker.tryAcquire()
  clock.advance(100)
  assert.equal(p.ignore(), true)
  assert.equal(p.ignore(), false, 'settling twice is a no-op')
  assert.equal(p.success(), false)
  assert.equal(p.failure(new Error('late')), false)
  const m = breaker.getMetrics()
  assert.equal(m.totalRequests, 0)
  assert.equal(m.successfulRequests + m.failedRequests, 0)
  assert.equal(breaker.state, 'closed')
})

test('permit.ignore() frees a half-open trial slot without closing or opening the circuit', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 1_000, halfOpenMaxCalls: 1, successThreshold: 1 })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  const trial = breaker.tryAcquire()
  assert.ok(trial, 'a trial permit')
  assert.equal(breaker.state, 'half_open')
  assert.equal(breaker.tryAcquire(), null, 'the only slot is taken')
  assert.equal(trial.ignore(), true)
  assert.equal(breaker.state, 'half_open', 'an ignored trial neither closes nor re-opens')
  const next = breaker.tryAcquire()
  assert.ok(next, 'the slot was freed at once, not after the reclaim time')
  next.success()
  assert.equal(breaker.state, 'closed')
})

test('the internal _permitOrRejection() returns the CircuitOpenError with retryAfterMs', async () => {
  const { breaker, clock } = makeBreaker({ failureThreshold: 1, resetTimeoutMs: 5_000 })
  await failTimes(breaker, 1)
  clock.advance(1_000)
  const err = breaker._permitOrRejection()
  assert.equal(err.code, 'ERR_CIRCUIT_OPEN')
  assert.equal(err.retryAfterMs, 4_000)
  breaker.forceOpen()
  assert.equal(breaker._permitOrRejection().retryAfterMs, null)
  breaker.reset()
  const p = breaker._permitOrRejection()
  assert.equal(typeof p.success, 'function')
  p.success()
})
