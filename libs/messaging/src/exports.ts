/** The export queue's message: the job row (`jobs`) holds what was asked and what came of it. */
export const TASK_EXPORT = 'tasks.export';

export interface ExportJobMessage {
  jobId: string;
}
