'use strict'
// The checkpoints of Meta ad publishes: for each idempotency key, the request, and for each step
// (creative, ad set, ad) whether it was started and the id it created. With a path, every record
// is appended to a JSON-lines file and fdatasync'ed before the step it describes goes further, so
// that after a crash a publish resumes at its first unfinished step, and a step that was started
// but not recorded as done is looked up by its tag before it is created again.

const fs = require('node:fs')

const STEPS = Object.freeze(['creative', 'adset', 'ad'])
// The file is rewritten (unfinished publishes in full, finished ones as their ids) when it holds
// this many records more than that would take.
const COMPACT_SLACK = 10_000

class StepStore {
  /** @param {string|null} path the checkpoint file, or null to keep them in memory */
  constructor(path) {
    this.path = path
    this.persistent = path !== null
    this._keys = new Map() // key -> { payload, steps: { [step]: { started, id } }, finished }
    this._records = 0
    this._fd = null
    if (path !== null) {
      this._load()
      if (this._records > this._keys.size * 4 + COMPACT_SLACK) this._compact()
      this._fd = fs.openSync(path, 'a')
    }
  }

  _entry(key) {
    let e = this._keys.get(key)
    if (e === undefined) {
      e = { payload: undefined, steps: {}, finished: false }
      this._keys.set(key, e)
    }
    return e
  }

  _apply(r) {
    const e = this._entry(r.k)
    if (r.e === 'begin') e.payload = r.p
    else if (r.e === 'start') e.steps[r.s] = { started: true, id: e.steps[r.s]?.id }
    else if (r.e === 'done') e.steps[r.s] = { started: true, id: r.id }
    else if (r.e === 'abandon') delete e.steps[r.s]
    else if (r.e === 'release') e.payload = undefined
    else if (r.e === 'finish') {
      e.finished = true
      e.payload = undefined
      if (r.ids) for (const s of STEPS) e.steps[s] = { started: true, id: r.ids[s] }
    }
  }

  _load() {
    let text
    try {
      text = fs.readFileSync(this.path, 'utf8')
    } catch (err) {
      if (err.code === 'ENOENT') return
      throw err
    }
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] === '') continue
      let r
      try {
        r = JSON.parse(lines[i])
      } catch (err) {
        // A torn last line is a crash in the middle of a write: that record never happened.
        if (i >= lines.length - 2) break
        throw new Error(`breakwater: the Meta checkpoint file ${this.path} is damaged at line ${i + 1}`, { cause: err })
      }
      this._apply(r)
      this._records++
    }
  }

  _compact() {
    const tmp = `${this.path}.tmp`
    const lines = []
    for (const [k, e] of this._keys) {
      if (e.finished) {
        lines.push(JSON.stringify({ k, e: 'finish', ids: this.ids(k) }))
        continue
      }
      if (e.payload !== undefined) lines.push(JSON.stringify({ k, e: 'begin', p: e.payload }))
      for (const s of STEPS) {
        const st = e.steps[s]
        if (st?.id !== undefined) lines.push(JSON.stringify({ k, e: 'done', s, id: st.id }))
        else if (st?.started) lines.push(JSON.stringify({ k, e: 'start', s }))
      }
    }
    const fd = fs.openSync(tmp, 'w')
    try {
      fs.writeSync(fd, lines.length > 0 ? `${lines.join('\n')}\n` : '')
      fs.fdatasyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, this.path)
    this._records = lines.length
  }

  /** Appends one record; durable once this returns. */
  _write(r) {
    this._apply(r)
    if (this._fd === null) return
    fs.writeSync(this._fd, `${JSON.stringify(r)}\n`)
    fs.fdatasyncSync(this._fd)
    this._records++
  }

  has(key) {
    return this._keys.has(key)
  }

  isFinished(key) {
    return this._keys.get(key)?.finished === true
  }

  /** The ids created so far: `{ creative?, adset?, ad? }`. */
  ids(key) {
    const e = this._keys.get(key)
    const out = {}
    if (e !== undefined) for (const s of STEPS) if (e.steps[s]?.id !== undefined) out[s] = e.steps[s].id
    return out
  }

  /** Whether `step` was started without a recorded result (its outcome is unknown). */
  uncertain(key, step) {
    const st = this._keys.get(key)?.steps[step]
    return st?.started === true && st.id === undefined
  }

  /** Publishes begun and not finished, with their requests: what a restart must resume. */
  unfinished() {
    const out = []
    for (const [k, e] of this._keys) if (!e.finished && e.payload !== undefined) out.push({ key: k, payload: e.payload })
    return out
  }

  begin(key, payload) {
    if (this._keys.get(key)?.payload !== undefined || this.isFinished(key)) return
    this._write({ k: key, e: 'begin', p: payload })
  }

  start(key, step) {
    this._write({ k: key, e: 'start', s: step })
  }

  done(key, step, id) {
    this._write({ k: key, e: 'done', s: step, id })
  }

  /** The step's request was answered with an error: nothing was created. */
  abandon(key, step) {
    this._write({ k: key, e: 'abandon', s: step })
  }

  /** The publish will not be resumed (it failed for good): forget its request, keep its ids. */
  release(key) {
    if (this._keys.get(key)?.payload === undefined) return
    this._write({ k: key, e: 'release' })
  }

  finish(key) {
    this._write({ k: key, e: 'finish', ids: this.ids(key) })
  }

  close() {
    if (this._fd !== null) {
      fs.closeSync(this._fd)
      this._fd = null
    }
  }
}

module.exports = { StepStore, STEPS }
