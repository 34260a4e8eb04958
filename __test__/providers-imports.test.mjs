// `import ... from 'breakwater/providers'` works with named and default imports, and the
// provider breakers land in the registry they are given.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import providers, { OpenAICircuitBreaker } from 'breakwater/providers'
import { CircuitBreakerRegistry } from 'breakwater'

const stubOpenAI = { chat: { completions: { create: async () => ({}) } }, models: { list: async () => ({ data: [] }) } }

test('import { OpenAICircuitBreaker } from "breakwater/providers"', () => {
  assert.equal(providers.OpenAICircuitBreaker, OpenAICircuitBreaker)
  const registry = new CircuitBreakerRegistry()
  const ai = new OpenAICircuitBreaker({ openaiClient: stubOpenAI, registry })
  assert.deepEqual(Object.keys(ai.breakers), ['openai'])
  assert.equal(registry.get('openai_api'), ai.breakers.openai)
})
