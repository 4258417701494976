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
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { UsageError } from '../../cli/args.ts';
import { PortInUseError } from '../../services/contract/errors.ts';
import { reachableUrl } from '../../services/contract/http-server.ts';
import type { ControlClientOptions } from '../../services/supervisor/control-client.ts';
import { MAX_CRASH_STARTS } from '../../services/supervisor/subjects.ts';
import {
  type FaultMenu,
  LAB_FAULT_MENU,
  renderFaultForms,
  renderFaultSettings,
  unavailableReason,
} from './fault-menu.ts';
import { HISTORY_SECONDS, LiveLoad, type LiveSecond } from './live-load.ts';
import {
  CONSOLE_STYLES,
  type ConsoleDelta,
  type ConsoleState,
  type ConsoleUpdate,
  renderComparison,
  renderLoadStatus,
  renderStyleNumbers,
  renderSupervisorEvents,
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
/** The supervisors' events the page lists. */
const EVENTS_SHOWN = 20;

export type ConsoleOptions = {
  port: number;
  /** The flag that chose `port`, named by the error when it is taken (default `--port`, kstyles console's). */
  portFlag?: string;
  /** The address to listen on; default 127.0.0.1 (0.0.0.0 in a container). */
  host?: string;
  urls: Record<(typeof CONSOLE_STYLES)[number], string>;
  corpusDir: string;
  /** How to reach the supervisors' control API and events (the fault drivers too). */
  nats: ControlClientOptions;
  supervisorIds: string[];
  /** The fault buttons of the place it runs; default the local lab's. */
  menu?: FaultMenu;
  /** The Docker engine's socket, for container faults. */
  dockerSocket?: string;
  /** The lab's traces directory, whose newest traces the page draws (absent: tracing is off). */
  tracesDir?: string;
};

export type ConsoleServer = {
  url: string;
  /**
   * Server-Sent Events written so far, over every open page, and the time spent building and writing
   * them (ms, on this process's event loop): what the open pages cost the process.
   */
  pushed(): { messages: number; bytes: number; busyMs: number };
  /** The live load this console drives (its send lag is the generator's health). */
  load: LiveLoad;
  close(): Promise<void>;
};

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

function page(state: ConsoleState, menu: FaultMenu, traces: string): string {
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
${renderFaultSettings(menu)}
<div class="fault-columns">${renderFaultForms(menu)}</div></section>
<section aria-labelledby="timeline-h"><h2 id="timeline-h">Event timeline</h2><div id="timeline">${renderTimeline(state)}</div></section>
<section aria-labelledby="comparison-h"><h2 id="comparison-h">The comparison, measured</h2><div id="comparison">${renderComparison(state)}</div></section>
<section aria-labelledby="trees-h"><h2 id="trees-h">Process trees</h2><div id="trees">${renderTrees(state)}</div></section>
<section aria-labelledby="events-h"><h2 id="events-h">Supervisor events</h2><div id="events">${renderSupervisorEvents(state)}</div></section>
<section aria-labelledby="traces-h"><h2 id="traces-h">Traces</h2><div id="traces">${traces}</div></section>
</main>
<script id="initial-state" type="application/json">${JSON.stringify(state).replace(/</g, '\\u003c')}</script>
<script src="/console.js"></script>
</body></html>`;
}

/** The `times` field of a crash loop: a whole number of starts, or absent. */
function crashStarts(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  const starts = Number(raw);
  if (!Number.isInteger(starts) || starts < 1 || starts > MAX_CRASH_STARTS) {
    throw new UsageError(`a crash loop needs 1…${MAX_CRASH_STARTS} failing starts, got '${raw}'`);
  }
  return starts;
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
  const menu = options.menu ?? LAB_FAULT_MENU;
  const host = options.host ?? '127.0.0.1';
  const load = new LiveLoad(
    CONSOLE_STYLES.map((name) => ({ name, url: options.urls[name] })),
    options.corpusDir,
    { control: options.nats, ...(options.dockerSocket ? { dockerSocket: options.dockerSocket } : {}) },
  );
  const clients = new Set<http.ServerResponse>();
  const state = (): ConsoleState => ({
    now: Date.now(),
    load: load.running,
    seconds: Object.fromEntries(CONSOLE_STYLES.map((s) => [s, load.seconds(s)])),
    totals: Object.fromEntries(CONSOLE_STYLES.map((s) => [s, load.totals(s)])),
    trees: [...watch.trees.values()],
    events: watch.events.slice(-EVENTS_SHOWN).reverse(),
    faults: load.faults,
  });
  const pushed = { messages: 0, bytes: 0, busyMs: 0 };
  const pushTo = (res: http.ServerResponse, data: string) => {
    res.write(data);
    pushed.messages++;
    pushed.bytes += Buffer.byteLength(data);
  };
  const message = (update: ConsoleUpdate) => `data: ${JSON.stringify(update)}\n\n`;
  /** What the previous push carried: each style's last second, and the trees' and events' version. */
  const sent = { lastAt: {} as Record<string, number>, watchVersion: -1 };
  /** Only what changed since the previous push: a page's charts keep their own history. */
  const delta = (): ConsoleDelta => {
    const seconds: Record<string, LiveSecond[]> = {};
    for (const style of CONSOLE_STYLES) {
      const history = load.seconds(style);
      const after = sent.lastAt[style] ?? Number.NEGATIVE_INFINITY;
      let from = history.length;
      while (from > 0 && history[from - 1]!.at > after) from--;
      seconds[style] = history.slice(from);
      if (history.length > 0) sent.lastAt[style] = history.at(-1)!.at;
    }
    const changed = watch.version !== sent.watchVersion;
    sent.watchVersion = watch.version;
    const now = state();
    return {
      now: now.now,
      load: now.load,
      totals: now.totals,
      faults: now.faults,
      seconds,
      keep: HISTORY_SECONDS,
      ...(changed ? { trees: now.trees, events: now.events } : {}),
    };
  };
  const push = () => {
    if (clients.size === 0) return;
    const began = performance.now();
    const data = message({ full: false, delta: delta() });
    for (const res of clients) pushTo(res, data);
    pushed.busyMs += performance.now() - began;
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
        return send(200, 'text/html; charset=utf-8', page(state(), menu, traces));
      }
      if (await serveTraces(req, res, { dir: options.tracesDir, urls: options.urls })) return;
      if (req.method === 'GET' && url.pathname === '/console.js')
        return send(200, 'text/javascript; charset=utf-8', script);
      if (req.method === 'GET' && url.pathname === '/uplot.css') return send(200, 'text/css', css);
      if (req.method === 'GET' && url.pathname === '/console.css') return send(200, 'text/css', styles);
      if (req.method === 'GET' && url.pathname === '/healthz') return send(200, 'text/plain', 'ok\n');
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
        pushTo(res, message({ full: true, state: state() }));
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
          const target = form.get('target') ?? '';
          const kind = form.get('kind') ?? '';
          const unavailable = unavailableReason(menu, target, kind);
          if (unavailable) throw new UsageError(`${kind} on ${target} is not available here: ${unavailable}`);
          const forSeconds = Number(form.get('for') ?? 0);
          answer = await load.inject(
            target,
            kind,
            forSeconds > 0 ? forSeconds * 1000 : undefined,
            crashStarts(form.get('times')),
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
  /** What runs besides the HTTP server: stopped on close, and when the server cannot listen. */
  const release = async () => {
    clearInterval(pusher);
    await load.close();
    await watch.close();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(
              `port ${options.port} (console) is already in use: stop what holds it or choose another with ${options.portFlag ?? '--port'} (or KSTYLES_CONSOLE_PORT)`,
            )
          : err,
      ),
    );
    server.listen(options.port, host, () => resolve());
  }).catch(async (err: unknown) => {
    // Left running, the push timer and the NATS watch would keep a process that failed alive.
    await release();
    throw err;
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: reachableUrl(host, port, '/'),
    pushed: () => ({ ...pushed }),
    load,
    close: async () => {
      for (const res of clients) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await release();
    },
  };
}
