import {
  EXPORT_FORMATS,
  ExportFormat,
  JOB_STATUSES,
  JOB_TYPES,
  JobEntity,
  JobStatus,
  JobType,
  TaskFilter,
} from '@app/database';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsObject, ValidateNested } from 'class-validator';
import { Optional } from '../../common/validators';
import { TaskFilterDto } from '../../tasks/dto/task.dto';

export class ExportTasksDto {
  @ApiProperty({ enum: EXPORT_FORMATS, description: 'csv (RFC 4180) or ndjson.' })
  @IsIn(EXPORT_FORMATS)
  format!: ExportFormat;

  @ApiPropertyOptional({
    type: TaskFilterDto,
    description: 'The filters of GET /v1/tasks; absent: every task of the caller.',
  })
  // Absent, not null: the document says an object (the fuzz spec found null accepted).
  @Optional()
  @IsObject()
  @ValidateNested()
  @Type(() => TaskFilterDto)
  filter?: TaskFilterDto;
}

export class ExportAcceptedDto {
  @ApiProperty({ format: 'uuid', description: 'Poll GET /v1/jobs/{jobId}.' }) jobId!: string;
}

class JobParamsDto {
  @ApiProperty({ enum: EXPORT_FORMATS }) format!: ExportFormat;
  @ApiProperty({ type: TaskFilterDto }) filter!: TaskFilter;
}

export class JobDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: JOB_TYPES }) type!: JobType;
  @ApiProperty({ type: JobParamsDto, description: 'What was asked.' }) params!: JobParamsDto;
  @ApiProperty({ enum: JOB_STATUSES }) status!: JobStatus;
  @ApiProperty({ minimum: 0, maximum: 100, description: 'Percent done; 100 once succeeded.' })
  progress!: number;
  @ApiProperty({ type: 'integer', description: 'Rows written so far.' }) processedRows!: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'Rows the filter selected.' })
  totalRows!: number | null;
  @ApiPropertyOptional({ description: 'Why it failed (status failed only).' }) error?: string;
  @ApiPropertyOptional({ description: 'Where to download the file (status succeeded only).' })
  resultUrl?: string;
  @ApiProperty({
    type: 'integer',
    description: 'Bumped on every change; the ETag is built from it.',
  })
  version!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startedAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the job and its file are deleted (set once it finishes).',
  })
  expiresAt!: string | null;

  static from(job: JobEntity): JobDto {
    const iso = (date: Date | null) => (date ? date.toISOString() : null);
    return {
      id: job.id,
      type: job.type,
      params: job.params,
      status: job.status,
      progress: job.progress,
      processedRows: job.processedRows,
      totalRows: job.totalRows,
      ...(job.status === 'failed' && job.error !== null ? { error: job.error } : {}),
      ...(job.status === 'succeeded' ? { resultUrl: `/v1/jobs/${job.id}/result` } : {}),
      version: job.version,
      createdAt: job.createdAt.toISOString(),
      startedAt: iso(job.startedAt),
      finishedAt: iso(job.finishedAt),
      expiresAt: iso(job.expiresAt),
    };
  }
}
