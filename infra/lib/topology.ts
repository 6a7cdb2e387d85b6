/**
 * The event routing, mirrored from `shared/src/topology.rs` (RULES): which events each stage's
 * queue receives. The stack builds its EventBridge rules from this table and
 * `test/topology.test.ts` compares it with the Rust table, so the two cannot drift.
 */

/** Our events' `source` (`shared/src/domain/events.rs`, EVENT_SOURCE). */
export const EVENT_SOURCE = 'batch-orchestrator';
/** Bedrock's `source` and state-change `detail-type` (`shared/src/domain/bedrock.rs`). */
export const BEDROCK_EVENT_SOURCE = 'aws.bedrock';
export const BEDROCK_STATE_CHANGE = 'Batch Inference Job State Change';
/** Every Bedrock job this service names starts with this (`shared/src/domain/bedrock.rs`, JOB_NAME_PREFIX). */
export const JOB_NAME_PREFIX = 'bo-';

/** A queue a stage consumes (Rust `Queue::name()`); each has a DLQ named `{name}-dlq`. */
export type QueueName = 'manifest-builder' | 'submitter' | 'status-watcher' | 'webhooks';

export const QUEUES: readonly QueueName[] = ['manifest-builder', 'submitter', 'status-watcher', 'webhooks'];

export interface RuleSpec {
  readonly name: string;
  readonly source: string;
  readonly detailTypes: readonly string[];
  /**
   * Match only events whose `detail.batchJobName` starts with this: the default bus carries
   * every Bedrock job of the account, and only ours are the watcher's.
   */
  readonly jobNamePrefix: string | undefined;
  readonly target: QueueName;
  /** True for the account's default bus (Bedrock's events), false for our custom bus. */
  readonly defaultBus: boolean;
}

export const RULES: readonly RuleSpec[] = [
  {
    name: 'batch-requested-to-manifest-builder',
    source: EVENT_SOURCE,
    detailTypes: ['BATCH_REQUESTED'],
    jobNamePrefix: undefined,
    target: 'manifest-builder',
    defaultBus: false,
  },
  {
    name: 'manifest-ready-to-submitter',
    source: EVENT_SOURCE,
    detailTypes: ['BATCH_MANIFEST_READY'],
    jobNamePrefix: undefined,
    target: 'submitter',
    defaultBus: false,
  },
  {
    name: 'bedrock-job-state-to-status-watcher',
    source: BEDROCK_EVENT_SOURCE,
    detailTypes: [BEDROCK_STATE_CHANGE],
    jobNamePrefix: JOB_NAME_PREFIX,
    target: 'status-watcher',
    defaultBus: true,
  },
  {
    name: 'batch-ended-to-webhooks',
    source: EVENT_SOURCE,
    detailTypes: ['BATCH_COMPLETED', 'BATCH_FAILED'],
    jobNamePrefix: undefined,
    target: 'webhooks',
    defaultBus: false,
  },
];

/** The EventBridge pattern of a rule, as `Rule::pattern` in topology.rs writes it. */
export function eventPattern(r: RuleSpec): Record<string, unknown> {
  return {
    source: [r.source],
    'detail-type': [...r.detailTypes],
    ...(r.jobNamePrefix === undefined ? {} : { detail: { batchJobName: [{ prefix: r.jobNamePrefix }] } }),
  };
}
