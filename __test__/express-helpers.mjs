// Helpers of the Express tests: Express 4 and 5 apps on 127.0.0.1:0, HTTP calls with fetch, and
// the external tools (promtool, Chromium), which CI must have and a developer may lack.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import assert from 'node:assert/strict'

const require = createRequire(import.meta.url)

/** `[label, express]` for each supported major version, both real packages. */
export const EXPRESS_VERSIONS = [
  [`express ${require('express4/package.json').version}`, require('express4')],
  [`express ${require('express/package.json').version}`, require('express')],
]

/** A JSON error handler, so a test app never prints Express's HTML error page and stack. */
export function jsonErrors(app) {
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (res.headersSent) return res.destroy()
    res.status(500).json({ error: 'handler_error', message: err && err.message })
  })
  return app
}

/** Starts `app` on 127.0.0.1:0; returns `{ url, close }`. */
export async function listen(app) {
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1')
    s.once('listening', () => resolve(s))
    s.once('error', reject)
  })
  const url = `http://127.0.0.1:${server.address().port}`
  return {
    url,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** fetch, returning `{ status, headers, text, json }`. */
export async function call(url, init) {
  const r = await fetch(url, init)
  const text = await r.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: r.status, headers: r.headers, text, json }
}

/** No response may carry a stack trace. */
export function assertNoStack(text) {
  assert.doesNotMatch(text, /\n\s+at .+[:(]\d+/, 'a stack trace leaked into a response')
}

export const isCI = process.env.CI === 'true' || process.env.CI === '1'

/**
 * `false` when the tool is there; outside CI, a skip message when it is not. In CI a missing tool
 * fails the test loudly (`.ci/run` installs it).
 */
export function needTool(path, pkg) {
  if (existsSync(path)) return false
  if (isCI) return false // the test runs and fails on the assertion below
  return `${path} is missing: apt-get install -y ${pkg} (CI installs it; skipped outside CI)`
}

export function assertTool(path, pkg) {
  assert.ok(existsSync(path), `${path} is required (apt-get install -y --no-install-recommends ${pkg}); .ci/run installs it`)
}

/** A breaker name with everything that must be escaped: quotes, backslashes, newlines, HTML. */
export const HOSTILE = 'evil "quoted" \\back\\slash\nnew line </script><img src=x onerror="window.__pwned=1">'
