import { RateLimitConfigEntity } from '@app/database';
import { ApiException, IfMatch, notFound } from '@app/http';
import { RateLimitOverrides } from '@app/rate-limit';
import { Injectable, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import {
  ListRateLimitsQueryDto,
  PutRateLimitDto,
  RateLimitDto,
  RateLimitPageDto,
  RATE_LIMIT_RESOURCE as RESOURCE,
  isRateLimitIdentifier,
} from './dto/rate-limit.dto';
import { checkUnversioned } from '../common/owned-rows';
import { futureExpiry } from '../common/validators';

/** The cursor names its order, like @app/http's Keyset cursors, so another order's is refused. */
const ORDER = 'identifier';

interface StoredRow {
  identifier: string;
  requests_per_minute: number;
  reason: string | null;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
  created: boolean;
}

function invalidCursor(): ApiException {
  return new ApiException('INVALID_CURSOR', 'The cursor is malformed or belongs to another sort.');
}

function encodeCursor(identifier: string): string {
  return Buffer.from(JSON.stringify({ s: ORDER, v: identifier }), 'utf8').toString('base64url');
}

/** A tampered cursor is a 400, never a failed query. */
function decodeCursor(cursor: string): string {
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const p = payload as { s?: unknown; v?: unknown } | null;
  if (typeof p !== 'object' || p === null || p.s !== ORDER || !isRateLimitIdentifier(p.v)) {
    throw invalidCursor();
  }
  return p.v;
}

/**
 * Administrators' per-client limits (CONTRACT §6). Every instance re-reads them within
 * OVERRIDES_RELOAD_MS; this one re-reads them right after each write, so the change applies here
 * from the next request.
 */
@Injectable()
export class RateLimitsService {
  /**
   * With limiting off (RATE_LIMIT_ENABLED=false), RateLimitModule provides nothing: overrides are
   * still stored, and apply once limiting is on.
   */
  constructor(
    @InjectRepository(RateLimitConfigEntity)
    private readonly configs: Repository<RateLimitConfigEntity>,
    @Optional() private readonly overrides?: RateLimitOverrides,
  ) {}

  /**
   * Ordered by identifier, the primary key, so each page is an index range scan. Not with
   * @app/http's Keyset: its tie-breaker is a uuid `id`, and an identifier is unique on its own.
   */
  async list(query: ListRateLimitsQueryDto): Promise<RateLimitPageDto> {
    const qb = this.configs
      .createQueryBuilder('c')
      .orderBy('c.identifier', 'ASC')
      .limit(query.limit + 1);
    if (query.cursor !== undefined) {
      qb.where('c.identifier > :after', { after: decodeCursor(query.cursor) });
    }
    const rows = await qb.getMany();
    const data = rows.slice(0, query.limit);
    const last = data[data.length - 1];
    return {
      data: data.map((config) => RateLimitDto.from(config)),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.identifier) : null,
    };
  }

  async get(identifier: string): Promise<RateLimitDto> {
    const config = await this.configs.findOneBy({ identifier });
    if (!config) throw notFound(RESOURCE);
    return RateLimitDto.from(config);
  }

  /**
   * Creates or replaces the override in one statement, so two concurrent PUTs of the same
   * identifier cannot both try to insert. A replacement keeps createdAt; fields left out are
   * cleared, as PUT replaces the whole resource.
   */
  async put(
    identifier: string,
    dto: PutRateLimitDto,
    ifMatch: IfMatch,
  ): Promise<{ created: boolean; body: RateLimitDto }> {
    const expiresAt = futureExpiry(dto.expiresAt);
    await checkUnversioned(ifMatch, RESOURCE, () => this.configs.existsBy({ identifier }), true);
    // `xmax = 0` holds only for a row version this statement inserted: one it updated carries
    // the row lock ON CONFLICT took. That is how one statement tells 201 from 200.
    const [row] = await this.configs.query<StoredRow[]>(
      `INSERT INTO rate_limit_configs AS c (identifier, requests_per_minute, reason, expires_at)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (identifier) DO UPDATE
         SET requests_per_minute = EXCLUDED.requests_per_minute,
             reason = EXCLUDED.reason,
             expires_at = EXCLUDED.expires_at,
             updated_at = now()
       RETURNING c.*, (c.xmax = 0) AS created`,
      [identifier, dto.requestsPerMinute, dto.reason ?? null, expiresAt],
    );
    if (!row) throw new Error(`The upsert of ${identifier} returned no row`);
    await this.applyHere();
    return {
      created: row.created,
      body: RateLimitDto.from({
        identifier: row.identifier,
        requestsPerMinute: row.requests_per_minute,
        reason: row.reason,
        expiresAt: row.expires_at,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      }),
    };
  }

  async remove(identifier: string, ifMatch: IfMatch): Promise<void> {
    await checkUnversioned(ifMatch, RESOURCE, () => this.configs.existsBy({ identifier }));
    const { affected } = await this.configs.delete({ identifier });
    if (!affected) throw notFound(RESOURCE);
    await this.applyHere();
  }

  /** After the commit: a reload before it would read the old row. */
  private async applyHere(): Promise<void> {
    await this.overrides?.reload();
  }
}
