// The peer policies in force for the inbound listeners (deny by default): who may send HL7 and which
// modalities may associate, built from the configured rules and swapped whole by a config reload. A
// quarantined peer (incident containment) keeps its configured rule but is left out of the policies in
// force, so it is refused like a stranger until it is released.
import { Hl7PeerPolicy, ModalityPolicy, type Hl7PeerRule, type ModalityRule } from './peer-policy.ts';

/** The peer policies in force; swapped whole by a reload, read per connection/association. */
export class PeerPolicies<H extends Hl7PeerRule = Hl7PeerRule, M extends ModalityRule = ModalityRule> {
  #hl7Peers: readonly H[] = [];
  #modalities: readonly M[] = [];
  #hl7 = new Hl7PeerPolicy([]);
  #modality = new ModalityPolicy([]);
  #byAe = new Map<string, M>();
  /** `hl7:<peer name>` and `modality:<AE title>` of quarantined peers. */
  #quarantined: ReadonlySet<string> = new Set();

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

  /** Whether the peer is quarantined (`hl7` by peer name, `modality` by AE title). */
  isQuarantined(kind: 'hl7' | 'modality', name: string): boolean {
    return this.#quarantined.has(`${kind}:${name}`);
  }

  /** Puts the given peers (and only them) in quarantine, at once for new connections and associations. */
  quarantine(peers: Iterable<{ readonly kind: 'hl7' | 'modality'; readonly name: string }>): void {
    const next = new Set([...peers].map((p) => `${p.kind}:${p.name}`));
    const previous = this.#quarantined;
    this.#quarantined = next;
    try {
      this.replace(this.#hl7Peers, this.#modalities);
    } catch (err) {
      this.#quarantined = previous;
      throw err;
    }
  }

  replace(hl7Peers: readonly H[], modalities: readonly M[]): void {
    // Build everything first: a constructor that throws leaves the old policies in force.
    const q = this.#quarantined;
    const hl7 = new Hl7PeerPolicy(hl7Peers.filter((p) => !q.has(`hl7:${p.name}`)));
    const admitted = modalities.filter((m) => !q.has(`modality:${m.aeTitle.trim()}`));
    const modality = new ModalityPolicy(admitted);
    const byAe = new Map(admitted.map((m) => [m.aeTitle, m]));
    this.#hl7 = hl7;
    this.#modality = modality;
    this.#byAe = byAe;
    this.#hl7Peers = hl7Peers;
    this.#modalities = modalities;
  }
}
