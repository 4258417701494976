/**
 * The one error model of every style: stable codes, each with its HTTP status and a hint that says what
 * to do. Over HTTP an error is `application/problem+json` (RFC 9457); over NATS it travels as the
 * service-API error headers plus `Kstyles-Error-Code`.
 */

export const ErrorCode = {
  NOT_FOUND: 'NOT_FOUND',
  INVALID_PATH: 'INVALID_PATH',
  FORBIDDEN_PATH: 'FORBIDDEN_PATH',
  RANGE_NOT_SATISFIABLE: 'RANGE_NOT_SATISFIABLE',
  TOO_LARGE: 'TOO_LARGE',
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  UNAVAILABLE: 'UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

type ErrorInfo = { status: number; title: string; hint: string };

export const ERRORS: Record<ErrorCode, ErrorInfo> = {
  NOT_FOUND: { status: 404, title: 'Not found', hint: 'Check the path against the corpus MANIFEST.json.' },
  INVALID_PATH: {
    status: 400,
    title: 'Invalid path',
    hint: 'Use a relative path of percent-encoded segments, e.g. /files/docs/hello%20world.txt.',
  },
  FORBIDDEN_PATH: {
    status: 403,
    title: 'Path leaves the data root',
    hint: 'Only files inside the data root are served; request a path listed in MANIFEST.json.',
  },
  RANGE_NOT_SATISFIABLE: {
    status: 416,
    title: 'Range not satisfiable',
    hint: 'Ask for one byte range that starts before the end of the file (see Content-Range for its size).',
  },
  TOO_LARGE: {
    status: 414,
    title: 'Request too large',
    hint: 'Paths are limited to 1024 bytes and 255 bytes per segment.',
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request header fields too large',
    hint: 'Send fewer or shorter headers: node rejects a header section over 16 KiB before any route sees it.',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method not allowed',
    hint: 'This service is read-only: use GET or HEAD.',
  },
  UNAVAILABLE: {
    status: 503,
    title: 'Service unavailable',
    hint: 'A server behind the gateway is down or restarting; retry after the Retry-After delay.',
  },
  TIMEOUT: {
    status: 504,
    title: 'Deadline exceeded',
    hint: 'The request did not finish within its deadline; retry, or check the service with `kstyles ps`.',
  },
  INTERNAL: {
    status: 500,
    title: 'Internal error',
    hint: 'The service failed while handling this request; its log has the details.',
  },
};

export type Problem = {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  hint: string;
  instance?: string;
};

/** Base class of every service error; `code` is stable, `status` follows from it. */
export class ServiceError extends Error {
  override name = 'ServiceError';
  /** Seconds after which a retry may succeed (503). */
  retryAfterSeconds?: number;

  constructor(
    readonly code: ErrorCode,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  toProblem(instance?: string): Problem {
    const info = ERRORS[this.code];
    return {
      type: `urn:kstyles:error:${this.code.toLowerCase().replaceAll('_', '-')}`,
      title: info.title,
      status: info.status,
      code: this.code,
      detail: this.message,
      hint: info.hint,
      ...(instance === undefined ? {} : { instance }),
    };
  }
}

/** The base of an error class with one fixed code: `new XError(detail, options?)`. */
function withCode(code: ErrorCode) {
  return class extends ServiceError {
    constructor(detail: string, options?: ErrorOptions) {
      super(code, detail, options);
    }
  };
}

export class NotFoundError extends withCode(ErrorCode.NOT_FOUND) {
  override name = 'NotFoundError';
}

export class InvalidPathError extends withCode(ErrorCode.INVALID_PATH) {
  override name = 'InvalidPathError';
}

export class ForbiddenPathError extends withCode(ErrorCode.FORBIDDEN_PATH) {
  override name = 'ForbiddenPathError';
}

export class RangeNotSatisfiableError extends ServiceError {
  override name = 'RangeNotSatisfiableError';
  constructor(
    detail: string,
    readonly size: number,
  ) {
    super(ErrorCode.RANGE_NOT_SATISFIABLE, detail);
  }
}

export class TooLargeError extends withCode(ErrorCode.TOO_LARGE) {
  override name = 'TooLargeError';
}

export class MethodNotAllowedError extends ServiceError {
  override name = 'MethodNotAllowedError';
  constructor(method: string) {
    super(ErrorCode.METHOD_NOT_ALLOWED, `method ${method} is not allowed on this route`);
  }
}

export class UnavailableError extends ServiceError {
  override name = 'UnavailableError';
  constructor(detail: string, retryAfterSeconds = 1, options?: ErrorOptions) {
    super(ErrorCode.UNAVAILABLE, detail, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class TimeoutError extends withCode(ErrorCode.TIMEOUT) {
  override name = 'TimeoutError';
}

export class InternalError extends withCode(ErrorCode.INTERNAL) {
  override name = 'InternalError';
}

export class HeadersTooLargeError extends withCode(ErrorCode.HEADERS_TOO_LARGE) {
  override name = 'HeadersTooLargeError';
}

/**
 * The errors of the commands and tools (not answered over HTTP): each a stable code with the exit
 * code a `kstyles` command ends with when it is not caught, and what it means.
 */
export const ProcessErrorCode = {
  USAGE: 'USAGE',
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  SPEC_INVALID: 'SPEC_INVALID',
  SCENARIO_INVALID: 'SCENARIO_INVALID',
  THRESHOLD_INVALID: 'THRESHOLD_INVALID',
  MIX_INVALID: 'MIX_INVALID',
  PORT_IN_USE: 'PORT_IN_USE',
  NATS_UNREACHABLE: 'NATS_UNREACHABLE',
  NATS_SERVER_MISSING: 'NATS_SERVER_MISSING',
  SUPERVISOR_UNAVAILABLE: 'SUPERVISOR_UNAVAILABLE',
  TARGET_SKIPPED: 'TARGET_SKIPPED',
  NOT_READY: 'NOT_READY',
  CONTROL_BAD_REQUEST: 'CONTROL_BAD_REQUEST',
  CONTROL_UNKNOWN_SERVICE: 'CONTROL_UNKNOWN_SERVICE',
  CONTROL_CONFLICT: 'CONTROL_CONFLICT',
  CONTROL_FAILED: 'CONTROL_FAILED',
  RUNTIME_DIR_UNSAFE: 'RUNTIME_DIR_UNSAFE',
  TRACING_CONFIG_INVALID: 'TRACING_CONFIG_INVALID',
  SERVER_BUNDLES_MISSING: 'SERVER_BUNDLES_MISSING',
} as const;
export type ProcessErrorCode = (typeof ProcessErrorCode)[keyof typeof ProcessErrorCode];

export const PROCESS_ERRORS: Record<ProcessErrorCode, { exitCode: number; meaning: string }> = {
  USAGE: { exitCode: 2, meaning: 'a flag, argument or command the user can fix' },
  MANIFEST_INVALID: {
    exitCode: 1,
    meaning: 'MANIFEST.json is missing, unreadable or not in the generator format',
  },
  SPEC_INVALID: { exitCode: 1, meaning: 'a supervisor spec that cannot run' },
  SCENARIO_INVALID: { exitCode: 1, meaning: 'a load scenario file that cannot be used' },
  THRESHOLD_INVALID: { exitCode: 1, meaning: 'a load threshold that cannot be read' },
  MIX_INVALID: { exitCode: 1, meaning: 'a request mix that cannot be built from the corpus' },
  PORT_IN_USE: { exitCode: 1, meaning: 'a port the lab, its console or a server needs is taken' },
  NATS_UNREACHABLE: { exitCode: 1, meaning: 'the NATS server could not be reached in time' },
  NATS_SERVER_MISSING: {
    exitCode: 2,
    meaning: 'no nats-server binary to start (NATS_SERVER_BIN, PATH, /usr/sbin)',
  },
  SUPERVISOR_UNAVAILABLE: { exitCode: 1, meaning: 'no supervisor with that id answered on this NATS' },
  TARGET_SKIPPED: { exitCode: 1, meaning: 'a benchmark target that cannot be measured on this machine' },
  NOT_READY: { exitCode: 1, meaning: 'a started process did not answer 200 within its deadline' },
  CONTROL_BAD_REQUEST: { exitCode: 1, meaning: 'a supervisor control request it cannot read' },
  CONTROL_UNKNOWN_SERVICE: { exitCode: 2, meaning: 'a supervisor control request names no child of it' },
  CONTROL_CONFLICT: {
    exitCode: 1,
    meaning: 'the child has no running process, or the supervisor is stopping',
  },
  CONTROL_FAILED: { exitCode: 1, meaning: 'the supervisor failed to carry out a control request' },
  RUNTIME_DIR_UNSAFE: {
    exitCode: 1,
    meaning: 'the runtime-state directory is a symlink, not ours, or open to group or others',
  },
  TRACING_CONFIG_INVALID: {
    exitCode: 2,
    meaning: 'an OTEL_* or KSTYLES_TRACES_* environment variable the tracing set-up cannot use',
  },
  SERVER_BUNDLES_MISSING: {
    exitCode: 2,
    meaning: "KSTYLES_SERVER_BUNDLES names a folder without every microkernel server's bundle",
  },
};

export type ControlErrorCode =
  | typeof ProcessErrorCode.CONTROL_BAD_REQUEST
  | typeof ProcessErrorCode.CONTROL_UNKNOWN_SERVICE
  | typeof ProcessErrorCode.CONTROL_CONFLICT
  | typeof ProcessErrorCode.CONTROL_FAILED;

/**
 * The supervisor control API's errors by the service-API error code each travels as on NATS
 * (`services/supervisor/README.md`, 'On the bus'); an unknown status is a failure.
 */
export const CONTROL_ERROR_OF_STATUS: Record<400 | 404 | 409 | 500, ControlErrorCode> = {
  400: ProcessErrorCode.CONTROL_BAD_REQUEST,
  404: ProcessErrorCode.CONTROL_UNKNOWN_SERVICE,
  409: ProcessErrorCode.CONTROL_CONFLICT,
  500: ProcessErrorCode.CONTROL_FAILED,
};
export type ControlStatus = keyof typeof CONTROL_ERROR_OF_STATUS;

/** Base class of the command and tool errors: `code` is stable, `exitCode` follows from it. */
export abstract class ProcessError extends Error {
  abstract readonly code: ProcessErrorCode;

  get exitCode(): number {
    return PROCESS_ERRORS[this.code].exitCode;
  }
}

/** A port the lab, its console or a server needs is taken: names it and what to do. */
export class PortInUseError extends ProcessError {
  override readonly name = 'PortInUseError';
  readonly code = ProcessErrorCode.PORT_IN_USE;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCode, value);
}

/** Rebuilds an error from its code and detail, e.g. after it crossed NATS or a worker thread. */
export function errorFromCode(code: ErrorCode, detail: string, extra?: { size?: number }): ServiceError {
  switch (code) {
    case ErrorCode.NOT_FOUND:
      return new NotFoundError(detail);
    case ErrorCode.INVALID_PATH:
      return new InvalidPathError(detail);
    case ErrorCode.FORBIDDEN_PATH:
      return new ForbiddenPathError(detail);
    case ErrorCode.RANGE_NOT_SATISFIABLE:
      return new RangeNotSatisfiableError(detail, extra?.size ?? 0);
    case ErrorCode.TOO_LARGE:
      return new TooLargeError(detail);
    case ErrorCode.UNAVAILABLE:
      return new UnavailableError(detail);
    case ErrorCode.TIMEOUT:
      return new TimeoutError(detail);
    default:
      return new ServiceError(code, detail);
  }
}

/** Any thrown value as a ServiceError; unknown failures become INTERNAL without leaking their stack. */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(`unexpected failure: ${message}`, { cause: err });
}
