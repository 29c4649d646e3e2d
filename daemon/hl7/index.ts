// Public API of the HL7 v2 inbound adapter.
export { Mllp, MllpDecoder, encodeMllpFrame } from './mllp-framing.ts';
export type { MllpDecoderOptions } from './mllp-framing.ts';
export { Hl7Charset, charsetFromMsh18, decodeHl7Text, encodeHl7Text } from './charset.ts';
export { DEFAULT_ENCODING, Hl7Message, Hl7Segment, escapeHl7, parseHl7Message, parseMessageHeader, unescapeHl7 } from './message.ts';
export type { EncodingCharacters, Hl7Field, Hl7Header } from './message.ts';
export { AckCode, MessageErrorCondition, buildAck, formatHl7Timestamp, formatLocation, newControlId } from './ack.ts';
export type { AckError, AckOptions, ErrorLocation } from './ack.ts';
export { SUPPORTED_MESSAGES, checkMessageType, generateStudyInstanceUid, mapMessage } from './mapping.ts';
export type { MappingContext, MappingFailure, MappingResult } from './mapping.ts';
export { handleInboundMessage } from './inbound-handler.ts';
export type { Hl7InboundEvent, Hl7Peer, InboundContext, InboundOutcome } from './inbound-handler.ts';
export { Hl7Listener } from './listener.ts';
export type { Hl7ListenerEvent, Hl7ListenerOptions, IdentifyPeer, PeerCertificateInfo } from './listener.ts';
