export { installGracefulShutdown } from './graceful-shutdown';
export { HealthModule } from './health.module';
export { Lifecycle } from './lifecycle';
export { Probes } from './probes';
export { RabbitMqHealthIndicator } from './rabbitmq.health';
export { RedisHealthIndicator } from './redis.health';
