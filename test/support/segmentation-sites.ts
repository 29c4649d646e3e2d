// Segmentation inputs of two sites, shared by the renderer's golden tests and the benchmark.
import type { SegmentationInput } from '../../daemon/security/segmentation-plan.ts';

const network = { ntpServers: [], dnsServers: [], hostAddresses: [], interfaces: {}, dropLogPerMinute: 10 };

/** One RIS, one TLS and one plain modality, a PACS, a syslog collector, NTP and DNS. */
export function smallSite(): SegmentationInput {
  return {
    hl7: { listen: { host: '0.0.0.0', port: 2575 }, peers: [{ name: 'ris', addresses: ['10.20.2.10'] }] },
    dicom: {
      tls: { host: '0.0.0.0', port: 2762 },
      plain: { host: '0.0.0.0', port: 104 },
      modalities: [
        { name: 'ct1', transport: 'tls', addresses: ['10.20.1.10'] },
        { name: 'us1', transport: 'plain', addresses: ['10.20.1.20', 'fd00:20:1::20'] },
      ],
    },
    upstream: { ris: { host: '10.20.4.10', port: 2576 }, pacs: { host: '10.20.4.20', port: 11112, protocol: 'dimse' } },
    audit: { collectors: [{ name: 'siem', host: '10.20.4.30', port: 6514 }] },
    network: { ...network, ntpServers: ['10.20.4.1'], dnsServers: ['10.20.4.1'] },
  };
}

/** 50 modalities (TLS and plain, two on a shared subnet), RIS + PACS by name + STOW-less, two collectors: 4 upstreams. */
export function fiftyModalitySite(): SegmentationInput {
  const modalities = Array.from({ length: 50 }, (_, i) => ({
    name: `mod${String(i + 1).padStart(2, '0')}`,
    transport: i % 2 === 0 ? ('tls' as const) : ('plain' as const),
    addresses: i === 48 || i === 46 ? ['10.30.9.0/24'] : [`10.30.${1 + Math.floor(i / 20)}.${10 + (i % 20)}`],
  }));
  return {
    hl7: {
      listen: { host: '0.0.0.0', port: 2575 },
      peers: [
        { name: 'ris', addresses: ['10.30.20.10', '10.30.20.11'] },
        { name: 'engine', addresses: ['fd00:30:20::5'] },
      ],
    },
    dicom: { tls: { host: '0.0.0.0', port: 2762 }, plain: { host: '0.0.0.0', port: 104 }, modalities },
    upstream: { ris: { host: '10.30.40.10', port: 2576 }, pacs: { host: 'pacs.hospital.example', port: 11112, protocol: 'dimse' } },
    audit: {
      collectors: [
        { name: 'siem-a', host: '10.30.40.30', port: 6514 },
        { name: 'siem-b', host: 'fd00:30:40::31', port: 6514 },
      ],
      pull: { listen: { host: '0.0.0.0', port: 8443 } },
    },
    network: {
      ...network,
      ntpServers: ['10.30.40.1', '10.30.40.2'],
      dnsServers: ['10.30.40.1'],
      hostAddresses: [{ host: 'pacs.hospital.example', addresses: ['10.30.40.20', '10.30.40.21'] }],
      auditPullClients: ['10.99.0.0/16'],
      interfaces: { hl7: 'ens4', dicomTls: 'ens3', dicomPlain: 'ens3' },
    },
  };
}
