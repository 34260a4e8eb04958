// The Express benchmark: an Express 5 route wrapped by withCircuitBreaker against the same route
// bare, wrapped by opossum and by cockatiel, under autocannon on 127.0.0.1 (50 connections,
// alternating rounds); then GET /metrics and GET /prometheus with 1 000 breakers.
//
//   node bench/express.mjs                 (npm run bench:express)
//   BENCH_QUICK=1 node bench/express.mjs   a fast smoke run
//
// The server runs in a child process, so autocannon and Express do not share a thread. On a
// shared machine the throughput drifts by more than the 1 % being measured, so each round runs
// every contender back to back (in a rotating order) and the ratio to bare is taken per round:
// the table gives the median of those per-round ratios, which the drift mostly cancels out of.
// Prints markdown tables and writes bench/results/express.json.

import { fork } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import os from 'node:os'

const here = dirname(fileURLToPath(import.meta.url))
const QUICK = !['', '0', 'false', undefined].includes(process.env.BENCH_QUICK)
const CFG = QUICK
  ? { rounds: 2, seconds: 1, warmupSeconds: 1, breakers: 1_000, routeSamples: 20 }
  : { rounds: 10, seconds: 1, warmupSeconds: 2, breakers: 1_000, routeSamples: 100 }
const CONNECTIONS = 50
const CONTENDERS = ['bare', 'breakwater', 'opossum', 'cockatiel']

// ---- the server (child process) -----------------------------------------------------------------

async function serve() {
  const { default: express } = await import('express')
  const { createRequire } = await import('node:module')
  const require = createRequire(import.meta.url)
  const Opossum = require('opossum')
  const { circuitBreaker, handleAll, ConsecutiveBreaker } = await import('cockatiel')
  const { CircuitBreakerRegistry } = await import('../index.mjs')
  const { withCircuitBreaker, registerCircuitBreakerRoutes } = await import('../express.mjs')

  // The same handler everywhere: an async route that answers a small JSON body.
  const handler = async (req, res) => {
    res.json({ ok: true })
  }
  const app = express()
  app.get('/bare', handler)
  app.get('/breakwater', withCircuitBreaker('bench_express', handler, { registry: new CircuitBreakerRegistry() }))
  // opossum and cockatiel as their READMEs wrap a function; the route passes errors to next().
  const opossum = new Opossum(handler)
  app.get('/opossum', (req, res, next) => {
    opossum.fire(req, res).catch(next)
  })
  const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  app.get('/cockatiel', (req, res, next) => {
    cockatiel.execute(() => handler(req, res)).catch(next)
  })

  // 1 000 breakers with traffic and a few in other states, for the monitoring routes.
  const many = new CircuitBreakerRegistry()
  for (let i = 0; i < Number(process.env.BENCH_BREAKERS); i++) {
    const b = many.getOrCreate(`service_${i}_api`)
    for (let k = 0; k < 20; k++) b.tryAcquire().success()
    if (i % 10 === 0) b.tryAcquire().failure(new Error('x'))
    if (i % 100 === 0) b.forceOpen()
  }
  registerCircuitBreakerRoutes(app, { prefix: '/ops', registry: many, monitor: null })

  const server = app.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage()
      process.send({ cpuUs: u.user + u.system })
    } else if (m === 'stop') {
      opossum.shutdown()
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
}

// ---- the middleware alone (in-process, no network) ----------------------------------------------

/**
 * ns per request that withCircuitBreaker adds around a handler, with a stand-in response that
 * finishes at once: what the HTTP rounds try to see through the noise of a whole request.
 */
async function middlewareOverheadNs() {
  const { EventEmitter } = await import('node:events')
  const { CircuitBreakerRegistry } = await import('../index.mjs')
  const { withCircuitBreaker } = await import('../express.mjs')
  class Res extends EventEmitter {
    statusCode = 200
    closed = false
    writableFinished = false
    headersSent = false
  }
  const handler = async (req, res) => {
    res.writableFinished = true
    res.emit('close')
  }
  const wrapped = withCircuitBreaker('bench_overhead', handler, { registry: new CircuitBreakerRegistry() })
  const n = QUICK ? 50_000 : 300_000
  const run = async (f) => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      f(null, new Res(), () => {})
      await null
    }
    return ((performance.now() - t0) * 1e6) / n
  }
  const diffs = []
  for (let r = 0; r < 7; r++) diffs.push((await run(wrapped)) - (await run(handler)))
  return median(diffs.slice(2))
}

// ---- the driver ---------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]

async function drive() {
  const { default: autocannon } = await import('autocannon')
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { env: { ...process.env, BENCH_BREAKERS: String(CFG.breakers) } })
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)))
  })
  const base = `http://127.0.0.1:${port}`

  const cpuUs = () =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m.cpuUs))
      child.send('cpu')
    })
  const cannon = (path, duration) =>
    new Promise((resolve, reject) => {
      autocannon({ url: base + path, connections: CONNECTIONS, duration }, (err, result) => (err ? reject(err) : resolve(result)))
    })

  try {
    console.error(`warm-up: ${CFG.warmupSeconds} s per contender`)
    for (const c of CONTENDERS) await cannon(`/${c}`, CFG.warmupSeconds)

    const rps = Object.fromEntries(CONTENDERS.map((c) => [c, []]))
    const cpu = Object.fromEntries(CONTENDERS.map((c) => [c, []]))
    for (let round = 0; round < CFG.rounds; round++) {
      // Rotate the order, so no contender always runs first or right after another.
      const order = CONTENDERS.map((_, i) => CONTENDERS[(i + round) % CONTENDERS.length])
      if (round % 2 === 1) order.reverse()
      for (const c of order) {
        const cpu0 = await cpuUs()
        const r = await cannon(`/${c}`, CFG.seconds)
        const cpu1 = await cpuUs()
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`${c}: ${r.non2xx} non-2xx, ${r.errors} errors`)
        rps[c].push(r.requests.average)
        // The server's CPU time per request served: what throughput at saturation is the inverse
        // of, and far less disturbed by other processes than wall-clock req/s.
        cpu[c].push((cpu1 - cpu0) / r.requests.total)
        console.error(`round ${round + 1} ${c}: ${Math.round(r.requests.average)} req/s, ${cpu[c].at(-1).toFixed(1)} µs CPU/request`)
      }
    }

    const routeTimes = {}
    for (const path of ['/ops/metrics', '/ops/prometheus']) {
      const times = []
      let bytes = 0
      for (let i = 0; i < CFG.routeSamples + 5; i++) {
        const t0 = performance.now()
        const res = await fetch(base + path)
        const body = await res.text()
        const ms = performance.now() - t0
        if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`)
        bytes = body.length
        if (i >= 5) times.push(ms) // the first few warm the JIT
      }
      routeTimes[path] = { median: median(times), p95: percentile(times, 95), max: Math.max(...times), bytes }
    }

    const ratios = (c) => rps[c].map((x, i) => x / rps.bare[i])
    const cpuRatios = (c) => cpu[c].map((x, i) => cpu.bare[i] / x)
    const lines = [
      `Express ${(await import('express/package.json', { with: { type: 'json' } })).default.version}, Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} (${os.availableParallelism()} cores); autocannon, ${CONNECTIONS} connections, ${CFG.rounds} alternating rounds of ${CFG.seconds} s per contender, GET of a small JSON body.`,
      '',
      '| route | req/s (median) | req/s (min … max) | req/s vs bare (median of per-round ratios) | server CPU µs / request (median) | throughput vs bare from CPU time |',
      '|---|---:|---:|---:|---:|---:|',
      ...CONTENDERS.map((c) => {
        const m = median(rps[c])
        return `| ${c === 'bare' ? 'bare handler' : c === 'breakwater' ? 'withCircuitBreaker' : `${c}-wrapped`} | ${Math.round(m)} | ${Math.round(Math.min(...rps[c]))} … ${Math.round(Math.max(...rps[c]))} | ${median(ratios(c)).toFixed(3)} | ${median(cpu[c]).toFixed(2)} | ${median(cpuRatios(c)).toFixed(3)} |`
      }),
      '',
      `Monitoring routes with ${CFG.breakers} breakers (${CFG.routeSamples} sequential requests each, round trip):`,
      '',
      '| route | median | p95 | max | body |',
      '|---|---:|---:|---:|---:|',
      ...Object.entries(routeTimes).map(
        ([p, t]) =>
          `| GET ${p.replace('/ops', '')} | ${t.median.toFixed(2)} ms | ${t.p95.toFixed(2)} ms | ${t.max.toFixed(2)} ms | ${(t.bytes / 1024).toFixed(0)} KiB |`,
      ),
    ]
    const ratio = median(ratios('breakwater'))
    const cpuRatio = median(cpuRatios('breakwater'))
    lines.push(
      '',
      `withCircuitBreaker / bare: ${ratio.toFixed(3)} in req/s, ${cpuRatio.toFixed(3)} from server CPU time per request ` +
        `(target ≥ 0.99): ${ratio >= 0.99 ? 'met' : 'NOT met'} in req/s, ${cpuRatio >= 0.99 ? 'met' : 'NOT met'} in CPU time.`,
    )
    const slow = Object.entries(routeTimes).filter(([, t]) => t.median > 20)
    lines.push(
      `Monitoring routes ≤ 20 ms (median round trip): ${slow.length === 0 ? 'met' : `NOT met (${slow.map(([p]) => p).join(', ')})`}.`,
    )
    const overhead = await middlewareOverheadNs()
    lines.push(`withCircuitBreaker alone adds ${Math.round(overhead)} ns per request in-process (no network; median of 5 rounds).`)
    console.log(lines.join('\n'))
    mkdirSync(join(here, 'results'), { recursive: true })
    writeFileSync(
      join(here, 'results', 'express.json'),
      `${JSON.stringify({ cfg: CFG, rps, cpu, routeTimes, ratio, cpuRatio, overheadNs: overhead }, null, 2)}\n`,
    )
  } finally {
    child.send('stop')
  }
}

if (process.argv.includes('--server')) await serve()
else await drive()
