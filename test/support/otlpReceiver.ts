// A real OTLP/HTTP trace receiver for tests: POST /v1/traces with a JSON
// ExportTraceServiceRequest, decoded into flat spans (ids as lower-case hex,
// attribute values unwrapped). The raw bodies and request headers are kept too,
// so tests can assert what never travels (secrets).

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttrValue = string | number | boolean | AttrValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, AttrValue>;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  events: { name: string; attributes: Record<string, AttrValue> }[];
  service: string | undefined;
  startNs: bigint;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly bodies: string[];
  readonly headers: http.IncomingHttpHeaders[];
  /** Resolves once `pred` holds over the received spans (polling; rejects after `ms`). */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue { key: string; value?: AnyValue }

function unwrap(v: AnyValue | undefined): AttrValue {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(unwrap);
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key] = unwrap(kv.value);
  return out;
}

/** OTLP/JSON ids are hex; accept base64 too (protobuf-JSON mapping) and normalise to hex. */
function hexId(id: string | undefined, bytes: number): string {
  if (id === undefined || id === '') return '';
  if (id.length === bytes * 2 && /^[0-9a-f]+$/i.test(id)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: {
      traceId?: string; spanId?: string; parentSpanId?: string; name?: string; kind?: number; attributes?: KeyValue[];
      status?: { code?: number }; events?: { name?: string; attributes?: KeyValue[] }[]; startTimeUnixNano?: string | number;
    }[] }[];
  }[];
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      bodies.push(text);
      headers.push(req.headers);
      const doc = JSON.parse(text) as ExportRequest;
      for (const rs of doc.resourceSpans ?? []) {
        const service = attrs(rs.resource?.attributes)['service.name'];
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hexId(s.traceId, 16),
              spanId: hexId(s.spanId, 8),
              parentSpanId: hexId(s.parentSpanId, 8),
              name: s.name ?? '',
              kind: s.kind ?? 0,
              attributes: attrs(s.attributes),
              status: s.status?.code ?? 0,
              events: (s.events ?? []).map((e) => ({ name: e.name ?? '', attributes: attrs(e.attributes) })),
              service: typeof service === 'string' ? service : undefined,
              startNs: BigInt(s.startTimeUnixNano ?? 0),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    bodies,
    headers,
    async waitFor(pred, ms = 15_000) {
      const until = Date.now() + ms;
      while (!pred(spans)) {
        if (Date.now() > until) throw new Error(`spans not received in time; have: ${spans.map((s) => s.name).join(', ')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => { resolve(); });
    }),
  };
}
