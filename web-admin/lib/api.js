// The page's one way to the box: JSON under /api, same origin, no caching. A refresh the page makes on
// its own is marked as background (X-Edge-Background: 1), so it never counts as user activity for the
// idle timeout. A 401 anywhere means the session ended: every listener of onSignedOut hears it.
const BACKGROUND_HEADER = 'X-Edge-Background';

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

const signedOutListeners = new Set();
const SESSION_GONE = new Set(['EDGE_ACCESS_UNAUTHENTICATED']);

export function onSignedOut(listener) {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export async function api(path, options = {}) {
  const { method = 'GET', body, background = false, query } = options;
  const headers = { accept: 'application/json' };
  if (background) headers[BACKGROUND_HEADER] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const qs = query === undefined ? '' : `?${new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== ''))}`;
  const res = await fetch(`/api${path}${qs}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    redirect: 'error',
  });
  let json;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  if (!res.ok && !(options.accept ?? []).includes(res.status)) {
    const error = json && json.error ? json.error : {};
    const err = new ApiError(res.status, error.code || `HTTP ${res.status}`, error.message || res.statusText, json);
    // 401 also answers a wrong password and a missing step-up; only these mean the session is gone.
    if (res.status === 401 && SESSION_GONE.has(err.code)) for (const l of signedOutListeners) l(err);
    throw err;
  }
  return json;
}
