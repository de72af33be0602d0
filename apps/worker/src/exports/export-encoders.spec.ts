import type { TaskResource } from '@app/database';
import { parse } from 'csv-parse/sync';
import type { QueryRunner } from 'typeorm';
import { CSV_COLUMNS, ENCODERS } from './export-encoders';
import { CHUNK_BYTES, ResultChunks } from './result-chunks';

const task = (over: Partial<TaskResource> = {}): TaskResource => ({
  id: '6f1c0f6e-2a57-4d0e-9a7a-8d1f3a2b4c5d',
  title: 'plain',
  description: null,
  status: 'todo',
  priority: 'medium',
  dueDate: null,
  categoryId: null,
  tags: [],
  version: 1,
  createdAt: '2026-12-01T10:00:00.000Z',
  updatedAt: '2026-12-01T10:00:00.000Z',
  ...over,
});

describe('export encoders', () => {
  it('CSV: a header, CRLF records, and quoting only where RFC 4180 needs it', () => {
    const { head, encode } = ENCODERS.csv;
    expect(head).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
    const text = encode([
      task(),
      task({
        title: 'a, "b"',
        description: 'one\r\ntwo\nthree',
        tags: ['x,y', 'z'],
        dueDate: '2027-01-01T00:00:00.000Z',
      }),
    ]);
    const [plain, awkward] = text.split(/\r\n(?=6f1c)/);
    expect(plain).toBe(
      '6f1c0f6e-2a57-4d0e-9a7a-8d1f3a2b4c5d,plain,,todo,medium,,,[],1,' +
        '2026-12-01T10:00:00.000Z,2026-12-01T10:00:00.000Z',
    );
    expect(awkward).toContain('"a, ""b""","one\r\ntwo\nthree"');
    expect(awkward).toContain('"[""x,y"",""z""]"');
    expect(text.endsWith('\r\n')).toBe(true);
  });

  it('CSV reads back, through an independent parser, as the tasks written', () => {
    const tasks = [
      task({ title: '=SUM(A1)', description: 'ünï ✓ "q"', tags: ['a;b', ''] }),
      task({ title: ' padded ', description: '', priority: 'urgent' }),
    ];
    const rows = parse<Record<string, string>>(ENCODERS.csv.head + ENCODERS.csv.encode(tasks), {
      columns: true,
      record_delimiter: '\r\n',
    });
    expect(
      rows.map((row) => [row.title, row.description, JSON.parse(row.tags) as string[]]),
    ).toEqual([
      ['=SUM(A1)', 'ünï ✓ "q"', ['a;b', '']],
      [' padded ', '', []],
    ]);
  });

  it('NDJSON: one JSON document per line, newline-terminated, nothing before', () => {
    const tasks = [task({ description: 'line\nbreak' }), task({ title: 'second' })];
    const text = ENCODERS.ndjson.head + ENCODERS.ndjson.encode(tasks);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(lines.slice(0, 2).map((line) => JSON.parse(line) as TaskResource)).toEqual(tasks);
    expect(ENCODERS.ndjson.encode([])).toBe('');
  });
});

describe('ResultChunks', () => {
  /** Records the chunks it is asked to insert, as Postgres would store them. */
  function recorder() {
    const stored: Array<{ seq: number; data: Buffer }> = [];
    const runner = {
      query: (_sql: string, [, seq, data]: [string, number, Buffer]) => {
        stored.push({ seq, data: Buffer.from(data) });
        return Promise.resolve([]);
      },
    } as unknown as QueryRunner;
    return { stored, chunks: new ResultChunks(runner, 'job') };
  }

  it('cuts the text into numbered pieces of exactly CHUNK_BYTES, the last one shorter', async () => {
    const { stored, chunks } = recorder();
    const piece = 'é'.repeat(100_000); // 200 000 bytes: multi-byte characters cross the cuts
    for (let i = 0; i < 12; i += 1) await chunks.write(piece);
    await chunks.end();
    expect(stored.map((c) => c.seq)).toEqual([0, 1, 2]);
    expect(stored.map((c) => c.data.length)).toEqual([
      CHUNK_BYTES,
      CHUNK_BYTES,
      2_400_000 - 2 * CHUNK_BYTES,
    ]);
    expect(Buffer.concat(stored.map((c) => c.data)).toString('utf8')).toBe(piece.repeat(12));
    expect(chunks.bytes).toBe(2_400_000);
  });

  it('writes nothing for an empty result', async () => {
    const { stored, chunks } = recorder();
    await chunks.write('');
    await chunks.end();
    expect(stored).toEqual([]);
    expect(chunks.bytes).toBe(0);
  });
});
