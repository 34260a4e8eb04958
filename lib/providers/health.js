'use strict'
// Health checks for the LLM providers: a cheap request (one page of the models list, never a
// paid completion) registered with breakwater's HealthMonitor under the provider's breaker name,
// so the monitor's breaker link opens the breaker when the provider is unhealthy and probes it
// early when a check passes.

const errors = require('../errors')
const { ADAPTERS } = require('./adapters')
const { CHAIN } = require('./llm')

const HEALTH_OPTION_KEYS_RENAMED = { intervalMs: 'checkIntervalMs' }

function setupHealthCheck(provider, fnName, owner, monitor, options) {
  const chain = owner?.[CHAIN]
  if (chain === undefined) {
    throw errors.invalidArgument('breaker', owner, 'an OpenAICircuitBreaker, AnthropicCircuitBreaker or GeminiCircuitBreaker')
  }
  const target = chain.target(provider)
  if (target === undefined) {
    throw errors.invalidArgument('breaker', owner, `a provider breaker with a ${provider} client (${fnName} checks ${provider})`)
  }
  if (monitor === null || typeof monitor !== 'object' || typeof monitor.registerService !== 'function') {
    throw errors.invalidArgument('monitor', monitor, "breakwater's HealthMonitor (an object with registerService(name, check, options))")
  }
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw errors.invalidArgument('options', options, 'an object: { intervalMs?, ...HealthMonitor service options }')
  }
  // `intervalMs` is the monitor's `checkIntervalMs`; every other option goes to the monitor as is.
  const serviceOptions = {}
  for (const [k, v] of Object.entries(options ?? {})) serviceOptions[HEALTH_OPTION_KEYS_RENAMED[k] ?? k] = v
  serviceOptions.breaker ??= target.breaker.name
  const timeoutMs = serviceOptions.checkTimeoutMs
  const adapter = ADAPTERS[provider]
  // The monitor aborts `signal` when the check times out; the request is aborted with it.
  const check = async (context) => ({ ok: true, details: await adapter.healthCheck(target.client, { timeoutMs, signal: context?.signal }) })
  monitor.registerService(target.breaker.name, check, serviceOptions)
  return { service: target.breaker.name, check }
}

/** Registers `openai_api` with `monitor`: a models-list request with the breaker's OpenAI client. */
function setupOpenAIHealthCheck(breaker, monitor, options) {
  return setupHealthCheck('openai', 'setupOpenAIHealthCheck', breaker, monitor, options)
}

/** Registers `anthropic_api` with `monitor`: a one-model page of the models list. */
function setupAnthropicHealthCheck(breaker, monitor, options) {
  return setupHealthCheck('anthropic', 'setupAnthropicHealthCheck', breaker, monitor, options)
}

/** Registers `gemini_api` with `monitor`: a one-model page of the models list. */
function setupGeminiHealthCheck(breaker, monitor, options) {
  return setupHealthCheck('gemini', 'setupGeminiHealthCheck', breaker, monitor, options)
}

module.exports = { setupOpenAIHealthCheck, setupAnthropicHealthCheck, setupGeminiHealthCheck }
