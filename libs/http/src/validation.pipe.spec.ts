import { ApiException } from './api.exception';
import { createValidationPipe } from './validation.pipe';

class AnyBody {}

describe('the validation pipe', () => {
  it('refuses a value nested 100 000 levels deep with a 400, not a stack overflow', async () => {
    // Built in a loop: what the body parser refuses may still reach the pipe some other way.
    let value: Record<string, unknown> = { text: 'x' };
    for (let i = 0; i < 100_000; i += 1) value = { a: value };
    const refused = await createValidationPipe()
      .transform(value, { type: 'body', metatype: AnyBody })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiException);
    expect((refused as ApiException).code).toBe('VALIDATION_FAILED');
  });
});
