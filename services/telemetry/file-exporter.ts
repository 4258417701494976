/**
 * KSTYLES_TRACES_FILE: finished spans appended to a file as OTLP/JSON lines, the OpenTelemetry
 * Collector's file-exporter format (one ExportTraceServiceRequest per line, serialized by the SDK's own
 * OTLP/JSON serializer), which Jaeger's UI loads and services/telemetry/trace-file.ts reads back.
 *
 * Several processes may append to one file (the microkernel's three servers): each batch is one
 * O_APPEND write, which the kernel never interleaves with another on a local file. Past `maxBytes` the
 * file is moved to `<path>.1` (replacing it), so a lab left running keeps at most twice that on disk.
 */
import { appendFile, rename, stat } from 'node:fs/promises';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

const NEWLINE = Buffer.from('\n');

export class OtlpJsonLinesFileExporter implements SpanExporter {
  #writes: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.#stopped) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('the file exporter is shut down') });
      return;
    }
    const body = JsonTraceSerializer.serializeRequest(spans);
    if (!body) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('spans could not be serialized') });
      return;
    }
    const line = Buffer.concat([body, NEWLINE]);
    // One write at a time from this process, in order: each batch is one line, whole.
    this.#writes = this.#writes
      .then(() => this.#append(line))
      .then(
        () => resultCallback({ code: ExportResultCode.SUCCESS }),
        (error: Error) => resultCallback({ code: ExportResultCode.FAILED, error }),
      );
  }

  async #append(line: Buffer): Promise<void> {
    const size = await stat(this.path).then(
      (info) => info.size,
      () => 0,
    );
    if (size > 0 && size + line.byteLength > this.maxBytes) {
      // Another process may have moved it a moment ago: then there is nothing left to move.
      await rename(this.path, `${this.path}.1`).catch(() => {});
    }
    await appendFile(this.path, line);
  }

  async forceFlush(): Promise<void> {
    await this.#writes;
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    await this.#writes;
  }
}
