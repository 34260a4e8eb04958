// Builds a provider breaker over the three fakes, with its own registry and a ManualClock, and
// records its events. Every test gets fresh fakes, closed when the test ends.
import { CircuitBreakerRegistry, ManualClock } from 'breakwater'
import { OpenAICircuitBreaker, AnthropicCircuitBreaker, GeminiCircuitBreaker } from 'breakwater/providers'
import { startFakes, clientsFor } from './fakes.mjs'

const CLASSES = { openai: OpenAICircuitBreaker, anthropic: AnthropicCircuitBreaker, gemini: GeminiCircuitBreaker }

export const OPENAI_REQUEST = Object.freeze({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 64 })
export const ANTHROPIC_REQUEST = Object.freeze({
  model: 'claude-3-5-sonnet-20241022',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'Hello' }],
})
export const GEMINI_REQUEST = Object.freeze({ model: 'gemini-2.5-flash', contents: 'Hello' })

/**
 * @param {import('node:test').TestContext} t
 * @param {{ primary?: 'openai'|'anthropic'|'gemini', providers?: string[], breakerOptions?: object,
 *   modelMap?: object, timeoutMs?: number, registry?: CircuitBreakerRegistry, clock?: ManualClock }} [options]
 */
export async function setup(t, options = {}) {
  const fakes = await startFakes()
  t.after(() => fakes.close())
  const clock = options.clock ?? new ManualClock(1_000_000)
  const registry = options.registry ?? new CircuitBreakerRegistry()
  const clients = clientsFor(fakes, { timeoutMs: options.timeoutMs })
  const primary = options.primary ?? 'openai'
  const ai = make(primary, clients, options.providers ?? ['openai', 'anthropic', 'gemini'], {
    registry,
    breakerOptions: { clock, ...options.breakerOptions },
    ...(options.modelMap && { modelMap: options.modelMap }),
  })
  const events = []
  ai.on('failover', (e) => events.push(['failover', e.from, e.to, e.reason]))
  ai.on('authError', (e) => events.push(['authError', e.provider, e.status]))
  return { fakes, clock, registry, ai, events, clients, breakers: ai.breakers }
}

/** A provider breaker of `primary`'s class over the given providers' clients. */
export function make(primary, clients, providers, rest) {
  const opts = { ...rest }
  for (const p of providers) opts[`${p}Client`] = clients[`${p}Client`]
  return new CLASSES[primary](opts)
}

/** Calls the primary's completion method with its default request (or `request`). */
export function complete(ai, request, options) {
  if (ai instanceof OpenAICircuitBreaker) return ai.chatCompletion(request ?? OPENAI_REQUEST, options)
  if (ai instanceof AnthropicCircuitBreaker) return ai.createMessage(request ?? ANTHROPIC_REQUEST, options)
  return ai.generateContent(request ?? GEMINI_REQUEST, options)
}

/** The counts of a breaker that the tests compare. */
export function counts(breaker) {
  const m = breaker.getMetrics()
  return { state: m.state, failed: m.failedRequests, succeeded: m.successfulRequests, rejected: m.rejectedRequests }
}
