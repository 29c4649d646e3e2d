// Config of station assignment (`dicom.worklist.stationRules`, `dicom.worklist.defaultStation`): which
// Scheduled Station AE Title and Name an order gets when its RIS names none. Part of the one schema
// (edge-config-schema.ts); the rules themselves are applied by core/station-assignment.ts.
import { overlappingRules, type StationRule } from '../core/station-assignment.ts';
import { IssueCode, array, integer, object, optional, refine, string, withDefault } from './schema-kit.ts';
import { aeTitleProblem, hl7IdentifierProblem, modalityCodeProblem } from './value-syntax.ts';

const aeTitle = (doc: string) => string({ doc, maxLength: 16, check: aeTitleProblem, label: 'AE title' });
const values = (doc: string, item: string, check: (v: string) => string | undefined, maxLength: number) =>
  optional(array(string({ doc: item, maxLength, check, label: item }), { doc, minItems: 1 }));

const stationRuleSchema = object(
  {
    name: string({ doc: 'the rule’s name, as `edgectl config check` reports it', maxLength: 64, check: hl7IdentifierProblem }),
    when: withDefault(
      object(
        {
          modalities: values('Modality (OBR-24 / IPC-5) is one of these', 'modality code', modalityCodeProblem, 16),
          procedureCodes: values(
            'Requested Procedure Code value (OBR-44.1, else OBR-4.1) is one of these',
            'code value',
            hl7IdentifierProblem,
            64,
          ),
          locations: values('PV1-3.1 (point of care) is one of these', 'point of care', hl7IdentifierProblem, 64),
          sendingFacilities: values('MSH-4 (sending facility) is one of these', 'HD namespace id', hl7IdentifierProblem, 64),
        },
        { doc: 'conditions, all of which must hold; an absent one always holds (a rule with none matches every order)' },
      ),
      {},
    ),
    stationAeTitle: aeTitle('Scheduled Station AE Title (0040,0001) given to the steps the rule matches'),
    stationName: withDefault(
      string({
        doc: 'Scheduled Station Name (0040,0010); empty keeps the order’s (IPC-7)',
        minLength: 0,
        maxLength: 16,
        check: hl7IdentifierProblem,
      }),
      '',
    ),
    priority: withDefault(integer({ doc: 'rules are tried highest priority first, then in the order listed', min: -1000, max: 1000 }), 0),
  },
  { doc: 'a station assignment rule (modelled on dcm4chee-arc’s Scheduled Station for HL7 Order)' },
);

export const stationRulesSchema = refine(
  withDefault(
    array(stationRuleSchema, {
      doc: 'Scheduled Station AE Title and Name for orders whose RIS sends none (no ORC-18, OBR-21 or IPC-9): the first rule that matches wins',
      maxItems: 1000,
      unique: [{ key: (r) => r.name, field: 'name' }],
    }),
    [],
  ),
  (rules: readonly StationRule[], path, ctx) => {
    for (const [a, b] of overlappingRules(rules)) {
      ctx.report(
        'warning',
        IssueCode.OverlappingRules,
        `${path}[${b}]`,
        `overlaps ${path}[${a}] ("${rules[a]!.name}"): an order can match both with the same priority, so only their order decides between ${rules[a]!.stationAeTitle} and ${rules[b]!.stationAeTitle}; narrow a condition or give one a higher priority`,
      );
    }
  },
);

export const defaultStationSchema = withDefault(
  object(
    {
      aeTitle: withDefault(aeTitle('Scheduled Station AE Title of an order that no field and no rule assigns'), 'UNKNOWN'),
      name: withDefault(
        string({ doc: 'its Scheduled Station Name; empty keeps the order’s', minLength: 0, maxLength: 16, check: hl7IdentifierProblem }),
        '',
      ),
    },
    { doc: 'the station of last resort, so (0040,0001), Type 1 in the MWL return keys, is never empty' },
  ),
  {},
);
