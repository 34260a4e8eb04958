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
export declare class CircuitBreakerRegistry extends EventEmitter<CircuitBreakerRegistryEvents> {
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

export declare const ErrorCodes: {
  readonly CIRCUIT_OPEN: 'ERR_CIRCUIT_OPEN'
  readonly CALL_TIMEOUT: 'ERR_CALL_TIMEOUT'
  readonly INVALID_CONFIG: 'ERR_INVALID_CONFIG'
  readonly INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT'
  readonly DUPLICATE_BREAKER: 'ERR_DUPLICATE_BREAKER'
  readonly UNKNOWN_BREAKER: 'ERR_UNKNOWN_BREAKER'
  readonly NATIVE_BINDING_MISSING: 'ERR_NATIVE_BINDING_MISSING'
  readonly INTERNAL: 'ERR_INTERNAL'
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
