import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { ApiException } from './api.exception';

/** One sortable field: where it lives in SQL and in the entity, and how its value travels. */
export interface SortField<T> {
  property: keyof T & string;
  /** Qualified column, e.g. `t.created_at`. */
  column: string;
  /** SQL type the cursor value is cast to, e.g. `timestamptz`, `text`, `task_priority`. */
  sqlType: string;
  /** Nullable fields sort NULLs last in both directions. */
  nullable?: boolean;
  /** For enum types: the values a cursor may carry (anything else would fail the cast). */
  values?: readonly string[];
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

interface CursorPayload {
  s: string;
  v: string | null;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// What cursorValue() writes for a Date: Date#toISOString() of a year Postgres takes (1..9999).
const ISO_INSTANT = /^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Exactly a toISOString() result: Date.parse alone rolls 02-30 over to March. */
function isIsoInstant(value: string): boolean {
  const time = Date.parse(value);
  return ISO_INSTANT.test(value) && !isNaN(time) && new Date(time).toISOString() === value;
}

function invalidCursor(): ApiException {
  return new ApiException('INVALID_CURSOR', 'The cursor is malformed or belongs to another sort.');
}

/**
 * A cursor's value must be one the cast in apply() takes: a tampered cursor is a 400, never a
 * failed query (a 500).
 */
function castable<T>(value: string | null, field: SortField<T>): boolean {
  if (value === null) return true;
  if (value.includes('\u0000')) return false;
  if (field.sqlType === 'timestamptz') return isIsoInstant(value);
  return field.values === undefined || field.values.includes(value);
}

function decodeCursor<T>(cursor: string, sort: string, field: SortField<T>): CursorPayload {
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const p = payload as Partial<CursorPayload> | null;
  if (
    typeof p !== 'object' ||
    p === null ||
    p.s !== sort ||
    typeof p.id !== 'string' ||
    !UUID.test(p.id) ||
    !(typeof p.v === 'string' || p.v === null) ||
    !castable(p.v, field)
  ) {
    throw invalidCursor();
  }
  return { s: p.s, v: p.v, id: p.id };
}

function encodeCursor(payload: CursorPayload): string {
  return Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
}

/** Sort values are dates, strings (text and enums) or null. */
function cursorValue(value: unknown): string | null {
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'string' ? value : null;
}

/**
 * Keyset ("seek") pagination: the page after a cursor is the rows strictly after the cursor's
 * (sort value, id) in the sort order. Unlike OFFSET it is stable under concurrent inserts and
 * costs the same on page 1 and page 1 000, since it is an index range scan.
 *
 * `sort` is the request's sort parameter (`title`, `-createdAt`, ...); `fields` maps its name
 * (without the `-`) to a SortField. The id column is the tie-breaker, so the order is total.
 */
export class Keyset<T extends ObjectLiteral & { id: string }> {
  constructor(
    private readonly fields: Record<string, SortField<T>>,
    private readonly idColumn: string,
  ) {}

  apply(
    qb: SelectQueryBuilder<T>,
    sort: string,
    cursor: string | undefined,
    limit: number,
  ): SelectQueryBuilder<T> {
    const desc = sort.startsWith('-');
    const field = this.fields[desc ? sort.slice(1) : sort];
    if (!field) throw new ApiException('VALIDATION_FAILED', `Unknown sort "${sort}".`);
    const dir = desc ? 'DESC' : 'ASC';
    const op = desc ? '<' : '>';
    if (cursor !== undefined) {
      const c = decodeCursor(cursor, sort, field);
      const value = `CAST(:cursorValue AS ${field.sqlType})`;
      const id = `CAST(:cursorId AS uuid)`;
      const params = { cursorValue: c.v, cursorId: c.id };
      if (!field.nullable) {
        if (c.v === null) throw invalidCursor();
        qb.andWhere(`(${field.column}, ${this.idColumn}) ${op} (${value}, ${id})`, params);
      } else if (c.v === null) {
        qb.andWhere(`(${field.column} IS NULL AND ${this.idColumn} ${op} ${id})`, params);
      } else {
        qb.andWhere(
          `((${field.column}, ${this.idColumn}) ${op} (${value}, ${id}) OR ${field.column} IS NULL)`,
          params,
        );
      }
    }
    qb.orderBy(field.column, dir, field.nullable ? 'NULLS LAST' : undefined)
      .addOrderBy(this.idColumn, dir)
      .limit(limit + 1);
    return qb;
  }

  /** Trims the extra row fetched by apply() and makes the cursor for the next page. */
  page(rows: T[], sort: string, limit: number): Page<T> {
    if (rows.length <= limit) return { data: rows, nextCursor: null };
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    const field = this.fields[sort.replace(/^-/, '')];
    return {
      data,
      nextCursor: encodeCursor({ s: sort, v: cursorValue(last[field.property]), id: last.id }),
    };
  }
}
