/**
 * cdk-nag acknowledgments, each for one named finding on one construct, with the reason it is
 * safe. cdk-nag 3 has no bulk suppression: an `AwsSolutions-IAM5[Resource::…]` id names exactly
 * one wildcard resource, rendered the way cdk-nag renders it (so a new wildcard anywhere else
 * still fails the synth). Only object-level and job-level wildcards inside resources this stack
 * owns are acknowledged; no statement has Action "*" or Resource "*". The one other finding is
 * `AwsSolutions-SQS3` on the intake-events DLQ alone: a dead-letter queue of EventBridge targets,
 * which cdk-nag does not recognize as a DLQ (it only sees queues named in a RedrivePolicy).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
// cdk-nag renders a CloudFormation reference into its finding id with this helper; using the
// same one keeps the ids right whether the stack has a concrete account/region or not.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import { BatchOrchestratorStack } from './stack';

export interface Acknowledged {
  readonly id: string;
  readonly reason: string;
}

/** The IAM5 finding id of one resource ARN (token or literal). */
export function iam5Finding(stack: Stack, arn: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(arn))}]`;
}

/** Every acknowledgment, by the construct it is recorded on. */
export function nagAcknowledgments(stack: BatchOrchestratorStack): Array<[IConstruct, Acknowledged[]]> {
  const f = stack.functions;
  const objects = (bucket: s3.IBucket, reason: string): Acknowledged => ({
    id: iam5Finding(stack, bucket.arnForObjects('*')),
    reason,
  });
  const jobs = (reason: string): Acknowledged => ({ id: iam5Finding(stack, stack.batchJobArns), reason });
  const normalizedCopies = (reason: string): Acknowledged => ({
    id: iam5Finding(stack, stack.uploadsBucket.arnForObjects('normalized/*')),
    reason,
  });
  const lists = (reason: string): Acknowledged => ({
    id: iam5Finding(stack, stack.manifestsBucket.arnForObjects('manifests/*/lists/*')),
    reason,
  });
  // Cross-region inference profiles only: `arn:…:bedrock:*::foundation-model/{id}`.
  const anyRegionModels = (reason: string): Acknowledged[] =>
    stack.modelArns.filter((a) => a.includes('*')).map((a) => ({ id: iam5Finding(stack, a), reason }));

  const MANIFEST_KEYS =
    'Manifest keys are manifests/{jobId}/j{n}/part-{n}.jsonl, made per request after deploy, so no fixed ARN exists; the wildcard covers objects of the dedicated manifests bucket only, never other buckets or the bucket configuration.';
  const OUTPUT_KEYS =
    'Bedrock writes outputs under {outputUri}/{bedrock job id}/, an id Bedrock assigns at job creation; the wildcard covers objects of the dedicated outputs bucket only.';
  const JOB_ARNS =
    'Batch job ARNs end in a 12-character id Bedrock assigns at CreateModelInvocationJob, so they cannot be named in advance; the wildcard is limited to model-invocation-job resources of this account and region.';
  const LIST_KEYS =
    'Long lists are kept at manifests/{jobId}/lists/{name}.jsonl (shared/src/app/lists.rs), a jobId made per request after deploy; the wildcard covers only the lists folders of the dedicated manifests bucket, never its manifests or images.';
  const GEO_MODELS =
    'A cross-region inference profile routes each request to the configured foundation model in any region of its geography, and Bedrock authorizes the call on that region\'s model ARN; the model id itself is fixed (only the region is a wildcard).';

  return [
    [stack.intakeEventsDlq, [{
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: the DeadLetterConfig of the two EventBridge targets that invoke intake-events (S3 Object Created, nightly run). cdk-nag only recognizes queues named in another queue\'s RedrivePolicy as DLQs; a DLQ of a DLQ would only move the same dead letters once more.',
    }]],
    [f['intake-events'].role!, [
      objects(stack.uploadsBucket, 'Each uploaded image (uploads/{userId}/{day}/, named by users after deploy) is read once to normalize it when its S3 event arrives, and its normalized copy is read back. The wildcard covers objects of the dedicated uploads bucket only.'),
      normalizedCopies('The function writes the normalized copy of each upload at normalized/{long edge}/{key}.jpg, keys made by users after deploy; the wildcard covers only that folder, never an original.'),
      lists(`The function writes a request's keys past 1,000 (a direct invoke, a user's nightly run) to its list before recording the intent. ${LIST_KEYS}`),
    ]],
    [f.intake.role!, [
      lists(`The function writes a request's keys past 1,000 to its list before recording the intent, and a member leaving a shared job reads its images list and the shared job's members list. ${LIST_KEYS}`),
      jobs(`StopModelInvocationJob stops the running jobs of a batch its owner cancels (DELETE /api/batch/jobs/{jobId}), and those of a shared job once its last member is cancelled; the ARNs come from the intents themselves. ${JOB_ARNS}`),
    ]],
    [stack.bedrockRole, [
      objects(stack.manifestsBucket, `Bedrock reads every JSONL part of a job's input folder. ${MANIFEST_KEYS}`),
      objects(stack.outputsBucket, OUTPUT_KEYS),
      ...anyRegionModels(GEO_MODELS),
    ]],
    [f['manifest-builder'].role!, [
      objects(stack.uploadsBucket, 'Images are uploaded by users under uploads/{userId}/{day}/ after deploy; the function reads the ones a request names. The wildcard covers objects of the dedicated uploads bucket only.'),
      normalizedCopies('The function writes the normalized copy of an image not normalized at upload, at normalized/{long edge}/{key}.jpg; the wildcard covers only that folder, never an original.'),
      objects(stack.manifestsBucket, `The function writes (and on failure aborts the multipart upload of) the parts and the s3Location images copied beside them, and for a shared job reads its members' parts and copies their images into its own folder. ${MANIFEST_KEYS}`),
    ]],
    [f.submitter.role!, [
      objects(stack.uploadsBucket, 'A flagged answer (one that failed a receipt check) is asked again with the whole photo: the function reads that image\'s original, uploaded by users under uploads/{userId}/{day}/ after deploy. The wildcard covers objects of the dedicated uploads bucket only.'),
      jobs(`CreateModelInvocationJob and TagResource act on the job being created, and StopModelInvocationJob stops a job it just created when the owner cancelled meanwhile. ${JOB_ARNS}`),
      objects(stack.manifestsBucket, `The function reads an on-demand job's input parts (the share of a batch that cannot make its deadline in batch) to run them through InvokeModel. ${MANIFEST_KEYS}`),
      ...anyRegionModels(`CreateModelInvocationJob is authorized on the model the job uses, and InvokeModel runs a deadline's on-demand jobs on it. ${GEO_MODELS}`),
    ]],
    [f['status-watcher'].role!, [
      objects(stack.uploadsBucket, 'A flagged answer (one that failed a receipt check) is asked again with the whole photo: the function reads that image\'s original, uploaded by users under uploads/{userId}/{day}/ after deploy. The wildcard covers objects of the dedicated uploads bucket only.'),
      objects(stack.outputsBucket, `The function reads each finished job's .jsonl.out files and manifest.json.out. ${OUTPUT_KEYS}`),
      objects(stack.manifestsBucket, `The function reads a finished job's input parts to re-run its retryable failures on-demand (and InvokeModel reads an s3Location record's image there with its credentials). ${MANIFEST_KEYS}`),
      jobs(`StopModelInvocationJob stops a job whose state-change event names an intent that was cancelled before the job's ARN was recorded. ${JOB_ARNS}`),
      ...anyRegionModels(`InvokeModel re-runs a finished job's retryable failures on-demand, on the model the job used. ${GEO_MODELS}`),
    ]],
    [f.reconciler.role!, [
      objects(stack.uploadsBucket, 'A flagged answer (one that failed a receipt check) is asked again with the whole photo: the function reads that image\'s original, uploaded by users under uploads/{userId}/{day}/ after deploy. The wildcard covers objects of the dedicated uploads bucket only.'),
      objects(stack.outputsBucket, `When a poll finds a job finished, the function reads its .jsonl.out files and manifest.json.out. ${OUTPUT_KEYS}`),
      objects(stack.manifestsBucket, `The function reads a pooled member's parts to run it on-demand (policy on_demand) and a finished job's parts to re-run its retryable failures (and InvokeModel reads an s3Location record's image there with its credentials). ${MANIFEST_KEYS}`),
      lists(`Sealing a shared job of more than 1,000 members writes its members list before its intent. ${LIST_KEYS}`),
      jobs(`GetModelInvocationJob is asked about every open job of the stack's intents, and StopModelInvocationJob stops one still running at its deadline's cut-off. ${JOB_ARNS}`),
      ...anyRegionModels(`InvokeModel runs the records of a pool below the job minimum on-demand at its deadline (policy on_demand), on the pool's model. ${GEO_MODELS}`),
    ]],
  ];
}

export function applyNagSuppressions(stack: BatchOrchestratorStack): void {
  for (const [construct, acks] of nagAcknowledgments(stack)) {
    Validations.of(construct).acknowledge(...acks);
  }
}
