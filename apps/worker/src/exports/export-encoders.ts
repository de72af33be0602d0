import type { ExportFormat, TaskResource } from '@app/database';
import { stringify } from 'csv-stringify/sync';

/** The columns of a CSV export, in order: a task's fields as the API shows them. */
export const CSV_COLUMNS = [
  'id',
  'title',
  'description',
  'status',
  'priority',
  'dueDate',
  'categoryId',
  'tags',
  'version',
  'createdAt',
  'updatedAt',
] as const satisfies ReadonlyArray<keyof TaskResource>;

/** Turns tasks into the text of an export file, batch by batch. */
export interface ExportEncoder {
  /** What the file starts with (the CSV header line). */
  readonly head: string;
  encode(tasks: TaskResource[]): string;
}

// RFC 4180: CRLF between records, fields quoted when they hold a comma, a quote or a line break.
const CSV = { record_delimiter: 'windows' } as const;

/**
 * CSV: one row per task; null is an empty field, tags are a JSON array (a tag may hold a comma
 * or a semicolon, so no join is unambiguous). Values are written as they are, with no prefix
 * against spreadsheet formulas: the file holds only its reader's own data, and a prefix would
 * change it.
 */
const csv: ExportEncoder = {
  head: stringify([CSV_COLUMNS], CSV),
  encode: (tasks) =>
    stringify(
      tasks.map((task) =>
        CSV_COLUMNS.map((column) => (column === 'tags' ? JSON.stringify(task.tags) : task[column])),
      ),
      CSV,
    ),
};

/** NDJSON: one task per line, exactly as `GET /v1/tasks/:id` returns it. */
const ndjson: ExportEncoder = {
  head: '',
  encode: (tasks) => tasks.map((task) => `${JSON.stringify(task)}\n`).join(''),
};

export const ENCODERS: Record<ExportFormat, ExportEncoder> = { csv, ndjson };
