/**
 * Where the microkernel's servers live on the bus (docs/architecture.md, 'The microkernel'). Every endpoint
 * runs in a queue group named after its service, so extra replicas share the load with no change.
 */

export const SERVICE_NAMES = {
  fs: 'kstyles-fs',
  driver: 'kstyles-driver',
} as const;
export type ServiceName = (typeof SERVICE_NAMES)[keyof typeof SERVICE_NAMES];

export const SUBJECTS = {
  /**
   * Opens a file. Request payload: the raw request path (UTF-8). Reply: the FileStat and, when the reply
   * does not carry the whole file, an open-file handle in headers; the first bytes asked for as payload.
   */
  fsStat: 'kstyles.fs.stat',
  /** Request headers: handle, path, ETag, offset, length. Reply: the raw bytes (at most MAX_CHUNK_BYTES). */
  fsRead: 'kstyles.fs.read',
  /** Fire-and-forget: the gateway is done with the handle in the headers. */
  fsClose: 'kstyles.fs.close',
  /** Request headers: the FileRef, offset, length. Reply: the raw bytes. */
  drvRead: 'kstyles.drv.read',
} as const;

/** The service-API PING subjects: of every instance of a service, or of one instance. */
export function pingSubject(service: ServiceName, instanceId?: string): string {
  return instanceId === undefined ? `$SRV.PING.${service}` : `$SRV.PING.${service}.${instanceId}`;
}
