export { ApiException, apiExceptionIn, notFound } from './api.exception';
export { ERROR_CATALOG } from './error-codes';
export { ERROR_METER } from './error-meter';
export type { ErrorMeter } from './error-meter';
export { parseIfMatch } from './etag';
export type { IfMatch } from './etag';
export {
  applyHttpConventions,
  BODY_LIMIT_BYTES,
  fastifyOptions,
  KEEP_ALIVE_TIMEOUT_MS,
} from './fastify-options';
export { HttpConventionsModule } from './http.module';
export { Keyset } from './keyset';
export { installLeanAsyncBind } from './lean-async-bind';
export { disablePretenuring } from './pretenuring';
export { PageQueryDto } from './pagination.dto';
export { PROBLEM_CONTENT_TYPE, problemCodeOf, toProblem } from './problem-details';
