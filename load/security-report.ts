/**
 * The Security row of the report, from what security-facts.ts measured: each cell's lines (numbers,
 * next to the seed's claim), the findings shown loudly at the top (a leak, an unexpected allow on the
 * bus), and the details section with the NATS isolation matrix per role.
 */
import type { Style } from '../cli/kit/defaults.ts';
import { SUPERVISOR_SEED_ENV } from '../services/supervisor/control-client.ts';
import type { MeasuredSecurity } from './security-facts.ts';
import { escapeXml } from './svg-charts.ts';
import type { LoadResults, TargetFacts } from './types.ts';
import { formatBytes, formatCount } from './units.ts';

const plural = (n: number, one: string, many = `${one}s`) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** The microkernel's path from the request parser to the disk, by supervisor child name. */
const MICROKERNEL_PATH = ['gateway', 'fs', 'driver'] as const;

function parserLine(s: MeasuredSecurity): string | undefined {
  if (s.uid === undefined) return undefined;
  const caps = s.capabilities ?? [];
  return `request parser${s.pid !== undefined && s.pid > 0 ? ` (pid ${s.pid})` : ''}: uid ${s.uid}${s.uid === 0 ? ' (root)' : ''}, ${plural(caps.length, 'capability', 'capabilities')}${caps.length > 0 && caps.length <= 3 ? ` (${caps.join(', ')})` : ''}, no_new_privs ${s.noNewPrivs ? 'on' : 'off'}`;
}

function writableLine(s: MeasuredSecurity): string | undefined {
  if (!s.writable || s.writable.length === 0) return undefined;
  const yes = s.writable.filter((w) => w.writable);
  const names = yes.map((w) => (w.place === 'code' ? 'its code' : w.place === 'data' ? 'its data' : w.path));
  const shells = s.shells ?? [];
  return `may write ${yes.length} of ${s.writable.length} places checked${names.length > 0 ? ` (${names.join(', ')})` : ''}; ${shells.length > 0 ? `a shell to exec (${shells[0]})` : 'no shell to exec'}`;
}

function codeLine(s: MeasuredSecurity): string | undefined {
  const code = s.code;
  if (!code) return undefined;
  const modules = code.own.modules + code.npm.modules;
  return `code in its address space: ${formatCount(modules)} modules, ${formatBytes(code.own.bytes + code.npm.bytes)} (${formatCount(code.own.modules)} own, ${formatCount(code.npm.modules)} from ${plural(code.npm.packages, 'npm package')})${code.bundled ? ' in one bundle' : ''}; + ${formatCount(code.node.modules)} Node built-ins (${formatBytes(code.node.bytes)})`;
}

function holdsLine(s: MeasuredSecurity): string | undefined {
  if (s.openFds === undefined) return undefined;
  const credentials = s.credentials ?? [];
  return `holds ${plural(s.listeningSockets ?? 0, 'listening TCP socket')}, ${plural(s.openFds, 'open fd')}, ${plural(credentials.length, 'credential')}${credentials.length > 0 ? ` (${credentials.join(', ')})` : ''}`;
}

/** The PIDs on the microkernel's path from parser to driver, when its supervisor reported them all, distinct. */
function separateProcesses(s: MeasuredSecurity): number[] | undefined {
  const processes = s.processes ?? [];
  const onPath = MICROKERNEL_PATH.map((name) => processes.find((p) => p.name === name)?.pid).filter(
    (pid): pid is number => typeof pid === 'number',
  );
  return onPath.length === MICROKERNEL_PATH.length && new Set(onPath).size === onPath.length
    ? onPath
    : undefined;
}

/**
 * Process boundaries a request crosses from the parser to the driver: the microkernel's path less one
 * when its processes are seen apart; 0 when the parser itself holds data files open (it reads them);
 * undefined when neither was seen.
 */
export function parserToDriverBoundaries(s: MeasuredSecurity): number | undefined {
  const separate = separateProcesses(s);
  if (separate) return separate.length - 1;
  return s.openDataFiles !== undefined && s.openDataFiles > 0 ? 0 : undefined;
}

/** One address space (monolith, unikernel) or several processes on a bus (microkernel). */
function isolationLines(s: MeasuredSecurity): string[] {
  const lines: string[] = [];
  const onPath = separateProcesses(s);
  const dataFiles = s.openDataFiles;
  if (onPath) {
    lines.push(
      `isolation: ${plural(onPath.length - 1, 'process boundary', 'process boundaries')} from parser to driver (${MICROKERNEL_PATH.map((name, i) => `${name} ${onPath[i]}`).join(' → ')})${dataFiles !== undefined ? `; ${plural(dataFiles, 'data file')} open in the parser` : ''}`,
    );
  } else if (dataFiles !== undefined && dataFiles > 0) {
    lines.push(
      `isolation: 1 address space, 0 process boundaries from parser to driver: the parser itself holds ${plural(dataFiles, 'data file')} open${s.threads ? `; ${plural(s.threads, 'thread')} share it` : ''}`,
    );
  } else if (dataFiles !== undefined) {
    lines.push(
      `isolation: no data file open in the parser${s.threads ? `; ${plural(s.threads, 'thread')}` : ''}`,
    );
  }
  const nats = s.isolation;
  if (nats) {
    const allowed = nats.roles.reduce((sum, r) => sum + r.allowed, 0);
    const refused = nats.roles.reduce((sum, r) => sum + r.refused, 0);
    const unexpected = nats.roles.reduce((sum, r) => sum + r.unexpectedAllowed.length, 0);
    const missing = nats.roles.reduce((sum, r) => sum + r.unexpectedRefused.length, 0);
    lines.push(
      `NATS, tried live with each role's credentials: ${nats.roles.length} roles × ${nats.attemptsPerRole} attempts — ${formatCount(allowed)} allowed, ${formatCount(refused)} refused; ${unexpected === 0 ? '0 unexpected allows' : `**${plural(unexpected, 'UNEXPECTED ALLOW')}**`}${missing > 0 ? `, ${plural(missing, 'needed permission')} refused` : ''}; no credentials ${nats.anonymous}, unknown key ${nats.stranger}${nats.untried?.length ? `; not tried (credentials not held by the microkernel): ${nats.untried.join(', ')}` : ''}`,
    );
  }
  return lines;
}

function imageLine(s: MeasuredSecurity | undefined, facts: TargetFacts): string | undefined {
  if (s?.image) {
    const shell = (s.shells ?? []).length > 0 ? 'a shell' : 'no shell';
    return `image ${s.image.name} (counted in the container): ${formatCount(s.image.files)} files, ${formatBytes(s.image.bytes)}, ${shell}`;
  }
  const host = s?.sources.includes('proc') ? 'runs here as a host process (no image)' : undefined;
  if (facts.fileCount === undefined && facts.imageBytes === undefined) return host;
  const parts = [
    ...(facts.fileCount !== undefined ? [`${formatCount(facts.fileCount)} files`] : []),
    ...(facts.imageBytes !== undefined ? [formatBytes(facts.imageBytes)] : []),
    ...(facts.hasShell !== undefined ? [facts.hasShell ? 'a shell' : 'no shell'] : []),
  ];
  return `${host ? `${host}; ` : ''}its image (from the build): ${parts.join(', ')}`;
}

/** The Security cell of one style: every line a measured number; empty when nothing was measured. */
export function securityLines(facts: TargetFacts | undefined): string[] {
  if (!facts) return [];
  const s = facts.security;
  const lines = s
    ? [parserLine(s), writableLine(s), codeLine(s), holdsLine(s), ...isolationLines(s)].filter(
        (line): line is string => line !== undefined,
      )
    : [];
  const image = imageLine(s, facts);
  if (image) lines.push(image);
  if (facts.hostile) {
    const { tried, refused, leaked, unexpected } = facts.hostile;
    lines.push(
      `hostile requests: ${tried} tried, ${refused} refused, ${leaked === 0 ? '0 leaked' : `**${leaked} LEAKED**`}${unexpected.length > 0 ? `, ${unexpected.length} answered otherwise` : ''}`,
    );
  }
  return lines;
}

/** What a security reviewer must see first: leaks, unexpected allows on the bus, strangers let in. */
export function securityFindings(results: LoadResults): string[] {
  const findings: string[] = [];
  for (const [name, facts] of Object.entries(results.facts ?? {})) {
    if (facts.hostile && facts.hostile.leaked > 0)
      findings.push(`${name}: ${plural(facts.hostile.leaked, 'hostile request')} leaked (see results.json)`);
    const nats = facts.security?.isolation;
    if (!nats) continue;
    for (const role of nats.roles)
      for (const attempt of role.unexpectedAllowed)
        findings.push(`${name}: NATS role ${role.role} may ${attempt}`);
    if (nats.anonymous === 'allowed') findings.push(`${name}: NATS lets a client in without credentials`);
    if (nats.stranger === 'allowed') findings.push(`${name}: NATS lets in a key it does not know`);
  }
  return findings;
}

/** The microkernel's isolation matrix: per target with a probe, one row per role. */
function isolationRows(results: LoadResults): { target: string; rows: string[][] }[] {
  return Object.entries(results.facts ?? {}).flatMap(([target, facts]) => {
    const nats = facts.security?.isolation;
    if (!nats) return [];
    return [
      {
        target,
        rows: nats.roles.map((r) => [
          r.role,
          `${r.allowed} (design ${r.expectedAllowed})`,
          `${r.refused} (design ${r.expectedRefused})`,
          r.unexpectedAllowed.length === 0 ? '0' : r.unexpectedAllowed.join('; '),
          r.unexpectedRefused.length === 0 ? '0' : r.unexpectedRefused.join('; '),
        ]),
      },
    ];
  });
}

export const ISOLATION_HEADINGS = ['role', 'allowed', 'refused', 'unexpected allows', 'needed but refused'];

/** The details section of report.md: the isolation matrix and what could not be measured. */
export function securityMarkdown(results: LoadResults): string[] {
  const out: string[] = [];
  for (const { target, rows } of isolationRows(results)) {
    const nats = results.facts?.[target]?.security?.isolation;
    out.push(
      `### ${target}: NATS isolation, tried live`,
      '',
      `${nats?.attemptsPerRole} publishes and subscribes per role with its own credentials on ${nats?.server} (${nats?.ms} ms): the other roles' subjects, the supervisors' control API and events, every inbox, everything. "design" is what the architecture allows (services/microkernel/isolation-probe.ts).`,
      '',
      `| ${ISOLATION_HEADINGS.join(' | ')} |`,
      `|${ISOLATION_HEADINGS.map(() => '---').join('|')}|`,
      ...rows.map((row) => `| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
      '',
    );
  }
  for (const [target, facts] of Object.entries(results.facts ?? {})) {
    for (const note of facts.security?.notes ?? []) out.push(`- ${target}: not measured: ${note}`);
  }
  if (out.length > 0 && out[out.length - 1] !== '') out.push('');
  return out.length > 0 ? ['## Security details', '', ...out] : [];
}

/** The seed table's Security cell of `style`: the lines, or why there are none. */
export function securityCell(facts: TargetFacts | undefined, style: Style): string[] {
  const lines = securityLines(facts);
  if (lines.length === 0) return ['not measured (no /metrics gauges, not on this machine, no --facts)'];
  if (style === 'microkernel' && facts?.security && !facts.security.isolation)
    lines.push(
      `NATS isolation: not measured from here (${facts.security.notes?.find((n) => n.startsWith('supervisor')) ?? 'no runtime state of its supervisor here'}; pass --nats URL with ${SUPERVISOR_SEED_ENV} set)`,
    );
  return lines;
}

/** One measure of the surface chart: its label and each style's number (absent when not measured). */
type SurfaceMeasure = {
  label: string;
  values: Partial<Record<string, number>>;
  format: (n: number) => string;
  /** Why a target has no value (default: not measured). */
  missing?: (facts: TargetFacts | undefined) => string;
};

/** The measures compared in the chart: what is loaded, what is held, what may be done. */
function surfaceMeasures(results: LoadResults, names: string[]): SurfaceMeasure[] {
  const of = (pick: (f: TargetFacts) => number | undefined) =>
    Object.fromEntries(
      names.flatMap((name) => {
        const facts = results.facts?.[name];
        const value = facts ? pick(facts) : undefined;
        return value === undefined ? [] : [[name, value]];
      }),
    );
  const code = (f: TargetFacts) => f.security?.code;
  return [
    {
      label: 'modules of code in the parser',
      values: of((f) => (code(f) ? code(f)!.own.modules + code(f)!.npm.modules : undefined)),
      format: formatCount,
    },
    {
      label: 'bytes of that code',
      values: of((f) => (code(f) ? code(f)!.own.bytes + code(f)!.npm.bytes : undefined)),
      format: formatBytes,
    },
    { label: 'npm packages in it', values: of((f) => code(f)?.npm.packages), format: formatCount },
    { label: 'capabilities', values: of((f) => f.security?.capabilities?.length), format: formatCount },
    { label: 'credentials held', values: of((f) => f.security?.credentials?.length), format: formatCount },
    {
      label: 'places it may write',
      values: of((f) => f.security?.writable?.filter((w) => w.writable).length),
      format: formatCount,
    },
    {
      label: 'files in its image',
      values: of((f) => f.security?.image?.files ?? f.fileCount),
      format: formatCount,
      missing: (f) =>
        f?.security?.sources.includes('proc') ? 'a host process here, no image' : 'not measured',
    },
    {
      label: 'process boundaries, parser → driver',
      values: of((f) => (f.security ? parserToDriverBoundaries(f.security) : undefined)),
      format: formatCount,
    },
  ];
}

/** Small multiples: one row per measure, one bar per target, each row scaled to its own largest value. */
function surfaceChart(results: LoadResults, colors: (name: string, i: number) => string): string {
  const names = results.targets.map((t) => t.name);
  const measures = surfaceMeasures(results, names).filter((m) => Object.keys(m.values).length > 0);
  if (measures.length === 0) return '';
  const rowHeight = 16 * names.length + 14;
  const labelWidth = 200;
  const barWidth = 520;
  const height = measures.length * rowHeight + 30;
  const parts: string[] = [];
  measures.forEach((measure, row) => {
    const top = 24 + row * rowHeight;
    const max = Math.max(...Object.values(measure.values).map((v) => v ?? 0), 1);
    parts.push(`<text class="axis" x="0" y="${top + 12}">${escapeXml(measure.label)}</text>`);
    names.forEach((name, i) => {
      const value = measure.values[name];
      const y = top + i * 16;
      if (value === undefined) {
        const why = measure.missing?.(results.facts?.[name]) ?? 'not measured';
        parts.push(
          `<text class="tick muted" x="${labelWidth}" y="${y + 11}">${escapeXml(`${name}: ${why}`)}</text>`,
        );
        return;
      }
      const w = Math.max(1, (value / max) * barWidth);
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="12" fill="${colors(name, i)}"><title>${escapeXml(`${name}: ${measure.format(value)}`)}</title></rect>`,
        `<text class="tick" x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 10}">${escapeXml(`${name} ${measure.format(value)}`)}</text>`,
      );
    });
  });
  const legend = names
    .map(
      (name, i) =>
        `<rect x="${labelWidth + i * 130}" y="2" width="10" height="10" fill="${colors(name, i)}"/><text class="legend" x="${labelWidth + 14 + i * 130}" y="11">${escapeXml(name)}</text>`,
    )
    .join('');
  return `<svg class="chart" viewBox="0 0 ${labelWidth + barWidth + 160} ${height}" width="100%" role="img" aria-label="attack surface per style">${legend}${parts.join('')}</svg>`;
}

/** The report page's Security section: the surface chart, the NATS isolation matrix, what was not measured. */
export function securityHtml(results: LoadResults, colors: (name: string, i: number) => string): string {
  const tables = isolationRows(results).map(({ target, rows }) => {
    const nats = results.facts?.[target]?.security?.isolation;
    return `<h3>${escapeXml(target)}: NATS isolation, tried live</h3><p class="muted small">${nats?.attemptsPerRole} publishes and subscribes per role with its own credentials on ${escapeXml(nats?.server ?? '')} (${nats?.ms} ms); “design” is what the architecture allows. No credentials: ${nats?.anonymous}; unknown key: ${nats?.stranger}.</p><table><thead><tr>${ISOLATION_HEADINGS.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows
      .map(
        (row) =>
          `<tr>${row.map((c, i) => `<td class="${i === 3 && c !== '0' ? 'warn' : ''}">${escapeXml(c)}</td>`).join('')}</tr>`,
      )
      .join('')}</tbody></table>`;
  });
  const notes = Object.entries(results.facts ?? {}).flatMap(([target, facts]) =>
    (facts.security?.notes ?? []).map((note) => `<li>${escapeXml(`${target}: not measured: ${note}`)}</li>`),
  );
  const chart = surfaceChart(results, colors);
  if (!chart && tables.length === 0 && notes.length === 0) return '';
  return `<section id="security"><h2>Security: the surface of the address space that parses requests</h2>${chart}<p class="muted small">Measured by each request parser of itself (its /metrics gauges) and, on this machine, from /proc: code V8 has compiled (a bundle counted from its build's metafile), capabilities in effect, credentials in its environment, places access(2) lets it write, files in its container image. Each row is scaled to its largest value.</p>${tables.join('')}${notes.length > 0 ? `<ul class="small">${notes.join('')}</ul>` : ''}</section>`;
}
