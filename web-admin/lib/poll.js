// Live values without reloading: fetch now, then every `intervalMs` as a background request (it does
// not keep the session alive). Stops when the view goes away.
import { useCallback, useEffect, useRef, useState } from './html.js';
import { api } from './api.js';

export function usePoll(path, intervalMs, query) {
  const [state, setState] = useState({ data: undefined, error: undefined, at: undefined });
  const queryKey = JSON.stringify(query ?? {});
  const alive = useRef(true);
  const load = useCallback(
    (background) =>
      api(path, { background, query }).then(
        (data) => alive.current && setState({ data, error: undefined, at: new Date() }),
        (error) => alive.current && setState((s) => ({ ...s, error })),
      ),
    [path, queryKey],
  );
  useEffect(() => {
    alive.current = true;
    load(false);
    const timer = intervalMs > 0 ? setInterval(() => load(true), intervalMs) : undefined;
    return () => {
      alive.current = false;
      if (timer !== undefined) clearInterval(timer);
    };
  }, [load, intervalMs]);
  return { ...state, refresh: () => load(false) };
}
