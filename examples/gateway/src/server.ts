// The example gateway: an Express app whose /api/generate asks OpenAI (through the official SDK)
// and fails over to Anthropic, each provider behind its own circuit breaker, with the monitoring
// routes, health checks and a chaos switch to watch a breaker open and close. The two providers
// are in-process fakes, so it runs offline with no keys. Run with `npm start`.
import { randomBytes } from 'node:crypto'
import express from 'express'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { CircuitBreakerRegistry, HealthMonitor } from 'breakwater'
import { withCircuitBreaker, registerCircuitBreakerRoutes } from 'breakwater/express'
import { OpenAICircuitBreaker, setupOpenAIHealthCheck, setupAnthropicHealthCheck } from 'breakwater/providers'
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
  // The chaos switch acts on the primary provider; the fallback stays healthy.
  const upstream = await startFakeUpstream('openai', chaos)
  const fallbackUpstream = await startFakeUpstream('anthropic', { failRate: 0, latencyMs: chaos.latencyMs }, 'anthropic')
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
  const ai = new OpenAICircuitBreaker({
    openaiClient: new OpenAI({ apiKey: 'demo', baseURL: `${upstream.url}/v1` }),
    claudeClient: new Anthropic({ apiKey: 'demo', baseURL: fallbackUpstream.url }),
    registry,
    breakerOptions,
  })
  ai.on('failover', (e: { from: string; to: string; reason: string }) => console.log(`failover ${e.from} -> ${e.to} (${e.reason})`))

  const app = express()
  app.use(express.json())

  // The route has its own breaker; inside, each provider has one too (openai_api, anthropic_api).
  // When every provider is unavailable the route answers 503 with Retry-After.
  app.post(
    '/api/generate',
    withCircuitBreaker(
      'api_generate',
      async (req, res) => {
        const prompt = typeof req.body?.prompt === 'string' ? req.body.prompt : 'Hello'
        const r = await ai.chatCompletion({ messages: [{ role: 'user', content: prompt }], model: 'gpt-4o-mini', max_tokens: 256 })
        res.json({ content: r.content, provider: r.provider, fallback: r._fallback ?? null })
      },
      { registry },
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

  setupOpenAIHealthCheck(ai, monitor, { intervalMs: 5_000 })
  setupAnthropicHealthCheck(ai, monitor, { intervalMs: 5_000 })
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
    console.log(
      `  drive traffic: for i in $(seq 50); do curl -s -X POST ${base}/api/generate -H 'content-type: application/json' -d '{"prompt":"hello"}'; echo; done`,
    )
    console.log(`  break the upstream: curl -X POST ${base}/chaos -H 'content-type: application/json' -d '{"failRate":1}'`)
    console.log(`  reset a breaker: curl -X POST -H 'Authorization: Bearer ${adminToken}' ${cb}/reset/openai_api`)
  })

  const shutdown = async (signal: string): Promise<void> => {
    console.log(`${signal}: shutting down`)
    server.closeAllConnections()
    server.close()
    await monitor.stop()
    await upstream.close()
    await fallbackUpstream.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
