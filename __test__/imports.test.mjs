// The ESM entry point works with named and default imports.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import bw, { CircuitBreaker, isCircuitOpenError } from 'breakwater'

test('import { CircuitBreaker } from "breakwater"', async () => {
  const b = new CircuitBreaker('esm', { registry: null, failureThreshold: 1 })
  await b.call(() => Promise.reject(new Error('x'))).catch(() => {})
  const err = await b.call(async () => 1).catch((e) => e)
  assert.ok(isCircuitOpenError(err))
  assert.equal(bw.CircuitBreaker, CircuitBreaker)
})

test('type guards check the code, so errors from another copy are recognised', () => {
  assert.ok(isCircuitOpenError({ code: 'ERR_CIRCUIT_OPEN' }))
  assert.ok(!isCircuitOpenError(new Error('x')))
  assert.ok(!isCircuitOpenError(null))
})
