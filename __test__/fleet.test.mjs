// Three gateway instances (child processes) sharing breakers through one Redis: propagation of
// an open (timed), one trial fleet-wide, the lease holder killed, the quorum, and a private
// redis-server killed and restarted under them. Every test uses its own key prefix and stops
// every process it starts.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  REDIS_URL,
  requireRedis,
  uniquePrefix,
  cleanKeys,
  redisClient,
  startInstance,
  startRedis,
  freePort,
  until,
} from './redis-helper.mjs'

const isState = (name, to, cause) => (e) =>
  e.type === 'state' && e.name === name && e.to === to && (cause === undefined || e.cause === cause)

/** Starts `labels.length` connected instances, each with breaker `name`; stops them after. */
async function withFleet(labels, { redisUrl = REDIS_URL, quorum = 1, name, options, label }, body) {
  const keyPrefix = uniquePrefix(label)
  const fleet = labels.map((l) => startInstance(l))
  try {
    await Promise.all(fleet.map((i) => i.waitFor((e) => e.type === 'ready', 10_000, 'ready')))
    for (const i of fleet) {
      const r = await i.ask('connect', { options: { redisUrl, keyPrefix, instanceId: i.label, quorum, commandTimeoutMs: 300 } })
      assert.equal(r.connected, true)
      await i.ask('create', { name, options })
    }
    await body(fleet, keyPrefix)
    for (const i of fleet) {
      assert.deepEqual(
        i.events.filter((e) => e.type === 'unhandledRejection'),
        [],
        `${i.label}: no unhandled rejection`,
      )
    }
  } finally {
    await Promise.all(fleet.map((i) => i.kill()))
    await cleanKeys(keyPrefix, redisUrl)
  }
}

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

before(() => requireRedis())

test('an open in one instance is adopted by the others: p99 propagation ≤ 100 ms over 20 opens', async () => {
  const name = 'fleet_propagation_api'
  const options = { failureThreshold: 3, resetTimeoutMs: 60_000 }
  await withFleet(['A', 'B', 'C'], { name, options, label: 'propagation' }, async ([a, b, c]) => {
    const latencies = []
    for (let round = 0; round < 20; round++) {
      for (const i of [a, b, c]) i.clearEvents()
      assert.equal(await a.ask('fail', { name, n: 3 }), 'open')
      const opened = await a.waitFor(isState(name, 'open', 'consecutive_failures'))
      const adopted = await Promise.all([b, c].map((i) => i.waitFor(isState(name, 'open', 'shared_state'), 5_000, 'adoption')))
      latencies.push(Math.max(...adopted.map((e) => e.at)) - opened.at)
      // Adopted means rejecting: the others refuse calls without running them.
      for (const i of [b, c]) {
        const r = await i.ask('call', { name })
        assert.deepEqual([r.ok, r.open, r.state], [false, true, 'open'], i.label)
      }
      // A reset on A is published and adopted by all.
      await a.ask('control', { name, method: 'reset' })
      await Promise.all([b, c].map((i) => i.waitFor(isState(name, 'closed', 'shared_state'), 5_000, 'the reset')))
    }
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    console.log(`# propagation of an open over ${latencies.length} opens: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`)
    assert.ok(p99 <= 100, `p99 ${p99} ms`)
  })
})

test('one trial fleet-wide: three instances whose open time ends together send at most halfOpenMaxCalls trials', async () => {
  const name = 'fleet_trial_api'
  // Trials take 30 ms and calls come every 5 ms, so both trial permits are in flight before the
  // first success closes the circuit: without the lease this would be 2 trials per instance.
  const options = { failureThreshold: 2, resetTimeoutMs: 300, halfOpenMaxCalls: 2, successThreshold: 1, exponentialBackoff: false }
  await withFleet(['A', 'B', 'C'], { name, options, label: 'trial' }, async (fleet) => {
    const [a, b, c] = fleet
    assert.equal(await a.ask('fail', { name, n: 2 }), 'open')
    await Promise.all([b, c].map((i) => i.waitFor(isState(name, 'open', 'shared_state'))))
    // Everyone keeps calling through the end of the open time; trials take 30 ms.
    await Promise.all(fleet.map((i) => i.ask('hammer', { name, everyMs: 5, fnMs: 30 })))
    await Promise.all(fleet.map((i) => i.waitFor((e) => isState(name, 'closed')(e), 10_000, 'the close')))
    const loads = await Promise.all(fleet.map((i) => i.ask('stop', { name })))
    const trials = await Promise.all(fleet.map((i) => i.ask('trials', { name })))
    const total = trials.reduce((x, y) => x + y, 0)
    console.log(`# trials per instance: ${trials.join(', ')}; calls per instance: ${loads.map((l) => l.calls).join(', ')}`)
    assert.ok(total >= 1 && total <= options.halfOpenMaxCalls, `trials fleet-wide: ${trials}`)
    assert.equal(trials.filter((n) => n > 0).length, 1, 'one instance (the lease holder) ran the trials')
    // The others closed by adopting the holder's close.
    const holder = fleet[trials.findIndex((n) => n > 0)]
    for (const i of fleet.filter((x) => x !== holder)) {
      assert.ok(i.events.some(isState(name, 'closed', 'shared_state')), `${i.label} adopted the close`)
    }
    assert.ok(holder.events.some(isState(name, 'closed', 'trials_succeeded')))
  })
})

test('the lease holder killed with SIGKILL mid-trial: its lease expires and another instance takes it', async () => {
  const name = 'fleet_lease_api'
  // The lease lasts callTimeoutMs (1.5 s), as long as a trial may.
  const options = {
    failureThreshold: 2,
    resetTimeoutMs: 200,
    halfOpenMaxCalls: 1,
    successThreshold: 1,
    exponentialBackoff: false,
    callTimeoutMs: 1_500,
  }
  await withFleet(['A', 'B', 'C'], { name, options, label: 'lease' }, async (fleet, keyPrefix) => {
    await Promise.all(fleet.map((i) => i.ask('hang', { on: true })))
    assert.equal(await fleet[0].ask('fail', { name, n: 2 }), 'open')
    await Promise.all(fleet.slice(1).map((i) => i.waitFor(isState(name, 'open', 'shared_state'))))
    await Promise.all(fleet.map((i) => i.ask('hammer', { name, everyMs: 10 })))
    // The first trial (it hangs) tells who holds the lease.
    const first = await Promise.race(fleet.map((i) => i.waitFor((e) => e.type === 'trial', 10_000, 'a trial').then((e) => ({ i, e }))))
    const holder = first.i
    const redis = await redisClient()
    try {
      assert.equal(await redis.cmd('GET', `${keyPrefix}${name}:lease`), holder.label)
    } finally {
      redis.close()
    }
    await holder.kill('SIGKILL')
    const survivors = fleet.filter((i) => i !== holder)
    await Promise.all(survivors.map((i) => i.ask('hang', { on: false })))
    const next = await Promise.race(
      survivors.map((i) => i.waitFor((e) => e.type === 'trial', 10_000, 'a takeover trial').then((e) => ({ i, e }))),
    )
    const waited = next.e.at - first.e.at
    console.log(`# ${holder.label} killed holding the lease; ${next.i.label} took it over after ${waited.toFixed(0)} ms`)
    assert.ok(waited >= 1_000, `taken over only once the lease expired (${waited} ms)`)
    await Promise.all(survivors.map((i) => i.waitFor(isState(name, 'closed'), 10_000, 'the close')))
    for (const i of survivors) await i.ask('stop', { name })
    const trials = await Promise.all(survivors.map((i) => i.ask('trials', { name })))
    assert.equal(
      trials.reduce((x, y) => x + y, 0),
      1,
      `one takeover trial: ${trials}`,
    )
  })
})

test("quorum 2: one instance's open stays its own; a second instance failing opens the fleet", async () => {
  const name = 'fleet_quorum_api'
  const options = { failureThreshold: 2, resetTimeoutMs: 10_000 }
  await withFleet(['A', 'B', 'C'], { name, options, quorum: 2, label: 'quorum' }, async ([a, b, c], keyPrefix) => {
    assert.equal(await a.ask('fail', { name, n: 2 }), 'open')
    const redis = await redisClient()
    try {
      await until(async () => (await redis.cmd('ZCARD', `${keyPrefix}${name}:failing`)) === 1, { what: "A's vote" })
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(await b.ask('state', { name }), 'closed', 'one instance with a broken network cannot open the fleet')
      assert.equal(await c.ask('state', { name }), 'closed')
      assert.equal(await redis.cmd('EXISTS', `${keyPrefix}${name}:open`), 0)
      assert.equal(await b.ask('fail', { name, n: 2 }), 'open')
      await c.waitFor(isState(name, 'open', 'shared_state'), 5_000, 'the fleet-wide open')
      assert.equal(await c.ask('state', { name }), 'open')
      const value = JSON.parse(await redis.cmd('GET', `${keyPrefix}${name}:open`))
      assert.equal(value.votes, 2)
    } finally {
      redis.close()
    }
  })
})

test('a private Redis killed mid-run: instances go on locally and report errors; restarted, they resync', async () => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-redis-'))
  let server = await startRedis(port, { dir })
  const x = 'fleet_outage_x'
  const y = 'fleet_outage_y'
  const z = 'fleet_outage_z'
  const options = { failureThreshold: 2, resetTimeoutMs: 200, successThreshold: 1, exponentialBackoff: false }
  try {
    await withFleet(['A', 'B'], { redisUrl: server.url, name: x, options, label: 'outage' }, async ([a, b], keyPrefix) => {
      for (const i of [a, b]) {
        await i.ask('create', { name: y, options: { resetTimeoutMs: 60_000 } })
        await i.ask('create', { name: z })
      }
      // y is open in Redis (written behind the instances' backs) and saved with the dataset.
      const r = await redisClient(server.url)
      await r.cmd('SET', `${keyPrefix}${y}:open`, JSON.stringify({ instance: 'elsewhere', votes: 1 }), 'PX', 60_000)
      await r.cmd('SAVE')
      r.close()
      assert.equal(await a.ask('state', { name: y }), 'closed')

      await server.kill()
      await Promise.all([a, b].map((i) => i.waitFor((e) => e.type === 'sharedStateError', 5_000, 'sharedStateError')))
      // Local operation goes on: calls pass, failures open locally, the trial runs locally.
      assert.deepEqual(await a.ask('call', { name: x }), { ok: true, state: 'closed' })
      assert.equal(await a.ask('fail', { name: x, n: 2 }), 'open')
      assert.equal(await b.ask('state', { name: x }), 'closed', 'nothing propagates without Redis')
      await until(async () => (await a.ask('call', { name: x })).ok, { timeoutMs: 5_000, everyMs: 50, what: 'the local trial' })
      assert.equal(await a.ask('state', { name: x }), 'closed')
      // An operator forces z open on B while Redis is down.
      await b.ask('control', { name: z, method: 'forceOpen' })

      a.clearEvents()
      b.clearEvents()
      server = await startRedis(port, { dir })
      await Promise.all([a, b].map((i) => i.waitFor((e) => e.type === 'connected' && e.reconnect, 10_000, 'the reconnect')))
      // Resynced: y's open came back with the dataset; B's force was replayed and reached A.
      await until(async () => (await a.ask('state', { name: y })) === 'open', { what: 'y open on A' })
      assert.equal(await b.ask('state', { name: y }), 'open')
      assert.ok(a.events.some(isState(y, 'open', 'shared_state')))
      await until(async () => (await a.ask('state', { name: z })) === 'forced_open', { what: 'z forced on A' })
      const r2 = await redisClient(server.url)
      assert.equal(await r2.cmd('GET', `${keyPrefix}${z}:forced`), 'forced_open')
      r2.close()
    })
  } finally {
    await server.kill()
    rmSync(dir, { recursive: true, force: true })
  }
})
