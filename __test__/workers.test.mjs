// One breaker across worker threads: globalRegistry breakers are process-wide.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { globalRegistry, isCircuitOpenError } from '../index.mjs'

const native = createRequire(import.meta.url)('../lib/native.js')
const WORKER = new URL('./fixtures/worker.mjs', import.meta.url)
const OPTIONS = { failureThreshold: 5, minThroughput: 1_000_000, resetTimeoutMs: 60_000 }

function startWorker() {
  const worker = new Worker(WORKER, { workerData: { options: OPTIONS } })
  let seq = 0
  const pending = new Map()
  worker.on('message', (m) => pending.get(m.id)?.resolve(m.result))
  const failAll = (err) => {
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }
  worker.on('error', failAll)
  worker.on('exit', (code) => failAll(new Error(`worker exited with ${code}`)))
  const ask = (cmd) =>
    new Promise((resolve, reject) => {
      const id = ++seq
      const timer = setTimeout(() => reject(new Error(`worker did not answer ${cmd.op}`)), 20_000)
      pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      worker.postMessage({ ...cmd, id })
    })
  return { worker, ask }
}

test('4 workers and the main thread share one breaker: failures in one open it for all; the metrics add up', async () => {
  const name = 'workers_shared_api'
  const main = globalRegistry.getOrCreate(name, OPTIONS)
  const workers = Array.from({ length: 4 }, startWorker)
  try {
    const perThread = 200
    await Promise.all(workers.map((w) => w.ask({ op: 'succeed', name, n: perThread })))
    for (let i = 0; i < perThread; i++) await main.call(async () => i)
    const m = main.getMetrics()
    assert.equal(m.totalRequests, 5 * perThread, 'every call from every thread is counted once')
    assert.equal(m.successfulRequests, 5 * perThread)

    // Failures in one worker open the breaker for everyone.
    assert.equal(await workers[0].ask({ op: 'fail', name, n: 5 }), 'open')
    assert.equal(main.state, 'open')
    for (const w of workers.slice(1)) {
      assert.deepEqual(await w.ask({ op: 'probe', name }), { state: 'open', rejected: true, called: false })
    }
    let called = false
    const err = await main
      .call(async () => {
        called = true
      })
      .catch((e) => e)
    assert.ok(isCircuitOpenError(err))
    assert.equal(called, false)
    const after = main.getMetrics()
    assert.equal(after.failedRequests, 5)
    assert.equal(after.rejectedRequests, 4)
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()))
    globalRegistry.get(name)?.reset()
  }
})

test('a later creator with other options joins the first one and gets a warning', async () => {
  const name = 'workers_conflict_api'
  const main = globalRegistry.getOrCreate(name, { failureThreshold: 3 })
  const { worker, ask } = startWorker()
  try {
    await ask({ op: 'succeed', name, n: 1, options: { failureThreshold: 9 } })
    const warnings = await ask({ op: 'warnings' })
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /failureThreshold = 3 \(requested 9\)/)
    assert.equal(await ask({ op: 'fail', name, n: 3 }), 'open', "the first creator's threshold (3) applies")
    assert.equal(main.state, 'open')
  } finally {
    await worker.terminate()
  }
})

test('workers that exit and restart leave nothing behind', async () => {
  const before = native.nativeStats()
  for (let round = 0; round < 3; round++) {
    const workers = Array.from({ length: 4 }, startWorker)
    // Each worker creates breakers only it and its siblings know.
    await Promise.all(workers.map((w, i) => w.ask({ op: 'succeed', name: `worker_only_${i % 2}`, n: 10 })))
    const during = native.nativeStats()
    assert.equal(during.breakers, before.breakers + 2)
    assert.equal(during.pages, before.pages + 4)
    await Promise.all(workers.map((w) => w.worker.terminate()))
    // The workers' environments are gone: their references and state pages with them.
    const after = native.nativeStats()
    assert.deepEqual(after, before, `round ${round}`)
  }
})
