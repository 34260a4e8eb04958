'use strict'
// One adapter per provider: how to call its SDK (every call with the SDK's own retries off, so
// the breaker sees every attempt), and how to read its answers and stream events into one shape.

const { FROM, TO } = require('./translate')

/** One vocabulary of finish reasons for every provider: OpenAI's. */
const ANTHROPIC_FINISH = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
}
const GEMINI_FINISH = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
  FINISH_REASON_UNSPECIFIED: null,
}

/** The per-request options of the openai and Anthropic SDKs for a health check. */
const requestOptions = ({ timeoutMs, signal }) => ({
  maxRetries: 0,
  ...(timeoutMs !== undefined && { timeout: timeoutMs }),
  ...(signal && { signal }),
})

const usage = (inputTokens, outputTokens) => ({ inputTokens: inputTokens ?? 0, outputTokens: outputTokens ?? 0 })

// ---- OpenAI ----

function openaiResult(raw, requestedModel) {
  const choice = raw?.choices?.[0]
  return {
    content: choice?.message?.content ?? '',
    model: raw?.model ?? requestedModel,
    usage: usage(raw?.usage?.prompt_tokens, raw?.usage?.completion_tokens),
    finishReason: choice?.finish_reason ?? null,
  }
}

async function* openaiChunks(stream, requestedModel) {
  for await (const chunk of stream) {
    const choice = chunk?.choices?.[0]
    const content = choice?.delta?.content ?? ''
    const finishReason = choice?.finish_reason ?? null
    const u = chunk?.usage ? usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens) : undefined
    if (content === '' && finishReason === null && u === undefined) continue
    yield { content, model: chunk?.model ?? requestedModel, finishReason, ...(u && { usage: u }), raw: chunk }
  }
}

const openai = {
  name: 'openai',
  breakerName: 'openai_api',
  fromRequest: FROM.openai,
  toRequest: TO.openai,
  modelOf: (body) => body.model,
  hasClient: (c) => typeof c?.chat?.completions?.create === 'function',
  create(client, body, signal) {
    return client.chat.completions.create({ ...body, stream: false }, { maxRetries: 0, signal })
  },
  openStream(client, body, signal) {
    const streamOptions = body.stream_options ?? { include_usage: true }
    return client.chat.completions.create({ ...body, stream: true, stream_options: streamOptions }, { maxRetries: 0, signal })
  },
  result: openaiResult,
  chunks: openaiChunks,
  async healthCheck(client, options) {
    const page = await client.models.list(requestOptions(options))
    return { models: Array.isArray(page?.data) ? page.data.length : undefined }
  },
}

// ---- Anthropic ----

function anthropicText(blocks) {
  if (!Array.isArray(blocks)) return ''
  return blocks
    .filter((b) => b?.type === 'text')
    .map((b) => b.text)
    .join('')
}

function anthropicFinish(reason) {
  if (reason === null || reason === undefined) return null
  return ANTHROPIC_FINISH[reason] ?? reason
}

function anthropicResult(raw, requestedModel) {
  return {
    content: anthropicText(raw?.content),
    model: raw?.model ?? requestedModel,
    usage: usage(raw?.usage?.input_tokens, raw?.usage?.output_tokens),
    finishReason: anthropicFinish(raw?.stop_reason),
  }
}

async function* anthropicChunks(stream, requestedModel) {
  let model = requestedModel
  let inputTokens = 0
  for await (const event of stream) {
    switch (event?.type) {
      case 'message_start':
        model = event.message?.model ?? model
        inputTokens = event.message?.usage?.input_tokens ?? 0
        break
      case 'content_block_delta':
        if (event.delta?.type === 'text_delta' && event.delta.text !== '') {
          yield { content: event.delta.text, model, finishReason: null, raw: event }
        }
        break
      case 'message_delta':
        yield {
          content: '',
          model,
          finishReason: anthropicFinish(event.delta?.stop_reason),
          usage: usage(event.usage?.input_tokens ?? inputTokens, event.usage?.output_tokens),
          raw: event,
        }
        break
      default:
        break // ping, content_block_start/stop, message_stop: no output
    }
  }
}

const anthropic = {
  name: 'anthropic',
  breakerName: 'anthropic_api',
  fromRequest: FROM.anthropic,
  toRequest: TO.anthropic,
  modelOf: (body) => body.model,
  hasClient: (c) => typeof c?.messages?.create === 'function',
  create(client, body, signal) {
    return client.messages.create({ ...body, stream: false }, { maxRetries: 0, signal })
  },
  openStream(client, body, signal) {
    return client.messages.create({ ...body, stream: true }, { maxRetries: 0, signal })
  },
  result: anthropicResult,
  chunks: anthropicChunks,
  async healthCheck(client, options) {
    const page = await client.models.list({ limit: 1 }, requestOptions(options))
    return { models: Array.isArray(page?.data) ? page.data.length : undefined }
  },
}

// ---- Gemini ----

function geminiText(candidate) {
  const parts = candidate?.content?.parts
  if (!Array.isArray(parts)) return ''
  return parts
    .filter((p) => typeof p?.text === 'string' && p.thought !== true)
    .map((p) => p.text)
    .join('')
}

function geminiFinish(reason) {
  if (reason === null || reason === undefined) return null
  return reason in GEMINI_FINISH ? GEMINI_FINISH[reason] : String(reason).toLowerCase()
}

function geminiResult(raw, requestedModel) {
  const candidate = raw?.candidates?.[0]
  return {
    content: geminiText(candidate),
    model: raw?.modelVersion ?? requestedModel,
    usage: usage(raw?.usageMetadata?.promptTokenCount, raw?.usageMetadata?.candidatesTokenCount),
    finishReason: geminiFinish(candidate?.finishReason),
  }
}

async function* geminiChunks(stream, requestedModel) {
  for await (const chunk of stream) {
    const candidate = chunk?.candidates?.[0]
    const content = geminiText(candidate)
    const finishReason = geminiFinish(candidate?.finishReason)
    const m = chunk?.usageMetadata
    const u = finishReason !== null && m ? usage(m.promptTokenCount, m.candidatesTokenCount) : undefined
    if (content === '' && finishReason === null) continue
    yield { content, model: chunk?.modelVersion ?? requestedModel, finishReason, ...(u && { usage: u }), raw: chunk }
  }
}

/** Per-request options for @google/genai: no retries (its default client has none; a user's may). */
function geminiConfig(config, signal) {
  const httpOptions = config?.httpOptions ?? {}
  return {
    ...config,
    abortSignal: signal,
    httpOptions: { ...httpOptions, retryOptions: { ...httpOptions.retryOptions, attempts: 1 } },
  }
}

const gemini = {
  name: 'gemini',
  breakerName: 'gemini_api',
  fromRequest: FROM.gemini,
  toRequest: TO.gemini,
  modelOf: (body) => body.model,
  hasClient: (c) => typeof c?.models?.generateContent === 'function',
  create(client, body, signal) {
    return client.models.generateContent({ ...body, config: geminiConfig(body.config, signal) })
  },
  openStream(client, body, signal) {
    return client.models.generateContentStream({ ...body, config: geminiConfig(body.config, signal) })
  },
  result: geminiResult,
  chunks: geminiChunks,
  async healthCheck(client, { timeoutMs, signal }) {
    const httpOptions = { ...(timeoutMs !== undefined && { timeout: timeoutMs }), retryOptions: { attempts: 1 } }
    const pager = await client.models.list({ config: { pageSize: 1, httpOptions, ...(signal && { abortSignal: signal }) } })
    return { models: typeof pager?.pageLength === 'number' ? pager.pageLength : undefined }
  },
}

const ADAPTERS = Object.freeze({ openai, anthropic, gemini })

module.exports = { ADAPTERS }
