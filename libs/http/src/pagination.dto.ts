import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

export const MAX_PAGE_SIZE = 100;

/** `limit` (1..100, default 20) and the opaque `cursor` of the previous page's nextCursor. */
export class PageQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit: number = 20;

  @ApiPropertyOptional({
    minLength: 1,
    maxLength: 1024,
    description: "The previous page's nextCursor.",
  })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  cursor?: string;
}
