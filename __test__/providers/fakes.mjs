// Fake upstreams for the provider tests: HTTP servers on 127.0.0.1:0 that speak the wire formats
// of OpenAI (/v1/chat/completions, JSON and SSE), Anthropic (/v1/messages, JSON and SSE) and
// Gemini (:generateContent, and :streamGenerateContent with alt=sse), plus each models list. A test
// scripts what the next requests get: a status, body and headers, a held or dropped connection,
// or a stream whose events wait on gates and that may fail after some of them.
import http from 'node:http'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { GoogleGenAI } from '@google/genai'

/**
 * A scripted reply (all fields optional):
 *   status, body, headers         an error (or any) response, sent as JSON
 *   text                          the answer's text (default: "<kind> says hi")
 *   chunks                        for streams: the text deltas (default: the text in 2 pieces)
 *   gates                         { [eventIndex]: Promise } awaited before that text delta is sent
 *   hold                          a Promise awaited before anything is sent
 *   drop                          destroy the connection without a response
 *   failAfter: n                  streams: after n text deltas, fail as `failWith` says
 *   failWith                      'drop' (close the socket mid-body) or an error object for an error event
 *   failGate                      a Promise awaited before failing (say, until the client has the first chunk)
 *   finishReason, usage, model    override the answer's fields
 */
export async function startFake(kind) {
  const requests = []
  const script = []
  const sockets = new Set()
  const arrivals = []
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (d) => (raw += d))
    req.on('end', () => {
      const url = new URL(req.url, 'http://x')
      const record = {
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: raw ? JSON.parse(raw) : undefined,
      }
      // Resolves when the connection of this request closes (the client let go of it).
      record.closed = new Promise((resolve) => res.on('close', resolve))
      requests.push(record)
      for (const a of arrivals.splice(0)) a()
      const reply = script.length > 0 ? script.shift() : {}
      serve(kind, record, reply, req, res).catch(() => res.destroy())
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  return {
    kind,
    url,
    requests,
    /** Queues replies for the next requests, in order. */
    reply(...replies) {
      script.push(...replies)
      return this
    },
    /** Resolves once `n` requests have arrived in total. */
    async received(n) {
      while (requests.length < n) await new Promise((resolve) => arrivals.push(resolve))
    },
    /** The requests that asked for a completion (not a models list). */
    get completions() {
      return requests.filter((r) => r.method === 'POST')
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}

async function serve(kind, record, reply, req, res) {
  if (reply.hold) await reply.hold
  if (reply.drop) {
    req.socket.destroy()
    return
  }
  if (reply.status !== undefined && reply.status !== 200) {
    json(res, reply.status, reply.body ?? {}, reply.headers)
    return
  }
  if (record.method === 'GET') {
    json(res, 200, modelsList(kind), reply.headers)
    return
  }
  const streaming = kind === 'gemini' ? record.path.endsWith(':streamGenerateContent') : record.body?.stream === true
  const model = reply.model ?? (kind === 'gemini' ? /models\/([^:]+):/.exec(record.path)?.[1] : record.body?.model)
  const text = reply.text ?? `${kind} says hi`
  if (!streaming) {
    json(res, 200, WIRE[kind].message(model, text, reply), reply.headers)
    return
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...reply.headers })
  const chunks = reply.chunks ?? [text.slice(0, 3), text.slice(3)]
  const wire = WIRE[kind]
  for (const e of wire.streamStart(model)) res.write(e)
  for (let i = 0; i < chunks.length; i++) {
    if (reply.failAfter === i) return fail(kind, reply.failWith, req, res, reply.failGate)
    if (reply.gates?.[i]) await reply.gates[i]
    res.write(wire.delta(model, chunks[i]))
  }
  if (reply.failAfter === chunks.length) return fail(kind, reply.failWith, req, res, reply.failGate)
  for (const e of wire.streamEnd(model, reply, record)) res.write(e)
  res.end()
}

async function fail(kind, how, req, res, gate) {
  if (gate) await gate
  if (how === 'drop' || how === undefined) {
    // End the connection after what was written, in the middle of the chunked body.
    req.socket.end()
    return
  }
  res.write(WIRE[kind].errorEvent(how))
  res.end()
}

const sse = (data, event) => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`

function modelsList(kind) {
  if (kind === 'gemini') return { models: [{ name: 'models/gemini-2.5-flash', displayName: 'Gemini 2.5 Flash' }] }
  if (kind === 'anthropic')
    return {
      data: [{ type: 'model', id: 'claude-haiku-4-5', display_name: 'Claude Haiku 4.5', created_at: '2025-10-01T00:00:00Z' }],
      has_more: false,
      first_id: 'claude-haiku-4-5',
      last_id: 'claude-haiku-4-5',
    }
  return {
    object: 'list',
    data: [
      { id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'openai' },
      { id: 'gpt-4o', object: 'model', created: 0, owned_by: 'openai' },
    ],
  }
}

const WIRE = {
  openai: {
    message: (model, text, r) => ({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 0,
      model,
      choices: [
        { index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: r.finishReason ?? 'stop', logprobs: null },
      ],
      usage: r.usage ?? { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
    }),
    streamStart: (model) => [
      sse({
        id: 'c1',
        object: 'chat.completion.chunk',
        created: 0,
        model,
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
      }),
    ],
    delta: (model, text) =>
      sse({
        id: 'c1',
        object: 'chat.completion.chunk',
        created: 0,
        model,
        choices: [{ index: 0, delta: { content: text }, finish_reason: null }],
      }),
    streamEnd: (model, r, record) => [
      sse({
        id: 'c1',
        object: 'chat.completion.chunk',
        created: 0,
        model,
        choices: [{ index: 0, delta: {}, finish_reason: r.finishReason ?? 'stop' }],
      }),
      ...(record.body?.stream_options?.include_usage
        ? [
            sse({
              id: 'c1',
              object: 'chat.completion.chunk',
              created: 0,
              model,
              choices: [],
              usage: r.usage ?? { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
            }),
          ]
        : []),
      'data: [DONE]\n\n',
    ],
    errorEvent: (error) => sse({ error }),
  },
  anthropic: {
    message: (model, text, r) => ({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text }],
      stop_reason: r.finishReason ?? 'end_turn',
      stop_sequence: null,
      usage: r.usage ?? { input_tokens: 12, output_tokens: 8 },
    }),
    streamStart: (model) => [
      sse(
        {
          type: 'message_start',
          message: {
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 12, output_tokens: 1 },
          },
        },
        'message_start',
      ),
      sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
      sse({ type: 'ping' }, 'ping'),
    ],
    delta: (_model, text) => sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta'),
    streamEnd: (_model, r) => [
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sse(
        {
          type: 'message_delta',
          delta: { stop_reason: r.finishReason ?? 'end_turn', stop_sequence: null },
          usage: { output_tokens: r.usage?.output_tokens ?? 8 },
        },
        'message_delta',
      ),
      sse({ type: 'message_stop' }, 'message_stop'),
    ],
    errorEvent: (error) => sse({ type: 'error', error }, 'error'),
  },
  gemini: {
    message: (model, text, r) => ({
      candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason: r.finishReason ?? 'STOP', index: 0 }],
      usageMetadata: r.usage ?? { promptTokenCount: 13, candidatesTokenCount: 9, totalTokenCount: 22 },
      modelVersion: model,
    }),
    streamStart: () => [],
    delta: (model, text) =>
      `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }], modelVersion: model })}\r\n\r\n`,
    streamEnd: (model, r) => [
      `data: ${JSON.stringify({
        candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: r.finishReason ?? 'STOP', index: 0 }],
        usageMetadata: r.usage ?? { promptTokenCount: 13, candidatesTokenCount: 9, totalTokenCount: 22 },
        modelVersion: model,
      })}\r\n\r\n`,
    ],
    errorEvent: (error) => `data: ${JSON.stringify({ error })}\r\n\r\n`,
  },
}

// ---- error bodies in each provider's format ----

export const openaiError = (type, message, code = null) => ({ error: { message, type, param: null, code } })
export const anthropicError = (type, message, details) => ({
  type: 'error',
  error: { type, message, ...(details && { details }) },
  request_id: 'req_1',
})
export const geminiError = (code, status, message, details) => ({ error: { code, message, status, ...(details && { details }) } })

// ---- the real SDK clients, pointed at the fakes ----

/** Real SDK clients with their base URLs at the fakes. `timeoutMs` is the SDK's own request timeout. */
export function clientsFor(fakes, { timeoutMs } = {}) {
  const out = {}
  if (fakes.openai)
    out.openaiClient = new OpenAI({ apiKey: 'sk-test', baseURL: `${fakes.openai.url}/v1`, ...(timeoutMs && { timeout: timeoutMs }) })
  if (fakes.anthropic)
    out.anthropicClient = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fakes.anthropic.url, ...(timeoutMs && { timeout: timeoutMs }) })
  if (fakes.gemini)
    out.geminiClient = new GoogleGenAI({
      apiKey: 'gm-test',
      httpOptions: { baseUrl: fakes.gemini.url, ...(timeoutMs && { timeout: timeoutMs }) },
    })
  return out
}

/** Starts the three fakes; `close()` stops them all. */
export async function startFakes() {
  const [openai, anthropic, gemini] = await Promise.all([startFake('openai'), startFake('anthropic'), startFake('gemini')])
  return { openai, anthropic, gemini, close: () => Promise.all([openai.close(), anthropic.close(), gemini.close()]) }
}

export function deferred() {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}
