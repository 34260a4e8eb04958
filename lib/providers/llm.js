'use strict'
// The public LLM breakers: one class per source format (OpenAI chat completions, Anthropic
// messages, Gemini generateContent), each failing over to the other providers in a fixed order.

const { EventEmitter } = require('node:events')
const errors = require('../errors')
const { ADAPTERS } = require('./adapters')
const { buildModelMap } = require('./models')
const { ProviderChain } = require('./failover')

const OPTION_KEYS = ['openaiClient', 'anthropicClient', 'claudeClient', 'geminiClient', 'modelMap', 'breakerOptions', 'registry']

const CLIENT_SHAPES = {
  openai: 'an OpenAI client (new OpenAI() from the openai package)',
  anthropic: 'an Anthropic client (new Anthropic() from @anthropic-ai/sdk)',
  gemini: 'a Google GenAI client (new GoogleGenAI() from @google/genai)',
}

/** Internal access to a breaker's chain, for the health-check helpers. */
const CHAIN = Symbol('breakwater.providers.chain')

/**
 * Validates the options once, collecting every problem into one ERR_INVALID_CONFIG, and returns
 * the chain's config. Keeps nothing of the caller's objects but the clients and the registry.
 */
function readOptions(className, primary, options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidConfig(`${className} options`, 'options', options, 'an object')
  }
  const problems = []
  const problem = (field, value, expected) => problems.push(`${field} = ${errors.describe(value)} (expected ${expected})`)
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.includes(k)) problem(k, options[k], `no such option; the options are ${OPTION_KEYS.join(', ')}`)
  }
  if (options.claudeClient !== undefined && options.anthropicClient !== undefined) {
    problem('claudeClient', options.claudeClient, 'not both claudeClient and anthropicClient (they are the same option)')
  }
  const clients = {
    openai: options.openaiClient,
    anthropic: options.anthropicClient ?? options.claudeClient,
    gemini: options.geminiClient,
  }
  const field = {
    openai: 'openaiClient',
    anthropic: options.anthropicClient !== undefined ? 'anthropicClient' : 'claudeClient',
    gemini: 'geminiClient',
  }
  for (const provider of Object.keys(clients)) {
    const c = clients[provider]
    if (c === undefined || c === null) {
      if (provider === primary) problem(field[provider], c, `${CLIENT_SHAPES[provider]}: it is required`)
    } else if (!ADAPTERS[provider].hasClient(c)) {
      problem(field[provider], c, CLIENT_SHAPES[provider])
    }
  }
  const bo = options.breakerOptions
  if (bo !== undefined && (bo === null || typeof bo !== 'object' || Array.isArray(bo))) {
    problem('breakerOptions', bo, 'an object of CircuitBreaker options')
  } else if (bo !== undefined) {
    if ('registry' in bo) problem('breakerOptions.registry', bo.registry, 'nothing: give the registry as the `registry` option')
    if ('fallback' in bo)
      problem('breakerOptions.fallback', bo.fallback, 'nothing: provider breakers fail over to the next provider instead')
  }
  const registry = options.registry
  if (registry !== undefined && registry !== null && typeof registry?.getOrCreate !== 'function') {
    problem('registry', registry, 'a CircuitBreakerRegistry, or null for unregistered breakers')
  }
  const modelMap = buildModelMap(options.modelMap, problems)
  if (problems.length > 0) {
    throw new errors.BreakwaterError(errors.CODES.INVALID_CONFIG, `Invalid ${className} options: ${problems.join('; ')}`)
  }
  return {
    clients,
    modelMap,
    breakerOptions: bo === undefined ? undefined : { ...bo },
    registry: registry === undefined ? require('../registry').globalRegistry : registry,
    clock: bo?.clock,
  }
}

function checkRequest(request, required) {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw errors.invalidArgument('request', request, 'an object')
  }
  for (const [field, type] of required) {
    const v = request[field]
    if (type === 'array' ? !Array.isArray(v) : typeof v !== type)
      throw errors.invalidArgument(`request.${field}`, v, type === 'array' ? 'an array' : `a ${type}`)
  }
}

function checkCallOptions(options) {
  if (options === undefined) return
  if (options === null || typeof options !== 'object') throw errors.invalidArgument('options', options, 'an object: { signal? }')
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw errors.invalidArgument('options.signal', options.signal, 'an AbortSignal')
  }
}

/** What the three classes share: the chain, its events and its breakers. */
class LlmBreaker extends EventEmitter {
  constructor(className, order, options) {
    super()
    const config = readOptions(className, order[0], options)
    this[CHAIN] = new ProviderChain(this, { ...config, order: order.map((p) => ADAPTERS[p]) })
  }

  /** The breaker of each configured provider, by provider name. */
  get breakers() {
    const out = {}
    for (const t of this[CHAIN].targets) out[t.provider] = t.breaker
    return out
  }

  _complete(request, options, required) {
    try {
      checkRequest(request, required)
      checkCallOptions(options)
    } catch (err) {
      return Promise.reject(err)
    }
    return this[CHAIN].complete(request, options)
  }

  _stream(request, options, required) {
    checkRequest(request, required)
    checkCallOptions(options)
    return this[CHAIN].stream(request, options)
  }
}

/** @google/genai takes its abort signal in `config.abortSignal`: it is the caller's signal too. */
function geminiCallOptions(request, options) {
  const signal = request?.config?.abortSignal
  if (options?.signal !== undefined || !(signal instanceof AbortSignal)) return options
  return { ...options, signal }
}

const OPENAI_REQUIRED = [
  ['model', 'string'],
  ['messages', 'array'],
]
const ANTHROPIC_REQUIRED = [
  ['model', 'string'],
  ['messages', 'array'],
]
const GEMINI_REQUIRED = [['model', 'string']]

/** OpenAI chat completions, failing over to Anthropic, then Gemini. */
class OpenAICircuitBreaker extends LlmBreaker {
  constructor(options) {
    super('OpenAICircuitBreaker', ['openai', 'anthropic', 'gemini'], options)
  }

  /** A chat completion in OpenAI's request format. */
  chatCompletion(request, options) {
    return this._complete(request, options, OPENAI_REQUIRED)
  }

  /** The same, streamed: an async iterable of chunks. */
  chatCompletionStream(request, options) {
    return this._stream(request, options, OPENAI_REQUIRED)
  }
}

/** Anthropic messages, failing over to OpenAI, then Gemini. */
class AnthropicCircuitBreaker extends LlmBreaker {
  constructor(options) {
    super('AnthropicCircuitBreaker', ['anthropic', 'openai', 'gemini'], options)
  }

  /** A message in Anthropic's request format. */
  createMessage(request, options) {
    return this._complete(request, options, ANTHROPIC_REQUIRED)
  }

  /** The same, streamed: an async iterable of chunks. */
  createMessageStream(request, options) {
    return this._stream(request, options, ANTHROPIC_REQUIRED)
  }
}

/** Gemini generateContent, failing over to OpenAI, then Anthropic. */
class GeminiCircuitBreaker extends LlmBreaker {
  constructor(options) {
    super('GeminiCircuitBreaker', ['gemini', 'openai', 'anthropic'], options)
  }

  /** Content in @google/genai's `models.generateContent` request format. */
  generateContent(request, options) {
    return this._complete(request, geminiCallOptions(request, options), GEMINI_REQUIRED)
  }

  /** The same, streamed: an async iterable of chunks. */
  generateContentStream(request, options) {
    return this._stream(request, geminiCallOptions(request, options), GEMINI_REQUIRED)
  }
}

module.exports = { OpenAICircuitBreaker, AnthropicCircuitBreaker, GeminiCircuitBreaker, CHAIN }
