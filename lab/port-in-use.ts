import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';

/**
 * A port the lab or its console needs is taken: names it and what to do. On its own, so that the
 * console (which runs without a lab in compose) does not load the lab to report it.
 */
export class PortInUseError extends ProcessError {
  override readonly name = 'PortInUseError';
  readonly code = ProcessErrorCode.PORT_IN_USE;
}
