import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A fenced code block of a Markdown file: its info string, its text, and the heading it sits under. */
export interface Block {
  lang: string;
  code: string;
  /** The nearest heading above it, as written ("## Five-minute quickstart"). */
  heading: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

/** Every fenced block of a file of this repository (path relative to its root), in order. */
export function fencedBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let heading = '';
  let open: { lang: string; line: number; body: string[] } | undefined;
  lines.forEach((text, i) => {
    if (open) {
      if (/^```\s*$/.test(text)) {
        blocks.push({ lang: open.lang, code: `${open.body.join('\n')}\n`, heading, line: open.line });
        open = undefined;
      } else open.body.push(text);
      return;
    }
    const fence = /^```(\S*)/.exec(text);
    if (fence) open = { lang: fence[1] ?? '', line: i + 1, body: [] };
    else if (/^#{1,6} /.test(text)) heading = text.trim();
  });
  return blocks;
}

/** The blocks under one heading, of one language. */
export function blocksUnder(file: string, heading: string, lang?: string): Block[] {
  return fencedBlocks(file).filter((b) => b.heading === heading && (lang === undefined || b.lang === lang));
}

/**
 * A `console` block as commands and what each prints: lines starting with "$ " are commands, the lines after one
 * (up to the next) its expected output, stdout and stderr together.
 */
export function transcript(block: Block): { command: string; output: string }[] {
  const steps: { command: string; output: string[] }[] = [];
  for (const line of block.code.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
    else steps.at(-1)?.output.push(line);
  }
  return steps.map((s) => ({ command: s.command, output: s.output.map((l) => `${l}\n`).join('') }));
}
