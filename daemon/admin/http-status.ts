// The one place error codes become HTTP statuses on the box's control API and admin listener: a code that names a missing
// thing is 404; otherwise the error's kind decides (transient → 503, else 400); a non-EdgeError is 500.
import { isEdgeError, type ErrorCode } from '../core/errors.ts';

export const HttpStatusByCode: Readonly<Partial<Record<ErrorCode, number>>> = {
  EDGE_CONTROL_NOT_FOUND: 404,
  EDGE_OUTBOX_NOT_FOUND: 404,
  EDGE_ACCESS_UNAUTHENTICATED: 401,
  EDGE_ACCESS_SIGN_IN_FAILED: 401,
  EDGE_ACCESS_SIGN_IN_INCOMPLETE: 403,
  EDGE_ACCESS_THROTTLED: 429,
  EDGE_ACCESS_FORBIDDEN: 403,
  EDGE_ACCESS_STEP_UP_REQUIRED: 401,
  EDGE_ACCESS_HOST_REFUSED: 421,
  EDGE_ACCESS_ORIGIN_REFUSED: 403,
  EDGE_ACCESS_USER_EXISTS: 409,
  EDGE_ACCESS_USER_NOT_FOUND: 404,
  EDGE_ACCESS_MFA_INVALID: 401,
};

export function httpStatusOf(err: unknown): number {
  if (!isEdgeError(err)) return 500;
  return HttpStatusByCode[err.code] ?? (err.kind === 'transient' ? 503 : 400);
}
