'use strict'
// The model a failover target gets for the model the caller asked for. The default map pairs
// each provider's models with the nearest tier of the others; users override or extend it.

const { describe } = require('../errors')

const PROVIDERS = Object.freeze(['openai', 'anthropic', 'gemini'])

/**
 * Keys are model names, or prefixes of them: the longest key that starts the requested name wins
 * (`gpt-4o-mini-2024-07-18` uses `gpt-4o-mini`). `default` serves any other model. A `null` target
 * means "never fail over to that provider from this model".
 */
const DEFAULT_MODEL_MAP = Object.freeze({
  // OpenAI
  'gpt-4o-mini': { anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash' },
  'gpt-4o': { anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-pro' },
  'gpt-4.1-nano': { anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash-lite' },
  'gpt-4.1-mini': { anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash' },
  'gpt-4.1': { anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-pro' },
  'gpt-5-nano': { anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash-lite' },
  'gpt-5-mini': { anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash' },
  'gpt-5': { anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-pro' },
  // Anthropic
  'claude-3-5-haiku': { openai: 'gpt-4o-mini', gemini: 'gemini-2.5-flash' },
  'claude-3-5-sonnet': { openai: 'gpt-4o', gemini: 'gemini-2.5-pro' },
  'claude-3-7-sonnet': { openai: 'gpt-4.1', gemini: 'gemini-2.5-pro' },
  'claude-haiku-4': { openai: 'gpt-4o-mini', gemini: 'gemini-2.5-flash' },
  'claude-sonnet-4': { openai: 'gpt-4.1', gemini: 'gemini-2.5-pro' },
  'claude-opus-4': { openai: 'gpt-5', gemini: 'gemini-2.5-pro' },
  // Gemini
  'gemini-2.5-flash-lite': { openai: 'gpt-4.1-nano', anthropic: 'claude-haiku-4-5' },
  'gemini-2.5-flash': { openai: 'gpt-4o-mini', anthropic: 'claude-haiku-4-5' },
  'gemini-2.5-pro': { openai: 'gpt-4.1', anthropic: 'claude-sonnet-4-5' },
  // Anything else
  default: { openai: 'gpt-4o-mini', anthropic: 'claude-haiku-4-5', gemini: 'gemini-2.5-flash' },
})

/**
 * Merges the user's map over the defaults, entry by entry and target by target. Every problem
 * is pushed onto `problems` (the caller throws one ERR_INVALID_CONFIG for all). Never keeps the
 * caller's objects.
 */
function buildModelMap(user, problems) {
  const merged = new Map()
  for (const [k, v] of Object.entries(DEFAULT_MODEL_MAP)) merged.set(k, { ...v })
  if (user === undefined) return merged
  if (user === null || typeof user !== 'object' || Array.isArray(user)) {
    problems.push(`modelMap = ${describe(user)} (expected an object of model name -> { openai?, anthropic?, gemini? })`)
    return merged
  }
  for (const [model, targets] of Object.entries(user)) {
    const field = `modelMap[${JSON.stringify(model)}]`
    if (targets === null || typeof targets !== 'object' || Array.isArray(targets)) {
      problems.push(`${field} = ${describe(targets)} (expected an object of provider -> model name)`)
      continue
    }
    for (const [provider, target] of Object.entries(targets)) {
      if (!PROVIDERS.includes(provider)) {
        problems.push(`${field}.${provider} = ${describe(target)} (expected a provider: ${PROVIDERS.join(', ')})`)
      } else if (target !== null && (typeof target !== 'string' || target.length === 0)) {
        problems.push(`${field}.${provider} = ${describe(target)} (expected a model name, or null for no failover)`)
      }
    }
    merged.set(model, { ...merged.get(model), ...targets })
  }
  return merged
}

/**
 * The model to ask `provider` for when the caller asked for `model`: the entry of the longest key
 * that is a prefix of `model`, else `default`. `null` means no failover to that provider.
 */
function mapModel(map, model, provider) {
  let best
  let bestLength = -1
  if (typeof model === 'string') {
    for (const [key, targets] of map) {
      if (key !== 'default' && key.length > bestLength && model.startsWith(key) && provider in targets) {
        best = targets[provider]
        bestLength = key.length
      }
    }
  }
  if (bestLength >= 0) return best
  return map.get('default')?.[provider] ?? null
}

module.exports = { DEFAULT_MODEL_MAP, PROVIDERS, buildModelMap, mapModel }
