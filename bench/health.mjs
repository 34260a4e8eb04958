// Health monitor benchmark: `node --expose-gc bench/health.mjs` (add `--quick` for 3 s runs).
// 1. 1 000 services checked every second with trivial checks for 10 s, real time: the CPU the
//    monitor uses beyond the checks themselves (target ≤ 5 % of a core). The checks' own cost is
//    measured separately (the same check called 10 000 times in a loop) and subtracted; a
//    baseline that runs the same checks with bare setInterval is shown for comparison.
// 2. getHealthSummary() over 1 000 services (target ≤ 2 ms).
// 3. Memory per registered service with a full history (target ≤ 16 KB), from the growth of
//    the resident set (JS heap and native allocations together) over 2 000 services.
import { HealthMonitor, ManualClock } from '../index.mjs'

const quick = process.argv.includes('--quick')
const SERVICES = 1_000
const RUN_MS = quick ? 3_000 : 10_000
const gc = globalThis.gc ?? (() => {})
if (globalThis.gc === undefined) console.warn('run with --expose-gc for stable memory figures')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
/** The trivial check: an async function that succeeds. */
const trivialCheck = async () => true

/** CPU (ms) and wall time (ms) spent while `fn` runs. */
async function measureCpu(fn) {
  gc()
  const c0 = cpuMs()
  const t0 = performance.now()
  const extra = await fn()
  return { cpu: cpuMs() - c0, wall: performance.now() - t0, ...extra }
}

/** The checks' own cost: `n` sequential calls, awaited, as the monitor would call them. */
async function checksOwnCost(n) {
  const r = await measureCpu(async () => {
    for (let i = 0; i < n; i++) await trivialCheck()
  })
  return r.cpu
}

async function monitorRun() {
  const monitor = new HealthMonitor({ registry: null })
  let checks = 0
  monitor.on('check', () => {}) // a listener, as a real deployment would have (health in the event)
  for (let i = 0; i < SERVICES; i++) {
    monitor.registerService(
      `svc${i}`,
      () => {
        checks++
        return trivialCheck()
      },
      { checkIntervalMs: 1_000 },
    )
  }
  await monitor.start()
  await sleep(1_000) // one interval to reach the steady state
  const r = await measureCpu(async () => {
    const before = checks
    await sleep(RUN_MS)
    return { checks: checks - before }
  })
  await monitor.stop()
  return { ...r, monitor }
}

async function setIntervalRun() {
  let checks = 0
  const timers = []
  // Staggered like the monitor, one timer per service.
  for (let i = 0; i < SERVICES; i++) {
    timers.push(
      setTimeout(
        () => {
          timers[i] = setInterval(() => {
            checks++
            trivialCheck().then(() => {})
          }, 1_000)
        },
        (i * 1_000) / SERVICES,
      ),
    )
  }
  await sleep(1_000)
  const r = await measureCpu(async () => {
    const before = checks
    await sleep(RUN_MS)
    return { checks: checks - before }
  })
  for (const t of timers) clearInterval(t)
  return r
}

function summaryTiming(monitor) {
  const s = monitor.getHealthSummary()
  if (s.totalServices !== SERVICES || Object.keys(s.services).length !== SERVICES || s.services.svc0.totalChecks === 0) {
    throw new Error('the summary does not cover every service')
  }
  for (let i = 0; i < 20; i++) monitor.getHealthSummary()
  const times = []
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now()
    monitor.getHealthSummary()
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return { median: times[100], p95: times[190] }
}

/** `n` services on a ManualClock, each checked `rounds` times. */
async function filledMonitor(n, rounds = 101) {
  const clock = new ManualClock(0)
  const monitor = new HealthMonitor({ registry: null, clock })
  for (let i = 0; i < n; i++) monitor.registerService(`service_${i}`, () => true, { checkIntervalMs: 1_000 })
  for (let k = 0; k < rounds; k++) {
    await monitor.runDueChecks()
    clock.advance(1_000)
  }
  return monitor
}

async function settleHeap() {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(20)
  }
}

async function memoryPerService() {
  const N = 2_000
  // Warm-up: the same number of checks over 20 services, so that V8's heap spaces reach the
  // size this much garbage needs before the baseline is taken (that growth is not per
  // service), while almost no native memory is allocated, freed and then reused.
  await filledMonitor(20, (N / 20) * 101)
  await settleHeap()
  const m0 = process.memoryUsage()
  const monitor = await filledMonitor(N)
  await settleHeap()
  const m1 = process.memoryUsage()
  const full = monitor.getHealthSummary().services.service_0.totalChecks > 100
  return {
    full,
    rss: (m1.rss - m0.rss) / N,
    heap: (m1.heapUsed - m0.heapUsed) / N,
    keep: monitor,
  }
}

const kb = (b) => `${(b / 1024).toFixed(1)} KB`
const pct = (x) => `${x.toFixed(2)} %`

const own = await checksOwnCost(SERVICES * (RUN_MS / 1_000))
const base = await setIntervalRun()
const mon = await monitorRun()
const summary = summaryTiming(mon.monitor)
const mem = await memoryPerService()

const monitorPct = (mon.cpu / mon.wall) * 100
const beyondChecksPct = ((mon.cpu - own) / mon.wall) * 100
const beyondIntervalPct = ((mon.cpu - base.cpu) / mon.wall) * 100
const basePct = (base.cpu / base.wall) * 100

const rows = [
  ['monitor CPU beyond the checks (1 000 services, 1 s interval)', pct(beyondChecksPct), '≤ 5 % of a core', beyondChecksPct <= 5],
  ['getHealthSummary(), 1 000 services (median)', `${summary.median.toFixed(3)} ms`, '≤ 2 ms', summary.median <= 2],
  ['memory per service, full history (resident set)', kb(mem.rss), '≤ 16 KB', mem.rss <= 16 * 1024 && mem.full],
]
console.log(`\nHealth monitor (node ${process.version}, ${RUN_MS / 1000} s runs)\n`)
console.log('| measure | result | target | |')
console.log('|---|---|---|---|')
for (const [what, result, target, ok] of rows) console.log(`| ${what} | ${result} | ${target} | ${ok ? 'pass' : 'FAIL'} |`)
console.log('\nDetails:\n')
console.log('| | value |')
console.log('|---|---|')
console.log(`| checks run by the monitor in ${RUN_MS / 1000} s | ${mon.checks} |`)
console.log(`| monitor process CPU, total | ${pct(monitorPct)} |`)
console.log(`| the checks' own cost (same number of calls in a loop) | ${pct((own / mon.wall) * 100)} |`)
console.log(`| bare setInterval baseline running the same checks (${base.checks} checks) | ${pct(basePct)} |`)
console.log(`| monitor CPU beyond the setInterval baseline | ${pct(beyondIntervalPct)} |`)
console.log(`| getHealthSummary() p95 | ${summary.p95.toFixed(3)} ms |`)
console.log(`| memory per service: JS heap part | ${kb(mem.heap)} |`)
console.log(`| history full (100 checks) when measured | ${mem.full} |`)
process.exitCode = rows.every((r) => r[3]) ? 0 : 1
