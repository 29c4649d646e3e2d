// Which world a box serves: production (real patients), test (interface and integration testing) or
// training (staff learning on the box). It decides the HL7 processing id (MSH-11, HL7 table 0103) the box
// accepts and sends, whether what it serves to modalities is marked, and where it may forward images.

export const Environments = ['production', 'test', 'training'] as const;
export type Environment = (typeof Environments)[number];

/** HL7 table 0103 (processing ID, PT.1). */
export const ProcessingId = {
  Production: 'P',
  Training: 'T',
  Debugging: 'D',
} as const;
export type ProcessingId = (typeof ProcessingId)[keyof typeof ProcessingId];

/**
 * The processing id a box of this environment sends and expects. HL7 has no "test" value in table 0103:
 * `T` (training) is what interface engines use for their test channels, so test and training share it.
 */
export function processingIdOf(environment: Environment): ProcessingId {
  return environment === 'production' ? ProcessingId.Production : ProcessingId.Training;
}

/** The mark put before what a non-production box serves (worklist comments, SPS Description) by default. */
export function defaultServedPrefix(environment: Environment): string | undefined {
  return environment === 'test' ? 'TEST:' : environment === 'training' ? 'TRAINING:' : undefined;
}

export function isProduction(environment: Environment): boolean {
  return environment === 'production';
}
