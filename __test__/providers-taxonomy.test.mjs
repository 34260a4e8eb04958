// The provider error taxonomy, case by case, on the real SDKs' error classes: what counts as a
// failure, what fails over, and for how long the breaker opens.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { ApiError as GeminiApiError } from '@google/genai'
import { classifyProviderError as classify, ERROR_KINDS } from 'breakwater/providers'
import taxonomy from '../lib/providers/taxonomy.js'

const NOW = Date.parse('2026-01-01T00:00:00Z')

const openai = (status, error, headers = {}) => OpenAI.APIError.generate(status, { error }, undefined, new Headers(headers))
const anthropic = (status, type, message, headers = {}, details) =>
  Anthropic.APIError.generate(
    status,
    { type: 'error', error: { type, message, ...(details && { details }) } },
    undefined,
    new Headers(headers),
  )
const gemini = (status, statusName, details) =>
  new GeminiApiError({
    status,
    message: JSON.stringify({ error: { code: status, message: 'x', status: statusName, ...(details && { details }) } }),
  })

/** The decision for one case, reduced to what the table promises. */
function decide(provider, err, options) {
  const v = classify(provider, err, { nowWallMs: NOW, ...options })
  return {
    kind: v.kind,
    counts: v.countsAsFailure,
    failover: v.failover,
    open: v.open,
    retryAfterMs: v.retryAfterMs,
    authError: v.authError,
  }
}

const FAILURE = { counts: true, failover: true, open: null, retryAfterMs: undefined, authError: false }
const CALLERS_FAULT = { kind: 'invalid_request', counts: false, failover: false, open: null, retryAfterMs: undefined, authError: false }
const QUOTA = { kind: 'quota_exhausted', counts: false, failover: true, open: 'max', retryAfterMs: undefined, authError: false }
const AUTH = { kind: 'auth', counts: false, failover: true, open: 'max', retryAfterMs: undefined, authError: true }
const rateLimited = (retryAfterMs) => ({
  kind: 'rate_limited',
  counts: false,
  failover: true,
  open: 'hint',
  retryAfterMs,
  authError: false,
})

const fetchFailed = () =>
  new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) })

const CASES = [
  // connection errors and timeouts: failure, fail over
  ['openai', 'connection error', new OpenAI.APIConnectionError({ message: 'Connection error.' }), { kind: 'connection', ...FAILURE }],
  ['openai', 'SDK timeout', new OpenAI.APIConnectionTimeoutError(), { kind: 'timeout', ...FAILURE }],
  ['anthropic', 'connection error', new Anthropic.APIConnectionError({ message: 'Connection error.' }), { kind: 'connection', ...FAILURE }],
  ['anthropic', 'SDK timeout', new Anthropic.APIConnectionTimeoutError(), { kind: 'timeout', ...FAILURE }],
  ['gemini', 'fetch failed (ECONNREFUSED)', fetchFailed(), { kind: 'connection', ...FAILURE }],
  [
    'gemini',
    'its own timeout (an AbortError the caller did not ask for)',
    new DOMException('This operation was aborted', 'AbortError'),
    { kind: 'timeout', ...FAILURE },
  ],
  [
    'openai',
    "breakwater's callTimeoutMs",
    Object.assign(new Error('timed out'), { code: 'ERR_CALL_TIMEOUT' }),
    { kind: 'timeout', ...FAILURE },
  ],
  [
    'anthropic',
    'a connection dropped mid-body',
    new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }),
    { kind: 'connection', ...FAILURE },
  ],
  [
    'openai',
    'a body cut short under node-fetch (openai 4)',
    Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
    { kind: 'connection', ...FAILURE },
  ],
  // 408 and 5xx: failure, fail over
  ['openai', '408', openai(408, { message: 'timeout', type: 'timeout' }), { kind: 'timeout', ...FAILURE }],
  ['openai', '500', openai(500, { message: 'oops', type: 'server_error' }), { kind: 'server_error', ...FAILURE }],
  ['openai', '502', openai(502, { message: 'bad gateway', type: 'server_error' }), { kind: 'server_error', ...FAILURE }],
  ['openai', '503', openai(503, { message: 'down', type: 'server_error' }), { kind: 'server_error', ...FAILURE }],
  ['anthropic', '500 api_error', anthropic(500, 'api_error', 'Internal server error'), { kind: 'server_error', ...FAILURE }],
  ['anthropic', '504 timeout_error', anthropic(504, 'timeout_error', 'timeout'), { kind: 'server_error', ...FAILURE }],
  ['gemini', '503 UNAVAILABLE', gemini(503, 'UNAVAILABLE'), { kind: 'server_error', ...FAILURE }],
  ['gemini', '500 INTERNAL', gemini(500, 'INTERNAL'), { kind: 'server_error', ...FAILURE }],
  // 529: overloaded, failure, fail over
  ['anthropic', '529 overloaded_error', anthropic(529, 'overloaded_error', 'Overloaded'), { kind: 'overloaded', ...FAILURE }],
  ['openai', '529', openai(529, { message: 'overloaded', type: 'server_error' }), { kind: 'overloaded', ...FAILURE }],
  // errors inside a stream, which carry no status
  [
    'anthropic',
    'an overloaded_error event in a stream',
    new Anthropic.APIError(
      undefined,
      { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
      undefined,
      new Headers(),
    ),
    { kind: 'overloaded', ...FAILURE },
  ],
  [
    'openai',
    'a server_error event in a stream',
    new OpenAI.APIError(undefined, { message: 'boom', type: 'server_error' }, undefined, new Headers()),
    { kind: 'server_error', ...FAILURE },
  ],
  [
    'gemini',
    'an error chunk in a stream',
    new GeminiApiError({
      status: 503,
      message: `got status: UNAVAILABLE. ${JSON.stringify({ error: { code: 503, status: 'UNAVAILABLE' } })}`,
    }),
    { kind: 'server_error', ...FAILURE },
  ],
  // 429: open for the provider's hint, fail over
  [
    'openai',
    '429 retry-after-ms',
    openai(429, { message: 'slow down', type: 'requests', code: 'rate_limit_exceeded' }, { 'retry-after-ms': '1500' }),
    rateLimited(1500),
  ],
  [
    'openai',
    '429 retry-after in seconds',
    openai(429, { message: 'slow down', type: 'requests' }, { 'retry-after': '7' }),
    rateLimited(7000),
  ],
  [
    'openai',
    '429 retry-after-ms wins over retry-after',
    openai(429, { message: 'x', type: 'tokens' }, { 'retry-after-ms': '250', 'retry-after': '1' }),
    rateLimited(250),
  ],
  [
    'anthropic',
    '429 retry-after as an HTTP-date',
    anthropic(429, 'rate_limit_error', 'x', { 'retry-after': new Date(NOW + 30_000).toUTCString() }),
    rateLimited(30_000),
  ],
  ['anthropic', '429 retry-after in seconds', anthropic(429, 'rate_limit_error', 'x', { 'retry-after': '20' }), rateLimited(20_000)],
  ['anthropic', '429 without a hint', anthropic(429, 'rate_limit_error', 'x'), rateLimited(undefined)],
  [
    'gemini',
    '429 with retryDelay "12s" in the body',
    gemini(429, 'RESOURCE_EXHAUSTED', [
      { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [] },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '12s' },
    ]),
    rateLimited(12_000),
  ],
  [
    'gemini',
    '429 with retryDelay "0.5s"',
    gemini(429, 'RESOURCE_EXHAUSTED', [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '0.500s' }]),
    rateLimited(500),
  ],
  ['gemini', '429 without RetryInfo', gemini(429, 'RESOURCE_EXHAUSTED'), rateLimited(undefined)],
  // 429 with quota or spend exhausted: open for maxResetTimeoutMs, fail over
  [
    'openai',
    '429 insufficient_quota',
    openai(
      429,
      { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' },
      { 'retry-after': '1' },
    ),
    QUOTA,
  ],
  [
    'anthropic',
    '429 enforced_spend_limit_reached',
    anthropic(429, 'rate_limit_error', 'limit', {}, { error_code: 'enforced_spend_limit_reached' }),
    QUOTA,
  ],
  [
    'anthropic',
    '429 contract_spend_limit_reached',
    anthropic(429, 'rate_limit_error', 'limit', {}, { error_code: 'contract_spend_limit_reached' }),
    QUOTA,
  ],
  ['anthropic', '402 billing_error', anthropic(402, 'billing_error', 'billing'), QUOTA],
  [
    'anthropic',
    '400 "credit balance is too low"',
    anthropic(400, 'invalid_request_error', 'Your credit balance is too low to access the Anthropic API.'),
    QUOTA,
  ],
  // 401 and 403: open, fail over, authError
  ['openai', '401', openai(401, { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' }), AUTH],
  ['openai', '403', openai(403, { message: 'Country not supported', type: 'request_forbidden' }), AUTH],
  ['anthropic', '401 authentication_error', anthropic(401, 'authentication_error', 'invalid x-api-key'), AUTH],
  ['anthropic', '403 permission_error', anthropic(403, 'permission_error', 'no'), AUTH],
  ['gemini', '403 PERMISSION_DENIED', gemini(403, 'PERMISSION_DENIED'), AUTH],
  ['gemini', '401 UNAUTHENTICATED', gemini(401, 'UNAUTHENTICATED'), AUTH],
  // 400, 404 and 422: neither count nor fail over
  [
    'openai',
    '400 context_length_exceeded',
    openai(400, {
      message: "This model's maximum context length is 128000 tokens",
      type: 'invalid_request_error',
      code: 'context_length_exceeded',
    }),
    CALLERS_FAULT,
  ],
  [
    'openai',
    '404 model_not_found',
    openai(404, { message: 'The model does not exist', type: 'invalid_request_error', code: 'model_not_found' }),
    CALLERS_FAULT,
  ],
  ['openai', '422', openai(422, { message: 'unprocessable', type: 'invalid_request_error' }), CALLERS_FAULT],
  [
    'anthropic',
    '400 prompt is too long',
    anthropic(400, 'invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum'),
    CALLERS_FAULT,
  ],
  ['anthropic', '404 not_found_error (a wrong model)', anthropic(404, 'not_found_error', 'model: claude-nope'), CALLERS_FAULT],
  ['anthropic', '413 request_too_large', anthropic(413, 'request_too_large', 'too large'), CALLERS_FAULT],
  ['gemini', '400 INVALID_ARGUMENT', gemini(400, 'INVALID_ARGUMENT'), CALLERS_FAULT],
  ['gemini', '404 NOT_FOUND', gemini(404, 'NOT_FOUND'), CALLERS_FAULT],
  // the caller's own abort: nothing counts, nothing fails over
  [
    'openai',
    "the caller's abort",
    new OpenAI.APIUserAbortError(),
    { kind: 'aborted', counts: false, failover: false, open: null, retryAfterMs: undefined, authError: false },
    { callerAborted: true },
  ],
  [
    'gemini',
    "the caller's abort",
    new DOMException('aborted', 'AbortError'),
    { kind: 'aborted', counts: false, failover: false, open: null, retryAfterMs: undefined, authError: false },
    { callerAborted: true },
  ],
  // seen by a breaker shared with an Express route: already counted where it happened
  [
    'openai',
    'ERR_ALL_PROVIDERS_UNAVAILABLE',
    Object.assign(new Error('none'), { code: 'ERR_ALL_PROVIDERS_UNAVAILABLE' }),
    { kind: 'unavailable', counts: false, failover: true, open: null, retryAfterMs: undefined, authError: false },
  ],
  [
    'anthropic',
    'ERR_CIRCUIT_OPEN',
    Object.assign(new Error('open'), { code: 'ERR_CIRCUIT_OPEN' }),
    { kind: 'unavailable', counts: false, failover: true, open: null, retryAfterMs: undefined, authError: false },
  ],
  // anything else counts, as it would for a plain breaker
  ['openai', 'an unrecognised error', new Error('Unexpected end of JSON input'), { kind: 'unknown', ...FAILURE }],
  ['gemini', 'a thrown non-error', 'weird', { kind: 'unknown', ...FAILURE }],
]

for (const [provider, what, err, expected, options] of CASES) {
  test(`taxonomy: ${provider} ${what} -> ${expected.kind}`, () => {
    assert.deepEqual(decide(provider, err, options), expected)
  })
}

test('taxonomy: every kind is a row of ERROR_KINDS, and the rows say what the README table says', () => {
  const rows = Object.fromEntries(Object.entries(ERROR_KINDS).map(([k, v]) => [k, [v.countsAsFailure, v.failover, v.open]]))
  assert.deepEqual(rows, {
    connection: [true, true, null],
    timeout: [true, true, null],
    server_error: [true, true, null],
    overloaded: [true, true, null],
    rate_limited: [false, true, 'hint'],
    quota_exhausted: [false, true, 'max'],
    auth: [false, true, 'max'],
    invalid_request: [false, false, null],
    aborted: [false, false, null],
    unavailable: [false, true, null],
    unknown: [true, true, null],
  })
})

test('taxonomy: an error marked as the caller abort is "aborted" without the option', () => {
  const err = new OpenAI.APIUserAbortError()
  assert.equal(classify('openai', err).kind, 'timeout')
  taxonomy.markCallerAbort(err)
  assert.equal(classify('openai', err).kind, 'aborted')
})

test('taxonomy: retry hints are parsed from every header form, and a malformed one is no hint', () => {
  const h = (o) => new Headers(o)
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after-ms': '120' }), NOW), 120)
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after': '2.5' }), NOW), 2500)
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after': new Date(NOW + 5000).toUTCString() }), NOW), 5000)
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after': new Date(NOW - 5000).toUTCString() }), NOW), 0, 'a date in the past: now')
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after': 'soon' }), NOW), undefined)
  assert.equal(taxonomy.retryAfterFromHeaders(h({ 'retry-after-ms': 'x', 'retry-after': '3' }), NOW), 3000)
  assert.equal(taxonomy.retryAfterFromHeaders({ 'Retry-After': '4' }, NOW), 4000, 'plain header objects (openai 4) too')
  assert.equal(taxonomy.retryAfterFromHeaders(undefined, NOW), undefined)
  assert.equal(taxonomy.parseDuration('12s'), 12000)
  assert.equal(taxonomy.parseDuration('1.25s'), 1250)
  assert.equal(taxonomy.parseDuration('12'), undefined)
  assert.equal(taxonomy.parseDuration(12), undefined)
})
