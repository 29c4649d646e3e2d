import test from 'ava';
import { readFileSync } from 'node:fs';
import { renderConfigDocs } from './config-docs.ts';
import { edgeConfigSchema } from './edge-config-schema.ts';
import type { Presence, Schema } from './schema-kit.ts';

test('docs/config.md is generated from the schema and up to date (bin/edgectl config docs --write)', (t) => {
  const onDisk = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  t.is(onDisk, renderConfigDocs());
});

test('every key of the schema appears in the reference', (t) => {
  const text = renderConfigDocs();
  const paths: string[] = [];
  const walk = (s: Schema<unknown, Presence>, path: string) => {
    const item = s.doc.item;
    if (item !== undefined) walk(item, `${path}[]`);
    for (const { key, schema } of s.doc.fields ?? []) {
      const p = path === '' ? key : `${path}.${key}`;
      paths.push(p);
      walk(schema, p);
    }
    for (const variant of Object.values(s.doc.variants?.map ?? {})) walk(variant, path);
  };
  walk(edgeConfigSchema, '');
  t.true(paths.length > 60);
  for (const p of paths) t.true(text.includes(`| \`${p}\` |`), p);
});
