import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  bundleInventoryOf,
  CodeInventoryCache,
  inventoryOf,
  type LoadedScript,
  loadedScripts,
  npmPackageOf,
} from './code-inventory.ts';
import { credentialVariables, decodeCapabilities, inspectProcess } from './process-inspection.ts';
import {
  countFiles,
  otherMounts,
  registerSecurityMetrics,
  SECURITY_METRICS,
  SHELL_PATHS,
  securityFactsOf,
} from './security-metrics.ts';

const linux = process.platform === 'linux';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-security-metrics-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** A real nkey user seed's shape: SU and 56 base32 characters. */
const SEED = `SU${'A'.repeat(56)}`;

describe('decodeCapabilities', () => {
  it('names the bits of a /proc CapEff mask', () => {
    assert.deepEqual(decodeCapabilities('0000000000000000'), []);
    assert.deepEqual(decodeCapabilities('0000000000003000'), ['cap_net_admin', 'cap_net_raw']);
    const rootHere = decodeCapabilities('000001fffeffffff');
    assert.equal(rootHere.length, 40);
    assert.ok(!rootHere.includes('cap_sys_resource'), 'bit 24 is clear in that mask');
    assert.deepEqual(
      decodeCapabilities('0000020000000000'),
      ['cap_41'],
      'a bit past the table is named by number',
    );
  });
});

describe('credentialVariables', () => {
  it('names seeds, secrets by name and URLs with passwords, never other variables', () => {
    assert.deepEqual(
      credentialVariables({
        KSTYLES_NATS_SEED: SEED,
        ANY_NAME: SEED,
        GF_SECURITY_ADMIN_PASSWORD: 'x',
        API_TOKEN: 't',
        NATS_URL: 'nats://fs:hunter2@127.0.0.1:4222',
        KSTYLES_CORPUS_SEED: '1',
        PATH: '/usr/bin',
        EMPTY_PASSWORD: '',
        DB_PASS: 'p',
        GITHUB_TOKEN_FILE: '/run/secrets/token',
        // A name that only contains a secret's word is not one (tox sets this one).
        TOX_TESTENV_PASSENV: 'OPENBLAS_*',
        TOKENIZER_THREADS: '4',
      }),
      [
        'ANY_NAME',
        'API_TOKEN',
        'DB_PASS',
        'GF_SECURITY_ADMIN_PASSWORD',
        'GITHUB_TOKEN_FILE',
        'KSTYLES_NATS_SEED',
        'NATS_URL',
      ],
    );
  });
});

describe('inspectProcess (from /proc)', { skip: !linux && 'reads /proc' }, () => {
  it('sees a real process: its credentials, the data files it holds, its listening sockets, uid and capabilities', async () => {
    const data = path.join(tmp, 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, 'a.bin'), 'bytes');
    writeFileSync(path.join(tmp, 'log.txt'), '');
    const code = `const fs = require('node:fs'); const net = require('node:net');
      globalThis.held = [fs.openSync(${JSON.stringify(path.join(data, 'a.bin'))}, 'r'), fs.openSync(${JSON.stringify(path.join(tmp, 'log.txt'))}, 'r')];
      let n = 2; for (let i = 0; i < 2; i++) net.createServer().listen(0, '127.0.0.1', () => { if (--n === 0) console.log('ready'); });
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', code], {
      env: { PATH: process.env.PATH, KSTYLES_NATS_SEED: SEED, DB_PASSWORD: 'x' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await once(child.stdout!, 'data');
    const facts = inspectProcess(child.pid!, data);
    assert.equal(facts.pid, child.pid);
    assert.deepEqual(facts.credentials, ['DB_PASSWORD', 'KSTYLES_NATS_SEED']);
    assert.equal(facts.listeningSockets, 2);
    assert.equal(facts.openDataFiles, 1, 'the data file, not the log');
    assert.ok(facts.openRegularFiles >= 2);
    assert.ok(facts.threads >= 1);
    assert.equal(facts.uid, process.getuid!());
    assert.deepEqual(
      facts.capabilities,
      inspectProcess('self').capabilities,
      'a child keeps its parent capabilities',
    );
    assert.equal(inspectProcess(child.pid!).openDataFiles, undefined, 'no data root asked about');
  });
});

describe('the code inventory', () => {
  it('tells npm packages from own modules and built-ins', () => {
    assert.equal(npmPackageOf('/app/node_modules/express/index.js'), 'express');
    assert.equal(
      npmPackageOf('file:///a/node_modules/x/node_modules/@nats-io/nats-core/lib/a.js'),
      '@nats-io/nats-core',
    );
    assert.equal(npmPackageOf('node_modules/piscina/dist/index.js'), 'piscina');
    assert.equal(npmPackageOf('file:///app/services/fs/main.ts'), undefined);
    const inventory = inventoryOf([
      { url: 'node:internal/fs', bytes: 100 },
      { url: 'file:///app/main.ts', bytes: 10 },
      { url: '/app/node_modules/express/index.js', bytes: 20 },
      { url: '/app/node_modules/express/lib/router.js', bytes: 30 },
      { url: '/app/node_modules/@scope/pkg/a.js', bytes: 5 },
      { url: '', bytes: 7 },
    ]);
    assert.deepEqual(inventory, {
      own: { modules: 1, bytes: 10 },
      npm: { modules: 3, bytes: 55, packages: 2 },
      node: { modules: 1, bytes: 100 },
      bundled: false,
    });
  });

  it("counts a bundle's modules once across its outputs, and leaves out what tree-shaking dropped", () => {
    const bundle = bundleInventoryOf([
      {
        outputs: {
          'program.cjs': {
            inputs: {
              'unikernel/runtime/main.ts': { bytesInOutput: 100 },
              'services/contract/errors.ts': { bytesInOutput: 50 },
              'node_modules/piscina/dist/index.js': { bytesInOutput: 300 },
              'node_modules/unused/index.js': { bytesInOutput: 0 },
            },
          },
        },
      },
      {
        outputs: {
          'pool-worker.cjs': {
            inputs: {
              'services/contract/errors.ts': { bytesInOutput: 50 },
              'node_modules/piscina/dist/worker.js': { bytesInOutput: 40 },
            },
          },
        },
      },
    ]);
    assert.deepEqual(bundle, {
      own: { modules: 2, bytes: 200 },
      npm: { modules: 2, bytes: 340 },
      packages: ['piscina'],
    });
    const inventory = inventoryOf(
      [
        { url: 'node:fs', bytes: 9 },
        { url: '/app/program.cjs', bytes: 999 },
      ],
      bundle,
    );
    assert.deepEqual(inventory.own, bundle.own, 'the bundle script stands for its modules');
    assert.deepEqual(inventory.node, { modules: 1, bytes: 9 });
    assert.equal(inventory.bundled, true);
  });

  it('keeps every script any scan saw: V8 drops scripts nothing needs any more, the process still loaded them', async () => {
    const scans: LoadedScript[][] = [
      [
        { url: 'node:fs', bytes: 10 },
        { url: '/app/node_modules/once-used/index.js', bytes: 100 },
      ],
      [{ url: 'node:fs', bytes: 10 }],
    ];
    const cache = new CodeInventoryCache(undefined, 0, async () => scans.shift() ?? []);
    await cache.get();
    const later = await cache.get();
    assert.equal(scans.length, 0, 'both scans ran');
    assert.deepEqual(later.npm, { modules: 1, bytes: 100, packages: 1 });
    assert.deepEqual(later.node, { modules: 1, bytes: 10 });
  });

  it('lists the scripts V8 holds in this very process (this file, tsx from npm, node built-ins)', async () => {
    const scripts = await loadedScripts();
    assert.ok(
      scripts.some((s) => s.url.endsWith('security-metrics.test.ts')),
      'this test file',
    );
    const inventory = inventoryOf(scripts);
    assert.ok(inventory.npm.packages >= 2, 'tsx and prom-client at least');
    assert.ok(inventory.node.modules > 50);
    assert.ok(inventory.own.bytes > 1000);
  });
});

describe('counting a root filesystem', { skip: !linux && 'reads /proc' }, () => {
  it('counts files and bytes, symbolic links as files, and skips what is mounted elsewhere', async () => {
    const root = path.join(tmp, 'rootfs');
    mkdirSync(path.join(root, 'app'), { recursive: true });
    mkdirSync(path.join(root, 'data'), { recursive: true });
    writeFileSync(path.join(root, 'app', 'exe'), Buffer.alloc(1000));
    writeFileSync(path.join(root, 'etc-passwd'), 'root:x:0:0');
    writeFileSync(path.join(root, 'data', 'volume-file'), Buffer.alloc(5000));
    rmSync(path.join(root, 'link'), { force: true });
    symlinkSync('app/exe', path.join(root, 'link'));
    assert.deepEqual(await countFiles(root, new Set([path.join(root, 'data')])), { files: 3, bytes: 1010 });
    assert.ok((await otherMounts()).has('/proc'), '/proc is a mount of its own');
  });
});

describe('the kstyles_security_* gauges', { skip: !linux && 'reads /proc' }, () => {
  it('carry what this process is, and read back into the same facts', async () => {
    const data = path.join(tmp, 'served');
    mkdirSync(data, { recursive: true });
    const registry = new Registry();
    registerSecurityMetrics(registry, { dataDir: data });
    const text = await registry.metrics();
    assert.match(text, new RegExp(`^${SECURITY_METRICS.openDataFiles} 0$`, 'm'));
    const facts = securityFactsOf(text)!;
    const self = inspectProcess('self');
    assert.equal(facts.pid, process.pid);
    assert.equal(facts.uid, self.uid);
    assert.deepEqual(facts.capabilities, self.capabilities);
    assert.deepEqual(
      facts.shells,
      SHELL_PATHS.filter((file) => existsSync(file)),
    );
    assert.deepEqual(
      facts.writable.map((w) => w.place),
      ['root', 'etc', 'usr', 'tmp', 'code', 'data'],
    );
    assert.equal(facts.writable.find((w) => w.place === 'data')?.path, data);
    assert.ok(facts.code && facts.code.own.modules > 0 && facts.code.node.modules > 0);
    assert.equal(facts.image, undefined, 'no image outside a container');
    assert.equal(securityFactsOf('process_open_fds 3\n'), undefined, 'no gauges, no facts');
  });
});
