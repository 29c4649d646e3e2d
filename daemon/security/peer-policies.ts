// The peer policies in force for the inbound listeners (deny by default): who may send HL7 and which
// modalities may associate, built from the configured rules and swapped whole by a config reload.
import { Hl7PeerPolicy, ModalityPolicy, type Hl7PeerRule, type ModalityRule } from './peer-policy.ts';

/** The peer policies in force; swapped whole by a reload, read per connection/association. */
export class PeerPolicies<H extends Hl7PeerRule = Hl7PeerRule, M extends ModalityRule = ModalityRule> {
  #hl7Peers: readonly H[] = [];
  #modalities: readonly M[] = [];
  #hl7 = new Hl7PeerPolicy([]);
  #modality = new ModalityPolicy([]);
  #byAe = new Map<string, M>();

  constructor(hl7Peers: readonly H[], modalities: readonly M[]) {
    this.replace(hl7Peers, modalities);
  }

  get hl7(): Hl7PeerPolicy {
    return this.#hl7;
  }

  get modality(): ModalityPolicy {
    return this.#modality;
  }

  get hl7Peers(): readonly H[] {
    return this.#hl7Peers;
  }

  get modalities(): readonly M[] {
    return this.#modalities;
  }

  /** The rule of an AE title the modality policy admitted. */
  modalityRule(aeTitle: string): M | undefined {
    return this.#byAe.get(aeTitle);
  }

  replace(hl7Peers: readonly H[], modalities: readonly M[]): void {
    // Build everything first: a constructor that throws leaves the old policies in force.
    const hl7 = new Hl7PeerPolicy(hl7Peers);
    const modality = new ModalityPolicy(modalities);
    const byAe = new Map(modalities.map((m) => [m.aeTitle, m]));
    this.#hl7 = hl7;
    this.#modality = modality;
    this.#byAe = byAe;
    this.#hl7Peers = hl7Peers;
    this.#modalities = modalities;
  }
}
