import { readFileSync } from 'node:fs';
import { EcrError } from './errors.js';

/**
 * The package's version, read once from its package.json: one place to change it. The file is
 * two folders up from this one both in the sources (`src/core/`, run by tsx) and in the build
 * (`dist/core/`, tsconfig.build.json's rootDir `src` → outDir `dist`).
 */
function readVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  const json: unknown = JSON.parse(readFileSync(url, 'utf8'));
  const version =
    typeof json === 'object' && json !== null ? (json as { version?: unknown }).version : undefined;
  if (typeof version !== 'string' || version === '')
    throw new EcrError(
      'INTERNAL',
      `${url.pathname} names no version: ecr-bridge is not installed whole`,
    );
  return version;
}

/** The package's version (`0.1.0`): the CLI's `--version`. */
export const PACKAGE_VERSION: string = readVersion();

/** What the HTTP services report as their version (`0.1.0-ecr-bridge`): `/version`, OpenAPI. */
export const SERVICE_VERSION = `${PACKAGE_VERSION}-ecr-bridge`;
