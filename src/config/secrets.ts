// Secrets are named in the config by the environment variable or the file that holds them (`<name>_env`,
// `<name>_file`), never written in it. Reading one that is missing is a problem with its path, reported with
// every other problem of the file.

export interface SecretSources {
  env: Readonly<Record<string, string | undefined>>;
  readFile: (path: string) => string;
  /** Where the problems found are collected, each prefixed by its path in the file. */
  problems: string[];
}

/** How a section of the config (a channel's, say) reads its secrets and files, and reports what is wrong. */
export interface SecretReader {
  /** The secret named by `<name>_env` or `<name>_file` in `obj` (the section at path `at`), if it can be read. */
  secret(obj: object, name: string, at: string): string | undefined;
  readFile(path: string): string;
  problem(message: string): void;
}

export function secretReader(sources: SecretSources): SecretReader {
  return {
    secret: (obj, name, at) => readSecret(obj, name, at, sources),
    readFile: sources.readFile,
    problem: (message) => {
      sources.problems.push(message);
    },
  };
}

/** Reads the secret named by `<name>_env` or `<name>_file` in `obj`; records a problem when it cannot. */
export function readSecret(
  obj: object,
  name: string,
  at: string,
  { env, readFile, problems }: SecretSources,
): string | undefined {
  const fields = obj as Record<string, string | undefined>;
  const fromEnv = fields[`${name}_env`];
  const fromFile = fields[`${name}_file`];
  if (fromEnv !== undefined) {
    const value = env[fromEnv];
    if (!value) problems.push(`${at}.${name}_env: environment variable ${fromEnv} is not set or empty`);
    return value || undefined;
  }
  if (fromFile !== undefined) {
    try {
      const value = readFile(fromFile).trim();
      if (!value) problems.push(`${at}.${name}_file: ${fromFile} is empty`);
      return value || undefined;
    } catch (err) {
      problems.push(`${at}.${name}_file: cannot read ${fromFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return undefined;
}
