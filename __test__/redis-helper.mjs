// Test helpers for the shared state: a minimal RESP client (so the tests need no Redis package),
// private redis-server processes on free ports, and gateway instances as child processes.
import net from 'node:net'
import { fork, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'

export const REDIS_URL = process.env.BREAKWATER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix no other test (or other worktree's run) uses. */
export function uniquePrefix(label) {
  return `bwtest:${label}:${process.pid}:${randomBytes(3).toString('hex')}:`
}

function encode(args) {
  let out = `*${args.length}\r\n`
  for (const a of args) {
    const s = String(a)
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`
  }
  return out
}

/** Parses one RESP reply at `i`; returns [value, next] or null when incomplete. */
function parse(buf, i) {
  const end = buf.indexOf('\r\n', i)
  if (end === -1) return null
  const type = String.fromCharCode(buf[i])
  const line = buf.toString('utf8', i + 1, end)
  const next = end + 2
  switch (type) {
    case '+':
      return [line, next]
    case '-':
      return [new Error(line), next]
    case ':':
      return [Number(line), next]
    case '$': {
      const n = Number(line)
      if (n === -1) return [null, next]
      if (buf.length < next + n + 2) return null
      return [buf.toString('utf8', next, next + n), next + n + 2]
    }
    case '*': {
      const n = Number(line)
      if (n === -1) return [null, next]
      const items = []
      let at = next
      for (let k = 0; k < n; k++) {
        const r = parse(buf, at)
        if (r === null) return null
        items.push(r[0])
        at = r[1]
      }
      return [items, at]
    }
    default:
      throw new Error(`RESP: unexpected type ${type}`)
  }
}

/** A tiny Redis client: `await r.cmd('GET', key)`; errors reject. */
export async function redisClient(url = REDIS_URL) {
  const u = new URL(url)
  const socket = net.connect(Number(u.port || 6379), u.hostname)
  await once(socket, 'connect')
  let buf = Buffer.alloc(0)
  const waiting = []
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const r = parse(buf, 0)
      if (r === null) break
      buf = buf.subarray(r[1])
      const w = waiting.shift()
      if (w === undefined) continue
      if (r[0] instanceof Error) w.reject(r[0])
      else w.resolve(r[0])
    }
  })
  const failAll = (err) => {
    for (const w of waiting.splice(0)) w.reject(err)
  }
  socket.on('error', failAll)
  socket.on('close', () => failAll(new Error('redis connection closed')))
  return {
    cmd(...args) {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject })
        socket.write(encode(args))
      })
    },
    close() {
      socket.destroy()
    },
  }
}

/** Deletes every key under `prefix`. */
export async function cleanKeys(prefix, url = REDIS_URL) {
  const r = await redisClient(url).catch(() => null)
  if (r === null) return
  try {
    let cursor = '0'
    do {
      const [next, keys] = await r.cmd('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await r.cmd('DEL', ...keys)
    } while (cursor !== '0')
  } finally {
    r.close()
  }
}

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address()
  srv.close()
  await once(srv, 'close')
  return port
}

/** Waits until `fn()` is truthy, checking every `everyMs`; throws after `timeoutMs`. */
export async function until(fn, { timeoutMs = 10_000, everyMs = 5, what = 'condition' } = {}) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/**
 * A private redis-server on `port` (no persistence unless `dir` is given, where `dump.rdb` is
 * written by SAVE and loaded at start; with `aof`, every write is appended and fsynced to the
 * AOF in `dir` before Redis answers). Resolves once it answers PING.
 */
export async function startRedis(port, { dir, aof = false } = {}) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', aof ? 'yes' : 'no', '--save', '']
  if (aof) args.push('--appendfsync', 'always')
  if (dir !== undefined) args.push('--dir', dir, '--dbfilename', 'dump.rdb')
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  const exited = once(child, 'exit')
  const url = `redis://127.0.0.1:${port}`
  await until(
    async () => {
      const r = await redisClient(url).catch(() => null)
      if (r === null) return false
      try {
        return (await r.cmd('PING')) === 'PONG'
      } catch {
        return false
      } finally {
        r.close()
      }
    },
    { timeoutMs: 10_000, everyMs: 20, what: `redis-server on port ${port}` },
  )
  return {
    url,
    port,
    child,
    /** SIGKILL, resolved once the process is gone. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

const INSTANCE = new URL('./fixtures/instance.mjs', import.meta.url)

/**
 * A gateway instance as a child process (fixtures/instance.mjs, or another `script` that speaks
 * the same IPC: replies `{ type: 'reply', id, result | error }`, events otherwise), given
 * `[label, ...args]`. `ask(cmd)` sends a command
 * and resolves with its result; `events` collects everything the child reports.
 */
export function startInstance(label, { execArgv = [], script = INSTANCE, args = [] } = {}) {
  const child = fork(script, [label, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv })
  const events = []
  const waiters = new Set()
  const pending = new Map()
  let seq = 0
  const exited = once(child, 'exit')
  child.on('message', (m) => {
    if (m.type === 'reply') {
      const p = pending.get(m.id)
      pending.delete(m.id)
      if (p === undefined) return
      if (m.error !== undefined) p.reject(new Error(`${label}: ${m.error}`))
      else p.resolve(m.result)
      return
    }
    events.push(m)
    for (const w of [...waiters]) {
      if (w.match(m)) {
        waiters.delete(w)
        w.resolve(m)
      }
    }
  })
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${label} exited (${code ?? signal})`))
    pending.clear()
  })
  return {
    label,
    child,
    events,
    ask(op, args = {}, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const id = ++seq
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${label} did not answer ${op}`))
        }, timeoutMs)
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer)
            resolve(v)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        })
        child.send({ id, op, ...args })
      })
    },
    /** The first event (already seen or coming) that `match`es. */
    waitFor(match, timeoutMs = 10_000, what = 'an event') {
      const seen = events.find(match)
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (m) => {
            clearTimeout(timer)
            resolve(m)
          },
        }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`${label}: no ${what} within ${timeoutMs} ms`))
        }, timeoutMs)
        waiters.add(w)
      })
    },
    /** Forgets the events seen so far. */
    clearEvents() {
      events.length = 0
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
    exited,
  }
}

/** Subscribes to `channel`; `messages` collects the decoded JSON payloads. */
export async function subscriber(channel, url = REDIS_URL) {
  const u = new URL(url)
  const socket = net.connect(Number(u.port || 6379), u.hostname)
  await once(socket, 'connect')
  const messages = []
  let buf = Buffer.alloc(0)
  let subscribed
  const ready = new Promise((r) => (subscribed = r))
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const r = parse(buf, 0)
      if (r === null) break
      buf = buf.subarray(r[1])
      const [kind, , payload] = r[0]
      if (kind === 'subscribe') subscribed()
      if (kind === 'message') {
        try {
          messages.push(JSON.parse(payload))
        } catch {
          messages.push({ raw: payload })
        }
      }
    }
  })
  socket.on('error', () => {})
  socket.write(encode(['SUBSCRIBE', channel]))
  await ready
  return { messages, close: () => socket.destroy() }
}

/** Fails at once, with the fix, when the shared Redis is not there. */
export async function requireRedis(url = REDIS_URL) {
  const r = await redisClient(url).catch(() => null)
  if (r === null) {
    throw new Error(
      `These tests need Redis at ${url} (set BREAKWATER_TEST_REDIS_URL to use another): ` +
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    )
  }
  r.close()
}
