// `edgectl audit verify BUNDLE --ca CA (--device-cert CERT | --after PREVIOUS)`: checks a signed audit
// bundle on any workstation (no store, no TPM, no daemon): signature and that the signer is the box
// itself, manifest, file digests, the hash chain, and contiguity with the previous bundle. Prints the
// first bad record when there is one. Only a bundle proven to come from the device exits 0.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pemCertificates, readManifest, verifyBundle, verifyDetached } from '../daemon/audit/index.ts';
import { BundleFile } from '../daemon/audit/bundle.ts';
import { readEntry, readTarIndex } from '../daemon/audit/tar.ts';

export const auditHelp = `usage: edgectl audit verify BUNDLE --ca CA_FILE (--device-cert CERT_FILE | --after PREVIOUS_BUNDLE) [--json]

Verifies an audit bundle pulled from a box (GET /v1/audit/bundle): the CMS signature over its manifest,
the manifest, the digests of records.jsonl and audit-messages.xml, the hash chain record by record, and,
with --after, that it continues the previous bundle exactly. Needs only the files: no box, no TPM.

  --ca CA_FILE        PEM file with the site CA(s): the signer must chain to one of them. Without it the
                      signature is checked against the certificate inside the bundle only (not trusted).
  --device-cert FILE  the box's own certificate (PEM), as recorded when it was provisioned: the signer must
                      be this device (the same certificate, a renewal of its key, or a key change signed
                      by it)
  --after FILE        the bundle pulled before this one: its signature is checked too, its signer is the
                      device this bundle's signer must be, and this bundle must continue it exactly
  --json              print the report as JSON

The signer must also be a device certificate (extended key usage serverAuth and clientAuth): a modality's
or the RIS's certificate from the same site CA never signs a bundle.

Exit status: 0 verified as signed by the device, 1 verification failed (the first bad record is
printed), 2 usage error, 3 intact but NOT verified as the device (no --ca, or neither --device-cert nor
--after), 4 verified as the device, but the device declares damaged records in the range (each GAP is
printed).`;

/** Exit statuses (docs/error-codes.md). */
export const VerifyExit = { verified: 0, failed: 1, usage: 2, signerNotVerified: 3, verifiedWithGaps: 4 } as const;

function usage(message: string): number {
  console.error(`edgectl: ${message}`);
  console.error("Run 'edgectl audit --help' for usage.");
  return 2;
}

export async function auditCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ca: { type: 'string' },
        after: { type: 'string' },
        'device-cert': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(auditHelp);
    return 0;
  }
  const [sub, bundle, ...extra] = positionals;
  if (sub !== 'verify') return usage(sub === undefined ? 'audit needs a command: verify' : `unknown audit command "${sub}"`);
  if (bundle === undefined) return usage('audit verify needs a BUNDLE');
  if (extra.length > 0) return usage(`unexpected argument: ${extra[0] ?? ''}`);

  let anchors: X509Certificate[] | undefined;
  if (values.ca !== undefined) {
    try {
      anchors = pemCertificates(readFileSync(values.ca, 'utf8')).map((der) => new X509Certificate(der));
    } catch (err) {
      console.error(`edgectl: cannot read --ca ${values.ca}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
    if (anchors.length === 0) {
      console.error(`edgectl: no certificate in ${values.ca}`);
      return 1;
    }
  }

  let deviceCert: X509Certificate | undefined;
  const deviceCertFile = values['device-cert'];
  if (deviceCertFile !== undefined) {
    try {
      const der = pemCertificates(readFileSync(deviceCertFile, 'utf8'))[0];
      if (der === undefined) throw new Error('no certificate in it');
      deviceCert = new X509Certificate(der);
    } catch (err) {
      console.error(`edgectl: cannot read --device-cert ${deviceCertFile}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }

  const problems: Array<{ where: string; what: string }> = [];
  let after;
  let afterSigner: X509Certificate | undefined;
  if (values.after !== undefined) {
    try {
      after = await readManifest(values.after);
      const index = await readTarIndex(values.after);
      const m = index.find((e) => e.name === BundleFile.manifest);
      const s = index.find((e) => e.name === BundleFile.signature);
      const v =
        m === undefined || s === undefined
          ? { ok: false, problem: 'no manifest or signature' }
          : verifyDetached(await readEntry(values.after, s), await readEntry(values.after, m), anchors);
      if (!v.ok) problems.push({ where: `previous bundle ${values.after}`, what: `signature: ${v.problem ?? 'invalid'}` });
      else if ('signer' in v) afterSigner = v.signer;
    } catch (err) {
      problems.push({ where: `previous bundle ${values.after}`, what: err instanceof Error ? err.message : String(err) });
    }
  }

  const report = await verifyBundle(bundle, {
    ...(anchors === undefined ? {} : { trustAnchors: anchors }),
    ...(after === undefined ? {} : { after }),
    ...(afterSigner === undefined ? {} : { afterSigner }),
    ...(deviceCert === undefined ? {} : { deviceCert }),
  });
  problems.push(...report.problems);
  const ok = problems.length === 0;
  const status = !ok
    ? VerifyExit.failed
    : !report.deviceVerified
      ? VerifyExit.signerNotVerified
      : report.damaged.length > 0
        ? VerifyExit.verifiedWithGaps
        : VerifyExit.verified;
  if (values.json === true) {
    console.log(
      JSON.stringify(
        {
          ok,
          status,
          trusted: report.trusted,
          deviceVerified: report.deviceVerified,
          signer: report.signer,
          manifest: report.manifest,
          damaged: report.damaged,
          problems,
          firstBadRecord: report.firstBadRecord,
        },
        null,
        2,
      ),
    );
    return status;
  }
  const m = report.manifest;
  if (m !== undefined) {
    console.log(`bundle     ${bundle}`);
    console.log(`device     ${m.device.site} (${report.signer ?? m.device.certificateSubject})`);
    if (m.device.environment !== undefined) console.log(`environment ${m.device.environment}`);
    console.log(`range      seq ${m.range.fromSeq}..${m.range.toSeq} (${m.count} records), ${m.range.fromTime} .. ${m.range.toTime}`);
    console.log(`hashes     previous ${m.previousHash.slice(0, 16)}… last ${m.lastHash.slice(0, 16)}…`);
  }
  for (const p of problems) console.log(`FAIL  ${p.where}: ${p.what}`);
  for (const d of report.damaged)
    console.log(`GAP  seq ${d.fromSeq}..${d.toSeq}: the device declares these records damaged and kept them aside (${d.problem})`);
  if (report.firstBadRecord !== undefined) {
    const b = report.firstBadRecord;
    console.log(`first bad record: line ${b.line}${b.seq === undefined ? '' : `, seq ${b.seq}`}${b.text === '' ? '' : `\n  ${b.text}`}`);
  }
  if (status === VerifyExit.verified || status === VerifyExit.verifiedWithGaps) {
    const gaps =
      status === VerifyExit.verifiedWithGaps
        ? `, except the ${report.damaged.length} damaged range(s) the device declares (GAP above)`
        : '';
    console.log(`OK: signed by the device (${report.deviceBy ?? ''}; chains to --ca), manifest, digests and chain verified${gaps}`);
  } else if (status === VerifyExit.signerNotVerified) {
    const why = !report.trusted
      ? 'the signer was not checked against a CA (use --ca)'
      : 'the device is not pinned (use --device-cert, or --after the previous bundle)';
    console.log(`NOT VERIFIED AS THE DEVICE: manifest, digests and chain are intact, but ${why}`);
  }
  return status;
}
