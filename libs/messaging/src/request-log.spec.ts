import { type RequestLogBatch, type RequestLogEntry, requestLogEntries } from './request-log';

const entry: RequestLogEntry = [
  1_796_000_000_000,
  'req-1',
  null,
  null,
  'GET',
  '/v1/tasks/:id',
  200,
  1.25,
  '127.0.0.1',
  'spec',
  null,
];

describe('request log batches', () => {
  it('reads both layouts: the entries as an array (1) or as their JSON text (2)', () => {
    expect(requestLogEntries({ v: 1, entries: [entry] })).toEqual([entry]);
    expect(requestLogEntries({ v: 2, entries: JSON.stringify([entry]) })).toEqual([entry]);
  });

  it('refuses a layout it does not know, and a body that does not match its layout', () => {
    const unknown = (batch: unknown) => requestLogEntries(batch as RequestLogBatch);
    expect(unknown({ v: 3, entries: [entry] })).toBeUndefined();
    expect(unknown({ v: 1, entries: JSON.stringify([entry]) })).toBeUndefined();
    expect(unknown({ v: 2, entries: '{"not":"an array"}' })).toBeUndefined();
    expect(unknown({ entries: [entry] })).toBeUndefined();
  });
});
