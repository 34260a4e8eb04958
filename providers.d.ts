// Public types of `breakwater/providers`. The SDK clients are typed by the few methods used, so
// these types compile whether or not `openai`, `@anthropic-ai/sdk` or `@google/genai` is installed.
import { EventEmitter } from 'node:events'
import type {
  BreakwaterError,
  CircuitBreaker,
  CircuitBreakerOptions,
  CircuitBreakerRegistry,
  RedisQueueOptions,
  RequestQueue,
} from './index.js'

export type ProviderName = 'openai' | 'anthropic' | 'gemini'

/** An OpenAI client (`new OpenAI()` from `openai`). */
export interface OpenAIClientLike {
  chat: { completions: { create(body: any, options?: any): PromiseLike<any> } }
  models: { list(options?: any): PromiseLike<any> }
}
/** An Anthropic client (`new Anthropic()` from `@anthropic-ai/sdk`). */
export interface AnthropicClientLike {
  messages: { create(body: any, options?: any): PromiseLike<any> }
  models: { list(params?: any, options?: any): PromiseLike<any> }
}
/** A Google GenAI client (`new GoogleGenAI()` from `@google/genai`). */
export interface GeminiClientLike {
  models: {
    generateContent(params: any): Promise<any>
    generateContentStream(params: any): Promise<AsyncIterable<any>>
    list(params?: any): Promise<any>
  }
}

/**
 * The model a failover target gets for the model asked for. Keys are model names or prefixes
 * (the longest matching key wins); `default` serves every other model; `null` means "never fail
 * over to that provider from this model". Merged over `DEFAULT_MODEL_MAP`.
 */
export type ModelMap = Record<string, Partial<Record<ProviderName, string | null>>>

export interface ProviderBreakerOptions {
  openaiClient?: OpenAIClientLike
  /** Alias of `anthropicClient`. */
  claudeClient?: AnthropicClientLike
  anthropicClient?: AnthropicClientLike
  geminiClient?: GeminiClientLike
  modelMap?: ModelMap
  /** Options of the breakers this creates (`openai_api`, `anthropic_api`, `gemini_api`); `clock` also dates `retryAfterMs`. */
  breakerOptions?: Omit<CircuitBreakerOptions, 'registry' | 'fallback'>
  /** Where the provider breakers live. Default `globalRegistry`; `null` for unregistered breakers. */
  registry?: CircuitBreakerRegistry | null
}

export interface CallOptions {
  /** Aborts the call; an abort neither counts as a failure nor fails over. */
  signal?: AbortSignal
}

/** OpenAI's finish reasons, for every provider: Anthropic's `end_turn` is `stop`, Gemini's `MAX_TOKENS` is `length`... */
export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | (string & {})

export interface Usage {
  inputTokens: number
  outputTokens: number
}

export interface CompletionResult {
  /** The answer's text. */
  content: string
  /** The model that answered, as the provider reports it. */
  model: string
  provider: ProviderName
  usage: Usage
  finishReason: FinishReason | null
  /** Set when a fallback provider answered. */
  _fallback?: ProviderName
  /** The provider's own response. */
  raw: any
}

export interface CompletionChunk {
  /** This chunk's text (may be empty on the last chunks). */
  content: string
  model: string
  provider: ProviderName
  finishReason: FinishReason | null
  /** On the last chunk(s), when the provider reports it. */
  usage?: Usage
  _fallback?: ProviderName
  raw: any
}

export interface OpenAIChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | (string & {})
  content:
    string | null | Array<{ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } } | Record<string, unknown>>
  [field: string]: unknown
}

/** OpenAI's chat completion request. Fields other than these reach OpenAI only, never a fallback. */
export interface ChatCompletionRequest {
  model: string
  messages: OpenAIChatMessage[]
  temperature?: number
  max_tokens?: number
  max_completion_tokens?: number
  top_p?: number
  stop?: string | string[]
  [field: string]: unknown
}

export interface AnthropicMessage {
  role: 'user' | 'assistant'
  content: string | Array<Record<string, unknown>>
}

/** Anthropic's messages request. Fields other than these reach Anthropic only, never a fallback. */
export interface CreateMessageRequest {
  model: string
  messages: AnthropicMessage[]
  max_tokens: number
  system?: string | Array<{ type: 'text'; text: string }>
  temperature?: number
  top_p?: number
  stop_sequences?: string[]
  [field: string]: unknown
}

/** @google/genai's `models.generateContent` parameters. */
export interface GenerateContentRequest {
  model: string
  contents: unknown
  config?: {
    systemInstruction?: unknown
    maxOutputTokens?: number
    temperature?: number
    topP?: number
    stopSequences?: string[]
    [field: string]: unknown
  }
}

export interface FailoverEvent {
  from: ProviderName
  to: ProviderName
  /** A taxonomy kind (`server_error`, `rate_limited`...) or `circuit_open`. */
  reason: string
  error: unknown
}

export interface AuthErrorEvent {
  provider: ProviderName
  breaker: string
  status: number | undefined
  message: string
}

export interface ProviderBreakerEvents {
  failover: [FailoverEvent]
  authError: [AuthErrorEvent]
}

/** What the three LLM breakers share. */
export interface ProviderCircuitBreaker extends EventEmitter<ProviderBreakerEvents> {
  /** The breaker of each configured provider. */
  readonly breakers: Partial<Record<ProviderName, CircuitBreaker<any>>>
}

/** OpenAI chat completions, failing over to Anthropic, then Gemini. */
export declare class OpenAICircuitBreaker extends EventEmitter<ProviderBreakerEvents> implements ProviderCircuitBreaker {
  readonly breakers: Partial<Record<ProviderName, CircuitBreaker<any>>>
  constructor(options: ProviderBreakerOptions & { openaiClient: OpenAIClientLike })
  chatCompletion(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionResult>
  chatCompletionStream(request: ChatCompletionRequest, options?: CallOptions): AsyncIterable<CompletionChunk>
}

/** Anthropic messages, failing over to OpenAI, then Gemini. */
export declare class AnthropicCircuitBreaker extends EventEmitter<ProviderBreakerEvents> implements ProviderCircuitBreaker {
  readonly breakers: Partial<Record<ProviderName, CircuitBreaker<any>>>
  constructor(options: ProviderBreakerOptions & ({ anthropicClient: AnthropicClientLike } | { claudeClient: AnthropicClientLike }))
  createMessage(request: CreateMessageRequest, options?: CallOptions): Promise<CompletionResult>
  createMessageStream(request: CreateMessageRequest, options?: CallOptions): AsyncIterable<CompletionChunk>
}

/** Gemini generateContent, failing over to OpenAI, then Anthropic. */
export declare class GeminiCircuitBreaker extends EventEmitter<ProviderBreakerEvents> implements ProviderCircuitBreaker {
  readonly breakers: Partial<Record<ProviderName, CircuitBreaker<any>>>
  constructor(options: ProviderBreakerOptions & { geminiClient: GeminiClientLike })
  generateContent(request: GenerateContentRequest, options?: CallOptions): Promise<CompletionResult>
  generateContentStream(request: GenerateContentRequest, options?: CallOptions): AsyncIterable<CompletionChunk>
}

/** breakwater's HealthMonitor, or anything with its `registerService`. */
export interface HealthMonitorLike {
  registerService(
    name: string,
    check: (context: { signal: AbortSignal }) => Promise<{ ok: boolean; details?: Record<string, unknown> }>,
    options?: object,
  ): unknown
}

export interface HealthCheckOptions {
  /** The monitor's `checkIntervalMs`. */
  intervalMs?: number
  /** Also the SDK request's timeout. */
  checkTimeoutMs?: number
  /** Any other HealthMonitor service option. */
  [option: string]: unknown
}

export interface RegisteredHealthCheck {
  /** The service name: the provider's breaker name. */
  service: 'openai_api' | 'anthropic_api' | 'gemini_api'
  check: (context?: { signal?: AbortSignal }) => Promise<{ ok: true; details: { models?: number } }>
}

/** Registers `openai_api` with the monitor: a models-list request, linked to the `openai_api` breaker. */
export declare function setupOpenAIHealthCheck(
  breaker: ProviderCircuitBreaker,
  monitor: HealthMonitorLike,
  options?: HealthCheckOptions,
): RegisteredHealthCheck
/** Registers `anthropic_api`: one page of the models list. */
export declare function setupAnthropicHealthCheck(
  breaker: ProviderCircuitBreaker,
  monitor: HealthMonitorLike,
  options?: HealthCheckOptions,
): RegisteredHealthCheck
/** Registers `gemini_api`: one page of the models list. */
export declare function setupGeminiHealthCheck(
  breaker: ProviderCircuitBreaker,
  monitor: HealthMonitorLike,
  options?: HealthCheckOptions,
): RegisteredHealthCheck

export declare const DEFAULT_MODEL_MAP: Readonly<ModelMap>

export type ErrorKind =
  | 'connection'
  | 'timeout'
  | 'server_error'
  | 'overloaded'
  | 'rate_limited'
  | 'quota_exhausted'
  | 'auth'
  | 'invalid_request'
  | 'aborted'
  | 'unavailable'
  | 'unknown'

export interface ErrorKindRow {
  countsAsFailure: boolean
  failover: boolean
  /** `hint`: the provider's retry hint (else `resetTimeoutMs`); `max`: `maxResetTimeoutMs`. */
  open: null | 'hint' | 'max'
}

/** The taxonomy's rows. */
export declare const ERROR_KINDS: Readonly<Record<ErrorKind, ErrorKindRow>>

export interface ErrorClassification extends ErrorKindRow {
  kind: ErrorKind
  status: number | undefined
  /** For `rate_limited`: the provider's hint, in ms, if it gave one. */
  retryAfterMs: number | undefined
  authError: boolean
}

/** How the taxonomy classifies an error of a provider's SDK. */
export declare function classifyProviderError(
  provider: ProviderName,
  error: unknown,
  options?: { nowWallMs?: number; callerAborted?: boolean },
): ErrorClassification

export interface ProviderAttempt {
  provider: ProviderName
  breaker: string
  outcome: 'failed' | 'rejected' | 'skipped'
  /** A taxonomy kind, `circuit_open`, or for a skip `no_model` / `untranslatable`. */
  reason: string
  status?: number
  retryAfterMs?: number | null
  error?: unknown
}

export interface AllProvidersUnavailableError extends BreakwaterError {
  code: 'ERR_ALL_PROVIDERS_UNAVAILABLE'
  /** When the soonest provider might be back, in ms (0: now); null when only an operator can say. */
  retryAfterMs: number | null
  attempts: ProviderAttempt[]
}

export declare function isAllProvidersUnavailableError(error: unknown): error is AllProvidersUnavailableError

// ---- Meta ad publishing ----

export interface MetaCircuitBreakerOptions {
  /** Default `META_ACCESS_TOKEN`. Sent in an `Authorization` header; never in errors, logs, events or metrics. */
  accessToken?: string
  /** Default `v21.0`. */
  apiVersion?: string
  /** Default `https://graph.facebook.com`. */
  baseUrl?: string
  /** The retry queue's journal (and, beside it, `<persistPath>.meta-steps` with the checkpoints). */
  persistPath?: string
  /** Options of the `meta_api` breaker; `clock` also times requests. */
  breakerOptions?: Omit<CircuitBreakerOptions, 'registry' | 'fallback'>
  /** A RequestQueue to use instead of one created here (give it the same registry; a persistent one keeps its checkpoints beside its journal), or the options of a Redis queue to create (`{ redisUrl, ... }`: publishes queued by any instance, drained by all). */
  queue?: RequestQueue | RedisQueueOptions
  /** Where `meta_api` lives, and where a queue created here finds it. Default `globalRegistry`. */
  registry?: CircuitBreakerRegistry | null
  /** Each Graph API request's timeout. Default 30 000. */
  requestTimeoutMs?: number
}

export interface PublishAdRequest {
  /** `act_<digits>` */
  adAccountId: string
  campaignId: string
  /** The ad creative's fields (`object_story_spec`...); its `name` gets the tag. */
  adCreative: Record<string, unknown>
  targeting: Record<string, unknown>
  /** The ad set's budget and bidding fields: `daily_budget` or `lifetime_budget`, `billing_event`, `optimization_goal`, `bid_amount`... */
  budget: Record<string, unknown>
  /** The same key is the same ad, published once. Default: a hash of the request. */
  idempotencyKey?: string
  /** The ad's name (and the ad set's, unless `adSetName`). */
  name?: string
  adSetName?: string
  /** The ad set's and the ad's status. Default `PAUSED`. */
  status?: string
}

export type PublishAdResult = { queued: false; adId: string; adSetId: string; creativeId: string } | { queued: true; requestId: string }

/** What a publish has created so far. */
export interface CreatedIds {
  creativeId?: string
  adSetId?: string
  adId?: string
}

export interface QueuedAd {
  requestId: string
  idempotencyKey?: string
  adAccountId?: string
  campaignId?: string
  state: 'queued' | 'running' | 'dead'
  attempts: number
  nextAttemptAt: number
  lastError: string | null
  created: CreatedIds
}

export interface MetaPublisherEvents {
  published: [CreatedIds & { idempotencyKey: string; queued: boolean; requestId?: string }]
  /** `reason`: a Meta error kind (`throttled`, `transient`, `timeout`...), `circuit_open`, or `recovered` (resumed after a restart). */
  queued: [{ requestId: string; idempotencyKey: string; reason: string; created: CreatedIds }]
  deadLetter: [
    { requestId: string; idempotencyKey?: string; reason?: 'max_attempts' | 'expired'; lastError: string | null; created: CreatedIds },
  ]
  authError: [{ provider: 'meta'; breaker: 'meta_api'; code?: number; subcode?: number; message: string }]
}

/** An error answer of the Graph API. */
export declare class MetaGraphError extends Error {
  readonly status: number
  readonly graph: { code?: number; subcode?: number; type?: string; isTransient: boolean; fbtraceId?: string; message: string }
  /** The usage headers of the answer. */
  readonly headers: Record<string, string>
}

/** Publishes ads (creative, ad set, ad) so that none is lost or published twice. */
export declare class MetaCircuitBreaker extends EventEmitter<MetaPublisherEvents> {
  constructor(options?: MetaCircuitBreakerOptions)
  readonly apiVersion: string
  readonly baseUrl: string
  /** The `meta_api` breaker. */
  readonly breaker: CircuitBreaker<any>
  readonly queue: RequestQueue
  /** Resolves once the publishes a crash interrupted are back in the queue. */
  readonly ready: Promise<void>
  publishAd(request: PublishAdRequest): Promise<PublishAdResult>
  getQueuedAds(): QueuedAd[]
  /** Closes the queue if this publisher created it, and the checkpoint file. */
  close(): Promise<void>
}

/** Registers `meta_api` with the monitor: an authenticated `GET /me`, linked to the `meta_api` breaker. */
export declare function setupMetaHealthCheck(
  breaker: MetaCircuitBreaker,
  monitor: HealthMonitorLike,
  options?: HealthCheckOptions,
): { service: 'meta_api'; check: (context?: { signal?: AbortSignal }) => Promise<{ ok: true; details: { id?: string } }> }
