/**
 * What a server learns from the supervisors' event stream (`kstyles.sup.events.<id>`): that a child it
 * depends on exited or is ready again (MINIX 3's reincarnation server telling VFS about a new driver).
 * Only a hint: without it, crash probes and the backoff poller find the same, a little later.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { SUPERVISOR_SUBJECTS } from '../supervisor/subjects.ts';

/** Calls `onNews` whenever any supervisor reports child `child` exited or ready. */
export function followSupervisedChild(nc: NatsConnection, child: string, onNews: () => void): Subscription {
  return nc.subscribe(SUPERVISOR_SUBJECTS.events('*'), {
    callback: (err, msg) => {
      if (err) return;
      try {
        const event = msg.json<{ service?: string; type?: string }>();
        if (event.service === child && (event.type === 'exited' || event.type === 'ready')) onNews();
      } catch {
        // Not an event this server understands: ignore it, the probes still work.
      }
    },
  });
}
