// In-process stand-ins for an OpenAI-compatible API and an Anthropic-compatible one, whose
// failure rate and latency can be changed while they run: the example's "chaos" switch.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'

export interface Chaos {
  /** Share of requests answered with a 503, 0 to 1. */
  failRate: number
  /** Added latency per request, in ms. */
  latencyMs: number
}

export interface FakeUpstream {
  url: string
  chaos: Chaos
  requests: number
  close(): Promise<void>
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

export type WireFormat = 'openai' | 'anthropic'

function lastUserText(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { messages?: { content?: unknown }[] }
    const content = parsed.messages?.at(-1)?.content
    if (typeof content === 'string') return content
    if (Array.isArray(content)) return content.map((p: { text?: string }) => p.text ?? '').join('')
    return ''
  } catch {
    return null
  }
}

export async function startFakeUpstream(name: string, chaos: Chaos, format: WireFormat = 'openai'): Promise<FakeUpstream> {
  const state: FakeUpstream = { url: '', chaos, requests: 0, close: async () => {} }
  const server: Server = createServer(async (req, res) => {
    state.requests++
    const body = await readBody(req).catch(() => '')
    if (state.chaos.latencyMs > 0) await new Promise((r) => setTimeout(r, state.chaos.latencyMs))
    if (Math.random() < state.chaos.failRate) {
      if (format === 'anthropic')
        send(res, 529, { type: 'error', error: { type: 'overloaded_error', message: `${name} is overloaded (chaos)` } })
      else send(res, 503, { error: { message: `${name} is overloaded (chaos)`, type: 'server_error' } })
      return
    }
    if (format === 'anthropic') {
      if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
        send(res, 200, {
          data: [{ id: 'claude-haiku-4-5', type: 'model', display_name: 'Claude Haiku', created_at: '2025-01-01T00:00:00Z' }],
          has_more: false,
          first_id: null,
          last_id: null,
        })
        return
      }
      if (req.method === 'POST' && req.url === '/v1/messages') {
        const prompt = lastUserText(body)
        if (prompt === null) {
          send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'invalid JSON' } })
          return
        }
        send(res, 200, {
          id: `msg_${state.requests}`,
          type: 'message',
          role: 'assistant',
          model: 'claude-haiku-4-5',
          content: [{ type: 'text', text: `[${name}] ${prompt.split('').reverse().join('')}` }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: prompt.length, output_tokens: prompt.length },
        })
        return
      }
      send(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } })
      return
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      send(res, 200, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: name }] })
      return
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      const prompt = lastUserText(body)
      if (prompt === null) {
        send(res, 400, { error: { message: 'invalid JSON', type: 'invalid_request_error' } })
        return
      }
      send(res, 200, {
        id: `chatcmpl-${state.requests}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: 'gpt-4o-mini',
        choices: [
          { index: 0, message: { role: 'assistant', content: `[${name}] ${prompt.split('').reverse().join('')}` }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: prompt.length, completion_tokens: prompt.length, total_tokens: 2 * prompt.length },
      })
      return
    }
    send(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  state.url = `http://127.0.0.1:${port}`
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return state
}
