// Request translation between the providers: round trips through the neutral form, and what each
// real SDK puts on the wire when a request fails over (system prompt, roles, content parts,
// max_tokens, temperature and stop sequences).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import translate from '../lib/providers/translate.js'
import { openaiError, anthropicError, geminiError } from './providers/fakes.mjs'
import { setup } from './providers/setup.mjs'

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

/** A neutral request with every translated field. */
const NEUTRAL = {
  system: 'You are terse.',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is in this picture?' },
        { type: 'image', mediaType: 'image/png', data: PNG },
      ],
    },
    { role: 'assistant', content: [{ type: 'text', text: 'A pixel.' }] },
    { role: 'user', content: [{ type: 'text', text: 'And its colour?' }] },
  ],
  maxTokens: 256,
  temperature: 0.7,
  topP: 0.9,
  stop: ['END', '###'],
}

for (const provider of ['openai', 'anthropic', 'gemini']) {
  test(`round trip: neutral -> ${provider} -> neutral keeps every field`, () => {
    const wire = translate.TO[provider](NEUTRAL, 'some-model')
    assert.deepEqual(translate.FROM[provider](wire), NEUTRAL)
  })
}

test('round trip: an OpenAI request through Anthropic and Gemini comes back as it was', () => {
  const openai = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Describe' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
        ],
      },
      { role: 'assistant', content: 'A dot.' },
      { role: 'user', content: 'More?' },
    ],
    max_completion_tokens: 100,
    temperature: 0.5,
    top_p: 1,
    stop: ['\n\n'],
  }
  const viaAnthropic = translate.toOpenAI(
    translate.fromAnthropic(translate.toAnthropic(translate.fromOpenAI(openai), 'claude')),
    'gpt-4o-mini',
  )
  const viaGemini = translate.toOpenAI(translate.fromGemini(translate.toGemini(translate.fromOpenAI(openai), 'gemini')), 'gpt-4o-mini')
  assert.deepEqual(viaAnthropic, openai)
  assert.deepEqual(viaGemini, openai)
})

test('round trip: image URLs (not inline data) survive every format', () => {
  const n = {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', url: 'https://example.invalid/cat.png' },
          { type: 'text', text: 'cat?' },
        ],
      },
    ],
  }
  assert.deepEqual(translate.fromOpenAI(translate.toOpenAI(n, 'm')), n)
  assert.deepEqual(translate.fromAnthropic(translate.toAnthropic(n, 'm')), { ...n, maxTokens: translate.DEFAULT_ANTHROPIC_MAX_TOKENS })
  const g = { messages: [{ role: 'user', content: [{ type: 'image', url: 'gs://bucket/cat.png', mediaType: 'image/png' }] }] }
  assert.deepEqual(translate.fromGemini(translate.toGemini(g, 'm')), g)
})

test('translation details: system and developer messages join, Anthropic needs max_tokens and a temperature of at most 1', () => {
  const n = translate.fromOpenAI({
    model: 'x',
    messages: [
      { role: 'system', content: 'A.' },
      { role: 'developer', content: [{ type: 'text', text: 'B.' }] },
      { role: 'user', content: 'hi' },
      { role: 'user', content: 'there' },
    ],
    temperature: 1.6,
    max_tokens: 50,
    stop: 'STOP',
  })
  assert.deepEqual(n, {
    system: 'A.\n\nB.',
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'user', content: [{ type: 'text', text: 'there' }] },
    ],
    maxTokens: 50,
    temperature: 1.6,
    stop: ['STOP'],
  })
  const a = translate.toAnthropic(n, 'claude-haiku-4-5')
  assert.equal(a.temperature, 1)
  assert.deepEqual(
    a.messages,
    [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hi' },
          { type: 'text', text: 'there' },
        ],
      },
    ],
    'consecutive turns of one role merge',
  )
  assert.equal(translate.toAnthropic({ messages: [] }, 'c').max_tokens, translate.DEFAULT_ANTHROPIC_MAX_TOKENS)
  assert.equal(translate.toGemini(n, 'g').config.temperature, 1.6)
})

test('translation details: Gemini contents in every shape @google/genai accepts', () => {
  const text = (t) => [{ role: 'user', content: [{ type: 'text', text: t }] }]
  assert.deepEqual(translate.fromGemini({ model: 'g', contents: 'hi' }).messages, text('hi'))
  assert.deepEqual(translate.fromGemini({ model: 'g', contents: ['hi'] }).messages, text('hi'))
  assert.deepEqual(translate.fromGemini({ model: 'g', contents: { text: 'hi' } }).messages, text('hi'))
  assert.deepEqual(translate.fromGemini({ model: 'g', contents: { role: 'user', parts: [{ text: 'hi' }] } }).messages, text('hi'))
  assert.deepEqual(
    translate.fromGemini({ model: 'g', contents: 'x', config: { systemInstruction: { parts: [{ text: 'S' }] } } }).system,
    'S',
  )
  assert.deepEqual(translate.fromGemini({ model: 'g', contents: 'x', config: { systemInstruction: 'S' } }).system, 'S')
})

test('untranslatable requests: tools, tool turns, audio, documents', () => {
  const { UntranslatableError } = translate
  assert.throws(() => translate.fromOpenAI({ messages: [{ role: 'tool', content: 'x' }] }), UntranslatableError)
  assert.throws(() => translate.fromOpenAI({ messages: [{ role: 'user', content: 'x' }], tools: [] }), UntranslatableError)
  assert.throws(
    () => translate.fromOpenAI({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }),
    UntranslatableError,
  )
  assert.throws(
    () => translate.fromAnthropic({ messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }),
    UntranslatableError,
  )
  assert.throws(
    () => translate.fromAnthropic({ messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'x', name: 'f', input: {} }] }] }),
    UntranslatableError,
  )
  assert.throws(
    () => translate.fromGemini({ contents: [{ role: 'model', parts: [{ functionCall: { name: 'f' } }] }] }),
    UntranslatableError,
  )
})

// ---- on the wire: what the real SDKs send to the fallback ----

const OPENAI_FULL = {
  model: 'gpt-4o',
  messages: [
    { role: 'system', content: 'You are terse.' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
      ],
    },
    { role: 'assistant', content: 'A pixel.' },
    { role: 'user', content: 'Colour?' },
  ],
  max_tokens: 200,
  temperature: 0.3,
  stop: ['END'],
}

test('on the wire: an OpenAI request failed over to Anthropic', async (t) => {
  const { ai, fakes } = await setup(t)
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  await ai.chatCompletion(OPENAI_FULL)
  assert.deepEqual(fakes.anthropic.completions[0].body, {
    model: 'claude-sonnet-4-5',
    max_tokens: 200,
    system: 'You are terse.',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        ],
      },
      { role: 'assistant', content: 'A pixel.' },
      { role: 'user', content: 'Colour?' },
    ],
    temperature: 0.3,
    stop_sequences: ['END'],
    stream: false,
  })
  assert.equal(fakes.anthropic.completions[0].headers['x-stainless-retry-count'], '0')
})

test('on the wire: an OpenAI request failed over to Gemini', async (t) => {
  const { ai, fakes } = await setup(t)
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'down') })
  fakes.anthropic.reply({ status: 529, body: anthropicError('overloaded_error', 'Overloaded') })
  const r = await ai.chatCompletion(OPENAI_FULL)
  assert.equal(r.provider, 'gemini')
  const req = fakes.gemini.completions[0]
  assert.match(req.path, /\/models\/gemini-2\.5-pro:generateContent$/)
  assert.deepEqual(req.body.contents, [
    { role: 'user', parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: PNG } }] },
    { role: 'model', parts: [{ text: 'A pixel.' }] },
    { role: 'user', parts: [{ text: 'Colour?' }] },
  ])
  assert.deepEqual(req.body.systemInstruction.parts, [{ text: 'You are terse.' }])
  assert.deepEqual(req.body.generationConfig, { maxOutputTokens: 200, temperature: 0.3, stopSequences: ['END'] })
})

test('on the wire: an Anthropic request failed over to OpenAI and to Gemini', async (t) => {
  const { ai, fakes } = await setup(t, { primary: 'anthropic' })
  const request = {
    model: 'claude-sonnet-4-5-20250929',
    max_tokens: 300,
    system: [
      { type: 'text', text: 'Part one.' },
      { type: 'text', text: 'Part two.' },
    ],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look' },
          { type: 'image', source: { type: 'url', url: 'https://example.invalid/a.png' } },
        ],
      },
    ],
    temperature: 0.1,
    stop_sequences: ['</answer>'],
  }
  fakes.anthropic.reply({ status: 500, body: anthropicError('api_error', 'Internal server error') })
  await ai.createMessage(request)
  assert.deepEqual(fakes.openai.completions[0].body, {
    model: 'gpt-4.1',
    messages: [
      { role: 'system', content: 'Part one.\n\nPart two.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look' },
          { type: 'image_url', image_url: { url: 'https://example.invalid/a.png' } },
        ],
      },
    ],
    max_completion_tokens: 300,
    temperature: 0.1,
    stop: ['</answer>'],
    stream: false,
  })
  fakes.anthropic.reply({ status: 500, body: anthropicError('api_error', 'x') })
  fakes.openai.reply({ status: 500, body: openaiError('server_error', 'x') })
  await ai.createMessage(request)
  const g = fakes.gemini.completions[0]
  assert.match(g.path, /gemini-2\.5-pro:generateContent$/)
  assert.deepEqual(g.body.generationConfig, { maxOutputTokens: 300, temperature: 0.1, stopSequences: ['</answer>'] })
  assert.deepEqual(g.body.contents[0].parts, [{ text: 'Look' }, { fileData: { fileUri: 'https://example.invalid/a.png' } }])
})

test('on the wire: a Gemini request failed over to OpenAI and Anthropic', async (t) => {
  const { ai, fakes } = await setup(t, { primary: 'gemini' })
  const request = {
    model: 'gemini-2.5-flash',
    contents: [
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ text: 'Hello!' }] },
      { role: 'user', parts: [{ text: 'Bye' }] },
    ],
    config: { systemInstruction: 'Be kind.', maxOutputTokens: 40, temperature: 1.5, stopSequences: ['x'] },
  }
  fakes.gemini.reply({ status: 503, body: geminiError(503, 'UNAVAILABLE', 'The model is overloaded.') })
  fakes.openai.reply({ status: 503, body: openaiError('server_error', 'x') })
  const r = await ai.generateContent(request)
  assert.equal(r.provider, 'anthropic')
  assert.deepEqual(fakes.openai.completions[0].body, {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ],
    max_completion_tokens: 40,
    temperature: 1.5,
    stop: ['x'],
    stream: false,
  })
  assert.deepEqual(fakes.anthropic.completions[0].body, {
    model: 'claude-haiku-4-5',
    max_tokens: 40,
    system: 'Be kind.',
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ],
    temperature: 1,
    stop_sequences: ['x'],
    stream: false,
  })
  // The caller's own request reaches Gemini as given (plus no-retry options that stay client-side).
  assert.deepEqual(fakes.gemini.completions[0].body.generationConfig, { maxOutputTokens: 40, temperature: 1.5, stopSequences: ['x'] })
})
