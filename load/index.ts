/** The load generator as a library: the demo and the benchmark call these; `kstyles load` is a thin CLI over them. */
export {
  DockerFaultDriver,
  type DriverContext,
  defaultFaultDrivers,
  type FaultDriver,
  type FaultInjection,
  type FaultOptions,
  PoisonFaultDriver,
  SignalFaultDriver,
  SupervisorFaultDriver,
} from './fault-drivers.ts';
export { decodeHistogram, percentileCurve } from './histogram.ts';
export { rangeFileOf } from './hostile-battery.ts';
export { createLiveView, formatChecklist, formatSummary } from './live-view.ts';
export { mergeResults } from './merge-results.ts';
export { renderHtml } from './report-html.ts';
export { renderMarkdown } from './report-md.ts';
export { buildRequestMix, DEFAULT_MIX } from './request-mix.ts';
export { LOAD_DEFAULTS, type LoadOptions, type LoadTarget, runLoad } from './run-load.ts';
export { loadScenario, parseScenario, type Scenario, ScenarioError } from './scenario.ts';
export {
  type MeasuredSecurity,
  measureSecurity,
  type SecurityMeasurementOptions,
} from './security-facts.ts';
export { securityFindings, securityLines } from './security-report.ts';
export { seedComparison } from './seed-comparison.ts';
export {
  evaluateThresholds,
  parseThreshold,
  THRESHOLD_GRAMMAR,
  type Threshold,
  ThresholdError,
  thresholdExitCode,
} from './thresholds.ts';
export type * from './types.ts';
export { writeReports } from './write-reports.ts';
