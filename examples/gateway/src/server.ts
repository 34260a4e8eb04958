// The example gateway: an Express app whose /api/generate calls an (in-process, fake)
// OpenAI-compatible upstream through a circuit breaker, with the monitoring routes, a health
// monitor and a chaos switch to watch the breaker open and close. Run with `npm start`.
import { randomBytes } from 'node:crypto'
import express from 'express'
import { CircuitBreakerRegistry, HealthMonitor } from 'breakwater'
import { withCircuitBreaker, registerCircuitBreakerRoutes } from 'breakwater/express'
import { startFakeUpstream, type Chaos } from './fake-upstream.js'

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) {
    console.error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return n
}

async function main(): Promise<void> {
  const chaos: Chaos = { failRate: envNumber('FAIL_RATE', 0), latencyMs: envNumber('LATENCY_MS', 50) }
  const upstream = await startFakeUpstream('openai', chaos)
  const registry = new CircuitBreakerRegistry()
  const monitor = new HealthMonitor({ registry })
  const adminToken = process.env.CB_ADMIN_TOKEN || randomBytes(16).toString('hex')
  const breakerOptions = {
    failureThreshold: 5,
    resetTimeoutMs: envNumber('RESET_TIMEOUT_MS', 5_000), // short, so the demo recovers quickly
    maxResetTimeoutMs: 30_000,
    minThroughput: 10,
    callTimeoutMs: 2_000,
  }

  const app = express()
  app.use(express.json())

  app.post(
    '/api/generate',
    withCircuitBreaker(
      'openai_api',
      async (req, res) => {
        const prompt = typeof req.body?.prompt === 'string' ? req.body.prompt : 'Hello'
        const r = await fetch(`${upstream.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }),
          signal: AbortSignal.timeout(breakerOptions.callTimeoutMs),
        })
        if (!r.ok) {
          res.status(502).json({ error: 'upstream_error', status: r.status })
          return
        }
        const body = (await r.json()) as { choices: { message: { content: string } }[] }
        res.json({ content: body.choices[0]?.message.content, provider: 'openai' })
      },
      { registry, breakerOptions },
    ),
  )

  // The chaos switch: POST /chaos {"failRate":1,"latencyMs":0}
  app.post('/chaos', (req, res) => {
    const { failRate, latencyMs } = (req.body ?? {}) as Partial<Chaos>
    if (failRate !== undefined && (typeof failRate !== 'number' || failRate < 0 || failRate > 1)) {
      res.status(400).json({ error: 'failRate must be a number from 0 to 1' })
      return
    }
    if (latencyMs !== undefined && (typeof latencyMs !== 'number' || latencyMs < 0)) {
      res.status(400).json({ error: 'latencyMs must be a number of at least 0' })
      return
    }
    if (failRate !== undefined) chaos.failRate = failRate
    if (latencyMs !== undefined) chaos.latencyMs = latencyMs
    res.json(chaos)
  })

  monitor.registerService(
    'openai_api',
    async () => (await fetch(`${upstream.url}/v1/models`, { signal: AbortSignal.timeout(1_000) })).ok,
    { checkIntervalMs: 5_000, checkTimeoutMs: 1_000, breaker: 'openai_api' },
  )
  await monitor.start()
  registerCircuitBreakerRoutes(app, { registry, monitor, adminToken, dashboard: true })

  const port = envNumber('PORT', 3000)
  const host = process.env.HOST || '127.0.0.1'
  const server = app.listen(port, host, () => {
    const address = server.address()
    const actual = typeof address === 'object' && address !== null ? address.port : port
    const base = `http://${host}:${actual}`
    const cb = `${base}/api/circuit-breaker`
    console.log(`Gateway listening on ${base}`)
    console.log(`  dashboard:  ${cb}/dashboard`)
    console.log(`  metrics:    ${cb}/metrics`)
    console.log(`  prometheus: ${cb}/prometheus`)
    console.log(`  admin token (for the reset routes): ${adminToken}`)
    console.log(`  drive traffic: for i in $(seq 50); do curl -s -X POST ${base}/api/generate -H 'content-type: application/json' -d '{"prompt":"hello"}'; echo; done`)
    console.log(`  break the upstream: curl -X POST ${base}/chaos -H 'content-type: application/json' -d '{"failRate":1}'`)
    console.log(`  reset a breaker: curl -X POST -H 'Authorization: Bearer ${adminToken}' ${cb}/reset/openai_api`)
  })

  const shutdown = async (signal: string): Promise<void> => {
    console.log(`${signal}: shutting down`)
    server.closeAllConnections()
    server.close()
    await monitor.stop()
    await upstream.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
