export { ApiException, apiExceptionIn, notFound } from './api.exception';
export { ERROR_CATALOG } from './error-codes';
export { parseIfMatch } from './etag';
export type { IfMatch } from './etag';
export { applyHttpConventions, fastifyOptions } from './fastify-options';
export { HttpConventionsModule } from './http.module';
export { Keyset } from './keyset';
export { PageQueryDto } from './pagination.dto';
export { PROBLEM_CONTENT_TYPE, toProblem } from './problem-details';
