/**
 * The schedule of an open-loop load, for tests and measurement scripts: `rate` requests per second for
 * `durationMs`, the i-th sent when it comes due whether or not earlier ones answered. What came due
 * during the last turn of a stalled loop is sent too: the schedule, not the machine, sets the count.
 */
export async function openLoop<T>(
  send: (i: number) => Promise<T>,
  options: { rate: number; durationMs: number },
): Promise<T[]> {
  const pending: Array<Promise<T>> = [];
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < options.durationMs) {
    const due = Math.floor(((Date.now() - start) / 1000) * options.rate);
    for (; sent < due; sent++) pending.push(send(sent));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const scheduled = Math.floor((options.durationMs / 1000) * options.rate);
  for (; sent < scheduled; sent++) pending.push(send(sent));
  return Promise.all(pending);
}
