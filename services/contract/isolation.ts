/**
 * The answer of the microkernel's NATS isolation probe (services/microkernel/isolation-probe.ts), as its
 * supervisor sends it over the control API (`probe` op, name NATS_ISOLATION_PROBE) and the load generator
 * reads it: the ABI between the two, like the metric names.
 */

/** The name of the probe on the microkernel supervisor's control API. */
export const NATS_ISOLATION_PROBE = 'nats-isolation';

export type RoleIsolation = {
  /** A microkernel role: gateway, fs, driver, supervisor. */
  role: string;
  /** Attempts the server allowed / refused. */
  allowed: number;
  refused: number;
  /** The design's counts: how many it should have allowed / refused. */
  expectedAllowed: number;
  expectedRefused: number;
  /** Findings: allowed though the design refuses it (`publish kstyles.drv.x: request the driver`). */
  unexpectedAllowed: string[];
  /** Refused though the design needs it: the role cannot do its job. */
  unexpectedRefused: string[];
};

export type NatsIsolation = {
  /** The NATS server the attempts were made on. */
  server: string;
  attemptsPerRole: number;
  roles: RoleIsolation[];
  /** Roles whose credentials the prober does not hold (a deployment gives the console's to the console alone). */
  untried: string[];
  /** Connecting with no credentials, and with an nkey the server does not know: each should be refused. */
  anonymous: 'refused' | 'allowed';
  stranger: 'refused' | 'allowed';
  /** When it ran (ISO time) and how long it took. */
  at: string;
  ms: number;
};
