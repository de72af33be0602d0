import { IsInt, IsOptional, IsString, MaxLength, Min, MinLength } from 'class-validator';
import { ApiException } from './api.exception';
import { createValidationPipe } from './validation.pipe';

class AnyBody {}

class NamedBody {
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  name!: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  size?: number;
}

async function refusalOf(value: unknown): Promise<ApiException> {
  const refused = await createValidationPipe()
    .transform(value, { type: 'body', metatype: NamedBody })
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(ApiException);
  return refused as ApiException;
}

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

  it('says a missing field is required, not that it is too long', async () => {
    const refused = await refusalOf({ size: 2 });
    expect(refused.errors).toEqual([{ field: 'name', message: 'is required' }]);
    expect(refused.message).toBe('name: is required');
  });

  it('names a wrong type before a bound, one message per field', async () => {
    const refused = await refusalOf({ name: 7, size: 'big' });
    expect(refused.errors).toEqual([
      { field: 'name', message: 'name must be a string' },
      { field: 'size', message: 'size must be an integer number' },
    ]);
  });

  it('names the bound when the type is right', async () => {
    const refused = await refusalOf({ name: 'x'.repeat(101), size: 0 });
    expect(refused.errors).toEqual([
      { field: 'name', message: 'name must be shorter than or equal to 100 characters' },
      { field: 'size', message: 'size must not be less than 1' },
    ]);
  });

  it('refuses a field the body does not accept, and never echoes a value', async () => {
    const refused = await refusalOf({ name: 'ok', secret: 'hunter2-secret' });
    expect(refused.errors).toEqual([{ field: 'secret', message: 'is not an accepted field' }]);
    expect(JSON.stringify(refused.getResponse())).not.toContain('hunter2');
  });
});
