// The admin page's peers view (`GET /v1/peers`): every peer the config names (the RIS senders, the
// modalities, the upstream RIS and PACS, the syslog collectors) with the identity it must present, when
// it was last seen, the upstream's state, and the refusals of the last 24 hours by reason.
import type { ControlRoute } from '../core/control-route.ts';
import type { DestinationStatus } from '../core/outbox.ts';
import type { FlowContext } from './flow-context.ts';
import { PACS_DESTINATION, RIS_DESTINATION } from './outbox.ts';
import type { PeerActivity } from './peer-activity.ts';

export interface PeersViewParts {
  readonly activity: PeerActivity;
  readonly destinations: () => readonly DestinationStatus[];
  readonly collectors: () => readonly { readonly collector: string; readonly connected: boolean }[];
  readonly connections: () => readonly { readonly listener: string; readonly count: number }[];
}

export function peersRoute(ctx: FlowContext, p: PeersViewParts): ControlRoute {
  const { config } = ctx;
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    method: 'GET',
    path: '/v1/peers',
    permission: 'viewer',
    handle: () => {
      const destinations = p.destinations();
      const state = (name: string): string | null => destinations.find((d) => d.destination === name)?.state ?? null;
      const collectors = p.collectors();
      const ris = config.upstream.ris;
      const pacs = config.upstream.pacs;
      return {
        status: 200,
        body: {
          ris: config.hl7.peers.map((peer) => ({
            name: peer.name,
            sender: `${peer.sendingApplication}^${peer.sendingFacility}`,
            certificateCn: peer.certificateCn,
            addresses: peer.addresses ?? [],
            lastSeen: iso(p.activity.lastSeen('hl7', peer.name)),
          })),
          modalities: config.dicom.modalities.map((m) => ({
            name: m.name ?? m.aeTitle,
            aeTitle: m.aeTitle,
            transport: m.transport,
            certificateCn: m.transport === 'tls' ? m.certificateCn : null,
            addresses: m.addresses ?? [],
            lastSeen: iso(p.activity.lastSeen('dicom', m.aeTitle)),
          })),
          upstream: [
            ...(ris === undefined
              ? []
              : [{ name: RIS_DESTINATION, kind: 'RIS (HL7 status)', endpoint: `${ris.host}:${ris.port}`, state: state(RIS_DESTINATION) }]),
            ...(pacs === undefined
              ? []
              : [
                  {
                    name: PACS_DESTINATION,
                    kind: pacs.protocol === 'stow' ? 'PACS (STOW-RS)' : 'PACS (C-STORE)',
                    endpoint: pacs.protocol === 'stow' ? new URL(pacs.stowUrl).host : `${pacs.aeTitle}@${pacs.host}:${pacs.port}`,
                    state: state(PACS_DESTINATION),
                  },
                ]),
          ],
          collectors: config.audit.collectors.map((c) => ({
            name: c.name,
            endpoint: `${c.host}:${c.port}`,
            connected: collectors.find((x) => x.collector === c.name)?.connected ?? false,
          })),
          connections: p.connections(),
          refusals: p.activity.refusals().map((r) => ({ ...r, lastAt: iso(r.lastAt) })),
        },
      };
    },
  };
}
