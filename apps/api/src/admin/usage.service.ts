import { ApiException } from '@app/http';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { UsageBucketDto, UsageDto, UsageGroup, UsageQueryDto } from './dto/usage.dto';

const HOUR_MS = 3_600_000;
/** The most buckets one query may ask for. */
const MAX_SPAN_MS: Record<UsageGroup, number> = { minute: 24 * HOUR_MS, hour: 31 * 24 * HOUR_MS };

interface Row {
  start: Date;
  requests: number;
  client_errors: number;
  server_errors: number;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * Usage from the request log (CONTRACT §8), which the worker fills from each api's batches: so
 * the last second or so of requests is not in it yet. Only the partitions of the range are read.
 */
@Injectable()
export class UsageService {
  constructor(private readonly dataSource: DataSource) {}

  async usage(query: UsageQueryDto): Promise<UsageDto> {
    const to = query.to ?? new Date();
    const from = query.from ?? new Date(to.getTime() - HOUR_MS);
    const span = to.getTime() - from.getTime();
    if (span <= 0) {
      throw new ApiException('VALIDATION_FAILED', 'from must be before to.', [
        { field: 'from', message: 'must be before to' },
      ]);
    }
    if (span > MAX_SPAN_MS[query.groupBy]) {
      const message = `at most ${MAX_SPAN_MS[query.groupBy] / HOUR_MS} hours by ${query.groupBy}`;
      throw new ApiException('VALIDATION_FAILED', `The range is too long: ${message}.`, [
        { field: 'to', message },
      ]);
    }
    const rows: Row[] = await this.dataSource.query(
      `SELECT date_trunc($1, created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start,
              count(*)::int AS requests,
              count(*) FILTER (WHERE status_code BETWEEN 400 AND 499)::int AS client_errors,
              count(*) FILTER (WHERE status_code >= 500)::int AS server_errors,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99
         FROM request_logs
        WHERE created_at >= $2 AND created_at < $3 AND ($4::uuid IS NULL OR api_key_id = $4)
        GROUP BY 1 ORDER BY 1`,
      [query.groupBy, from, to, query.apiKeyId ?? null],
    );
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      groupBy: query.groupBy,
      apiKeyId: query.apiKeyId ?? null,
      data: rows.map(toBucket),
    };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

function toBucket(row: Row): UsageBucketDto {
  return {
    start: row.start.toISOString(),
    requests: row.requests,
    clientErrors: row.client_errors,
    serverErrors: row.server_errors,
    errorRate: row.requests === 0 ? 0 : row.server_errors / row.requests,
    latencyMs: { p50: round(row.p50), p95: round(row.p95), p99: round(row.p99) },
  };
}
