import { APP_CONFIG, AppConfig } from '@app/config';
import { DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { buildDataSourceOptions } from './data-source-options';
import {
  SchemaNotReadyError,
  ensureDatabase,
  pendingMigrations,
  runMigrations,
} from './prepare-database';

const UNDEFINED_DATABASE = '3D000';

export interface DatabaseModuleOptions {
  /** Shown in pg_stat_activity. */
  applicationName: string;
}

/**
 * The app's connection. With DATABASE_MIGRATE_ON_START (the default) it first creates the
 * database if missing and applies pending migrations; without, it changes nothing, and the app
 * exits at start while the database is missing or a migration this build knows is not applied.
 * (Migrations applied that this build does not know are accepted: that is an app rolled back
 * after a migration.)
 */
@Module({})
export class DatabaseModule {
  static forRoot(options: DatabaseModuleOptions): DynamicModule {
    const logger = new Logger('Database');
    // DATABASE_MIGRATE_ON_START, as the options factory read it (dataSourceFactory sees only
    // the data source's options).
    let migrate = true;
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: async (config: AppConfig) => {
            migrate = config.database.migrateOnStart;
            if (migrate) {
              await ensureDatabase(config.database.url, config.database.connectTimeoutMs);
            }
            return {
              ...buildDataSourceOptions(config, options.applicationName),
              // An unreachable database is retried (TypeOrmModule's default: 9 × 3 s); a missing
              // one or a schema behind will not be fixed by waiting here, so they fail at once.
              toRetry: (error: unknown) => !(error instanceof SchemaNotReadyError),
            };
          },
          dataSourceFactory: async (dataSourceOptions?: DataSourceOptions) => {
            if (!dataSourceOptions) throw new Error('no data source options');
            const dataSource = await new DataSource(dataSourceOptions)
              .initialize()
              .catch((error: unknown) => {
                const missing = (error as { code?: string }).code === UNDEFINED_DATABASE;
                throw missing && !migrate
                  ? new SchemaNotReadyError((error as Error).message)
                  : error;
              });
            if (migrate) {
              const applied = await runMigrations(dataSource);
              if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
              return dataSource;
            }
            try {
              const pending = await pendingMigrations(dataSource);
              if (pending.length > 0) {
                throw new SchemaNotReadyError(
                  `the database schema is behind this build: ${pending.length} migration(s) ` +
                    `not applied (${pending.join(', ')})`,
                );
              }
            } catch (error) {
              await dataSource.destroy();
              throw error;
            }
            return dataSource;
          },
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}
