/**
 * Applies or reverts migrations, apart from the apps: `node dist/apps/api/apps/api/src/migrate.js
 * run|revert` in the built image (which has no ts-node), `npm run migration:run|revert` in a
 * checkout. `run` creates the database if it is missing, then applies pending migrations under
 * the advisory lock the apps take when they migrate at start; `revert` reverts the last one.
 * Run it with a role that may change the schema, and the apps with DATABASE_MIGRATE_ON_START=false
 * and one that may not (README "Database and migrations"). (`migration:generate` is the TypeORM
 * CLI, with libs/database/src/data-source.ts.)
 */
import { loadConfig } from '@app/config';
import { buildDataSourceOptions, ensureDatabase, runMigrations } from '@app/database';
import { DataSource } from 'typeorm';

async function main(command: string | undefined): Promise<void> {
  if (command !== 'run' && command !== 'revert') throw new Error('usage: migrate run|revert');
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
