import type { IncomingMessage } from 'node:http';
import { requestIdFor } from './request-id';

const raw = (id?: string) =>
  ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as IncomingMessage;
const UUID = /^[0-9a-f-]{36}$/;

describe('requestIdFor', () => {
  it("keeps a client's sane id and puts it on the raw request for the access log", () => {
    const request = raw('abc-123.def:9');
    expect(requestIdFor(request)).toBe('abc-123.def:9');
    expect((request as IncomingMessage & { id?: string }).id).toBe('abc-123.def:9');
  });

  it.each([undefined, '', 'x'.repeat(129), 'evil\nheader', '<script>', 'a b'])(
    'replaces %p with a new UUID',
    (id) => {
      expect(requestIdFor(raw(id))).toMatch(UUID);
    },
  );
});
