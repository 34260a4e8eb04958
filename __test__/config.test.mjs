// Configuration: validation of every option, environment defaults, and configFromEnv.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CircuitBreaker, configFromEnv, ManualClock } from '../index.mjs'

const make = (options, name = 'cfg') => new CircuitBreaker(name, { registry: null, ...options })

function configError(options) {
  try {
    make(options)
  } catch (err) {
    return err
  }
  assert.fail(`expected ERR_INVALID_CONFIG for ${JSON.stringify(options)}`)
}

const bad = [
  [{ failureThreshold: 0 }, /failureThreshold = 0 \(expected an integer from 1 to 1000000\)/],
  [{ failureThreshold: 2.5 }, /failureThreshold = 2.5/],
  [{ failureThreshold: '5' }, /failureThreshold = "5" \(expected an integer/],
  [{ successThreshold: -1 }, /successThreshold = -1/],
  [{ halfOpenMaxCalls: 0 }, /halfOpenMaxCalls = 0/],
  [{ minThroughput: NaN }, /minThroughput = NaN/],
  [{ resetTimeoutMs: 0 }, /resetTimeoutMs = 0 \(expected a number of milliseconds greater than 0/],
  [{ resetTimeoutMs: Infinity }, /resetTimeoutMs = Infinity/],
  [{ resetTimeoutMs: '60s' }, /resetTimeoutMs = "60s"/],
  [
    { maxResetTimeoutMs: 1000, resetTimeoutMs: 2000 },
    /maxResetTimeoutMs = 1000 \(expected a number of milliseconds at least resetTimeoutMs \(2000\)\)/,
  ],
  [{ backoffMultiplier: 0.5 }, /backoffMultiplier = 0.5 \(expected a number from 1 to 100\)/],
  [{ jitterRatio: 2 }, /jitterRatio = 2 \(expected a number from 0 to 1\)/],
  [{ rollingWindowMs: 5 }, /rollingWindowMs = 5 \(expected a number from 10 to/],
  [{ failureRateThreshold: 0 }, /failureRateThreshold = 0 \(expected a number greater than 0 and at most 1\)/],
  [{ failureRateThreshold: 1.5 }, /failureRateThreshold = 1.5/],
  [{ slowCallDurationMs: 100 }, /slowCallRateThreshold = undefined/],
  [{ slowCallRateThreshold: 0.5 }, /slowCallDurationMs = undefined/],
  [{ callTimeoutMs: -1 }, /callTimeoutMs = -1/],
  [{ exponentialBackoff: 'yes' }, /exponentialBackoff = "yes" \(expected true or false\)/],
  [{ enabled: 1 }, /enabled = 1 \(expected true or false\)/],
  [{ fallback: 'not a function' }, /fallback = "not a function" \(expected a function\)/],
  [{ isFailure: {} }, /isFailure = an object \(expected a function\)/],
  [{ failureTreshold: 5 }, /unknown option "failureTreshold" = 5 \(expected a known option \(did you mean "failureThreshold"\?\)\)/],
  [{ totallyUnknown: true }, /unknown option "totallyUnknown"/],
  [{ failureThreshold: 10n }, /failureThreshold = a bigint/],
]

for (const [options, message] of bad) {
  test(`rejects ${JSON.stringify(options, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`, () => {
    const err = configError(options)
    assert.equal(err.code, 'ERR_INVALID_CONFIG')
    assert.match(err.message, message)
  })
}

test('every problem is reported in one error', () => {
  const err = configError({ failureThreshold: 0, resetTimeoutMs: -1, fallback: 1, failureTreshold: 3 })
  assert.equal(err.code, 'ERR_INVALID_CONFIG')
  for (const field of ['failureThreshold = 0', 'resetTimeoutMs = -1', 'fallback = 1', 'failureTreshold']) {
    assert.ok(err.message.includes(field), `${field} in ${err.message}`)
  }
})

test('options must be an object; the name must be a non-empty string', () => {
  assert.throws(() => new CircuitBreaker('x', null), { code: 'ERR_INVALID_CONFIG', message: /options = null/ })
  assert.throws(() => new CircuitBreaker('x', [1]), { code: 'ERR_INVALID_CONFIG', message: /an array/ })
  assert.throws(() => new CircuitBreaker('', { registry: null }), { code: 'ERR_INVALID_ARGUMENT', message: /name = ""/ })
  assert.throws(() => new CircuitBreaker(42, { registry: null }), { code: 'ERR_INVALID_ARGUMENT', message: /name = 42/ })
  assert.throws(() => make({ clock: { now: 5 } }), { code: 'ERR_INVALID_CONFIG', message: /clock/ })
})

test("the caller's options object is neither mutated nor kept", async () => {
  const options = Object.freeze({ failureThreshold: 2, registry: null, clock: new ManualClock(0) })
  const b = new CircuitBreaker('frozen', options)
  assert.deepEqual(Object.keys(options), ['failureThreshold', 'registry', 'clock'])
  await b.call(() => Promise.reject(new Error('x'))).catch(() => {})
  await b.call(() => Promise.reject(new Error('x'))).catch(() => {})
  assert.equal(b.state, 'open')
})

test('undefined options count as absent; null is accepted for optional durations', () => {
  const b = make({ callTimeoutMs: null, slowCallDurationMs: undefined, failureThreshold: undefined })
  assert.equal(b.state, 'closed')
})

test("configFromEnv reads the seed's variables", () => {
  assert.deepEqual(configFromEnv({}), {})
  assert.deepEqual(
    configFromEnv({
      CB_FAILURE_THRESHOLD: '8',
      CB_TIMEOUT_SECONDS: '1.5',
      CB_EXPONENTIAL_BACKOFF: 'false',
      CIRCUIT_BREAKER_ENABLED: 'false',
    }),
    { failureThreshold: 8, resetTimeoutMs: 1500, exponentialBackoff: false, enabled: false },
  )
  assert.deepEqual(configFromEnv({ CB_FAILURE_THRESHOLD: '' }), {}, 'empty counts as unset')
})

test('configFromEnv names the bad variable', () => {
  assert.throws(() => configFromEnv({ CB_FAILURE_THRESHOLD: 'five' }), {
    code: 'ERR_INVALID_CONFIG',
    message: /CB_FAILURE_THRESHOLD = "five" \(expected an integer from 1 to 1000000\)/,
  })
  assert.throws(
    () => configFromEnv({ CB_TIMEOUT_SECONDS: '-3', CIRCUIT_BREAKER_ENABLED: 'maybe' }),
    (err) => {
      assert.match(err.message, /CB_TIMEOUT_SECONDS = "-3"/)
      assert.match(err.message, /CIRCUIT_BREAKER_ENABLED = "maybe"/)
      return true
    },
  )
})

test('breakers take their defaults from process.env; explicit options win', async (t) => {
  const saved = { ...process.env }
  t.after(() => {
    for (const k of ['CB_FAILURE_THRESHOLD', 'CB_TIMEOUT_SECONDS', 'CB_EXPONENTIAL_BACKOFF', 'CIRCUIT_BREAKER_ENABLED']) {
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
    }
  })
  process.env.CB_FAILURE_THRESHOLD = '2'
  process.env.CB_TIMEOUT_SECONDS = '7'
  const clock = new ManualClock(0)
  const fromEnv = make({ clock }, 'env1')
  await fromEnv.call(() => Promise.reject(new Error('x'))).catch(() => {})
  await fromEnv.call(() => Promise.reject(new Error('x'))).catch(() => {})
  assert.equal(fromEnv.state, 'open')
  assert.equal(fromEnv.getMetrics().currentResetTimeoutMs, 7_000)
  const explicit = make({ clock, failureThreshold: 3, resetTimeoutMs: 1_000 }, 'env2')
  for (let i = 0; i < 2; i++) await explicit.call(() => Promise.reject(new Error('x'))).catch(() => {})
  assert.equal(explicit.state, 'closed')

  process.env.CIRCUIT_BREAKER_ENABLED = 'false'
  assert.equal(make({}, 'env3').state, 'disabled')
  process.env.CIRCUIT_BREAKER_ENABLED = 'nope'
  assert.throws(() => make({}, 'env4'), { code: 'ERR_INVALID_CONFIG', message: /CIRCUIT_BREAKER_ENABLED = "nope"/ })
})
