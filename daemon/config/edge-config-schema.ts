// The one configuration schema of the box, defaults included. Types are derived from it, and so is
// docs/config.md (`edgectl config docs`). Cross-field rules live beside the part they constrain.
import { isIP } from 'node:net';
import {
  IssueCode,
  array,
  boolean,
  childPath,
  filePath,
  integer,
  object,
  oneOf,
  optional,
  refine,
  string,
  tagged,
  withDefault,
} from './schema-kit.ts';
import type { Infer } from './schema-kit.ts';
import { incidentsSchema } from './incidents-config-schema.ts';
import { oidcSchema } from './oidc-config-schema.ts';
import { dimseRouteFields, pacsCommonFields, stowIgnoredKeys, stowRouteFields, storageSchema } from './storage-config-schema.ts';
import { defaultStationSchema, stationRulesSchema } from './station-rules-schema.ts';
import {
  aeTitleProblem,
  cidrProblem,
  commonNameProblem,
  hl7IdentifierProblem,
  hostProblem,
  interfaceNameProblem,
  ipAddressProblem,
  isWildcardAddress,
  keywordProblem,
  modalityCodeProblem,
  characterSetTermProblem,
  normalizeAeTitle,
  peerNameProblem,
  prefixLengthOf,
  uidProblem,
} from './value-syntax.ts';
import { dataLocationProblem } from './file-access.ts';
import { certificateFileProblem, dataKeyFileProblem, keyCertificateMismatch, privateKeyFileProblem } from './tls-material.ts';
import { Environments, defaultServedPrefix } from '../core/environment.ts';

export const ImplicitVrLittleEndian = '1.2.840.10008.1.2';
export const ExplicitVrLittleEndian = '1.2.840.10008.1.2.1';

const ms = (doc: string, min = 100, max = 86_400_000) => integer({ doc: `${doc} (milliseconds)`, min, max });
const count = (doc: string, max: number) => integer({ doc, min: 1, max });
const aeTitle = (doc: string) => string({ doc, maxLength: 16, check: aeTitleProblem, label: 'AE title' });
const hl7Id = (doc: string) => string({ doc, maxLength: 64, check: hl7IdentifierProblem, label: 'HL7 namespace id' });
const peerName = (doc: string) => string({ doc, maxLength: 64, check: peerNameProblem, label: 'name' });
const commonName = (doc: string) => string({ doc, maxLength: 64, check: commonNameProblem, label: 'certificate CN' });
const addresses = (doc: string) =>
  array(string({ doc: 'address or CIDR block', maxLength: 49, check: cidrProblem, label: 'CIDR' }), { doc, minItems: 1, maxItems: 256 });
const returnKeys = (doc: string) =>
  array(string({ doc: 'attribute keyword', maxLength: 64, check: keywordProblem, label: 'keyword' }), { doc, minItems: 1 });

const listener = (doc: string) =>
  refine(
    object(
      {
        host: withDefault(
          string({
            doc: 'local address to listen on (one interface; `0.0.0.0` or `::` only with allowAllInterfaces)',
            maxLength: 45,
            check: ipAddressProblem,
            label: 'IP address',
          }),
          '127.0.0.1',
        ),
        port: integer({ doc: 'TCP port to listen on (0 = any free port, for tests)', min: 0, max: 65535 }),
        allowAllInterfaces: withDefault(
          boolean({ doc: 'allow a wildcard host (`0.0.0.0`, `::`): listen on every interface of the box' }),
          false,
        ),
      },
      { doc },
    ),
    (l, path, ctx) => {
      if (isWildcardAddress(l.host) && !l.allowAllInterfaces) {
        ctx.report(
          'error',
          IssueCode.AllInterfaces,
          childPath(path, 'host'),
          `"${l.host}" listens on every interface of the box, also on networks no peer should reach it from; ` +
            `set the address of the interface the peers use, or add "allowAllInterfaces": true to ${path} if every interface is meant`,
        );
      }
    },
  );

/** Plain DICOM has only the AE title and the source address as proof; wider blocks than these draw a warning. */
export const widestPlainModalityPrefix = { 4: 24, 6: 64 } as const;

const upstreamPort = (doc: string) => integer({ doc, min: 1, max: 65535 });
const upstreamHost = (doc: string) => string({ doc, maxLength: 253, check: hostProblem, label: 'host' });

// ---------------------------------------------------------------------------------------------------

const keysSchema = refine(
  tagged(
    'backend',
    {
      file: object(
        {
          file: object(
            {
              path: filePath({
                doc: 'the data key (at least 32 random bytes), mode 0600',
                mustExist: 'file',
                secret: true,
                contents: dataKeyFileProblem,
              }),
            },
            { doc: 'the data key in a plain file (development only)' },
          ),
        },
        { doc: 'data key in a file' },
      ),
      tpm: object(
        {
          tpm: withDefault(
            object(
              {
                tcti: withDefault(string({ doc: 'tpm2-tools TCTI string', maxLength: 256 }), 'device:/dev/tpmrm0'),
                pcrs: withDefault(
                  string({
                    doc: 'PCR selection the sealed keys are bound to (tpm2-tools syntax, e.g. `sha256:7` = Secure Boot state)',
                    maxLength: 64,
                    check: pcrSelectionProblem,
                    label: 'PCR selection',
                  }),
                  'sha256:7',
                ),
                commandTimeoutMs: withDefault(ms('give up on one TPM command after'), 30_000),
              },
              { doc: 'where the TPM is' },
            ),
            {},
          ),
        },
        { doc: 'data key sealed by the TPM' },
      ),
    },
    { doc: 'where the data key comes from: `"tpm"` in production, `"file"` for development' },
  ),
  (keys, path, ctx) => {
    if (keys.backend === 'file') {
      ctx.report(
        'warning',
        IssueCode.DevelopmentOnly,
        childPath(path, 'backend'),
        'keys.backend "file" keeps the data key unsealed on disk: for development only',
      );
    }
  },
);

const tlsSchema = object(
  {
    caFile: filePath({
      doc: "PEM bundle of the site CA(s) that peers' certificates must chain to",
      mustExist: 'file',
      contents: certificateFileProblem,
    }),
    certFile: filePath({
      doc: 'PEM certificate chain of the box (server and client), its own certificate first',
      mustExist: 'file',
      contents: certificateFileProblem,
    }),
    keyFile: optional(
      filePath({
        doc: 'PEM private key of the box matching certFile, mode 0600 (omit with keys.backend "tpm": the key is sealed in the TPM)',
        mustExist: 'file',
        secret: true,
        contents: privateKeyFileProblem,
      }),
    ),
    minVersion: withDefault(oneOf(['TLSv1.2', 'TLSv1.3'], { doc: 'lowest TLS version accepted (BCP 195)' }), 'TLSv1.2'),
  },
  { doc: "the box's TLS identity and trust anchors, used by every TLS listener and client" },
);

const hl7PeerSchema = object(
  {
    name: peerName("the peer's name in logs and on the admin page"),
    certificateCn: commonName('CN its TLS client certificate must carry'),
    sendingApplication: hl7Id('MSH-3 namespace id it must send'),
    sendingFacility: hl7Id('MSH-4 namespace id it must send'),
    addresses: optional(addresses('source addresses it may connect from (extra restriction; any when omitted)')),
    testChannel: withDefault(
      boolean({
        doc: "on a production box: this peer is the interface engine's test channel (its own certificate, addresses and MSH-3/MSH-4, required to differ from the production RIS); it must send MSH-11 `T`, and its orders go to the separate test worklist that only modalities with `testing` may query (docs/environments.md)",
      }),
      false,
    ),
  },
  { doc: 'an HL7 sender (RIS or interface engine)' },
);

// Caps on one inbound message, checked before it is split (memory stays bounded by them). The defaults
// sit far above what an order needs: HL7 v2.5.1 segments have at most ~50 fields, its richest types
// (XCN, XAD, CWE) about 23 components, HD has 3 sub-components; an ORM carries a few order groups.
const hl7LimitsSchema = object(
  {
    maxSegments: withDefault(count('segments in one message', 100_000), 1000),
    maxOrderGroups: withDefault(count('order groups (ORC segments) in one message; each becomes worklist items', 10_000), 100),
    maxFieldsPerSegment: withDefault(count('fields in one segment', 10_000), 256),
    maxRepetitions: withDefault(count('repetitions of one field (e.g. PID-3 patient identifiers)', 100_000), 100),
    maxComponents: withDefault(count('components in one repetition of a field', 10_000), 64),
    maxSubcomponents: withDefault(count('sub-components in one component', 10_000), 32),
  },
  { doc: 'caps on the shape of one message: a message over any of them is answered AE with ERR naming the first position over the cap' },
);

/** Connections before they authenticate, held apart from authenticated ones (core/pre-authentication-pool.ts). */
function preAuthenticationSchema(until: string, timeoutMs: number | string, doc: string) {
  const what = `close a connection not authenticated this long after connect (${until})`;
  return object(
    {
      // A string names a default that follows another setting (the listener applies it).
      timeoutMs:
        typeof timeoutMs === 'number'
          ? withDefault(ms(what, 100, 600_000), timeoutMs)
          : optional(ms(`${what}; omitted = ${timeoutMs}`, 100, 600_000)),
      maxConnections: withDefault(
        count('connections not yet authenticated, in total per listener; when full the oldest is closed', 4096),
        64,
      ),
      maxConnectionsPerAddress: withDefault(
        count("connections not yet authenticated per source address; when full that address's oldest is closed", 1024),
        8,
      ),
    },
    { doc },
  );
}

const hl7Schema = refine(
  object(
    {
      listen: withDefault(listener('the MLLP+TLS listener'), { host: '127.0.0.1', port: 2575 }),
      receivingApplication: withDefault(
        hl7Id("the box's HL7 application: MSH-3 of the procedure status it sends to upstream.ris (ACKs echo the MSH-5 the sender used)"),
        'EDGE',
      ),
      receivingFacility: withDefault(hl7Id("the box's HL7 facility: MSH-4 of the procedure status it sends to upstream.ris"), 'RAD1'),
      maxFrameBytes: withDefault(integer({ doc: 'largest MLLP frame accepted (bytes)', min: 1024, max: 67_108_864 }), 1_048_576),
      idleTimeoutMs: withDefault(ms('close a connection idle this long'), 300_000),
      frameTimeoutMs: withDefault(
        ms('an MLLP frame must be completed this long after its first byte, however slowly the bytes come'),
        30_000,
      ),
      limits: withDefault(hl7LimitsSchema, {}),
      ackWriteTimeoutMs: withDefault(ms('give up writing an ACK after'), 10_000),
      maxConnections: withDefault(
        count('authenticated MLLP connections in total (connections still in their TLS handshake are in preAuthentication)', 4096),
        32,
      ),
      maxConnectionsPerPeer: withDefault(count('authenticated MLLP connections per peer', 1024), 4),
      preAuthentication: withDefault(
        preAuthenticationSchema(
          'TLS handshake and peer check; also the TLS handshake timeout',
          'min(hl7.idleTimeoutMs, 30 s)',
          'connections before their peer is identified, held apart from authenticated ones so strangers cannot keep the RIS out',
        ),
        {},
      ),
      acceptDebuggingProcessingId: withDefault(
        boolean({
          doc: 'also accept messages with MSH-11 `D` (debugging) on a test or training box; never allowed on a production box',
        }),
        false,
      ),
      replayWindowHours: withDefault(
        integer({ doc: "how long a sender's MSH-10 is remembered to drop duplicates (hours)", min: 1, max: 8760 }),
        168,
      ),
      peers: withDefault(
        array(hl7PeerSchema, {
          doc: 'who may send HL7; everyone else is refused',
          unique: [
            { key: (p) => p.name, field: 'name' },
            { key: (p) => p.certificateCn, field: 'certificateCn' },
            {
              key: (p) => `${p.sendingApplication}^${p.sendingFacility}`,
              field: 'sendingFacility',
              what: 'sendingApplication + sendingFacility',
            },
          ],
        }),
        [],
      ),
    },
    { doc: 'HL7 v2 over MLLP+TLS from the RIS' },
  ),
  (hl7, path, ctx) => {
    hl7.peers.forEach((p, i) => {
      // A test channel is told apart from the production RIS by everything it presents.
      if (p.testChannel && p.addresses === undefined) {
        ctx.report(
          'error',
          IssueCode.Required,
          `${childPath(path, 'peers')}[${i}].addresses`,
          'is required for a test channel: list the addresses of its interface engine',
        );
      }
    });
    if (hl7.peers.length === 0) {
      ctx.report('warning', IssueCode.NoPeers, childPath(path, 'peers'), 'no HL7 peers: every connection will be refused');
    }
    if (hl7.maxConnectionsPerPeer > hl7.maxConnections) {
      ctx.report('warning', IssueCode.Inconsistent, childPath(path, 'maxConnectionsPerPeer'), 'is larger than maxConnections');
    }
  },
);

const worklistScopeSchema = object(
  {
    stationAeTitles: optional(
      array(aeTitle('a Scheduled Station AE Title'), { doc: 'only items for these Scheduled Station AE Titles (0040,0001)', minItems: 1 }),
    ),
    modalities: optional(
      array(string({ doc: 'modality code', check: modalityCodeProblem, label: 'modality code' }), {
        doc: 'only items of these modalities (0008,0060)',
        minItems: 1,
      }),
    ),
  },
  { doc: 'limits what this modality sees in the worklist, whatever it asks for' },
);

const modalityStorageCommitmentSchema = object(
  {
    port: upstreamPort('the port its storage commitment SCU listens on for the N-EVENT-REPORT'),
    host: optional(upstreamHost('its host or address; default: the address its N-ACTION came from')),
    aeTitle: optional(aeTitle('the called AE title of its commitment SCU; default: its aeTitle')),
    tls: optional(
      boolean({ doc: 'connect with TLS (its server certificate checked against tls.caFile); default: true for a TLS modality' }),
    ),
  },
  {
    doc: 'where the box sends storage commitment reports (N-EVENT-REPORT) when the association that asked has closed',
  },
);

const modalityCommon = {
  name: peerName("the modality's name in logs and on the admin page"),
  aeTitle: aeTitle('its calling AE title'),
  worklistScope: optional(worklistScopeSchema),
  returnKeys: optional(returnKeys('attributes returned to this modality (overrides dicom.worklist.returnKeys)')),
  testing: withDefault(
    boolean({
      doc: "on a production box: a modality (or service AE title) declared for testing: it queries only the test worklist of the HL7 test channels, marked like a test box's, and may not send MPPS or images; never sees the production worklist",
    }),
    false,
  ),
  characterSet: optional(
    string({
      doc: 'Specific Character Set (0008,0005) worklist answers to this modality are in, whatever its query says (e.g. `ISO_IR 100` for a console that sends none but shows Latin-1); an answer that does not fit it is sent in `ISO_IR 192`',
      check: characterSetTermProblem,
      label: 'defined term',
    }),
  ),
  storageCommitment: optional(modalityStorageCommitmentSchema),
};

const modalitySchema = tagged(
  'transport',
  {
    tls: object(
      {
        ...modalityCommon,
        certificateCn: commonName('CN its TLS client certificate must carry'),
        addresses: optional(addresses('source addresses it may connect from (extra restriction)')),
      },
      { doc: 'a modality on the TLS port' },
    ),
    plain: object(
      { ...modalityCommon, addresses: addresses('source addresses it may connect from (required: the only proof besides the AE title)') },
      { doc: 'a legacy modality on the plain port' },
    ),
  },
  { doc: 'a modality allowed to query the worklist (and later send MPPS and images)' },
);

const worklistSchema = object(
  {
    enabled: withDefault(boolean({ doc: 'offer the Modality Worklist SOP class' }), true),
    maxResults: withDefault(integer({ doc: 'most items returned to one C-FIND', min: 1, max: 100_000 }), 1000),
    returnKeys: optional(returnKeys('attributes returned (data minimisation); all supported ones when omitted')),
    environmentPrefix: optional(
      string({
        doc: `on a test or training box, put before every item's Scheduled Procedure Step Description and comments so nobody mistakes it for a real order; omitted = \`${defaultServedPrefix('test')}\` or \`${defaultServedPrefix('training')}\`; never used on a production box`,
        minLength: 1,
        maxLength: 16,
        check: servedPrefixProblem,
        label: 'prefix',
      }),
    ),
    stationRules: stationRulesSchema,
    defaultStation: defaultStationSchema,
  },
  { doc: 'the Modality Worklist service (1.2.840.10008.5.1.4.31)' },
);

const storageCommitmentSchema = object(
  {
    enabled: withDefault(boolean({ doc: 'offer the Storage Commitment Push Model SOP class (1.2.840.10008.1.20.1) to modalities' }), true),
    deadlineMs: withDefault(
      ms('instances the PACS has not confirmed this long after the N-ACTION are reported as failed (0x0110)', 1000, 30 * 86_400_000),
      86_400_000,
    ),
    retentionMs: withDefault(
      ms(
        'reported requests (to recognise a repeated Transaction UID) and PACS confirmations (to answer late requests) are kept this long',
        60_000,
        90 * 86_400_000,
      ),
      7 * 86_400_000,
    ),
    connectTimeoutMs: withDefault(ms('give up connecting to the modality for a report after'), 10_000),
    responseTimeoutMs: withDefault(ms('wait this long for the association and the N-EVENT-REPORT-RSP'), 30_000),
  },
  { doc: 'the Storage Commitment SCP (see docs/dicom-conformance.md)' },
);

const dicomSchema = refine(
  object(
    {
      aeTitle: withDefault(aeTitle("the box's AE title (called AE)"), 'EDGE'),
      tls: optional(listener('the DICOM TLS listener; omitted = disabled')),
      plain: optional(listener('the plain DICOM listener for legacy modalities; omitted = disabled')),
      maxPduLength: withDefault(integer({ doc: 'largest P-DATA PDU the box receives (bytes)', min: 16_384, max: 131_072 }), 65_536),
      associationRequestTimeoutMs: withDefault(ms('wait for the A-ASSOCIATE-RQ after connect'), 30_000),
      idleTimeoutMs: withDefault(ms('release an association idle this long'), 120_000),
      maxAssociations: withDefault(count('accepted associations in total', 4096), 32),
      maxAssociationsPerAddress: withDefault(count('accepted associations per source address', 1024), 8),
      preAuthentication: withDefault(
        preAuthenticationSchema(
          'TLS handshake and A-ASSOCIATE-RQ included',
          10_000,
          'connections before their association is accepted, held apart from authenticated associations so strangers cannot keep a known modality out',
        ),
        {},
      ),
      transferSyntaxes: withDefault(
        array(string({ doc: 'transfer syntax UID', check: uidProblem, label: 'UID' }), {
          doc: 'transfer syntaxes accepted, in order of preference',
          minItems: 1,
          unique: [{ key: (u) => u, what: 'transfer syntax' }],
        }),
        [ExplicitVrLittleEndian, ImplicitVrLittleEndian],
      ),
      worklist: withDefault(worklistSchema, {}),
      storage: withDefault(storageSchema, {}),
      storageCommitment: withDefault(storageCommitmentSchema, {}),
      modalities: withDefault(
        array(modalitySchema, {
          doc: 'who may associate; everyone else is refused',
          unique: [
            { key: (m) => m.name, field: 'name' },
            { key: (m) => normalizeAeTitle(m.aeTitle), field: 'aeTitle', what: 'AE title' },
          ],
        }),
        [],
      ),
    },
    { doc: 'the DICOM services for modalities' },
  ),
  (dicom, path, ctx) => {
    const modalitiesPath = childPath(path, 'modalities');
    if (dicom.tls === undefined && dicom.plain === undefined) {
      ctx.report('warning', IssueCode.Inconsistent, path, 'neither dicom.tls nor dicom.plain is set: no DICOM listener');
    }
    if (
      dicom.tls !== undefined &&
      dicom.plain !== undefined &&
      dicom.tls.port !== 0 &&
      dicom.tls.port === dicom.plain.port &&
      hostsOverlap(dicom.tls.host, dicom.plain.host)
    ) {
      ctx.report('error', IssueCode.Duplicate, childPath(childPath(path, 'plain'), 'port'), 'is the same as dicom.tls.port');
    }
    if (!dicom.transferSyntaxes.includes(ImplicitVrLittleEndian)) {
      ctx.report(
        'warning',
        IssueCode.Inconsistent,
        childPath(path, 'transferSyntaxes'),
        `lacks Implicit VR Little Endian (${ImplicitVrLittleEndian}), the default every modality can fall back to`,
      );
    }
    if (dicom.maxAssociationsPerAddress > dicom.maxAssociations) {
      ctx.report('warning', IssueCode.Inconsistent, childPath(path, 'maxAssociationsPerAddress'), 'is larger than maxAssociations');
    }
    const own = normalizeAeTitle(dicom.aeTitle);
    dicom.modalities.forEach((m, i) => {
      const at = `${modalitiesPath}[${i}]`;
      if (normalizeAeTitle(m.aeTitle) === own) {
        ctx.report('error', IssueCode.Duplicate, childPath(at, 'aeTitle'), "is the box's own AE title (dicom.aeTitle)");
      }
      if (m.transport === 'tls' && dicom.tls === undefined) {
        ctx.report(
          'error',
          IssueCode.Inconsistent,
          childPath(at, 'transport'),
          'is "tls" but dicom.tls (the TLS listener) is not configured',
        );
      }
      if (m.transport === 'plain' && dicom.plain === undefined) {
        ctx.report(
          'error',
          IssueCode.Inconsistent,
          childPath(at, 'transport'),
          'is "plain" but dicom.plain (the plain listener) is not configured',
        );
      }
      if (m.transport === 'plain') {
        m.addresses.forEach((address, j) => {
          const block = prefixLengthOf(address);
          const widest = block === undefined ? undefined : widestPlainModalityPrefix[block.family];
          if (block === undefined || widest === undefined || block.prefix >= widest) return;
          ctx.report(
            'warning',
            IssueCode.Insecure,
            `${at}.addresses[${j}]`,
            `lets any host in ${address} use the plain port as ${m.aeTitle} (no certificate, no encryption); ` +
              `list the modality's own address, or at most its /${widest} segment`,
          );
        });
      }
    });
  },
);

const outboxSchema = object(
  {
    initialDelayMs: withDefault(ms('first retry after a failed delivery, before jitter'), 1000),
    maxDelayMs: withDefault(ms('retries back off exponentially (by backoffMultiplier) up to this'), 300_000),
    backoffMultiplier: withDefault(
      integer({ doc: 'each retry waits this many times the delay before it, up to maxDelayMs', min: 1, max: 10 }),
      2,
    ),
    jitterPercent: withDefault(
      integer({ doc: 'share of each delay that is random (50 = between half and all of it)', min: 0, max: 100 }),
      50,
    ),
    downAfterFailures: withDefault(count('failed attempts in a row after which a destination is shown as down', 100), 3),
    deliveryTimeoutMs: withDefault(ms('a batch still not done after this is aborted and retried'), 600_000),
    deadLetterAfterRefusals: withDefault(
      count(
        'times a destination may answer one entry with a transient refusal (C-STORE 0xA700, STOW-RS 5xx) before it becomes a dead letter with that reason; attempts while the destination is unreachable do not count',
        1000,
      ),
      10,
    ),
    deadLetterAfterRefusedMs: withDefault(
      ms('an entry still refused this long after its first refusal becomes a dead letter, whatever the count', 1000, 30 * 86_400_000),
      86_400_000,
    ),
  },
  { doc: 'store-and-forward queues of every outbound leg (see docs/outbox.md)' },
);

const pacsTimeouts = {
  connectTimeoutMs: withDefault(ms('give up connecting after'), 10_000),
  responseTimeoutMs: withDefault(ms('wait this long for each DIMSE response (STOW-RS: for the HTTP answer)'), 60_000),
} as const;

// A route is one of two shapes, so a STOW-RS route cannot lack its URL and needs no DIMSE address.
// Configs written before the union name no protocol: they are DIMSE routes, as they always were.
const pacsSchema = tagged(
  'protocol',
  {
    dimse: object(
      {
        host: upstreamHost('the PACS that receives forwarded images'),
        port: upstreamPort('its DICOM port'),
        aeTitle: aeTitle('its called AE title'),
        tls: withDefault(boolean({ doc: 'connect with TLS (server certificate checked against tls.caFile)' }), true),
        ...pacsTimeouts,
        ...pacsCommonFields,
        ...dimseRouteFields,
      },
      { doc: 'DICOM C-STORE to host:port, called AE title aeTitle' },
    ),
    stow: object(
      { stowUrl: stowRouteFields.stowUrl, bearerTokenFile: stowRouteFields.bearerTokenFile, ...pacsTimeouts, ...pacsCommonFields },
      { doc: 'DICOMweb STOW-RS to stowUrl', ignoredKeys: stowIgnoredKeys },
    ),
  },
  { doc: 'where images go: DICOM C-STORE (`"dimse"`) or DICOMweb STOW-RS (`"stow"`); see docs/storage.md', defaultTag: 'dimse' },
);

const upstreamSchema = refine(
  object(
    {
      ris: optional(
        object(
          {
            host: upstreamHost('the RIS (or interface engine) that receives procedure status'),
            port: upstreamPort('its MLLP port'),
            tls: withDefault(boolean({ doc: 'connect with TLS (server certificate checked against tls.caFile)' }), true),
            receivingApplication: hl7Id('MSH-5 of messages sent to it'),
            receivingFacility: hl7Id('MSH-6 of messages sent to it'),
            connectTimeoutMs: withDefault(ms('give up connecting after'), 10_000),
            ackTimeoutMs: withDefault(ms('wait this long for its ACK'), 30_000),
            messageStyle: withDefault(
              oneOf(['orm-o01', 'omi-o23'], { doc: 'procedure status as ORM^O01 v2.3.1 (ORC-1 SC, ORC-5 IP/CM/DC) or OMI^O23 v2.5.1' }),
              'orm-o01',
            ),
            batchSize: withDefault(count('status messages sent on one connection before it is closed', 1000), 50),
          },
          { doc: 'where procedure status goes (HL7 over MLLP)' },
        ),
      ),
      pacs: optional(pacsSchema),
      mwl: optional(
        object(
          {
            host: upstreamHost("the upstream worklist provider (the RIS's own Modality Worklist SCP) the box pulls items from"),
            port: upstreamPort('its DICOM port'),
            aeTitle: aeTitle('its called AE title'),
            tls: withDefault(boolean({ doc: 'connect with TLS (server certificate checked against tls.caFile)' }), true),
            intervalMs: withDefault(
              ms('query it this often (and at once on `edgectl worklist import`); the cache age alarm fires at twice this', 1000),
              300_000,
            ),
            removeAfterMs: withDefault(
              ms('an item it no longer lists stays on the worklist this long (0 = leaves at the next complete answer)', 0, 30 * 86_400_000),
              3_600_000,
            ),
            daysAhead: withDefault(
              integer({ doc: 'ask for steps scheduled from yesterday to this many days ahead (0 = any date)', min: 0, max: 366 }),
              0,
            ),
            maxItems: withDefault(
              count('answers beyond this are cancelled (C-CANCEL) and the answer counts as incomplete', 1_000_000),
              50_000,
            ),
            connectTimeoutMs: withDefault(ms('give up connecting after'), 10_000),
            responseTimeoutMs: withDefault(ms('wait this long for each C-FIND response'), 60_000),
          },
          {
            doc: 'the upstream worklist cache: items pulled by C-FIND from the RIS or another worklist provider, merged under HL7-fed orders (see docs/downtime.md)',
          },
        ),
      ),
    },
    { doc: 'outbound peers (store-and-forward)' },
  ),
  (upstream, path, ctx) => {
    if (upstream.ris?.tls === false) {
      ctx.report('warning', IssueCode.Insecure, childPath(path, 'ris.tls'), 'HL7 to the RIS travels unencrypted');
    }
    if (upstream.mwl?.tls === false) {
      ctx.report('warning', IssueCode.Insecure, childPath(path, 'mwl.tls'), 'worklist items from the upstream provider travel unencrypted');
    }
    if (upstream.pacs?.protocol === 'dimse' && upstream.pacs.storageCommitment && ipAddressProblem(upstream.pacs.host) !== undefined) {
      ctx.report(
        'warning',
        IssueCode.Inconsistent,
        childPath(path, 'pacs.host'),
        "is a host name: the PACS's storage commitment reports are then accepted only on the TLS listener (with its client certificate); give its IP address to accept them on the plain listener",
      );
    }
    if (upstream.pacs?.protocol === 'dimse' && !upstream.pacs.tls) {
      ctx.report('warning', IssueCode.Insecure, childPath(path, 'pacs.tls'), 'images to the PACS travel unencrypted');
    }
    if (upstream.pacs?.protocol === 'stow' && new URL(upstream.pacs.stowUrl).protocol === 'http:') {
      ctx.report('warning', IssueCode.Insecure, childPath(path, 'pacs.stowUrl'), 'images to the PACS travel unencrypted (http, not https)');
    }
  },
);

const numberPrefix = (doc: string) =>
  string({
    doc,
    maxLength: 8,
    check: (v) => (/^[A-Z0-9-]+$/.test(v) ? undefined : 'use capital letters, digits and "-" only'),
    label: 'prefix',
  });

const downtimeSchema = refine(
  object(
    {
      accessionNumbers: withDefault(
        object(
          {
            prefix: withDefault(numberPrefix('leads every downtime accession number (and placer order number)'), 'DT'),
            first: withDefault(integer({ doc: 'first number of the local range', min: 0, max: 999_999_999 }), 1),
            last: withDefault(integer({ doc: 'last number of the local range', min: 0, max: 999_999_999 }), 999_999),
            digits: withDefault(integer({ doc: 'numbers are zero-padded to this many digits', min: 1, max: 10 }), 6),
          },
          {
            doc: "the local range of accession numbers for orders entered at the box; agree it with the RIS so that it never collides with the RIS's own",
          },
        ),
        {},
      ),
      placerIssuer: optional(hl7Id("namespace id (ORC-2.2) of the box's placer order numbers; default hl7.receivingApplication")),
      temporaryIdPrefix: withDefault(numberPrefix('leads the temporary patient ID given when the patient ID is not known'), 'TMP'),
      answerDeadlineMs: withDefault(
        ms(
          'a downtime order no order from the RIS has named by then goes on the reconciliation list as "no-answer"',
          1000,
          30 * 86_400_000,
        ),
        86_400_000,
      ),
    },
    { doc: 'downtime order entry and reconciliation with the RIS (see docs/downtime.md)' },
  ),
  (d, path, ctx) => {
    if (d.accessionNumbers.last < d.accessionNumbers.first) {
      ctx.report('error', IssueCode.InvalidValue, childPath(path, 'accessionNumbers.last'), 'must not be below accessionNumbers.first');
    }
    if (String(d.accessionNumbers.last).length > d.accessionNumbers.digits) {
      ctx.report(
        'error',
        IssueCode.InvalidValue,
        childPath(path, 'accessionNumbers.digits'),
        'is too few digits for accessionNumbers.last',
      );
    }
    if (d.accessionNumbers.prefix.length + d.accessionNumbers.digits > 14) {
      ctx.report(
        'error',
        IssueCode.InvalidValue,
        childPath(path, 'accessionNumbers'),
        'prefix and digits together must stay within 14 characters (the step id adds "-1" to an SH of 16)',
      );
    }
  },
);

const auditSchema = object(
  {
    retentionDays: withDefault(
      integer({
        doc: 'keep audit records this long, then prune them through a signed checkpoint (days; 2192 = 6 years)',
        min: 1,
        max: 36_500,
      }),
      2192,
    ),
    checkpointEveryRecords: withDefault(count('sign a checkpoint of the chain head after this many new records', 10_000_000), 10_000),
    checkpointEveryMs: withDefault(ms('sign a checkpoint of the chain head at least this often when records were added', 1000), 60_000),
    coalesceIntervalMs: withDefault(
      ms(
        'connection refusals (port scans, failed TLS handshakes): the first of a source and reason is recorded at once, its repeats in one summary with their count after',
        1000,
        3_600_000,
      ),
      60_000,
    ),
    coalesceMaxSources: withDefault(
      count('source+reason keys counted at once; refusals beyond them share one "other sources" summary per event type', 100_000),
      1024,
    ),
    diskBudgetBytes: withDefault(
      integer({
        doc: 'disk space the audit chain may take before an alarm (80 %: warning, 100 %: exceeded); recording never stops (bytes)',
        min: 1_048_576,
        max: Number.MAX_SAFE_INTEGER,
      }),
      17_179_869_184,
    ),
    collectors: withDefault(
      array(
        object(
          {
            name: peerName("the collector's name (its stream cursor and alerts use it)"),
            host: upstreamHost('the central syslog collector (RFC 5425 syslog over TLS, mutual authentication)'),
            port: upstreamPort('its syslog-TLS port (6514 by convention)'),
            serverName: optional(
              string({ doc: 'name its server certificate must carry (default: host)', maxLength: 253, check: hostProblem, label: 'host' }),
            ),
          },
          { doc: 'a central audit repository receiving the live stream; its certificate must chain to tls.caFile' },
        ),
        { doc: 'where the live audit stream goes; each has its own durable cursor', unique: [{ key: (c) => c.name, field: 'name' }] },
      ),
      [],
    ),
    stream: withDefault(
      object(
        {
          connectTimeoutMs: withDefault(ms('give up a connection attempt after'), 10_000),
          confirmAfterMs: withDefault(
            ms('count a record as delivered once it was written this long before the connection was still up', 100, 600_000),
            2000,
          ),
          retryMaxMs: withDefault(ms('longest wait between reconnect attempts'), 30_000),
          alertIntervalMs: withDefault(ms('at most one "collector unreachable" alert per collector per'), 300_000),
        },
        { doc: 'syslog-TLS stream behaviour' },
      ),
      {},
    ),
    pull: optional(
      object(
        {
          listen: listener('the HTTPS pull API for central teams (client certificates from the central CA only)'),
          centralCaFile: filePath({
            doc: 'PEM CA(s) of the central security team: the only client certificates accepted',
            mustExist: 'file',
            contents: certificateFileProblem,
          }),
          allowedCns: optional(
            array(commonName('a client certificate CN'), {
              doc: 'only these client certificate CNs (any from the central CA when omitted)',
              minItems: 1,
            }),
          ),
          maxBundleRecords: withDefault(integer({ doc: 'most records in one bundle', min: 1, max: 10_000_000 }), 1_000_000),
          requestTimeoutMs: withDefault(ms('a request (including the bundle download) must finish within'), 600_000),
          maxConnections: withDefault(count('open connections in total', 1024), 8),
        },
        { doc: 'the audit pull API; omitted = disabled' },
      ),
    ),
  },
  { doc: 'the audit trail: retention, signed checkpoints, the live syslog-TLS stream and the pull API' },
);

const interfaceName = (doc: string) => string({ doc, maxLength: 15, check: interfaceNameProblem, label: 'interface name' });
const ipAddresses = (doc: string) =>
  array(string({ doc: 'IP address', maxLength: 45, check: ipAddressProblem, label: 'IP address' }), { doc, maxItems: 16 });

const adminSchema = object(
  {
    listen: listener('the HTTPS admin listener (the admin segment; hospital IT and the admin page)'),
    hostNames: optional(
      array(upstreamHost('a name or address browsers reach the box by'), {
        doc: 'Host header values accepted (DNS rebinding defence); the listen address, `localhost` and site.name when omitted',
        minItems: 1,
        maxItems: 32,
      }),
    ),
    maxConnections: withDefault(count('open connections in total', 4096), 64),
    requestTimeoutMs: withDefault(ms('a request must arrive whole and be answered within', 1000, 600_000), 30_000),
    headersTimeoutMs: withDefault(ms('request headers must arrive within', 1000, 60_000), 10_000),
    maxBodyBytes: withDefault(integer({ doc: 'largest request body accepted (bytes)', min: 1024, max: 16_777_216 }), 65_536),
    session: withDefault(
      object(
        {
          idleTimeoutMs: withDefault(
            ms('a session ends after this long without a user action (background refreshes do not count)', 1000),
            600_000,
          ),
          absoluteLifetimeMs: withDefault(ms('a session ends this long after sign-in, whatever the activity', 1000), 43_200_000),
          stepUpWindowMs: withDefault(
            ms('a sensitive action needs the password or a TOTP code proven again within this', 1000, 3_600_000),
            300_000,
          ),
          bindToAddress: withDefault(
            boolean({ doc: 'a session is refused (and ended) from another client address than it began on' }),
            true,
          ),
        },
        { doc: 'session rules' },
      ),
      {},
    ),
    lockout: withDefault(
      object(
        {
          backoffAfterFailures: withDefault(count('failed sign-ins in a row (per user name) before the back-off starts', 100), 5),
          addressBackoffAfterFailures: withDefault(
            count('failed sign-ins in a row from one source address before the back-off starts', 1000),
            20,
          ),
          initialBackoffMs: withDefault(ms('first wait once the back-off starts; doubles with each further failure', 10, 3_600_000), 1000),
          maxBackoffMs: withDefault(ms('longest wait of the back-off', 10), 900_000),
          lockAfterFailures: withDefault(
            count('failed sign-ins in a row after which an account is locked until an admin or `edgectl user unlock` unlocks it', 1000),
            20,
          ),
        },
        { doc: 'failed sign-ins: back-off per user name and per source address, then lockout' },
      ),
      {},
    ),
    oidc: optional(oidcSchema),
    metrics: optional(
      object(
        {
          clientCa: optional(
            filePath({
              doc: 'PEM CA(s) whose client certificates may scrape `/metrics` (certificates it issued directly)',
              mustExist: 'file',
              contents: certificateFileProblem,
            }),
          ),
          tokenFile: optional(
            filePath({ doc: 'file holding the bearer token a scraper may send instead (mode 0600)', mustExist: 'file', secret: true }),
          ),
        },
        { doc: 'Prometheus metrics at `/metrics` (docs/admin-page.md): only for these credentials; omitted = no `/metrics`' },
      ),
    ),
    breakGlass: withDefault(
      object(
        {
          role: withDefault(oneOf(['viewer', 'operator', 'admin', 'auditor'], { doc: 'role a break-glass elevation grants' }), 'operator'),
          durationMs: withDefault(ms('an elevation ends after', 1000), 1_800_000),
        },
        { doc: 'emergency access (docs/access-control.md#break-glass)' },
      ),
      {},
    ),
  },
  { doc: 'the admin listener and its JSON API (docs/access-control.md); omitted = no admin listener' },
);

// Only the box's firewall (edgectl segmentation) reads this section; edged itself never does.
const networkSchema = object(
  {
    ntpServers: withDefault(ipAddresses('NTP servers the box may reach (UDP 123)'), []),
    dnsServers: withDefault(ipAddresses('DNS resolvers the box may reach (UDP and TCP 53)'), []),
    hostAddresses: withDefault(
      array(
        object(
          {
            host: upstreamHost('a host name used in upstream.*, audit.collectors[] or upstream.pacs.stowUrl'),
            addresses: addresses('the addresses it resolves to: the firewall opens egress to these only'),
          },
          { doc: 'addresses of an upstream given by name (nftables matches addresses, not names)' },
        ),
        { doc: 'addresses of upstreams given by host name', unique: [{ key: (h) => h.host.toLowerCase(), field: 'host' }] },
      ),
      [],
    ),
    auditPullClients: optional(
      addresses('source addresses of the central security team allowed to reach the audit pull API (any when omitted)'),
    ),
    adminClients: optional(addresses('source addresses (the admin segment) allowed to reach the admin listener (any when omitted)')),
    interfaces: withDefault(
      object(
        {
          hl7: optional(interfaceName('interface the HL7 listener is reached on (the RIS segment)')),
          dicomTls: optional(interfaceName('interface the DICOM TLS listener is reached on')),
          dicomPlain: optional(interfaceName('interface the plain DICOM listener is reached on (the modality segment)')),
          auditPull: optional(interfaceName('interface the audit pull API is reached on')),
          admin: optional(interfaceName('interface the admin listener is reached on (the admin segment)')),
        },
        { doc: 'per-listener interfaces: a listener is then open on that interface only' },
      ),
      {},
    ),
    verifyResultFile: optional(
      filePath({
        doc: 'where the root `edgectl segmentation verify --result` (the edge-firewall-verify timer) writes its result; edged reads it and raises an alarm on drift (omitted = edged does not watch)',
        mustExist: 'nothing',
      }),
    ),
    verifyCheckIntervalMs: withDefault(ms('how often edged reads the verify result', 1000, 3_600_000), 60_000),
    dropLogPerMinute: withDefault(
      integer({ doc: 'dropped packets logged per minute and chain (the rest are only counted)', min: 1, max: 6000 }),
      10,
    ),
  },
  { doc: "the box's own firewall (docs/segmentation.md): infrastructure it may reach, interfaces of its listeners" },
);

export const edgeConfigSchema = refine(
  object(
    {
      site: object(
        {
          name: string({
            doc: "this box's name in logs, audit records and the admin page",
            maxLength: 64,
            check: peerNameProblem,
            label: 'name',
          }),
          environment: withDefault(
            oneOf(Environments, {
              doc: 'which world the box serves: `production` (real patients), `test` or `training`; decides the HL7 processing id (MSH-11) it accepts and sends, how it marks what it serves and where it may forward (docs/environments.md); `edgectl provision` asks for it',
            }),
            'production',
          ),
        },
        { doc: 'identity of this box' },
      ),
      dataDir: withDefault(
        filePath({
          doc: 'where the encrypted database and spool live (created if missing; not under /proc, /sys or /dev)',
          mustExist: 'nothing',
          location: dataLocationProblem,
          createdFolder: true,
        }),
        './data',
      ),
      keys: keysSchema,
      tls: tlsSchema,
      log: withDefault(
        object(
          { level: withDefault(oneOf(['debug', 'info', 'warn', 'error'], { doc: 'lowest level written' }), 'info') },
          { doc: 'logging' },
        ),
        {},
      ),
      hl7: withDefault(hl7Schema, {}),
      dicom: withDefault(dicomSchema, {}),
      upstream: withDefault(upstreamSchema, {}),
      audit: withDefault(auditSchema, {}),
      admin: optional(adminSchema),
      outbox: withDefault(outboxSchema, {}),
      incidents: withDefault(incidentsSchema, {}),
      downtime: withDefault(downtimeSchema, {}),
      startup: withDefault(
        object(
          {
            stepTimeoutMs: withDefault(
              ms(
                'fail the start (log `edged.start-step-timeout` naming the step, then the process ends itself with SIGKILL) when one step that touches the file system (opening the store, the spool, the audit folders) takes longer than',
              ),
              60_000,
            ),
          },
          { doc: 'starting' },
        ),
        {},
      ),
      network: withDefault(networkSchema, {}),
      shutdown: withDefault(
        object({ drainTimeoutMs: withDefault(ms('let in-flight work finish for at most'), 10_000) }, { doc: 'stopping' }),
        {},
      ),
    },
    { doc: 'the Imaging Edge configuration' },
  ),
  (config, _path, ctx) => {
    if (config.site.environment === 'production' && config.hl7.acceptDebuggingProcessingId) {
      ctx.report(
        'error',
        IssueCode.Inconsistent,
        'hl7.acceptDebuggingProcessingId',
        'is true on a production box (site.environment "production"): debugging messages never reach a production worklist; remove it, or set site.environment to "test"',
      );
    }
    if (config.site.environment !== 'production') {
      config.hl7.peers.forEach((p, i) => {
        if (p.testChannel)
          ctx.report(
            'warning',
            IssueCode.IgnoredKey,
            `hl7.peers[${i}].testChannel`,
            `is ignored on a ${config.site.environment} box: all of its traffic is test traffic (MSH-11 T)`,
          );
      });
      config.dicom.modalities.forEach((m, i) => {
        if (m.testing)
          ctx.report(
            'warning',
            IssueCode.IgnoredKey,
            `dicom.modalities[${i}].testing`,
            `is ignored on a ${config.site.environment} box: its whole worklist is test data`,
          );
      });
    }
    if (
      config.site.environment === 'production' &&
      config.dicom.worklist.environmentPrefix !== undefined &&
      !config.dicom.modalities.some((m) => m.testing)
    ) {
      ctx.report(
        'warning',
        IssueCode.IgnoredKey,
        'dicom.worklist.environmentPrefix',
        'is ignored on a production box (site.environment "production") without modalities declared for testing: its worklist is not marked',
      );
    }
    const pacs = config.upstream.pacs;
    if (config.site.environment !== 'production' && pacs?.environment === 'production') {
      ctx.report(
        'warning',
        IssueCode.Inconsistent,
        'upstream.pacs.environment',
        `is "production" on a ${config.site.environment} box: every image will be refused forwarding and become a dead letter; point upstream.pacs at a ${config.site.environment} PACS`,
      );
    }
    if (config.tls.keyFile === undefined && config.keys.backend !== 'tpm') {
      ctx.report('error', IssueCode.Required, 'tls.keyFile', 'is required unless keys.backend is "tpm" (which seals the TLS key)');
    }
    if (ctx.checkFiles && config.tls.keyFile !== undefined) {
      const mismatch = keyCertificateMismatch(config.tls.certFile, config.tls.keyFile);
      if (mismatch !== undefined) ctx.report('error', IssueCode.KeyMismatch, 'tls.keyFile', `${config.tls.keyFile} ${mismatch}`);
    }
    // The redirect URI is derived from the first admin host name; an address there is refused by most IdPs.
    const admin = config.admin;
    if (admin?.oidc !== undefined && (admin.hostNames === undefined || isIP(admin.hostNames[0]!) !== 0)) {
      ctx.report(
        'warning',
        IssueCode.Inconsistent,
        'admin.hostNames',
        'single sign-on derives its redirect URI from the first entry, which is an IP address (or the listen address when omitted): most identity providers refuse that; put the DNS name users reach the box by first',
      );
    }
    // The HL7 and DICOM listeners cannot share a port on one address (tls vs plain is checked in dicom).
    const hl7 = config.hl7.listen;
    for (const [name, l] of [
      ['dicom.tls', config.dicom.tls],
      ['dicom.plain', config.dicom.plain],
    ] as const) {
      if (l !== undefined && l.port !== 0 && l.port === hl7.port && hostsOverlap(l.host, hl7.host)) {
        ctx.report('error', IssueCode.Duplicate, `${name}.port`, 'is the same as hl7.listen.port');
      }
    }
  },
);

function servedPrefixProblem(value: string): string | undefined {
  // It lands in LO/ST values: printable ASCII without the DICOM value separator.
  return /^[\x20-\x5b\x5d-\x7e]+$/.test(value) ? undefined : 'expected printable ASCII without a backslash';
}

function pcrSelectionProblem(value: string): string | undefined {
  return /^sha(1|256|384):\d{1,2}(,\d{1,2})*$/.test(value) ? undefined : 'expected e.g. sha256:7 or sha256:0,2,7';
}

function hostsOverlap(a: string, b: string): boolean {
  return a === b || isWildcardAddress(a) || isWildcardAddress(b);
}

export type EdgeConfig = Infer<typeof edgeConfigSchema>;
export type SiteConfig = EdgeConfig['site'];
export type KeysConfig = EdgeConfig['keys'];
export type TlsConfig = EdgeConfig['tls'];
export type LogConfig = EdgeConfig['log'];
export type Hl7Config = EdgeConfig['hl7'];
export type Hl7PeerConfig = Hl7Config['peers'][number];
export type ListenerConfig = Hl7Config['listen'];
export type DicomConfig = EdgeConfig['dicom'];
export type DicomModalityConfig = DicomConfig['modalities'][number];
export type WorklistConfig = DicomConfig['worklist'];
export type WorklistScopeConfig = NonNullable<DicomModalityConfig['worklistScope']>;
export type UpstreamConfig = EdgeConfig['upstream'];
export type RisUpstreamConfig = NonNullable<UpstreamConfig['ris']>;
export type PacsUpstreamConfig = NonNullable<UpstreamConfig['pacs']>;
export type MwlUpstreamConfig = NonNullable<UpstreamConfig['mwl']>;
export type DimsePacsConfig = Extract<PacsUpstreamConfig, { protocol: 'dimse' }>;
export type StowPacsConfig = Extract<PacsUpstreamConfig, { protocol: 'stow' }>;
export type ShutdownConfig = EdgeConfig['shutdown'];
export type DowntimeConfig = EdgeConfig['downtime'];
export type AuditConfig = EdgeConfig['audit'];
export type NetworkConfig = EdgeConfig['network'];
export type AdminConfig = NonNullable<EdgeConfig['admin']>;
