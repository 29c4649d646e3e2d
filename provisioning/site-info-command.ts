// `edgectl site-info --dir DIR`: where a peer connects to a development site, in a few lines.
import { existsSync, readFileSync } from 'node:fs';
import { DEV_ACCOUNT, DEV_PASSWORD_FILE } from './dev-account.ts';
import { join } from 'node:path';

export const siteInfoHelp = `usage: edgectl site-info --dir DIR

Prints the ports, AE titles and certificates of the development site in DIR (from DIR/site.json).`;

interface SiteJson {
  box: { host: string; hl7Port: number; dicomTlsPort: number; dicomPlainPort: number; adminPort?: number; aeTitle: string };
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
  if (b.adminPort !== undefined) {
    const passwordFile = join(dir, DEV_PASSWORD_FILE);
    console.log(`  admin page    https://localhost:${b.adminPort}/  (the browser warns: the site CA above is not one it trusts)`);
    console.log(
      existsSync(passwordFile)
        ? `                sign in as "${DEV_ACCOUNT}" with the password in ${passwordFile}`
        : `                no account yet: bin/edgectl dev-account --dir ${dir} (edged stopped)`,
    );
    console.log(`  metrics       /metrics on the same listener once admin.metrics is configured (docs/admin-page.md)`);
  }
  return 0;
}
