import type { ServicePolicy } from '../core/types.js';
import type { Config } from './load.js';

/** The policy for a service: its own section, else the defaults. */
export function policyFor(config: Pick<Config, 'services' | 'defaults'>, service: string | undefined): ServicePolicy {
  // hasOwn: a service label such as "constructor" must not find Object.prototype's member.
  return (
    (service !== undefined && Object.hasOwn(config.services, service) && config.services[service]) || config.defaults
  );
}
