/**
 * The lab console: one page on loopback that shows the three styles side by side under a steady load
 * the page starts, each supervisor's process tree, and fault buttons that go through the load
 * generator's fault drivers. Updates are pushed once a second over Server-Sent Events; every asset is
 * served from here (uPlot bundled by esbuild when the console starts).
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { UsageError } from '../../cli/args.ts';
import type { ControlClientOptions } from '../../services/supervisor/control-client.ts';
import { PortInUseError } from '../lab.ts';
import { LiveLoad } from './live-load.ts';
import {
  CONSOLE_STYLES,
  type ConsoleState,
  renderComparison,
  renderLoadStatus,
  renderStyleNumbers,
  renderTimeline,
  renderTrees,
} from './render.ts';
import { SupervisorWatch } from './supervisor-watch.ts';
import { latestTraces, serveTraces } from './trace-waterfall.ts';
import { renderTraceSection } from './trace-waterfall-view.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The console's port when none is given (beside the styles' 8081–8083). */
export const CONSOLE_DEFAULT_PORT = 8084;
/** Pushed to every open page this often. */
const PUSH_INTERVAL_MS = 1000;

export type ConsoleOptions = {
  port: number;
  urls: Record<(typeof CONSOLE_STYLES)[number], string>;
  corpusDir: string;
  /** How to reach the supervisors' control API and events. */
  nats: ControlClientOptions;
  supervisorIds: string[];
  stateDir?: string;
  /** The lab's traces directory, whose newest traces the page draws (absent: tracing is off). */
  tracesDir?: string;
};

export type ConsoleServer = { url: string; close(): Promise<void> };

/** The fault buttons: per style, each component and the kinds that apply to it. */
export const FAULT_MENU: Record<
  (typeof CONSOLE_STYLES)[number],
  { target: string; label: string; kinds: string[] }[]
> = {
  monolith: [
    { target: 'lab:monolith', label: 'monolith process', kinds: ['kill', 'term', 'hang', 'slow'] },
    { target: 'monolith', label: 'monolith driver', kinds: ['poison'] },
  ],
  microkernel: [
    { target: 'microkernel:driver', label: 'driver', kinds: ['kill', 'term', 'hang', 'slow'] },
    { target: 'microkernel:fs', label: 'file server', kinds: ['kill', 'hang'] },
    { target: 'microkernel:gateway', label: 'gateway', kinds: ['kill'] },
    { target: 'microkernel', label: 'driver (poison request)', kinds: ['poison'] },
    { target: 'lab:microkernel', label: 'microkernel supervisor', kinds: ['kill'] },
    { target: 'lab', label: 'NATS (the lab restarts it)', kinds: ['nats'] },
  ],
  unikernel: [
    { target: 'lab:unikernel', label: 'unikernel image', kinds: ['kill', 'term', 'hang', 'slow'] },
    { target: 'unikernel', label: 'unikernel driver', kinds: ['poison'] },
  ],
};

const KIND_LABELS: Record<string, string> = {
  kill: 'kill (SIGKILL)',
  term: 'term (SIGTERM)',
  hang: 'hang (SIGSTOP for N s)',
  slow: 'slow (SIGUSR2 toggle)',
  poison: 'poison request',
  nats: 'NATS restart',
};

/** How long a hang or a slowdown lasts unless the page says otherwise. */
const DEFAULT_SECONDS: Record<string, number> = { hang: 3, slow: 5 };

async function bundleScript(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(HERE, 'page.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

function uplotCss(): Promise<string> {
  const require = createRequire(import.meta.url);
  return readFile(path.join(path.dirname(require.resolve('uplot')), 'uPlot.min.css'), 'utf8');
}

function faultForms(): string {
  return CONSOLE_STYLES.map((style) => {
    const rows = FAULT_MENU[style]
      .map(
        (c) =>
          `<div class="component"><span>${c.label} <code>${c.target}</code></span> ${c.kinds
            .map(
              (kind) =>
                `<form method="post" action="/fault" class="fault-form"><input type="hidden" name="target" value="${c.target}"><input type="hidden" name="kind" value="${kind}">${DEFAULT_SECONDS[kind] ? `<input type="hidden" name="for" value="${DEFAULT_SECONDS[kind]}">` : ''}<button type="submit" data-target="${c.target}" data-kind="${kind}" aria-label="${kind} ${c.label} (${c.target})">${KIND_LABELS[kind] ?? kind}</button></form>`,
            )
            .join(' ')}</div>`,
      )
      .join('');
    return `<section class="faults" aria-label="${style} faults"><h3>${style}</h3>${rows}</section>`;
  }).join('');
}

function page(state: ConsoleState, traces: string): string {
  const columns = CONSOLE_STYLES.map(
    (style) =>
      `<section class="column" data-style="${style}" aria-label="${style}"><h2>${style}</h2><div class="chart" id="chart-${style}" role="img" aria-label="${style}: ok/s, errors/s, p50 and p99 per second"></div><div class="numbers-box" id="numbers-${style}">${renderStyleNumbers(state, style)}</div></section>`,
  ).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kernel-styles lab console</title>
<link rel="stylesheet" href="/uplot.css"><link rel="stylesheet" href="/console.css">
</head><body>
<header><h1>kernel-styles lab console</h1><p>The same file service as a monolith, a microkernel and a unikernel, under the same load; break them and watch recovery.</p></header>
<main>
<section aria-labelledby="load-h"><h2 id="load-h">Load</h2>
<form method="post" action="/load" id="load-form">
<label>rate per style (req/s) <input name="rate" type="number" min="1" max="2000" value="${state.load?.rate ?? 100}"></label>
<label>mix <input name="mix" value="${state.load?.mix ?? 'small=90,medium=9,large=1'}"></label>
<button type="submit" name="action" value="start" id="load-start">start load</button>
<button type="submit" name="action" value="stop" id="load-stop">stop load</button>
</form>
<p id="load-status" role="status">${renderLoadStatus(state)}</p><p id="console-error" role="alert"></p></section>
<div class="columns">${columns}</div>
<section aria-labelledby="faults-h"><h2 id="faults-h">Faults</h2>
<p><label>hang for <input id="hang-seconds" type="number" min="1" max="60" value="${DEFAULT_SECONDS.hang}"> s</label> · <label>slow for <input id="slow-seconds" type="number" min="1" max="60" value="${DEFAULT_SECONDS.slow}"> s</label> (the fields apply with JavaScript; without it a hang lasts ${DEFAULT_SECONDS.hang} s)</p>
<div class="fault-columns">${faultForms()}</div></section>
<section aria-labelledby="timeline-h"><h2 id="timeline-h">Event timeline</h2><div id="timeline">${renderTimeline(state)}</div></section>
<section aria-labelledby="comparison-h"><h2 id="comparison-h">The comparison, measured</h2><div id="comparison">${renderComparison(state)}</div></section>
<section aria-labelledby="trees-h"><h2 id="trees-h">Process trees</h2><div id="trees">${renderTrees(state)}</div></section>
<section aria-labelledby="traces-h"><h2 id="traces-h">Traces</h2><div id="traces">${traces}</div></section>
</main>
<script id="initial-state" type="application/json">${JSON.stringify(state).replace(/</g, '\\u003c')}</script>
<script src="/console.js"></script>
</body></html>`;
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new UsageError('request body over 4 KiB');
  }
  return new URLSearchParams(body);
}

export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const [script, css, styles] = await Promise.all([
    bundleScript(),
    uplotCss(),
    readFile(path.join(HERE, 'console.css'), 'utf8'),
  ]);
  const load = new LiveLoad(
    CONSOLE_STYLES.map((name) => ({ name, url: options.urls[name] })),
    options.corpusDir,
    options.stateDir,
  );
  const clients = new Set<http.ServerResponse>();
  const state = (): ConsoleState => ({
    now: Date.now(),
    load: load.running,
    seconds: Object.fromEntries(CONSOLE_STYLES.map((s) => [s, load.seconds(s)])),
    totals: Object.fromEntries(CONSOLE_STYLES.map((s) => [s, load.totals(s)])),
    trees: [...watch.trees.values()],
    faults: load.faults,
  });
  const push = () => {
    if (clients.size === 0) return;
    const data = `data: ${JSON.stringify(state())}\n\n`;
    for (const res of clients) res.write(data);
  };
  const watch = await SupervisorWatch.start(options.supervisorIds, options.nats, () => {});
  const pusher = setInterval(push, PUSH_INTERVAL_MS);

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://console');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if (req.method === 'GET' && url.pathname === '/') {
        const traces = renderTraceSection(await latestTraces(options.tracesDir));
        return send(200, 'text/html; charset=utf-8', page(state(), traces));
      }
      if (await serveTraces(req, res, { dir: options.tracesDir, urls: options.urls })) return;
      if (req.method === 'GET' && url.pathname === '/console.js')
        return send(200, 'text/javascript; charset=utf-8', script);
      if (req.method === 'GET' && url.pathname === '/uplot.css') return send(200, 'text/css', css);
      if (req.method === 'GET' && url.pathname === '/console.css') return send(200, 'text/css', styles);
      if (req.method === 'GET' && url.pathname === '/favicon.ico') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (req.method === 'GET' && url.pathname === '/events') {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        res.write(`data: ${JSON.stringify(state())}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      if (req.method === 'POST' && (url.pathname === '/load' || url.pathname === '/fault')) {
        // Only this page may act: a cross-site form post would otherwise reach loopback.
        const origin = req.headers.origin;
        if (origin && origin !== `http://${req.headers.host}`) {
          return send(403, 'text/plain', `refused: a request from ${origin}, not from this console`);
        }
        const form = await readForm(req);
        let answer: unknown;
        if (url.pathname === '/load') {
          if (form.get('action') === 'stop') await load.stop();
          else await load.start(Number(form.get('rate') ?? 100), form.get('mix') || undefined);
          answer = load.running;
        } else {
          const forSeconds = Number(form.get('for') ?? 0);
          answer = await load.inject(
            form.get('target') ?? '',
            form.get('kind') ?? '',
            forSeconds > 0 ? forSeconds * 1000 : undefined,
          );
        }
        push();
        if (req.headers.accept?.includes('application/json'))
          return send(200, 'application/json', JSON.stringify(answer));
        res.writeHead(303, { location: '/' });
        res.end();
        return;
      }
      send(404, 'text/plain', `no such page: ${url.pathname}`);
    } catch (err) {
      const status = err instanceof UsageError ? 400 : 500;
      send(status, 'text/plain; charset=utf-8', (err as Error).message);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(
              `port ${options.port} (console) is already in use: stop what holds it or choose another with --console-port (or KSTYLES_CONSOLE_PORT)`,
            )
          : err,
      ),
    );
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      clearInterval(pusher);
      for (const res of clients) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await load.close();
      await watch.close();
    },
  };
}
