/**
 * A battery of hostile requests, sent byte for byte over TCP to a running style before the load starts:
 * the contract's traversal attacks (every encoding, NUL, overlong), malformed request lines, oversized
 * headers and impossible ranges. Each answer is classed as refused (what the contract promises), leaked
 * (bytes from outside the data root, a 2xx for a refused path, or a 5xx) or unexpected (anything else).
 */
import { connect } from 'node:net';
import { ErrorCode } from '../services/contract/errors.ts';
import { LEAK_MARKER, TRAVERSAL_ATTACKS } from '../services/contract/testing/attacks.ts';
import { encodeFilePath, type Manifest } from '../services/corpus/corpus.ts';

export type HostileOutcome = {
  tried: number;
  refused: number;
  leaked: number;
  /** Probes answered neither as promised nor with a leak, by label, with what came back. */
  unexpected: string[];
};

type Answer = { status: number; headers: Record<string, string>; body: Buffer } | 'closed' | 'timeout';

/** What a probe must get back to count as refused. */
type Expectation =
  /** `confines`: the probe names a path outside the root, so any 2xx is a leak. */
  | { kind: 'problem'; codes: readonly string[]; confines: boolean }
  /** Node's HTTP parser answers a malformed request line with a bare 400, or just closes. */
  | { kind: 'parser-rejects' }
  /** An inverted range is ignored (RFC 9110): the whole file, exactly its size, and nothing else. */
  | { kind: 'whole-file'; size: number };

type Probe = { label: string; bytes: string; expect: Expectation };

const PATH_REFUSALS = [
  ErrorCode.INVALID_PATH,
  ErrorCode.FORBIDDEN_PATH,
  ErrorCode.NOT_FOUND,
  ErrorCode.TOO_LARGE,
] as const;

/** A file that exists in the target's corpus, for the range probes: its URL path and size. */
export type RangeFile = { urlPath: string; size: number };

/** The corpus file the range probes ask for: the first servable one with bytes. */
export function rangeFileOf(manifest: Manifest): RangeFile | undefined {
  const file = manifest.files.find((f) => f.size > 0 && !f.poison);
  return file ? { urlPath: `/files/${encodeFilePath(file.path)}`, size: file.size } : undefined;
}

function request(host: string, target: string, extra = ''): string {
  return `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${extra}\r\n`;
}

/** Every probe of the battery against `host`; the range probes only when a file to range over is known. */
export function hostileProbes(host: string, rangeFile?: RangeFile): Probe[] {
  const problem = (codes: readonly string[], confines = true): Expectation => ({
    kind: 'problem',
    codes,
    confines,
  });
  const probes: Probe[] = TRAVERSAL_ATTACKS.map((attack) => ({
    label: `GET /files/${attack.length > 60 ? `${attack.slice(0, 57)}...` : attack}`,
    bytes: request(host, `/files/${attack}`),
    expect: problem(PATH_REFUSALS),
  }));
  probes.push(
    {
      label: 'path of 4096 bytes',
      bytes: request(host, `/files/${'x'.repeat(4096)}`),
      expect: problem([ErrorCode.TOO_LARGE]),
    },
    {
      label: 'header section of 32 KiB',
      bytes: request(host, '/files/x', `X-Filler: ${'a'.repeat(32 * 1024)}\r\n`),
      expect: problem([ErrorCode.HEADERS_TOO_LARGE]),
    },
    {
      label: 'HTTP/0.9 request line',
      bytes: 'GET /files/../../etc/passwd\r\n\r\n',
      expect: { kind: 'parser-rejects' },
    },
    { label: 'binary garbage', bytes: '\x00\x01\x02\xff\r\n\r\n', expect: { kind: 'parser-rejects' } },
    {
      label: 'space inside the target',
      bytes: `GET /files/../ etc/passwd HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      expect: { kind: 'parser-rejects' },
    },
    {
      label: 'unknown HTTP version',
      bytes: `GET /files/x HTTP/9.9\r\nHost: ${host}\r\n\r\n`,
      expect: { kind: 'parser-rejects' },
    },
    {
      label: 'NUL in the request line',
      bytes: `GET /files/\x00/etc/passwd HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      expect: { kind: 'parser-rejects' },
    },
  );
  if (rangeFile) {
    const ranged = (range: string, expect: Expectation): Probe => ({
      label: `Range: ${range}`,
      bytes: request(host, rangeFile.urlPath, `Range: ${range}\r\n`),
      expect,
    });
    probes.push(
      ranged('bytes=10-5', { kind: 'whole-file', size: rangeFile.size }),
      ranged('bytes=99999999-', problem([ErrorCode.RANGE_NOT_SATISFIABLE], false)),
      ranged('bytes=-0', problem([ErrorCode.RANGE_NOT_SATISFIABLE], false)),
    );
  }
  return probes;
}

/** Sends `bytes` as they are and reads until the server closes (or `timeoutMs`). */
function sendRaw(url: URL, bytes: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(Number(url.port || 80), url.hostname);
    const chunks: Buffer[] = [];
    let timedOut = false;
    socket.setTimeout(timeoutMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    // A reset after the answer is the server hanging up on garbage; what was read still counts.
    socket.on('error', () => {});
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const headerEnd = raw.indexOf('\r\n\r\n');
      if (headerEnd === -1) return resolve(timedOut ? 'timeout' : 'closed');
      const [statusLine = '', ...lines] = raw.subarray(0, headerEnd).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: raw.subarray(headerEnd + 4) });
    });
    // write, not end: a half-closed socket makes node's server drop the request before it answers.
    socket.write(bytes, 'latin1');
  });
}

type Verdict = 'refused' | 'leaked' | string;

/** Classes one answer; a string other than 'refused'/'leaked' says what was unexpected. */
function judge(answer: Answer, expect: Expectation): Verdict {
  if (answer === 'timeout') return 'timeout';
  if (answer === 'closed') return expect.kind === 'parser-rejects' ? 'refused' : 'closed without an answer';
  if (answer.status >= 500 || answer.body.includes(LEAK_MARKER)) return 'leaked';
  if (expect.kind === 'whole-file') {
    if (answer.status === 200 && answer.body.length === expect.size) return 'refused';
    return `status ${answer.status} with ${answer.body.length} of the file's ${expect.size} bytes`;
  }
  const success = answer.status >= 200 && answer.status < 300;
  if (success && (expect.kind === 'parser-rejects' || expect.confines)) return 'leaked';
  if (answer.status < 400 || answer.status >= 500) return `status ${answer.status}`;
  if (expect.kind === 'parser-rejects') return 'refused';
  if (answer.headers['content-type'] !== 'application/problem+json')
    return `status ${answer.status} without problem+json`;
  let code = '';
  try {
    code = String((JSON.parse(answer.body.toString('utf8')) as { code?: unknown }).code);
  } catch {
    return `status ${answer.status} with a body that is not JSON`;
  }
  return expect.codes.includes(code) ? 'refused' : `status ${answer.status} code ${code}`;
}

/** Runs the battery against the service at `baseUrl`, one probe at a time, stopping at the first timeout. */
export async function runHostileBattery(
  baseUrl: string,
  rangeFile?: RangeFile,
  timeoutMs = 5000,
): Promise<HostileOutcome> {
  const url = new URL(baseUrl);
  const outcome: HostileOutcome = { tried: 0, refused: 0, leaked: 0, unexpected: [] };
  for (const probe of hostileProbes(url.host, rangeFile)) {
    const verdict = judge(await sendRaw(url, probe.bytes, timeoutMs), probe.expect);
    outcome.tried++;
    if (verdict === 'timeout') {
      // A target that does not answer would cost the timeout per probe; the rest are not tried.
      outcome.unexpected.push(`${probe.label}: no answer within ${timeoutMs} ms, battery stopped`);
      break;
    }
    if (verdict === 'refused') outcome.refused++;
    else if (verdict === 'leaked') outcome.leaked++;
    else outcome.unexpected.push(`${probe.label}: ${verdict}`);
  }
  return outcome;
}
