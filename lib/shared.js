'use strict'
// Sharing globalRegistry breakers across gateway instances through Redis (issue 6). Rust runs
// the Redis session and notices every local transition itself (whatever thread caused it); this
// layer receives the session's events on the thread that connected, applies the fleet's
// changes with each breaker's own clock, and turns failures into 'sharedStateError' events.

const os = require('node:os')
const { randomBytes } = require('node:crypto')
const nativeBinding = require('./native')
const { systemNow } = require('./clock')
const errors = require('./errors')

const { sharedConnect, sharedDisconnect, sharedApply, sharedStatus } = nativeBinding

let breakerModule = null
const flushOutcomes = () => (breakerModule ??= require('./breaker')).flushOutcomes()

function defaultInstanceId() {
  return `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
}

/** Applies an adoption or a resync to the breaker of that name, then lets its wrapper on this
 * thread emit the change at once (other threads see it on their next call). */
function apply(registry, ev) {
  const breaker = registry.get(ev.name)
  const now = breaker !== undefined ? breaker._now() : systemNow()
  flushOutcomes()
  const word = sharedApply(ev, now)
  if (breaker !== undefined && word !== 0) breaker._sync(word, now)
}

function emitError(registry, ev) {
  const err = new errors.BreakwaterError(errors.CODES.SHARED_STATE, ev.message ?? 'shared state error', {
    operation: ev.operation ?? 'unknown',
  })
  // A registry event, never an 'error' event: with no listener it is dropped, not thrown.
  registry.emit('sharedStateError', err)
}

function handle(registry, ev) {
  try {
    switch (ev.kind) {
      case 'adopt':
      case 'resync':
        apply(registry, ev)
        break
      case 'connected':
        registry.emit('sharedStateConnected', { instanceId: ev.instance, reconnect: ev.reconnect === true })
        break
      case 'error':
        emitError(registry, ev)
        break
      default:
        break
    }
  } catch (err) {
    // This runs from a native callback: nothing may escape it (a listener that throws, say).
    try {
      registry.emit('sharedStateError', Object.assign(err instanceof Error ? err : new Error(String(err)), { operation: ev.kind }))
    } catch {
      // a 'sharedStateError' listener threw: nowhere left to report it
    }
  }
}

async function connect(registry, options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidConfig('shared state options', 'options', options, 'an object with at least redisUrl')
  }
  const instanceIdDefault = defaultInstanceId()
  const pending = errors.native(() => sharedConnect(options, instanceIdDefault, (ev) => handle(registry, ev)))
  const outcome = await pending
  // The resync of every shared breaker, applied before connectShared resolves.
  for (const ev of outcome.events) handle(registry, ev)
  if (outcome.connected) handle(registry, { kind: 'connected', instance: outcome.instanceId, reconnect: false })
  return { connected: outcome.connected, instanceId: outcome.instanceId }
}

async function disconnect() {
  await sharedDisconnect()
}

function status() {
  return sharedStatus()
}

module.exports = { connect, disconnect, status, defaultInstanceId }
