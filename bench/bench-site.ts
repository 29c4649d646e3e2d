// Turns a development site (`edgectl dev-site`) into the benchmark's site by editing its edge.json:
// - one plain modality per benchmark station (ST01..ST20), each scoped to its own station, as a
//   department's legacy modalities would be configured;
// - the TLS modality (ct1) answers for station ST01, so the TLS query asks for the same slice;
// - enough MLLP connections per peer for the 8-connection load;
// - a production box: the load's orders carry MSH-11 P, as a hospital's RIS sends them.
//
// Usage: node bench/bench-site.ts --dir SITE_DIR
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { QUERY_STATION, STATION_COUNT, stationAeTitle } from './worklist-plan.ts';

interface ModalityEntry {
  name: string;
  aeTitle: string;
  transport: 'tls' | 'plain';
  worklistScope?: { stationAeTitles?: string[]; modalities?: string[] };
  [key: string]: unknown;
}

interface EdgeJson {
  hl7: { maxConnections?: number; maxConnectionsPerPeer?: number; [key: string]: unknown };
  dicom: { modalities: ModalityEntry[]; [key: string]: unknown };
  [key: string]: unknown;
}

export const BENCH_HL7_CONNECTIONS_PER_PEER = 16;

export function benchConfig(config: EdgeJson): EdgeJson {
  const existing = config.dicom.modalities.map((m) =>
    m.transport === 'tls' ? { ...m, worklistScope: { stationAeTitles: [QUERY_STATION] } } : m,
  );
  const taken = new Set(existing.map((m) => m.aeTitle));
  const stations: ModalityEntry[] = [];
  for (let s = 0; s < STATION_COUNT; s++) {
    const aeTitle = stationAeTitle(s);
    if (taken.has(aeTitle)) continue;
    stations.push({
      name: `bench-${aeTitle.toLowerCase()}`,
      aeTitle,
      transport: 'plain',
      addresses: ['127.0.0.1/32'],
      worklistScope: { stationAeTitles: [aeTitle] },
    });
  }
  return {
    ...config,
    site: { ...(config['site'] as object), environment: 'production' },
    hl7: { ...config.hl7, maxConnections: 32, maxConnectionsPerPeer: BENCH_HL7_CONNECTIONS_PER_PEER },
    dicom: { ...config.dicom, modalities: [...existing, ...stations] },
  };
}

function main(): void {
  const { values } = parseArgs({ options: { dir: { type: 'string' } } });
  if (values.dir === undefined) throw new Error('usage: bench-site.ts --dir SITE_DIR');
  const file = join(values.dir, 'edge.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as EdgeJson;
  writeFileSync(file, `${JSON.stringify(benchConfig(config), null, 2)}\n`);
}

if (import.meta.main) main();
