import { fileURLToPath } from 'node:url';

/**
 * The embedded default, found from this module rather than the working directory, so `changepager serve` starts
 * from any folder: this file is src/config/default-path.ts under tsx and dist/config/default-path.js when built,
 * two levels below the package root either way. A module of its own, so that the command line can name it
 * without loading the config schema (and, through the channel registry, every channel).
 */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/changepager.yaml', import.meta.url));
