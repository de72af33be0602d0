import { ApiHeader } from '@nestjs/swagger';

export const IdempotencyKeyHeader = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Retries with the same key and body replay the first response for 24 h.',
  });

export const IfMatchHeader = () =>
  ApiHeader({
    name: 'If-Match',
    required: false,
    description: 'Apply only if the resource still has this ETag (else 412).',
  });

export const IfNoneMatchHeader = () =>
  ApiHeader({
    name: 'If-None-Match',
    required: false,
    description: '304 if the ETag still matches.',
  });
