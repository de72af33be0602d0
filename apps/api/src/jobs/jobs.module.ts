import { JobEntity } from '@app/database';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ExportsController } from './exports.controller';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';

/** Background jobs: task exports (POST /v1/tasks/exports) and /v1/jobs (CONTRACT §4). */
@Module({
  imports: [TypeOrmModule.forFeature([JobEntity])],
  controllers: [ExportsController, JobsController],
  providers: [JobsService],
})
export class JobsModule {}
