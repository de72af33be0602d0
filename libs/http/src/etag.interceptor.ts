import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Observable, map } from 'rxjs';
import { etagFor, ifNoneMatchHits } from './etag';

interface Versioned {
  version: number;
}

const isVersioned = (body: unknown): body is Versioned =>
  typeof body === 'object' && body !== null && typeof (body as Versioned).version === 'number';

/**
 * For routes that return one versioned resource: sets a strong ETag, and answers a GET whose
 * If-None-Match already holds it with 304 and no body.
 */
@Injectable()
export class EtagInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    return next.handle().pipe(
      map((body: unknown) => {
        if (!isVersioned(body)) return body;
        const etag = etagFor(body.version);
        reply.header('etag', etag);
        const ifNoneMatch = request.headers['if-none-match'];
        if (
          (request.method === 'GET' || request.method === 'HEAD') &&
          ifNoneMatchHits(ifNoneMatch, etag)
        ) {
          reply.status(304);
          return undefined;
        }
        return body;
      }),
    );
  }
}
