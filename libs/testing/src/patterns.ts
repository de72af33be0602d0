/** What the API writes: ids, timestamps and entity tags. */

/** A lower-case UUID, as every id is. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A timestamp in UTC with milliseconds, as the API writes every date. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A strong entity tag: quoted, without the W/ prefix. */
export const STRONG_ETAG = /^"[^"]+"$/;
