import { describe, expect, it } from 'vitest';
import { errorOf } from '@inference/core/testing';
import { parseConfig, tracesConfig } from '../config.js';
import { parseKeyValues, parseTracesBlock, resolveTraces } from './tracesConfig.js';

describe('traces config', () => {
  it('is off by default, with no block and no OTEL_* variables', () => {
    expect(resolveTraces(undefined, {})).toBeUndefined();
    expect(tracesConfig(parseConfig({}), {})).toBeUndefined();
  });

  it('a file block turns it on with defaults', () => {
    expect(resolveTraces(parseTracesBlock({}), {})).toEqual({
      endpoint: 'http://localhost:4318/v1/traces', serviceName: 'inference', sampleRatio: 1, headers: {}, batchDelayMs: 5000, resourceAttributes: {},
    });
  });

  it('the standard variables turn it on and fill what the file leaves out; the file wins', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_SERVICE_NAME: 'gw',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-a=1,x-b=two%20words',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    expect(resolveTraces(undefined, env)).toEqual({
      endpoint: 'http://collector:4318/v1/traces', serviceName: 'gw', sampleRatio: 0.25, headers: { 'x-a': '1', 'x-b': 'two words' }, batchDelayMs: 200,
      resourceAttributes: { 'deployment.environment': 'prod' },
    });
    expect(resolveTraces(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' })?.endpoint).toBe('http://c:4318/custom');
    expect(resolveTraces(undefined, { OTEL_TRACES_EXPORTER: 'otlp' })?.endpoint).toBe('http://localhost:4318/v1/traces');
    const file = parseTracesBlock({ endpoint: 'http://file:4318/v1/traces', serviceName: 'from-file', sampleRatio: 1 });
    expect(resolveTraces(file, env)).toMatchObject({ endpoint: 'http://file:4318/v1/traces', serviceName: 'from-file', sampleRatio: 1 });
  });

  it('OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER=none and enabled: false turn it off', () => {
    const file = parseTracesBlock({ endpoint: 'http://x:4318/v1/traces' });
    expect(resolveTraces(file, { OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(resolveTraces(file, { OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(resolveTraces(parseTracesBlock({ enabled: false }), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBeUndefined();
  });

  it('header values from the environment, named by key; an unset one names the key', () => {
    const file = parseTracesBlock({ headersEnv: { authorization: 'COLLECTOR_TOKEN' } });
    expect(resolveTraces(file, { COLLECTOR_TOKEN: 'Bearer t' })?.headers).toEqual({ authorization: 'Bearer t' });
    const e = errorOf(() => resolveTraces(file, {}));
    expect(e.param).toBe('telemetry.traces.headersEnv.authorization');
    expect(e.message).toContain('COLLECTOR_TOKEN');
  });

  it('bad values are refused by name', () => {
    const param = (doc: unknown): string | null => errorOf(() => parseConfig({ telemetry: { traces: doc } })).param;
    expect(param({ endpoint: 'ftp://x' })).toBe('telemetry.traces.endpoint');
    expect(param({ endpoint: 'http://user:pw@x:4318' })).toBe('telemetry.traces.endpoint');
    expect(param({ sampleRatio: 2 })).toBe('telemetry.traces.sampleRatio');
    expect(param({ headers: { 'bad header': 'x' } })).toBe('telemetry.traces.headers.bad header');
    expect(param({ headersEnv: { authorization: 'not-a-var!' } })).toBe('telemetry.traces.headersEnv.authorization');
    expect(param({ batchDelayMs: 1 })).toBe('telemetry.traces.batchDelayMs');
    expect(param({ endpiont: 'http://x' })).toBe('telemetry.traces.endpiont');
    expect(errorOf(() => parseConfig({ telemetry: { metrics: {} } })).param).toBe('telemetry.metrics');
    expect(errorOf(() => resolveTraces(undefined, { OTEL_TRACES_EXPORTER: 'zipkin' })).message).toContain('OTEL_TRACES_EXPORTER');
    expect(errorOf(() => resolveTraces(undefined, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'jaeger_remote' })).message).toContain(
      'OTEL_TRACES_SAMPLER',
    );
    expect(
      errorOf(() => resolveTraces(undefined, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).message,
    ).toContain('OTEL_TRACES_SAMPLER_ARG');
    expect(errorOf(() => resolveTraces(undefined, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_EXPORTER: 'otlp' })).message).toContain('grpc');
    expect(errorOf(() => parseKeyValues('novalue', 'V')).message).toContain('V');
  });
});
