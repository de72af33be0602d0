import { InternalServerErrorException } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiException } from './api.exception';
import { toProblem } from './problem-details';

describe('toProblem', () => {
  const request = { url: '/v1/tasks?x=1', id: 'req-1' } as unknown as FastifyRequest;

  it('marks 5xx causes to be logged, but not the refusals the service chooses', () => {
    const internal = (thrown: unknown) => toProblem(thrown, request).internal;
    expect(internal(new Error('boom'))).toBe(true);
    expect(internal(new InternalServerErrorException())).toBe(true);
    expect(internal(new ApiException('DEPENDENCY_TIMEOUT', 'postgres did not answer'))).toBe(true);
    // An open breaker, load shedding, degraded mode: counted by the access log and the metrics.
    for (const code of ['DEPENDENCY_UNAVAILABLE', 'OVERLOADED', 'DEGRADED'] as const) {
      expect(internal(new ApiException(code, 'refused'))).toBe(false);
    }
    expect(internal(new ApiException('NOT_FOUND', 'no such task'))).toBe(false);
  });

  it('answers a problem with the instance path and request id, never the cause', () => {
    const problem = toProblem(new Error('select * from secrets'), request);
    expect(problem.body).toMatchObject({
      status: 500,
      code: 'INTERNAL_ERROR',
      instance: '/v1/tasks',
      requestId: 'req-1',
    });
    expect(JSON.stringify(problem.body)).not.toContain('secrets');
  });
});
