/**
 * The console in a real browser (Debian's Chromium through playwright-core) against a real lab: real
 * nats-server, the three styles, both supervisors, real signals. Without Chromium this fails, naming
 * how to install it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { KSTYLES_BIN } from '../../cli/kit/repo.ts';
import { NATS_KEY_ENV } from '../../services/microkernel/nats-config.ts';
import type { Lab } from '../lab.ts';
import { launchChromium } from './browser.ts';
import type { ConsoleServer } from './console-server.ts';
import { startScratchLab } from './lab-console.ts';
import type { ConsoleUpdate } from './render.ts';

let scratch: Awaited<ReturnType<typeof startScratchLab>> | undefined;
let lab: Lab;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
const outside: string[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-console-test-'));
// The lab's microkernel reads it (kstyles microkernel --restart-period-ms): a crash loop of more than 5
// restarts then makes its supervisor give up however slowly a busy machine starts each driver.
process.env['KSTYLES_RESTART_PERIOD_MS'] = '60000';

before(async () => {
  browser = await launchChromium();
  scratch = await startScratchLab(path.join(dir, 'data'));
  lab = scratch.lab;
  server = scratch.server;
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const origin = new URL(server.url).origin;
  page.on('request', (r) => {
    if (new URL(r.url()).origin !== origin) outside.push(r.url());
  });
  page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
  await page.goto(server.url);
});

after(async () => {
  await browser?.close();
  await scratch?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cell = (supervisor: string, child: string, column: 'pid' | 'restarts' | 'state') =>
  page.locator(`table[data-supervisor="${supervisor}"] tr[data-child="${child}"] td.${column}`);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; the page says: ${await page.locator('#load-status').textContent()} ${await page.locator('#console-error').textContent()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A table of the page as lines of cells, for failure messages. */
async function tableText(selector: string): Promise<string> {
  const lines: string[] = [];
  for (const row of await page.locator(`${selector} tr`).all())
    lines.push((await row.locator('th, td').allTextContents()).join(' | '));
  return lines.join('\n');
}

/** The recovery cell of the newest fault of this kind and target, once its window has closed. */
async function recoveryOf(target: string, kind: string): Promise<string> {
  const row = page.locator(`#timeline-table tr.closed[data-target="${target}"][data-kind="${kind}"]`);
  await waitFor(`the recovery of ${kind} ${target}`, async () => (await row.count()) > 0, 40_000);
  return (await row.first().locator('td.recovery').textContent()) ?? '';
}

test('renders the three styles and each supervisor’s children with their real PIDs', async () => {
  for (const style of ['monolith', 'microkernel', 'unikernel']) {
    assert.equal(await page.locator(`section.column[data-style="${style}"] h2`).textContent(), style);
  }
  await waitFor('both process trees', async () => (await page.locator('table.tree td.pid').count()) >= 7);
  for (const child of lab.supervisor.status().children) {
    assert.equal(await cell('lab', child.name, 'pid').textContent(), String(child.pid), child.name);
  }
  for (const child of ['driver', 'fs', 'gateway']) {
    const pid = Number(await cell('microkernel', child, 'pid').textContent());
    assert.ok(pid > 0, `${child} has a PID`);
    assert.doesNotThrow(() => process.kill(pid, 0), `PID ${pid} of ${child} is a running process`);
  }
});

test('kill on the microkernel driver under load: a new PID, one restart, no failed request', async () => {
  await page.fill('input[name="rate"]', '20');
  await page.click('#load-start');
  await waitFor(
    'load on the page',
    async () => Number(await page.locator('#numbers-microkernel td.ok').textContent()) > 0,
  );
  const before = await cell('microkernel', 'driver', 'pid').textContent();
  await page.click('button[data-target="microkernel:driver"][data-kind="kill"]');
  await waitFor(
    'a new driver PID with restarts 1',
    async () =>
      (await cell('microkernel', 'driver', 'pid').textContent()) !== before &&
      (await cell('microkernel', 'driver', 'restarts').textContent()) === '1',
  );
  const recovery = await recoveryOf('microkernel:driver', 'kill');
  assert.match(recovery, /^microkernel: 0\/\d+ failed/, recovery);
  // On failure, the page's counts by error class and the supervisors' events say which and why.
  assert.equal(
    await page.locator('#numbers-microkernel td.failed').textContent(),
    '0',
    `${await tableText('#numbers-microkernel')}\n${await tableText('#events-table')}`,
  );
});

test('pushes carry the whole state once, then only the seconds completed since the previous push', async () => {
  const res = await fetch(new URL('/events', server.url));
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const updates: ConsoleUpdate[] = [];
  let buffer = '';
  while (updates.length < 4) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      updates.push(JSON.parse(buffer.slice('data: '.length, end)) as ConsoleUpdate);
      buffer = buffer.slice(end + 2);
    }
  }
  await reader.cancel();
  const [first, ...rest] = updates;
  assert.ok(first?.full, 'the first push is the whole state');
  assert.ok(first.state.seconds['microkernel']!.length >= 2, 'with the charted history');
  assert.equal(rest.length, 3);
  // Every push sends only seconds after the previous push's, none twice however long the machine stalled
  // between two pushes (a count per push would depend on that). The first one after the whole state may
  // repeat seconds that state already held (the pushes keep one mark for every page; a page drops them).
  const styles = ['monolith', 'microkernel', 'unikernel'];
  const inFull = new Map(
    styles.map((style) => [style, new Set(first.state.seconds[style]?.map((s) => s.at))]),
  );
  const lastInFull = new Map(styles.map((style) => [style, Math.max(...inFull.get(style)!)]));
  const lastSent = new Map<string, number>();
  for (const [n, update] of rest.entries()) {
    assert.equal(update.full, false);
    if (update.full) continue;
    for (const style of styles) {
      const sent = (update.delta.seconds[style] ?? []).map((s) => s.at);
      const after = n === 0 ? Number.NEGATIVE_INFINITY : lastSent.get(style)!;
      assert.ok(
        sent.every((at, i) => at > (i === 0 ? after : sent[i - 1]!)),
        `${style}, push ${n + 1}: only the seconds completed since the previous push, in order: ${sent} after ${after}`,
      );
      if (n === 0)
        assert.ok(
          sent.every((at) => at > lastInFull.get(style)! || inFull.get(style)!.has(at)),
          `${style}, push 1: a second before the whole state's last is one it held: ${sent}`,
        );
      lastSent.set(style, sent.at(-1) ?? lastSent.get(style) ?? lastInFull.get(style)!);
    }
  }
  const added = rest.flatMap((u) => (u.full ? [] : (u.delta.seconds['microkernel'] ?? [])));
  assert.ok(added.length >= 1, 'new seconds arrive while the load runs');
});

test('poison on the monolith: errors rise, it serves again, the timeline shows the recovery', async () => {
  await page.click('button[data-target="monolith"][data-kind="poison"]');
  const recovery = await recoveryOf('monolith', 'poison');
  const match = /^monolith: (\d+)\/(\d+) failed, first success after failure ([\d.]+) s/.exec(recovery);
  assert.ok(match, `recovery measured: ${recovery}`);
  assert.ok(Number(match[1]) > 0, 'requests failed while the monolith was down');
  assert.ok(Number(await page.locator('#numbers-monolith td.failed').textContent()) > 0);
  await waitFor(
    'the monolith restarted',
    async () => Number(await cell('lab', 'monolith', 'restarts').textContent()) >= 1,
  );
  await waitFor(
    'the monolith serving again',
    async () => Number(await page.locator('#numbers-monolith td.ok').textContent()) > 0,
  );
  await page.click('#load-stop');
});

test('crash loop on the microkernel driver: restarts climb with growing backoff, then it serves again', async () => {
  const restarts = () => cell('microkernel', 'driver', 'restarts').textContent().then(Number);
  const before = await restarts();
  await page.fill('#crashloop-starts', '2');
  await page.click('button[data-target="microkernel:driver"][data-kind="crashloop"]');
  await waitFor(
    'the driver up again after the kill and two failed starts',
    async () =>
      (await restarts()) === before + 3 &&
      ((await cell('microkernel', 'driver', 'state').textContent()) ?? '').startsWith('up'),
  );
  const driverEvents = (type: string) =>
    page.locator(
      `#events-table tr[data-supervisor="microkernel"][data-service="driver"][data-type="${type}"]`,
    );
  assert.equal(
    await driverEvents('started')
      .filter({ hasText: /crashloop: start \d of 2/ })
      .count(),
    2,
  );
  assert.deepEqual(
    await driverEvents('exited')
      .allTextContents()
      .then((rows) => rows.slice(0, 3).map((r) => /code 70|SIGKILL/.exec(r)?.[0])),
    ['code 70', 'code 70', 'SIGKILL'],
  );
  assert.ok(
    (await driverEvents('restarting')
      .filter({ hasText: /backoff [\d.]+ s/ })
      .count()) >= 2,
  );
  const fault = page.locator('#timeline-table tr[data-target="microkernel:driver"][data-kind="crashloop"]');
  assert.match(
    (await fault.first().textContent()) ?? '',
    /crashloop 2 starts.*next 2 start\(s\) exit at once/,
  );
});

test('a crash loop past the restart intensity: the microkernel supervisor gives up, the lab restarts its tree', async () => {
  const labRestarts = Number(await cell('lab', 'microkernel', 'restarts').textContent());
  const supervisorPid = lab.supervisor.status().children.find((c) => c.name === 'microkernel')!.pid;
  await page.fill('#crashloop-starts', '10');
  await page.click('button[data-target="microkernel:driver"][data-kind="crashloop"]');
  await waitFor(
    'the give-up in the supervisor events',
    async () =>
      (await page.locator('#events-table tr[data-supervisor="microkernel"][data-type="gave_up"]').count()) >
      0,
    60_000,
  );
  await waitFor(
    'the lab restarting the microkernel tree',
    async () => Number(await cell('lab', 'microkernel', 'restarts').textContent()) === labRestarts + 1,
    60_000,
  );
  await waitFor(
    'a new microkernel tree, its driver up with no restart',
    async () => {
      const tree = page.locator('table.tree[data-supervisor="microkernel"]:not(.stale)');
      return (
        (await tree.count()) === 1 &&
        !((await tree.locator('caption').textContent()) ?? '').includes(`PID ${supervisorPid},`) &&
        (await cell('microkernel', 'driver', 'restarts').textContent()) === '0' &&
        ((await cell('microkernel', 'driver', 'state').textContent()) ?? '').startsWith('up')
      );
    },
    60_000,
  );
});

/** `kstyles console` beside the lab, as the console's NATS user; `output()` is what it printed so far. */
function consoleBeside(port: number | string) {
  const child = spawn(
    process.execPath,
    [
      KSTYLES_BIN,
      'console',
      ...Object.entries(lab.urls).flatMap(([style, url]) => ['--target', `${style}=${url}`]),
      '--data',
      path.join(dir, 'data'),
      '--nats',
      lab.natsUrl,
      '--port',
      String(port),
    ],
    {
      env: { ...process.env, [NATS_KEY_ENV.seed('console')]: lab.consoleNats.seed! },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  return { child, output: () => output };
}

test('kstyles console on a port already taken says so and exits, leaving nothing running', async (t) => {
  const { child, output } = consoleBeside(new URL(server.url).port);
  t.after(() => child.kill('SIGKILL'));
  // Its push timer and NATS watch, left running, would keep the failed process alive: it would print and hang.
  const exited = await Promise.race([
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    ),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000).unref()),
  ]);
  assert.ok(exited, `kstyles console did not exit after failing; it printed: ${output()}`);
  assert.equal(exited.signal, null);
  assert.notEqual(exited.code, 0);
  assert.match(
    output(),
    /port \d+ \(console\) is already in use: stop what holds it or choose another with --port \(or KSTYLES_CONSOLE_PORT\)/,
  );
});

test('kstyles console beside a running stack: its own NATS user, microkernel faults work, container kills say why not', async (t) => {
  const { child, output: printed } = consoleBeside(0);
  t.after(() => child.kill('SIGTERM'));
  await waitFor('kstyles console to print its URL', async () =>
    /http:\/\/127\.0\.0\.1:\d+\//.test(printed()),
  );
  const output = printed();
  const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)![1]!;
  assert.match(output, /container kills off: compose does not mount the Docker socket/);
  const other = await browser.newPage();
  t.after(() => other.close());
  await other.goto(url);
  await other.locator('table.tree[data-supervisor="microkernel"] td.pid').first().waitFor();
  assert.equal(await other.locator('table.tree[data-supervisor="lab"]').count(), 0, 'only the microkernel');
  for (const target of ['docker:monolith', 'docker:unikernel', 'docker:microkernel', 'docker:nats']) {
    const button = other.locator(`button[data-target="${target}"][data-kind="kill"]`);
    assert.equal(await button.isDisabled(), true, target);
    assert.match((await button.getAttribute('title')) ?? '', /Docker socket/);
  }
  assert.equal(await other.locator('button[data-target="unikernel"][data-kind="poison"]').isDisabled(), true);
  const refused = await fetch(new URL('/fault', url), {
    method: 'POST',
    body: new URLSearchParams({ target: 'docker:monolith', kind: 'kill' }),
  });
  assert.equal(refused.status, 400);
  assert.match(await refused.text(), /kill on docker:monolith is not available here: compose does not mount/);
  // The crash loop through the microkernel's supervisor, as the console's NATS user.
  const driverRestarts = () => cell('microkernel', 'driver', 'restarts').textContent().then(Number);
  const before = await driverRestarts();
  await other.fill('#crashloop-starts', '1');
  await other.click('button[data-target="microkernel:driver"][data-kind="crashloop"]');
  await waitFor('the driver up again after the kill and one failed start', async () => {
    const row = other.locator('table.tree[data-supervisor="microkernel"] tr[data-child="driver"]');
    return (
      Number(await row.locator('td.restarts').textContent()) === before + 2 &&
      ((await row.locator('td.state').textContent()) ?? '').startsWith('up')
    );
  });
});

test('the page makes no request outside its own origin', () => {
  assert.deepEqual(outside, []);
});
