// JSON.parse keeps the last of two equal keys without a word, so an operator who edits the first
// `"host"` of an object that has two sees no effect. This walks the tokens of a document JSON.parse has
// accepted and names every key that appears twice in one object, with its path.
import { childPath } from './schema-kit.ts';

export interface DuplicateKey {
  /** Path of the repeated key, e.g. `dicom.plain.host`. */
  readonly path: string;
  /** 1-based line of the repeated occurrence. */
  readonly line: number;
  readonly firstLine: number;
}

interface Frame {
  readonly path: string;
  readonly kind: 'object' | 'array';
  /** Object: key → line of its first occurrence. */
  readonly keys: Map<string, number>;
  /** Array: index of the next item. */
  index: number;
  /** Object: the key whose value comes next (set after a key string, cleared after its value starts). */
  key: string | undefined;
  expectKey: boolean;
}

/** Only for text JSON.parse accepted: it relies on the document being well formed. */
export function findDuplicateKeys(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const stack: Frame[] = [];
  let line = 1;
  const valuePath = (): string => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '';
    if (top.kind === 'array') return `${top.path}[${top.index}]`;
    return childPath(top.path, top.key ?? '');
  };
  const open = (kind: Frame['kind']): void => {
    stack.push({ path: valuePath(), kind, keys: new Map(), index: 0, key: undefined, expectKey: kind === 'object' });
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    else if (c === '{') open('object');
    else if (c === '[') open('array');
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.kind === 'array') top.index++;
      else if (top !== undefined) top.expectKey = true;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const first = top.keys.get(key);
        if (first === undefined) top.keys.set(key, line);
        else found.push({ path: childPath(top.path, key), line, firstLine: first });
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    }
  }
  return found;
}
