// The tracing interface the request path calls (docs/tracing.md). Spans are
// passed explicitly (on RunContext.trace), never through ambient context, so
// that with tracing off the path pays one `undefined` check per site and
// allocates nothing. The OpenTelemetry implementation lives with the gateway;
// nothing below it imports an OpenTelemetry package.

/** A span attribute value (OpenTelemetry's primitive and string-array values). */
export type TraceValue = string | number | boolean | readonly string[];

/** Attributes; undefined values are skipped. Never put a secret or a prompt here. */
export type TraceAttrs = Readonly<Record<string, TraceValue | undefined>>;

/** Span kinds used here: a server hop (request in), a client hop (call out), or internal work. */
export type TraceKind = 'server' | 'client' | 'internal';

export interface TraceSpan {
  /** A child span started now. */
  child(name: string, attrs?: TraceAttrs, kind?: TraceKind): TraceSpan;
  set(attrs: TraceAttrs): void;
  /** A timestamped event on this span (a retry, a backoff). */
  event(name: string, attrs?: TraceAttrs): void;
  /** Marks the span failed with the error's kind (`error.type`) and client-safe message; does not end it. */
  fail(e: unknown): void;
  /** Ends the span; later calls are ignored. */
  end(): void;
  /** Adds the W3C trace context headers (traceparent, tracestate) for a call made under this span. */
  inject(headers: Record<string, string>): void;
}

/** Incoming headers as Node gives them. */
export type TraceHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Starts the span of a request that arrived on a server hop. */
export interface Tracing {
  /** A root span, or the child of the caller's span when the headers carry a valid W3C traceparent. */
  start(name: string, headers: TraceHeaders, attrs?: TraceAttrs): TraceSpan;
}
