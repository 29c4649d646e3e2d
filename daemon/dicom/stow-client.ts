// DICOMweb STOW-RS client (PS3.18 10.5) through undici: one POST per batch, a multipart/related body of
// Part 10 instances streamed from the spool (never whole in memory), mutual TLS with the box's
// certificate, an optional bearer token read from a file reference (never from argv or environment).
// The response's Referenced/Failed SOP Sequences decide each instance.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { DataDictionary, Tag } from '../core/data-dictionary.ts';
import { EdgeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { ClientTlsMaterial } from '../core/tls-material.ts';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './association.ts';
import type { InstanceTransport } from './pacs-forwarder.ts';
import type { StoreItem, StoreOutcome } from './store-scu.ts';

export interface StowClientOptions {
  /** The studies endpoint, e.g. https://pacs/dicom-web/studies. */
  readonly url: string;
  readonly tls?: ClientTlsMaterial;
  /** Read per request, so a rotated token file takes effect without a restart. */
  readonly bearerToken: (() => string) | undefined;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly logger: Logger;
}

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** PS3.10 7.1 File Meta Information in Explicit VR Little Endian, with preamble and "DICM". */
export function part10Header(item: Pick<StoreItem, 'sopClassUid' | 'sopInstanceUid' | 'transferSyntaxUid'>): Buffer {
  const el = (keyword: FileMetaKeyword, value: Buffer): Buffer => {
    const { tag, vr } = DataDictionary[keyword];
    const long = vr === 'OB';
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(tag >>> 16, 0);
    h.writeUInt16LE(tag & 0xffff, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(value.length, 8);
    else h.writeUInt16LE(value.length, 6);
    return Buffer.concat([h, value]);
  };
  const ui = (s: string): Buffer => Buffer.from(s.length % 2 === 0 ? s : `${s}\0`, 'latin1');
  const sh = (s: string): Buffer => Buffer.from(s.length % 2 === 0 ? s : `${s} `, 'latin1');
  const body = Buffer.concat([
    el('FileMetaInformationVersion', Buffer.from([0x00, 0x01])),
    el('MediaStorageSOPClassUID', ui(item.sopClassUid)),
    el('MediaStorageSOPInstanceUID', ui(item.sopInstanceUid)),
    el('TransferSyntaxUID', ui(item.transferSyntaxUid)),
    el('ImplementationClassUID', ui(IMPLEMENTATION_CLASS_UID)),
    el('ImplementationVersionName', sh(IMPLEMENTATION_VERSION_NAME)),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), el('FileMetaInformationGroupLength', groupLength), body]);
}

type FileMetaKeyword =
  | 'FileMetaInformationGroupLength'
  | 'FileMetaInformationVersion'
  | 'MediaStorageSOPClassUID'
  | 'MediaStorageSOPInstanceUID'
  | 'TransferSyntaxUID'
  | 'ImplementationClassUID'
  | 'ImplementationVersionName';

async function* multipartBody(items: readonly StoreItem[], boundary: string): AsyncGenerator<Uint8Array> {
  for (const it of items) {
    yield Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
    yield part10Header(it);
    for await (const chunk of it.data()) yield chunk;
    yield Buffer.from('\r\n', 'latin1');
  }
  yield Buffer.from(`--${boundary}--\r\n`, 'latin1');
}

interface DicomJsonValue {
  readonly Value?: readonly unknown[];
}
type DicomJson = Record<string, DicomJsonValue | undefined>;

/** The name of an attribute in the DICOM JSON Model: its tag as eight upper-case hex digits (PS3.18 F.2.1.1). */
function jsonKey(tag: number): string {
  return tag.toString(16).toUpperCase().padStart(8, '0');
}

function uidsIn(json: DicomJson, sequenceTag: number): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const item of (json[jsonKey(sequenceTag)]?.Value ?? []) as DicomJson[]) {
    const uid = item[jsonKey(Tag.ReferencedSOPInstanceUID)]?.Value?.[0];
    const reason = item[jsonKey(Tag.FailureReason)]?.Value?.[0];
    if (typeof uid === 'string') out.set(uid, typeof reason === 'number' ? reason : undefined);
  }
  return out;
}

export function stowTransport(options: StowClientOptions): InstanceTransport {
  const agent = new Agent({
    connect: {
      timeout: options.connectTimeoutMs,
      ...(options.tls === undefined
        ? {}
        : {
            ca: options.tls.ca,
            cert: options.tls.cert,
            key: options.tls.key,
            minVersion: options.tls.minVersion ?? 'TLSv1.2',
            ...(options.tls.ciphers === undefined ? {} : { ciphers: options.tls.ciphers }),
            ...(options.tls.ecdhCurve === undefined ? {} : { ecdhCurve: options.tls.ecdhCurve }),
          }),
    },
    headersTimeout: options.responseTimeoutMs,
    bodyTimeout: options.responseTimeoutMs,
  });
  return async (items, signal): Promise<StoreOutcome[]> => {
    const boundary = `edge-${randomBytes(12).toString('hex')}`;
    const headers: Record<string, string> = {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
    };
    const token = options.bearerToken?.();
    if (token !== undefined && token !== '') headers['authorization'] = `Bearer ${token}`;
    let statusCode: number;
    let json: DicomJson = {};
    try {
      const res = await request(options.url, {
        method: 'POST',
        dispatcher: agent,
        headers,
        body: Readable.from(multipartBody(items, boundary), { objectMode: false }),
        signal,
      });
      statusCode = res.statusCode;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of res.body) {
        size += (c as Buffer).length;
        if (size > MAX_RESPONSE_BYTES) throw new EdgeError('EDGE_STOW_FAILED', 'STOW-RS response too large');
        chunks.push(c as Buffer);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim().startsWith('{') || text.trim().startsWith('[')) {
        const parsed = JSON.parse(text) as DicomJson | DicomJson[];
        json = Array.isArray(parsed) ? (parsed[0] ?? {}) : parsed;
      }
    } catch (cause) {
      const e =
        cause instanceof EdgeError
          ? cause
          : new EdgeError('EDGE_STOW_FAILED', `STOW-RS request failed (${(cause as { code?: string }).code ?? 'error'})`, { cause });
      options.logger.warn('stow.failed', { code: e.code });
      return items.map(() => ({ error: e, reachedPeer: false }));
    }
    const referenced = uidsIn(json, Tag.ReferencedSOPSequence);
    const failed = uidsIn(json, Tag.FailedSOPSequence);
    options.logger.info('stow.response', { statusCode, instances: items.length, referenced: referenced.size, failed: failed.size });
    return items.map((it): StoreOutcome => {
      if (failed.has(it.sopInstanceUid)) {
        const reason = failed.get(it.sopInstanceUid);
        return { status: reason ?? 0xc000 };
      }
      if (referenced.has(it.sopInstanceUid) || (statusCode === 200 && referenced.size === 0)) return { status: 0 };
      // 401/403: a rotated or not yet provisioned token or certificate, fixed without touching the
      // images; 408/429: the server's momentary trouble. Retry those instead of dead-lettering images.
      if (statusCode >= 500 || statusCode === 401 || statusCode === 403 || statusCode === 408 || statusCode === 429) {
        return {
          error: new EdgeError('EDGE_STOW_FAILED', `STOW-RS answered HTTP ${statusCode}`, { detail: { httpStatus: statusCode } }),
          reachedPeer: true,
        };
      }
      return {
        error: new EdgeError('EDGE_STOW_REJECTED', `STOW-RS answered HTTP ${statusCode}`, { detail: { httpStatus: statusCode } }),
        reachedPeer: true,
      };
    });
  };
}
