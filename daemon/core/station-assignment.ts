// Scheduled Station AE Title and Name for orders whose RIS names no station (ORC-18, OBR-21, IPC-9):
// site rules on what the order says (modality, requested procedure code, PV1-3 point of care, MSH-4
// sending facility), modelled on dcm4chee-arc's "Scheduled Station for HL7 Order" rules, then a site
// default, so (0040,0001), Type 1 in the MWL return keys (PS3.4 Table K.6-1), is never empty and a
// console that queries by its own AE title finds its items.

/** What a rule looks at; each listed condition must hold (any of its values), an absent one always holds. */
export interface StationRuleConditions {
  readonly modalities?: readonly string[];
  readonly procedureCodes?: readonly string[];
  readonly locations?: readonly string[];
  readonly sendingFacilities?: readonly string[];
}

export interface StationRule {
  readonly name: string;
  readonly when: StationRuleConditions;
  readonly stationAeTitle: string;
  /** Scheduled Station Name (0040,0010); '' leaves it as the order has it. */
  readonly stationName: string;
  /** Higher first; among equal priorities the first listed wins. */
  readonly priority: number;
}

export interface Station {
  readonly aeTitle: string;
  readonly name: string;
}

export interface StationAssignment {
  readonly rules: readonly StationRule[];
  readonly fallback: Station;
}

/** The facts of one scheduled step a rule can test. */
export interface StationFacts {
  readonly modality: string;
  readonly procedureCode: string;
  readonly location: string;
  readonly sendingFacility: string;
}

const CONDITIONS = [
  ['modalities', 'modality'],
  ['procedureCodes', 'procedureCode'],
  ['locations', 'location'],
  ['sendingFacilities', 'sendingFacility'],
] as const;

function holds(rule: StationRule, facts: StationFacts): boolean {
  return CONDITIONS.every(([condition, fact]) => {
    const values = rule.when[condition];
    return values === undefined || values.includes(facts[fact]);
  });
}

/** Rules in the order they are tried: priority, then as listed. */
export function orderedRules(rules: readonly StationRule[]): readonly StationRule[] {
  return rules
    .map((rule, index) => ({ rule, index }))
    .sort((a, b) => b.rule.priority - a.rule.priority || a.index - b.index)
    .map((x) => x.rule);
}

/** The station of the first rule that holds, else the fallback. `assignment.rules` must be `orderedRules`. */
export function assignStation(assignment: StationAssignment, facts: StationFacts): Station & { readonly rule?: string } {
  for (const rule of assignment.rules) {
    if (holds(rule, facts)) return { aeTitle: rule.stationAeTitle, name: rule.stationName, rule: rule.name };
  }
  return assignment.fallback;
}

/**
 * Pairs of rules (indexes as listed) of equal priority that some order could satisfy both, with different
 * stations: which one wins depends only on their order in the file, which is easy to break unseen.
 */
export function overlappingRules(rules: readonly StationRule[]): (readonly [number, number])[] {
  const pairs: (readonly [number, number])[] = [];
  for (let i = 0; i < rules.length; i++) {
    for (let j = i + 1; j < rules.length; j++) {
      const a = rules[i]!;
      const b = rules[j]!;
      if (a.priority !== b.priority) continue;
      if (a.stationAeTitle === b.stationAeTitle && a.stationName === b.stationName) continue;
      const bothPossible = CONDITIONS.every(([condition]) => {
        const x = a.when[condition];
        const y = b.when[condition];
        return x === undefined || y === undefined || x.some((v) => y.includes(v));
      });
      if (bothPossible) pairs.push([i, j]);
    }
  }
  return pairs;
}
