import type { Feature, FlagsChange, FlagsView } from '@app/resilience';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsObject, ValidateNested } from 'class-validator';
import { Optional } from '../../common/validators';

class FeaturesDto implements Record<Feature, boolean> {
  @ApiProperty({ description: 'Search with `q` in GET /v1/tasks.' }) search!: boolean;
  @ApiProperty({ description: 'POST /v1/tasks/exports.' }) exports!: boolean;
}

class FeaturesChangeDto implements Partial<Record<Feature, boolean>> {
  @ApiPropertyOptional() @Optional() @IsBoolean() search?: boolean;
  @ApiPropertyOptional() @Optional() @IsBoolean() exports?: boolean;
}

export class FlagsDto implements FlagsView {
  @ApiProperty({ description: 'Degraded mode, set by an administrator: every feature is off.' })
  degraded!: boolean;
  @ApiProperty({ description: 'Degraded mode entered on its own: the database is failing.' })
  degradedAutomatically!: boolean;
  @ApiProperty({ type: FeaturesDto, description: 'Feature flags as set.' })
  features!: FeaturesDto;
  @ApiProperty({ type: FeaturesDto, description: 'What is served right now.' })
  serving!: FeaturesDto;
}

/** Absent fields stay as they are; null is refused (it is not `false`). */
export class UpdateFlagsDto implements FlagsChange {
  @ApiPropertyOptional() @Optional() @IsBoolean() degraded?: boolean;

  @ApiPropertyOptional({ type: FeaturesChangeDto })
  @Optional()
  @IsObject()
  @ValidateNested()
  @Type(() => FeaturesChangeDto)
  features?: FeaturesChangeDto;
}
