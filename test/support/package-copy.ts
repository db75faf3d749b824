import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A copy of the package in a scratch directory, with what the Dockerfile's build stage copies (package.json,
 * the lock file, .npmrc, the tsconfigs, src/ and config/) and this checkout's node_modules linked rather than
 * installed again: a place to build and start changepager away from the checkout and its working directory.
 */
export function copyPackage(prefix = 'changepager-package-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const file of ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json', 'tsconfig.build.json']) {
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  for (const folder of ['src', 'config']) cpSync(join(ROOT, folder), join(dir, folder), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `npm run build` in a package copy: dist/ as `npm start` and the image run it. */
export function buildPackage(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'npm',
      ['run', 'build'],
      { cwd: dir, env: { ...process.env, npm_config_update_notifier: 'false' }, timeout: 240_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`npm run build failed:\n${stdout}${stderr}`)) : resolve()),
    );
  });
}
