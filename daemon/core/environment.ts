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

/** What a box checks MSH-11 against and what it sends in its own MSH-11. */
export interface ProcessingIdPolicy {
  readonly own: ProcessingId;
  /** PT.1 values accepted on inbound messages; anything else is refused with ERR 202. */
  readonly accepted: readonly ProcessingId[];
}

/** `D` only where the config asks for it, and never on a production box (the config check refuses that). */
export function processingIdPolicy(environment: Environment, acceptDebugging: boolean): ProcessingIdPolicy {
  const own = processingIdOf(environment);
  const debugging = acceptDebugging && !isProduction(environment);
  return { own, accepted: debugging ? [own, ProcessingId.Debugging] : [own] };
}

/** A production box's policy: what an adapter used on its own assumes. */
export const productionProcessingIds: ProcessingIdPolicy = processingIdPolicy('production', false);
