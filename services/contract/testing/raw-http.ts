import { connect } from 'node:net';

export type RawResponse = { status: number; headers: Record<string, string>; body: Buffer };

/**
 * Sends one request exactly as written: fetch and other clients normalise '..' and encodings away, which
 * is precisely what traversal tests must not let happen.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () =>
      socket.destroy(new Error(`no answer to ${method} ${target} within 10 s`)),
    );
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const headerEnd = raw.indexOf('\r\n\r\n');
      if (headerEnd === -1)
        return reject(
          new Error(`incomplete response to ${method} ${target}: ${raw.toString('latin1').slice(0, 200)}`),
        );
      const [statusLine = '', ...lines] = raw.subarray(0, headerEnd).toString('latin1').split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      const parsed: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers: parsed, body: raw.subarray(headerEnd + 4) });
    });
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(
      `${method} ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n${extra}\r\n`,
      'latin1',
    );
  });
}
