import { parseConfig } from '@app/config';
import { jobQueueTopology, queueDeclarations, retryDelayMs } from './topology';

describe('job queue topology', () => {
  const config = parseConfig({
    JOB_MAX_ATTEMPTS: '5',
    JOB_RETRY_BASE_MS: '1000',
    JOB_RETRY_MAX_MS: '5000',
  });
  const topology = jobQueueTopology(config, 'p.jobs');

  it('doubles the wait after each failed attempt, up to the cap, with no retry after the last', () => {
    expect(topology.retries).toEqual([
      { queue: 'p.jobs.retry.1000ms', delayMs: 1000 },
      { queue: 'p.jobs.retry.2000ms', delayMs: 2000 },
      { queue: 'p.jobs.retry.4000ms', delayMs: 4000 },
      { queue: 'p.jobs.retry.5000ms', delayMs: 5000 },
    ]);
    expect(jobQueueTopology(parseConfig({ JOB_MAX_ATTEMPTS: '1' }), 'q').retries).toEqual([]);
  });

  it('jitters each wait down by at most half, never up', () => {
    expect(retryDelayMs(topology, 3, 0)).toBe(4000);
    expect(retryDelayMs(topology, 3, 0.999999)).toBe(2000);
    expect(retryDelayMs(topology, 1, 0.5)).toBe(750);
  });

  it('declares every queue once: main (dead-lettering), dead, and each retry queue back to main', () => {
    const capped = jobQueueTopology(
      parseConfig({ JOB_MAX_ATTEMPTS: '6', JOB_RETRY_BASE_MS: '1000', JOB_RETRY_MAX_MS: '2000' }),
      'q',
    );
    expect(queueDeclarations(capped)).toEqual([
      {
        queue: 'q',
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'q.dead' },
      },
      { queue: 'q.dead', arguments: {} },
      {
        queue: 'q.retry.1000ms',
        arguments: {
          'x-message-ttl': 1000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'q',
        },
      },
      {
        queue: 'q.retry.2000ms',
        arguments: {
          'x-message-ttl': 2000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'q',
        },
      },
    ]);
  });
});
