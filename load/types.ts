import type { FaultKind } from '../services/contract/faults.ts';
import type { ThreadPriority } from '../services/contract/thread-priority.ts';
import type { HostileOutcome } from './hostile-battery.ts';
import type { MeasuredSecurity } from './security-facts.ts';
/** Outcome class of one request, as the client saw it. */
export const OUTCOMES = ['ok', '4xx', '5xx', 'refused', 'reset', 'timeout', 'data_loss'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type OutcomeCounts = Record<Outcome, number>;

export function emptyOutcomeCounts(): OutcomeCounts {
  return { ok: 0, '4xx': 0, '5xx': 0, refused: 0, reset: 0, timeout: 0, data_loss: 0 };
}

/** Latency percentiles in integer microseconds. */
export type LatencySummary = {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
};

/** One second of one target, attributed by the requests' intended send time. */
export type SecondStats = {
  /** Seconds since the run started. */
  t: number;
  sent: number;
  outcomes: OutcomeCounts;
  /** Corrected latency (from intended send time), microseconds; 0 when nothing completed. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
};

/** One second of the generator's own health. */
export type GeneratorSecond = {
  t: number;
  /** How late requests left relative to their intended time, microseconds. */
  sendLagP99: number;
  sendLagMax: number;
  /** Event-loop delay p99 in this second, microseconds (the worst sender thread's). */
  eventLoopP99: number;
  /**
   * The main thread's longest event-loop delay in this second, microseconds: it sends nothing, so this
   * does not make the generator fall behind; it shows what the sender threads were spared (absent in
   * older results).
   */
  mainEventLoopMax?: number;
  behind: boolean;
};

export type ErrorSample = { outcome: Outcome; message: string; count: number };

export type TargetResult = {
  name: string;
  url: string;
  sent: number;
  completed: number;
  outcomes: OutcomeCounts;
  /** ok / completed, 0..1 (1 when nothing completed). */
  availability: number;
  /** Successful responses per second over the run. */
  throughput: number;
  bytes: number;
  /** Corrected latency: from the intended send time (wrk2 model). */
  latency: LatencySummary;
  /** Uncorrected service time: from the moment the request went on the wire. */
  serviceTime: LatencySummary;
  /** How late requests left the generator, microseconds. */
  sendLag: LatencySummary;
  /** HdrHistograms (microseconds) as compressed base64, so runs can be merged. */
  histograms: { latency: string; serviceTime: string; sendLag: string };
  timeline: SecondStats[];
  errorSamples: ErrorSample[];
  /** How 200 bodies were checked: the method, and how many bodies by byte compare and by sha256 (absent in older results). */
  verification?: { method: string; bytes: number; sha256: number };
};

export { FAULT_KINDS, type FaultKind } from '../services/contract/faults.ts';

/** One fault of a scenario. */
export type FaultSpec = {
  /** Milliseconds after the start of the run. */
  atMs: number;
  /** e.g. `microkernel:driver`, `monolith`, `pid:1234`, `docker:kstyles-monolith-1`. */
  target: string;
  kind: FaultKind;
  /** hang: how long the process stays stopped; slow: how long the slowdown lasts. */
  forMs?: number;
  /** slow: added latency per read. */
  latencyMs?: number;
  /** crashloop: how many failed starts. */
  times?: number;
  /** The load target(s) whose requests this fault can affect; by default the part before ':'. */
  affects?: string[];
  /** Where it was declared, for messages: `scenario.yaml:4`. */
  source?: string;
};

/** Client-side resilience for one fault on one load target. */
export type Resilience = {
  target: string;
  windowStartMs: number;
  windowEndMs: number;
  requests: number;
  failed: number;
  availability: number;
  /** failed / requests in the fault window. */
  blastRadius: number;
  /** Fault → first success after the first failure; null when nothing failed. */
  firstSuccessAfterFailureMs: number | null;
  /** Fault → first second whose p99 is back within 2x its pre-fault value; 0 if it never degraded, null if it never recovered. */
  p99RecoveryMs: number | null;
  preFaultP99: number;
};

export type FaultRecord = FaultSpec & {
  /** When it was actually injected, ms after the start of the run. */
  firedAtMs: number;
  driver: string;
  ok: boolean;
  message: string;
  resilience: Resilience[];
};

export type TargetFacts = {
  /** Of the style's image, from its build (given with --facts): bytes, files, whether it has a shell. */
  imageBytes?: number;
  fileCount?: number;
  hasShell?: boolean;
  bootMs?: number;
  /** The hostile battery's outcome against this target (load/hostile-battery.ts). */
  hostile?: HostileOutcome;
  /** The Security row's measurements of the request parser (load/security-facts.ts). */
  security?: MeasuredSecurity;
  [key: string]: unknown;
};

export type ThresholdOutcome = { expression: string; actual: string; pass: boolean };

/** How a sender thread is scheduled (it raises its own priority where it may: load/sender.ts). */
export type SenderPriority = ThreadPriority;

export type LoadResults = {
  version: 1;
  tool: 'kstyles-load';
  startedAt: string;
  durationMs: number;
  rate: number;
  connections: number;
  seed: number;
  timeoutMs: number;
  mix: string;
  corpus: { dir: string; files: number; seed: number | null };
  targets: TargetResult[];
  faults: FaultRecord[];
  generator: {
    timeline: GeneratorSecond[];
    eventLoop: LatencySummary;
    /** Plain sentences, e.g. "generator fell behind: …". */
    warnings: string[];
    /**
     * The sender threads that sent the load and why that many (absent in older results); `priority`:
     * how each was scheduled (load/sender.ts raises it where it may), null where it could not be read.
     */
    senders?: { threads: number; reason: string; priority?: (SenderPriority | null)[] };
    /**
     * CPU time of the whole generator process (every thread, user + system) from the start of the
     * measured window until its last request completed, and that per request sent.
     */
    cpu?: { totalMs: number; perRequestUs: number };
  };
  /** Requests sent at the same rate before the measured window (all targets), in no other figure. */
  warmup?: { durationMs: number; sent: number; completed: number; errors: number; outcomes: OutcomeCounts };
  facts?: Record<string, TargetFacts>;
  thresholds?: ThresholdOutcome[];
};

/** Live view of a run, passed to the progress callback about four times a second. */
export type LoadProgress = {
  elapsedMs: number;
  durationMs: number;
  targets: {
    name: string;
    sent: number;
    completed: number;
    inFlight: number;
    /** Completions per second over the last second. */
    rate: number;
    /** Corrected p99 of the last full second, microseconds. */
    p99: number;
    errors: number;
    dataLoss: number;
  }[];
  faults: FaultRecord[];
  behind: string | null;
  /** The warm-up before the measured window is running (elapsedMs stays 0 until it ends). */
  warmingUp?: boolean;
};
