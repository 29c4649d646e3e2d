// Element-level encoding facts shared by the codec, the streaming walker and the streaming rewriter
// (PS3.5 7.1, 7.5): one place, so the three readers cannot disagree about how an element is framed.

export const ItemTag = 0xfffee000;
export const ItemDelimitationTag = 0xfffee00d;
export const SequenceDelimitationTag = 0xfffee0dd;
export const UndefinedLength = 0xffffffff;
export { longExplicitVrs } from '../core/dataset.ts';
