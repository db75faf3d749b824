import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { configFileSchema } from '../../src/config/schema.js';
import { fencedBlocks, ROOT } from './markdown.js';

// docs/configuration.md is the reference of every config key: each key of the schema has a row there (first
// column, in backticks), no row names a key the schema lacks, and a default the schema fills in is the one the row
// gives. Its YAML examples load as configs, and config/changepager.yaml sets only documented keys.

const PAGE = 'docs/configuration.md';
const text = readFileSync(join(ROOT, PAGE), 'utf8');

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
}
const def = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schemas a value may be: itself, or each option of a union of objects (an API token). */
function objectsOf(schema: z.ZodType): z.ZodType[] {
  const d = def(schema);
  if (d.type === 'object') return [schema];
  const options = d.type === 'union' ? (d.options ?? []) : [];
  return options.length > 0 && options.every((o) => def(o).type === 'object') ? options : [];
}

/** Every key path of the schema, as the page writes them: `services.<name>.window`, `people[].email`. */
function keyPaths(schema: z.ZodType, prefix = '', out = { all: new Set<string>(), leaves: new Set<string>() }) {
  const d = def(schema);
  const wrapped = d.innerType ?? (d.type === 'pipe' ? d.in : undefined);
  if (wrapped) return keyPaths(wrapped, prefix, out);
  const objects = objectsOf(schema);
  if (prefix) out.all.add(prefix);
  if (objects.length > 0) {
    for (const o of objects) {
      for (const [key, value] of Object.entries(def(o).shape ?? {})) {
        keyPaths(value, prefix ? `${prefix}.${key}` : key, out);
      }
    }
  } else if (d.type === 'array' && d.element && objectsOf(d.element).length > 0) {
    keyPaths(d.element, `${prefix}[]`, out);
  } else if (d.type === 'record' && d.valueType) {
    keyPaths(d.valueType, `${prefix}.<name>`, out);
  } else {
    out.leaves.add(prefix);
  }
  return out;
}

/** The rows of the page's key tables: the keys in backticks in the first cell, and the default cell. */
function documentedRows(): { keys: string[]; defaultCell: string }[] {
  const rows: { keys: string[]; defaultCell: string }[] = [];
  let header: string[] | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      header = undefined;
      continue;
    }
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
    if (!header) {
      header = cells;
      continue;
    }
    if (header[0] !== 'key' || /^-+$/.test(cells[0] ?? '')) continue;
    const keys = [...(cells[0] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    rows.push({ keys, defaultCell: cells[header.indexOf('default')] ?? '' });
  }
  return rows;
}

/** The value at a documented path of the defaults, when it is not inside a list or a map. */
function valueAt(config: unknown, path: string): unknown {
  if (path.includes('[]') || path.includes('<name>')) return undefined;
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as never)[k] : undefined), config);
}

/** A default as the page writes it: `PT1H`, `[service, app, job]`, `true`. */
function written(value: unknown): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
}

describe(PAGE, () => {
  const { all, leaves } = keyPaths(configFileSchema as unknown as z.ZodType);
  const rows = documentedRows();
  const documented = new Set(rows.flatMap((r) => r.keys));

  it('has a row for every key of the schema', () => {
    expect(leaves.size).toBeGreaterThan(80);
    expect([...leaves].filter((k) => !documented.has(k))).toEqual([]);
  });

  it('documents no key the schema lacks', () => {
    expect([...documented].filter((k) => !all.has(k))).toEqual([]);
  });

  it('gives the defaults the schema fills in', () => {
    // The optional sections are given, as small as they may be, so that their defaults are filled in too.
    const defaults = configFileSchema.parse({
      pagerduty: {},
      slack: { bot_token_env: 'T', signing_secret_env: 'S' },
      prometheus: { url: 'http://prometheus:9090' },
    });
    const wrong = rows.flatMap((row) =>
      row.keys.flatMap((key) => {
        // Secrets are named, never defaulted, and Prometheus' URL is required: the sections above give them to be
        // valid.
        const given = /_(env|file)$/.test(key) || key === 'prometheus.url';
        const value = given ? undefined : valueAt(defaults, key);
        if (value === undefined || (typeof value === 'object' && !Array.isArray(value))) return [];
        const shown = /^`([^`]*)`/.exec(row.defaultCell)?.[1];
        return shown === written(value) ? [] : [`${key}: documented ${row.defaultCell}, schema ${written(value)}`];
      }),
    );
    expect(wrong).toEqual([]);
  });

  it.each(
    fencedBlocks(PAGE)
      .filter((b) => b.lang === 'yaml')
      .map((b) => [`line ${b.line}`, b.code] as const),
  )('its YAML example at %s loads as a config', (_line, yaml) => {
    const env = Object.fromEntries([...yaml.matchAll(/_env: (\w+)/g)].map((m) => [m[1], `secret-${m[1]}`]));
    const files = new Map([...yaml.matchAll(/_file: (\S+)/g)].map((m) => [m[1], 'secret-from-a-file\n']));
    const readFile = (path: string) => {
      const content = files.get(path);
      if (content === undefined) throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
      return content;
    };
    expect(() => parseConfig(yaml, { path: 'example.yaml', env, readFile })).not.toThrow();
  });

  it('covers every key that config/changepager.yaml sets', () => {
    const paths = (value: unknown, prefix: string): string[] =>
      value && typeof value === 'object' && !Array.isArray(value)
        ? Object.entries(value).flatMap(([k, v]) => paths(v, prefix ? `${prefix}.${k}` : k))
        : [prefix];
    const set = paths(parse(readFileSync(join(ROOT, 'config/changepager.yaml'), 'utf8')), '');
    expect(set.filter((k) => !documented.has(k))).toEqual([]);
  });
});
