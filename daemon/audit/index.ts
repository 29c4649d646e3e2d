// The audit adapter: DICOM audit XML, signed checkpoints and retention, bundles, the syslog-TLS stream.
export { auditMessageXml } from './audit-message-xml.ts';
export { BundleFile, BundleFormat, type BundleManifest } from './bundle.ts';
export { exportBundle, seqRangeForTime, type ExportResult } from './bundle-export.ts';
export { bundleRange, type BundleRangeRequest } from './bundle-range.ts';
export { readManifest, verifyBundle, type BundleReport, type BundleProblem } from './bundle-verify.ts';
export { AuditCheckpointer, type CheckpointerEvent, checkpointProblem } from './checkpointer.ts';
export { HeadFile, headFileProblem } from './head-file.ts';
export { signDetached, verifyDetached } from './cms.ts';
export { type Signer, keyFileSigner, keyMaterialSigner, pemCertificates } from './signer.ts';
export { SyslogSender, type SyslogCollector, type SyslogSenderEvent, type SyslogSenderStatus } from './syslog-sender.ts';
export { parseSyslog, syslogMessage } from './syslog-message.ts';
