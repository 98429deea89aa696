// The OpenTelemetry side of tracing (docs/tracing.md): a tracer provider with a
// parent-based ratio sampler and a bounded batch processor exporting OTLP/HTTP,
// and the TraceSpan the request path calls, over an OpenTelemetry span. Parents
// are passed explicitly (no context manager, no async hooks); the W3C trace
// context is read from incoming headers and written into outgoing ones. Error
// spans carry the error's kind and client-safe message, never its diagnostic.

import {
  type Attributes, type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, defaultTextMapGetter, defaultTextMapSetter, trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { type TraceAttrs, type TraceHeaders, type TraceKind, type TraceSpan, type Tracing, toInferenceError } from '@inference/core';
import type { TracesConfig } from '@inference/runtime';

const propagator = new W3CTraceContextPropagator();

/** Spans waiting for export; past this they are dropped, never queued without bound. */
const MAX_QUEUED_SPANS = 8192;

function kindOf(k: TraceKind): SpanKind {
  switch (k) {
    case 'server':
      return SpanKind.SERVER;
    case 'client':
      return SpanKind.CLIENT;
    case 'internal':
      return SpanKind.INTERNAL;
    default: {
      const never: never = k;
      throw new Error(`unknown span kind ${String(never)}`);
    }
  }
}

function attributes(a: TraceAttrs | undefined): Attributes | undefined {
  if (a === undefined) return undefined;
  const out: Attributes = {};
  for (const k in a) {
    const v = a[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

class OtelSpan implements TraceSpan {
  private context: Context | undefined;
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    readonly span: Span,
    private readonly parent: Context,
  ) {}

  /** The context this span is active in (made once, on first use). */
  private own(): Context {
    return (this.context ??= trace.setSpan(this.parent, this.span));
  }

  child(name: string, attrs?: TraceAttrs, kind: TraceKind = 'internal'): TraceSpan {
    const parent = this.own();
    return new OtelSpan(this.tracer, this.tracer.startSpan(name, { kind: kindOf(kind), attributes: attributes(attrs) }, parent), parent);
  }

  set(attrs: TraceAttrs): void {
    const a = attributes(attrs);
    if (a !== undefined) this.span.setAttributes(a);
  }

  event(name: string, attrs?: TraceAttrs): void {
    this.span.addEvent(name, attributes(attrs));
  }

  fail(e: unknown): void {
    const err = toInferenceError(e);
    this.span.setAttribute('error.type', err.kind);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.end();
  }

  inject(headers: Record<string, string>): void {
    propagator.inject(this.own(), headers, defaultTextMapSetter);
  }
}

export interface TracingHandle {
  readonly tracing: Tracing;
  /** Exports what is pending (bounded by the exporter's timeout). */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

export function startTracing(cfg: TracesConfig, version = '0.1.0'): TracingHandle {
  const exporter = new OTLPTraceExporter({ url: cfg.endpoint, headers: { ...cfg.headers }, timeoutMillis: 10_000 });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ ...cfg.resourceAttributes, 'service.name': cfg.serviceName, 'service.version': version }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: MAX_QUEUED_SPANS, maxExportBatchSize: 512, scheduledDelayMillis: cfg.batchDelayMs })],
  });
  const tracer = provider.getTracer('inference', version);
  const tracing: Tracing = {
    start(name: string, headers: TraceHeaders, attrs?: TraceAttrs): TraceSpan {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      return new OtelSpan(tracer, tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: attributes(attrs) }, parent), parent);
    },
  };
  return {
    tracing,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
