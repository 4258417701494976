import type { LoadProgress, LoadResults, SenderPriority } from './types.ts';
import { formatCount, formatMicros, formatMs, formatPercent } from './units.ts';

type Out = { write(text: string): unknown; isTTY?: boolean };

const ansi = (on: boolean) => ({
  red: (s: string) => (on ? `\x1b[31m${s}\x1b[39m` : s),
  boldRed: (s: string) => (on ? `\x1b[1;31m${s}\x1b[22;39m` : s),
  green: (s: string) => (on ? `\x1b[32m${s}\x1b[39m` : s),
  yellow: (s: string) => (on ? `\x1b[33m${s}\x1b[39m` : s),
  dim: (s: string) => (on ? `\x1b[2m${s}\x1b[22m` : s),
  bold: (s: string) => (on ? `\x1b[1m${s}\x1b[22m` : s),
});

function bar(ratio: number, width = 28): string {
  const full = Math.round(Math.min(1, Math.max(0, ratio)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/**
 * The live terminal view: redraws in place on a TTY; elsewhere prints a plain line every few seconds
 * (logs and CI output stay readable).
 */
export function createLiveView(
  out: Out,
  plainEverySeconds = 5,
): { update(p: LoadProgress): void; done(): void } {
  const tty = !!out.isTTY;
  const c = ansi(tty);
  let drawn = 0;
  let lastPlain = -plainEverySeconds * 1000;
  let faultsShown = 0;
  return {
    update(p) {
      const lines: string[] = [];
      const pct = p.elapsedMs / p.durationMs;
      lines.push(
        p.warmingUp
          ? `${bar(0)} warming up (connections, code paths): not counted`
          : `${bar(pct)} ${(p.elapsedMs / 1000).toFixed(1)}s / ${(p.durationMs / 1000).toFixed(0)}s`,
      );
      const width = Math.max(6, ...p.targets.map((t) => t.name.length));
      for (const t of p.targets) {
        const errors = t.errors > 0 ? c.yellow(`errors ${formatCount(t.errors)}`) : c.green('errors 0');
        const loss = t.dataLoss > 0 ? `  ${c.boldRed(`DATA LOSS ${formatCount(t.dataLoss)}`)}` : '';
        lines.push(
          `  ${t.name.padEnd(width)}  ${t.rate.toFixed(0).padStart(6)} resp/s  p99 ${(t.p99 > 0 ? formatMicros(t.p99) : '—').padStart(8)}  sent ${formatCount(t.sent).padStart(8)}  in flight ${String(t.inFlight).padStart(5)}  ${errors}${loss}`,
        );
      }
      const newFaults = p.faults.slice(faultsShown);
      if (p.behind) lines.push(c.yellow(`  ⚠ ${p.behind}`));
      if (tty) {
        let text = drawn > 0 ? `\x1b[${drawn}A` : '';
        for (const f of newFaults) {
          // Printed once the driver has answered, above the live block.
          if (!f.message) break;
          text += `\x1b[2K  ${c.bold(`fault @${(f.firedAtMs / 1000).toFixed(1)}s`)} ${f.kind} ${f.target}: ${f.ok ? f.message : c.red(f.message)}\n`;
          faultsShown++;
        }
        text += lines.map((l) => `\x1b[2K${l}\n`).join('');
        drawn = lines.length;
        out.write(text);
      } else {
        for (const f of newFaults) {
          if (!f.message) break;
          out.write(
            `fault @${(f.firedAtMs / 1000).toFixed(1)}s ${f.kind} ${f.target}: ${f.ok ? '' : 'FAILED '}${f.message}\n`,
          );
          faultsShown++;
        }
        if (p.elapsedMs - lastPlain >= plainEverySeconds * 1000 || p.elapsedMs >= p.durationMs) {
          if (p.elapsedMs - lastPlain < 1) return;
          lastPlain = p.elapsedMs;
          out.write(`${lines.join('\n')}\n`);
        }
      }
    },
    done() {
      drawn = 0;
    },
  };
}

/**
 * A target that answered nothing, every request refused or timed out: most likely not running, or not
 * at that URL. Said in words, as a row of zeros under a table is easy to read past.
 */
export function unreachableNote(t: LoadResults['targets'][number]): string | null {
  const o = t.outcomes;
  if (t.sent === 0 || o.ok > 0 || o['4xx'] + o['5xx'] + o.reset + o.data_loss > 0) return null;
  const how =
    o.timeout === 0 ? 'refused the connection' : o.refused === 0 ? 'timed out' : 'was refused or timed out';
  return `${t.name} answered none of its ${formatCount(t.sent)} requests: every one ${how}. Is it running at ${t.url}? Start the lab with 'kstyles up', or check --target.`;
}

/** The end-of-run table for the terminal. */
export function formatSummary(results: LoadResults, color: boolean): string {
  const c = ansi(color);
  const head = [
    'target',
    'sent',
    'ok/s',
    'avail',
    'p50',
    'p90',
    'p99',
    'p99.9',
    'max',
    'p99 uncorr',
    '4xx',
    '5xx',
    'refused',
    'reset',
    'timeout',
    'data loss',
  ];
  const rows = results.targets.map((t) => {
    const o = t.outcomes;
    return [
      t.name,
      formatCount(t.sent),
      t.throughput.toFixed(1),
      formatPercent(t.availability, 2),
      formatMicros(t.latency.p50),
      formatMicros(t.latency.p90),
      formatMicros(t.latency.p99),
      formatMicros(t.latency.p999),
      formatMicros(t.latency.max),
      formatMicros(t.serviceTime.p99),
      String(o['4xx']),
      String(o['5xx']),
      String(o.refused),
      String(o.reset),
      String(o.timeout),
      String(o.data_loss),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  const lines = [c.bold(fmt(head))];
  results.targets.forEach((t, i) => {
    const line = fmt(rows[i]!);
    lines.push(t.outcomes.data_loss > 0 ? c.boldRed(`${line}   ← DATA LOSS`) : line);
  });
  for (const t of results.targets) {
    const note = unreachableNote(t);
    if (note) lines.push(c.red(note));
  }
  // One line when every target was checked the same way (the usual case), else one per target.
  const methods = new Set(results.targets.flatMap((t) => (t.verification ? [t.verification.method] : [])));
  if (methods.size === 1) lines.push(c.dim(`bodies: ${[...methods][0]}`));
  else
    for (const t of results.targets)
      if (t.verification) lines.push(c.dim(`bodies of ${t.name}: ${t.verification.method}`));
  for (const f of results.faults) {
    lines.push(
      `fault @${(f.firedAtMs / 1000).toFixed(2)}s ${f.kind} ${f.target} (${f.driver}): ${f.ok ? 'injected' : c.red('FAILED')} — ${f.message}`,
    );
    for (const r of f.resilience) {
      lines.push(
        c.dim(
          `    ${r.target}: ${r.failed}/${r.requests} failed, availability ${formatPercent(r.availability, 2)}, first success after failure ${r.failed ? formatMs(r.firstSuccessAfterFailureMs) : 'n/a'}, p99 back ${r.p99RecoveryMs === null ? 'never' : formatMs(r.p99RecoveryMs)}`,
        ),
      );
    }
  }
  const generator = generatorLine(results);
  if (generator) lines.push(c.dim(generator));
  for (const w of results.generator.warnings) lines.push(c.yellow(`⚠ ${w}`));
  return `${lines.join('\n')}\n`;
}

/** The sender threads' priority, when they report one (", sender priority SCHED_FIFO 10" or "nice -10"). */
function priorityText(priority: (SenderPriority | null)[] | undefined): string {
  const texts = (priority ?? []).flatMap((p) =>
    p === null ? [] : [p.policy === 'SCHED_FIFO' ? `SCHED_FIFO ${p.realtimePriority}` : `nice ${p.nice}`],
  );
  const known = [...new Set(texts)];
  return known.length > 0 ? `, sender priority ${known.join('/')}` : '';
}

/** How the load was sent: threads, warm-up, CPU per request (absent in older results). */
export function generatorLine(results: LoadResults): string | null {
  const { senders, cpu } = results.generator;
  const w = results.warmup;
  const parts = [
    senders ? `${senders.reason}${priorityText(senders.priority)}` : '',
    w
      ? `warm-up ${formatMs(w.durationMs)}: ${formatCount(w.sent)} requests, ${formatCount(w.errors)} errors, not counted`
      : '',
    cpu ? `CPU ${cpu.perRequestUs.toFixed(1)} µs per request (whole process)` : '',
  ].filter(Boolean);
  return parts.length > 0 ? `generator: ${parts.join('; ')}` : null;
}

export function formatChecklist(results: LoadResults, color: boolean): string {
  const c = ansi(color);
  if (!results.thresholds?.length) return '';
  const lines = results.thresholds.map((t) =>
    t.pass
      ? `${c.green('✔')} ${t.expression}  (measured ${t.actual})`
      : c.red(`✘ ${t.expression}  (measured ${t.actual})`),
  );
  const failed = results.thresholds.filter((t) => !t.pass).length;
  lines.unshift(c.bold(`thresholds: ${failed === 0 ? 'all passed' : `${failed} failed`}`));
  return `${lines.join('\n')}\n`;
}
