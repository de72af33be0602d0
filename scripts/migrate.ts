/**
 * `npm run migration:run` / `migration:revert`: creates the database if it is missing, then
 * applies pending migrations (under the same advisory lock the api takes at start) or reverts
 * the last one. (`migration:generate` is the TypeORM CLI, with libs/database/src/data-source.ts.)
 */
import { loadConfig } from '@app/config';
import { buildDataSourceOptions, ensureDatabase, runMigrations } from '@app/database';
import { DataSource } from 'typeorm';

async function main(command: string | undefined): Promise<void> {
  if (command !== 'run' && command !== 'revert') throw new Error('usage: migrate.ts run|revert');
  const config = loadConfig();
  await ensureDatabase(config.database.url, config.database.connectTimeoutMs);
  const dataSource = await new DataSource(
    buildDataSourceOptions(config, 'taskhub-migrate'),
  ).initialize();
  try {
    if (command === 'run') {
      const applied = await runMigrations(dataSource);
      process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Up to date.\n');
    } else {
      await dataSource.undoLastMigration({ transaction: 'each' });
      process.stdout.write('Reverted the last migration.\n');
    }
  } finally {
    await dataSource.destroy();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(
    `migration failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
