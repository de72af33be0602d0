import { AppConfig, InjectConfig } from '@app/config';
import { RefreshTokenEntity } from '@app/database';
import { ApiException } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';

const TOKEN_PREFIX = 'rt_';

const hashOf = (token: string): Buffer => createHash('sha256').update(token).digest();

function invalid(): ApiException {
  return new ApiException(
    'INVALID_REFRESH_TOKEN',
    'The refresh token is invalid, expired or revoked.',
  );
}

/**
 * Opaque, single-use refresh tokens, stored as SHA-256 hashes. Each refresh marks the token used
 * and issues the next of its family; presenting a used token again means it was stolen or
 * replayed, so the whole family is revoked and the holder must sign in again.
 */
@Injectable()
export class RefreshTokensService {
  constructor(
    @InjectConfig() private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** Starts a new family (a sign-in). */
  issue(userId: string, manager: EntityManager = this.dataSource.manager): Promise<string> {
    return this.insert(manager, userId, randomUUID());
  }

  /** Spends `token` and returns its user and the next token of its family. */
  async rotate(token: string): Promise<{ userId: string; refreshToken: string }> {
    if (!token.startsWith(TOKEN_PREFIX)) throw invalid();
    const tokenHash = hashOf(token);
    const rotated = await this.dataSource.transaction(async (manager) => {
      // Atomic: of two concurrent refreshes with one token, exactly one gets the row.
      const spent = await manager
        .createQueryBuilder()
        .update(RefreshTokenEntity)
        .set({ usedAt: () => 'now()' })
        .where('token_hash = :tokenHash AND used_at IS NULL AND revoked_at IS NULL', { tokenHash })
        .andWhere('expires_at > now()')
        .returning('user_id, family_id')
        .execute();
      const row = (spent.raw as { user_id: string; family_id: string }[])[0];
      if (!row) return undefined;
      return {
        userId: row.user_id,
        refreshToken: await this.insert(manager, row.user_id, row.family_id),
      };
    });
    if (rotated) return rotated;
    await this.revokeFamilyIfReused(tokenHash);
    throw invalid();
  }

  private async revokeFamilyIfReused(tokenHash: Buffer): Promise<void> {
    await this.dataSource.query(
      `UPDATE refresh_tokens SET revoked_at = now()
        WHERE revoked_at IS NULL
          AND family_id = (SELECT family_id FROM refresh_tokens
                            WHERE token_hash = $1 AND used_at IS NOT NULL)`,
      [tokenHash],
    );
  }

  private async insert(manager: EntityManager, userId: string, familyId: string): Promise<string> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    await manager.insert(RefreshTokenEntity, {
      userId,
      familyId,
      tokenHash: hashOf(token),
      expiresAt: new Date(Date.now() + this.config.jwt.refreshTtlSeconds * 1000),
    });
    return token;
  }
}
