import { APP_CONFIG, AppConfig } from '@app/config';
import { DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { buildDataSourceOptions } from './data-source-options';
import { ensureDatabase, runMigrations } from './prepare-database';

export interface DatabaseModuleOptions {
  /** Shown in pg_stat_activity. */
  applicationName: string;
  /** Create the database if missing and apply pending migrations before serving. */
  migrate: boolean;
}

@Module({})
export class DatabaseModule {
  static forRoot(options: DatabaseModuleOptions): DynamicModule {
    const logger = new Logger('Database');
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: async (config: AppConfig) => {
            if (options.migrate) {
              await ensureDatabase(config.database.url, config.database.connectTimeoutMs);
            }
            return buildDataSourceOptions(config, options.applicationName);
          },
          dataSourceFactory: async (dataSourceOptions?: DataSourceOptions) => {
            if (!dataSourceOptions) throw new Error('no data source options');
            const dataSource = await new DataSource(dataSourceOptions).initialize();
            if (options.migrate) {
              const applied = await runMigrations(dataSource);
              if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
            }
            return dataSource;
          },
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}
