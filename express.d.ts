// Types of `breakwater/express`, over @types/express (an optional peer dependency: a TypeScript
// Express app has it). The request and response types can be narrowed with the type parameters.
import type { Request, Response, NextFunction } from 'express'
import type { CircuitBreakerOptions, CircuitBreakerRegistry, CircuitOpenError } from './index'

export interface WithCircuitBreakerOptions<Req, Res> {
  /** Options for the breaker when this call creates it (the first creator's options win). */
  breakerOptions?: Omit<CircuitBreakerOptions, 'registry'>
  /** Where the breaker is found or created. Default `globalRegistry`. */
  registry?: CircuitBreakerRegistry
  /**
   * Overrides the outcome rules. Called with the thrown error (or `undefined` when the response
   * finished normally), the request and the response. For a finished response, `true` counts a
   * failure and `false` a success; for a thrown error, `false` counts nothing either way.
   */
  isFailure?: (error: unknown, req: Req, res: Res) => boolean
  /**
   * Answers instead of the 503 when the circuit rejects (`error` is the CircuitOpenError), and
   * instead of `next(err)` when the handler throws or rejects.
   */
  fallback?: (req: Req, res: Res, error: unknown) => unknown
}

/**
 * Protects a route handler with the breaker `name`. A throw or rejection is a failure (and goes to
 * `next(err)` unless a fallback answers); a response finished with status >= 500 is a failure;
 * any other finished response is a success; a request the client aborts is not counted. When the
 * circuit rejects: 503, `Retry-After`, `{ error: 'circuit_open', breaker, retry_after_seconds }`.
 */
export declare function withCircuitBreaker<Req extends Request = Request, Res extends Response = Response>(
  name: string,
  handler: (req: Req, res: Res, next: NextFunction) => unknown,
  options?: WithCircuitBreakerOptions<Req, Res>,
): (req: Req, res: Res, next: NextFunction) => void

/** One monitored service as a health monitor reports it (every field but `status` may be absent). */
export interface MonitoredServiceHealth {
  name?: string
  status: 'healthy' | 'degraded' | 'unhealthy' | 'unknown'
  errorRate?: number | null
  uptime?: number | null
  latencyP50Ms?: number | null
  latencyP95Ms?: number | null
  latencyP99Ms?: number | null
  /** Clock ms, a Date or an ISO string; reported as Unix seconds (`last_check`). */
  lastCheck?: number | Date | string | null
  lastError?: unknown
  consecutiveFailures?: number
  totalChecks?: number
  failedChecks?: number
}

/** What the routes need of a health monitor (the package's `HealthMonitor` is one). */
export interface HealthSource {
  getHealthSummary(): {
    status: 'healthy' | 'degraded' | 'unhealthy' | 'unknown'
    services: Record<string, MonitoredServiceHealth> | MonitoredServiceHealth[]
  }
}

/** A source of fallback cache and queue metrics: its numeric fields become `breakwater_fallback_*`. */
export interface FallbackMetricsSource {
  getMetrics(): object
}

export interface MonitoringOptions {
  /** Default `globalRegistry`. */
  registry?: CircuitBreakerRegistry
  /** Default the package's `globalMonitor` when it exists; `null` for no health data. */
  monitor?: HealthSource | null
  /** Fallback cache and queue metrics for Prometheus. Default none. */
  fallback?: FallbackMetricsSource | null
}

export interface CircuitBreakerRoutesOptions extends MonitoringOptions {
  /** Default `/api/circuit-breaker`. */
  prefix?: string
  /** Enables the POST control routes for `Authorization: Bearer <adminToken>`. Default `process.env.CB_ADMIN_TOKEN`. */
  adminToken?: string
  /** Enables the POST control routes for the requests it approves (after the token, if both are set). */
  authorize?: (req: Request) => boolean | Promise<boolean>
  /** Serves `GET {prefix}/dashboard`. Default true. */
  dashboard?: boolean
}

/** An Express app or router: anything with `get` and `post`. */
export interface RouteTarget {
  get(path: string, ...handlers: any[]): unknown
  post(path: string, ...handlers: any[]): unknown
}

/** Registers the monitoring routes, the control routes and the dashboard; returns `app`. */
export declare function registerCircuitBreakerRoutes<App extends RouteTarget>(app: App, options?: CircuitBreakerRoutesOptions): App

/** The Prometheus text (format 0.0.4) that `GET {prefix}/prometheus` serves. */
export declare function prometheusMetrics(options?: MonitoringOptions): string

/** A prom-client `Registry` (structural, so prom-client's types are not required). */
export interface PromClientRegistry {
  registerMetric(metric: any): void
  removeSingleMetric(name: string): void
}

/**
 * Publishes the same metrics into a prom-client registry (default: prom-client's global
 * `register`). Returns a function that removes them again.
 */
export declare function registerPromClientCollector(register?: PromClientRegistry | null, options?: MonitoringOptions): () => void

/** `text/plain; version=0.0.4; charset=utf-8` */
export declare const PROMETHEUS_CONTENT_TYPE: string

/** The body of the 503 sent when the circuit rejects. */
export interface CircuitOpenResponseBody {
  error: 'circuit_open'
  breaker: string
  retry_after_seconds: number
}

export type { CircuitOpenError }
