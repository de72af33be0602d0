import { API_KEY_SECURITY } from '@app/auth';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { completeDocument } from './openapi';

/** OpenAPI 3 from the DTOs and decorators: the UI at /docs, the document at /docs-json. */
export function setupSwagger(app: INestApplication): void {
  const document = completeDocument(
    SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Taskhub API')
        .setDescription(
          'Tasks and categories for signed-in users and their API keys. Errors are RFC 9457 ' +
            'problem details (application/problem+json) with a stable `code` and the `requestId`. ' +
            'A known path with a method it does not serve is 405 with `Allow`; every /v1 response ' +
            "carries the rate limiter's fields.",
        )
        .setVersion('1')
        .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
        .addApiKey(
          {
            type: 'apiKey',
            in: 'header',
            name: 'X-API-Key',
            description: "An API key (`thk_...`): only its scopes, over its owner's data.",
          },
          API_KEY_SECURITY,
        )
        .build(),
    ),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
