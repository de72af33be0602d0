import { Module } from '@nestjs/common';
import { ExportsController } from './exports.controller';
import { TaskExporter } from './task-exporter';

/** Task exports (CONTRACT §4): the `exports` queue's jobs, and the expiry of their results. */
@Module({
  controllers: [ExportsController],
  providers: [TaskExporter],
})
export class ExportsModule {}
