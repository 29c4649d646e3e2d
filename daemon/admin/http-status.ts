// The one place error codes become HTTP statuses on the box's control API: a code that names a missing
// thing is 404; otherwise the error's kind decides (transient → 503, else 400); a non-EdgeError is 500.
import { isEdgeError, type ErrorCode } from '../core/errors.ts';

export const HttpStatusByCode: Readonly<Partial<Record<ErrorCode, number>>> = {
  EDGE_CONTROL_NOT_FOUND: 404,
  EDGE_PEER_NOT_FOUND: 404,
  EDGE_OUTBOX_NOT_FOUND: 404,
};

export function httpStatusOf(err: unknown): number {
  if (!isEdgeError(err)) return 500;
  return HttpStatusByCode[err.code] ?? (err.kind === 'transient' ? 503 : 400);
}
