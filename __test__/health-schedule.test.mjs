// Health monitor scheduling: what is due and when (staggered, never overlapping), start/stop
// driving it on the monitor's clock, HEALTH_CHECK_ENABLED, and a real process that exits by
// itself with a started monitor.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { pathToFileURL } from 'node:url'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deferred } from './helpers.mjs'
import { makeMonitor, drain } from './health-helpers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Registers `n` services whose checks record the clock time of each call. */
function services(monitor, clock, n, options = {}) {
  const calls = new Map()
  for (let i = 0; i < n; i++) {
    const name = `svc${i}`
    calls.set(name, [])
    monitor.registerService(
      name,
      () => {
        calls.get(name).push(clock.now())
        return true
      },
      options,
    )
  }
  return calls
}

test('runDueChecks runs what is due now, staggered through the interval', async () => {
  const { monitor, clock } = makeMonitor()
  const t0 = clock.now()
  const calls = services(monitor, clock, 10, { checkIntervalMs: 1_000 })
  // At registration only the first service is due (its phase is 0).
  assert.deepEqual(
    (await monitor.runDueChecks()).map((h) => h.name),
    ['svc0'],
  )
  assert.deepEqual(await monitor.runDueChecks(), [], 'nothing twice')
  // Over the first interval every service runs once, each at its own time.
  const firstDue = [...calls.keys()].map((name) => monitor.getServiceHealth(name).nextCheckAt)
  for (let t = 1; t < 1_000; t++) {
    clock.set(t0 + t)
    await monitor.runDueChecks()
  }
  const firsts = [...calls.values()].map((c) => c[0] - t0)
  assert.ok(
    firsts.every((t) => t >= 0 && t < 1_000),
    String(firsts),
  )
  assert.equal(new Set(firsts).size, 10, `distinct start times: ${firsts}`)
  // No tenth of the interval holds more than two of the ten services.
  const perTenth = new Array(10).fill(0)
  for (const t of firsts) perTenth[Math.floor(t / 100)]++
  assert.ok(Math.max(...perTenth) <= 2, String(perTenth))
  // Each first check ran at its announced due time (rounded up to the next whole ms here).
  firstDue.slice(1).forEach((due, i) => assert.equal(firsts[i + 1], Math.ceil(due - t0)))
})

test('the schedule keeps its grid and skips missed slots instead of catching up', async () => {
  const { monitor, clock } = makeMonitor()
  const t0 = clock.now()
  const calls = services(monitor, clock, 1, { checkIntervalMs: 1_000 })
  await monitor.runDueChecks()
  clock.set(t0 + 10_500) // ten intervals late
  await monitor.runDueChecks()
  await monitor.runDueChecks()
  assert.deepEqual(
    calls.get('svc0').map((t) => t - t0),
    [0, 10_500],
    'one check, not ten',
  )
  assert.equal(monitor.getServiceHealth('svc0').nextCheckAt, t0 + 11_000)
})

test('a slow check is never overlapped by its next scheduled one', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  let calls = 0
  monitor.registerService(
    'slow',
    () => {
      calls++
      return calls === 1 ? d.promise : true
    },
    { checkIntervalMs: 1_000, checkTimeoutMs: 5_000 },
  )
  const first = monitor.runDueChecks()
  clock.advance(1_000)
  assert.deepEqual(await monitor.runDueChecks(), [])
  clock.advance(1_000)
  assert.deepEqual(await monitor.runDueChecks(), [])
  assert.equal(calls, 1)
  d.resolve(true)
  const [h] = await first
  assert.equal(h.totalChecks, 1)
  clock.advance(1_000)
  assert.equal((await monitor.runDueChecks()).length, 1)
  assert.equal(calls, 2)
})

test("start() drives the schedule on the monitor's clock; stop() stops it", async () => {
  const { monitor, clock } = makeMonitor()
  const t0 = clock.now()
  const calls = services(monitor, clock, 5, { checkIntervalMs: 1_000 })
  assert.equal(clock.pendingTimers, 0, 'nothing runs before start()')
  await monitor.start()
  assert.equal(monitor.running, true)
  assert.equal(clock.pendingTimers, 1, 'one shared timer, however many services')
  clock.advance(10_000)
  // 10 intervals: svc0 (phase 0) ran at 0, 1000, ..., 10000; the others 10 times each.
  const counts = [...calls.values()].map((c) => c.length)
  assert.deepEqual(counts, [11, 10, 10, 10, 10])
  for (const c of calls.values()) {
    const gaps = c.slice(1).map((t, i) => t - c[i])
    assert.ok(
      gaps.every((g) => Math.abs(g - 1_000) <= 1),
      `every ~1000 ms: ${gaps}`,
    )
  }
  assert.equal(clock.pendingTimers, 1)
  await monitor.stop()
  assert.equal(monitor.running, false)
  assert.equal(clock.pendingTimers, 0)
  clock.advance(10_000)
  assert.deepEqual(
    [...calls.values()].map((c) => c.length),
    counts,
    'nothing after stop()',
  )
  assert.ok(calls.get('svc0')[0] === t0)
})

test('start() re-anchors the schedule: a late start does not fire every overdue check at once', async () => {
  const { monitor, clock } = makeMonitor()
  const calls = services(monitor, clock, 3, { checkIntervalMs: 1_000 })
  clock.advance(60_000)
  await monitor.start()
  clock.advance(0)
  assert.deepEqual(
    [...calls.values()].map((c) => c.length),
    [1, 0, 0],
  )
  clock.advance(999)
  assert.deepEqual(
    [...calls.values()].map((c) => c.length),
    [1, 1, 1],
  )
  await monitor.stop()
})

test('services registered while running are picked up; unregistered ones stop', async () => {
  const { monitor, clock } = makeMonitor()
  await monitor.start()
  assert.equal(clock.pendingTimers, 0, 'no timer without services')
  let a = 0
  monitor.registerService('a', () => ++a > 0, { checkIntervalMs: 1_000 })
  assert.equal(clock.pendingTimers, 1)
  clock.advance(2_500)
  assert.equal(a, 3)
  monitor.unregisterService('a')
  clock.advance(5_000)
  assert.equal(a, 3)
  assert.equal(clock.pendingTimers, 0, 'the timer is not re-armed without services')
  await monitor.stop()
})

test('start() twice is harmless; stop() waits for the checks in flight', async () => {
  const { monitor, clock } = makeMonitor()
  const d = deferred()
  monitor.registerService('svc', () => d.promise, { checkIntervalMs: 1_000 })
  await monitor.start()
  await monitor.start()
  assert.equal(clock.pendingTimers, 1)
  clock.advance(0) // the first check starts, with its timeout timer
  let stopped = false
  const stopping = monitor.stop().then(() => {
    stopped = true
  })
  await drain()
  assert.equal(stopped, false, 'the check is still running')
  d.resolve(true)
  await stopping
  assert.equal(monitor.getServiceHealth('svc').totalChecks, 1)
  assert.equal(clock.pendingTimers, 0)
})

test('HEALTH_CHECK_ENABLED=false makes start() a logged no-op; a bad value names the variable', async (t) => {
  const saved = process.env.HEALTH_CHECK_ENABLED
  t.after(() => {
    if (saved === undefined) delete process.env.HEALTH_CHECK_ENABLED
    else process.env.HEALTH_CHECK_ENABLED = saved
  })
  const { monitor, clock } = makeMonitor()
  monitor.registerService('svc', () => true)
  const warn = t.mock.method(console, 'warn', () => {})
  process.env.HEALTH_CHECK_ENABLED = 'false'
  await monitor.start()
  assert.equal(monitor.running, false)
  assert.equal(clock.pendingTimers, 0)
  assert.equal(warn.mock.callCount(), 1)
  assert.match(warn.mock.calls[0].arguments[0], /HEALTH_CHECK_ENABLED is false, so the health monitor was not started/)
  // Checks on demand still work.
  assert.equal((await monitor.checkServiceHealth('svc')).status, 'healthy')

  process.env.HEALTH_CHECK_ENABLED = 'maybe'
  await assert.rejects(monitor.start(), { code: 'ERR_INVALID_CONFIG', message: /HEALTH_CHECK_ENABLED = "maybe" \(expected true or false/ })
  assert.equal(monitor.running, false)

  process.env.HEALTH_CHECK_ENABLED = 'true'
  await monitor.start()
  assert.equal(monitor.running, true)
  await monitor.stop()
})

test('a process with a started monitor exits by itself once its own work is done', async () => {
  const entry = pathToFileURL(join(root, 'index.mjs')).href
  const script = `
    import { HealthMonitor } from ${JSON.stringify(entry)}
    const monitor = new HealthMonitor({ registry: null })
    let checks = 0
    monitor.registerService('fast', () => { checks++; return true }, { checkIntervalMs: 100 })
    // A check that never settles, with a long timeout: its timer must not hold the process either.
    monitor.registerService('hung', () => new Promise(() => {}), { checkIntervalMs: 100, checkTimeoutMs: 60000 })
    await monitor.start()
    // The process's own work: 450 ms, during which the monitor checks in the background.
    setTimeout(() => console.log(JSON.stringify({ checks, running: monitor.running })), 450)
  `
  const started = performance.now()
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, HEALTH_CHECK_ENABLED: 'true', HEALTH_CHECK_INTERVAL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (b) => (out += b))
  child.stderr.on('data', (b) => (err += b))
  // The bound: if the monitor held the process, it would run until this kills it.
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  try {
    const [code, signal] = await once(child, 'exit')
    const elapsed = performance.now() - started
    assert.equal(signal, null, `killed after ${elapsed} ms: the monitor kept the process alive\n${err}`)
    assert.equal(code, 0, err)
    assert.ok(elapsed < 5_000, `exited after ${elapsed} ms`)
    const report = JSON.parse(out)
    assert.equal(report.running, true)
    assert.ok(report.checks >= 3, `checks ran in the background: ${report.checks}`)
  } finally {
    clearTimeout(killer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})
