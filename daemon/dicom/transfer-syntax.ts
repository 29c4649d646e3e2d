// Transfer syntaxes the codec speaks (PS3.5 10). Anything else is refused at association time.
export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
} as const;
export type TransferSyntaxUid = (typeof TransferSyntax)[keyof typeof TransferSyntax];

const supported: ReadonlySet<string> = new Set(Object.values(TransferSyntax));

export function isSupportedTransferSyntax(uid: string): uid is TransferSyntaxUid {
  return supported.has(uid);
}
