/**
 * What crosses the boundary between the main thread and a sender thread (load/sender.ts), one named type
 * per message. Times are ms on the shared clock (load/clock.ts) or, inside a run, ms since its t0 (the
 * start of the measured window). Histograms travel encoded (load/histogram.ts) and are merged by the
 * main thread.
 */
import type { Manifest } from '../services/corpus/corpus.ts';
import type { VerifierPlan } from './body-verifier.ts';
import type { ErrorSample, OutcomeCounts, SenderPriority } from './types.ts';

/** A run's whole brief for one thread. */
export type SenderInit = {
  /** This thread's index k of `threads`: it sends the requests i ≡ k (mod threads) of every target. */
  thread: number;
  threads: number;
  /** Each target with the keep-alive connections of this thread's own pool to it. */
  targets: { name: string; url: string; connections: number }[];
  /** Requests per second per target, all threads together. */
  rate: number;
  durationMs: number;
  warmupMs: number;
  timeoutMs: number;
  seed: number;
  mix: string;
  manifest: Manifest;
  verifier: VerifierPlan;
  /** Send every measured completion to the main thread (for fault windows, metrics, the console). */
  streamCompletions: boolean;
  reportIntervalMs: number;
};

/** Main → sender: build the pools and verifier of a run, then answer SenderReady. */
export type RunSender = { type: 'run'; init: SenderInit };
/** Main → sender: the measured window starts at `t0` (shared clock); the warm-up runs in the `warmupMs` before it. */
export type StartSending = { type: 'start'; t0: number };
/** Main → sender: send nothing more (the run was stopped); requests in flight still finish. */
export type StopSending = { type: 'stop' };
/** Main → sender: close the run's pools and answer with SenderFinal; the thread waits for its next run. */
export type CloseSender = { type: 'close' };
export type ToSender = RunSender | StartSending | StopSending | CloseSender;

/**
 * Sender → main: pools and verifier are built; waiting for StartSending. `priority`: how the thread is
 * scheduled (sender.ts raises it where it may), or null where it could not be read.
 */
export type SenderReady = { type: 'ready'; thread: number; priority: SenderPriority | null };

/** One thread's totals for one target so far (each report replaces the previous one). */
export type TargetCounters = {
  sent: number;
  completed: number;
  bytes: number;
  outcomes: OutcomeCounts;
  verified: { bytes: number; sha256: number };
  warmup: { sent: number; completed: number; outcomes: OutcomeCounts };
  /** Every second before this one is final in this thread (all its requests sent and completed). */
  finalizedUpTo: number;
};

/** One thread's final numbers of one second of one target (seconds without its requests are not sent). */
export type SecondPart = {
  target: number;
  t: number;
  sent: number;
  outcomes: OutcomeCounts;
  /** Corrected latencies of the second's requests (2 significant digits). */
  histogram: string;
  /** Their exact maximum (an encoded histogram keeps only its bucket's upper end). */
  max: number;
};

/** One thread's health in one second of the run: how late its requests left, its event-loop delay. */
export type GeneratorSecondPart = { t: number; sendLag: string; sendLagMax: number; eventLoopP99: number };

/** A histogram on its way to the main thread, with its exact maximum. */
export type EncodedHistogram = { encoded: string; max: number };

/**
 * Measured completions in completion order, four numbers each: `target * OUTCOMES.length + outcome
 * index`, intended ms, completed ms (both since t0), corrected latency µs.
 */
export const COMPLETION_FIELDS = 4;

/** Sender → main, every `reportIntervalMs` and once more when it has finished. */
export type SenderReport = {
  type: 'report';
  thread: number;
  /** The thread's clock (ms since t0) when it wrote the report: no later completion can be earlier. */
  nowMs: number;
  targets: TargetCounters[];
  seconds: SecondPart[];
  /** Seconds of the measured window the thread has closed since its last report. */
  generator: GeneratorSecondPart[];
  completions: Float64Array | null;
  /** Nothing left to send and nothing in flight. */
  finished: boolean;
};

/** Sender → main, after CloseSender: the whole-run histograms (3 significant digits) and the samples. */
export type SenderFinal = {
  type: 'final';
  thread: number;
  targets: {
    latency: EncodedHistogram;
    serviceTime: EncodedHistogram;
    sendLag: EncodedHistogram;
    errorSamples: ErrorSample[];
  }[];
};

/** Sender → main: the thread could not build or end a run (the main thread ends the thread). */
export type SenderFailed = { type: 'failed'; thread: number; message: string };

export type FromSender = SenderReady | SenderReport | SenderFinal | SenderFailed;
