// `edgectl dev-site`: a complete development site in one folder (PKI, data key, edge.json, site.json),
// so tests and people can start the box and connect real peers to it on loopback.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkConfig, ConfigError, errorsIn, formatIssue } from '../daemon/config/index.ts';
import { makeCa, makeLeaf, verifyChain } from './dev-pki.ts';

export interface DevSiteOptions {
  readonly dir: string;
  /** hl7 = basePort, dicom TLS = basePort + 1, dicom plain = basePort + 2, admin listener = basePort + 3. */
  readonly basePort: number;
  readonly ris?: { readonly host: string; readonly port: number };
  readonly pacs?: { readonly host: string; readonly port: number; readonly aeTitle: string };
  readonly force: boolean;
  readonly days?: number;
}

export const defaultBasePort = 12575;

const host = '127.0.0.1';
const box = { aeTitle: 'EDGE', receivingApplication: 'EDGE', receivingFacility: 'RAD1', siteName: 'DEV-SITE' } as const;
const risPeer = { name: 'ris', certificateCn: 'RIS.GENHOSP', sendingApplication: 'RIS', sendingFacility: 'GENHOSP' } as const;
const ct = { name: 'ct1', aeTitle: 'CT01', certificateCn: 'CT01.GENHOSP', modality: 'CT' } as const;
const mr = { name: 'mr1', aeTitle: 'MR01', modality: 'MR' } as const;
const stranger = { certificateCn: 'STRANGER.GENHOSP' } as const;

/** What a peer needs to reach the box; written as site.json (absolute paths). */
export interface SiteDescription {
  readonly configFile: string;
  readonly box: {
    readonly host: string;
    /** Name in the server certificate's SAN (besides IP 127.0.0.1). */
    readonly serverName: string;
    readonly hl7Port: number;
    readonly dicomTlsPort: number;
    readonly dicomPlainPort: number;
    readonly adminPort: number;
    readonly aeTitle: string;
    readonly receivingApplication: string;
    readonly receivingFacility: string;
  };
  readonly pki: {
    readonly caCert: string;
    readonly caKey: string;
    readonly serverCert: string;
    readonly serverKey: string;
  };
  readonly dataKeyFile: string;
  readonly ris: {
    readonly name: string;
    readonly certFile: string;
    readonly keyFile: string;
    readonly certificateCn: string;
    readonly sendingApplication: string;
    readonly sendingFacility: string;
  };
  readonly modalities: ReadonlyArray<{
    readonly name: string;
    readonly aeTitle: string;
    readonly transport: 'tls' | 'plain';
    readonly modality: string;
    readonly certFile?: string;
    readonly keyFile?: string;
    readonly certificateCn?: string;
  }>;
  /** Signed by the site CA but in no peer list: must be refused. */
  readonly stranger: { readonly certFile: string; readonly keyFile: string; readonly certificateCn: string };
  /** Signed by an unrelated CA, with the RIS's CN: must fail the TLS handshake. */
  readonly rogue: {
    readonly caCert: string;
    readonly caKey: string;
    readonly certFile: string;
    readonly keyFile: string;
    readonly certificateCn: string;
  };
  readonly upstream: {
    readonly ris?: { readonly host: string; readonly port: number };
    readonly pacs?: { readonly host: string; readonly port: number; readonly aeTitle: string };
  };
}

export class SiteExistsError extends Error {
  constructor(path: string) {
    super(`${path} already exists; pass --force to replace the site`);
    this.name = 'SiteExistsError';
  }
}

const written = ['edge.json', 'site.json', 'pki'] as const;

export async function writeDevSite(opts: DevSiteOptions): Promise<SiteDescription> {
  const dir = resolve(opts.dir);
  await removeExisting(dir, opts.force);
  try {
    return await write(dir, opts);
  } catch (err) {
    // Leave no half-written site behind, so a retry needs no --force.
    await Promise.all(written.map((name) => rm(join(dir, name), { recursive: true, force: true })));
    throw err;
  }
}

async function removeExisting(dir: string, force: boolean): Promise<void> {
  for (const name of written) {
    const path = join(dir, name);
    if (existsSync(path)) {
      if (!force) throw new SiteExistsError(path);
      await rm(path, { recursive: true, force: true });
    }
  }
}

async function write(dir: string, opts: DevSiteOptions): Promise<SiteDescription> {
  const days = opts.days ?? 825;
  await mkdir(dir, { recursive: true });
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, { mode: 0o700 });

  const ca = await makeCa(pkiDir, 'ca', 'Imaging Edge Development CA', days);
  const server = await makeLeaf(
    pkiDir,
    'server',
    ca,
    { cn: 'localhost', extendedKeyUsage: ['serverAuth', 'clientAuth'], subjectAltNames: ['DNS:localhost', `IP:${host}`] },
    days,
  );
  // The RIS also runs the status receiver the box connects to, so it gets serverAuth and a SAN too.
  const ris = await makeLeaf(
    pkiDir,
    'ris',
    ca,
    { cn: risPeer.certificateCn, extendedKeyUsage: ['clientAuth', 'serverAuth'], subjectAltNames: ['DNS:localhost', `IP:${host}`] },
    days,
  );
  const ct01 = await makeLeaf(pkiDir, 'ct01', ca, { cn: ct.certificateCn, extendedKeyUsage: ['clientAuth'] }, days);
  const strangerPair = await makeLeaf(pkiDir, 'stranger', ca, { cn: stranger.certificateCn, extendedKeyUsage: ['clientAuth'] }, days);
  const rogueCa = await makeCa(pkiDir, 'rogue-ca', 'Rogue CA', days);
  const rogue = await makeLeaf(pkiDir, 'rogue-client', rogueCa, { cn: risPeer.certificateCn, extendedKeyUsage: ['clientAuth'] }, days);
  await verifyChain(ca.certFile, [server.certFile, ris.certFile, ct01.certFile, strangerPair.certFile]);

  const dataKeyFile = await ensureDataKey(join(dir, 'keys'));

  const ports = { hl7: opts.basePort, dicomTls: opts.basePort + 1, dicomPlain: opts.basePort + 2, admin: opts.basePort + 3 };
  const upstream: Record<string, unknown> = {};
  if (opts.ris !== undefined) {
    upstream.ris = { host: opts.ris.host, port: opts.ris.port, tls: true, receivingApplication: 'RIS', receivingFacility: 'GENHOSP' };
  }
  if (opts.pacs !== undefined) {
    upstream.pacs = { host: opts.pacs.host, port: opts.pacs.port, aeTitle: opts.pacs.aeTitle, tls: false };
  }
  // Relative paths keep the site relocatable; the box resolves them against the config's folder.
  const config = {
    site: { name: box.siteName },
    dataDir: './data',
    keys: { backend: 'file', file: { path: './keys/data.key' } },
    tls: { caFile: './pki/ca.crt', certFile: './pki/server.crt', keyFile: './pki/server.key', minVersion: 'TLSv1.2' },
    log: { level: 'info' },
    hl7: {
      listen: { host, port: ports.hl7 },
      receivingApplication: box.receivingApplication,
      receivingFacility: box.receivingFacility,
      peers: [{ ...risPeer, addresses: [`${host}/32`] }],
    },
    dicom: {
      aeTitle: box.aeTitle,
      tls: { host, port: ports.dicomTls },
      plain: { host, port: ports.dicomPlain },
      modalities: [
        {
          name: ct.name,
          aeTitle: ct.aeTitle,
          transport: 'tls',
          certificateCn: ct.certificateCn,
          addresses: [`${host}/32`],
          worklistScope: { modalities: [ct.modality] },
        },
        { name: mr.name, aeTitle: mr.aeTitle, transport: 'plain', addresses: [`${host}/32`], worklistScope: { modalities: [mr.modality] } },
      ],
    },
    upstream,
    admin: { listen: { host, port: ports.admin } },
  };
  const configFile = join(dir, 'edge.json');
  const check = checkConfig(config, { baseDir: dir });
  const errors = errorsIn(check.issues);
  if (errors.length > 0) {
    // Values from the operator's input (an AE title for --pacs) land here, or a bug in this command.
    throw new ConfigError('EDGE_CONFIG_INVALID', `the generated config is invalid:\n${errors.map(formatIssue).join('\n')}`, errors);
  }
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' });

  const site: SiteDescription = {
    configFile,
    box: {
      host,
      serverName: 'localhost',
      hl7Port: ports.hl7,
      dicomTlsPort: ports.dicomTls,
      dicomPlainPort: ports.dicomPlain,
      adminPort: ports.admin,
      aeTitle: box.aeTitle,
      receivingApplication: box.receivingApplication,
      receivingFacility: box.receivingFacility,
    },
    pki: { caCert: ca.certFile, caKey: ca.keyFile, serverCert: server.certFile, serverKey: server.keyFile },
    dataKeyFile,
    ris: {
      name: risPeer.name,
      certFile: ris.certFile,
      keyFile: ris.keyFile,
      certificateCn: risPeer.certificateCn,
      sendingApplication: risPeer.sendingApplication,
      sendingFacility: risPeer.sendingFacility,
    },
    modalities: [
      {
        name: ct.name,
        aeTitle: ct.aeTitle,
        transport: 'tls',
        modality: ct.modality,
        certFile: ct01.certFile,
        keyFile: ct01.keyFile,
        certificateCn: ct.certificateCn,
      },
      { name: mr.name, aeTitle: mr.aeTitle, transport: 'plain', modality: mr.modality },
    ],
    stranger: { certFile: strangerPair.certFile, keyFile: strangerPair.keyFile, certificateCn: stranger.certificateCn },
    rogue: {
      caCert: rogueCa.certFile,
      caKey: rogueCa.keyFile,
      certFile: rogue.certFile,
      keyFile: rogue.keyFile,
      certificateCn: risPeer.certificateCn,
    },
    upstream: { ...(opts.ris === undefined ? {} : { ris: opts.ris }), ...(opts.pacs === undefined ? {} : { pacs: opts.pacs }) },
  };
  await writeFile(join(dir, 'site.json'), `${JSON.stringify(site, null, 2)}\n`, { flag: 'wx' });
  return site;
}

/**
 * Keeps an existing 32-byte data key (so a data directory written with it stays readable after
 * `--force`); otherwise writes a new one. Folder 0700, file 0600.
 */
async function ensureDataKey(keysDir: string): Promise<string> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  await chmod(keysDir, 0o700);
  const path = join(keysDir, 'data.key');
  if (existsSync(path)) {
    const [info, bytes] = await Promise.all([stat(path), readFile(path)]);
    if (info.isFile() && bytes.length === 32) {
      await chmod(path, 0o600);
      return path;
    }
    await rm(path, { force: true });
  }
  await writeFile(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
  return path;
}
