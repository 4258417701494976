import {
  CONTROL_ERROR_OF_STATUS,
  type ControlErrorCode,
  type ControlStatus,
  ProcessError,
  ProcessErrorCode,
} from '../contract/errors.ts';

/**
 * A control request the supervisor refuses or fails. `status` is the service-API error code it travels
 * as on NATS (400, 404, 409, 500: the wire format clients already read); `code` is its registered name.
 */
export class ControlError extends ProcessError {
  override readonly name: string = 'ControlError';
  readonly code: ControlErrorCode;

  constructor(
    readonly status: ControlStatus,
    message: string,
  ) {
    super(message);
    this.code = CONTROL_ERROR_OF_STATUS[status] ?? ProcessErrorCode.CONTROL_FAILED;
  }
}
