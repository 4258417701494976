import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NatsIsolation } from '../services/contract/isolation.ts';
import { createHistogram, encodeHistogram } from './histogram.ts';
import { renderHtml } from './report-html.ts';
import { renderMarkdown } from './report-md.ts';
import type { MeasuredSecurity } from './security-facts.ts';
import { securityFindings, securityLines } from './security-report.ts';
import { seedComparison } from './seed-comparison.ts';
import type { LoadResults, TargetFacts } from './types.ts';
import { emptyOutcomeCounts } from './types.ts';

const parser: MeasuredSecurity = {
  sources: ['proc', 'metrics'],
  pid: 4242,
  uid: 0,
  capabilities: ['cap_chown', 'cap_kill', 'cap_net_raw', 'cap_sys_admin'],
  noNewPrivs: false,
  threads: 12,
  openFds: 27,
  listeningSockets: 1,
  openRegularFiles: 3,
  openDataFiles: 2,
  credentials: [],
  writable: [
    { place: 'root', path: '/', writable: true },
    { place: 'tmp', path: '/tmp', writable: true },
    { place: 'data', path: '/data', writable: false },
  ],
  shells: ['/bin/sh'],
  code: {
    own: { modules: 29, bytes: 200_000 },
    npm: { modules: 228, bytes: 900_000, packages: 74 },
    node: { modules: 196, bytes: 2_500_000 },
    bundled: false,
  },
};

const isolation = (unexpected: string[] = []): NatsIsolation => ({
  server: 'nats://127.0.0.1:4222',
  attemptsPerRole: 21,
  untried: [],
  roles: [
    {
      role: 'gateway',
      allowed: 2 + unexpected.length,
      refused: 19 - unexpected.length,
      expectedAllowed: 2,
      expectedRefused: 19,
      unexpectedAllowed: unexpected,
      unexpectedRefused: [],
    },
  ],
  anonymous: 'refused',
  stranger: 'refused',
  at: '2026-01-01T00:00:00.000Z',
  ms: 900,
});

function results(facts: Record<string, TargetFacts>): LoadResults {
  const empty = encodeHistogram(createHistogram());
  const target = (name: string) => ({
    name,
    url: `http://127.0.0.1/${name}`,
    sent: 0,
    completed: 0,
    outcomes: emptyOutcomeCounts(),
    availability: 1,
    throughput: 0,
    bytes: 0,
    latency: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
    serviceTime: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
    sendLag: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
    histograms: { latency: empty, serviceTime: empty, sendLag: empty },
    timeline: [],
    errorSamples: [],
  });
  return {
    version: 1,
    tool: 'kstyles-load',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1000,
    rate: 1,
    connections: 1,
    seed: 1,
    timeoutMs: 5000,
    mix: 'small',
    corpus: { dir: '/c', files: 1, seed: 1 },
    targets: Object.keys(facts).map(target),
    faults: [],
    generator: { timeline: [], eventLoop: target('g').latency, warnings: [] },
    facts,
  };
}

describe("the Security row's cells", () => {
  it('says in numbers what a monolith-like parser is, holds and may do', () => {
    const lines = securityLines({
      security: parser,
      hostile: { tried: 51, refused: 51, leaked: 0, unexpected: [] },
    });
    assert.deepEqual(lines, [
      'request parser (pid 4242): uid 0 (root), 4 capabilities, no_new_privs off',
      'may write 2 of 3 places checked (/, /tmp); a shell to exec (/bin/sh)',
      'code in its address space: 257 modules, 1.0 MiB (29 own, 228 from 74 npm packages); + 196 Node built-ins (2.4 MiB)',
      'holds 1 listening TCP socket, 27 open fds, 0 credentials',
      'isolation: 1 address space, 0 process boundaries from parser to driver: the parser itself holds 2 data files open; 12 threads share it',
      'runs here as a host process (no image)',
      'hostile requests: 51 tried, 51 refused, 0 leaked',
    ]);
  });

  it('counts process boundaries of a microkernel and its NATS isolation; an unexpected allow is loud', () => {
    const microkernel: MeasuredSecurity = {
      ...parser,
      openDataFiles: 0,
      credentials: ['KSTYLES_NATS_SEED'],
      processes: [
        { name: 'nats', pid: 10 },
        { name: 'driver', pid: 11 },
        { name: 'fs', pid: 12 },
        { name: 'gateway', pid: 13 },
      ],
      isolation: isolation(['subscribe >: read everything']),
    };
    const lines = securityLines({ security: microkernel });
    assert.ok(
      lines.includes(
        'isolation: 2 process boundaries from parser to driver (gateway 13 → fs 12 → driver 11); 0 data files open in the parser',
      ),
      lines.join('\n'),
    );
    assert.ok(
      lines.some(
        (l) => /\*\*1 UNEXPECTED ALLOW\*\*/.test(l) && /no credentials refused, unknown key refused/.test(l),
      ),
    );
    assert.ok(lines.includes('holds 1 listening TCP socket, 27 open fds, 1 credential (KSTYLES_NATS_SEED)'));
    const report = results({ microkernel: { security: microkernel } });
    assert.deepEqual(securityFindings(report), [
      'microkernel: NATS role gateway may subscribe >: read everything',
    ]);
    const md = renderMarkdown(report);
    assert.match(md, /> \*\*SECURITY FINDINGS\*\*: microkernel: NATS role gateway may subscribe >/);
    assert.match(
      md,
      /\| gateway \| 3 \(design 2\) \| 18 \(design 19\) \| subscribe >: read everything \| 0 \|/,
    );
    const html = renderHtml(report);
    assert.match(html, /<div class="banner loss">SECURITY FINDINGS:/);
    assert.match(html, /<b class="warn">1 UNEXPECTED ALLOW<\/b>/);
    assert.match(html, /<svg class="chart"[^>]*aria-label="attack surface per style"/);
    assert.match(html, /process boundaries, parser → driver.*microkernel 2/s);
    const withImage = renderHtml(
      results({ microkernel: { security: microkernel }, unikernel: { security: parser, fileCount: 11 } }),
    );
    assert.match(withImage, /microkernel: a host process here, no image/);
  });

  it("shows a bundle's counts and an image: counted in the container, or from the build beside a host process", () => {
    const bundled: MeasuredSecurity = {
      ...parser,
      sources: ['metrics'],
      code: { ...parser.code!, bundled: true },
      image: { name: 'kstyles-unikernel', files: 11, bytes: 92_000_000 },
      shells: [],
    };
    const lines = securityLines({ security: bundled });
    assert.ok(lines.some((l) => l.endsWith('in one bundle; + 196 Node built-ins (2.4 MiB)')));
    assert.ok(
      lines.includes('image kstyles-unikernel (counted in the container): 11 files, 87.7 MiB, no shell'),
    );
    assert.ok(
      securityLines({ security: parser, fileCount: 11, imageBytes: 92_000_000, hasShell: false }).includes(
        'runs here as a host process (no image); its image (from the build): 11 files, 87.7 MiB, no shell',
      ),
    );
  });

  it('puts the lines next to the seed claim, and says when nothing was measured', () => {
    const row = seedComparison(results({ monolith: { security: parser } })).find(
      (r) => r.key === 'security',
    )!;
    assert.equal(row.cells.monolith.claim, 'Lower (large attack surface)');
    assert.equal(
      row.cells.monolith.measured[0],
      'request parser (pid 4242): uid 0 (root), 4 capabilities, no_new_privs off',
    );
    assert.deepEqual(row.cells.unikernel.measured, [
      'not measured (no /metrics gauges, not on this machine, no --facts)',
    ]);
    const compose = seedComparison(
      results({ microkernel: { security: { ...parser, sources: ['metrics'] } } }),
    );
    assert.match(
      compose.find((r) => r.key === 'security')!.cells.microkernel.measured.at(-1)!,
      /^NATS isolation: not measured from here \(no runtime state of its supervisor here; pass --nats URL with KSTYLES_NATS_SUPERVISOR_SEED set\)$/,
    );
  });

  it('finds a leak', () => {
    assert.deepEqual(
      securityFindings(
        results({ unikernel: { hostile: { tried: 51, refused: 50, leaked: 1, unexpected: [] } } }),
      ),
      ['unikernel: 1 hostile request leaked (see results.json)'],
    );
  });
});
