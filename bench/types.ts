import { STYLES } from '../cli/kit/defaults.ts';
import type { StepVerdict } from './search.ts';

/** The file sizes the benchmark measures, each one file of the corpus. */
export const SIZES = {
  '4k': { label: '4 KiB', path: 'bench/4k.bin' },
  '64k': { label: '64 KiB', path: 'bench/64k.bin' },
  '1m': { label: '1 MiB', path: 'bench/1m.bin' },
} as const;
export type SizeKey = keyof typeof SIZES;
export const SIZE_KEYS = Object.keys(SIZES) as SizeKey[];

/** The reference points first, then the three styles. */
export const TARGET_NAMES = ['floor', 'nginx', ...STYLES] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
export const STYLE_NAMES = STYLES;

export type ThroughputResult = {
  /** Highest offered rate (req/s) that passed; 0 when none did. */
  maxRate: number;
  /** The limit was the load generator's: the target is at least this fast. */
  generatorBound: boolean;
  /** Lowest rate that failed and why. */
  firstFailure: StepVerdict | null;
  steps: StepVerdict[];
};

/** Corrected latency (from the intended send time) at the common fixed rate, microseconds. */
export type LatencyResult = {
  rate: number;
  durationMs: number;
  sent: number;
  ok: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** The generator fell behind in some second of the run. */
  generatorBehind: boolean;
  /** Cores the rest of the machine used meanwhile. */
  othersCores: number | null;
};

export type ColdStartResult = {
  /** Spawn → first 200 of a 4 KiB file, one per start, milliseconds. */
  samplesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** What was spawned and what counted as ready. */
  how: string;
};

export type RecoveryResult = {
  rate: number;
  durationMs: number;
  faultAtMs: number;
  /** What was killed, by whom, and what restarted it. */
  how: string;
  injected: boolean;
  message: string;
  requests: number;
  failed: number;
  /** Fault → first successful response after the first failure; null when nothing failed. */
  firstSuccessAfterFailureMs: number | null;
  /** Fault → first second whose p99 is back within 2× its pre-fault value. */
  p99RecoveryMs: number | null;
};

export type FootprintResult = {
  /** Peak and mean of the process tree's summed VmRSS while serving the common rate, bytes. */
  rssPeakBytes: number;
  rssMeanBytes: number;
  /** Processes in the tree (the microkernel counts its supervisor, nats-server and servers). */
  processes: number;
  processNames: string[];
  imageBytes?: number;
  fileCount?: number;
  hasShell?: boolean;
};

export type TargetBench = {
  name: TargetName;
  kind: 'reference' | 'style';
  /** What ran: command line or server. */
  description: string;
  /** Why this target was not measured at all. */
  skipped?: string;
  /** Why some measurements are missing. */
  notes: string[];
  throughput: Partial<Record<SizeKey, ThroughputResult>>;
  latency: Partial<Record<SizeKey, LatencyResult>>;
  coldStart?: ColdStartResult;
  recovery?: RecoveryResult;
  footprint?: FootprintResult;
};

export type NatsRoundTrip = {
  payloadBytes: number;
  count: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  how: string;
};

export type Machine = {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  node: string;
  natsServer: string | null;
  nginx: string | null;
  /** 1/5/15-minute load averages when the run started and ended: others' work on a shared machine shows here. */
  loadAverage: number[];
  loadAverageEnd?: number[];
  /** /proc/pressure/cpu "some avg60" (0..1) at the start and the end: how much runnable work waited for a CPU. */
  cpuPressure: number | null;
  cpuPressureEnd?: number | null;
};

export type CheckStatus = 'met' | 'missed' | 'not measured';

/** One of issue #8's targets, evaluated from the numbers. */
export type TargetCheck = {
  id: 'monolith-vs-floor' | 'microkernel-latency' | 'unikernel-throughput' | 'unikernel-cold-start';
  statement: string;
  status: CheckStatus;
  /** The numbers behind the verdict, in words. */
  evidence: string;
};

export type BenchMethod = {
  quick: boolean;
  p99BoundMs: number;
  stepWindowMs: number;
  warmupMs: number;
  fixedWindowMs: number;
  search: { startRates: Record<SizeKey, number>; maxRates: Record<SizeKey, number>; bisectSteps: number };
  coldStartRuns: number;
  recovery: { rate: number; durationMs: number; faultAtMs: number };
  connections: number;
  /** The common rate per size for the latency runs, and how it was chosen. */
  commonRates: Partial<Record<SizeKey, number>>;
  commonRateRule: string;
  natsRoundTrips: number;
  text: string[];
};

export type BenchResults = {
  version: 1;
  tool: 'kstyles-bench';
  startedAt: string;
  durationMs: number;
  machine: Machine;
  method: BenchMethod;
  nats: NatsRoundTrip | { skipped: string };
  targets: TargetBench[];
  checks: TargetCheck[];
  /** Files written next to results.json (load reports of the latency and recovery runs). */
  reports: Record<string, string>;
};
