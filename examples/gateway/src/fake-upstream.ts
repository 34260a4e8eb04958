// An in-process stand-in for an OpenAI-compatible API, whose failure rate and latency can be
// changed while it runs: the example's "chaos" switch.
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

export async function startFakeUpstream(name: string, chaos: Chaos): Promise<FakeUpstream> {
  const state: FakeUpstream = { url: '', chaos, requests: 0, close: async () => {} }
  const server: Server = createServer(async (req, res) => {
    state.requests++
    const body = await readBody(req).catch(() => '')
    if (state.chaos.latencyMs > 0) await new Promise((r) => setTimeout(r, state.chaos.latencyMs))
    if (Math.random() < state.chaos.failRate) {
      send(res, 503, { error: { message: `${name} is overloaded (chaos)`, type: 'server_error' } })
      return
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      send(res, 200, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: name }] })
      return
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      let prompt = ''
      try {
        const parsed = JSON.parse(body) as { messages?: { content?: string }[]; model?: string }
        prompt = String(parsed.messages?.at(-1)?.content ?? '')
      } catch {
        send(res, 400, { error: { message: 'invalid JSON', type: 'invalid_request_error' } })
        return
      }
      send(res, 200, {
        id: `chatcmpl-${state.requests}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: `[${name}] ${prompt.split('').reverse().join('')}` }, finish_reason: 'stop' }],
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
