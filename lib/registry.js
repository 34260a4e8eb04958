'use strict'
// Registries of breakers by name. `globalRegistry` is where a breaker registers by default.

const { EventEmitter } = require('node:events')
const errors = require('./errors')

let breakerModule = null
const CircuitBreaker = () => (breakerModule ??= require('./breaker')).CircuitBreaker
let sharedModule = null
const shared = () => (sharedModule ??= require('./shared'))

class CircuitBreakerRegistry extends EventEmitter {
  #breakers = new Map()

  /** @internal called by the CircuitBreaker constructor before it creates anything */
  _checkFree(name) {
    if (this.#breakers.has(name)) {
      throw new errors.BreakwaterError(
        errors.CODES.DUPLICATE_BREAKER,
        `A circuit breaker named ${JSON.stringify(name)} already exists in this registry; use registry.get() or getOrCreate()`,
        { breaker: name },
      )
    }
  }

  /** @internal */
  _add(breaker) {
    this._checkFree(breaker.name)
    this.#breakers.set(breaker.name, breaker)
  }

  /**
   * @internal A process-wide breaker was joined with options that differ from its first
   * creator's, which win: say so loudly, on the registry and as a process warning.
   */
  _conflict(breaker, differences) {
    const message =
      `Circuit breaker ${JSON.stringify(breaker.name)} already exists in this process with other options; ` +
      `the first creator's options are kept: ${differences}`
    const warning = { name: breaker.name, message, differences }
    if (this.listenerCount('warning') > 0) this.emit('warning', warning)
    process.emitWarning(message, { code: 'BREAKWATER_OPTIONS_CONFLICT' })
  }

  get(name) {
    return this.#breakers.get(name)
  }

  has(name) {
    return this.#breakers.has(name)
  }

  /** The breaker with this name, created with `options` if there is none yet. */
  getOrCreate(name, options) {
    const found = this.#breakers.get(name)
    if (found !== undefined) return found
    const Breaker = CircuitBreaker()
    return new Breaker(name, { ...options, registry: this })
  }

  /** Removes a breaker from this registry (it keeps working, unregistered). */
  delete(name) {
    const b = this.#breakers.get(name)
    if (b === undefined) return false
    this.#breakers.delete(name)
    b.registry = null
    return true
  }

  list() {
    return [...this.#breakers.values()]
  }

  get size() {
    return this.#breakers.size
  }

  resetAll() {
    for (const b of this.#breakers.values()) b.reset()
  }

  getAllMetrics() {
    return this.list().map((b) => b.getMetrics())
  }

  /**
   * Shares this registry's breakers with the other instances of the fleet through Redis (only
   * `globalRegistry`, whose breakers are process-wide). Resolves after the first connection
   * attempt with `{ connected, instanceId }`; when Redis is unreachable it keeps reconnecting
   * in the background ('sharedStateError', then 'sharedStateConnected'), breakers running
   * locally meanwhile. Rejects only for bad options (ERR_INVALID_CONFIG) or a second connection.
   */
  async connectShared(options) {
    if (this !== globalRegistry) {
      throw new errors.BreakwaterError(
        errors.CODES.INVALID_ARGUMENT,
        'Only globalRegistry can be shared: its breakers are process-wide by name; other registries stay local',
      )
    }
    return shared().connect(this, options)
  }

  /** Stops sharing. Breakers keep their state and go on locally. */
  async disconnectShared() {
    if (this !== globalRegistry) return
    await shared().disconnect()
  }
}

const globalRegistry = new CircuitBreakerRegistry()

module.exports = { CircuitBreakerRegistry, globalRegistry }
