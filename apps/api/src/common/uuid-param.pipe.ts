import { notFound } from '@app/http';
import { ParseUUIDPipe } from '@nestjs/common';

/** A malformed id names no resource: 404, like any id the caller does not own. */
export const uuidParam = (resource: string): ParseUUIDPipe =>
  new ParseUUIDPipe({ version: undefined, exceptionFactory: () => notFound(resource) });
