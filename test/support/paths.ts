// Where the tests' real-peer harness scripts and sample messages live in the repository.
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
/** Scripts that start DCMTK, Orthanc and python-hl7 peers on loopback (test/peers/README.md). */
export const PEERS = join(REPO_ROOT, 'test/peers');
/** Sample HL7 v2 messages with their expected outcomes (test/fixtures/hl7/README.md). */
export const HL7_FIXTURES = join(REPO_ROOT, 'test/fixtures/hl7');
