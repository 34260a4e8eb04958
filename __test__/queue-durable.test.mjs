// A persistent RequestQueue: replay after restart, torn and corrupt journals, the lock,
// compaction, and crash safety (a child process killed with SIGKILL at several points).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, statSync, existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RequestQueue, ManualClock } from '../index.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = join(here, 'fixtures', 'queue-child.mjs')
const quiet = { warn() {}, error() {} }

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-queue-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function open(path, options = {}) {
  return new RequestQueue({
    persistPath: path,
    registry: null,
    autoRetryEnabled: false,
    retryJitterRatio: 0,
    logger: quiet,
    maxQueueSize: 10_000,
    ...options,
  })
}

const work = (payload) => ({ operation: 'work', payload })

test('items come back after a restart with their attempts, errors and keys; ids are never reused', async (t) => {
  const path = join(tempDir(t), 'q.journal')
  const clock = new ManualClock(0)
  const q = open(path, { clock, retryDelayMs: 100, maxRetryAttempts: 2 })
  assert.equal(q.persistent, true)
  q.registerHandler('work', async (p) => {
    if (p.fail) throw new Error(`HTTP ${p.fail}`)
  })
  const a = await q.enqueue('meta_api', work({ fail: 503 }), { idempotencyKey: 'ad-a' })
  const b = await q.enqueue('meta_api', work({ ok: true }), { idempotencyKey: 'ad-b' })
  const c = await q.enqueue('openai_api', work({ fail: 500 }))
  clock.set(100)
  await q.runDue() // a and c fail once, b completes
  clock.set(300)
  await q.runDue() // a and c fail again: dead letters
  const d = await q.enqueue('meta_api', work({ later: 1 }))
  await q.close()

  const again = open(path, { clock })
  assert.deepEqual(again.replay.items, 1)
  assert.deepEqual(
    again.list().map((i) => [i.id, i.payload, i.attempts]),
    [[d, { later: 1 }, 0]],
  )
  const dead = again.deadLetters()
  assert.deepEqual(
    dead.map((x) => [x.id, x.reason, x.attempts, x.lastError]),
    [
      [a, 'max_attempts', 2, 'HTTP 503'],
      [c, 'max_attempts', 2, 'HTTP 500'],
    ],
  )
  assert.equal(await again.enqueue('meta_api', work({}), { idempotencyKey: 'ad-b' }), b, 'the completed key is remembered')
  const e = await again.enqueue('meta_api', work({}))
  assert.ok(Number(e.split('-')[1]) > Number(d.split('-')[1]), `${e} follows ${d}`)
  assert.equal(e.split('-')[0], d.split('-')[0], 'the same journal keeps its id prefix')
  await again.close()
})

test('a journal with a truncated last record loads every complete record', async (t) => {
  const path = join(tempDir(t), 'q.journal')
  const q = open(path)
  const ids = []
  for (let i = 0; i < 5; i++) ids.push(await q.enqueue('s', work({ i, text: 'x'.repeat(50) })))
  await q.close()
  const full = readFileSync(path)
  for (const cut of [1, 7, 40]) {
    writeFileSync(path, full.subarray(0, full.length - cut))
    const torn = open(path)
    assert.deepEqual(
      torn.list().map((i) => i.id),
      ids.slice(0, 4),
      `cut ${cut} bytes`,
    )
    assert.ok(torn.replay.tornBytes > 0)
    await torn.close()
  }
  // The torn tail was cut off, so records written after it are read back too.
  const q2 = open(path)
  const sixth = await q2.enqueue('s', work({ i: 6 }))
  await q2.close()
  const q3 = open(path)
  assert.deepEqual(
    q3.list().map((i) => i.id),
    [...ids.slice(0, 4), sixth],
  )
  assert.equal(q3.replay.tornBytes, 0)
  await q3.close()
})

test('a corrupt journal is a clear error naming the file, never a crash; the file is left alone', async (t) => {
  const dir = tempDir(t)
  const foreign = join(dir, 'foreign.journal')
  writeFileSync(foreign, '{"this": "is some other file that happens to be at the path"}')
  assert.throws(
    () => open(foreign),
    (err) => {
      assert.equal(err.code, 'ERR_CORRUPT_JOURNAL')
      assert.ok(err.message.includes(JSON.stringify(foreign)), err.message)
      assert.match(err.message, /not a breakwater queue journal/)
      assert.match(err.message, /Move the file aside/)
      return true
    },
  )
  assert.match(readFileSync(foreign, 'utf8'), /some other file/, 'left as it was')

  const path = join(dir, 'q.journal')
  const q = open(path)
  for (let i = 0; i < 3; i++) await q.enqueue('s', work({ i }))
  await q.close()
  const bytes = readFileSync(path)
  bytes[16 + 8 + 20] ^= 0xff // inside the first record's body
  writeFileSync(path, bytes)
  assert.throws(
    () => open(path),
    (err) => {
      assert.equal(err.code, 'ERR_CORRUPT_JOURNAL')
      assert.ok(err.message.includes(`${JSON.stringify(path)} is corrupt at byte 16`), err.message)
      assert.match(err.message, /checksum/)
      return true
    },
  )
  // The lock was released with the failed open: a fixed file opens again.
  rmSync(path)
  const fresh = open(path)
  assert.equal(fresh.size, 0)
  await fresh.close()
})

test('a path that is not a regular file, or a missing directory, is ERR_JOURNAL_IO naming it', (t) => {
  const dir = tempDir(t)
  const sub = join(dir, 'a-directory')
  mkdirSync(sub)
  assert.throws(() => open(sub), { code: 'ERR_JOURNAL_IO', message: new RegExp(`${JSON.stringify(sub).slice(1, -1)}.*not a regular file`) })
  assert.throws(() => open(join(dir, 'missing', 'q.journal')), { code: 'ERR_JOURNAL_IO', message: /missing/ })
})

test('one journal, one queue: a second queue on it is ERR_JOURNAL_LOCKED until the first closes', async (t) => {
  const path = join(tempDir(t), 'q.journal')
  const first = open(path)
  assert.throws(() => open(path), { code: 'ERR_JOURNAL_LOCKED', message: /in use by another RequestQueue/ })
  await first.close()
  const second = open(path)
  await second.close()
})

test('a persistent queue refuses function items with ERR_NOT_SERIALIZABLE', async (t) => {
  const q = open(join(tempDir(t), 'q.journal'))
  await assert.rejects(
    q.enqueue('s', async () => 'x'),
    { code: 'ERR_NOT_SERIALIZABLE', message: /persistent queue/ },
  )
  assert.equal(q.size, 0)
  await q.close()
})

test('the journal is compacted, so it does not grow with the work that went through it', async (t) => {
  const path = join(tempDir(t), 'q.journal')
  const clock = new ManualClock(0)
  const q = open(path, { clock, retryDelayMs: 0 })
  q.registerHandler('work', async () => 'ok')
  const payload = { text: 'y'.repeat(1_000) }
  for (let round = 0; round < 6; round++) {
    const ids = []
    for (let i = 0; i < 500; i++) ids.push(q.enqueue('s', work(payload)))
    await Promise.all(ids)
    await q.runDue()
  }
  const kept = await q.enqueue('s', work({ keep: true }))
  await q.close()
  // 3 000 items of 1 KB went through (over 3 MB of records); one is left.
  const size = statSync(path).size
  assert.ok(size < 1.5 * 2 ** 20, `journal is ${size} bytes`)
  assert.ok(q.getMetrics().journal.compactions >= 1)
  const again = open(path)
  assert.deepEqual(
    again.list().map((i) => i.id),
    [kept],
  )
  again.compact()
  await again.close()
  assert.ok(statSync(path).size < 2_000, 'an explicit compaction leaves the one item')
})

test('after a failed journal write, waiting and later enqueues reject with ERR_JOURNAL_IO, and it is reported', async (t) => {
  const path = join(tempDir(t), 'q.journal')
  const q = open(path)
  const errors = []
  q.on('error', (e) => errors.push(e))
  const ok = await q.enqueue('s', work(1))
  // What the writer thread reports when a write or a sync fails (a full disk, say).
  q._committed(0, 'No space left on device (os error 28)')
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, 'ERR_JOURNAL_IO')
  assert.ok(errors[0].message.includes(JSON.stringify(path)), errors[0].message)
  assert.match(errors[0].message, /No space left on device/)
  await assert.rejects(q.enqueue('s', work(2)), { code: 'ERR_JOURNAL_IO' })
  assert.deepEqual(
    q.list().map((i) => i.id),
    [ok],
    'what was queued stays queued',
  )
  await q.close()
})

// ---- crash safety ----

function startChild(t, journal, doneLog, mode, items = 1000) {
  const child = spawn(process.execPath, [CHILD, journal, doneLog, mode, String(items)], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const lines = []
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const rl = createInterface({ input: child.stdout })
  let waiting = null
  rl.on('line', (line) => {
    lines.push(line)
    if (waiting !== null && waiting.match(line)) {
      waiting.resolve(line)
      waiting = null
    }
  })
  /** Resolves at the first line (from now on) that matches, within `ms`; rejects if the child exits first. */
  const until = (match, ms = 30_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching line within ${ms} ms; last: ${lines.at(-1)}; stderr: ${stderr}`)), ms)
      waiting = {
        match,
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      exited.then(({ code, signal }) => {
        clearTimeout(timer)
        if (waiting !== null) reject(new Error(`child exited (${code ?? signal}) before a matching line; stderr: ${stderr}`))
      })
    })
  return { child, lines, until, exited, stderr: () => stderr }
}

const count = (lines, prefix) => lines.filter((l) => l.startsWith(prefix)).length
const doneKeys = (doneLog) => (existsSync(doneLog) ? readFileSync(doneLog, 'utf8').split('\n').filter(Boolean) : [])

/** After a crash: every acknowledged item is completed or still queued; none is lost or doubled. */
async function checkNothingLost(journal, doneLog, acked) {
  const q = open(journal)
  const queued = q.list().map((i) => i.idempotencyKey)
  assert.equal(new Set(queued).size, queued.length, 'no item is queued twice')
  const done = new Set(doneKeys(doneLog))
  const lost = acked.filter((k) => !done.has(k) && !queued.includes(k))
  assert.deepEqual(lost, [], 'acknowledged items lost')
  // Completed items are remembered: enqueueing one again adds nothing.
  const before = q.size
  const finished = acked.filter((k) => done.has(k) && !queued.includes(k))
  for (const k of finished.slice(0, 20)) await q.enqueue('svc', work({}), { idempotencyKey: k })
  assert.equal(q.size, before, 'a completed key is not queued again')
  await q.close()
  return { queued: queued.length, done: done.size }
}

const N = 1000
const allKeys = Array.from({ length: N }, (_, i) => `item-${i}`)

for (const [name, line] of [
  ['mid-enqueue, after 300 acknowledgements', /^acked /],
  ['right after the last acknowledgement', /^enqueued$/],
  ['mid-drain, after the first item', /^done 1$/],
  ['mid-drain, after 400 items', /^done 400$/],
  ['mid-drain, after 950 items', /^done 950$/],
]) {
  test(`SIGKILL ${name}: after restart every item is completed or still queued`, async (t) => {
    const dir = tempDir(t)
    const journal = join(dir, 'q.journal')
    const doneLog = join(dir, 'done.log')
    const c = startChild(t, journal, doneLog, 'enqueue', N)
    if (name.startsWith('mid-enqueue')) {
      let seen = 0
      await c.until((l) => line.test(l) && ++seen >= 300)
    } else {
      await c.until((l) => line.test(l))
    }
    c.child.kill('SIGKILL')
    const { signal } = await c.exited
    assert.equal(signal, 'SIGKILL')
    const acked = c.lines.filter((l) => l.startsWith('acked ')).map((l) => `item-${l.slice(6)}`)
    if (!name.startsWith('mid-enqueue')) assert.equal(acked.length, N)
    else assert.ok(acked.length >= 300 && acked.length < N, `${acked.length} acknowledged when killed`)
    const after = await checkNothingLost(journal, doneLog, acked)
    assert.ok(after.queued + after.done >= acked.length)

    // The restarted queue finishes the work; every acknowledged item ends up done.
    const rest = startChild(t, journal, doneLog, 'drain')
    await rest.until((l) => l === 'drained')
    const { code } = await rest.exited
    assert.equal(code, 0, rest.stderr())
    const done = new Set(doneKeys(doneLog))
    assert.deepEqual(
      acked.filter((k) => !done.has(k)),
      [],
    )
    assert.ok([...done].every((k) => allKeys.includes(k)))
    const final = open(journal)
    assert.equal(final.size, 0)
    await final.close()
  })
}

test('an awaited enqueue keeps the process alive until it is on disk; then the process exits', async (t) => {
  const dir = tempDir(t)
  const c = startChild(t, join(dir, 'q.journal'), join(dir, 'done.log'), 'one')
  const { code } = await c.exited
  assert.equal(code, 0, c.stderr())
  assert.ok(
    c.lines.some((l) => l.startsWith('acked ')),
    `stdout: ${c.lines.join('|')}`,
  )
  const q = open(join(dir, 'q.journal'))
  assert.deepEqual(
    q.list().map((i) => i.idempotencyKey),
    ['only'],
  )
  await q.close()
})

test('an in-memory queue does not keep the process alive, and says what it loses at exit', async () => {
  const code = `
    const { RequestQueue } = require(${JSON.stringify(join(here, '..', 'index.js'))})
    const q = new RequestQueue({ registry: null, retryDelayMs: 600000 })
    q.enqueue('svc', { operation: 'work', payload: 1 }).then((id) => console.log('queued', id))
  `
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const [exitCode] = await new Promise((resolve) => child.on('exit', (...a) => resolve(a)))
  clearTimeout(timer)
  assert.equal(exitCode, 0, err)
  assert.match(out, /^queued /)
  assert.match(err, /exits with 1 item\(s\) in an in-memory retry queue; they are lost \(set persistPath to keep them\)/)
})
