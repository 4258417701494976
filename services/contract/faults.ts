/**
 * The fault menu (docs/architecture.md, 'Faults'): the one list of fault kinds that scenario files and
 * `kstyles chaos` name, and the signal behind each signal-borne kind.
 */

export const FAULT_KINDS = ['kill', 'term', 'hang', 'poison', 'slow', 'crashloop', 'nats'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The signal of each signal-borne fault. `slow` is SIGUSR2, the driver's slow toggle in every style
 * (`services/driver/slow-fault.ts`): sent again to switch it off. A process without a SIGUSR2 handler
 * dies of it, so aim `slow` only at processes that have one.
 */
export const FAULT_SIGNALS = {
  kill: 'SIGKILL',
  term: 'SIGTERM',
  hang: 'SIGSTOP',
  slow: 'SIGUSR2',
} as const satisfies Partial<Record<FaultKind, NodeJS.Signals>>;
export type SignalFaultKind = keyof typeof FAULT_SIGNALS;

/** The signal that undoes a temporary fault: a hang ends with SIGCONT, a slowdown toggles off. */
export const UNDO_SIGNALS = {
  hang: 'SIGCONT',
  slow: 'SIGUSR2',
} as const satisfies Partial<Record<SignalFaultKind, NodeJS.Signals>>;

export const isSignalFault = (kind: FaultKind): kind is SignalFaultKind => kind in FAULT_SIGNALS;
