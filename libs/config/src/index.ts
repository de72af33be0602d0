export type { AppConfig } from './config';
export { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig, parseConfig } from './config';
export { APP_CONFIG, ConfigModule, InjectConfig } from './config.module';
