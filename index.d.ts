// Public types of `breakwater`. Hand-written over the generated `binding.d.ts` (which types
// the native layer only); `__test__/types` compiles the README's examples against this file.
import { EventEmitter } from 'node:events'

/** The states a breaker reports. `forced_open` and `disabled` are set only by an operator. */
export type CircuitState = 'closed' | 'open' | 'half_open' | 'forced_open' | 'disabled'

/** A clock: breakers read time and schedule call timeouts through it. */
export interface Clock {
  now(): number
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
}

/** A clock that moves only when told to; `advance` fires the timers that fall due. */
export declare class ManualClock implements Clock {
  /** @param startMs the initial time, default 0 */
  constructor(startMs?: number)
  now(): number
  /** Moves time forward by `ms` (>= 0), firing due timers in order; returns the new time. */
  advance(ms: number): number
  /** Sets the time; moving forward fires due timers. */
  set(ms: number): number
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
  /** Timers not yet fired. */
  readonly pendingTimers: number
}

/** The real clock: `performance.timeOrigin + performance.now()`, and `setTimeout`. */
export declare const systemClock: Clock

export interface CircuitBreakerOptions<TArgs extends unknown[] = any[], TFallback = any> {
  /** Rule A: consecutive failures that open the circuit. Default 5. Env: `CB_FAILURE_THRESHOLD`. */
  failureThreshold?: number
  /** Trial successes in half-open that close the circuit. Default 2. */
  successThreshold?: number
  /** How long the circuit stays open before a trial, in ms. Default 60 000. Env: `CB_TIMEOUT_SECONDS` (seconds). */
  resetTimeoutMs?: number
  /** Trial calls admitted at once in half-open. Default 3. */
  halfOpenMaxCalls?: number
  /** Multiply the open time on each re-open in a row. Default true. Env: `CB_EXPONENTIAL_BACKOFF`. */
  exponentialBackoff?: boolean
  /** The cap of the backed-off open time, in ms. Default 300 000 (or `resetTimeoutMs` if larger and this is not set). */
  maxResetTimeoutMs?: number
  /** The backoff factor, 1 to 100. Default 2. */
  backoffMultiplier?: number
  /** Shortens each open time by a random share up to this ratio (0 to 1). Default 0. */
  jitterRatio?: number
  /** The rolling window of rules B and C and of the window metrics, in ms (10 buckets). Default 60 000. */
  rollingWindowMs?: number
  /** Calls the window must hold before rules B and C apply. Default 10. */
  minThroughput?: number
  /** Rule B: the failure rate (0 to 1] over the window that opens the circuit. Default 0.5. */
  failureRateThreshold?: number
  /** Rule C: a call at least this slow (ms) is slow. Set with `slowCallRateThreshold`. Default off. */
  slowCallDurationMs?: number | null
  /** Rule C: the slow-call rate (0 to 1] over the window that opens the circuit. Default off. */
  slowCallRateThreshold?: number | null
  /** Rejects a call not settled within this many ms with `ERR_CALL_TIMEOUT` (a failure). Default none. */
  callTimeoutMs?: number | null
  /** `false` starts the breaker `disabled` (pass-through, still measured). Default true. Env: `CIRCUIT_BREAKER_ENABLED`. */
  enabled?: boolean
  /** Answers instead of throwing, on a rejection, a failure or a timeout. */
  fallback?: (error: Error, ...args: TArgs) => TFallback | Promise<TFallback>
  /** Whether an error counts as a failure. Default: every error counts. */
  isFailure?: (error: unknown) => boolean
  /** The clock. Default `systemClock`; tests pass a `ManualClock`. */
  clock?: Clock
  /** Where the breaker registers: default `globalRegistry`; `null` for none. */
  registry?: CircuitBreakerRegistry | null
}

/** Latency and counts over one period. Latencies are in ms from an HDR histogram (±1 %). */
export interface PeriodMetrics {
  /** successful + failed + rejected */
  totalRequests: number
  successfulRequests: number
  /** Includes timed-out calls. */
  failedRequests: number
  rejectedRequests: number
  timedOutRequests: number
  slowRequests: number
  /** successful / (successful + failed) × 100; 100 with no calls. */
  successRate: number
  /** failed / (successful + failed), 0 to 1; 0 with no calls. */
  failureRate: number
  latencyP50Ms: number
  latencyP95Ms: number
  latencyP99Ms: number
  latencyMeanMs: number
  latencyMaxMs: number
}

/** `getMetrics()`: the top level covers the time since creation or the last reset. */
export interface CircuitBreakerMetrics extends PeriodMetrics {
  name: string
  state: CircuitState
  /** The same figures over the rolling window. */
  window: PeriodMetrics & { windowMs: number }
  consecutiveFailures: number
  /** Times the circuit opened since creation or reset. */
  openCount: number
  /** When the circuit last opened (clock ms), or null. */
  openedAt: number | null
  /** When an open circuit admits its next trial (clock ms), or null unless open. */
  nextAttemptAt: number | null
  /** The open time of the current or last open, in ms (after backoff and jitter). */
  currentResetTimeoutMs: number
  /** Trial permits in flight (half-open). */
  halfOpenInFlight: number
}

export interface StateChangeEvent {
  name: string
  from: CircuitState
  to: CircuitState
  /** `consecutive_failures`, `failure_rate`, `slow_call_rate`, `trial_failed`, `reset_timeout_elapsed`, `trials_succeeded`, `open_for`, `force_open`, `disable`, `reset`, `health_check_passed`, `shared_state` (adopted from the fleet) */
  cause: string
  /** Clock time of the change. */
  at: number
  /** When opening: when the next trial is admitted. */
  nextAttemptAt?: number
  /** For `openFor(ms, reason)`: the reason. */
  reason?: string
}

export interface CircuitBreakerEvents {
  stateChange: [StateChangeEvent]
  open: [StateChangeEvent]
  halfOpen: [StateChangeEvent]
  close: [StateChangeEvent]
  forcedOpen: [StateChangeEvent]
  disabled: [StateChangeEvent]
  reject: [{ name: string; state: CircuitState; retryAfterMs: number | null }]
  success: [{ name: string; latencyMs: number }]
  failure: [{ name: string; error: unknown; latencyMs: number }]
  timeout: [{ name: string; timeoutMs: number; error: CallTimeoutError }]
  fallback: [{ name: string; reason: 'rejected' | 'failure' | 'timeout'; error: unknown }]
}

/** A manual permit: settle it once with `success()`, `failure(err)` or `ignore()`. */
export declare class Permit {
  /** @returns false if the permit was already settled */
  success(): boolean
  /** @returns false if the permit was already settled */
  failure(error: unknown): boolean
  /** Settles without counting either way (the caller went away), freeing a half-open trial slot. @returns false if already settled */
  ignore(): boolean
}

export declare class CircuitBreaker<TFallback = never> extends EventEmitter<CircuitBreakerEvents> {
  constructor(name: string, options?: CircuitBreakerOptions<any[], TFallback>)
  readonly name: string
  readonly state: CircuitState
  registry: CircuitBreakerRegistry | null
  /** Runs `fn(...args)` through the breaker. */
  call<TArgs extends unknown[], T>(fn: (...args: TArgs) => T | PromiseLike<T>, ...args: TArgs): Promise<Awaited<T> | TFallback>
  /** Runs `fn` with an AbortSignal that is aborted when the call times out. */
  execute<T>(fn: (context: { signal: AbortSignal }) => T | PromiseLike<T>): Promise<Awaited<T> | TFallback>
  /** Wraps `fn`: each call of the result goes through the breaker. */
  protect<TArgs extends unknown[], T>(fn: (...args: TArgs) => T | PromiseLike<T>): (...args: TArgs) => Promise<Awaited<T> | TFallback>
  /** A permit for manual use, or null when the circuit refuses the call. */
  tryAcquire(): Permit | null
  getMetrics(): CircuitBreakerMetrics
  /** Opens for exactly `ms`. */
  openFor(ms: number, reason?: string): this
  forceOpen(): this
  disable(): this
  reset(): this
  /** Moves an open circuit to half-open now. */
  probeEarly(): this
}

/** A process-wide breaker was joined with options other than its first creator's (which win). */
export interface RegistryWarning {
  name: string
  message: string
  /** `field = kept (requested other)`, comma-separated */
  differences: string
}

export interface CircuitBreakerRegistryEvents {
  warning: [RegistryWarning]
}

/**
 * Breakers by name. Breakers of `globalRegistry` are process-wide: a breaker of a given name is
 * the same native breaker (state, window, metrics) in the main thread and in every worker thread.
 * Other registries hold breakers private to their thread.
 */
/** `globalRegistry.connectShared(options)`: sharing breakers across instances through Redis. */
export interface SharedStateOptions {
  /** `redis://[user:password@]host[:port][/db]` or `unix:///path/to/socket`. Required. */
  redisUrl: string
  /** Prefix of every key and of the channel (`{prefix}events`). Default `'breakwater:'`. */
  keyPrefix?: string
  /** This instance's name in the fleet. Default `<hostname>-<pid>-<random>`. */
  instanceId?: string
  /** Instances that must have seen failures within a breaker's `rollingWindowMs` before its open is shared. Default 1. */
  quorum?: number
  /** Timeout of each Redis command, in ms (connecting may take twice that, at least 1 s). Default 500. */
  commandTimeoutMs?: number
}

/** What `connectShared` resolves with. */
export interface SharedStateConnection {
  /** False when Redis was unreachable: the session keeps reconnecting in the background. */
  connected: boolean
  instanceId: string
}

/** A failure of the shared state (`sharedStateError`): Redis unreachable, slow, or a bad message. */
export interface SharedStateError extends BreakwaterError {
  code: 'ERR_SHARED_STATE'
  /** What failed: `connect`, `connection`, `vote`, `close`, `forced`, `reset`, `lease`, `release`, `resync`, `message`. */
  operation: string
}

export interface CircuitBreakerRegistryEvents {
  /** A process-wide breaker was joined with other options than its first creator's (which win). */
  warning: [{ name: string; message: string; differences: string }]
  /** The shared state failed; breakers go on locally and the session reconnects with backoff. */
  sharedStateError: [SharedStateError]
  /** A Redis session is up (again: `reconnect`), every shared breaker resynchronised. */
  sharedStateConnected: [{ instanceId: string; reconnect: boolean }]
}

export declare class CircuitBreakerRegistry extends EventEmitter<CircuitBreakerRegistryEvents> {
  constructor()
  get(name: string): CircuitBreaker<any> | undefined
  has(name: string): boolean
  getOrCreate<TFallback = never>(
    name: string,
    options?: Omit<CircuitBreakerOptions<any[], TFallback>, 'registry'>,
  ): CircuitBreaker<TFallback>
  delete(name: string): boolean
  list(): CircuitBreaker<any>[]
  readonly size: number
  resetAll(): void
  getAllMetrics(): CircuitBreakerMetrics[]
  /**
   * Shares this process's breakers (those of `globalRegistry` only) with the other instances
   * through Redis. Resolves after the first connection attempt, with every shared breaker
   * resynchronised when it worked. Rejects with `ERR_INVALID_CONFIG` for bad options and with
   * `ERR_SHARED_STATE` when this process is already connected; never for an unreachable Redis.
   */
  connectShared(options: SharedStateOptions): Promise<SharedStateConnection>
  /** Stops sharing; breakers keep their state and go on locally. */
  disconnectShared(): Promise<void>
}

export declare const globalRegistry: CircuitBreakerRegistry

/** The breaker options the environment sets. Throws `ERR_INVALID_CONFIG` naming a bad variable. */
export declare function configFromEnv(
  env?: Record<string, string | undefined>,
): Pick<CircuitBreakerOptions, 'failureThreshold' | 'resetTimeoutMs' | 'exponentialBackoff' | 'enabled'>

export type ErrorCode =
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_CALL_TIMEOUT'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_DUPLICATE_BREAKER'
  | 'ERR_UNKNOWN_BREAKER'
  | 'ERR_SHARED_STATE'
  | 'ERR_NATIVE_BINDING_MISSING'
  | 'ERR_INTERNAL'
  | FallbackErrorCode
  | 'ERR_ALL_PROVIDERS_UNAVAILABLE'

export declare const ErrorCodes: {
  readonly CIRCUIT_OPEN: 'ERR_CIRCUIT_OPEN'
  readonly CALL_TIMEOUT: 'ERR_CALL_TIMEOUT'
  readonly INVALID_CONFIG: 'ERR_INVALID_CONFIG'
  readonly INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT'
  readonly DUPLICATE_BREAKER: 'ERR_DUPLICATE_BREAKER'
  readonly UNKNOWN_BREAKER: 'ERR_UNKNOWN_BREAKER'
  readonly SHARED_STATE: 'ERR_SHARED_STATE'
  readonly NATIVE_BINDING_MISSING: 'ERR_NATIVE_BINDING_MISSING'
  readonly INTERNAL: 'ERR_INTERNAL'
  readonly QUEUE_FULL: 'ERR_QUEUE_FULL'
  readonly QUEUE_DISABLED: 'ERR_QUEUE_DISABLED'
  readonly QUEUE_CLOSED: 'ERR_QUEUE_CLOSED'
  readonly QUEUE_UNAVAILABLE: 'ERR_QUEUE_UNAVAILABLE'
  readonly NOT_SERIALIZABLE: 'ERR_NOT_SERIALIZABLE'
  readonly CORRUPT_JOURNAL: 'ERR_CORRUPT_JOURNAL'
  readonly JOURNAL_IO: 'ERR_JOURNAL_IO'
  readonly JOURNAL_LOCKED: 'ERR_JOURNAL_LOCKED'
  readonly NO_HANDLER: 'ERR_NO_HANDLER'
  readonly ALL_PROVIDERS_UNAVAILABLE: 'ERR_ALL_PROVIDERS_UNAVAILABLE'
}

export declare class BreakwaterError extends Error {
  code: ErrorCode
}

export interface CircuitOpenError extends BreakwaterError {
  code: 'ERR_CIRCUIT_OPEN'
  breaker: string
  state: CircuitState
  /** When a call may next be admitted, in ms; null when only an operator can say (forced open). */
  retryAfterMs: number | null
}
export declare const CircuitOpenError: new (...args: never[]) => CircuitOpenError

export interface CallTimeoutError extends BreakwaterError {
  code: 'ERR_CALL_TIMEOUT'
  breaker: string
  timeoutMs: number
}

export declare function isCircuitOpenError(error: unknown): error is CircuitOpenError
export declare function isCallTimeoutError(error: unknown): error is CallTimeoutError
export declare function isBreakwaterError(error: unknown): error is BreakwaterError

// ---- Health monitoring ----

/** A service's status over its last `historySize` checks. */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy' | 'unknown'

export type AlertType = 'status_change' | 'high_latency' | 'high_error_rate' | 'check_failed' | 'recovered'

/** What a check returns: a boolean, or `{ ok, details? }`. Anything else fails the check. */
export type HealthCheckResult = boolean | { ok: boolean; details?: Record<string, unknown> }

/**
 * A health check. A throw or rejection is a failed check. `signal` is aborted when the check
 * times out (pass it to `fetch`).
 */
export type HealthCheck = (context: { signal: AbortSignal }) => HealthCheckResult | PromiseLike<HealthCheckResult>

/** The seed's `HealthCheckConfig`, with durations in ms. */
export interface HealthCheckOptions {
  /** How often the service is checked, 100 ms or more. Default 30 000. Env: `HEALTH_CHECK_INTERVAL` (seconds). */
  checkIntervalMs?: number
  /** A check that has not settled within this time fails with a timeout error. Default 10 000. */
  checkTimeoutMs?: number
  /** `degraded` when the p95 latency reaches this. Default 1 000. */
  latencyWarningMs?: number
  /** `unhealthy` when the p95 latency reaches this. Default 3 000. */
  latencyCriticalMs?: number
  /** `degraded` when the error rate (0 to 1] reaches this. Default 0.05. */
  errorRateWarning?: number
  /** `unhealthy` when the error rate (0 to 1] reaches this. Default 0.20. */
  errorRateCritical?: number
  /** Checks kept for the rates and percentiles, 1 to 10 000. Default 100. */
  historySize?: number
  /** One alert type fires at most once per this time for one service (`recovered` always fires). Default 300 000; 0 for none. */
  alertCooldownMs?: number
  /** The name of a breaker in the monitor's registry: opened when the service turns unhealthy, probed early when a check passes while it is open. */
  breaker?: string
}

export interface ServiceHealth {
  name: string
  status: HealthStatus
  /** Failed checks over checks in the history, 0 to 1. */
  errorRate: number
  /** Percent of the time since registration that the service was not `unhealthy`. */
  uptime: number
  /** Check latencies over the history (failed and timed-out checks included), ±1 %. */
  latencyP50Ms: number
  latencyP95Ms: number
  latencyP99Ms: number
  /** Clock time of the last check, or null before the first. */
  lastCheck: number | null
  /** The message of the most recent failed check, or null if none has failed. */
  lastError: string | null
  consecutiveFailures: number
  /** Since registration. */
  totalChecks: number
  failedChecks: number
  /** Clock time at which the next scheduled check is due. */
  nextCheckAt: number
}

export interface HealthSummary {
  /** `unhealthy` if any service is, `degraded` if any is, otherwise `healthy`. */
  status: Exclude<HealthStatus, 'unknown'>
  totalServices: number
  healthyServices: number
  degradedServices: number
  unhealthyServices: number
  unknownServices: number
  services: Record<string, ServiceHealth>
}

/** The third argument of an alert handler. Which optional fields are set depends on the alert type. */
export interface AlertDetails {
  /** A one-line human-readable description, ready for Slack or a pager. */
  message: string
  status: HealthStatus
  previousStatus: HealthStatus
  /** Clock time of the check that raised the alert. */
  at: number
  health: ServiceHealth
  /** `high_latency`, `high_error_rate`: which threshold was reached, its value and the measured value. */
  level?: 'warning' | 'critical'
  threshold?: number
  value?: number
  /** `check_failed`: the error message, the check's `details`, and whether it timed out. */
  error?: string
  checkDetails?: unknown
  timedOut?: boolean
  consecutiveFailures?: number
  /** `recovered`: how long since the service became unhealthy. */
  downtimeMs?: number
}

export type AlertHandler = (service: string, alertType: AlertType, details: AlertDetails) => void | Promise<void>

export interface HealthCheckEvent {
  name: string
  ok: boolean
  latencyMs: number
  error: string | null
  details: unknown
  timedOut: boolean
  health: ServiceHealth
}

export interface HealthStatusChangeEvent {
  name: string
  from: HealthStatus
  to: HealthStatus
  at: number
  health: ServiceHealth
}

export interface HealthErrorContext {
  /** What failed: an alert handler, an event listener, or the link to a breaker. */
  source: 'alertHandler' | 'listener' | 'breaker'
  name?: string
  alertType?: AlertType
  event?: string
}

export interface HealthMonitorEvents {
  check: [HealthCheckEvent]
  statusChange: [HealthStatusChangeEvent]
  alert: [{ name: string; alertType: AlertType; details: AlertDetails }]
  error: [error: unknown, context: HealthErrorContext]
}

export interface HealthMonitorOptions {
  /** The clock. Default `systemClock`; tests pass a `ManualClock`. */
  clock?: Clock
  /** Where linked breakers are looked up by name: default `globalRegistry`. */
  registry?: CircuitBreakerRegistry | null
}

export declare class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  constructor(options?: HealthMonitorOptions)
  /** Whether `start()` is driving the schedule. */
  readonly running: boolean
  /** Adds a service. Throws `ERR_INVALID_CONFIG` for bad options, `ERR_INVALID_ARGUMENT` for a taken name. */
  registerService(name: string, check: HealthCheck, options?: HealthCheckOptions): this
  /** Removes a service; a check in flight is abandoned. */
  unregisterService(name: string): boolean
  getServiceNames(): string[]
  /** Runs one check now (or joins the one in flight) and resolves to the health after it. */
  checkServiceHealth(name: string): Promise<ServiceHealth>
  /** Runs the checks due now on the monitor's clock; resolves when they have finished. */
  runDueChecks(): Promise<ServiceHealth[]>
  getServiceHealth(name: string): ServiceHealth | undefined
  getHealthSummary(): HealthSummary
  /** @returns a function that removes the handler */
  registerAlertHandler(handler: AlertHandler): () => void
  /** Drives the schedule with one unref'd timer. A logged no-op when `HEALTH_CHECK_ENABLED=false`. */
  start(): Promise<void>
  /** Stops the schedule; resolves once the checks in flight have finished. */
  stop(): Promise<void>
}

/** The default monitor. */
export declare const globalMonitor: HealthMonitor
// ---- Fallback: the response cache and the retry queue ----

/** The error codes of the fallback cache and the retry queue. */
export type FallbackErrorCode =
  | 'ERR_QUEUE_FULL'
  | 'ERR_QUEUE_DISABLED'
  | 'ERR_QUEUE_CLOSED'
  | 'ERR_QUEUE_UNAVAILABLE'
  | 'ERR_NOT_SERIALIZABLE'
  | 'ERR_CORRUPT_JOURNAL'
  | 'ERR_JOURNAL_IO'
  | 'ERR_JOURNAL_LOCKED'
  | 'ERR_NO_HANDLER'

/**
 * The options of `FallbackHandler`, `FallbackCache` and `RequestQueue` (each accepts all of
 * them and uses its own): the seed's `FallbackConfig`, with durations in ms. Every option is
 * validated at construction; all problems come back in one `ERR_INVALID_CONFIG`.
 */
export interface FallbackOptions {
  /** Cache live answers, to serve them when a later call fails. Default true. Env: `FALLBACK_CACHE_ENABLED`. */
  cacheEnabled?: boolean
  /** How long a cached answer is fresh, in ms. Default 3 600 000 (1 h). */
  cacheTtlMs?: number
  /** Cached entries at most; the least recently used goes first. Default 10 000. */
  cacheMaxEntries?: number
  /** Bytes of cached keys and values at most (JSON text plus 96 bytes an entry), 1 024 to 2^32 - 1. Default 64 MiB. */
  cacheMaxBytes?: number
  /** How long past its TTL a cached answer may still answer for a failed call (`source: 'stale'`), in ms. Default 0. */
  staleIfErrorMs?: number
  /** Accept work for retry. Default true. Env: `FALLBACK_QUEUE_ENABLED`. */
  queueEnabled?: boolean
  /** Queued and running items at most; beyond it `ERR_QUEUE_FULL`, and nothing queued is dropped. Default 1 000. */
  maxQueueSize?: number
  /** An item not done this long after it was queued is dead-lettered (`reason: 'expired'`), in ms. Default 300 000. */
  queueTtlMs?: number
  /** Retry on a timer of the clock. With false, only `queue.runDue()` runs items. Default true. */
  autoRetryEnabled?: boolean
  /** Attempts before an item is dead-lettered (`reason: 'max_attempts'`). Default 3. */
  maxRetryAttempts?: number
  /** The wait before attempt n+1 is `retryDelayMs × retryBackoffMultiplier^n` (n attempts made; the first waits retryDelayMs). Default 60 000. */
  retryDelayMs?: number
  /** 1 to 100. Default 2. */
  retryBackoffMultiplier?: number
  /** Each wait is shortened by a random share up to this ratio (0 to 1). Default 0.1. */
  retryJitterRatio?: number
  /** Attempts of one service's items that run at once. Default 1. */
  concurrency?: number
  /** How long a completed item's idempotency key is remembered (at most 100 000 keys), in ms. Default 86 400 000 (24 h). */
  idempotencyRetentionMs?: number
  /** Log each answer from cache, stale cache or fallback, each unanswered failure and each dead letter (`logger.warn`). Default true. */
  logFallbacks?: boolean
  /** A journal file: the queue then survives restarts and crashes (at-least-once delivery). Default none (in memory). */
  persistPath?: string | null
  /**
   * The Redis backend: the items live in Redis, shared by every instance on the same Redis and
   * `keyPrefix` (at-least-once delivery, dedup by idempotency key fleet-wide, reclaim after
   * `visibilityTimeoutMs`). `new RequestQueue({ queue })` then returns a `RedisRequestQueue`.
   * Not with `persistPath`.
   */
  queue?: RedisQueueOptions
  /** The clock. Default `systemClock`; tests pass a `ManualClock` (and give breakers the same one). */
  clock?: Clock
  /** Where logs go. Default `console`. */
  logger?: { warn(message: string): void; error(message: string): void }
  /** Where the queue finds each service's breaker (by service name). Default `globalRegistry`; `null` for none. */
  registry?: CircuitBreakerRegistry | null
}

/** Where an answer of `executeWithFallback` came from. */
export type FallbackSource = 'live' | 'cache' | 'stale' | 'fallback'

export interface FallbackResult<T> {
  value: T
  source: FallbackSource
  /** The failure that was answered (absent for `live`). */
  error?: unknown
  /** For `cache` and `stale`: how old the cached answer is, in ms. */
  ageMs?: number
}

export interface ExecuteWithFallbackOptions<TArgs extends unknown[]> {
  /** Cache the live answer under this key, and look here on failure. Without it, the cache is skipped. */
  cacheKey?: string
  /** The arguments of `fn`, also given to the fallback after the error. */
  args?: TArgs
  /** Run `fn` through this breaker (one without a `fallback` option of its own). */
  breaker?: CircuitBreaker<never> | null
  /** The TTL of this answer in the cache. Default `cacheTtlMs`. */
  ttlMs?: number
}

export interface CacheEntry {
  value: unknown
  /** Past its TTL, within `staleIfErrorMs`. */
  stale: boolean
  ageMs: number
  expiresAt: number
}

export interface FallbackCacheMetrics {
  enabled: boolean
  entries: number
  bytes: number
  maxEntries: number
  maxBytes: number
  hits: number
  staleHits: number
  misses: number
  /** (hits + staleHits) / lookups, 0 to 1. */
  hitRate: number
  sets: number
  /** Entries pushed out by `cacheMaxEntries` or `cacheMaxBytes`. */
  evictions: number
  /** Entries dropped past their TTL and grace period. */
  expirations: number
  /** Values larger than `cacheMaxBytes`, not stored. */
  rejected: number
}

/**
 * Answers by (service, key), kept in Rust as JSON text (strings as they are), bounded by
 * `cacheMaxEntries` and `cacheMaxBytes`, least recently used out first, each with a TTL.
 * Every read is a fresh copy.
 */
export declare class FallbackCache {
  constructor(options?: FallbackOptions)
  readonly options: Readonly<
    Pick<Required<FallbackOptions>, 'cacheEnabled' | 'cacheTtlMs' | 'cacheMaxEntries' | 'cacheMaxBytes' | 'staleIfErrorMs'>
  >
  readonly enabled: boolean
  /** The fresh value, or undefined. */
  get<T = unknown>(service: string, key: string): T | undefined
  /** The value, fresh or stale (within `staleIfErrorMs` after its TTL), or undefined. */
  getEntry(service: string, key: string): CacheEntry | undefined
  has(service: string, key: string): boolean
  /**
   * Stores a JSON-serialisable value for `ttlMs` (default `cacheTtlMs`); false when disabled
   * or larger than `cacheMaxBytes`. Throws `ERR_NOT_SERIALIZABLE` for a function, a symbol,
   * a BigInt, a cycle, a Map, a Set or a Promise anywhere in it.
   */
  set(service: string, key: string, value: unknown, ttlMs?: number): boolean
  /** Drops one key of a service, or all its keys; returns how many entries went. */
  invalidate(service: string, key?: string): number
  clear(): number
  readonly size: number
  readonly bytes: number
  getMetrics(): FallbackCacheMetrics
}

/** An item queued for retry: `{ operation, payload }` (payload as JSON), or a function (in memory only). */
export type QueueItemInput = { operation: string; payload?: unknown } | ((context: QueueContext) => unknown)

/** What a handler (or a function item) is told about the attempt. */
export interface QueueContext {
  id: string
  /** The key given at enqueue, or else the item's id (stable across restarts): pass it on to deduplicate. */
  idempotencyKey: string
  service: string
  operation?: string
  /** This attempt's number, from 1. */
  attempt: number
  enqueuedAt: number
}

export type QueueHandler<P = any> = (payload: P, attempt: number, context: QueueContext) => unknown

export interface QueueItemInfo {
  id: string
  service: string
  kind: 'operation' | 'function'
  operation?: string
  payload?: unknown
  idempotencyKey?: string
  /** Attempts made (an interrupted attempt counts). */
  attempts: number
  enqueuedAt: number
  nextAttemptAt: number
  lastError: string | null
  state: 'queued' | 'running' | 'dead'
  /** Dead letters only. */
  deadAt?: number
  reason?: 'max_attempts' | 'expired'
}

/** Emitted when an item is accepted (on a persistent queue, just before its journal sync). */
export interface EnqueuedEvent {
  id: string
  service: string
  operation?: string
  idempotencyKey?: string
}
export interface RetryEvent extends QueueContext {
  error: unknown
  delayMs: number
  nextAttemptAt: number
}
export interface CompletedEvent extends QueueContext {
  result: unknown
}
export interface DeadLetterEvent extends QueueItemInfo {
  /** The error of the last attempt (its text after a restart, or for an expired item). */
  error: unknown
}

export interface RequestQueueEvents {
  enqueued: [EnqueuedEvent]
  retry: [RetryEvent]
  completed: [CompletedEvent]
  deadLetter: [DeadLetterEvent]
  /** Journal failures (`ERR_JOURNAL_IO`), items waiting for a handler (`ERR_NO_HANDLER`), throwing listeners. Logged when nobody listens. */
  error: [BreakwaterError]
}

export interface RequestQueueMetrics {
  queued: number
  running: number
  deadLetters: number
  rememberedKeys: number
  enqueued: number
  deduplicated: number
  rejectedFull: number
  attempts: number
  completed: number
  failedAttempts: number
  deadLettered: number
  persistent: boolean
  journal: { path: string; bytes: number; compactions: number; failed: boolean } | null
}

/** `queue: { ... }`: the Redis backend of the retry queue. */
export interface RedisQueueOptions {
  /** `redis://[user:password@]host:port[/db]` or `unix://` (required). */
  redisUrl: string
  /** Every key starts with it. Default `'breakwater:queue:'`. */
  keyPrefix?: string
  /** An item held this long by an instance that stopped sending heartbeats (it died) goes to another instance, in ms. Default 30 000; at least 100. */
  visibilityTimeoutMs?: number
  /** This instance's name in the consumer group. Default `<hostname>-<pid>-<random>`. */
  consumer?: string
  /** How often an idle instance looks for due items, in ms. Default 250. */
  pollIntervalMs?: number
  /** Each Redis command's timeout, in ms. Default 500. */
  commandTimeoutMs?: number
}

/**
 * The retry queue on Redis (`new RequestQueue({ queue: { redisUrl } })`): the same rules and
 * events as the local queue, but inspection reads Redis, so it is asynchronous. Enqueues reject
 * with `ERR_QUEUE_UNAVAILABLE` while Redis is unreachable; draining resumes on reconnect.
 */
export declare class RedisRequestQueue extends EventEmitter<RequestQueueEvents & { reconnected: [{ consumer: string }] }> {
  readonly options: RequestQueue['options'] & {
    queue: Readonly<Required<Omit<RedisQueueOptions, 'redisUrl'>>>
  }
  readonly persistent: true
  readonly distributed: true
  /** Queued and running items fleet-wide, as of the last poll. */
  readonly size: number
  registerHandler<P = any>(operation: string, handler: QueueHandler<P>): this
  enqueue(service: string, item: { operation: string; payload?: unknown }, options?: { idempotencyKey?: string }): Promise<string>
  runDue(): Promise<number>
  list(service?: string): Promise<QueueItemInfo[]>
  deadLetters(): Promise<QueueItemInfo[]>
  clearDeadLetters(): Promise<number>
  getMetrics(): Omit<RequestQueueMetrics, 'rememberedKeys'> & {
    rememberedKeys: null
    redis: { consumer: string; keyPrefix: string; connected: boolean; pendingOutcomes: number }
  }
  compact(): void
  close(): Promise<void>
}

/**
 * Work that must happen, retried with exponential backoff while its service's breaker lets
 * calls through; optionally journaled to `persistPath` so that it survives a crash, or kept in
 * Redis for a fleet (`queue: { redisUrl }`, see `RedisRequestQueue`).
 */
export declare class RequestQueue extends EventEmitter<RequestQueueEvents> {
  constructor(options?: FallbackOptions)
  readonly options: Readonly<
    Pick<
      Required<FallbackOptions>,
      | 'queueEnabled'
      | 'maxQueueSize'
      | 'queueTtlMs'
      | 'autoRetryEnabled'
      | 'maxRetryAttempts'
      | 'retryDelayMs'
      | 'retryBackoffMultiplier'
      | 'retryJitterRatio'
      | 'concurrency'
      | 'idempotencyRetentionMs'
    > & { persistPath: string | null }
  >
  /** What opening the journal found (zeros in memory). */
  readonly replay: Readonly<{ records: number; tornBytes: number; items: number; deadLetters: number; interrupted: number }>
  readonly persistent: boolean
  /** Queued and running items. */
  readonly size: number
  registerHandler<P = any>(operation: string, handler: QueueHandler<P>): this
  /**
   * Resolves with the item's id once it is queued (on a persistent queue, once it is on disk).
   * A known `idempotencyKey` (queued, running or recently completed) resolves with that id.
   * Rejects with `ERR_QUEUE_FULL`, `ERR_NOT_SERIALIZABLE`, `ERR_QUEUE_DISABLED`, `ERR_QUEUE_CLOSED`, `ERR_JOURNAL_IO`.
   */
  enqueue(service: string, item: QueueItemInput, options?: { idempotencyKey?: string }): Promise<string>
  /** Runs everything due at the clock's current time and waits for it; resolves with the attempts that ended. */
  runDue(): Promise<number>
  list(service?: string): QueueItemInfo[]
  deadLetters(): QueueItemInfo[]
  clearDeadLetters(): number
  getMetrics(): RequestQueueMetrics
  /** Rewrites the journal as a snapshot now (it also compacts by itself). */
  compact(): void
  /** Stops starting attempts, waits for the running ones, syncs and releases the journal. */
  close(): Promise<void>
}

export interface FallbackEvent {
  service: string
  /** `error`: nothing could answer, and the caller gets the error. */
  source: Exclude<FallbackSource, 'live'> | 'error'
  error: unknown
  cacheKey?: string
  ageMs?: number
  /** The registered fallback's own failure, when it failed too. */
  fallbackError?: unknown
}

export interface CacheHitEvent {
  service: string
  key: string
  stale: boolean
  ageMs?: number
}

export interface FallbackHandlerEvents extends RequestQueueEvents {
  fallback: [FallbackEvent]
  cacheHit: [CacheHitEvent]
}

export interface FallbackMetrics {
  /** Answers by source, in total and by service. */
  served: Record<FallbackSource | 'error', number> & { services: Record<string, Record<FallbackSource | 'error', number>> }
  cache: FallbackCacheMetrics
  queue: RequestQueueMetrics
}

/**
 * Graceful degradation: a failed call is answered by a fresh cached value, a stale one within
 * `staleIfErrorMs`, the service's fallback, or else its error; writes go to the retry queue.
 */
export declare class FallbackHandler extends EventEmitter<FallbackHandlerEvents> {
  constructor(options?: FallbackOptions)
  readonly cache: FallbackCache
  readonly queue: RequestQueue
  /** `fn(error, ...args)` answers for `service` when the cache cannot. */
  registerFallback(service: string, fn: (error: unknown, ...args: any[]) => unknown): this
  unregisterFallback(service: string): boolean
  executeWithFallback<T, TArgs extends unknown[] = []>(
    service: string,
    fn: (...args: TArgs) => T | PromiseLike<T>,
    options?: ExecuteWithFallbackOptions<TArgs>,
  ): Promise<FallbackResult<Awaited<T>>>
  getFromCache<T = unknown>(service: string, key: string): T | undefined
  setCache(service: string, key: string, value: unknown, ttlMs?: number): boolean
  invalidate(service: string, key?: string): number
  queueForRetry(service: string, item: QueueItemInput, options?: { idempotencyKey?: string }): Promise<string>
  getMetrics(): FallbackMetrics
  /** Closes the queue. */
  close(): Promise<void>
}

export declare function isQueueFullError(error: unknown): error is BreakwaterError & { code: 'ERR_QUEUE_FULL' }
export declare function isQueueUnavailableError(error: unknown): error is BreakwaterError & { code: 'ERR_QUEUE_UNAVAILABLE' }
export declare function isNotSerializableError(error: unknown): error is BreakwaterError & { code: 'ERR_NOT_SERIALIZABLE' }
