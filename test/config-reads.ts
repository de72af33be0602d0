import { type AppConfig, ConfigError, parseConfig } from '@app/config';
import { isDeepStrictEqual } from 'node:util';

/**
 * Whether the config reads `name`: a nonsense value is either refused under that name, or
 * changes the parsed config compared with leaving the variable out. An unknown name does
 * neither (the schema drops it), which would mean a misspelt, silently ignored setting.
 */
export function configReads(env: Record<string, string>, name: string): boolean {
  let probed: AppConfig;
  try {
    probed = parseConfig({ ...env, [name]: '\u0001not-a-valid-value' });
  } catch (error) {
    return error instanceof ConfigError && error.message.includes(` ${name}: `);
  }
  const without = { ...env };
  delete without[name];
  try {
    return !isDeepStrictEqual(parseConfig(without), probed);
  } catch {
    return true; // required: the config is invalid without it
  }
}
