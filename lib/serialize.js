'use strict'
// Cached values and queued payloads are stored as JSON. `toJson` refuses what JSON cannot hold
// (a cycle, a BigInt) and what it would silently lose (a function, a symbol, a Map, a Set, a
// Promise), with ERR_NOT_SERIALIZABLE naming where in the value the problem is.

const { BreakwaterError, CODES } = require('./errors')

function notSerializable(what, reason) {
  return new BreakwaterError(CODES.NOT_SERIALIZABLE, `${what} cannot be stored as JSON: ${reason}`, { reason })
}

const LOST = [
  [Map, 'a Map (JSON would store it as {})'],
  [Set, 'a Set (JSON would store it as {})'],
  [WeakMap, 'a WeakMap'],
  [WeakSet, 'a WeakSet'],
  [Promise, 'a Promise (await it first)'],
]

/** What JSON would lose in `v` itself (not its children), or null. */
function lossOf(v) {
  switch (typeof v) {
    case 'function':
      return 'a function'
    case 'symbol':
      return 'a symbol'
    case 'bigint':
      return 'a BigInt'
    case 'object': {
      if (v === null || Array.isArray(v)) return null
      const proto = Object.getPrototypeOf(v)
      if (proto === Object.prototype || proto === null) return null
      for (const [type, reason] of LOST) if (v instanceof type) return reason
      return null
    }
    default:
      return null
  }
}

/**
 * The fast check, run on every value: true when nothing would be lost. It follows what
 * JSON.stringify follows (it runs after stringify, so there is no cycle), and stops at
 * objects with a toJSON method (a Date), which stringify hands over to.
 */
function clean(v) {
  if (typeof v !== 'object') return typeof v !== 'function' && typeof v !== 'symbol' && typeof v !== 'bigint'
  if (v === null) return true
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!clean(v[i])) return false
    return true
  }
  if (typeof v.toJSON === 'function') return true
  if (lossOf(v) !== null) return false
  for (const k in v) if (!clean(v[k])) return false
  return true
}

/** The slow path, only after `clean` said no: where the problem is, precisely (own keys only). */
function findLoss(v, path) {
  const here = lossOf(v)
  if (here !== null) return `${here} at ${path}`
  if (typeof v !== 'object' || v === null) return null
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = findLoss(v[i], `${path}[${i}]`)
      if (found !== null) return found
    }
    return null
  }
  if (typeof v.toJSON === 'function') return null
  for (const k of Object.keys(v)) {
    const found = findLoss(v[k], /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`)
    if (found !== null) return found
  }
  return null
}

/**
 * The JSON text of `value`, or ERR_NOT_SERIALIZABLE. `what` names the value in the message
 * ("the cached value", "payload").
 */
function toJson(value, what) {
  let json
  try {
    json = JSON.stringify(value)
  } catch (err) {
    const msg = String(err && err.message)
    if (/circular/i.test(msg)) throw notSerializable(what, 'it contains a cycle (an object that contains itself)')
    if (/BigInt/i.test(msg)) throw notSerializable(what, 'it contains a BigInt')
    if (err instanceof RangeError) throw notSerializable(what, 'it is nested too deeply')
    throw notSerializable(what, `JSON.stringify threw: ${msg}`)
  }
  if (json === undefined) throw notSerializable(what, `${lossOf(value) ?? 'undefined'} has no JSON form`)
  if (!clean(value)) {
    const found = findLoss(value, 'value')
    if (found !== null) throw notSerializable(what, `it contains ${found}`)
  }
  return json
}

module.exports = { toJson, notSerializable }
