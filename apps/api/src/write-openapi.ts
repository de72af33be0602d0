// `npm run openapi`: writes openapi.json (in the working directory: the repository's root), the
// API's OpenAPI document, from the app as production builds it (./bootstrap.ts; the database it
// migrates is the configured one, as for `npm start`). test/openapi.e2e-spec.ts fails when the
// committed file and the code differ.
import { loadConfig } from '@app/config';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApiApp } from './bootstrap';
import { renderOpenApi } from './openapi';

async function main(): Promise<void> {
  // Nothing but the document: no request log (it would declare its queue on the broker).
  const app = await createApiApp(loadConfig({ LOG_LEVEL: 'warn', REQUEST_LOG_ENABLED: 'false' }));
  try {
    const file = join(process.cwd(), 'openapi.json');
    writeFileSync(file, await renderOpenApi(app));
    process.stdout.write(`wrote ${file}\n`);
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`openapi: ${String(error)}\n`);
  process.exit(1);
});
