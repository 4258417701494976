import { STYLES, type Style } from '../cli/kit/defaults.ts';
import type { Spread } from '../cli/kit/spread.ts';
import type { TargetFacts } from '../load/types.ts';
import type { Plan } from './plan.ts';
import type { Figure, RoundsProblem } from './repeats.ts';
import type { StepVerdict } from './search.ts';

/** The file sizes the benchmark measures, each one file of the corpus. */
export const SIZES = {
  '4k': { label: '4 KiB', path: 'bench/4k.bin' },
  '64k': { label: '64 KiB', path: 'bench/64k.bin' },
  '1m': { label: '1 MiB', path: 'bench/1m.bin' },
} as const;
export type SizeKey = keyof typeof SIZES;
export const SIZE_KEYS = Object.keys(SIZES) as SizeKey[];

/**
 * The reference points first, then the styles; the microkernel three times: with grant transfers (its
 * default: the driver's bytes go straight to the gateway), with copy-through (every chunk through the
 * file server), so the report shows how much of its IPC cost is copies (Liedtke's lesson), and with
 * shared-memory segments (a grant whose large payloads cross no socket).
 */
export const TARGET_NAMES = [
  'floor',
  'nginx',
  'monolith',
  'microkernel',
  'microkernel-copy',
  'microkernel-shm',
  'unikernel',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
export const STYLE_NAMES = STYLES;

/** One round of the throughput search of one target and size. */
export type ThroughputRound = {
  /** Highest offered rate (req/s) that passed; 0 when none did. */
  maxRate: number;
  /** The limit was the load generator's: the target is at least this fast. */
  generatorBound: boolean;
  /** Lowest rate that failed and why. */
  firstFailure: StepVerdict | null;
  steps: StepVerdict[];
  /** Median cores the rest of the machine used during the steps. */
  othersCores: number | null;
};

/** A fixed warm-up at a rate, then windows judged as search steps until one passed (`held`) or the plan's limit. */
export type WarmUp = { rate: number; fixedMs: number; windows: StepVerdict[]; held: boolean };

/** Corrected latency (from the intended send time) of one round at the common fixed rate, microseconds. */
export type LatencyRound = {
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

/** The process tree's summed VmRSS during one round's latency windows, bytes. */
export type FootprintRound = {
  rssPeakBytes: number;
  rssMeanBytes: number;
  /** Processes in the tree (the microkernel counts its supervisor, nats-server and servers). */
  processes: number;
  processNames: string[];
};

export type ImageFacts = { imageBytes?: number; fileCount?: number; hasShell?: boolean };

export type RecoveryRound = {
  rate: number;
  durationMs: number;
  faultAtMs: number;
  injected: boolean;
  message: string;
  requests: number;
  failed: number;
  /** Fault → first successful response after the first failure; null when nothing failed. */
  firstSuccessAfterFailureMs: number | null;
  /** Fault → first second whose p99 is back within 2× its pre-fault value. */
  p99RecoveryMs: number | null;
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
  /** What the warm-up before the first measurement at a size took (counted in no figure). */
  warmUps: Partial<Record<SizeKey, WarmUp>>;
  /** Value of a round: the highest rate that passed. */
  throughput: Partial<Record<SizeKey, Figure<ThroughputRound>>>;
  /** Value of a round: p50. */
  latency: Partial<Record<SizeKey, Figure<LatencyRound>>>;
  /** Value of a round: spawn → first 200 of a 4 KiB file, ms. */
  coldStart?: Figure<null>;
  coldStartHow?: string;
  /** Value of a round: failed requests. */
  recovery?: Figure<RecoveryRound>;
  /** What was killed, by whom, and what restarted it. */
  recoveryHow?: string;
  /** Value of a round: peak RSS. */
  footprint?: Figure<FootprintRound>;
  image?: ImageFacts;
};

/** One batch of sequential round trips. Value of a round: p50. */
export type NatsRound = { count: number; p50Us: number; p90Us: number; p99Us: number; p999Us: number };

/**
 * The NATS round trip two ways: back to back (the path warm, the processes busy; the NATS phase), and
 * paced at the 4 KiB common rate (each round trip wakes processes that were idle, as the microkernel's
 * hops at that rate do), one batch in each 4 KiB latency round right after the microkernel's window.
 * Issue #17's latency target counts the paced one.
 */
export type NatsResult = {
  payloadBytes: number;
  how: string;
  backToBack: Figure<NatsRound>;
  paced: { ratePerSecond: number; figure: Figure<NatsRound> };
};

/** The instrument: the load generator against nginx (or the floor when nginx is missing) on this machine. */
export type Calibration = {
  against: TargetName;
  size: SizeKey;
  /** Generator threads sending (the engine's event loops); a rate per core is the rate over these. */
  generatorThreads: number;
  sendLagBoundUs: number;
  /** Value of a round: the highest rate with send-lag p99 under the bound and no failed request. */
  maxRate: Figure<ThroughputRound>;
  noiseRate: number;
  /** Value of a round: corrected p99 at noiseRate. */
  noiseFloor: Figure<LatencyRound>;
  /** The same search once more after the measurements that lean on it (absent in older results). */
  closing?: InstrumentCheck | { skipped: string };
};

/**
 * Did the instrument hold through the run? One search for the generator's limit after the throughput
 * and latency phases, from the opening calibration's median: a run whose generator changed under it
 * (the host slowed, or sped up) measured its ratios with two instruments and is not comparable with
 * another run (issue #16's run-to-run test).
 */
export type InstrumentCheck = {
  round: ThroughputRound;
  /** The closing max rate ÷ the opening rounds' median. */
  ratio: number;
  /** The closing max rate lies within the opening rounds' [min–max], widened by the plan's tolerance. */
  held: boolean;
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

/** 'not decided': the rounds fall on both sides of the line. */
export type CheckStatus = 'met' | 'missed' | 'not decided' | 'not measured';

/** One of the issues' targets, evaluated from the rounds. */
export type TargetCheck = {
  id: string;
  /** The issues that set it. */
  issues: number[];
  statement: string;
  status: CheckStatus;
  /** The numbers behind the verdict, in words. */
  evidence: string;
};

/** A figure that stayed wrong after the reruns: a sanity rule still broken, or a ratio still unstable. */
export type FigureProblem = RoundsProblem & {
  /** 'max throughput 4 KiB', 'latency 4 KiB', 'cold start', … */
  figure: string;
};

export type BenchMethod = {
  quick: boolean;
  plan: Plan;
  /** What this plan gives up against the full one. */
  tradeoffs: string[];
  /** Relative step between two rates of the search ladder. */
  ladderResolution: number;
  /** The common rate per size for the latency runs. */
  commonRates: Partial<Record<SizeKey, number>>;
  text: string[];
};

export type BenchResults = {
  version: 2;
  tool: 'kstyles-bench';
  startedAt: string;
  durationMs: number;
  /** What the plan said the run would take, before it ran. */
  estimatedMs: number;
  machine: Machine;
  method: BenchMethod;
  calibration: Calibration | { skipped: string };
  nats: NatsResult | { skipped: string };
  /** The Security row of each running style, measured once (load/security-facts.ts). */
  security: Record<string, TargetFacts> | { skipped: string };
  /** What tracing costs each style (bench/tracing-cost.ts). */
  tracing: TracingCostReport | { skipped: string };
  targets: TargetBench[];
  checks: TargetCheck[];
  problems: FigureProblem[];
  /** Measurements taken again (sanity rules, disagreeing ratios). */
  reruns: number;
  /** Files written next to results.json (load reports of the latency and recovery runs). */
  reports: Record<string, string>;
};

/** The tracing modes bench/tracing-cost.ts compares: no exporter, every request, a sampled ratio. */
export const TRACING_MODES = ['off', 'on', 'sampled'] as const;
export type TracingMode = (typeof TRACING_MODES)[number];

export type ModeRun = {
  p50Us: number;
  p99Us: number;
  cpuUsPerRequest: number;
  requests: number;
  errors: number;
};

export type ModeResult = {
  mode: TracingMode;
  runs: ModeRun[];
  p50Us: Spread;
  p99Us: Spread;
  cpuUsPerRequest: Spread;
  /** Traced modes: the requests traced, and the spans and bytes of the traces file per traced request. */
  traced?: { requests: number; spansPerRequest: number; bytesPerRequest: number };
};

export type StyleResult = { style: Style; describe: string; modes: ModeResult[] };

export type TracingCostReport = {
  startedAt: string;
  rate: number;
  durationMs: number;
  repeats: number;
  ratio: number;
  mix: string;
  /** The 1-minute load average before and after: the figures mean little on a busy machine. */
  loadAverage: { before: number; after: number };
  /** What one span helper costs while no SDK is registered (this process), in nanoseconds per call. */
  offPathNsPerSpan: Spread;
  styles: StyleResult[];
};
