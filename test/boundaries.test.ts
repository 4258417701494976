/**
 * The tree is the architecture: these rules, checked over the real import graph, keep it so
 * (docs/architecture.md, 'Boundaries'). Each rule is data; a failure prints the import chain.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT as REPO } from '../cli/kit/repo.ts';
import { checkRules, formatViolations, importGraph, type Rule } from './boundaries.ts';

const TRANSPORTS = ['npm:express', 'npm:@nats-io/', 'npm:piscina'];
const MICROKERNEL = ['services/ipc/', 'services/gateway/', 'services/microkernel/'];

/** Every top-level folder of code: a rule about the whole tree starts from these. */
const WHOLE_TREE = [
  'bench/',
  'cli/',
  'deploy/',
  'lab/',
  'load/',
  'monolith/',
  'scripts/',
  'services/',
  'test/',
  'unikernel/',
];
/** What loads the tracing SDK (services/telemetry/README.md): setup.ts imports sdk.ts only when asked to. */
const TRACING_SDK = [
  'services/telemetry/setup.ts',
  'services/telemetry/sdk.ts',
  'services/telemetry/file-exporter.ts',
];

const RULES: Rule[] = [
  {
    name: 'cores import no transport',
    from: ['services/contract/', 'services/fs/', 'services/driver/'],
    forbidden: TRANSPORTS,
    except: [
      { path: 'services/fs/main.ts', why: "the file server's process entry: connects to NATS" },
      { path: 'services/fs/nats-server.ts', why: 'serves the fs core on NATS subjects' },
      { path: 'services/fs/block-reader-client.ts', why: "the file server's NATS client of the driver" },
      { path: 'services/fs/block-reader-client.test.ts', why: 'tests that client against real NATS' },
      { path: 'services/driver/main.ts', why: "the driver's process entry: connects to NATS" },
      { path: 'services/driver/nats-server.ts', why: 'serves the driver core on NATS subjects' },
    ],
    why: 'the contract, fs and driver logic is shared by all three styles; only named server entries may know how it is carried (node:http types are part of the contract, Express, NATS and piscina are not)',
  },
  {
    name: 'the cores record spans through the API only',
    from: ['services/contract/', 'services/fs/', 'services/driver/'],
    forbidden: TRACING_SDK,
    except: [
      { path: 'services/fs/main.ts', why: "the file server's process entry: sets up its tracing" },
      { path: 'services/driver/main.ts', why: "the driver's process entry: sets up its tracing" },
    ],
    why: 'the shared cores start spans through @opentelemetry/api (services/telemetry/spans.ts), which costs nothing until a process entry registers the SDK; a core that reached setup.ts could load the SDK into every style',
  },
  {
    name: 'the tracing SDK is set up in one place',
    from: WHOLE_TREE,
    forbidden: ['npm:@opentelemetry/', 'services/telemetry/sdk.ts', 'services/telemetry/file-exporter.ts'],
    except: [{ path: 'services/telemetry/', why: 'the one place that registers the SDK and its exporters' }],
    allowed: [
      {
        path: 'npm:@opentelemetry/api',
        why: 'the API is how code records spans; without a registered SDK it does nothing',
      },
    ],
    direct: true,
    why: 'one set-up of providers, exporters and sampling (services/telemetry/setup.ts), loaded only when an exporter is configured; a second one elsewhere would register a second provider or load the SDK when tracing is off',
  },
  {
    name: 'the monolith has no microkernel',
    from: ['monolith/'],
    forbidden: ['npm:@nats-io/', ...MICROKERNEL],
    why: 'the monolith is one process whose modules call each other directly; no bus, no microkernel code',
  },
  {
    name: 'the unikernel is self-contained',
    from: ['unikernel/'],
    forbidden: ['npm:express', 'npm:@nats-io/', ...MICROKERNEL, 'services/express/', 'monolith/'],
    why: 'the unikernel is node:http, the shared cores and its pool; it must not depend on the other styles',
  },
  {
    name: 'the unikernel runtime does not need its build',
    from: ['unikernel/runtime/'],
    forbidden: ['unikernel/build/', 'npm:esbuild', 'npm:postject'],
    why: 'the build bundles the runtime; what goes into the executable must not pull in the build chain',
  },
  {
    name: 'the supervisor knows nothing about files',
    from: ['services/supervisor/'],
    forbidden: ['services/fs/', 'services/driver/', 'services/corpus/'],
    why: 'the supervisor starts, watches and restarts processes; which files they serve is not its business',
  },
  {
    name: 'load reaches the styles only as a client',
    from: ['load/'],
    forbidden: [
      'monolith/',
      'unikernel/',
      ...MICROKERNEL,
      'services/fs/',
      'services/driver/',
      'services/express/',
    ],
    allowed: [
      {
        path: 'services/ipc/connect.ts',
        why: "the one NATS connection recipe, which the supervisor's control client uses too",
      },
    ],
    why: 'the load generator talks to the styles over HTTP, signals, the supervisor control API and Docker, never through their code',
  },
  {
    name: "load uses only services' client APIs",
    from: ['load/'],
    forbidden: ['services/'],
    allowed: [
      {
        path: 'services/corpus/corpus.ts',
        why: 'the corpus manifest format: which files exist and their bytes, to build the request mix and verify every response',
      },
      {
        path: 'services/supervisor/control-client.ts',
        why: "the supervisor's control API client: the kill/term/hang/resume fault drivers",
      },
      {
        path: 'services/supervisor/runtime-state.ts',
        why: 'where a running supervisor says how to reach its control API',
      },
      { path: 'services/supervisor/subjects.ts', why: "the control API's NATS subjects" },
      {
        path: 'services/supervisor/testing/nats-server.ts',
        why: "test helper only (load/fault-drivers.test.ts): a real nats-server behind the control client's test",
      },
      { path: 'services/contract/', why: 'error codes and metric names are the ABI every style serves' },
    ],
    direct: true,
    why: 'every other services/ module is a style’s implementation; load names each API it may use, with its reason',
  },
];

describe('the boundaries of the tree', () => {
  const graph = importGraph(REPO);

  it('sees the whole tree (the graph is not empty and reaches the transports)', () => {
    assert.ok(graph.size > 150, `only ${graph.size} source files found under ${REPO}`);
    assert.ok(graph.get('services/ipc/connect.ts')?.packages.includes('@nats-io/transport-node'));
    assert.ok(graph.get('monolith/app.ts')?.locals.includes('services/express/express-app.ts'));
    assert.ok(
      graph.get('cli/main.ts')?.locals.includes('unikernel/runtime/cli.ts'),
      'dynamic imports are in the graph',
    );
  });

  it('holds in the real import graph', () => {
    const violations = checkRules(graph, RULES);
    assert.equal(violations.length, 0, `boundary violations:\n${formatViolations(violations)}`);
  });

  it('names an exception only for files that exist', () => {
    for (const rule of RULES) {
      for (const entry of [...(rule.except ?? []), ...(rule.allowed ?? [])]) {
        if (entry.path.startsWith('npm:')) {
          const name = entry.path.slice('npm:'.length);
          const used = [...graph.values()].some((node) => node.packages.includes(name));
          assert.ok(used, `[${rule.name}] allows ${entry.path}, which nothing imports`);
          continue;
        }
        const known = entry.path.endsWith('/')
          ? [...graph.keys()].some((file) => file.startsWith(entry.path))
          : graph.has(entry.path);
        assert.ok(known, `[${rule.name}] names ${entry.path}, which is not in the tree`);
      }
    }
  });
});

describe('the boundary checker', () => {
  function tree(files: Record<string, string>): string {
    const root = mkdtempSync(path.join(tmpdir(), 'kstyles-boundaries-'));
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    }
    return root;
  }

  it('reports a transport reached through a chain of imports, and spares the named entries', () => {
    const root = tree({
      'services/fs/file-system.ts': "import { decode } from './request-path.ts';\nexport const x = decode;\n",
      'services/fs/request-path.ts':
        "// import express from 'express'; (a comment is not an import)\nimport { headers } from '../ipc/headers.ts';\nexport const decode = headers;\n",
      'services/ipc/headers.ts': "export { headers } from '@nats-io/nats-core';\n",
      'services/fs/main.ts':
        "import { connect } from '@nats-io/transport-node';\nexport const c = connect;\n",
      'services/driver/driver.ts': "export const load = () => import('piscina');\n",
    });
    try {
      const violations = checkRules(importGraph(root), RULES);
      const found = violations.map((v) => `${v.rule}: ${v.chain.join(' → ')}`).sort();
      assert.deepEqual(found, [
        'cores import no transport: services/driver/driver.ts → npm:piscina',
        'cores import no transport: services/fs/file-system.ts → services/fs/request-path.ts → services/ipc/headers.ts → npm:@nats-io/nats-core',
        'cores import no transport: services/fs/request-path.ts → services/ipc/headers.ts → npm:@nats-io/nats-core',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reports a style reaching another style, and a direct import outside the allowed list', () => {
    const root = tree({
      'unikernel/runtime/server.ts': "import { app } from '../../monolith/app.ts';\nexport const s = app;\n",
      'monolith/app.ts': 'export const app = 1;\n',
      'load/run.ts':
        "import { readManifest } from '../services/corpus/corpus.ts';\nimport { chaos } from '../services/driver/chaos.ts';\nexport const r = [readManifest, chaos];\n",
      'services/corpus/corpus.ts': 'export const readManifest = 1;\n',
      'services/driver/chaos.ts': 'export const chaos = 1;\n',
    });
    try {
      const found = checkRules(importGraph(root), RULES)
        .map((v) => `${v.rule}: ${v.chain.join(' → ')}`)
        .sort();
      assert.deepEqual(found, [
        'load reaches the styles only as a client: load/run.ts → services/driver/chaos.ts',
        "load uses only services' client APIs: load/run.ts → services/driver/chaos.ts",
        'the unikernel is self-contained: unikernel/runtime/server.ts → monolith/app.ts',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps the tracing SDK in services/telemetry and out of the cores, the API allowed everywhere', () => {
    const root = tree({
      'services/fs/file-system.ts':
        "import { startTracing } from '../telemetry/setup.ts';\nexport const s = startTracing;\n",
      'services/driver/storage-driver.ts':
        "import { trace } from '@opentelemetry/api';\nexport const t = trace;\n",
      'services/telemetry/setup.ts': "export const startTracing = () => import('./sdk.ts');\n",
      'services/telemetry/sdk.ts': "export { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';\n",
      'load/trace.ts':
        "import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';\nexport const e = OTLPTraceExporter;\n",
    });
    try {
      const found = checkRules(importGraph(root), RULES)
        .map((v) => `${v.rule}: ${v.chain.join(' → ')}`)
        .sort();
      assert.deepEqual(found, [
        'the cores record spans through the API only: services/fs/file-system.ts → services/telemetry/setup.ts',
        'the cores record spans through the API only: services/fs/file-system.ts → services/telemetry/setup.ts → services/telemetry/sdk.ts',
        'the tracing SDK is set up in one place: load/trace.ts → npm:@opentelemetry/exporter-trace-otlp-http',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a relative import that names no file rather than skipping it', () => {
    const root = tree({ 'monolith/app.ts': "import { x } from './missing.ts';\nexport const y = x;\n" });
    try {
      assert.throws(() => importGraph(root), /monolith\/app\.ts: '\.\/missing\.ts'/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
