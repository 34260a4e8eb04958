'use strict'
// Request translation between the three wire formats, through one neutral form:
//   { system, messages: [{ role: 'user'|'assistant', content: Part[] }], maxTokens, temperature, topP, stop }
// where a Part is { type: 'text', text } or { type: 'image', mediaType?, data? (base64), url? }.
// What has no counterpart in the neutral form (tool calls, audio, documents) makes a request
// untranslatable: it is then served by its own provider only, never failed over half-translated.

/** Thrown when a request cannot be expressed for another provider. */
class UntranslatableError extends Error {
  constructor(what) {
    super(`cannot translate ${what} to another provider`)
    this.name = 'UntranslatableError'
  }
}

/** Anthropic requires max_tokens; a request that sets no limit gets this one when failed over to Anthropic. */
const DEFAULT_ANTHROPIC_MAX_TOKENS = 1024
/** Anthropic's temperature range is 0..1 (OpenAI's and Gemini's are 0..2): higher values are clamped. */
const ANTHROPIC_MAX_TEMPERATURE = 1

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x)
const defined = (o) => {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k]
  return o
}

function stopList(stop, field) {
  if (stop === undefined || stop === null) return undefined
  if (typeof stop === 'string') return [stop]
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) return stop.length === 0 ? undefined : [...stop]
  throw new UntranslatableError(`${field} that is not a string or an array of strings`)
}

function requireMessages(messages, field) {
  if (!Array.isArray(messages)) throw new UntranslatableError(`a request without a ${field} array`)
  return messages
}

/** Joins the text of consecutive text parts; a message of one text part is sent as a plain string. */
function textOnly(parts) {
  return parts.every((p) => p.type === 'text')
}

function parseDataUrl(url) {
  const m = /^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$/s.exec(url)
  return m === null ? null : { mediaType: m[1], data: m[2] }
}

function imagePartFromUrl(url) {
  const inline = parseDataUrl(url)
  return inline !== null ? { type: 'image', mediaType: inline.mediaType, data: inline.data } : { type: 'image', url }
}

function imageUrlOf(part) {
  return part.data !== undefined ? `data:${part.mediaType ?? 'application/octet-stream'};base64,${part.data}` : part.url
}

// ---- OpenAI: chat.completions ----

function openaiParts(content, role) {
  if (content === null || content === undefined) return []
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) throw new UntranslatableError(`a ${role} message content that is neither text nor parts`)
  return content.map((p) => {
    if (p?.type === 'text' && typeof p.text === 'string') return { type: 'text', text: p.text }
    if (p?.type === 'image_url' && typeof p.image_url?.url === 'string') return imagePartFromUrl(p.image_url.url)
    throw new UntranslatableError(`an OpenAI content part of type ${JSON.stringify(p?.type)}`)
  })
}

function systemText(parts, what) {
  if (!parts.every((p) => p.type === 'text')) throw new UntranslatableError(`a ${what} with images`)
  return parts.map((p) => p.text).join('\n\n')
}

function fromOpenAI(req) {
  const system = []
  const messages = []
  for (const m of requireMessages(req.messages, 'messages')) {
    const role = m?.role
    if (role === 'system' || role === 'developer') {
      system.push(systemText(openaiParts(m.content, role), `${role} message`))
    } else if (role === 'user' || role === 'assistant') {
      if (m.tool_calls !== undefined || m.function_call !== undefined || m.audio !== undefined) {
        throw new UntranslatableError('an assistant message with tool calls or audio')
      }
      const content = openaiParts(m.content, role)
      if (content.length > 0) messages.push({ role, content })
    } else {
      throw new UntranslatableError(`a message with role ${JSON.stringify(role)}`)
    }
  }
  if (req.tools !== undefined || req.functions !== undefined) throw new UntranslatableError('a request with tools')
  return defined({
    system: system.length > 0 ? system.join('\n\n') : undefined,
    messages,
    maxTokens: req.max_completion_tokens ?? req.max_tokens ?? undefined,
    temperature: req.temperature ?? undefined,
    topP: req.top_p ?? undefined,
    stop: stopList(req.stop, 'stop'),
  })
}

function toOpenAI(n, model) {
  const messages = []
  if (n.system !== undefined) messages.push({ role: 'system', content: n.system })
  for (const m of n.messages) {
    const content =
      textOnly(m.content) && m.content.length === 1
        ? m.content[0].text
        : m.content.map((p) =>
            p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image_url', image_url: { url: imageUrlOf(p) } },
          )
    messages.push({ role: m.role, content })
  }
  return defined({
    model,
    messages,
    // `max_tokens` is deprecated and refused by the reasoning models; this one works for all.
    max_completion_tokens: n.maxTokens,
    temperature: n.temperature,
    top_p: n.topP,
    stop: n.stop,
  })
}

// ---- Anthropic: messages ----

function anthropicParts(content, role) {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) throw new UntranslatableError(`an Anthropic ${role} content that is neither text nor blocks`)
  return content.map((b) => {
    if (b?.type === 'text' && typeof b.text === 'string') return { type: 'text', text: b.text }
    if (b?.type === 'image' && b.source?.type === 'base64') return { type: 'image', mediaType: b.source.media_type, data: b.source.data }
    if (b?.type === 'image' && b.source?.type === 'url') return { type: 'image', url: b.source.url }
    throw new UntranslatableError(`an Anthropic content block of type ${JSON.stringify(b?.type)}`)
  })
}

function fromAnthropic(req) {
  const messages = []
  for (const m of requireMessages(req.messages, 'messages')) {
    if (m?.role !== 'user' && m?.role !== 'assistant') throw new UntranslatableError(`a message with role ${JSON.stringify(m?.role)}`)
    const content = anthropicParts(m.content, m.role)
    if (content.length > 0) messages.push({ role: m.role, content })
  }
  if (req.tools !== undefined) throw new UntranslatableError('a request with tools')
  let system
  if (typeof req.system === 'string') system = req.system
  else if (Array.isArray(req.system)) system = systemText(anthropicParts(req.system, 'system'), 'system prompt')
  else if (req.system !== undefined && req.system !== null) throw new UntranslatableError('a system prompt that is neither text nor blocks')
  return defined({
    system: system === '' ? undefined : system,
    messages,
    maxTokens: req.max_tokens ?? undefined,
    temperature: req.temperature ?? undefined,
    topP: req.top_p ?? undefined,
    stop: stopList(req.stop_sequences, 'stop_sequences'),
  })
}

function toAnthropic(n, model) {
  // Anthropic merges consecutive turns of one role anyway; merging here keeps every version happy.
  const messages = []
  for (const m of n.messages) {
    const last = messages[messages.length - 1]
    if (last !== undefined && last.role === m.role) last.parts.push(...m.content)
    else messages.push({ role: m.role, parts: [...m.content] })
  }
  return defined({
    model,
    max_tokens: n.maxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS,
    system: n.system,
    messages: messages.map(({ role, parts }) => ({
      role,
      content:
        textOnly(parts) && parts.length === 1
          ? parts[0].text
          : parts.map((p) => {
              if (p.type === 'text') return { type: 'text', text: p.text }
              if (p.data !== undefined) return { type: 'image', source: { type: 'base64', media_type: p.mediaType, data: p.data } }
              return { type: 'image', source: { type: 'url', url: p.url } }
            }),
    })),
    temperature: n.temperature === undefined ? undefined : Math.min(n.temperature, ANTHROPIC_MAX_TEMPERATURE),
    top_p: n.topP,
    stop_sequences: n.stop,
  })
}

// ---- Gemini: models.generateContent ----

function geminiParts(parts, what) {
  return parts.map((p) => {
    if (typeof p === 'string') return { type: 'text', text: p }
    if (typeof p?.text === 'string' && p.thought !== true) return { type: 'text', text: p.text }
    if (isObject(p?.inlineData)) return { type: 'image', mediaType: p.inlineData.mimeType, data: p.inlineData.data }
    if (isObject(p?.fileData)) return defined({ type: 'image', url: p.fileData.fileUri, mediaType: p.fileData.mimeType })
    throw new UntranslatableError(`a Gemini ${what} part with ${JSON.stringify(Object.keys(p ?? {}))}`)
  })
}

/** Gemini's `contents` takes a string, a Content, parts, or Contents: normalise to Contents. */
function geminiContents(contents) {
  if (typeof contents === 'string') return [{ role: 'user', parts: [contents] }]
  if (isObject(contents)) return 'parts' in contents ? [contents] : [{ role: 'user', parts: [contents] }]
  if (!Array.isArray(contents)) throw new UntranslatableError('Gemini contents that are neither text, a Content nor an array')
  if (contents.every((c) => isObject(c) && 'parts' in c)) return contents
  return [{ role: 'user', parts: contents }]
}

function fromGemini(req) {
  const config = req.config ?? {}
  const messages = []
  for (const c of geminiContents(req.contents)) {
    const role = c.role === 'model' ? 'assistant' : c.role === 'user' || c.role === undefined ? 'user' : null
    if (role === null) throw new UntranslatableError(`a Gemini content with role ${JSON.stringify(c.role)}`)
    const content = geminiParts(c.parts ?? [], 'content')
    if (content.length > 0) messages.push({ role, content })
  }
  if (config.tools !== undefined) throw new UntranslatableError('a request with tools')
  let system
  const si = config.systemInstruction
  if (typeof si === 'string') system = si
  else if (Array.isArray(si)) system = systemText(geminiParts(si, 'system'), 'system instruction')
  else if (isObject(si)) system = systemText(geminiParts('parts' in si ? (si.parts ?? []) : [si], 'system'), 'system instruction')
  return defined({
    system: system === '' ? undefined : system,
    messages,
    maxTokens: config.maxOutputTokens ?? undefined,
    temperature: config.temperature ?? undefined,
    topP: config.topP ?? undefined,
    stop: stopList(config.stopSequences, 'stopSequences'),
  })
}

function toGemini(n, model) {
  return {
    model,
    contents: n.messages.map((m) => ({
      role: m.role === 'assistant' ? 'model' : 'user',
      parts: m.content.map((p) => {
        if (p.type === 'text') return { text: p.text }
        if (p.data !== undefined) return { inlineData: { mimeType: p.mediaType, data: p.data } }
        return { fileData: defined({ fileUri: p.url, mimeType: p.mediaType }) }
      }),
    })),
    config: defined({
      systemInstruction: n.system,
      maxOutputTokens: n.maxTokens,
      temperature: n.temperature,
      topP: n.topP,
      stopSequences: n.stop,
    }),
  }
}

const FROM = { openai: fromOpenAI, anthropic: fromAnthropic, gemini: fromGemini }
const TO = { openai: toOpenAI, anthropic: toAnthropic, gemini: toGemini }

module.exports = {
  UntranslatableError,
  DEFAULT_ANTHROPIC_MAX_TOKENS,
  FROM,
  TO,
  fromOpenAI,
  toOpenAI,
  fromAnthropic,
  toAnthropic,
  fromGemini,
  toGemini,
}
