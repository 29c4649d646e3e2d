// The config module's public API.
export { checkConfig, errorsIn, formatIssue } from './check-config.ts';
export type { CheckOptions, CheckResult } from './check-config.ts';
export { ConfigError, checkConfigFile, loadConfig, maxConfigBytes, readConfigDocument } from './load-config.ts';
export { bindCheck, listenersOf, tryBind } from './bind-check.ts';
export type { ListenerAddress } from './bind-check.ts';
export { renderConfigDocs } from './config-docs.ts';
export { ExplicitVrLittleEndian, ImplicitVrLittleEndian, edgeConfigSchema } from './edge-config-schema.ts';
export type {
  AdminConfig,
  DicomConfig,
  DicomModalityConfig,
  EdgeConfig,
  Hl7Config,
  Hl7PeerConfig,
  KeysConfig,
  ListenerConfig,
  LogConfig,
  NetworkConfig,
  PacsUpstreamConfig,
  RisUpstreamConfig,
  ShutdownConfig,
  SiteConfig,
  TlsConfig,
  UpstreamConfig,
  WorklistConfig,
  WorklistScopeConfig,
} from './edge-config-schema.ts';
export { IssueCode } from './schema-kit.ts';
export type { ConfigIssue, Severity } from './schema-kit.ts';
export { diffBy, restartRequired } from './reload-diff.ts';
export type { PeerChanges } from './reload-diff.ts';
