import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';

export const IS_PUBLIC = 'taskhub:isPublic';

/** Opens a route (or a whole controller) to callers without credentials. */
export const Public = (): ClassDecorator & MethodDecorator =>
  // x-public: the OpenAPI document says so (`security: []`, apps/api/src/openapi.ts).
  applyDecorators(SetMetadata(IS_PUBLIC, true), ApiExtension('x-public', true));
