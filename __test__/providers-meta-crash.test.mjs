// Crash safety of the Meta publisher: a publishing process is killed with SIGKILL in the middle
// of a chain (before Meta created the object, and after it did but before its answer arrived),
// restarted each time, and in the end every ad exists exactly once, with its own creative and ad set.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startFakeGraph, META_TOKEN } from './providers/fake-graph.mjs'

const FIXTURE = fileURLToPath(new URL('./fixtures/meta-publisher.mjs', import.meta.url))
const COUNT = 12
const never = new Promise(() => {})

function run(graph, persistPath, children) {
  const child = spawn(process.execPath, [FIXTURE, graph.url, persistPath, String(COUNT)], {
    env: { ...process.env, META_ACCESS_TOKEN: META_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child)
    return { code, signal, stdout, stderr }
  })
  return { child, exited }
}

test('meta: a publisher killed with SIGKILL mid-chain and restarted publishes every ad exactly once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-meta-crash-'))
  const graph = await startFakeGraph()
  const children = new Set()
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL')
    await graph.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const persistPath = join(dir, 'meta.journal')
  // POST numbers (counted across runs) at which the process dies, and whether Meta had created
  // the object by then: a creative, an ad set and an ad of different publishes.
  const kills = [
    { at: 5, created: false },
    { at: 12, created: true },
    { at: 20, created: true },
    { at: 27, created: false },
  ]
  for (const kill of kills) {
    const { child, exited } = run(graph, persistPath, children)
    graph.reply({
      match: (r) => r.method === 'POST' && r.postIndex === kill.at,
      [kill.created ? 'createThenHold' : 'hold']: never,
      onArrive: () => child.kill('SIGKILL'),
    })
    const r = await exited
    assert.equal(r.signal, 'SIGKILL', `run killed at POST ${kill.at}: ${r.stderr}`)
  }
  const last = await run(graph, persistPath, children).exited
  assert.equal(last.code, 0, last.stderr)
  const summary = JSON.parse(last.stdout)
  assert.equal(summary.left, 0)
  assert.ok(summary.recovered >= 1, 'the interrupted publish was resumed from the checkpoints')

  // Every ad exactly once, each with its own creative and ad set, all carrying its tag.
  const byTag = new Map()
  for (const [edge, list] of Object.entries(graph.objects)) {
    for (const o of list) {
      const tag = /\[bw:[0-9a-f]+\]/.exec(o.name)?.[0]
      if (!byTag.has(tag)) byTag.set(tag, { adcreatives: [], adsets: [], ads: [] })
      byTag.get(tag)[edge].push(o)
    }
  }
  assert.equal(byTag.size, COUNT)
  for (const [tag, objs] of byTag) {
    assert.deepEqual([objs.adcreatives.length, objs.adsets.length, objs.ads.length], [1, 1, 1], `${tag}: ${JSON.stringify(objs)}`)
    const [ad] = objs.ads
    assert.equal(ad.adset_id, objs.adsets[0].id)
    assert.equal(ad.creative.creative_id, objs.adcreatives[0].id)
  }
  const names = graph.objects.ads.map((a) => a.name.replace(/ \[bw:.*$/, '')).sort()
  assert.deepEqual(names, Array.from({ length: COUNT }, (_, i) => `Spring sale ${i}`).sort())
})
