// Shared test helpers: a deferred promise, and a breaker on a ManualClock outside the global registry.
import { CircuitBreaker, ManualClock } from '../index.mjs'

export function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

export function makeBreaker(options = {}, name = 'test_api') {
  const clock = options.clock ?? new ManualClock(1_000_000)
  const breaker = new CircuitBreaker(name, { registry: null, ...options, clock })
  return { breaker, clock }
}

export const boom = () => {
  throw new Error('boom')
}

export async function failTimes(breaker, n) {
  for (let i = 0; i < n; i++) await breaker.call(boom).catch(() => {})
}

/** Records every event a breaker emits, in order. */
export function recordEvents(breaker) {
  const seen = []
  for (const ev of [
    'stateChange',
    'open',
    'halfOpen',
    'close',
    'forcedOpen',
    'disabled',
    'reject',
    'success',
    'failure',
    'timeout',
    'fallback',
  ]) {
    breaker.on(ev, (payload) => seen.push([ev, payload]))
  }
  return seen
}
