'use strict'
// The failover engine behind the LLM breakers: tries the providers in order, each through its own
// breaker, classifies every error with the taxonomy, opens breakers for the time a provider asks,
// and fails over only where the taxonomy says so. Streams fail over only before their first chunk.

const { CircuitBreaker } = require('../breaker')
const { systemClock } = require('../clock')
const errors = require('../errors')
const nativeBinding = require('../native')
const { classify, markCallerAbort } = require('./taxonomy')
const { mapModel } = require('./models')
const { UntranslatableError } = require('./translate')

// Mirrors the core's DEFAULT_MAX_RESET_TIMEOUT_MS (src/core/breaker/config.rs): the cap of the
// open time, which a quota or auth error uses as "as long as a breaker ever stays open".
const DEFAULT_MAX_RESET_TIMEOUT_MS = 300_000
const MAX_OPEN_MS = 2_147_483_647 // the core's MAX_DURATION_MS

// Marks the breakers whose `isFailure` consults the taxonomy, with the provider it classifies for.
const CLASSIFIED = Symbol('breakwater.providers.classified')

/**
 * Makes a breaker's `isFailure` consult the taxonomy first: an error that the taxonomy says does
 * not count (a 400, a 429 that opens the breaker by itself, the caller's abort) is ignored, and
 * every other error goes to the breaker's own `isFailure`, if it has one. A breaker that another
 * part of the app created under the same name (say, an Express route's) gets the same treatment,
 * so a 400 never counts whoever created the breaker.
 */
function attachClassifier(breaker, provider) {
  if (breaker[CLASSIFIED] !== undefined) return
  const own = breaker._isFailure
  breaker._isFailure = (err) => {
    if (!classify(provider, err).countsAsFailure) return false
    return own === undefined ? true : own(err)
  }
  Object.defineProperty(breaker, CLASSIFIED, { value: provider })
}

/** An AbortSignal that fires when any of `signals` does (AbortSignal.any needs Node 20.3). */
function anySignal(signals) {
  const list = signals.filter((s) => s !== undefined && s !== null)
  if (list.length === 1) return list[0]
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(list)
  const controller = new AbortController()
  for (const s of list) {
    if (s.aborted) {
      controller.abort(s.reason)
      break
    }
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true })
  }
  return controller.signal
}

function callerAbortError(signal) {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError')
}

/**
 * Opens `breaker` for `ms` (a provider's own retry hint), except that an operator's forced-open
 * or disabled state is theirs to end, and a longer open already in force (exhausted quota) is not
 * shortened by a later, shorter hint.
 */
function openBreakerFor(breaker, clock, ms, reason) {
  const m = breaker.getMetrics()
  if (m.state === 'forced_open' || m.state === 'disabled') return
  if (m.state === 'open' && m.nextAttemptAt !== null && m.nextAttemptAt >= clock.now() + ms) return
  breaker.openFor(Math.min(MAX_OPEN_MS, Math.max(1, ms)), reason)
}

/** One provider of a chain: its adapter, its client and its breaker. */
class Target {
  constructor(adapter, client, breaker, breakerOptions) {
    this.adapter = adapter
    this.provider = adapter.name
    this.client = client
    this.breaker = breaker
    const reset = nativeBinding.breakerOptions(breaker._id).resetTimeoutMs
    this.resetTimeoutMs = reset
    this.maxResetTimeoutMs = breakerOptions?.maxResetTimeoutMs ?? Math.max(DEFAULT_MAX_RESET_TIMEOUT_MS, reset)
  }
}

/**
 * The breaker of one provider, shared by every chain of a registry: found by name, or created
 * with `breakerOptions`.
 */
function providerBreaker(adapter, registry, breakerOptions) {
  const name = adapter.breakerName
  let breaker
  if (registry === null) breaker = new CircuitBreaker(name, { ...breakerOptions, registry: null })
  else breaker = registry.getOrCreate(name, breakerOptions)
  if (breaker._fallback !== undefined) {
    // A breaker fallback would answer in place of the provider, and the chain could not fail over.
    throw errors.invalidConfig(
      'provider options',
      `the fallback of breaker "${name}"`,
      breaker._fallback,
      'none: provider breakers fail over to the next provider instead',
    )
  }
  attachClassifier(breaker, adapter.name)
  return breaker
}

class ProviderChain {
  /**
   * @param {import('node:events').EventEmitter} owner emits `failover` and `authError`
   * @param {object} config `{ order: adapters (the first is the source format), clients, modelMap, breakerOptions, registry, clock }`
   */
  constructor(owner, config) {
    this.owner = owner
    this.source = config.order[0]
    this.modelMap = config.modelMap
    this.clock = config.clock ?? systemClock
    this.targets = []
    for (const adapter of config.order) {
      const client = config.clients[adapter.name]
      if (client === undefined || client === null) continue
      this.targets.push(
        new Target(adapter, client, providerBreaker(adapter, config.registry, config.breakerOptions), config.breakerOptions),
      )
    }
  }

  target(provider) {
    return this.targets.find((t) => t.provider === provider)
  }

  /**
   * The request for `target`: the caller's own for the source provider (every field passes
   * through), otherwise translated, with the model from the model map. Null when this target
   * cannot serve the request.
   */
  _requestFor(target, request, state) {
    if (target.adapter === this.source) return { body: request }
    const model = mapModel(this.modelMap, this.source.modelOf(request), target.provider)
    if (model === null) return { skip: 'no_model' }
    try {
      state.neutral ??= this.source.fromRequest(request)
      return { body: target.adapter.toRequest(state.neutral, model) }
    } catch (err) {
      if (err instanceof UntranslatableError) return { skip: 'untranslatable', error: err }
      throw err
    }
  }

  /** Runs the chain for a request; `open(target, body, signal)` starts the call on one provider. */
  async _run(request, options, open) {
    const callerSignal = options?.signal
    const state = { neutral: undefined }
    const attempts = []
    let previous = null
    for (const target of this.targets) {
      if (callerSignal?.aborted) throw callerAbortError(callerSignal)
      const { body, skip, error } = this._requestFor(target, request, state)
      if (skip !== undefined) {
        attempts.push({
          provider: target.provider,
          breaker: target.breaker.name,
          outcome: 'skipped',
          reason: skip,
          ...(error && { error }),
        })
        continue
      }
      if (previous !== null) {
        this.owner.emit('failover', { from: previous.provider, to: target.provider, reason: previous.reason, error: previous.error })
      }
      try {
        const value = await target.breaker.execute(async ({ signal }) => {
          try {
            return await open(target, body, anySignal([signal, callerSignal]))
          } catch (err) {
            if (callerSignal?.aborted) markCallerAbort(err)
            throw err
          }
        })
        return { target, body, value }
      } catch (err) {
        if (errors.isCircuitOpenError(err) && err.breaker === target.breaker.name) {
          attempts.push({
            provider: target.provider,
            breaker: target.breaker.name,
            outcome: 'rejected',
            reason: 'circuit_open',
            retryAfterMs: err.retryAfterMs,
            error: err,
          })
          previous = { provider: target.provider, reason: 'circuit_open', error: err }
          continue
        }
        const v = classify(target.provider, err)
        this._react(target, v, err)
        if (!v.failover) throw err
        attempts.push({
          provider: target.provider,
          breaker: target.breaker.name,
          outcome: 'failed',
          reason: v.kind,
          ...(v.status !== undefined && { status: v.status }),
          error: err,
        })
        previous = { provider: target.provider, reason: v.kind, error: err }
      }
    }
    throw this._allUnavailable(attempts)
  }

  /** Opens the breaker for the time the error asks (a rate limit, exhausted quota, a bad key). */
  _react(target, v, err) {
    if (v.open !== null) {
      const ms = v.open === 'max' ? target.maxResetTimeoutMs : (v.retryAfterMs ?? target.resetTimeoutMs)
      this._openFor(
        target,
        Math.min(MAX_OPEN_MS, Math.max(1, ms)),
        `${target.provider} ${v.kind}${v.status !== undefined ? ` (${v.status})` : ''}`,
      )
    }
    if (v.authError) {
      this.owner.emit('authError', {
        provider: target.provider,
        breaker: target.breaker.name,
        status: v.status,
        message: err instanceof Error ? err.message : String(err),
      })
    }
  }

  _openFor(target, ms, reason) {
    openBreakerFor(target.breaker, this.clock, ms, reason)
  }

  /** ERR_ALL_PROVIDERS_UNAVAILABLE, with the soonest time any provider that could serve might be back. */
  _allUnavailable(attempts) {
    const now = this.clock.now()
    let retryAfterMs = null
    for (const a of attempts) {
      if (a.outcome === 'skipped') continue
      const m = this.target(a.provider).breaker.getMetrics()
      let ms
      if (m.state === 'forced_open') continue
      if (m.state === 'open') ms = Math.max(0, (m.nextAttemptAt ?? now) - now)
      else ms = 0
      retryAfterMs = retryAfterMs === null ? ms : Math.min(retryAfterMs, ms)
    }
    const described = attempts.map((a) => {
      if (a.outcome === 'skipped') return `${a.provider} skipped (${a.reason})`
      if (a.outcome === 'rejected') return `${a.provider} circuit open`
      return `${a.provider} failed (${a.reason}${a.status !== undefined ? `, ${a.status}` : ''})`
    })
    const last = [...attempts].reverse().find((a) => a.error !== undefined)
    const when = retryAfterMs === null ? '' : `; retry after ${Math.ceil(retryAfterMs)} ms`
    return new errors.BreakwaterError(
      errors.CODES.ALL_PROVIDERS_UNAVAILABLE,
      `No provider could serve the request: ${described.length > 0 ? described.join('; ') : 'no provider configured'}${when}`,
      { name: 'AllProvidersUnavailableError', retryAfterMs, attempts, ...(last && { cause: last.error }) },
    )
  }

  _decorate(target, fields, raw) {
    const out = { ...fields, provider: target.provider }
    if (target.adapter !== this.source) out._fallback = target.provider
    out.raw = raw
    return out
  }

  /** One completion: `{ content, model, provider, usage, finishReason, _fallback?, raw }`. */
  async complete(request, options) {
    const { target, body, value } = await this._run(request, options, (t, b, signal) => t.adapter.create(t.client, b, signal))
    return this._decorate(target, target.adapter.result(value, target.adapter.modelOf(body)), value)
  }

  /**
   * A stream of `{ content, model, provider, finishReason, usage?, _fallback?, raw }` chunks. The
   * breaker's call ends at the first chunk with output: that is the latency it measures, and until
   * then a failure fails over. After it, an error goes to the caller, counts as one failure of the
   * provider, and is never restarted elsewhere (the caller has already shown part of an answer).
   */
  stream(request, options) {
    const chain = this
    return {
      [Symbol.asyncIterator]() {
        return chain._streamChunks(request, options)
      },
    }
  }

  async *_streamChunks(request, options) {
    const callerSignal = options?.signal
    const { target, value } = await this._run(request, options, async (t, body, signal) => {
      const controller = new AbortController()
      const sdkStream = await t.adapter.openStream(t.client, body, anySignal([signal, controller.signal]))
      const iterator = t.adapter.chunks(sdkStream, t.adapter.modelOf(body))[Symbol.asyncIterator]()
      try {
        const r = await iterator.next()
        // The SDKs end a stream quietly when its signal aborts: that is the caller's abort here.
        if (r.done && callerSignal?.aborted) throw callerAbortError(callerSignal)
        return { iterator, first: r.done ? null : r.value, controller }
      } catch (err) {
        controller.abort()
        throw err
      }
    })
    const { iterator, first } = value
    try {
      if (first === null) return
      yield this._decorate(target, strip(first), first.raw)
      for (;;) {
        let r
        try {
          r = await iterator.next()
        } catch (err) {
          this._failedMidStream(target, err, callerSignal)
          throw err
        }
        if (r.done) return
        yield this._decorate(target, strip(r.value), r.value.raw)
      }
    } finally {
      // The consumer stopped early, or the stream failed: release the connection, and let the
      // SDK's iterator run its own cleanup.
      value.controller.abort()
      iterator.return?.().catch(() => {})
    }
  }

  _failedMidStream(target, err, callerSignal) {
    if (callerSignal?.aborted) return
    const v = classify(target.provider, err)
    if (v.countsAsFailure) target.breaker.tryAcquire()?.failure(err)
    this._react(target, v, err)
  }
}

function strip(chunk) {
  const { raw: _raw, ...fields } = chunk
  return fields
}

module.exports = { ProviderChain, Target, providerBreaker, attachClassifier, openBreakerFor, anySignal, DEFAULT_MAX_RESET_TIMEOUT_MS }
