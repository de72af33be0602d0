import { ApiKeyVerifier, Principal, generateApiKey } from '@app/auth';
import { ApiKeyEntity, UserEntity } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Repository } from 'typeorm';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import { checkUnversioned } from '../common/owned-rows';
import { futureExpiry } from '../common/validators';
import {
  ApiKeyDto,
  ApiKeyPageDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
  ListApiKeysQueryDto,
} from './dto/api-key.dto';

const keyset = new Keyset<ApiKeyEntity>(
  { createdAt: { property: 'createdAt', column: 'k.created_at', sqlType: 'timestamptz' } },
  'k.id',
);
const NEWEST_FIRST = '-createdAt';

@Injectable()
export class ApiKeysService {
  constructor(
    @InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>,
    private readonly idempotency: IdempotencyService,
    private readonly verifier: ApiKeyVerifier,
  ) {}

  /**
   * A new key for the caller, shown once. Only an administrator may give a key its own tier or
   * the `admin` scope. A replay of its Idempotency-Key answers the key's description without the
   * key: the plaintext is never stored, not even for replays.
   */
  create(
    principal: Principal,
    dto: CreateApiKeyDto,
    idempotency: IdempotencyRequest,
  ): Promise<IdempotentResult<CreatedApiKeyDto>> {
    const expiresAt = futureExpiry(dto.expiresAt);
    const tier = dto.tier ?? null;
    return this.idempotency.run(
      principal.userId,
      idempotency,
      async (manager): Promise<CreatedApiKeyDto> => {
        if (tier !== null || dto.scopes.includes('admin')) {
          // The role as stored now, under a share lock: not as an access token remembers it.
          const owner = await manager.findOne(UserEntity, {
            where: { id: principal.userId },
            lock: { mode: 'pessimistic_read' },
          });
          if (owner?.role !== 'admin') {
            throw new ApiException(
              'FORBIDDEN',
              tier !== null
                ? "Only an administrator can set a key's tier."
                : 'Only an administrator can give a key the admin scope.',
            );
          }
        }
        const { key, prefix, hash } = generateApiKey();
        const saved = await manager.save(
          manager.create(ApiKeyEntity, {
            userId: principal.userId,
            name: dto.name,
            prefix,
            keyHash: hash,
            scopes: dto.scopes,
            tier,
            expiresAt,
          }),
        );
        return { ...ApiKeyDto.from(saved), key };
      },
      ({ key: _shownOnce, ...described }) => described,
    );
  }

  /** The caller's keys that are not revoked (expired ones included), newest first. */
  async list(principal: Principal, query: ListApiKeysQueryDto): Promise<ApiKeyPageDto> {
    const qb = this.keys
      .createQueryBuilder('k')
      .where('k.user_id = :userId AND k.revoked_at IS NULL', { userId: principal.userId });
    const rows = await keyset.apply(qb, NEWEST_FIRST, query.cursor, query.limit).getMany();
    const page = keyset.page(rows, NEWEST_FIRST, query.limit);
    return { data: page.data.map((key) => ApiKeyDto.from(key)), nextCursor: page.nextCursor };
  }

  async get(principal: Principal, id: string): Promise<ApiKeyDto> {
    const key = await this.keys.findOneBy({ id, userId: principal.userId, revokedAt: IsNull() });
    if (!key) throw notFound('API key');
    return ApiKeyDto.from(key);
  }

  /** Revokes the key: refused by this instance at once, by every other within a second. */
  async revoke(principal: Principal, id: string, ifMatch: IfMatch): Promise<void> {
    await checkUnversioned(ifMatch, 'API key', () =>
      this.keys.existsBy({ id, userId: principal.userId, revokedAt: IsNull() }),
    );
    const result = await this.keys
      .createQueryBuilder()
      .update()
      .set({ revokedAt: () => 'now()' })
      .where('id = :id AND user_id = :userId AND revoked_at IS NULL', {
        id,
        userId: principal.userId,
      })
      .execute();
    if (result.affected !== 1) throw notFound('API key');
    await this.verifier.invalidateKey(id);
  }
}
