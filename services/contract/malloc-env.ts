/**
 * The C allocator's settings for every Node server the project starts (glibc's malloc, set through the
 * environment as mallopt(3) describes): the styles' servers, the benchmark's floor, and both images.
 *
 * Why: Node keeps large buffers (a file's chunk, a NATS message, a response body) outside V8's heap, in
 * memory from malloc, and glibc by default gives freed memory back to the kernel — blocks from 128 KiB up
 * are mapped and unmapped one by one, and free memory above 128 KiB at the heap's top is trimmed. The
 * next buffer is then fresh memory, and a process's first touch of each 4 KiB page is a page fault. On the
 * VMs this project is measured on, a fault costs about 12 µs: 64 KiB is 16 of them, 1 MiB 256 (about
 * 3 ms), more than reading the same bytes. Without these settings a benchmark measures how often each
 * style frees and re-faults its buffers, not its architecture; with them every Node process keeps its
 * freed memory for the next request (services/microkernel/README.md, 'Page faults').
 *
 * The price: a process holds on to what it freed, up to the trim threshold, instead of returning it. A
 * threshold of 8 MiB saved 25 MiB in the monolith and brought the faults back (that README, 'Page faults').
 * Processes linked against another C library (musl) ignore the variables. glibc reads them when a
 * process starts, so they go in the environment of whoever starts it: a `kstyles monolith` or a
 * unikernel executable started by hand runs with glibc's defaults unless the shell exports them (the
 * microkernel's servers get them from its supervisor).
 */

const MiB = 1024 * 1024;

export const MALLOC_ENV = {
  /** Blocks below this come from the heap and are reused, not mapped afresh (glibc's ceiling, 32 MiB). */
  MALLOC_MMAP_THRESHOLD_: String(32 * MiB),
  /** Free memory at the heap's top is given back only beyond this. */
  MALLOC_TRIM_THRESHOLD_: String(128 * MiB),
  /** Each growth of the heap asks for this much more, so growing is rare. */
  MALLOC_TOP_PAD_: String(16 * MiB),
} as const;

/** The allocator settings a Node server runs with: MALLOC_ENV, except where the operator's environment sets one. */
export function mallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(MALLOC_ENV).map(([name, value]) => [name, env[name] ?? value]));
}
