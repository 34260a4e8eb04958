// The benchmark harness: breakwater against opossum, cockatiel and a bare `await fn()`, in one
// run, in alternating rounds. See bench/README.md.
//
//   npm run bench                          (node --expose-gc bench/index.mjs)
//   BENCH_QUICK=1 npm run bench            a fast smoke run (few rounds, small N)
//   BENCH_ONLY=closed,metrics npm run bench
//
// Prints markdown tables and writes bench/results/latest.json.

import os from 'node:os'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import { CircuitState, isIsolatedCircuitError } from 'cockatiel'
import { ManualClock, isCircuitOpenError } from '../index.mjs'
import {
  CONTENDERS,
  hasGc,
  gc,
  settleHeap,
  newBreakwater,
  newCockatiel,
  newOpossum,
  rngFrom,
  logUniform,
  median,
  min,
  max,
  fmt,
  ratio,
  fmtRatio,
  table,
  packageVersion,
} from './lib.mjs'

// ---------------------------------------------------------------------------------------------
// configuration

const MEASURES = ['closed', 'failures', 'rejected', 'inflight', 'metrics', 'memory', 'growth', 'idle']
const QUICK = !['', '0', 'false', undefined].includes(process.env.BENCH_QUICK)
const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
for (const m of ONLY) {
  if (!MEASURES.includes(m)) {
    console.error(`BENCH_ONLY: unknown measure ${JSON.stringify(m)}; known: ${MEASURES.join(', ')}`)
    process.exit(2)
  }
}
const selected = (m) => ONLY.length === 0 || ONLY.includes(m)

const CFG = QUICK
  ? {
      rounds: 3,
      warmupRounds: 1,
      closedOps: 20_000,
      failureOps: 1_000,
      rejectedOps: 5_000,
      inflightBatches: 10,
      inflightSize: 1_000,
      metricsSizes: [1_000, 100_000],
      metricsReads: { breakwater: 200, opossum: { 1000: 30, 100000: 2 } },
      memoryCount: 10_000,
      memoryRepeats: 1,
      growthPrime: 100_000,
      growthWarmup: 10_000,
      growthCalls: 100_000,
      growthRepeats: 1,
      idleCount: 10_000,
      idleMs: 1_500, // opossum's interval timers first fire 1 s after creation
    }
  : {
      rounds: 7,
      warmupRounds: 1,
      closedOps: 1_000_000,
      failureOps: 10_000,
      rejectedOps: 100_000,
      inflightBatches: 200,
      inflightSize: 1_000,
      metricsSizes: [1_000, 100_000],
      metricsReads: { breakwater: 5_000, opossum: { 1000: 300, 100000: 8 } },
      memoryCount: 10_000,
      memoryRepeats: 3,
      growthPrime: 1_000_000,
      growthWarmup: 10_000,
      growthCalls: 1_000_000,
      growthRepeats: 3,
      idleCount: 10_000,
      idleMs: 3_000,
    }

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url))
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

const now = () => performance.now()

class SanityError extends Error {}
function check(cond, message) {
  if (!cond) throw new SanityError(`sanity check failed: ${message}`)
}

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))

// ---------------------------------------------------------------------------------------------
// the round runner

/**
 * Runs every contender once per round, in an order rotated by one each round, after
 * `warmupRounds` unrecorded rounds. Each contender function runs `n` ops, times itself and
 * returns its cost per op; gc runs before each, outside the timing.
 */
async function runRounds(fns, n) {
  const names = Object.keys(fns)
  const per = Object.fromEntries(names.map((k) => [k, []]))
  const total = CFG.warmupRounds + CFG.rounds
  for (let r = 0; r < total; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]
      // One turn of the event loop between runs, outside the timing: the loops below never
      // leave the microtask queue, so this is where due timers run and where node drains its
      // list of promises rejected before a handler was attached (it would otherwise grow
      // across runs and slow down whichever contender comes later).
      await yieldToLoop()
      gc()
      const v = await fns[name](n)
      if (r >= CFG.warmupRounds) per[name].push(v)
    }
  }
  return per
}

function summarise(per, unit, extra = {}) {
  const out = { unit, ...extra, rounds: per, median: {}, min: {}, max: {} }
  for (const [k, xs] of Object.entries(per)) {
    out.median[k] = median(xs)
    out.min[k] = min(xs)
    out.max[k] = max(xs)
  }
  return out
}

function printRoundsTable(res, unitLabel) {
  const med = res.median
  const rows = CONTENDERS.filter((c) => c in med).map((c) => [
    c,
    fmt(med[c]),
    fmt(res.min[c]),
    fmt(res.max[c]),
    fmtRatio(ratio(med[c], med.bare)),
    fmtRatio(ratio(med[c], med.cockatiel)),
  ])
  console.log(table(['contender', `median ${unitLabel}`, 'min', 'max', 'vs bare', 'vs cockatiel'], rows, 'lrrrrr'))
}

// ---------------------------------------------------------------------------------------------
// 1. a protected call in the closed state

async function measureClosed() {
  const fn = async () => 42
  // Every run gets a fresh breaker, made outside the timing: opossum keeps every latency of
  // the last 10 s, and a long-lived one would fill this process's heap with them and slow
  // down (through gc) whoever runs next.
  const fns = {
    bare: async (n) => {
      let s = 0
      const t0 = now()
      for (let i = 0; i < n; i++) s += await fn()
      const ms = now() - t0
      check(s === 42 * n, 'bare results')
      return (ms * 1e6) / n
    },
    breakwater: async (n) => {
      const b = newBreakwater('bench-closed')
      let s = 0
      const t0 = now()
      for (let i = 0; i < n; i++) s += await b.call(fn)
      const ms = now() - t0
      check(s === 42 * n, 'breakwater results')
      const m = b.getMetrics()
      check(b.state === 'closed' && m.totalRequests === n && m.successfulRequests === n, 'breakwater stayed closed and counted every call')
      return (ms * 1e6) / n
    },
    cockatiel: async (n) => {
      const ck = newCockatiel()
      let s = 0
      const t0 = now()
      for (let i = 0; i < n; i++) s += await ck.execute(fn)
      const ms = now() - t0
      check(s === 42 * n, 'cockatiel results')
      check(ck.state === CircuitState.Closed, 'cockatiel stayed closed')
      return (ms * 1e6) / n
    },
    opossum: async (n) => {
      const o = newOpossum(fn)
      let s = 0
      const t0 = now()
      for (let i = 0; i < n; i++) s += await o.fire()
      const ms = now() - t0
      check(s === 42 * n, 'opossum results')
      check(o.closed, 'opossum stayed closed')
      o.shutdown()
      return (ms * 1e6) / n
    },
  }
  const per = await runRounds(fns, CFG.closedOps)
  return summarise(per, 'ns/op', { ops: CFG.closedOps })
}

// ---------------------------------------------------------------------------------------------
// 2. 50 % failures, without tripping

/** Alternately resolves 42 and throws a fresh Error (with its stack), as a real failure does. */
function makeFlaky() {
  let i = 0
  return async () => {
    if ((i++ & 1) === 1) throw new Error('boom')
    return 42
  }
}

async function measureFailures() {
  // A fresh breaker per round for every contender: opossum recomputes its whole window's
  // stats (every latency in the last 10 s) on each failure, so its cost depends on how many
  // calls it has seen; a fresh breaker makes every round the same N-call burst.
  const verify = (who, ok, bad, last, n) => {
    check(ok === 42 * (n / 2) && bad === n / 2, `${who}: half the calls succeeded, half failed`)
    check(last instanceof Error && last.message === 'boom', `${who}: the failure is the fn's own error`)
  }
  const fns = {
    bare: async (n) => {
      const fn = makeFlaky()
      let ok = 0
      let bad = 0
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          ok += await fn()
        } catch (e) {
          bad++
          last = e
        }
      }
      const ms = now() - t0
      verify('bare', ok, bad, last, n)
      return (ms * 1e6) / n
    },
    breakwater: async (n) => {
      const fn = makeFlaky()
      const b = newBreakwater('bench-failures', { failureThreshold: 1_000_000, failureRateThreshold: 1 })
      let ok = 0
      let bad = 0
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          ok += await b.call(fn)
        } catch (e) {
          bad++
          last = e
        }
      }
      const ms = now() - t0
      verify('breakwater', ok, bad, last, n)
      const m = b.getMetrics()
      check(b.state === 'closed' && m.openCount === 0, 'breakwater never opened')
      check(m.failedRequests === n / 2 && m.successfulRequests === n / 2, 'breakwater counted every outcome')
      return (ms * 1e6) / n
    },
    cockatiel: async (n) => {
      const fn = makeFlaky()
      const ck = newCockatiel(0.99)
      let breaks = 0
      const sub = ck.onBreak(() => breaks++)
      let ok = 0
      let bad = 0
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          ok += await ck.execute(fn)
        } catch (e) {
          bad++
          last = e
        }
      }
      const ms = now() - t0
      verify('cockatiel', ok, bad, last, n)
      check(breaks === 0 && ck.state === CircuitState.Closed, 'cockatiel never opened')
      sub.dispose()
      return (ms * 1e6) / n
    },
    opossum: async (n) => {
      const fn = makeFlaky()
      const o = newOpossum(fn, { errorThresholdPercentage: 100, volumeThreshold: Number.MAX_SAFE_INTEGER })
      let opens = 0
      o.on('open', () => opens++)
      let ok = 0
      let bad = 0
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          ok += await o.fire()
        } catch (e) {
          bad++
          last = e
        }
      }
      const ms = now() - t0
      verify('opossum', ok, bad, last, n)
      check(opens === 0 && o.closed, 'opossum never opened')
      o.shutdown()
      return (ms * 1e6) / n
    },
  }
  const per = await runRounds(fns, CFG.failureOps)
  return summarise(per, 'ns/op', { ops: CFG.failureOps })
}

// ---------------------------------------------------------------------------------------------
// 3. a rejected call while open

async function measureRejected() {
  let ran = 0
  const fn = async () => {
    ran++
    return 42
  }
  const floorError = new Error('down')
  // A fresh breaker per run, opened outside the timing.
  const fns = {
    // The floor: awaiting an already rejected promise, the least any rejection can cost.
    bare: async (n) => {
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          await Promise.reject(floorError)
        } catch (e) {
          last = e
        }
      }
      const ms = now() - t0
      check(last === floorError, 'bare rejections')
      return (ms * 1e6) / n
    },
    breakwater: async (n) => {
      const b = newBreakwater('bench-open')
      b.openFor(1e9, 'bench')
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          await b.call(fn)
        } catch (e) {
          last = e
        }
      }
      const ms = now() - t0
      check(isCircuitOpenError(last) && last.code === 'ERR_CIRCUIT_OPEN', 'breakwater rejected with ERR_CIRCUIT_OPEN')
      check(b.getMetrics().rejectedRequests === n, 'breakwater counted every rejection')
      return (ms * 1e6) / n
    },
    cockatiel: async (n) => {
      const ck = newCockatiel()
      const isolation = ck.isolate()
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          await ck.execute(fn)
        } catch (e) {
          last = e
        }
      }
      const ms = now() - t0
      check(isIsolatedCircuitError(last), 'cockatiel rejected with IsolatedCircuitError')
      isolation.dispose()
      return (ms * 1e6) / n
    },
    opossum: async (n) => {
      const o = newOpossum(fn)
      o.open()
      let last
      const t0 = now()
      for (let i = 0; i < n; i++) {
        try {
          await o.fire()
        } catch (e) {
          last = e
        }
      }
      const ms = now() - t0
      check(last?.code === 'EOPENBREAKER', 'opossum rejected with EOPENBREAKER')
      o.shutdown()
      return (ms * 1e6) / n
    },
  }
  const per = await runRounds(fns, CFG.rejectedOps)
  check(ran === 0, 'no protected fn ran while open')
  return summarise(per, 'ns/op', { ops: CFG.rejectedOps })
}

// ---------------------------------------------------------------------------------------------
// 4. 1 000 calls in flight

async function measureInflight() {
  const size = CFG.inflightSize
  let gate
  let release
  const fn = async () => {
    await gate
    return 42
  }
  const close = () => {
    gate = new Promise((resolve) => {
      release = resolve
    })
  }
  const ps = new Array(size)
  const perCall = (ms, batches) => (ms * 1e6) / (batches * size)
  // `batches` times: start `size` calls that wait on one shared deferred promise, resolve it,
  // await them all; reported per call. A fresh breaker per run, made outside the timing. The
  // loops are written out per contender so that none shares a (megamorphic) call site.
  const fns = {
    bare: async (batches) => {
      let s = 0
      const t0 = now()
      for (let k = 0; k < batches; k++) {
        close()
        for (let i = 0; i < size; i++) ps[i] = fn()
        release()
        const r = await Promise.all(ps)
        s += r[0] + r[size - 1]
      }
      const ms = now() - t0
      check(s === 84 * batches, 'bare results')
      return perCall(ms, batches)
    },
    breakwater: async (batches) => {
      const b = newBreakwater('bench-inflight')
      let s = 0
      const t0 = now()
      for (let k = 0; k < batches; k++) {
        close()
        for (let i = 0; i < size; i++) ps[i] = b.call(fn)
        release()
        const r = await Promise.all(ps)
        s += r[0] + r[size - 1]
      }
      const ms = now() - t0
      check(s === 84 * batches, 'breakwater results')
      check(b.getMetrics().successfulRequests === batches * size, 'breakwater counted every call')
      return perCall(ms, batches)
    },
    cockatiel: async (batches) => {
      const ck = newCockatiel()
      let s = 0
      const t0 = now()
      for (let k = 0; k < batches; k++) {
        close()
        for (let i = 0; i < size; i++) ps[i] = ck.execute(fn)
        release()
        const r = await Promise.all(ps)
        s += r[0] + r[size - 1]
      }
      const ms = now() - t0
      check(s === 84 * batches, 'cockatiel results')
      return perCall(ms, batches)
    },
    opossum: async (batches) => {
      const o = newOpossum(fn)
      let s = 0
      const t0 = now()
      for (let k = 0; k < batches; k++) {
        close()
        for (let i = 0; i < size; i++) ps[i] = o.fire()
        release()
        const r = await Promise.all(ps)
        s += r[0] + r[size - 1]
      }
      const ms = now() - t0
      check(s === 84 * batches, 'opossum results')
      o.shutdown()
      return perCall(ms, batches)
    },
  }
  const per = await runRounds(fns, CFG.inflightBatches)
  return summarise(per, 'ns/call', { batches: CFG.inflightBatches, inFlight: size })
}

// ---------------------------------------------------------------------------------------------
// 5. one getMetrics() read with 1 000 and 100 000 calls in the window

/** A binary min-heap of (time, value). */
class MinHeap {
  t = []
  v = []
  get size() {
    return this.t.length
  }
  peek() {
    return this.t[0]
  }
  push(t, v) {
    const T = this.t
    const V = this.v
    let i = T.length
    T.push(t)
    V.push(v)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (T[p] <= t) break
      T[i] = T[p]
      V[i] = V[p]
      i = p
    }
    T[i] = t
    V[i] = v
  }
  /** Removes the smallest; returns its value (its time was `peek()`). */
  pop() {
    const T = this.t
    const V = this.v
    const top = V[0]
    const lt = T.pop()
    const lv = V.pop()
    const n = T.length
    if (n > 0) {
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= n) break
        if (c + 1 < n && T[c + 1] < T[c]) c++
        if (T[c] >= lt) break
        T[i] = T[c]
        V[i] = V[c]
        i = c
      }
      T[i] = lt
      V[i] = lv
    }
    return top
  }
}

const WINDOW_MS = 60_000 // breakwater's default rolling window
const MAX_LATENCY_MS = 2_000

/**
 * Breakwater with a ManualClock, driven as a steady stream of calls: starts arrive at random
 * (exponential gaps, sized so about `n` calls complete per window), each lasting a log-uniform
 * 1..2000 ms; `step()` runs the stream up to the next completion. The window slides as it
 * would in production, so each read sees a full window and one new call.
 */
function breakwaterRig(n, seed) {
  const clock = new ManualClock(0)
  const b = newBreakwater(`bench-metrics-${n}`, { clock, rollingWindowMs: WINDOW_MS })
  const rng = rngFrom(seed)
  const meanGap = (0.9 * WINDOW_MS) / n // ~n..1.1n calls in the window: it drops whole buckets
  const heap = new MinHeap()
  let nextStart = 0
  const step = () => {
    for (;;) {
      if (heap.size === 0 || nextStart <= heap.peek()) {
        clock.set(nextStart)
        const permit = b.tryAcquire()
        if (permit === null) throw new SanityError('sanity check failed: breakwater refused a call in the metrics rig')
        heap.push(nextStart + logUniform(rng, 1, MAX_LATENCY_MS), permit)
        nextStart += -meanGap * Math.log(1 - rng())
      } else {
        const end = heap.peek()
        const permit = heap.pop()
        clock.set(end)
        permit.success()
        return
      }
    }
  }
  while (clock.now() < WINDOW_MS + MAX_LATENCY_MS) step()
  return {
    name: 'breakwater',
    n,
    fillCalls: b.getMetrics().totalRequests,
    read: (reads) => {
      let ms = 0
      let lo = Infinity
      let hi = 0
      let sink = 0
      for (let k = 0; k < reads; k++) {
        step()
        const t0 = now()
        const m = b.getMetrics()
        ms += now() - t0
        const c = m.window.totalRequests
        if (c < lo) lo = c
        if (c > hi) hi = c
        sink += m.window.latencyP99Ms
      }
      check(sink > 0 && Number.isFinite(sink), 'breakwater percentiles are numbers')
      return { usPerRead: (ms * 1e3) / reads, lo, hi }
    },
    close() {},
  }
}

/**
 * opossum at its defaults, except `rotateBucketController`: its window then rotates every
 * n/9 calls (not every second of wall time), so it holds ~n..1.1n calls however long the
 * reads take. Its latencies are whole Date.now() milliseconds, ~0 here, so each recorded
 * latency is replaced with the same log-uniform 1..2000 ms as breakwater gets: the sort inside
 * `stats` then works on a realistic array.
 */
async function opossumRig(n, seed) {
  const rotate = new EventEmitter()
  const fn = async () => 42
  const o = newOpossum(fn, { rotateBucketController: rotate })
  const rng = rngFrom(seed)
  const perBucket = Math.ceil(n / 9)
  let inBucket = 0
  const step = async () => {
    await o.fire()
    const lt = o.status.window[0].latencyTimes
    lt[lt.length - 1] = Math.round(logUniform(rng, 1, MAX_LATENCY_MS))
    if (++inBucket >= perBucket) {
      rotate.emit('rotate')
      inBucket = 0
    }
  }
  for (let i = 0; i < n; i++) await step()
  return {
    name: 'opossum',
    n,
    fillCalls: n,
    read: async (reads) => {
      let ms = 0
      let lo = Infinity
      let hi = 0
      let sink = 0
      for (let k = 0; k < reads; k++) {
        await step()
        const t0 = now()
        const s = o.stats
        ms += now() - t0
        const c = s.fires
        if (c < lo) lo = c
        if (c > hi) hi = c
        sink += s.percentiles[0.99]
      }
      check(sink > 0, 'opossum percentiles are numbers')
      return { usPerRead: (ms * 1e3) / reads, lo, hi }
    },
    close: () => o.shutdown(),
  }
}

async function measureMetrics() {
  const rigs = []
  for (const n of CFG.metricsSizes) {
    const t0 = now()
    rigs.push(breakwaterRig(n, 42 + n))
    const t1 = now()
    rigs.push(await opossumRig(n, 42 + n))
    console.log(`  (filled ${n.toLocaleString('en-US')}-call windows: breakwater ${fmt(t1 - t0)} ms, opossum ${fmt(now() - t1)} ms)`)
  }
  const per = {}
  const spans = {}
  for (const r of rigs) {
    per[`${r.name}@${r.n}`] = []
    spans[`${r.name}@${r.n}`] = [Infinity, 0]
  }
  const total = CFG.warmupRounds + CFG.rounds
  for (let round = 0; round < total; round++) {
    for (let i = 0; i < rigs.length; i++) {
      const rig = rigs[(i + round) % rigs.length]
      const key = `${rig.name}@${rig.n}`
      const reads = rig.name === 'breakwater' ? CFG.metricsReads.breakwater : CFG.metricsReads.opossum[rig.n]
      await yieldToLoop()
      gc()
      const { usPerRead, lo, hi } = await rig.read(reads)
      if (round >= CFG.warmupRounds) {
        per[key].push(usPerRead)
        spans[key][0] = Math.min(spans[key][0], lo)
        spans[key][1] = Math.max(spans[key][1], hi)
      }
    }
  }
  for (const r of rigs) r.close()
  const out = { unit: 'µs/read', sizes: CFG.metricsSizes, reads: CFG.metricsReads, bySize: {} }
  for (const n of CFG.metricsSizes) {
    const entry = { median: {}, min: {}, max: {}, rounds: {}, callsInWindow: {} }
    for (const lib of ['breakwater', 'opossum']) {
      const xs = per[`${lib}@${n}`]
      entry.rounds[lib] = xs
      entry.median[lib] = median(xs)
      entry.min[lib] = min(xs)
      entry.max[lib] = max(xs)
      entry.callsInWindow[lib] = spans[`${lib}@${n}`]
    }
    entry.median.cockatiel = 'no stats'
    out.bySize[n] = entry
  }
  return out
}

function printMetricsTable(res) {
  const rows = []
  for (const n of res.sizes) {
    const e = res.bySize[n]
    for (const lib of ['breakwater', 'opossum']) {
      const [lo, hi] = e.callsInWindow[lib]
      rows.push([
        `${lib}`,
        n.toLocaleString('en-US'),
        `${lo.toLocaleString('en-US')}–${hi.toLocaleString('en-US')}`,
        fmt(e.median[lib]),
        fmt(e.min[lib]),
        fmt(e.max[lib]),
        lib === 'breakwater' ? fmtRatio(ratio(e.median.opossum, e.median.breakwater)) + ' faster' : '',
      ])
    }
    rows.push(['cockatiel', n.toLocaleString('en-US'), '—', 'no stats', '', '', ''])
  }
  console.log(table(['contender', 'window', 'calls in window (min–max)', 'median µs/read', 'min', 'max', 'vs opossum'], rows, 'lrrrrrr'))
}

// ---------------------------------------------------------------------------------------------
// 6-8. child processes

function runChild(mode, lib, params) {
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD, mode, lib, JSON.stringify(params)], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`child ${mode} ${lib} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`)
  if (r.stderr.trim() !== '') console.warn(`  (child ${mode} ${lib} stderr: ${r.stderr.trim()})`)
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

async function measureMemory() {
  const libs = ['breakwater', 'cockatiel', 'opossum']
  const runs = Object.fromEntries(libs.map((l) => [l, []]))
  for (let rep = 0; rep < CFG.memoryRepeats; rep++) {
    for (let i = 0; i < libs.length; i++) {
      const lib = libs[(i + rep) % libs.length]
      runs[lib].push(runChild('memory', lib, { count: CFG.memoryCount }))
    }
  }
  const out = { unit: 'bytes/breaker', count: CFG.memoryCount, repeats: CFG.memoryRepeats, runs, rss: {}, heap: {} }
  for (const l of libs) {
    out.rss[l] = median(runs[l].map((r) => r.rssPerBreaker))
    out.heap[l] = median(runs[l].map((r) => r.heapPerBreaker))
  }
  return out
}

function printMemoryTable(res) {
  const rows = Object.keys(res.rss).map((l) => [
    l,
    fmt(res.rss[l]),
    fmt(res.heap[l]),
    res.runs[l].map((r) => fmt(r.rssPerBreaker)).join(', '),
    res.runs[l].map((r) => fmt(r.heapPerBreaker)).join(', '),
  ])
  console.log(table(['library', 'RSS B/breaker (median)', 'heap B/breaker (median)', 'RSS each run', 'heap each run'], rows, 'lrrrr'))
  console.log(
    '\nRSS delta (what the target checks) counts the JS objects, the native state and any V8 heap pages committed ' +
      'on the way; heap delta is the JS side alone.',
  )
}

async function measureGrowth() {
  const runs = Object.fromEntries(CONTENDERS.map((l) => [l, []]))
  for (let rep = 0; rep < CFG.growthRepeats; rep++) {
    for (let i = 0; i < CONTENDERS.length; i++) {
      const lib = CONTENDERS[(i + rep) % CONTENDERS.length]
      const r = runChild('growth', lib, { prime: CFG.growthPrime, warmup: CFG.growthWarmup, calls: CFG.growthCalls })
      if (lib === 'breakwater') check(r.totalRequests === CFG.growthWarmup + CFG.growthCalls, 'breakwater counted every call')
      runs[lib].push(r)
    }
  }
  const out = {
    unit: 'MiB',
    calls: CFG.growthCalls,
    prime: CFG.growthPrime,
    warmup: CFG.growthWarmup,
    repeats: CFG.growthRepeats,
    runs,
    rss: {},
    heap: {},
    ms: {},
  }
  for (const l of CONTENDERS) {
    out.rss[l] = median(runs[l].map((r) => r.rssGrowthMiB))
    out.heap[l] = median(runs[l].map((r) => r.heapGrowthMiB))
    out.ms[l] = median(runs[l].map((r) => r.ms))
  }
  return out
}

function printGrowthTable(res) {
  const rows = CONTENDERS.map((l) => [
    l,
    fmt(res.rss[l]),
    fmt(res.heap[l]),
    res.runs[l].map((r) => fmt(r.rssGrowthMiB)).join(', '),
    fmt(res.ms[l]),
  ])
  console.log(
    table(
      [
        'contender',
        'RSS growth MiB (median)',
        'heap growth MiB (median)',
        'RSS each run',
        `ms for ${res.calls.toLocaleString('en-US')} calls`,
      ],
      rows,
      'lrrrr',
    ),
  )
}

async function measureIdle() {
  const runs = {}
  for (const lib of CONTENDERS) runs[lib] = runChild('idle', lib, { count: CFG.idleCount, idleMs: CFG.idleMs })
  const out = { unit: '% of one core', count: CFG.idleCount, idleMs: CFG.idleMs, runs, percent: {} }
  for (const l of CONTENDERS) out.percent[l] = runs[l].percentOfCore
  return out
}

function printIdleTable(res) {
  const rows = CONTENDERS.map((l) => {
    const r = res.runs[l]
    return [l, r.count.toLocaleString('en-US'), fmt(r.percentOfCore), fmt(r.cpuMs), fmt(r.wallMs)]
  })
  console.log(table(['contender', 'breakers', '% of one core', 'CPU ms', 'wall ms'], rows, 'lrrrr'))
}

// ---------------------------------------------------------------------------------------------
// the summary

const pass = (ok) => (ok ? 'pass' : 'FAIL')

function summaryRows(R) {
  const rows = []
  const add = (measure, v, target, { ratios = true } = {}) => {
    rows.push({
      measure,
      bare: v.bare ?? null,
      breakwater: v.breakwater ?? null,
      cockatiel: v.cockatiel ?? null,
      opossum: v.opossum ?? null,
      vsBare: ratios ? ratio(v.breakwater, v.bare) : null,
      vsCockatiel: ratios ? ratio(v.breakwater, v.cockatiel) : null,
      target: target ?? null,
    })
  }
  if (R.closed) {
    const m = R.closed.median
    add('closed call (ns/op)', m, { text: '≤ cockatiel', ok: m.breakwater <= m.cockatiel })
  }
  if (R.failures) {
    const m = R.failures.median
    add('50 % failures (ns/op)', m, { text: '≤ 1.3× bare', ok: m.breakwater <= 1.3 * m.bare })
  }
  if (R.rejected) {
    const m = R.rejected.median
    add('rejected while open (ns/op; bare = awaited rejection)', m, { text: '≤ 1000 ns', ok: m.breakwater <= 1000 })
  }
  if (R.inflight) add('1 000 in flight (ns/call)', R.inflight.median)
  if (R.metrics) {
    for (const n of R.metrics.sizes) {
      const m = R.metrics.bySize[n].median
      add(`getMetrics(), ${n.toLocaleString('en-US')} calls in window (µs/read)`, m, { text: '≤ 5 µs', ok: m.breakwater <= 5 })
    }
  }
  if (R.memory) {
    add('memory per idle breaker, RSS (B)', R.memory.rss, { text: '≤ 2 KiB', ok: R.memory.rss.breakwater <= 2048 })
    add('memory per idle breaker, heap (B)', R.memory.heap, { text: '(RSS row checked)', ok: null })
  }
  if (R.growth) {
    add(
      `growth over ${R.growth.calls.toLocaleString('en-US')} calls, RSS (MiB)`,
      R.growth.rss,
      { text: '< 0.5 MiB', ok: R.growth.rss.breakwater < 0.5 },
      { ratios: false },
    )
    add(
      `growth over ${R.growth.calls.toLocaleString('en-US')} calls, heap (MiB)`,
      R.growth.heap,
      { text: '< 0.5 MiB', ok: R.growth.heap.breakwater < 0.5 },
      { ratios: false },
    )
  }
  if (R.idle) {
    add(`idle CPU, ${R.idle.count.toLocaleString('en-US')} breakers (% of a core)`, R.idle.percent, {
      text: '≤ 0.2 %',
      ok: R.idle.percent.breakwater <= 0.2,
    })
  }
  return rows
}

function printSummary(rows) {
  const body = rows.map((r) => [
    r.measure,
    fmt(r.bare),
    fmt(r.breakwater),
    fmt(r.cockatiel),
    fmt(r.opossum),
    fmtRatio(r.vsBare),
    fmtRatio(r.vsCockatiel),
    r.target === null ? '—' : r.target.ok === null ? r.target.text : `${r.target.text}: ${pass(r.target.ok)}`,
  ])
  console.log(
    table(['measure', 'bare', 'breakwater', 'cockatiel', 'opossum', 'breakwater/bare', 'breakwater/cockatiel', 'target'], body, 'lrrrrrrl'),
  )
}

// ---------------------------------------------------------------------------------------------
// main

function timerOverheadNs() {
  const n = 200_000
  let acc = 0
  for (let i = 0; i < n; i++) {
    const t0 = now()
    acc += now() - t0
  }
  return (acc * 1e6) / n
}

function gitDescribe() {
  const cwd = fileURLToPath(new URL('..', import.meta.url))
  const git = (...args) => spawnSync('git', args, { cwd, encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD')
  if (head.status !== 0) return null
  const dirty = git('status', '--porcelain', '--', 'src', 'lib', 'index.js', 'index.mjs', 'binding.js')
  return `${head.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' + uncommitted library changes'}`
}

/** How busy the machine is with other work: the share of all cores' time not idle over `ms`. */
async function machineBusy(ms) {
  const sum = () =>
    os.cpus().reduce((a, c) => ({ idle: a.idle + c.times.idle, total: a.total + Object.values(c.times).reduce((x, y) => x + y, 0) }), {
      idle: 0,
      total: 0,
    })
  const a = sum()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const b = sum()
  const total = b.total - a.total
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0
}

const cpus = os.cpus()
const meta = {
  node: process.version,
  v8: process.versions.v8,
  platform: `${process.platform} ${process.arch}`,
  cpu: cpus[0]?.model?.trim() ?? 'unknown',
  cores: os.availableParallelism?.() ?? cpus.length,
  totalMemGiB: os.totalmem() / 1024 ** 3,
  commit: gitDescribe(),
  versions: { breakwater: packageVersion('.'), opossum: packageVersion('opossum'), cockatiel: packageVersion('cockatiel') },
  quick: QUICK,
  only: ONLY.length === 0 ? null : ONLY,
  config: CFG,
  gcExposed: hasGc,
  timerOverheadNs: timerOverheadNs(),
  loadAverageAtStart: os.loadavg(),
  busyBeforeStart: await machineBusy(500),
  startedAt: new Date().toISOString(),
}

console.log('# breakwater benchmark\n')
console.log(`- node ${meta.node} (V8 ${meta.v8}), ${meta.platform}`)
console.log(`- CPU: ${meta.cpu}, ${meta.cores} cores, ${meta.totalMemGiB.toFixed(1)} GiB RAM`)
console.log(
  `- breakwater ${meta.versions.breakwater}${meta.commit ? ` (${meta.commit})` : ''}, opossum ${meta.versions.opossum}, cockatiel ${meta.versions.cockatiel}`,
)
console.log(
  `- ${QUICK ? 'QUICK smoke run (numbers are not representative)' : 'full run'}: ${CFG.rounds} rounds + ${CFG.warmupRounds} warm-up, ` +
    'contenders in rotating order, medians over rounds' +
    (ONLY.length ? `; only: ${ONLY.join(', ')}` : ''),
)
console.log(
  `- performance.now() pair overhead: ${fmt(meta.timerOverheadNs)} ns; other work on the machine just before the start: ` +
    `${(meta.busyBeforeStart * 100).toFixed(0)} % of all cores (load average ${meta.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')})`,
)
if (meta.busyBeforeStart > 0.2) console.log('- WARNING: the machine is busy with other work: these numbers are skewed')
if (!hasGc) console.log('- WARNING: no --expose-gc: run as `node --expose-gc bench/index.mjs` (npm run bench); gc between runs is skipped')

const R = {}
const errors = []
const sections = [
  [
    'closed',
    '1. A protected call in the closed state (`async () => 42`)',
    measureClosed,
    (r) => printRoundsTable(r, 'ns/op'),
    `${CFG.closedOps.toLocaleString('en-US')} sequential awaited calls per contender per round, a fresh breaker per run (made outside the timing).`,
  ],
  [
    'failures',
    '2. 50 % failures, never tripping',
    measureFailures,
    (r) => printRoundsTable(r, 'ns/op'),
    `${CFG.failureOps.toLocaleString('en-US')} calls per round, fn alternately resolves 42 and throws new Error('boom'); ` +
      'breakwater failureThreshold 1e6 + failureRateThreshold 1, opossum errorThresholdPercentage 100 + volumeThreshold MAX_SAFE_INTEGER, ' +
      'cockatiel SamplingBreaker threshold 0.99; a fresh breaker per run; checked afterwards that none opened. ' +
      "opossum's figure grows with N: on every failure it recomputes its stats over every latency in its 10 s window.",
  ],
  [
    'rejected',
    '3. A rejected call while open',
    measureRejected,
    (r) => printRoundsTable(r, 'ns/op'),
    `${CFG.rejectedOps.toLocaleString('en-US')} awaited+caught rejections per round, a fresh breaker per run (breakwater openFor(1e9), opossum open(), cockatiel isolate()); ` +
      'bare = the floor: `await Promise.reject(err)` with a preallocated error.',
  ],
  [
    'inflight',
    '4. 1 000 calls in flight',
    measureInflight,
    (r) => printRoundsTable(r, 'ns/call'),
    `${CFG.inflightBatches} batches per round: start 1 000 calls waiting on one deferred promise, resolve it, await all.`,
  ],
  [
    'metrics',
    '5. One metrics read with 1 000 and 100 000 calls in the window',
    measureMetrics,
    printMetricsTable,
    'breakwater: getMetrics() on a ManualClock-driven stream (log-uniform 1..2000 ms latencies, the 60 s window sliding); ' +
      'opossum: `breaker.stats` with the same synthetic latencies; each read follows one new recorded call; ' +
      `reads per round: breakwater ${CFG.metricsReads.breakwater}, opossum ${Object.entries(CFG.metricsReads.opossum)
        .map(([k, v]) => `${v} @ ${Number(k).toLocaleString('en-US')}`)
        .join(', ')}.`,
  ],
  [
    'memory',
    `6. Memory per breaker, ${CFG.memoryCount.toLocaleString('en-US')} idle breakers`,
    measureMemory,
    printMemoryTable,
    `a fresh child process per library (${CFG.memoryRepeats}× each): gc, measure, create ${CFG.memoryCount.toLocaleString('en-US')} breakers, gc, measure.`,
  ],
  [
    'growth',
    `7. Memory growth of one breaker over ${CFG.growthCalls.toLocaleString('en-US')} calls`,
    measureGrowth,
    printGrowthTable,
    `a fresh child process per library (${CFG.growthRepeats}× each): ${CFG.growthPrime.toLocaleString('en-US')} bare awaited calls to bring ` +
      'the process (JIT, V8 young generation, compiler malloc arenas) to a steady state, then ' +
      `${CFG.growthWarmup.toLocaleString('en-US')} warm-up calls through the breaker, gc, measure, ` +
      `${CFG.growthCalls.toLocaleString('en-US')} calls, gc, measure.`,
  ],
  [
    'idle',
    `8. Idle CPU with ${CFG.idleCount.toLocaleString('en-US')} breakers`,
    measureIdle,
    printIdleTable,
    `a fresh child process per library: create ${CFG.idleCount.toLocaleString('en-US')} breakers, gc, idle ${CFG.idleMs} ms; CPU time / wall time.`,
  ],
]

const started = now()
for (const [key, title, run, print, how] of sections) {
  if (!selected(key)) continue
  console.log(`\n## ${title}\n\n${how}\n`)
  const t0 = now()
  try {
    R[key] = await run()
    print(R[key])
    console.log(`\n(${fmt((now() - t0) / 1000)} s)`)
  } catch (err) {
    errors.push({ measure: key, error: String(err?.stack ?? err) })
    console.log(`**ERROR** in ${key}: ${err?.stack ?? err}`)
  }
  await settleHeap()
  await yieldToLoop()
}

const rows = summaryRows(R)
console.log('\n## Summary (medians)\n')
printSummary(rows)
const failed = rows.filter((r) => r.target?.ok === false)
console.log(
  `\nTargets: ${rows.filter((r) => r.target?.ok === true).length} pass, ${failed.length} FAIL` +
    (failed.length ? ` (${failed.map((r) => r.measure).join('; ')})` : '') +
    `. Total time ${fmt((now() - started) / 1000)} s.`,
)
if (QUICK) console.log('(quick smoke run: numbers are not representative)')

meta.totalSeconds = (now() - started) / 1000
meta.loadAverageAtEnd = os.loadavg()
mkdirSync(RESULTS_DIR, { recursive: true })
const outFile = `${RESULTS_DIR}latest.json`
writeFileSync(outFile, `${JSON.stringify({ meta, results: R, summary: rows, errors }, null, 2)}\n`)
console.log(`Results written to bench/results/latest.json`)

if (errors.length > 0) {
  console.log(`\n${errors.length} measure(s) failed: ${errors.map((e) => e.measure).join(', ')}`)
  process.exitCode = 1
}
