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
import { checkUnversioned, unversionedStarFailed } from '../common/owned-rows';
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

/** What a PUT writes over an override ($2..$4: requestsPerMinute, reason, expiresAt). */
const REPLACEMENT = 'requests_per_minute = $2, reason = $3, expires_at = $4, updated_at = now()';

/**
 * `xmax = 0` holds only for a row version this statement inserted: one it updated carries the row
 * lock ON CONFLICT took. That is how one statement tells 201 from 200.
 */
const UPSERT = `INSERT INTO rate_limit_configs AS c (identifier, requests_per_minute, reason, expires_at)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (identifier) DO UPDATE SET ${REPLACEMENT}
  RETURNING c.*, (c.xmax = 0) AS created`;

/**
 * Replaces only (`If-Match: *`), in the statement that writes: an UPDATE that waited for a
 * concurrent DELETE finds no row, where a check before an upsert would have let it create one.
 */
const REPLACE = `UPDATE rate_limit_configs AS c SET ${REPLACEMENT}
  WHERE c.identifier = $1
  RETURNING c.*, false AS created`;

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
   * cleared, as PUT replaces the whole resource. With `If-Match: *` it only replaces.
   */
  async put(
    identifier: string,
    dto: PutRateLimitDto,
    ifMatch: IfMatch,
  ): Promise<{ created: boolean; body: RateLimitDto }> {
    const expiresAt = futureExpiry(dto.expiresAt);
    // The PUT would create a missing override, so a tag fails whether or not one exists.
    await checkUnversioned(ifMatch, RESOURCE, () => Promise.resolve(true));
    const values = [identifier, dto.requestsPerMinute, dto.reason ?? null, expiresAt];
    // TypeORM answers an UPDATE with [rows, count], an INSERT with the rows.
    const [row] =
      ifMatch === 'any'
        ? (await this.configs.query<[StoredRow[], number]>(REPLACE, values))[0]
        : await this.configs.query<StoredRow[]>(UPSERT, values);
    if (!row && ifMatch === 'any') throw unversionedStarFailed(RESOURCE);
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
