// The fallback benchmark: the response cache, the in-memory queue, the durable queue's group
// commit and journal replay, against the targets of the issue. Prints a markdown table.
// Run: node --expose-gc bench/fallback.mjs   (it writes its journals under the OS temp dir)
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FallbackCache, RequestQueue } from '../index.mjs'

const gc = globalThis.gc ?? (() => {})
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// A chat-completion answer of about 1 KB as JSON: the kind of value a gateway caches.
const VALUE = {
  id: 'chatcmpl-8x7d2f',
  object: 'chat.completion',
  created: 1705318200,
  model: 'gpt-4o-mini',
  choices: [
    {
      index: 0,
      finish_reason: 'stop',
      message: { role: 'assistant', content: 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(11) },
    },
  ],
  usage: { prompt_tokens: 12, completion_tokens: 180, total_tokens: 192 },
  system_fingerprint: 'fp_44709d6fcb',
  tags: ['a', 'b', 'c'],
  cached: false,
  score: 0.92,
}
const VALUE_BYTES = JSON.stringify(VALUE).length
const TEXT = 'x'.repeat(1024)
// An ad to publish: the kind of payload a gateway queues.
const PAYLOAD = {
  adAccountId: 'act_123456',
  campaignId: '123456789',
  creative: { title: 'Spring sale', body: 'Up to 40% off everything in store.', imageHash: 'a1b2c3d4e5f6' },
  budget: { daily: 5000, currency: 'EUR' },
  targeting: { countries: ['DE', 'FR'], ageMin: 25 },
}
const PAYLOAD_BYTES = JSON.stringify(PAYLOAD).length

/** ns per call of `fn`, the median of `rounds` rounds of `n` calls. */
function timeSync(fn, n, rounds = 7) {
  for (let i = 0; i < n; i++) fn(i) // warm up
  const per = []
  for (let r = 0; r < rounds; r++) {
    gc()
    const t = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn(i)
    per.push(Number(process.hrtime.bigint() - t) / n)
  }
  return median(per)
}

const rows = []
function row(measure, value, unit, target, ok) {
  rows.push({ measure, result: `${value} ${unit}`, target, ok })
}

// ---- the cache ----
{
  const cache = new FallbackCache({ cacheMaxEntries: 10_000 })
  const KEYS = 1_000
  for (let i = 0; i < KEYS; i++) cache.set('openai_api', `k${i}`, VALUE)
  const setNs = timeSync((i) => cache.set('openai_api', `k${i % KEYS}`, VALUE), 100_000)
  const getNs = timeSync((i) => cache.get('openai_api', `k${i % KEYS}`), 100_000)
  row(`cache set, ${VALUE_BYTES} B object (JSON check + stringify + store)`, (setNs / 1000).toFixed(2), 'µs', '≤ 2 µs', setNs <= 2_000)
  row(`cache get, ${VALUE_BYTES} B object (lookup + JSON.parse)`, (getNs / 1000).toFixed(2), 'µs', '≤ 2 µs', getNs <= 2_000)
  // The floor of the two rows above: V8's own JSON work on the same value, in the same process.
  const text = JSON.stringify(VALUE)
  const stringifyNs = timeSync(() => JSON.stringify(VALUE), 100_000)
  const parseNs = timeSync(() => JSON.parse(text), 100_000)
  row("… of which V8's JSON.stringify alone", (stringifyNs / 1000).toFixed(2), 'µs', '(for reference)', null)
  row("… of which V8's JSON.parse alone", (parseNs / 1000).toFixed(2), 'µs', '(for reference)', null)
  for (let i = 0; i < KEYS; i++) cache.set('openai_api', `t${i}`, TEXT)
  const setT = timeSync((i) => cache.set('openai_api', `t${i % KEYS}`, TEXT), 100_000)
  const getT = timeSync((i) => cache.get('openai_api', `t${i % KEYS}`), 100_000)
  row('cache set, 1 KB string', (setT / 1000).toFixed(2), 'µs', '≤ 2 µs', setT <= 2_000)
  row('cache get, 1 KB string', (getT / 1000).toFixed(2), 'µs', '≤ 2 µs', getT <= 2_000)
}

// ---- the in-memory queue ----
{
  const N = 20_000
  const per = []
  for (let r = 0; r < 7; r++) {
    const q = new RequestQueue({ maxQueueSize: N, registry: null, autoRetryEnabled: false })
    gc()
    const t = process.hrtime.bigint()
    const ps = new Array(N)
    for (let i = 0; i < N; i++) ps[i] = q.enqueue('meta_api', { operation: 'publish_ad', payload: PAYLOAD })
    await Promise.all(ps)
    per.push(Number(process.hrtime.bigint() - t) / N)
    await q.close()
  }
  const ns = median(per)
  row(`in-memory enqueue, ${PAYLOAD_BYTES} B payload (acknowledged)`, (ns / 1000).toFixed(2), 'µs', '≤ 5 µs', ns <= 5_000)
}

const dir = mkdtempSync(join(tmpdir(), 'breakwater-bench-'))
try {
  // ---- durable enqueue: concurrent callers share each fsync (group commit) ----
  {
    const TOTAL = 50_000
    const CONCURRENCY = 256
    const path = join(dir, 'durable.journal')
    const q = new RequestQueue({ persistPath: path, maxQueueSize: TOTAL, registry: null, autoRetryEnabled: false })
    let next = 0
    const worker = async () => {
      while (next < TOTAL) {
        next++
        await q.enqueue('meta_api', { operation: 'publish_ad', payload: PAYLOAD })
      }
    }
    gc()
    const t = performance.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    const secs = (performance.now() - t) / 1000
    await q.close()
    const rate = TOTAL / secs
    row(
      `durable enqueue, ${CONCURRENCY} callers at once (acknowledged after fsync)`,
      Math.round(rate).toLocaleString('en-US'),
      'items/s',
      '≥ 5 000 items/s',
      rate >= 5_000,
    )
    const q1 = new RequestQueue({ persistPath: join(dir, 'one.journal'), registry: null, autoRetryEnabled: false })
    const t1 = performance.now()
    for (let i = 0; i < 500; i++) await q1.enqueue('meta_api', { operation: 'publish_ad', payload: PAYLOAD })
    const oneRate = 500 / ((performance.now() - t1) / 1000)
    await q1.close()
    row(
      'durable enqueue, one caller awaiting each (one fsync each)',
      Math.round(oneRate).toLocaleString('en-US'),
      'items/s',
      '(for reference)',
      null,
    )
  }

  // ---- replay of a 100 000-item journal ----
  {
    const N = 100_000
    const path = join(dir, 'replay.journal')
    const q = new RequestQueue({ persistPath: path, maxQueueSize: N, registry: null, autoRetryEnabled: false })
    const ps = []
    for (let i = 0; i < N; i++)
      ps.push(q.enqueue('meta_api', { operation: 'publish_ad', payload: { ...PAYLOAD, n: i } }, { idempotencyKey: `ad-${i}` }))
    await Promise.all(ps)
    await q.close()
    const mb = (statSync(path).size / 2 ** 20).toFixed(1)
    const times = []
    for (let r = 0; r < 3; r++) {
      gc()
      const t = performance.now()
      const again = new RequestQueue({ persistPath: path, maxQueueSize: N, registry: null, autoRetryEnabled: false })
      times.push(performance.now() - t)
      if (again.size !== N) throw new Error(`replay found ${again.size} items, not ${N}`)
      await again.close()
    }
    const ms = median(times)
    row(`replay of a ${N.toLocaleString('en-US')}-item journal (${mb} MB)`, ms.toFixed(0), 'ms', '≤ 1 000 ms', ms <= 1_000)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

console.log(`\nbreakwater fallback benchmark: node ${process.version}, ${process.platform}/${process.arch}\n`)
console.log('| measure | result | target | |')
console.log('|---|---|---|---|')
for (const r of rows) console.log(`| ${r.measure} | ${r.result} | ${r.target} | ${r.ok === null ? '' : r.ok ? 'pass' : '**FAIL**'} |`)
if (rows.some((r) => r.ok === false)) process.exitCode = 1
