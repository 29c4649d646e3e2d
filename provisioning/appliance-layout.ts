// Where the appliance keeps the box: install prefix, site configuration, data directory. The units in
// image/ and the operator docs name the same paths; test/docs/docs-truth.test.ts holds them together.
export const ApplianceLayout = {
  prefix: '/opt/edge',
  configFile: '/etc/edge/edge.json',
  dataDir: '/var/lib/edge',
} as const;
