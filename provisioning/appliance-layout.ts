// Where the appliance keeps the box: install prefix, site configuration, data directory, and the
// encrypted data partition under them. The units and scripts in image/ and the operator docs name the
// same paths; test/docs/docs-truth.test.ts holds them together.
export const ApplianceLayout = {
  prefix: '/opt/imaging-edge',
  configFile: '/etc/edge/edge.json',
  dataDir: '/var/lib/imaging-edge',
  // The LUKS2 partition (GPT name) and where its file system is mounted; dataDir and the folder of
  // configFile are bind mounts of its `data` and `etc` folders, so that the read-only root stays
  // read-only and everything the site adds is encrypted at rest.
  dataPartition: '/dev/disk/by-partlabel/imaging-edge-data',
  dataVolume: '/var/lib/imaging-edge-volume',
  // The public key update bundles must be signed with (baked into the root image).
  updateKey: '/opt/imaging-edge/update-key.pem',
} as const;
