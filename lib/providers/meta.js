'use strict'
// The Meta ad publisher: creative, then ad set, then ad, over the Graph API with Node's fetch,
// behind the `meta_api` breaker. Meta has no idempotency key, so each object's name carries a tag
// derived from ours, every step is checkpointed before and after its request, and a step whose
// request may or may not have gone through (a timeout, a crash) is looked up by its tag before it
// is created again. A publish that meets throttling or a transient error goes to the (persistent)
// retry queue and drains as the breaker lets calls through.

const { EventEmitter } = require('node:events')
const crypto = require('node:crypto')
const errors = require('../errors')
const { systemClock } = require('../clock')
const { classifyMeta } = require('./taxonomy')
const { providerBreaker, Target, openBreakerFor, anySignal } = require('./failover')
const { StepStore, STEPS } = require('./meta-steps')

const SERVICE = 'meta_api'
const OPERATION = 'meta.publish_ad'
const DEFAULT_BASE_URL = 'https://graph.facebook.com'
const DEFAULT_API_VERSION = 'v21.0'
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
const DEFAULT_QUEUE_TTL_MS = 86_400_000
const DEFAULT_MAX_ATTEMPTS = 5
const EDGES = { creative: 'adcreatives', adset: 'adsets', ad: 'ads' }
const USAGE_HEADERS = ['x-business-use-case-usage', 'x-ad-account-usage', 'x-app-usage']
const OPTION_KEYS = ['accessToken', 'apiVersion', 'baseUrl', 'persistPath', 'breakerOptions', 'queue', 'registry', 'requestTimeoutMs']
const REQUEST_KEYS = ['adAccountId', 'campaignId', 'adCreative', 'targeting', 'budget', 'idempotencyKey', 'name', 'adSetName', 'status']

const META_ADAPTER = { name: 'meta', breakerName: SERVICE }

/** An error answer of the Graph API. Its message never holds the access token. */
class MetaGraphError extends Error {
  constructor(status, body, headers, redact) {
    const e = body?.error ?? {}
    const code = typeof e.code === 'number' ? e.code : undefined
    const text = redact(typeof e.message === 'string' ? e.message : `HTTP ${status}`)
    super(
      `Meta Graph API error${code !== undefined ? ` ${code}` : ''}${e.error_subcode !== undefined ? `/${e.error_subcode}` : ''} (HTTP ${status}): ${text}`,
    )
    this.name = 'MetaGraphError'
    this.status = status
    this.graph = {
      code,
      subcode: e.error_subcode,
      type: e.type,
      isTransient: e.is_transient === true,
      fbtraceId: e.fbtrace_id,
      message: text,
    }
    // Only the usage headers, which say how long a throttle lasts.
    this.headers = {}
    for (const h of USAGE_HEADERS) {
      const v = headers?.get?.(h)
      if (v !== null && v !== undefined) this.headers[h] = v
    }
  }
}

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex')

/** JSON with sorted keys, so that equal requests hash equally. */
function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(value[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

/** The tag in every object's name: short, and the same for every attempt of one publish. */
const tagOf = (key) => `[bw:${sha256(key).slice(0, 16)}]`
const tagged = (name, tag) => `${name} ${tag}`

function readOptions(options) {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidConfig('MetaCircuitBreaker options', 'options', options, 'an object')
  }
  const problems = []
  const problem = (field, value, expected) => problems.push(`${field} = ${errors.describe(value)} (expected ${expected})`)
  for (const k of Object.keys(options))
    if (!OPTION_KEYS.includes(k)) problem(k, options[k], `no such option; the options are ${OPTION_KEYS.join(', ')}`)
  const token = options.accessToken ?? process.env.META_ACCESS_TOKEN
  // The token's value is never described, here or anywhere.
  if (typeof token !== 'string' || token.length === 0)
    problems.push('accessToken is missing or not a non-empty string (give it, or set META_ACCESS_TOKEN)')
  const apiVersion = options.apiVersion ?? DEFAULT_API_VERSION
  if (typeof apiVersion !== 'string' || !/^v\d+\.\d+$/.test(apiVersion))
    problem('apiVersion', apiVersion, 'a Graph API version such as "v21.0"')
  const baseUrl = options.baseUrl ?? DEFAULT_BASE_URL
  if (typeof baseUrl !== 'string' || !/^https?:\/\//.test(baseUrl)) problem('baseUrl', baseUrl, 'an http(s) URL')
  const persistPath = options.persistPath
  if (persistPath !== undefined && (typeof persistPath !== 'string' || persistPath.length === 0))
    problem('persistPath', persistPath, 'a file path')
  const queue = options.queue
  // `queue` is a RequestQueue, or the options of a Redis queue to build ({ redisUrl, ... }).
  const redisQueue = queue !== null && typeof queue === 'object' && typeof queue.enqueue !== 'function' && 'redisUrl' in queue
  if (
    queue !== undefined &&
    !redisQueue &&
    (queue === null || typeof queue.enqueue !== 'function' || typeof queue.registerHandler !== 'function')
  ) {
    problem('queue', queue, "a RequestQueue (or a FallbackHandler's queue), or Redis queue options { redisUrl, ... }")
  }
  if (queue !== undefined && persistPath !== undefined)
    problem('persistPath', persistPath, 'nothing when a queue is given: give the queue its persistPath')
  const bo = options.breakerOptions
  if (bo !== undefined && (bo === null || typeof bo !== 'object' || Array.isArray(bo)))
    problem('breakerOptions', bo, 'an object of CircuitBreaker options')
  else if (bo !== undefined && ('registry' in bo || 'fallback' in bo))
    problem('breakerOptions', bo, 'no registry (use the registry option) and no fallback (a failed publish is queued instead)')
  const registry = options.registry
  if (registry !== undefined && registry !== null && typeof registry?.getOrCreate !== 'function')
    problem('registry', registry, 'a CircuitBreakerRegistry, or null')
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2_147_483_647)
    problem('requestTimeoutMs', timeoutMs, 'a number of milliseconds greater than 0')
  if (problems.length > 0)
    throw new errors.BreakwaterError(errors.CODES.INVALID_CONFIG, `Invalid MetaCircuitBreaker options: ${problems.join('; ')}`)
  return {
    token,
    apiVersion,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    persistPath,
    queue: redisQueue ? undefined : queue,
    redisQueue: redisQueue ? queue : undefined,
    breakerOptions: bo === undefined ? undefined : { ...bo },
    registry: registry === undefined ? require('../registry').globalRegistry : registry,
    timeoutMs,
  }
}

function checkPublishRequest(request) {
  if (request === null || typeof request !== 'object' || Array.isArray(request))
    throw errors.invalidArgument('request', request, 'an object')
  const problems = []
  for (const k of Object.keys(request))
    if (!REQUEST_KEYS.includes(k)) problems.push(`${k} is not a field (the fields are ${REQUEST_KEYS.join(', ')})`)
  if (typeof request.adAccountId !== 'string' || !/^act_\d+$/.test(request.adAccountId))
    problems.push(`adAccountId = ${errors.describe(request.adAccountId)} (expected "act_<digits>")`)
  if (typeof request.campaignId !== 'string' || request.campaignId.length === 0)
    problems.push(`campaignId = ${errors.describe(request.campaignId)} (expected a campaign id string)`)
  for (const f of ['adCreative', 'targeting', 'budget']) {
    const v = request[f]
    if (v === null || typeof v !== 'object' || Array.isArray(v)) problems.push(`${f} = ${errors.describe(v)} (expected an object)`)
  }
  for (const f of ['idempotencyKey', 'name', 'adSetName', 'status']) {
    if (request[f] !== undefined && (typeof request[f] !== 'string' || request[f].length === 0))
      problems.push(`${f} = ${errors.describe(request[f])} (expected a non-empty string)`)
  }
  if (problems.length > 0)
    throw new errors.BreakwaterError(errors.CODES.INVALID_ARGUMENT, `Invalid publishAd request: ${problems.join('; ')}`)
  // A JSON copy: it is journaled, and the caller's objects are not kept.
  const { idempotencyKey, ...fields } = request
  const payload = JSON.parse(JSON.stringify(fields))
  return { key: idempotencyKey ?? `sha256:${sha256(stableJson(payload))}`, payload }
}

class MetaCircuitBreaker extends EventEmitter {
  #token

  constructor(options) {
    super()
    const o = readOptions(options)
    this.#token = o.token
    this.apiVersion = o.apiVersion
    this.baseUrl = o.baseUrl
    this._timeoutMs = o.timeoutMs
    this._clock = o.breakerOptions?.clock ?? systemClock
    this._target = new Target(META_ADAPTER, null, providerBreaker(META_ADAPTER, o.registry, o.breakerOptions), o.breakerOptions)
    if (o.queue !== undefined) {
      this._queue = o.queue
      this._ownQueue = false
    } else {
      const { RequestQueue } = require('../queue')
      // Meta may ask to stay away for longer than the queue's default TTL (300 s): a publish waits a day.
      this._queue = new RequestQueue({
        persistPath: o.persistPath,
        registry: o.registry,
        clock: this._clock,
        queueTtlMs: DEFAULT_QUEUE_TTL_MS,
        maxRetryAttempts: DEFAULT_MAX_ATTEMPTS,
        // The Redis backend: publishes queued by any instance, drained by all.
        ...(o.redisQueue === undefined ? {} : { queue: o.redisQueue }),
      })
      this._ownQueue = true
    }
    const queuePath = this._queue.options?.persistPath ?? o.persistPath ?? null
    this._steps = new StepStore(queuePath === null ? null : `${queuePath}.meta-steps`)
    this._inflight = new Map()
    this._queue.registerHandler(OPERATION, (payload, attempt, context) => this._handle(payload, context))
    this._onDeadLetter = (d) => {
      if (d.operation !== OPERATION) return
      this._steps.release(d.idempotencyKey)
      this.emit('deadLetter', {
        requestId: d.id,
        idempotencyKey: d.idempotencyKey,
        reason: d.reason,
        lastError: d.lastError,
        created: this._created(d.idempotencyKey),
      })
    }
    this._queue.on('deadLetter', this._onDeadLetter)
    // Publishes that a crash interrupted before they reached the queue are resumed through it.
    this._ready = this._recover()
    this._ready.catch(() => {}) // reported by publishAd and `ready`
  }

  /** The `meta_api` breaker. */
  get breaker() {
    return this._target.breaker
  }

  /** The retry queue. */
  get queue() {
    return this._queue
  }

  /** Resolves once the publishes a crash interrupted are back in the queue. */
  get ready() {
    return this._ready
  }

  async _recover() {
    for (const { key, payload } of this._steps.unfinished()) {
      if (this._queuedItem(key) !== undefined) continue
      const requestId = await this._queue.enqueue(SERVICE, { operation: OPERATION, payload }, { idempotencyKey: key })
      this.emit('queued', { requestId, idempotencyKey: key, reason: 'recovered', created: this._created(key) })
    }
  }

  _queuedItem(key) {
    // A Redis queue is listed asynchronously: there the enqueue's fleet-wide dedup by key
    // returns the queued item's id instead.
    if (this._queue.distributed === true) return undefined
    return this._queue.list(SERVICE).find((i) => i.operation === OPERATION && i.idempotencyKey === key)
  }

  _created(key) {
    const ids = this._steps.ids(key)
    return { creativeId: ids.creative, adSetId: ids.adset, adId: ids.ad }
  }

  _redact(text) {
    return String(text).split(this.#token).join('[redacted]')
  }

  /**
   * Publishes an ad: `{ queued: false, adId, adSetId, creativeId }`, or `{ queued: true, requestId }`
   * when it was queued for retry. The same idempotency key (by default, a hash of the request) is
   * the same ad: it is never published twice.
   */
  async publishAd(request) {
    const { key, payload } = checkPublishRequest(request)
    await this._ready
    if (this._steps.isFinished(key)) return { queued: false, ...this._created(key) }
    const inflight = this._inflight.get(key)
    if (inflight !== undefined) return inflight
    const item = this._queuedItem(key)
    if (item !== undefined) return { queued: true, requestId: item.id }
    const p = this._publishNow(key, payload).finally(() => this._inflight.delete(key))
    this._inflight.set(key, p)
    return p
  }

  async _publishNow(key, payload) {
    // Durable before the first request: from here on, a crash is resumed at the next start.
    this._steps.begin(key, payload)
    try {
      await this._target.breaker.execute(({ signal }) => this._run(key, payload, { signal, unknownPast: false }))
      const created = this._created(key)
      this.emit('published', { ...created, idempotencyKey: key, queued: false })
      return { queued: false, ...created }
    } catch (err) {
      const v = classifyMeta(err)
      this._react(v, err)
      if (!v.queue) {
        this._steps.release(key)
        throw err
      }
      let requestId
      try {
        requestId = await this._queue.enqueue(SERVICE, { operation: OPERATION, payload }, { idempotencyKey: key })
      } catch (queueErr) {
        this._steps.release(key)
        throw queueErr
      }
      this.emit('queued', { requestId, idempotencyKey: key, reason: v.kind, created: this._created(key) })
      return { queued: true, requestId }
    }
  }

  /** A queued attempt: the queue holds the breaker's permit and counts the outcome. */
  async _handle(payload, context) {
    const key = context.idempotencyKey
    if (!this._steps.isFinished(key)) {
      // Without durable checkpoints, a publish this process has no record of may have been
      // started by an earlier one: each of its steps is looked up before it is created.
      const unknownPast = !this._steps.persistent && !this._steps.has(key)
      this._steps.begin(key, payload)
      try {
        await this._run(key, payload, { unknownPast })
      } catch (err) {
        this._react(classifyMeta(err), err)
        throw err
      }
    }
    const created = this._created(key)
    this.emit('published', { ...created, idempotencyKey: key, requestId: context.id, queued: true })
    return created
  }

  /** Runs the steps that are not done yet; a step of unknown outcome is looked up first. */
  async _run(key, payload, { signal, unknownPast }) {
    const steps = this._steps
    const tag = tagOf(key)
    for (const step of STEPS) {
      if (steps.ids(key)[step] !== undefined) continue
      if (signal?.aborted) throw signal.reason
      let id
      if (steps.uncertain(key, step) || unknownPast) id = await this._lookup(payload.adAccountId, step, tag, signal)
      if (id === undefined) {
        steps.start(key, step)
        let res
        try {
          res = await this._graph('POST', `${payload.adAccountId}/${EDGES[step]}`, {
            body: this._body(step, payload, steps.ids(key), tag),
            signal,
          })
        } catch (err) {
          // An error answer below 500 means nothing was created; anything else may have been.
          if (err instanceof MetaGraphError && err.status < 500) steps.abandon(key, step)
          throw err
        }
        id = res?.id
        if (typeof id !== 'string' && typeof id !== 'number')
          throw new MetaGraphError(
            502,
            { error: { message: `no id in the answer to creating the ${step}`, is_transient: true } },
            undefined,
            (t) => t,
          )
        id = String(id)
      }
      steps.done(key, step, id)
    }
    steps.finish(key)
  }

  _body(step, payload, ids, tag) {
    const status = payload.status ?? 'PAUSED'
    if (step === 'creative') return { ...payload.adCreative, name: tagged(payload.adCreative.name ?? 'Creative', tag) }
    if (step === 'adset') {
      return {
        ...payload.budget,
        name: tagged(payload.adSetName ?? payload.name ?? 'Ad set', tag),
        campaign_id: payload.campaignId,
        targeting: payload.targeting,
        status,
      }
    }
    return { name: tagged(payload.name ?? 'Ad', tag), adset_id: ids.adset, creative: { creative_id: ids.creative }, status }
  }

  /** The id of an object of this step whose name carries the tag, if one exists. */
  async _lookup(adAccountId, step, tag, signal) {
    const res = await this._graph('GET', `${adAccountId}/${EDGES[step]}`, {
      query: { fields: 'id,name', filtering: JSON.stringify([{ field: 'name', operator: 'CONTAIN', value: tag }]), limit: '50' },
      signal,
    })
    // The filter is checked here too: not every edge filters by name on Meta's side.
    const found = (Array.isArray(res?.data) ? res.data : []).find((o) => typeof o?.name === 'string' && o.name.includes(tag))
    return found === undefined ? undefined : String(found.id)
  }

  /** One Graph API request, with the access token in a header (never in the URL) and a timeout on the clock. */
  async _graph(method, path, { query, body, signal, timeoutMs } = {}) {
    const url = new URL(`${this.baseUrl}/${this.apiVersion}/${path}`)
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v)
    const ms = timeoutMs ?? this._timeoutMs
    const controller = new AbortController()
    const timeout = new errors.BreakwaterError(
      errors.CODES.CALL_TIMEOUT,
      `Meta Graph API ${method} ${url.pathname} timed out after ${ms} ms`,
      { name: 'CallTimeoutError', breaker: SERVICE, timeoutMs: ms },
    )
    const timer = this._clock.setTimer(() => controller.abort(timeout), ms)
    const headers = { authorization: `Bearer ${this.#token}`, accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res
    let text
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: anySignal([controller.signal, signal]),
      })
      text = await res.text()
    } catch (err) {
      if (controller.signal.aborted) throw timeout
      if (err instanceof Error) err.message = this._redact(err.message)
      throw err
    } finally {
      this._clock.clearTimer(timer)
    }
    let json
    try {
      json = text === '' ? {} : JSON.parse(text)
    } catch {
      json = { error: { message: `a non-JSON answer: ${text.slice(0, 200)}`, is_transient: res.status >= 500 } }
    }
    if (!res.ok || (json !== null && typeof json === 'object' && json.error !== undefined)) {
      throw new MetaGraphError(res.status, json, res.headers, (t) => this._redact(t))
    }
    return json
  }

  _react(v, err) {
    if (v.open === 'usage') {
      openBreakerFor(
        this._target.breaker,
        this._clock,
        v.retryAfterMs ?? this._target.resetTimeoutMs,
        `meta throttled${err?.graph?.code !== undefined ? ` (code ${err.graph.code})` : ''}`,
      )
    }
    if (v.authError)
      this.emit('authError', {
        provider: 'meta',
        breaker: SERVICE,
        code: err?.graph?.code,
        subcode: err?.graph?.subcode,
        message: this._redact(err?.message ?? ''),
      })
  }

  /** The publishes waiting in the queue (and dead letters' states are `dead`). */
  getQueuedAds() {
    return this._queue
      .list(SERVICE)
      .filter((i) => i.operation === OPERATION)
      .map((i) => ({
        requestId: i.id,
        idempotencyKey: i.idempotencyKey,
        adAccountId: i.payload?.adAccountId,
        campaignId: i.payload?.campaignId,
        state: i.state,
        attempts: i.attempts,
        nextAttemptAt: i.nextAttemptAt,
        lastError: i.lastError,
        created: this._created(i.idempotencyKey),
      }))
  }

  /** A cheap authenticated request (`GET /me`), for the health check. */
  async _ping(timeoutMs, signal) {
    const me = await this._graph('GET', 'me', { query: { fields: 'id' }, signal, timeoutMs })
    return { ok: true, details: { id: me?.id } }
  }

  /** Stops: closes the queue if this publisher created it, and the checkpoint file. */
  async close() {
    this._queue.off('deadLetter', this._onDeadLetter)
    await this._ready.catch(() => {})
    if (this._ownQueue) await this._queue.close()
    this._steps.close()
  }
}

/** Registers `meta_api` with `monitor`: an authenticated `GET /me`, linked to the breaker. */
function setupMetaHealthCheck(meta, monitor, options) {
  if (!(meta instanceof MetaCircuitBreaker)) throw errors.invalidArgument('breaker', meta, 'a MetaCircuitBreaker')
  if (monitor === null || typeof monitor !== 'object' || typeof monitor.registerService !== 'function') {
    throw errors.invalidArgument('monitor', monitor, "breakwater's HealthMonitor (an object with registerService(name, check, options))")
  }
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw errors.invalidArgument('options', options, 'an object: { intervalMs?, ...HealthMonitor service options }')
  }
  const serviceOptions = {}
  for (const [k, v] of Object.entries(options ?? {})) serviceOptions[k === 'intervalMs' ? 'checkIntervalMs' : k] = v
  serviceOptions.breaker ??= SERVICE
  const check = (context) => meta._ping(serviceOptions.checkTimeoutMs, context?.signal)
  monitor.registerService(SERVICE, check, serviceOptions)
  return { service: SERVICE, check }
}

module.exports = { MetaCircuitBreaker, MetaGraphError, setupMetaHealthCheck, tagOf }
