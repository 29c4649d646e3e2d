// Ports: what the core needs from the outside, implemented by adapters and wired in daemon/flows/.
import type { MessageReceipt, Order, OrderCommand, PatientIdentifier, WorklistItem } from './order.ts';

export type ApplyOutcome =
  /** Committed durably; safe to acknowledge. `unknownOrders` lists commands that referred to no order. */
  | {
      readonly status: 'committed';
      readonly changedItems: number;
      readonly unknownOrders: number;
      /** Downtime orders this message linked (it named their placer numbers). */
      readonly downtimeLinks?: readonly DowntimeLink[];
    }
  /** The same sender already sent this control id within the replay window; nothing changed. */
  | { readonly status: 'duplicate' };

/** A downtime order an order from the RIS linked: its placer number, both accessions, and any conflict. */
export interface DowntimeLink {
  readonly placerOrderNumber: string;
  readonly placerIssuer: string;
  readonly originalAccessionNumber: string;
  readonly accessionNumber: string;
  readonly patient: PatientIdentifier;
  readonly conflict?: string;
}

/**
 * Pre-filter the store can apply cheaply, from its index keys alone. The core still runs full DICOM
 * matching on what comes back; the store may return more, never less.
 */
export interface WorklistFilter {
  /** Inclusive YYYYMMDD bounds on the step's start date; undefined = unbounded. */
  readonly startDateFrom?: string;
  readonly startDateTo?: string;
  /** Exact station AE titles; undefined = any. */
  readonly stationAeTitles?: readonly string[];
  /** Exact modalities; undefined = any. */
  readonly modalities?: readonly string[];
}

export interface OrderRepository {
  /** Apply all commands of one message atomically and durably, with its replay record. */
  apply(commands: readonly OrderCommand[], receipt: MessageReceipt): Promise<ApplyOutcome>;
  /** Items on the worklist (orders scheduled or in progress) passing the pre-filter, by start date and time. */
  worklist(filter: WorklistFilter): AsyncIterable<WorklistItem>;
}

/** References a modality reports back (MPPS Scheduled Step Attributes, image headers). */
export interface OrderReference {
  readonly accessionNumber?: string;
  readonly studyInstanceUid?: string;
}

/** Finding orders by what modalities echo back, whatever their status (through keyed-hash indexes). */
export interface OrderLookup {
  ordersByReference(ref: OrderReference): Promise<readonly Order[]>;
}
