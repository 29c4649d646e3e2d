// Orthanc as the PACS in tests: started on loopback with its own config and working folder
// (test/peers/orthanc/orthanc-start.sh), asked through its REST API, stopped by PID.
import { PEERS } from './paths.ts';
import { run } from './processes.ts';

export interface Orthanc {
  readonly http: number;
  readonly dicom: number;
  stop(): Promise<void>;
  /** GET (or POST with a JSON body) on Orthanc's REST API, answer parsed as JSON. */
  rest<T>(path: string, body?: unknown): Promise<T>;
  /** SOP Instance UIDs of every instance Orthanc holds. */
  sopInstanceUids(): Promise<Set<string>>;
}

/**
 * `luaScript`: a Lua file for Orthanc to load (see orthanc-start.sh: LUA_SCRIPT). `worklists`: serve the
 * .wl files in `dir`/worklists through Orthanc's Modality Worklist plugin (WORKLISTS=1). `modalities`: its
 * DicomModalities (e.g. the box, for Orthanc's storage commitment reports: `{ EDGE: { AET, Host, Port,
 * AllowStorageCommitment } }`).
 */
export async function startOrthanc(
  dir: string,
  http: number,
  dicom: number,
  options: { luaScript?: string; worklists?: boolean; modalities?: Record<string, unknown> } = {},
): Promise<Orthanc> {
  const env = {
    ...process.env,
    ...(options.luaScript === undefined ? {} : { LUA_SCRIPT: options.luaScript }),
    ...(options.worklists === true ? { WORKLISTS: '1' } : {}),
    ...(options.modalities === undefined ? {} : { MODALITIES_JSON: JSON.stringify(options.modalities) }),
  };
  const r = await run('bash', [`${PEERS}/orthanc/orthanc-start.sh`, String(http), String(dicom), dir], { timeoutMs: 60_000, env });
  if (r.code !== 0) throw new Error(`orthanc: ${r.stderr}`);
  const pid = r.stdout.trim().split('\n').pop() ?? '';
  const rest = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${http}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    return (await res.json()) as T;
  };
  return {
    http,
    dicom,
    stop: async () => void (await run('bash', [`${PEERS}/lib/stop.sh`, pid])),
    rest,
    async sopInstanceUids() {
      const list = await rest<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>('/instances?expand');
      return new Set(list.map((i) => i.MainDicomTags.SOPInstanceUID));
    },
  };
}
