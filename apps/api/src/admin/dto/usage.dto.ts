import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsDate, IsIn, IsOptional, IsUUID } from 'class-validator';
import { toDate } from '../../common/validators';

export const USAGE_GROUPS = ['minute', 'hour'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export class UsageQueryDto {
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    description: 'From this instant (inclusive). Default: an hour before `to`.',
  })
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: 'from must be an ISO 8601 date-time' })
  from?: Date;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    description: 'Up to this instant (exclusive). Default: now.',
  })
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: 'to must be an ISO 8601 date-time' })
  to?: Date;

  @ApiPropertyOptional({
    enum: USAGE_GROUPS,
    default: 'minute',
    description: 'Bucket size (UTC). At most 1 440 minutes or 744 hours (31 days) per query.',
  })
  @IsOptional()
  @IsIn(USAGE_GROUPS)
  groupBy: UsageGroup = 'minute';

  @ApiPropertyOptional({ format: 'uuid', description: "Only this API key's requests." })
  @IsOptional()
  @IsUUID()
  apiKeyId?: string;
}

class LatencyDto {
  @ApiProperty() p50!: number;
  @ApiProperty() p95!: number;
  @ApiProperty() p99!: number;
}

export class UsageBucketDto {
  @ApiProperty({ format: 'date-time', description: 'The bucket’s start (UTC).' }) start!: string;
  @ApiProperty({ type: 'integer' }) requests!: number;
  @ApiProperty({ type: 'integer', description: 'Answered 4xx.' }) clientErrors!: number;
  @ApiProperty({ type: 'integer', description: 'Answered 5xx.' }) serverErrors!: number;
  @ApiProperty({ description: 'serverErrors / requests: the failures that are ours.' })
  errorRate!: number;
  @ApiProperty({ type: LatencyDto, description: 'Response time percentiles, in milliseconds.' })
  latencyMs!: LatencyDto;
}

export class UsageDto {
  @ApiProperty({ format: 'date-time' }) from!: string;
  @ApiProperty({ format: 'date-time' }) to!: string;
  @ApiProperty({ enum: USAGE_GROUPS }) groupBy!: UsageGroup;
  @ApiProperty({ type: String, nullable: true }) apiKeyId!: string | null;
  @ApiProperty({ type: [UsageBucketDto], description: 'Buckets with requests, in time order.' })
  data!: UsageBucketDto[];
}
