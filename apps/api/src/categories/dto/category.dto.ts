import { CategoryEntity } from '@app/database';
import { PageQueryDto } from '@app/http';
import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString, Length, Matches, ValidateIf } from 'class-validator';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateCategoryDto {
  @ApiProperty({ minLength: 1, maxLength: 100, example: 'Work' })
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  name!: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    pattern: '^#[0-9a-fA-F]{6}$',
    example: '#3b82f6',
  })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @Matches(/^#[0-9a-fA-F]{6}$/, { message: 'color must be a hex colour like #3b82f6' })
  color?: string | null;
}

// skipNullProperties: false, so that `{"name": null}` is refused rather than written (a 500).
export class UpdateCategoryDto extends PartialType(CreateCategoryDto, {
  skipNullProperties: false,
}) {}

export const CATEGORY_SORTS = ['name', '-name', 'createdAt', '-createdAt'] as const;

export class ListCategoriesQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: CATEGORY_SORTS, default: 'name' })
  @IsOptional()
  @IsIn(CATEGORY_SORTS)
  sort: (typeof CATEGORY_SORTS)[number] = 'name';
}

export class CategoryDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ nullable: true, type: String }) color!: string | null;
  @ApiProperty({
    type: 'integer',
    description: 'Bumped on every change; the ETag is built from it.',
  })
  version!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(category: CategoryEntity): CategoryDto {
    return {
      id: category.id,
      name: category.name,
      color: category.color,
      version: category.version,
      createdAt: category.createdAt.toISOString(),
      updatedAt: category.updatedAt.toISOString(),
    };
  }
}

export class CategoryPageDto {
  @ApiProperty({ type: [CategoryDto] }) data!: CategoryDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  nextCursor!: string | null;
}
