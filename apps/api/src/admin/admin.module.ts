import { RateLimitConfigEntity, UserEntity } from '@app/database';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AdminBootstrap } from './admin-bootstrap';
import { AdminUsersController } from './admin-users.controller';
import { AdminUsersService } from './admin-users.service';
import { BreakersController } from './breakers.controller';
import { FlagsController } from './flags.controller';
import { RateLimitsController } from './rate-limits.controller';
import { RateLimitsService } from './rate-limits.service';
import { UsageController } from './usage.controller';
import { UsageService } from './usage.service';

@Module({
  imports: [TypeOrmModule.forFeature([UserEntity, RateLimitConfigEntity])],
  controllers: [
    AdminUsersController,
    BreakersController,
    FlagsController,
    RateLimitsController,
    UsageController,
  ],
  providers: [AdminUsersService, AdminBootstrap, RateLimitsService, UsageService],
})
export class AdminModule {}
