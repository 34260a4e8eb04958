// The Prometheus exposition: GET {prefix}/prometheus and prometheusMetrics(), checked by a real
// parser (`promtool check metrics`, Debian's prometheus package), with hostile names too; and the
// same families published into a prom-client registry.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { CircuitBreakerRegistry, ManualClock } from 'breakwater'
import { withCircuitBreaker, registerCircuitBreakerRoutes, prometheusMetrics, registerPromClientCollector } from 'breakwater/express'
import promClient from 'prom-client'
import { EXPRESS_VERSIONS, jsonErrors, listen, call, needTool, assertTool, HOSTILE } from './express-helpers.mjs'
import { createMonitor } from './fake-monitor.mjs'

const PROMTOOL = process.env.BREAKWATER_PROMTOOL ?? '/usr/bin/promtool'
const skipPromtool = needTool(PROMTOOL, 'prometheus')
if (skipPromtool) console.log(`# SKIP promtool checks: ${skipPromtool}`)

/** Pipes the text to `promtool check metrics`: a parse error or a lint problem fails. */
function promtoolCheck(text) {
  assertTool(PROMTOOL, 'prometheus')
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' })
  assert.equal(r.status, 0, `promtool check metrics failed (exit ${r.status}):\n${r.stdout}${r.stderr}\n--- input ---\n${text}`)
}

/** The value of the sample line that starts with `prefix` (labels included). */
function sample(text, prefix) {
  const line = text.split('\n').find((l) => l.startsWith(`${prefix} `))
  assert.ok(line !== undefined, `no sample ${prefix} in:\n${text}`)
  return Number(line.slice(prefix.length + 1))
}

const fallbackSource = {
  getMetrics: () => ({
    cache: { size: 12, hitsTotal: 40, missesTotal: 2 },
    queue: { size: 3, maxSize: 1000, droppedTotal: 1 },
    'weird name!': 1,
    note: 'not a number',
  }),
}

describe('Prometheus exposition', () => {
  let registry
  let monitor
  let clock
  let server
  const [, express] = EXPRESS_VERSIONS[1]

  before(async () => {
    registry = new CircuitBreakerRegistry()
    clock = new ManualClock(0)
    monitor = createMonitor([
      {
        name: 'openai_api',
        status: 'healthy',
        latencyP50Ms: 120,
        latencyP95Ms: 450,
        latencyP99Ms: 900,
        errorRate: 0.01,
        totalChecks: 100,
        failedChecks: 1,
      },
      { name: HOSTILE, status: 'unhealthy', errorRate: 1 },
    ])
    const app = express()
    app.get(
      '/ok',
      withCircuitBreaker('openai_api', (req, res) => res.json({}), { registry }),
    )
    app.get(
      '/fail',
      withCircuitBreaker(HOSTILE, (req, res) => res.status(500).end(), { registry, breakerOptions: { failureThreshold: 2 } }),
    )
    registerCircuitBreakerRoutes(app, { registry, monitor, fallback: fallbackSource })
    jsonErrors(app)
    server = await listen(app)
    for (const p of ['/ok', '/ok', '/ok', '/fail', '/fail', '/fail']) await call(server.url + p)
    // A breaker used only through call(): its histogram has +Inf, sum and count.
    const direct = registry.getOrCreate('direct_only', { clock, callTimeoutMs: 100 })
    await direct.call(async () => clock.advance(40))
    await direct
      .call(async () => {
        throw new Error('x')
      })
      .catch(() => {})
    const pending = direct.call(() => new Promise(() => {}))
    clock.advance(100)
    await pending.catch(() => {})
    registry.getOrCreate('forced', { clock }).forceOpen()
    registry.getOrCreate('off', { clock }).disable()
  })
  after(() => server.close())

  test('GET /prometheus is text format 0.0.4 and passes promtool check metrics (with hostile names)', { skip: skipPromtool }, async () => {
    const r = await call(`${server.url}/api/circuit-breaker/prometheus`)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
    assert.ok(r.text.includes('name="evil \\"quoted\\" \\\\back\\\\slash\\nnew line </script>'), 'label escapes: \\" \\\\ \\n')
    promtoolCheck(r.text)
  })

  test('states, request counters by result, failure rate', () => {
    const text = prometheusMetrics({ registry, monitor, fallback: fallbackSource })
    assert.match(text, /^# TYPE circuit_breaker_state gauge$/m)
    assert.equal(sample(text, 'circuit_breaker_state{name="openai_api"}'), 0)
    assert.equal(sample(text, 'circuit_breaker_state{name="forced"}'), 3)
    assert.equal(sample(text, 'circuit_breaker_state{name="off"}'), 4)
    const evil = HOSTILE.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
    assert.equal(sample(text, `circuit_breaker_state{name="${evil}"}`), 1)
    assert.equal(sample(text, `circuit_breaker_requests_total{name="${evil}",result="failure"}`), 2)
    assert.equal(sample(text, `circuit_breaker_requests_total{name="${evil}",result="rejected"}`), 1)
    assert.equal(sample(text, 'circuit_breaker_requests_total{name="openai_api",result="success"}'), 3)
    assert.equal(sample(text, 'circuit_breaker_requests_total{name="direct_only",result="failure"}'), 1, 'timeouts are not in failure')
    assert.equal(sample(text, 'circuit_breaker_requests_total{name="direct_only",result="timeout"}'), 1)
    assert.equal(sample(text, `circuit_breaker_failure_rate{name="${evil}"}`), 1)
    assert.equal(sample(text, 'circuit_breaker_failure_rate{name="openai_api"}'), 0)
  })

  test('the latency histogram: cumulative buckets from the middleware; +Inf/sum/count for direct calls', () => {
    const text = prometheusMetrics({ registry, monitor: null })
    assert.match(text, /^# TYPE circuit_breaker_latency_seconds histogram$/m)
    const le = [...text.matchAll(/^circuit_breaker_latency_seconds_bucket\{name="openai_api",le="([^"]+)"\} (\S+)$/gm)]
    assert.equal(le.at(-1)[1], '+Inf')
    assert.equal(Number(le.at(-1)[2]), 3)
    for (let i = 1; i < le.length; i++) assert.ok(Number(le[i][2]) >= Number(le[i - 1][2]), 'cumulative')
    assert.equal(sample(text, 'circuit_breaker_latency_seconds_count{name="openai_api"}'), 3)
    assert.ok(sample(text, 'circuit_breaker_latency_seconds_sum{name="openai_api"}') > 0)
    assert.equal(sample(text, 'circuit_breaker_latency_seconds_bucket{name="direct_only",le="+Inf"}'), 3)
    assert.equal(sample(text, 'circuit_breaker_latency_seconds_count{name="direct_only"}'), 3)
    const sum = sample(text, 'circuit_breaker_latency_seconds_sum{name="direct_only"}')
    assert.ok(Math.abs(sum - 0.14) < 0.005, `sum ${sum} ≈ 40 ms + 0 + 100 ms`)
    assert.doesNotMatch(text, /name="direct_only",le="0.1"/, 'no bucket that cannot be told truthfully')
  })

  test('health and fallback metrics', { skip: skipPromtool }, () => {
    const text = prometheusMetrics({ registry, monitor, fallback: fallbackSource })
    assert.equal(sample(text, 'health_check_status{service="openai_api"}'), 0)
    const evil = HOSTILE.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
    assert.equal(sample(text, `health_check_status{service="${evil}"}`), 2)
    assert.equal(sample(text, 'health_check_latency_seconds{service="openai_api",quantile="0.95"}'), 0.45)
    assert.equal(sample(text, 'health_check_error_rate{service="openai_api"}'), 0.01)
    assert.equal(sample(text, 'health_checks_total{service="openai_api",result="failure"}'), 1)
    assert.equal(sample(text, 'health_checks_total{service="openai_api",result="success"}'), 99)
    assert.match(text, /^# TYPE breakwater_fallback_cache_size gauge$/m)
    assert.equal(sample(text, 'breakwater_fallback_cache_size'), 12)
    assert.match(text, /^# TYPE breakwater_fallback_cache_hits_total counter$/m)
    assert.equal(sample(text, 'breakwater_fallback_cache_hits_total'), 40)
    assert.equal(sample(text, 'breakwater_fallback_queue_dropped_total'), 1)
    assert.equal(sample(text, 'breakwater_fallback_queue_max_size'), 1000)
    assert.equal(sample(text, 'breakwater_fallback_weird_name_'), 1, 'a field name is sanitised into a metric name')
    assert.doesNotMatch(text, /breakwater_fallback_note/)
    promtoolCheck(text)
  })

  test('1 000 breakers with hostile names still pass promtool', { skip: skipPromtool }, () => {
    const big = new CircuitBreakerRegistry()
    for (let i = 0; i < 1000; i++) big.getOrCreate(`${HOSTILE} #${i}`, { clock }).tryAcquire().success()
    promtoolCheck(prometheusMetrics({ registry: big, monitor: null }))
  })

  test('the promtool check is not a rubber stamp: an unescaped newline in a label fails it', { skip: skipPromtool }, () => {
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: '# TYPE x gauge\nx{name="a\nb"} 1\n', encoding: 'utf8' })
    assert.notEqual(r.status, 0)
  })

  test('prometheusMetrics validates its options', () => {
    assert.throws(() => prometheusMetrics({ registy: registry }), { code: 'ERR_INVALID_CONFIG' })
    assert.throws(() => prometheusMetrics({ fallback: {} }), { code: 'ERR_INVALID_CONFIG' })
  })

  test('registerPromClientCollector publishes the same metrics into a prom-client registry', { skip: skipPromtool }, async () => {
    const reg = new promClient.Registry()
    const own = new promClient.Counter({ name: 'app_requests_total', help: "The app's own metric", registers: [reg] })
    own.inc()
    const unregister = registerPromClientCollector(reg, { registry, monitor, fallback: fallbackSource })
    const text = await reg.metrics()
    assert.equal(sample(text, 'app_requests_total'), 1)
    assert.equal(sample(text, 'circuit_breaker_state{name="openai_api"}'), 0)
    assert.equal(sample(text, 'circuit_breaker_requests_total{name="openai_api",result="success"}'), 3)
    assert.equal(sample(text, 'circuit_breaker_latency_seconds_count{name="openai_api"}'), 3)
    assert.equal(sample(text, 'health_check_status{service="openai_api"}'), 0)
    assert.equal(sample(text, 'breakwater_fallback_cache_size'), 12)
    // Every sample of ours is the same as in our own text.
    const ours = prometheusMetrics({ registry, monitor, fallback: fallbackSource })
    const samples = (t) => new Set(t.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('app_')))
    assert.deepEqual(samples(text), samples(ours))
    promtoolCheck(text)
    // Values are read at scrape time.
    registry.get('openai_api').forceOpen()
    assert.equal(sample(await reg.metrics(), 'circuit_breaker_state{name="openai_api"}'), 3)
    registry.get('openai_api').reset()
    const json = await reg.getMetricsAsJSON()
    assert.ok(json.some((m) => m.name === 'circuit_breaker_latency_seconds' && m.type === 'histogram'))
    unregister()
    assert.doesNotMatch(await reg.metrics(), /circuit_breaker_state/)
    assert.equal(sample(await reg.metrics(), 'app_requests_total'), 1)
  })
})
