// The dashboard in headless Chromium (Debian's chromium, driven by playwright-core): one row per
// breaker, a badge that turns open after the test trips the breaker, a hostile name shown as
// literal text (never parsed as HTML), services listed; screenshots under __test__/artifacts/.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CircuitBreakerRegistry } from 'breakwater'
import { withCircuitBreaker, registerCircuitBreakerRoutes } from 'breakwater/express'
import { chromium } from 'playwright-core'
import { EXPRESS_VERSIONS, jsonErrors, listen, call, needTool, assertTool, HOSTILE } from './express-helpers.mjs'
import { createMonitor } from './fake-monitor.mjs'

const CHROMIUM = process.env.BREAKWATER_CHROMIUM ?? '/usr/bin/chromium'
const skip = needTool(CHROMIUM, 'chromium')
if (skip) console.log(`# SKIP dashboard tests: ${skip}`)
const artifacts = join(dirname(fileURLToPath(import.meta.url)), 'artifacts')

describe('the dashboard in headless Chromium', { skip }, () => {
  let server
  let browser
  let page
  let registry
  const pageErrors = []
  const [, express] = EXPRESS_VERSIONS[1]

  before(async () => {
    assertTool(CHROMIUM, 'chromium')
    registry = new CircuitBreakerRegistry()
    const app = express()
    let upstreamUp = true
    app.get(
      '/api/generate',
      withCircuitBreaker('openai_api', (req, res) => (upstreamUp ? res.json({ ok: true }) : res.status(502).json({ error: 'upstream' })), {
        registry,
        breakerOptions: { failureThreshold: 3, resetTimeoutMs: 120_000 },
      }),
    )
    app.post('/upstream/:up', (req, res) => {
      upstreamUp = req.params.up === 'up'
      res.end()
    })
    app.get(
      '/evil',
      withCircuitBreaker(HOSTILE, (req, res) => res.json({}), { registry }),
    )
    registry.getOrCreate('anthropic_api').tryAcquire().success()
    registry.getOrCreate('meta_api').disable()
    const monitor = createMonitor([
      { name: 'openai_api', status: 'healthy', uptime: 99.8, errorRate: 0.02 },
      { name: 'gemini_api', status: 'unhealthy', lastError: 'connect ECONNREFUSED' },
      { name: `svc ${HOSTILE}`, status: 'degraded' },
    ])
    registerCircuitBreakerRoutes(app, { registry, monitor })
    jsonErrors(app)
    server = await listen(app)
    for (let i = 0; i < 5; i++) await call(`${server.url}/api/generate`)
    await call(`${server.url}/evil`)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.on('pageerror', (e) => pageErrors.push(e))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(new Error(m.text()))
    })
  })
  after(async () => {
    await browser?.close()
    await server?.close()
  })

  const rows = () => page.locator('#breakers tr')
  const rowOf = (name) => page.locator('#breakers tr').filter({ has: page.locator('td.name', { hasText: name }) })

  test('one row per breaker, with a badge, counts and percentiles', async () => {
    await page.goto(`${server.url}/api/circuit-breaker/dashboard`)
    await page.waitForFunction((n) => document.querySelectorAll('#breakers tr[data-state]').length === n, registry.size)
    assert.equal(await rows().count(), registry.size)
    const row = rowOf('openai_api')
    assert.equal(await row.locator('.badge').textContent(), 'closed')
    assert.equal(await row.locator('td[data-label="Requests"]').textContent(), '5')
    assert.equal(await row.locator('td[data-label="Success"]').textContent(), '100.0 %')
    assert.match(await row.locator('td[data-label="p95"]').textContent(), /ms$/)
    assert.equal(await rowOf('meta_api').locator('.badge').textContent(), 'disabled')
    assert.notEqual(
      await row.locator('.badge').evaluate((e) => getComputedStyle(e).backgroundColor),
      'rgba(0, 0, 0, 0)',
      'the badge is coloured',
    )
  })

  test('the badge changes to open after the breaker trips, and open circuits come first', async () => {
    await call(`${server.url}/upstream/down`, { method: 'POST' })
    for (let i = 0; i < 3; i++) assert.equal((await call(`${server.url}/api/generate`)).status, 502)
    assert.equal((await call(`${server.url}/api/generate`)).status, 503)
    await page.waitForFunction(
      () => {
        const first = document.querySelector('#breakers tr')
        return first && first.querySelector('td.name').textContent === 'openai_api' && first.querySelector('.badge').textContent === 'open'
      },
      undefined,
      { timeout: 20_000 },
    ) // the page polls every 2 s
    const row = rowOf('openai_api')
    assert.equal(await row.getAttribute('data-state'), 'open')
    assert.match(await row.locator('td[data-label="Next attempt"]').textContent(), /^(1 min \d+|2 min 0) s$/, 'about 2 min left')
    assert.equal(await row.locator('td[data-label="Failures"]').textContent(), '3')
    assert.equal(await row.locator('td[data-label="Rejected"]').textContent(), '1')
  })

  test('a hostile name appears as literal text, never as HTML', async () => {
    const names = await page.locator('#breakers td.name').allTextContents()
    assert.ok(names.includes(HOSTILE), `the name is shown verbatim: ${JSON.stringify(names)}`)
    assert.equal(await page.locator('img').count(), 0, 'no element was parsed from the name')
    assert.equal(await page.evaluate(() => window.__pwned), undefined)
    const services = await page.locator('#services td.name').allTextContents()
    assert.deepEqual(services.sort(), ['gemini_api', 'openai_api', `svc ${HOSTILE}`].sort())
    assert.equal(await page.locator('#services tr').filter({ hasText: 'gemini_api' }).locator('.badge').textContent(), 'unhealthy')
    assert.equal(await page.locator('#overall .badge').textContent(), 'unhealthy')
    assert.deepEqual(pageErrors, [], 'no script error and no CSP violation')
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'dashboard-laptop.png'), fullPage: true })
  })

  test('readable on a phone: rows become labelled cards without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.waitForFunction(() => document.querySelectorAll('#breakers tr[data-state]').length > 0)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    assert.ok(overflow <= 0, `no horizontal scroll (overflow ${overflow}px)`)
    const label = await rowOf('openai_api')
      .locator('td[data-label="Requests"]')
      .evaluate((e) => getComputedStyle(e, '::before').content)
    assert.equal(label, '"Requests"')
    await page.screenshot({ path: join(artifacts, 'dashboard-phone.png'), fullPage: true })
  })
})
