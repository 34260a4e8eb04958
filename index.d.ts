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
  /** `consecutive_failures`, `failure_rate`, `slow_call_rate`, `trial_failed`, `reset_timeout_elapsed`, `trials_succeeded`, `open_for`, `force_open`, `disable`, `reset`, `health_check_passed` */
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

/** A manual permit: settle it once with `success()` or `failure(err)`. */
export declare class Permit {
  /** @returns false if the permit was already settled */
  success(): boolean
  /** @returns false if the permit was already settled */
  failure(error: unknown): boolean
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

export declare class CircuitBreakerRegistry {
  constructor()
  get(name: string): CircuitBreaker<any> | undefined
  has(name: string): boolean
  getOrCreate<TFallback = never>(name: string, options?: Omit<CircuitBreakerOptions<any[], TFallback>, 'registry'>): CircuitBreaker<TFallback>
  delete(name: string): boolean
  list(): CircuitBreaker<any>[]
  readonly size: number
  resetAll(): void
  getAllMetrics(): CircuitBreakerMetrics[]
}

export declare const globalRegistry: CircuitBreakerRegistry

/** The breaker options the environment sets. Throws `ERR_INVALID_CONFIG` naming a bad variable. */
export declare function configFromEnv(env?: Record<string, string | undefined>): Pick<
  CircuitBreakerOptions,
  'failureThreshold' | 'resetTimeoutMs' | 'exponentialBackoff' | 'enabled'
>

export type ErrorCode =
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_CALL_TIMEOUT'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_DUPLICATE_BREAKER'
  | 'ERR_UNKNOWN_BREAKER'
  | 'ERR_NATIVE_BINDING_MISSING'
  | 'ERR_INTERNAL'
  | 'ERR_ALL_PROVIDERS_UNAVAILABLE'

export declare const ErrorCodes: {
  readonly CIRCUIT_OPEN: 'ERR_CIRCUIT_OPEN'
  readonly CALL_TIMEOUT: 'ERR_CALL_TIMEOUT'
  readonly INVALID_CONFIG: 'ERR_INVALID_CONFIG'
  readonly INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT'
  readonly DUPLICATE_BREAKER: 'ERR_DUPLICATE_BREAKER'
  readonly UNKNOWN_BREAKER: 'ERR_UNKNOWN_BREAKER'
  readonly NATIVE_BINDING_MISSING: 'ERR_NATIVE_BINDING_MISSING'
  readonly INTERNAL: 'ERR_INTERNAL'
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
