import { generatorLine } from './live-view.ts';
import { hostOf } from './report-html.ts';
import { securityFindings, securityMarkdown } from './security-report.ts';
import { STYLE_HEADINGS, STYLES, seedComparison } from './seed-comparison.ts';
import type { LoadResults } from './types.ts';
import { formatCount, formatMicros, formatMs, formatPercent } from './units.ts';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The report as Markdown: summary, thresholds, the seed's table with measurements, faults. */
export function renderMarkdown(results: LoadResults): string {
  const out: string[] = ['# kernel-styles load report', ''];
  out.push(
    `${results.startedAt} · ${formatMs(results.durationMs)} at ${results.rate} req/s per target (open loop) · ${results.connections} connections per target · timeout ${formatMs(results.timeoutMs)} · seed ${results.seed} · mix ${results.mix}`,
    '',
  );
  const loss = results.targets.filter((t) => t.outcomes.data_loss > 0);
  if (loss.length) {
    out.push(
      `> **DATA LOSS**: ${loss.map((t) => `${t.name} ${formatCount(t.outcomes.data_loss)}`).join(', ')} responses did not match the manifest.`,
      '',
    );
  }
  const findings = securityFindings(results);
  if (findings.length) out.push(`> **SECURITY FINDINGS**: ${findings.join('; ')}.`, '');
  for (const w of results.generator.warnings) out.push(`> ⚠ ${w}`, '');
  const generator = generatorLine(results);
  if (generator) out.push(`${cell(generator)}.`, '');
  out.push('## Summary', '');
  out.push(
    '| target | address | sent | ok/s | availability | p50 | p90 | p99 | p99.9 | max | p99 uncorrected | 4xx | 5xx | refused | reset | timeout | data loss |',
  );
  out.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const t of results.targets) {
    const o = t.outcomes;
    out.push(
      `| ${cell(t.name)} | ${cell(hostOf(t.url))} | ${formatCount(t.sent)} | ${t.throughput.toFixed(1)} | ${formatPercent(t.availability, 3)} | ${formatMicros(t.latency.p50)} | ${formatMicros(t.latency.p90)} | ${formatMicros(t.latency.p99)} | ${formatMicros(t.latency.p999)} | ${formatMicros(t.latency.max)} | ${formatMicros(t.serviceTime.p99)} | ${o['4xx']} | ${o['5xx']} | ${o.refused} | ${o.reset} | ${o.timeout} | ${o.data_loss ? `**${o.data_loss}**` : 0} |`,
    );
  }
  out.push(
    '',
    'Latency counts from each request\'s intended send time; "p99 uncorrected" from the moment it went on the wire.',
    '',
  );
  for (const t of results.targets) {
    const v = t.verification;
    if (v)
      out.push(
        `Bodies of ${cell(t.name)}: ${v.method} — ${formatCount(v.bytes)} compared byte for byte, ${formatCount(v.sha256)} by sha256.`,
        '',
      );
  }
  if (results.thresholds?.length) {
    out.push('## Thresholds', '');
    for (const t of results.thresholds)
      out.push(
        `- [${t.pass ? 'x' : ' '}] \`${t.expression}\` — measured ${t.actual}${t.pass ? '' : ' **FAILED**'}`,
      );
    out.push('');
  }
  out.push("## The seed's claims, measured", '');
  out.push(
    `| | ${STYLES.map((s) => STYLE_HEADINGS[s]).join(' | ')} |`,
    `|---|${STYLES.map(() => '---').join('|')}|`,
  );
  for (const row of seedComparison(results)) {
    out.push(
      `| **${row.heading}** | ${STYLES.map((s) => cell(`_${row.cells[s].claim}_<br>${row.cells[s].measured.join('<br>')}`)).join(' | ')} |`,
    );
  }
  out.push('');
  out.push(...securityMarkdown(results));
  out.push('## Faults', '');
  if (results.faults.length === 0) out.push('No faults were injected.', '');
  for (const f of results.faults) {
    out.push(
      `- **${(f.firedAtMs / 1000).toFixed(2)}s ${f.kind} ${f.target}** via ${f.driver}: ${f.ok ? 'injected' : 'FAILED'} — ${f.message}`,
    );
    for (const r of f.resilience) {
      out.push(
        `  - ${r.target}: ${formatCount(r.failed)} failed of ${formatCount(r.requests)} (availability ${formatPercent(r.availability, 2)}, blast radius ${formatPercent(r.blastRadius, 1)}), first success after failure ${r.failed ? formatMs(r.firstSuccessAfterFailureMs) : 'n/a'}, p99 back within 2× ${r.p99RecoveryMs === null ? 'never' : formatMs(r.p99RecoveryMs)}`,
      );
    }
  }
  out.push('');
  return `${out.join('\n')}\n`;
}
