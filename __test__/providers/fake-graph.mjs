// A fake Meta Graph API on 127.0.0.1:0: creates ad creatives, ad sets and ads (POST
// /<version>/act_<id>/<edge>), lists them with name filtering (GET, as the publisher's tag lookup
// does), answers GET /<version>/me, and checks the bearer token (code 190 otherwise). A test
// scripts replies for requests that match: an error with headers, a held response, or an object
// created and its answer held (a timeout after the fact), and can run a callback on arrival.
import http from 'node:http'

export const META_TOKEN = 'EAAB-meta-test-token-5f1b2c'

export const graphError = (code, message, extra = {}) => ({
  error: { message, type: 'OAuthException', code, fbtrace_id: 'A1b2C3', ...extra },
})

/**
 * A scripted reply: `match(request)` picks the request (request: { method, edge, postIndex });
 * then `status`, `body`, `headers` (an error), `hold` (a Promise awaited before answering),
 * `createThenHold` (create the object, then await this before answering), `onArrive()` (called
 * when it arrives, after the object is created with `createThenHold`).
 */
export async function startFakeGraph({ token = META_TOKEN, version = 'v21.0' } = {}) {
  const objects = { adcreatives: [], adsets: [], ads: [] }
  const requests = []
  const script = []
  const sockets = new Set()
  let nextId = 120000000000
  let posts = 0
  const server = http.createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (d) => (raw += d))
    req.on('end', () => {
      handle(req, res, raw).catch(() => res.destroy())
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })

  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }

  function create(edge, account, body) {
    const obj = { id: String(nextId++), account, ...body }
    objects[edge].push(obj)
    return obj
  }

  async function handle(req, res, raw) {
    const url = new URL(req.url, 'http://x')
    const parts = url.pathname.split('/').filter(Boolean)
    const body = raw ? JSON.parse(raw) : undefined
    const edge = parts[2]
    const record = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      edge,
      postIndex: req.method === 'POST' ? ++posts : undefined,
    }
    requests.push(record)
    if (parts[0] !== version) return json(res, 400, graphError(2635, `Unknown API version ${parts[0]}`))
    if (req.headers.authorization !== `Bearer ${token}`)
      return json(res, 400, graphError(190, 'Invalid OAuth access token - Cannot parse access token'))
    const i = script.findIndex((s) => s.match === undefined || s.match(record))
    const reply = i === -1 ? {} : script.splice(i, 1)[0]
    if (reply.hold) {
      reply.onArrive?.()
      await reply.hold
    }
    if (reply.status !== undefined) {
      reply.onArrive?.()
      return json(res, reply.status, reply.body ?? {}, reply.headers)
    }
    if (parts[1] === 'me') return json(res, 200, { id: '10001' })
    if (!(edge in objects) || !/^act_\d+$/.test(parts[1] ?? '')) return json(res, 400, graphError(100, 'Unsupported request'))
    if (req.method === 'POST') {
      const obj = create(edge, parts[1], body)
      if (reply.createThenHold) {
        reply.onArrive?.()
        await reply.createThenHold
      } else {
        reply.onArrive?.()
      }
      return json(res, 200, { id: obj.id })
    }
    // GET: the list, filtered by name as the lookup asks.
    let data = objects[edge].filter((o) => o.account === parts[1])
    const filtering = url.searchParams.get('filtering')
    if (filtering) {
      for (const f of JSON.parse(filtering)) {
        if (f.field === 'name' && f.operator === 'CONTAIN') data = data.filter((o) => String(o.name).includes(f.value))
      }
    }
    return json(res, 200, { data: data.map((o) => ({ id: o.id, name: o.name })), paging: {} })
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    objects,
    requests,
    get posts() {
      return requests.filter((r) => r.method === 'POST')
    },
    reply(...entries) {
      script.push(...entries)
      return this
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** A publish request for ad `i` of campaign 777. */
export function adRequest(i, extra = {}) {
  return {
    adAccountId: 'act_123456',
    campaignId: '777',
    name: `Spring sale ${i}`,
    adCreative: {
      name: `Creative ${i}`,
      object_story_spec: { page_id: '55', link_data: { link: `https://shop.example/${i}`, message: `Deal ${i}` } },
    },
    targeting: { geo_locations: { countries: ['US'] }, age_min: 18 },
    budget: { daily_budget: 5000, billing_event: 'IMPRESSIONS', optimization_goal: 'REACH' },
    idempotencyKey: `spring-sale/${i}`,
    ...extra,
  }
}
