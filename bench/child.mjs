// Measurements that need a fresh process, one library per process. Run by bench/index.mjs:
//
//   node --expose-gc bench/child.mjs <memory|growth|idle> <bare|breakwater|cockatiel|opossum> '<json params>'
//
// Prints one JSON line on stdout and exits (opossum's interval timers are shut down first).

import { hasGc, settleHeap, newBreakwater, newCockatiel, newOpossum, MiB } from './lib.mjs'

const [mode, lib, paramsJson = '{}'] = process.argv.slice(2)
const params = JSON.parse(paramsJson)
if (!hasGc) throw new Error('bench/child.mjs needs node --expose-gc')

const fn = async () => 42

/** @returns a function that creates the i-th idle breaker of `lib` */
function factoryFor(name) {
  switch (name) {
    case 'breakwater':
      return (i) => newBreakwater(`breaker-${i}`)
    case 'cockatiel':
      return () => newCockatiel()
    case 'opossum':
      return () => newOpossum(fn)
    case 'bare':
      return null
    default:
      throw new Error(`unknown library ${name}`)
  }
}

/** Releases what a breaker holds outside the heap (opossum: its two interval timers). */
function dispose(name, breakers) {
  if (name === 'opossum') for (const b of breakers) b?.shutdown()
}

async function memory() {
  const count = params.count
  const make = factoryFor(lib)
  if (make === null) throw new Error('memory per breaker has no bare variant')
  // Warm up the constructor paths (and load whatever is loaded lazily) before the baseline.
  const warm = []
  for (let i = 0; i < 100; i++) warm.push(make(i))
  dispose(lib, warm)
  warm.length = 0
  const keep = new Array(count).fill(null) // allocated before the baseline: not counted
  await settleHeap()
  const before = process.memoryUsage()
  for (let i = 0; i < count; i++) keep[i] = make(i)
  await settleHeap()
  const after = process.memoryUsage()
  const out = {
    count,
    rssPerBreaker: (after.rss - before.rss) / count,
    heapPerBreaker: (after.heapUsed - before.heapUsed) / count,
    externalPerBreaker: (after.external - before.external) / count,
    rssBefore: before.rss,
    rssAfter: after.rss,
  }
  dispose(lib, keep)
  return out
}

async function growth() {
  const { warmup, calls } = params
  let run
  let breaker
  switch (lib) {
    case 'bare':
      run = async (n) => {
        let s = 0
        for (let i = 0; i < n; i++) s += await fn()
        return s
      }
      break
    case 'breakwater': {
      const b = (breaker = newBreakwater('growth'))
      run = async (n) => {
        let s = 0
        for (let i = 0; i < n; i++) s += await b.call(fn)
        return s
      }
      break
    }
    case 'cockatiel': {
      const p = (breaker = newCockatiel())
      run = async (n) => {
        let s = 0
        for (let i = 0; i < n; i++) s += await p.execute(fn)
        return s
      }
      break
    }
    case 'opossum': {
      const o = (breaker = newOpossum(fn))
      run = async (n) => {
        let s = 0
        for (let i = 0; i < n; i++) s += await o.fire()
        return s
      }
      break
    }
    default:
      throw new Error(`unknown library ${lib}`)
  }
  if (params.prime) {
    // Bring the process (JIT tiers, V8 young generation, malloc arenas of the compiler
    // threads) to its steady state with a breaker-free loop, so that what they grow by is not
    // charged to the breaker.
    let s = 0
    for (let i = 0; i < params.prime; i++) s += await fn()
    if (s !== 42 * params.prime) throw new Error('priming calls returned wrong results')
  }
  if ((await run(warmup)) !== 42 * warmup) throw new Error('warm-up calls returned wrong results')
  await settleHeap()
  const before = process.memoryUsage()
  const t0 = performance.now()
  if ((await run(calls)) !== 42 * calls) throw new Error('calls returned wrong results')
  const ms = performance.now() - t0
  await settleHeap()
  const after = process.memoryUsage()
  const out = {
    calls,
    rssGrowthMiB: (after.rss - before.rss) / MiB,
    heapGrowthMiB: (after.heapUsed - before.heapUsed) / MiB,
    externalGrowthMiB: (after.external - before.external) / MiB,
    ms,
  }
  if (lib === 'breakwater') out.totalRequests = breaker.getMetrics().totalRequests
  if (lib === 'opossum') breaker.shutdown()
  return out
}

async function idle() {
  const { count, idleMs } = params
  const make = factoryFor(lib)
  const keep = []
  if (make !== null) for (let i = 0; i < count; i++) keep.push(make(i))
  await settleHeap()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  // The one timer that keeps the process alive (opossum's own timers are unref'd).
  await new Promise((resolve) => setTimeout(resolve, idleMs))
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  const cpuMs = (cpu.user + cpu.system) / 1000
  dispose(lib, keep)
  return {
    count: make === null ? 0 : count,
    wallMs,
    cpuMs,
    userMs: cpu.user / 1000,
    systemMs: cpu.system / 1000,
    percentOfCore: (cpuMs / wallMs) * 100,
  }
}

const modes = { memory, growth, idle }
if (!(mode in modes)) throw new Error(`unknown mode ${mode}`)
const result = await modes[mode]()
process.stdout.write(`${JSON.stringify({ mode, lib, ...result })}\n`)
// Belt and braces: nothing may keep this process alive.
process.exit(0)
