/** Where the supervisor lives on the bus. Shared by the supervisor and its control client. */
export const SUPERVISOR_SUBJECTS = {
  serviceName: 'kstyles-supervisor',
  /** Service-API metadata key carrying the supervisor id, so `$SRV.PING.kstyles-supervisor` lists them. */
  idMetadataKey: 'supervisor_id',
  events: (supervisorId: string) => `kstyles.sup.events.${supervisorId}`,
  controlGroup: (supervisorId: string) => `kstyles.sup.ctl.${supervisorId}`,
  control: (supervisorId: string, op: ControlOp) => `kstyles.sup.ctl.${supervisorId}.${op}`,
} as const;

/** `probe` runs a named check its owner registered (SupervisorOptions.probes) and answers its result. */
export const CONTROL_OPS = ['status', 'kill', 'restart', 'crashloop', 'probe'] as const;
export type ControlOp = (typeof CONTROL_OPS)[number];

/** The most starts one `crashloop` request may arm. */
export const MAX_CRASH_STARTS = 1000;
/** Failed starts a crash loop arms when the caller does not say how many. */
export const DEFAULT_CRASH_STARTS = 3;
