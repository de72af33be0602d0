import { ApiKeyVerifier, ensureAdmin } from '@app/auth';
import { AppConfig, InjectConfig } from '@app/config';
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * ADMIN_EMAIL / ADMIN_PASSWORD: the administrator is there before the first request. Run on
 * every start, so it only ever creates or promotes: an existing account keeps its password.
 * A failure stops the start-up, since the operator asked for an admin and would not get one.
 */
@Injectable()
export class AdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger('Admin');

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly verifier: ApiKeyVerifier,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const admin = this.config.admin;
    if (admin === undefined) return;
    const { id, created } = await ensureAdmin(this.dataSource, admin.email, admin.password);
    if (created) {
      this.logger.log(`Created the administrator ${admin.email} (ADMIN_EMAIL)`);
      return;
    }
    // It may have just been promoted: keys cached elsewhere still carry the role `user`.
    await this.verifier.invalidateUser(id);
    this.logger.log(`${admin.email} already existed; it is an administrator, password unchanged`);
  }
}
