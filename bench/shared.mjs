// The shared-state benchmark (issue 6), standalone: `node --expose-gc bench/shared.mjs`.
//
//   1. propagation of an open across 3 instances (child processes on one private Redis):
//      from the opening instance's 'open' event to the last adopting instance's, p50 and p99;
//   2. the hot path with sharing on against off: ns per closed `await breaker.call(async () => 42)`
//      on one globalRegistry breaker, connected and disconnected in alternating rounds;
//   3. Redis commands per second sent by an instance holding 100 shared breakers, idle and then
//      busy but closed (INFO commandstats deltas on the private server, the probe's own INFO
//      calls left out).
//
// It needs the redis-server binary (a private server on a free port is started and stopped).
// BENCH_QUICK=1 runs a small smoke version. Prints a markdown table; writes
// bench/results/shared.json (git-ignored).

import os from 'node:os'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { globalRegistry } from '../index.mjs'
import { freePort, startRedis, startInstance, redisClient } from '../__test__/redis-helper.mjs'
import { median, fmt, table, hasGc, gc } from './lib.mjs'

const QUICK = !['', '0', 'false', undefined].includes(process.env.BENCH_QUICK)
const CFG = QUICK
  ? { opens: 20, rounds: 3, calls: 100_000, windowMs: 2_000 }
  : { opens: 100, rounds: 9, calls: 1_000_000, windowMs: 10_000 }
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
if (!hasGc) console.warn('(run with node --expose-gc for a gc before each timed run)')

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

async function withInstances(labels, redisUrl, keyPrefix, body) {
  const fleet = labels.map((l) => startInstance(l))
  try {
    await Promise.all(fleet.map((i) => i.waitFor((e) => e.type === 'ready', 10_000, 'ready')))
    for (const i of fleet) {
      const r = await i.ask('connect', { options: { redisUrl, keyPrefix, instanceId: i.label } })
      if (!r.connected) throw new Error(`${i.label} could not connect`)
    }
    return await body(fleet)
  } finally {
    await Promise.all(fleet.map((i) => i.kill()))
  }
}

// ---- 1. propagation ----
async function propagation(redisUrl) {
  const name = 'bench_propagation'
  const isState = (to, cause) => (e) => e.type === 'state' && e.name === name && e.to === to && e.cause === cause
  return withInstances(['A', 'B', 'C'], redisUrl, 'bench:propagation:', async ([a, b, c]) => {
    for (const i of [a, b, c]) await i.ask('create', { name, options: { failureThreshold: 1, resetTimeoutMs: 60_000 } })
    const ms = []
    for (let k = 0; k < CFG.opens; k++) {
      for (const i of [a, b, c]) i.clearEvents()
      await a.ask('fail', { name, n: 1 })
      const opened = await a.waitFor(isState('open', 'consecutive_failures'))
      const adopted = await Promise.all([b, c].map((i) => i.waitFor(isState('open', 'shared_state'), 5_000, 'adoption')))
      ms.push(Math.max(...adopted.map((e) => e.at)) - opened.at)
      await a.ask('control', { name, method: 'reset' })
      await Promise.all([b, c].map((i) => i.waitFor(isState('closed', 'shared_state'), 5_000, 'reset')))
    }
    return { opens: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), samples: ms }
  })
}

// ---- 2. hot path, sharing on vs off ----
async function hotPath(redisUrl) {
  const b = globalRegistry.getOrCreate('bench_hot_path')
  const fn = async () => 42
  const run = async (n) => {
    let s = 0
    const t0 = now()
    for (let i = 0; i < n; i++) s += await b.call(fn)
    const ms = now() - t0
    if (s !== 42 * n || b.state !== 'closed') throw new Error('hot path sanity check failed')
    return (ms * 1e6) / n
  }
  const per = { on: [], off: [] }
  const modes = ['on', 'off']
  for (let r = 0; r < CFG.rounds + 1; r++) {
    for (let k = 0; k < 2; k++) {
      const mode = modes[(k + r) % 2]
      if (mode === 'on') await globalRegistry.connectShared({ redisUrl, keyPrefix: 'bench:hot:' })
      await new Promise((res) => setImmediate(res))
      gc()
      const v = await run(CFG.calls)
      if (mode === 'on') await globalRegistry.disconnectShared()
      if (r > 0) per[mode].push(v) // round 0 warms up
    }
  }
  return { on: median(per.on), off: median(per.off), ratio: median(per.on) / median(per.off), rounds: per }
}

// ---- 3. Redis commands per second of an instance with 100 breakers ----
async function commandsPerSecond(redisUrl) {
  const probe = await redisClient(redisUrl)
  /** Calls of every command but the probe's own INFO. */
  const calls = async () => {
    const text = await probe.cmd('INFO', 'commandstats')
    let sum = 0
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') sum += Number(m[2])
    return sum
  }
  const names = Array.from({ length: 100 }, (_, i) => `bench_cmds_${i}`)
  try {
    return await withInstances(['I'], redisUrl, 'bench:cmds:', async ([inst]) => {
      for (const name of names) await inst.ask('create', { name })
      await sleep(500) // the resyncs of the new breakers are done
      const measure = async () => {
        const c0 = await calls()
        const t0 = now()
        await sleep(CFG.windowMs)
        const c1 = await calls()
        return ((c1 - c0) / (now() - t0)) * 1000
      }
      const idle = await measure()
      await inst.ask('load', { names, perTick: 10 })
      await sleep(200)
      const busy = await measure()
      const load = await inst.ask('stop', { name: '*load*' })
      const states = await Promise.all(names.slice(0, 5).map((name) => inst.ask('state', { name })))
      if (states.some((s) => s !== 'closed')) throw new Error('the busy breakers must stay closed')
      return { idle, busy, busyCallsPerSecond: (load.calls / (CFG.windowMs + 200)) * 1000 }
    })
  } finally {
    probe.close()
  }
}

const server = await startRedis(await freePort())
let results
try {
  const prop = await propagation(server.url)
  const hot = await hotPath(server.url)
  const cmds = await commandsPerSecond(server.url)
  results = {
    node: process.version,
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    quick: QUICK,
    propagation: prop,
    hotPath: hot,
    commands: cmds,
  }
} finally {
  await server.kill()
}

const { propagation: prop, hotPath: hot, commands: cmds } = results
console.log(
  `\n## Shared state (Redis)\n\nnode ${results.node}, ${results.cpu} (${results.cores} cores)${QUICK ? ', BENCH_QUICK (not representative)' : ''}\n`,
)
console.log(
  table(
    ['measure', 'result', 'target'],
    [
      [`propagation of an open, 3 instances, p50 (${prop.opens} opens)`, `${fmt(prop.p50)} ms`, ''],
      [`propagation of an open, 3 instances, p99 (${prop.opens} opens)`, `${fmt(prop.p99)} ms`, '≤ 100 ms'],
      ['closed call, sharing off (median ns/op)', fmt(hot.off), ''],
      ['closed call, sharing on (median ns/op)', fmt(hot.on), ''],
      ['hot path ratio, on / off', `${hot.ratio.toFixed(3)}×`, '≤ 1.05'],
      ['Redis commands/s, 100 idle breakers', fmt(cmds.idle), '≈ 0'],
      [`Redis commands/s, 100 busy closed breakers (${fmt(cmds.busyCallsPerSecond)} calls/s)`, fmt(cmds.busy), '≈ 0'],
    ],
    'lrr',
  ),
)
mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true })
writeFileSync(new URL('./results/shared.json', import.meta.url), JSON.stringify(results, null, 2))
