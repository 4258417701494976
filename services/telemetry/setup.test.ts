import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  absoluteTracesFileEnv,
  DEFAULT_TRACES_FILE_MAX_BYTES,
  serviceNameOf,
  TracingConfigError,
  tracingPlan,
} from './setup.ts';

const fs = { style: 'microkernel', component: 'fs' };

describe('tracingPlan (the environment tracing reads)', () => {
  it('is off without an exporter, when the variables are empty, and with OTEL_SDK_DISABLED=true', () => {
    assert.equal(tracingPlan(fs, {}), null);
    assert.equal(tracingPlan(fs, { KSTYLES_TRACES_FILE: '', OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }), null);
    assert.equal(tracingPlan(fs, { KSTYLES_TRACES_FILE: '/tmp/t.jsonl', OTEL_SDK_DISABLED: 'TRUE' }), null);
  });

  it('names the component, resolves the file against the working directory, defaults the sampler', () => {
    assert.deepEqual(tracingPlan(fs, { KSTYLES_TRACES_FILE: 'out/t.jsonl' }, '/work'), {
      serviceName: 'microkernel-fs',
      style: 'microkernel',
      file: { path: '/work/out/t.jsonl', maxBytes: DEFAULT_TRACES_FILE_MAX_BYTES },
      sampler: { name: 'parentbased_always_on', ratio: 1 },
    });
    assert.equal(serviceNameOf({ style: 'monolith' }), 'monolith');
  });

  it('gives the general OTLP endpoint the traces path and takes the traces endpoint as it is', () => {
    assert.deepEqual(tracingPlan(fs, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318/' })?.otlp, {
      url: 'http://jaeger:4318/v1/traces',
    });
    assert.deepEqual(
      tracingPlan(fs, {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector/custom',
      })?.otlp,
      { url: 'https://collector/custom' },
    );
  });

  it('takes the standard sampler variables, parent-based ratio included', () => {
    const plan = tracingPlan(fs, {
      KSTYLES_TRACES_FILE: '/t',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    assert.deepEqual(plan?.sampler, { name: 'parentbased_traceidratio', ratio: 0.25 });
  });

  it('refuses what it cannot use, naming the variable and what would do (also with tracing off)', () => {
    const refused = (env: NodeJS.ProcessEnv, pattern: RegExp) =>
      assert.throws(
        () => tracingPlan(fs, env),
        (err: unknown) =>
          err instanceof TracingConfigError && err.exitCode === 2 && pattern.test(err.message),
      );
    refused({ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER=sometimes .*parentbased_traceidratio/);
    refused({ OTEL_TRACES_SAMPLER_ARG: '1.5' }, /OTEL_TRACES_SAMPLER_ARG=1\.5 .*from 0 to 1/);
    refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'jaeger:4318' }, /http:\/\/ or https:\/\//);
    refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://[::1' }, /is not a URL/);
    refused(
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      /OTEL_EXPORTER_OTLP_PROTOCOL=grpc: .*http\/json/,
    );
    refused({ KSTYLES_TRACES_FILE_MAX_BYTES: '10' }, /KSTYLES_TRACES_FILE_MAX_BYTES=10 /);
  });

  it('makes a relative KSTYLES_TRACES_FILE absolute for the processes a supervisor starts elsewhere', () => {
    assert.deepEqual(absoluteTracesFileEnv({ KSTYLES_TRACES_FILE: 't.jsonl' }, '/home/me'), {
      KSTYLES_TRACES_FILE: '/home/me/t.jsonl',
    });
    assert.deepEqual(absoluteTracesFileEnv({}, '/home/me'), {});
  });
});
