/**
 * The far end of the NATS round trip the benchmark compares the microkernel's hops with: a process of
 * its own, as a file server is to the gateway, answering every request on SUBJECT with its payload.
 * Run: `node --import tsx bench/nats-echo-responder.ts SERVERS SUBJECT` (ends on SIGTERM).
 */
import { connect } from '@nats-io/transport-node';

const [servers, subject] = process.argv.slice(2);
if (!servers || !subject) {
  console.error('usage: nats-echo-responder.ts SERVERS SUBJECT');
  process.exit(2);
}
const nc = await connect({ servers, timeout: 2000 });
nc.subscribe(subject, {
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
await nc.flush();
process.on('SIGTERM', () => {
  void nc.close().finally(() => process.exit(0));
});
