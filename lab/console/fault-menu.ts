/**
 * The console's fault buttons, per place it runs: in the local lab every fault goes through a
 * supervisor or an HTTP request; beside a deployment (compose) the microkernel's faults still go through
 * its supervisor's control API, while a whole container (monolith, unikernel, the microkernel's, NATS)
 * can only be killed through the Docker engine, whose socket compose does not mount unless asked.
 */
import { DEFAULT_CRASH_STARTS, MAX_CRASH_STARTS } from '../../services/supervisor/subjects.ts';
import { CONSOLE_STYLES, type ConsoleStyle, escapeHtml } from './render.ts';

/** One component's buttons: a fault target and the kinds that apply to it. */
export type FaultButtons = {
  target: string;
  label: string;
  kinds: string[];
  /** Why these buttons are disabled here; absent = they work. */
  unavailable?: string;
};

export type FaultMenu = {
  /** Where the console runs, for the page: `the local lab`, `docker compose`. */
  place: string;
  columns: Record<ConsoleStyle, FaultButtons[]>;
  /** What the console can and cannot do there, shown above the buttons. */
  notes: string[];
};

export const KIND_LABELS: Record<string, string> = {
  kill: 'kill (SIGKILL)',
  term: 'term (SIGTERM)',
  hang: 'hang (SIGSTOP for N s)',
  slow: 'slow (SIGUSR2 toggle)',
  poison: 'poison request',
  crashloop: 'crash loop (next N starts fail)',
  nats: 'NATS restart',
};

/** How long a hang or a slowdown lasts unless the page says otherwise. */
export const DEFAULT_SECONDS: Record<string, number> = { hang: 3, slow: 5 };

const CRASH_LOOP_NOTE = (restarter: string) =>
  `A crash loop: the supervisor SIGKILLs the microkernel's driver and makes its next N starts exit at once; each restart waits longer (backoff). More restarts than the microkernel supervisor's intensity allows (5 within 10 s by default) and it gives up: it stops its servers and exits, and ${restarter} restarts the whole microkernel tree. Watch the restarts, the backoff and the give-up in the supervisor events and the process trees below.`;

/** The microkernel's own faults, through its supervisor's control API: the same in the lab and compose. */
const MICROKERNEL_SERVERS: FaultButtons[] = [
  { target: 'microkernel:driver', label: 'driver', kinds: ['kill', 'term', 'hang', 'slow', 'crashloop'] },
  { target: 'microkernel:fs', label: 'file server', kinds: ['kill', 'hang'] },
  { target: 'microkernel:gateway', label: 'gateway', kinds: ['kill'] },
  { target: 'microkernel', label: 'driver (poison request)', kinds: ['poison'] },
];

/** `kstyles up`: the lab supervisor restarts the monolith, the unikernel, the microkernel tree and NATS. */
export const LAB_FAULT_MENU: FaultMenu = {
  place: 'the local lab',
  columns: {
    monolith: [
      { target: 'lab:monolith', label: 'monolith process', kinds: ['kill', 'term', 'hang', 'slow'] },
      { target: 'monolith', label: 'monolith driver', kinds: ['poison'] },
    ],
    microkernel: [
      ...MICROKERNEL_SERVERS,
      { target: 'lab:microkernel', label: 'microkernel supervisor', kinds: ['kill'] },
      { target: 'lab', label: 'NATS (the lab restarts it)', kinds: ['nats'] },
    ],
    unikernel: [
      { target: 'lab:unikernel', label: 'unikernel image', kinds: ['kill', 'term', 'hang', 'slow'] },
      { target: 'unikernel', label: 'unikernel driver', kinds: ['poison'] },
    ],
  },
  notes: [CRASH_LOOP_NOTE('the lab')],
};

/**
 * Beside a compose deployment (`kstyles console`): container faults need the Docker engine. With
 * `dockerUnavailable` (why it cannot be used) those buttons are shown disabled, with the reason.
 */
export function deploymentFaultMenu(dockerUnavailable: string | undefined): FaultMenu {
  const container = (name: string, label: string, kinds: string[]): FaultButtons => ({
    target: `docker:${name}`,
    label,
    kinds,
    ...(dockerUnavailable ? { unavailable: dockerUnavailable } : {}),
  });
  return {
    place: 'docker compose',
    columns: {
      monolith: [
        container('monolith', 'monolith container (the restart policy restarts it)', [
          'kill',
          'term',
          'hang',
          'slow',
        ]),
        { target: 'monolith', label: 'monolith driver', kinds: ['poison'] },
      ],
      microkernel: [
        ...MICROKERNEL_SERVERS,
        container('microkernel', 'microkernel container (the supervisor)', ['kill']),
        container('nats', 'NATS container', ['kill']),
      ],
      unikernel: [
        container('unikernel', 'unikernel container', ['kill', 'term', 'hang']),
        {
          target: 'unikernel',
          label: 'unikernel driver',
          kinds: ['poison'],
          unavailable: "compose runs the unikernel's production image: its fault hooks are compiled out",
        },
      ],
    },
    notes: [
      "Here the console reaches the microkernel's supervisor through NATS (its own NATS user: the supervisors' control API and events, nothing else) and the styles over HTTP: the microkernel's faults and the poison requests work.",
      dockerUnavailable
        ? `Container kills (monolith, unikernel, the microkernel's container, NATS) need the Docker engine: ${dockerUnavailable}. Those buttons are disabled.`
        : "Container kills go through the Docker engine: each signals the container's main process by its host PID, so the restart policy restarts it (a docker kill would count as a manual stop).",
      CRASH_LOOP_NOTE("the container's restart policy"),
    ],
  };
}

/** The button's reason to be disabled, if the menu disables it. */
export function unavailableReason(menu: FaultMenu, target: string, kind: string): string | undefined {
  for (const style of CONSOLE_STYLES) {
    const found = menu.columns[style].find((c) => c.target === target && c.kinds.includes(kind));
    if (found) return found.unavailable;
  }
  return undefined;
}

/** The buttons as forms that work without JavaScript; a disabled one says why. */
export function renderFaultForms(menu: FaultMenu): string {
  return CONSOLE_STYLES.map((style) => {
    const rows = menu.columns[style]
      .map((c) => {
        const why = c.unavailable ? ` <span class="unavailable">(${escapeHtml(c.unavailable)})</span>` : '';
        const forms = c.kinds
          .map((kind) => {
            const seconds = DEFAULT_SECONDS[kind];
            const hidden = [
              `<input type="hidden" name="target" value="${c.target}">`,
              `<input type="hidden" name="kind" value="${kind}">`,
              seconds ? `<input type="hidden" name="for" value="${seconds}">` : '',
              kind === 'crashloop'
                ? `<input type="hidden" name="times" value="${DEFAULT_CRASH_STARTS}">`
                : '',
            ].join('');
            const disabled = c.unavailable ? ` disabled title="${escapeHtml(c.unavailable)}"` : '';
            return `<form method="post" action="/fault" class="fault-form">${hidden}<button type="submit" data-target="${c.target}" data-kind="${kind}" aria-label="${kind} ${c.label} (${c.target})"${disabled}>${KIND_LABELS[kind] ?? kind}</button></form>`;
          })
          .join(' ');
        return `<div class="component"><span>${c.label} <code>${c.target}</code></span> ${forms}${why}</div>`;
      })
      .join('');
    return `<section class="faults" aria-label="${style} faults"><h3>${style}</h3>${rows}</section>`;
  }).join('');
}

/** The fields that set a hang's and a slowdown's length and a crash loop's starts, and the notes. */
export function renderFaultSettings(menu: FaultMenu): string {
  const notes = menu.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
  return `<p>Running beside <strong>${escapeHtml(menu.place)}</strong>. <label>hang for <input id="hang-seconds" type="number" min="1" max="60" value="${DEFAULT_SECONDS['hang']}"> s</label> · <label>slow for <input id="slow-seconds" type="number" min="1" max="60" value="${DEFAULT_SECONDS['slow']}"> s</label> · <label>crash loop of <input id="crashloop-starts" type="number" min="1" max="${MAX_CRASH_STARTS}" value="${DEFAULT_CRASH_STARTS}"> failing starts</label> (the fields apply with JavaScript; without it a hang lasts ${DEFAULT_SECONDS['hang']} s, a crash loop ${DEFAULT_CRASH_STARTS} starts)</p>${notes}`;
}
