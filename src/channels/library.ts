import { createRequire } from 'node:module';

// A channel's client library (Bolt, pdjs, express) is loaded when the channel is created, not when its module is
// imported. The config loader reads every channel's section through the registry, and `changepager healthcheck`
// (run every 30 s in a container) and `check-config` load the config only: importing the libraries there would
// double their time and memory for nothing. The libraries are CommonJS, so a synchronous require loads them.
const require = createRequire(import.meta.url);

/** The CommonJS library `name`, loaded on first use (Node caches it). */
export function library<T>(name: string): T {
  return require(name) as T;
}
