import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './markdown.js';

// The README is what a newcomer needs in the first hour; the reference lives in docs/, one page per topic. Text
// moves between them, so every link between them must still land on a file and a heading that exist.

const pages = ['README.md', 'examples/README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)].filter(
  (f) => f.endsWith('.md'),
);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

function anchors(file: string): Set<string> {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] ?? '')));
}

function links(file: string): { target: string; anchor?: string; text: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? '')
    .filter((href) => !/^[a-z]+:/.test(href))
    .map((href) => {
      const [path = '', anchor] = href.split('#');
      return {
        target: path === '' ? file : normalize(join(dirname(file), path)),
        ...(anchor ? { anchor } : {}),
        text: href,
      };
    });
}

describe('links between the README and docs/', () => {
  it.each(pages)('%s: every relative link lands on a file and a heading that exist', (file) => {
    const broken = links(file).filter(
      (l) => !existsSync(join(ROOT, l.target)) || (l.anchor !== undefined && !anchors(l.target).has(l.anchor)),
    );
    expect(broken.map((l) => l.text)).toEqual([]);
  });

  it('the README points at a docs page for every reference topic', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const topic of [
      'configuration',
      'api',
      'semantics',
      'operations',
      'pagerduty',
      'slack',
      'cli',
      'deploy-pipelines',
      'timeline',
      'docker',
      'development',
      'architecture',
      'reliability',
      'performance',
    ]) {
      expect(readme, topic).toContain(`](docs/${topic}.md)`);
    }
  });
});
