/**
 * A compose project driven through the `docker-compose` CLI (v1.29 and v2 take the same arguments), with
 * failures that explain themselves: while the stack comes up, every container's health probes and the
 * engine's events (create, start, die, restart, health_status) are recorded, and a failed start prints,
 * before anything is torn down, each container's state, exit code, restart count, every probe seen (start,
 * exit code, output) and the last 100 lines of its log.
 *
 * Why not testcontainers' DockerComposeEnvironment: when its wait fails it takes the stack down before a
 * caller can look at it, which is exactly when the containers have something to say.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type Run, run, sleep } from './docker.ts';

type HealthProbe = { Start: string; End: string; ExitCode: number; Output: string };
type InspectedContainer = {
  Id: string;
  Name: string;
  RestartCount: number;
  Config: { Labels: Record<string, string> };
  HostConfig: { RestartPolicy: { Name: string } };
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Error: string;
    OOMKilled: boolean;
    Health?: { Status: string; FailingStreak: number; Log: HealthProbe[] | null };
  };
};

/** One container's condition while the stack comes up: ready, still coming, or failed (and why). */
type Readiness = { service: string; ready: boolean; failed?: string };

export class ComposeUpError extends Error {
  override readonly name = 'ComposeUpError';
}

export class ComposeProject {
  /** Probes seen per container id, keyed by their start time (inspect keeps only the last five). */
  readonly #probes = new Map<string, Map<string, HealthProbe>>();
  readonly #events: string[] = [];
  #eventWatch: ChildProcess | undefined;
  #startedAt = 0;

  constructor(
    readonly name: string,
    readonly file: string,
    readonly env: Record<string, string>,
  ) {}

  compose(args: string[]): Run {
    return run('docker-compose', ['-p', this.name, '-f', this.file, ...args], this.env);
  }

  /**
   * `up -d`, then waits until every container of the project is healthy (or running, where it has no
   * healthcheck) and every one-shot container has exited 0. Throws ComposeUpError with the diagnostics.
   */
  async up(timeoutMs: number): Promise<void> {
    this.#startedAt = Date.now();
    this.#watchEvents();
    const up = this.compose(['up', '-d']);
    if (up.status !== 0) {
      this.#fail(`docker-compose up -d exited ${up.status}:\n${up.stdout}${up.stderr}`);
    }
    const until = Date.now() + timeoutMs;
    for (;;) {
      const states = this.#readiness();
      const failed = states.find((s) => s.failed);
      if (failed) this.#fail(`${failed.service}: ${failed.failed}`);
      if (states.length > 0 && states.every((s) => s.ready)) return;
      if (Date.now() > until) {
        const waiting = states.filter((s) => !s.ready).map((s) => s.service);
        this.#fail(`not ready within ${timeoutMs} ms: ${waiting.join(', ')}`);
      }
      await sleep(500);
    }
  }

  down(): Run {
    this.#eventWatch?.kill();
    return this.compose(['down', '-v', '-t', '5']);
  }

  /** Every container's state, restarts, probes and last log lines, and the engine's events since up. */
  diagnostics(): string {
    const lines = [`=== compose project ${this.name}: diagnostics (t = ms since up) ===`];
    for (const c of this.#inspectAll()) {
      const service = c.Config.Labels['com.docker.compose.service'] ?? c.Name;
      const s = c.State;
      lines.push(
        `--- ${service} (${c.Id.slice(0, 12)}): ${s.Status}, exit ${s.ExitCode}, restarts ${c.RestartCount}, ` +
          `health ${s.Health?.Status ?? 'none'} (failing streak ${s.Health?.FailingStreak ?? 0}), ` +
          `started ${this.#t(s.StartedAt)}, finished ${this.#t(s.FinishedAt)}${s.OOMKilled ? ', OOM-killed' : ''}${s.Error ? `, error: ${s.Error}` : ''}`,
      );
      for (const probe of [...(this.#probes.get(c.Id)?.values() ?? [])].sort((a, b) =>
        a.Start.localeCompare(b.Start),
      )) {
        lines.push(
          `  probe ${this.#t(probe.Start)}..${this.#t(probe.End)} exit ${probe.ExitCode}: ${probe.Output.trim().slice(0, 300) || '(no output)'}`,
        );
      }
      const logs = run('docker', ['logs', '--tail', '100', c.Id]);
      lines.push(
        `  last 100 log lines:`,
        ...`${logs.stdout}${logs.stderr}`
          .trimEnd()
          .split('\n')
          .map((l) => `  | ${l}`),
      );
    }
    lines.push('--- engine events', ...this.#events.map((e) => `  ${e}`));
    return lines.join('\n');
  }

  #fail(why: string): never {
    this.#recordProbes(this.#inspectAll());
    throw new ComposeUpError(`compose stack ${this.name} did not come up: ${why}\n${this.diagnostics()}`);
  }

  #t(iso: string): string {
    const at = Date.parse(iso);
    return Number.isFinite(at) && at > 0 ? `${at - this.#startedAt}` : '-';
  }

  #watchEvents(): void {
    const child = spawn(
      'docker',
      [
        'events',
        '--filter',
        `label=com.docker.compose.project=${this.name}`,
        '--filter',
        'type=container',
        '--format',
        '{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "com.docker.compose.service"}}',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        const [nanos, ...rest] = line.split(' ');
        // exec_* events are the probes themselves: recorded as probes, not repeated here.
        if (rest[0]?.startsWith('exec_')) continue;
        this.#events.push(`${Math.round(Number(nanos) / 1e6) - this.#startedAt} ${rest.join(' ')}`);
      }
    });
    child.unref();
    this.#eventWatch = child;
  }

  #inspectAll(): InspectedContainer[] {
    const ids = run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${this.name}`])
      .stdout.split('\n')
      .filter(Boolean);
    if (ids.length === 0) return [];
    const out = run('docker', ['inspect', ...ids]);
    return out.status === 0 ? (JSON.parse(out.stdout) as InspectedContainer[]) : [];
  }

  #recordProbes(containers: InspectedContainer[]): void {
    for (const c of containers) {
      const seen = this.#probes.get(c.Id) ?? new Map<string, HealthProbe>();
      for (const probe of c.State.Health?.Log ?? []) seen.set(probe.Start, probe);
      this.#probes.set(c.Id, seen);
    }
  }

  #readiness(): Readiness[] {
    const containers = this.#inspectAll();
    this.#recordProbes(containers);
    return containers.map((c) => {
      const service = c.Config.Labels['com.docker.compose.service'] ?? c.Name;
      const s = c.State;
      // A one-shot job (restart "no", like the corpus writer) is done when it has exited 0.
      if (c.HostConfig.RestartPolicy.Name === 'no') {
        if (s.Status === 'exited') {
          return s.ExitCode === 0
            ? { service, ready: true }
            : { service, ready: false, failed: `one-shot exited ${s.ExitCode}` };
        }
        return { service, ready: false };
      }
      if (s.Health?.Status === 'unhealthy') return { service, ready: false, failed: 'unhealthy' };
      if (!s.Running) return { service, ready: false };
      return { service, ready: !s.Health || s.Health.Status === 'healthy' };
    });
  }
}
