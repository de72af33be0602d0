import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'taskhub:isPublic';

/** Opens a route (or a whole controller) to callers without credentials. */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(IS_PUBLIC, true);
