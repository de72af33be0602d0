import {
  TASK_PRIORITIES,
  TASK_STATUSES,
  TaskEntity,
  TaskPriority,
  TaskStatus,
  toTaskResource,
} from '@app/database';
import { PageQueryDto } from '@app/http';
import { IsIsoDateTime, Optional, toDate } from '../../common/validators';
import { ApiProperty, ApiPropertyOptional, IntersectionType, PartialType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsDate,
  IsIn,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  MaxLength,
  ValidateIf,
} from 'class-validator';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
const uniqueTrimmed = ({ value }: { value: unknown }) =>
  Array.isArray(value)
    ? [...new Set((value as unknown[]).map((tag) => (typeof tag === 'string' ? tag.trim() : tag)))]
    : value;
const nullable = (_: object, value: unknown) => value !== null;

export class CreateTaskDto {
  @ApiProperty({ minLength: 1, maxLength: 200, example: 'Write the quarterly report' })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  title!: string;

  @ApiPropertyOptional({ type: String, maxLength: 10000, nullable: true })
  @IsOptional()
  @ValidateIf(nullable)
  @IsString()
  @MaxLength(10000)
  description?: string | null;

  @ApiPropertyOptional({ enum: TASK_STATUSES, default: 'todo' })
  @Optional()
  @IsIn(TASK_STATUSES)
  status?: TaskStatus;

  @ApiPropertyOptional({ enum: TASK_PRIORITIES, default: 'medium' })
  @Optional()
  @IsIn(TASK_PRIORITIES)
  priority?: TaskPriority;

  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true })
  @IsOptional()
  @ValidateIf(nullable)
  @IsIsoDateTime({ message: 'dueDate must be an ISO 8601 date-time' })
  dueDate?: string | null;

  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true })
  @IsOptional()
  @ValidateIf(nullable)
  @IsUUID()
  categoryId?: string | null;

  @ApiPropertyOptional({ type: [String], maxItems: 20, example: ['finance', 'q3'] })
  @Optional()
  @Transform(uniqueTrimmed)
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Length(1, 50, { each: true })
  tags?: string[];
}

// skipNullProperties: false, so that `{"title": null}` is refused rather than written.
export class UpdateTaskDto extends PartialType(CreateTaskDto, { skipNullProperties: false }) {}

export const TASK_SORTS = [
  'createdAt',
  '-createdAt',
  'dueDate',
  '-dueDate',
  'priority',
  '-priority',
  'title',
  '-title',
] as const;
export type TaskSort = (typeof TASK_SORTS)[number];

/** The filters of a task list, and of a task export (CONTRACT §4). */
export class TaskFilterDto {
  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @IsOptional()
  @IsIn(TASK_STATUSES)
  status?: TaskStatus;

  @ApiPropertyOptional({ enum: TASK_PRIORITIES })
  @IsOptional()
  @IsIn(TASK_PRIORITIES)
  priority?: TaskPriority;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  categoryId?: string;

  @ApiPropertyOptional({ minLength: 1, maxLength: 50, description: 'Tasks carrying this tag.' })
  @IsOptional()
  @IsString()
  @Length(1, 50)
  tag?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'Due strictly before.' })
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: 'dueBefore must be an ISO 8601 date-time' })
  dueBefore?: Date;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'Due strictly after.' })
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: 'dueAfter must be an ISO 8601 date-time' })
  dueAfter?: Date;

  @ApiPropertyOptional({
    minLength: 1,
    maxLength: 200,
    description: 'Case-insensitive text in the title or description.',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  q?: string;
}

export class ListTasksQueryDto extends IntersectionType(PageQueryDto, TaskFilterDto) {
  @ApiPropertyOptional({ enum: TASK_SORTS, default: '-createdAt' })
  @IsOptional()
  @IsIn(TASK_SORTS)
  sort: TaskSort = '-createdAt';
}

export class TaskDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() title!: string;
  @ApiProperty({ type: String, nullable: true }) description!: string | null;
  @ApiProperty({ enum: TASK_STATUSES }) status!: TaskStatus;
  @ApiProperty({ enum: TASK_PRIORITIES }) priority!: TaskPriority;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) dueDate!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) categoryId!: string | null;
  @ApiProperty({ type: [String] }) tags!: string[];
  @ApiProperty({
    type: 'integer',
    description: 'Bumped on every change; the ETag is built from it.',
  })
  version!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;

  static from(task: TaskEntity): TaskDto {
    return toTaskResource(task);
  }
}

export class TaskPageDto {
  @ApiProperty({ type: [TaskDto] }) data!: TaskDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  nextCursor!: string | null;
}
