// `edgectl site-info --dir DIR`: where a peer connects to a development site, in a few lines.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const siteInfoHelp = `usage: edgectl site-info --dir DIR

Prints the ports, AE titles and certificates of the development site in DIR (from DIR/site.json).`;

interface SiteJson {
  box: { host: string; hl7Port: number; dicomTlsPort: number; dicomPlainPort: number; aeTitle: string };
  pki: { caCert: string };
  ris: { certFile: string; keyFile: string; sendingApplication: string; sendingFacility: string };
  modalities: Array<{ aeTitle: string; transport: string; certFile?: string }>;
}

export function siteInfo(dir: string): number {
  const s = JSON.parse(readFileSync(join(dir, 'site.json'), 'utf8')) as SiteJson;
  const b = s.box;
  const list = (t: string) =>
    s.modalities
      .filter((m) => m.transport === t)
      .map((m) => m.aeTitle + (m.certFile === undefined ? '' : ` (${m.certFile})`))
      .join(', ');
  console.log(`Imaging Edge development site (${join(dir, 'site.json')} lists everything a peer needs)`);
  console.log(
    `  HL7 MLLP+TLS  ${b.host}:${b.hl7Port}  as the RIS: ${s.ris.certFile}, MSH-3/4 ${s.ris.sendingApplication}/${s.ris.sendingFacility}`,
  );
  console.log(`  DICOM TLS     ${b.host}:${b.dicomTlsPort}  called AE ${b.aeTitle}; modalities ${list('tls')}`);
  console.log(`  DICOM plain   ${b.host}:${b.dicomPlainPort}  called AE ${b.aeTitle}; allowlisted ${list('plain')}`);
  console.log(`  site CA       ${s.pki.caCert}`);
  return 0;
}
