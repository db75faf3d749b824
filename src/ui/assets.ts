import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AssetUrls } from './render.js';

// The page's static files: read once at start from static/ beside this module (src/ui/static when run from
// source; dist/ui/static after `npm run build`, which copies them there). Each URL carries a digest of the
// content, so browsers may cache them for a long time and still never run an old script against a new page.

export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

export interface Asset {
  body: Buffer;
  type: string;
  digest: string;
}

/** The page's static files, as served under /ui/{name}. */
export const ASSET_FILES: Readonly<Record<keyof AssetUrls, { name: string; type: string }>> = {
  css: { name: 'timeline.css', type: 'text/css; charset=utf-8' },
  js: { name: 'timeline.js', type: 'text/javascript; charset=utf-8' },
  icon: { name: 'favicon.svg', type: 'image/svg+xml' },
};

export interface Assets {
  /** By file name, as served under /ui/. */
  files: ReadonlyMap<string, Asset>;
  urls: AssetUrls;
}

export function loadAssets(dir: string = STATIC_DIR): Assets {
  const files = new Map<string, Asset>();
  const urls = {} as AssetUrls;
  for (const [key, { name, type }] of Object.entries(ASSET_FILES) as [
    keyof AssetUrls,
    { name: string; type: string },
  ][]) {
    let body: Buffer;
    try {
      body = readFileSync(join(dir, name));
    } catch (err) {
      throw new Error(
        `the timeline page's static files are missing (${name} in ${dir}): \`npm run build\` copies src/ui/static to dist/ui/static`,
        { cause: err },
      );
    }
    const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
    files.set(name, { body, type, digest });
    urls[key] = `/ui/${name}?v=${digest}`;
  }
  return { files, urls };
}
