/**
 * The batch-orchestrator stack: intents, results and uploads-index tables, the three buckets,
 * our event bus, one SQS queue (+ DLQ) per consuming stage fed by the rules of `topology.ts`,
 * the five Rust functions with least-privilege roles (the reconciler on an EventBridge schedule;
 * intake also fed S3 Object Created events of the uploads bucket and the nightly schedule), the
 * JWT-protected HTTP API, the Bedrock service role and the alarms. Everything tunable comes
 * from `Settings` (CDK context), never from edits here.
 */
import * as path from 'node:path';
import { Annotations, CfnOutput, CfnRule, Duration, Fn, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import { allModelArns } from './bedrock-arns';
import { nightDashboard } from './dashboard';
import { functionEnvironment } from './function-env';
import { Settings } from './settings';
import { QUEUES, QueueName, RULES } from './topology';

/** GSI names of the intents table, as `shared/src/adapters/aws/dynamodb.rs` queries them. */
export const GSI = {
  byJobId: 'byJobId',
  byUserCreated: 'byUserCreated',
  byOutbox: 'byOutbox',
  byBedrockJobArn: 'byBedrockJobArn',
  byStatusUpdated: 'byStatusUpdated',
} as const;

export type FunctionName = 'intake' | 'intake-events' | 'manifest-builder' | 'submitter' | 'status-watcher' | 'reconciler' | 'webhook-sender';

interface FunctionSpec {
  readonly name: FunctionName;
  /** The crate under `functions/` whose binary `name` it runs, when not a crate of its own. */
  readonly crate?: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize: number;
  /** The queue it consumes, if it is an SQS consumer. */
  readonly queue?: QueueName;
  /** Reserved concurrency, if the function must not run more than this many at once. */
  readonly reservedConcurrency?: number;
  /** Messages per invocation of an SQS consumer (default SQS_BATCH_SIZE). */
  readonly batchSize?: number;
}

/** The tag on every Bedrock job this stack creates (`shared/src/app/submit.rs`, STACK_TAG). */
export const STACK_TAG = 'batch-orchestrator-stack';

/**
 * One crate per function (`functions/{name}`, binary of the same name), except intake's two: its
 * crate builds `intake` (the HTTP API, under lambda_http) and `intake-events` (direct invoke, the
 * S3 uploads index, the nightly run; see docs/architecture.md). Timeouts: intake answers
 * an HTTP API (which gives up after 30 s); manifest-builder fetches every image of a request and writes
 * the JSONL parts (each streamed up as a multipart upload in 8 MiB parts, so memory holds one
 * part's buffer, plus the images in flight); status-watcher ingests
 * every output line of a finished job and re-runs its retryable failures on-demand (up to 1,000
 * records, onDemandConcurrency at a time), so it takes one message per invocation (batch size 1:
 * each terminal event gets the whole 15 minutes, Lambda's maximum); reconciler runs one scheduled
 * pass (up to 200 intents per status, one GetModelInvocationJob per open job, the ingest of any
 * job it finds finished, and the pools it seals, on-demand runs of below-minimum pools included).
 */
export const FUNCTIONS: readonly FunctionSpec[] = [
  { name: 'intake', description: 'HTTP API of batch requests: submit, status, list, results, cancel, usage', timeout: Duration.seconds(29), memorySize: 1024 },
  // A nightly run records one intent per user (normalizing their uploads as needed).
  { name: 'intake-events', crate: 'intake', description: 'Direct-invoke intake of batch requests, S3 uploads index and nightly run', timeout: Duration.minutes(5), memorySize: 1024 },
  // One message per invocation: a large request can take most of the 5 minutes, and a timeout
  // would fail (and spend the receive count of) every message of its batch.
  { name: 'manifest-builder', description: 'Builds the Bedrock JSONL manifests of a requested batch', timeout: Duration.minutes(5), memorySize: 2048, queue: 'manifest-builder', batchSize: 1 },
  // It also runs a deadline's on-demand jobs (50 records a chunk, each stored before the next):
  // a timeout is redelivered and resumes after the stored records.
  { name: 'submitter', description: 'Creates the Bedrock batch inference jobs of a manifest, and runs its on-demand jobs', timeout: Duration.minutes(15), memorySize: 512, queue: 'submitter', batchSize: 1 },
  { name: 'status-watcher', description: 'Follows Bedrock job state changes, ingests results and re-runs retryable failures on-demand', timeout: Duration.minutes(15), memorySize: 1024, queue: 'status-watcher', batchSize: 1 },
  // The pools' single sealer: one pass at a time (reserved concurrency 1).
  // One webhook a message: a slow receiver (10 s at most) delays only its own.
  { name: 'webhook-sender', description: 'Posts the signed completion webhook of a batch that ended', timeout: Duration.seconds(30), memorySize: 256, queue: 'webhooks', batchSize: 1 },
  { name: 'reconciler', description: 'Scheduled pass: polls Bedrock for open jobs, re-announces stuck intents, sweeps owed events, seals pools (below-minimum ones on-demand)', timeout: Duration.minutes(10), memorySize: 512, reservedConcurrency: 1 },
];

/** The HTTP API's routes (all to intake, all behind the JWT authorizer), as intake's router serves them. */
export const API_ROUTES = {
  '/api/batch/jobs': [apigw.HttpMethod.POST, apigw.HttpMethod.GET],
  '/api/batch/jobs/{jobId}': [apigw.HttpMethod.GET, apigw.HttpMethod.DELETE],
  '/api/batch/jobs/{jobId}/results': [apigw.HttpMethod.GET],
  '/api/batch/usage': [apigw.HttpMethod.GET],
} as const;

/** AWS's guidance for Lambda event sources: queue visibility at least 6x the function timeout. */
export const VISIBILITY_FACTOR = 6;
/** Receives before a message moves to its DLQ (the Rust embedded bus uses the same default). */
export const MAX_RECEIVE_COUNT = 5;
export const SQS_BATCH_SIZE = 10;
export const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;
/** Manifests are only read by Bedrock while a job runs (at most 168 h + queueing). */
export const MANIFEST_EXPIRY = Duration.days(30);
/**
 * Bedrock's outputs echo every record's input, images in base64: once ingested into the results
 * table (TTL `expiresAt`, 30 days after the intent ends) they are only kept for a re-ingest.
 */
export const OUTPUT_EXPIRY = Duration.days(30);
/**
 * Uploads and their normalized copies (`uploads/`, `normalized/` in the uploads bucket) and
 * the uploads index (TTL `expiresAt`): 90 days, as shared/src/domain/uploads.rs
 * UPLOAD_RETENTION_DAYS, past any intent's TTL.
 */
export const UPLOAD_EXPIRY = Duration.days(90);
export const ACCESS_LOG_EXPIRY = Duration.days(90);
export const ABORT_MULTIPART_AFTER = Duration.days(7);
/**
 * The manifests bucket's incomplete multipart uploads: manifest-builder streams every part as
 * a multipart upload and aborts it on failure, but an invocation that times out or crashes
 * mid-part cannot. Nothing ever resumes an upload (a replay starts a new one for the same
 * key), so a day-old incomplete upload is only billed storage.
 */
export const ABORT_MANIFEST_MULTIPART_AFTER = Duration.days(1);
/** How long a DLQ keeps a message (SQS's maximum): time to fix the cause and replay it. */
export const DLQ_RETENTION = Duration.days(14);
/** The key prefix of users' uploads (`uploads/{userId}/{YYYY-MM-DD}/{name}`, shared/src/domain/uploads.rs). */
export const UPLOADS_PREFIX = 'uploads/';
/**
 * EventBridge's retry policy for intake's event sources (S3 Object Created, nightly): how often,
 * and for how long, EventBridge retries delivering an event it could not hand to Lambda before
 * it goes to the intake-events DLQ.
 */
export const INTAKE_EVENT_RETRY_ATTEMPTS = 8;
export const INTAKE_EVENT_MAX_AGE = Duration.hours(2);
/** The nightly schedule's input: no day, so intake runs the previous UTC day. */
export const NIGHTLY_INPUT = { nightlyRun: {} } as const;

/**
 * How long a scheduled reconciler invocation may wait in Lambda's async queue: one period (at
 * least Lambda's minimum of 60 s, at most its maximum of 6 h). With reserved concurrency 1 a
 * pass due while another runs is throttled and retried by Lambda; beyond one period the next
 * scheduled pass does the same work, so older ones are dropped rather than piling up.
 */
export function reconcilerMaxEventAge(reconcileEveryMinutes: number): Duration {
  return Duration.seconds(Math.min(6 * 3600, Math.max(60, reconcileEveryMinutes * 60)));
}

export interface BatchOrchestratorStackProps extends StackProps {
  readonly settings: Settings;
  /** The Rust workspace root (holds `functions/*`); defaults to the parent of `infra/`. */
  readonly repoRoot?: string;
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
}

export class BatchOrchestratorStack extends Stack {
  readonly settings: Settings;
  readonly intentsTable: dynamodb.Table;
  readonly resultsTable: dynamodb.Table;
  /** The uploads index: PK `pk`, SK `sk` (see `DynamoUploads` in shared/src/adapters/aws/dynamodb.rs). */
  readonly uploadsTable: dynamodb.Table;
  readonly uploadsBucket: s3.Bucket;
  readonly manifestsBucket: s3.Bucket;
  readonly outputsBucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;
  readonly bus: events.EventBus;
  readonly queues: Record<QueueName, { queue: sqs.Queue; dlq: sqs.Queue }>;
  readonly functions: Record<FunctionName, lambda.Function>;
  /** The EventBridge schedule (default bus) that invokes the reconciler. */
  readonly reconcileRule: events.Rule;
  /** S3 Object Created events of the uploads bucket (default bus) -> intake-events. */
  readonly uploadsRule: events.Rule;
  /** The nightly schedule (default bus) -> intake-events; absent when `nightlyEnabled` is false. */
  readonly nightlyRule?: events.Rule;
  /** Dead letters of intake's event sources: events EventBridge could not deliver to intake-events. */
  readonly intakeEventsDlq: sqs.Queue;
  readonly api: apigw.HttpApi;
  /** The night on one CloudWatch dashboard (infra/lib/dashboard.ts). */
  readonly dashboard: cloudwatch.Dashboard;
  readonly bedrockRole: iam.Role;
  /** `arn:…:bedrock:{region}:{account}:model-invocation-job/*`: every batch job of this account. */
  readonly batchJobArns: string;
  /** The IAM resources of the configured models (see bedrock-arns.ts). */
  readonly modelArns: readonly string[];
  private readonly bundle: boolean;

  constructor(scope: Construct, id: string, props: BatchOrchestratorStackProps) {
    super(scope, id, props);
    const settings = props.settings;
    this.settings = settings;
    this.bundle = settings.bundle;
    const repoRoot = props.repoRoot ?? path.resolve(__dirname, '..', '..');
    const prefix = `batch-orchestrator-${settings.stage}`;

    // ---- Tables ------------------------------------------------------------------------------
    // Intents: PK intentId and no sort key (a varying sort key would let a retry slip past
    // attribute_not_exists); see the layout in shared/src/adapters/aws/dynamodb.rs.
    this.intentsTable = new dynamodb.Table(this, 'IntentsTable', {
      tableName: `${prefix}-intents`,
      partitionKey: { name: 'intentId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const gsi = (indexName: string, pk: string, sk?: string): void =>
      this.intentsTable.addGlobalSecondaryIndex({
        indexName,
        partitionKey: { name: pk, type: dynamodb.AttributeType.STRING },
        sortKey: sk === undefined ? undefined : { name: sk, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    gsi(GSI.byJobId, 'jobId');
    gsi(GSI.byUserCreated, 'userId', 'createdAt');
    gsi(GSI.byOutbox, 'outboxPending', 'outboxStagedAt');
    gsi(GSI.byBedrockJobArn, 'bedrockJobArn');
    // Intents by status + last change: the reconciler's open and stuck intents, and the oldest
    // intent waiting for a concurrency slot (submitter and status-watcher, when a slot frees).
    gsi(GSI.byStatusUpdated, 'status', 'updatedAt');

    this.resultsTable = new dynamodb.Table(this, 'ResultsTable', {
      tableName: `${prefix}-results`,
      partitionKey: { name: 'intentId', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'recordId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Results expire with their intent: each is written with `expiresAt` = intentTtlDays
      // after the write (results are written at the job's end, and the intent's TTL counts
      // from its end too).
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Uploads index: `pk = up#{day}#{userId}`, `sk = object key` (a user's uploads of a day) and
    // `pk = day#{day}`, `sk = userId` (the users with uploads that day, for the nightly run).
    // Plain puts and partition queries only: no GSI. Items expire 90 days after their day
    // (TTL `expiresAt`, UPLOAD_EXPIRY), with the uploads they name.
    this.uploadsTable = new dynamodb.Table(this, 'UploadsTable', {
      tableName: `${prefix}-uploads`,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- Buckets -----------------------------------------------------------------------------
    // SSE-S3 throughout: Bedrock reads manifests and writes outputs with no KMS key grants, and
    // S3 server access logs cannot be delivered to a KMS-encrypted bucket.
    const secure: s3.BucketProps = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      ...secure,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: ACCESS_LOG_EXPIRY, abortIncompleteMultipartUploadAfter: ABORT_MULTIPART_AFTER }],
    });
    // One whole-bucket AbortIncompleteMultipartUpload rule per bucket (7 days, 1 on the
    // manifests bucket), beside the bucket's own rules: a second whole-bucket abort rule with
    // another age would only overlap it.
    const dataBucket = (id: string, logPrefix: string, rules: s3.LifecycleRule[], abortMultipartAfter = ABORT_MULTIPART_AFTER): s3.Bucket =>
      new s3.Bucket(this, id, {
        ...secure,
        serverAccessLogsBucket: this.accessLogsBucket,
        serverAccessLogsPrefix: `${logPrefix}/`,
        lifecycleRules: [
          { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: abortMultipartAfter },
          ...rules,
        ],
      });
    this.uploadsBucket = dataBucket('UploadsBucket', 'uploads', [
      { id: 'expire-uploads', prefix: UPLOADS_PREFIX, expiration: UPLOAD_EXPIRY },
      { id: 'expire-normalized', prefix: 'normalized/', expiration: UPLOAD_EXPIRY },
    ]);
    // S3 sends its events of the uploads bucket to EventBridge (the default bus), where the
    // Object Created rule below hands them to intake. Set on the CloudFormation resource itself
    // (NotificationConfiguration.EventBridgeConfiguration) rather than with the L2's
    // `eventBridgeEnabled: true`, which does the same through a custom resource: a Node.js
    // Lambda with a managed policy and s3:PutBucketNotification on Resource "*".
    (this.uploadsBucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };
    // Manifest parts are streamed up as multipart uploads (S3Writer): incomplete ones are
    // aborted after a day (ABORT_MANIFEST_MULTIPART_AFTER), the parts expire after 30 days.
    this.manifestsBucket = dataBucket(
      'ManifestsBucket',
      'manifests',
      [{ id: 'expire-manifests', expiration: MANIFEST_EXPIRY }],
      ABORT_MANIFEST_MULTIPART_AFTER,
    );
    this.outputsBucket = dataBucket('OutputsBucket', 'outputs', [{ id: 'expire-outputs', expiration: OUTPUT_EXPIRY }]);

    // ---- Bus, queues, rules ------------------------------------------------------------------
    this.bus = new events.EventBus(this, 'EventBus', {
      eventBusName: `${prefix}-events`,
      description: 'BATCH_* events of batch-orchestrator (source batch-orchestrator)',
    });

    const timeoutOf = (q: QueueName): Duration => {
      const f = FUNCTIONS.find((fn) => fn.queue === q);
      if (f === undefined) throw new Error(`no function consumes queue ${q}`);
      return f.timeout;
    };
    const queues = {} as Record<QueueName, { queue: sqs.Queue; dlq: sqs.Queue }>;
    for (const name of QUEUES) {
      const dlq = new sqs.Queue(this, `${pascal(name)}Dlq`, {
        queueName: `${prefix}-${name}-dlq`,
        retentionPeriod: DLQ_RETENTION,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      const queue = new sqs.Queue(this, `${pascal(name)}Queue`, {
        queueName: `${prefix}-${name}`,
        visibilityTimeout: Duration.seconds(timeoutOf(name).toSeconds() * VISIBILITY_FACTOR),
        retentionPeriod: Duration.days(4),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: MAX_RECEIVE_COUNT },
      });
      queues[name] = { queue, dlq };
    }
    this.queues = queues;

    const defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    for (const rule of RULES) {
      const { queue, dlq } = queues[rule.target];
      new events.Rule(this, `${pascal(rule.name)}Rule`, {
        description: `${rule.source} ${rule.detailTypes.join(', ')} -> ${rule.target} queue`,
        eventBus: rule.defaultBus ? defaultBus : this.bus,
        eventPattern: {
          source: [rule.source],
          detailType: [...rule.detailTypes],
          ...(rule.jobNamePrefix === undefined ? {} : { detail: { batchJobName: events.Match.prefix(rule.jobNamePrefix) } }),
        },
        // An event EventBridge cannot deliver (after its retries) lands in the stage's DLQ in
        // the same shape as a delivered one, so the DLQ replay moves it back like any other.
        targets: [new targets.SqsQueue(queue, { deadLetterQueue: dlq })],
      });
    }

    // ---- HTTP API (routes are added once intake exists) ------------------------------------------
    this.api = new apigw.HttpApi(this, 'HttpApi', {
      apiName: prefix,
      description: 'batch-orchestrator: POST and GET /api/batch/jobs, GET and DELETE /api/batch/jobs/{jobId}',
      createDefaultStage: false,
    });
    const apiAccessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: settings.apiThrottleRate, burstLimit: settings.apiThrottleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(apiAccessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            latency: '$context.responseLatency',
            sub: '$context.authorizer.claims.sub',
            authorizerError: '$context.authorizer.error',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    // ---- Bedrock service role (what batch jobs run under) ------------------------------------
    const jobArns = this.formatArn({ service: 'bedrock', resource: 'model-invocation-job', resourceName: '*' });
    const modelArns = allModelArns(settings.modelIds, {
      partition: this.partition,
      region: this.region,
      account: this.account,
    }, settings.modelFamilies);
    this.batchJobArns = jobArns;
    this.modelArns = modelArns;
    this.bedrockRole = new iam.Role(this, 'BedrockBatchRole', {
      description: 'Service role Bedrock batch inference jobs of batch-orchestrator run under',
      // The confused-deputy guard Bedrock documents: only jobs of this account and region.
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': jobArns },
        },
      }),
    });
    // The shape of the S3 policy AWS documents for a batch inference service role (user guide,
    // "Create a custom service role for batch inference", batch-iam-sr): one statement `S3Access`
    // with s3:GetObject, s3:PutObject and s3:ListBucket on the input and output buckets and their
    // objects, on the condition that the buckets are this account's (aws:ResourceAccount).
    this.bedrockRole.addToPolicy(new iam.PolicyStatement({
      sid: 'S3Access',
      actions: ['s3:GetObject', 's3:PutObject', 's3:ListBucket'],
      resources: [
        this.manifestsBucket.bucketArn,
        this.manifestsBucket.arnForObjects('*'),
        this.outputsBucket.bucketArn,
        this.outputsBucket.arnForObjects('*'),
      ],
      conditions: { StringEquals: { 'aws:ResourceAccount': [this.account] } },
    }));
    this.bedrockRole.addToPolicy(new iam.PolicyStatement({
      sid: 'InvokeConfiguredModels',
      actions: ['bedrock:InvokeModel'],
      resources: modelArns,
    }));

    // ---- Functions ---------------------------------------------------------------------------
    const environment = functionEnvironment({
      intentsTable: this.intentsTable.tableName,
      resultsTable: this.resultsTable.tableName,
      uploadsTable: this.uploadsTable.tableName,
      eventBusName: this.bus.eventBusName,
      uploadsBucket: this.uploadsBucket.bucketName,
      manifestsBucket: this.manifestsBucket.bucketName,
      outputsBucket: this.outputsBucket.bucketName,
      bedrockRoleArn: this.bedrockRole.roleArn,
      // `https://{id}.execute-api.{region}.amazonaws.com`, no trailing slash: the $default stage.
      apiBaseUrl: this.api.apiEndpoint,
      settings,
    });

    const functions = {} as Record<FunctionName, lambda.Function>;
    for (const spec of FUNCTIONS) {
      const id = pascal(spec.name);
      const role = new iam.Role(this, `${id}Role`, {
        description: `Execution role of the ${spec.name} function`,
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      // An explicit log group instead of AWSLambdaBasicExecutionRole: retention is set, and
      // the role may write to this group only (not create or write any group in the account).
      const logGroup = new logs.LogGroup(this, `${id}Logs`, {
        retention: LOG_RETENTION,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      logGroup.grantWrite(role);
      const fn = new RustFunction(this, id, {
        manifestPath: path.join(repoRoot, 'functions', spec.crate ?? spec.name, 'Cargo.toml'),
        binaryName: spec.name,
        architecture: lambda.Architecture.ARM_64,
        runtime: 'provided.al2023',
        description: spec.description,
        timeout: spec.timeout,
        memorySize: spec.memorySize,
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: lambda.ApplicationLogLevel[settings.logLevel],
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        environment,
        reservedConcurrentExecutions: spec.reservedConcurrency,
      });
      if (spec.queue !== undefined) {
        // Grants this function (only) sqs:ReceiveMessage/DeleteMessage/... on its own queue.
        fn.addEventSource(new SqsEventSource(queues[spec.queue].queue, {
          batchSize: spec.batchSize ?? SQS_BATCH_SIZE,
          reportBatchItemFailures: true,
        }));
      }
      functions[spec.name] = fn;
    }
    this.functions = functions;
    this.grantLeastPrivilege(jobArns, modelArns);

    // ---- Reconciler schedule -------------------------------------------------------------------
    // Bedrock's state-change events are best effort: every reconcileEveryMinutes one pass asks
    // Bedrock about the open jobs, re-announces stuck intents, sweeps owed events and seals the
    // pools (running below-minimum ones on-demand at their deadline). The event content is
    // ignored. A failed pass is not retried by Lambda (async retries off): the next scheduled
    // pass is the retry, and the Errors alarm reports the failure. Reserved concurrency 1 keeps
    // it the pools' single sealer: a pass due while one still runs is throttled, not run beside it.
    // A throttled invocation waits in Lambda's async queue at most one period (maxEventAge), so
    // throttled passes do not pile up for the default 6 hours: the next scheduled one replaces them.
    functions.reconciler.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: reconcilerMaxEventAge(settings.reconcileEveryMinutes),
    });
    this.reconcileRule = new events.Rule(this, 'ReconcileScheduleRule', {
      description: `Runs the reconciler every ${settings.reconcileEveryMinutes} minute(s)`,
      schedule: events.Schedule.rate(Duration.minutes(settings.reconcileEveryMinutes)),
      targets: [new targets.LambdaFunction(functions.reconciler)],
    });

    // ---- Intake's event sources: S3 uploads and the nightly run ------------------------------
    // Both are EventBridge rules on the default bus targeting intake-events directly (not the Rust
    // event->queue topology of topology.ts). EventBridge invokes Lambda asynchronously: the
    // target's retry policy and DLQ cover only events EventBridge could not hand to Lambda
    // (throttling, the Invoke call failing). Once Lambda has accepted an event, intake-events fails
    // the invocation on a retryable error (the store or S3 unavailable), Lambda retries it
    // twice, and then hands it to its on-failure destination, the same intake-events DLQ
    // (a destination record: the original event is its `requestPayload`; re-invoke intake-events with
    // it). Without the destination Lambda would drop it. Both are idempotent: an upload is a
    // plain put of the same index item, and nightly intent ids derive from (user, day).
    this.intakeEventsDlq = new sqs.Queue(this, 'IntakeEventsDlq', {
      queueName: `${prefix}-intake-events-dlq`,
      retentionPeriod: DLQ_RETENTION,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const intakeTarget = (event?: events.RuleTargetInput): targets.LambdaFunction =>
      new targets.LambdaFunction(functions['intake-events'], {
        event,
        retryAttempts: INTAKE_EVENT_RETRY_ATTEMPTS,
        maxEventAge: INTAKE_EVENT_MAX_AGE,
        deadLetterQueue: this.intakeEventsDlq,
      });
    // intake-events records every new object under uploads/ in the uploads index (keys outside the
    // uploads/{userId}/{day}/ layout are answered `indexed: false` and never retried).
    functions['intake-events'].configureAsyncInvoke({
      retryAttempts: 2,
      onFailure: new destinations.SqsDestination(this.intakeEventsDlq),
    });
    this.uploadsRule = new events.Rule(this, 'UploadsObjectCreatedRule', {
      description: `aws.s3 Object Created in the uploads bucket under ${UPLOADS_PREFIX} -> intake-events (uploads index)`,
      eventBus: defaultBus,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.uploadsBucket.bucketName] },
          object: { key: events.Match.prefix(UPLOADS_PREFIX) },
        },
      },
      targets: [intakeTarget()],
    });
    // The nightly run: one intent per user with uploads on the previous UTC day (no day in the
    // input), through the same accept as POST; intent ids derive from (user, day), so a rerun or
    // a retry creates nothing twice.
    if (settings.nightlyEnabled) {
      this.nightlyRule = new events.Rule(this, 'NightlyScheduleRule', {
        description: `Runs intake-events' nightly run (${settings.nightlyCron}, UTC) for the previous UTC day`,
        schedule: events.Schedule.expression(settings.nightlyCron),
        targets: [intakeTarget(events.RuleTargetInput.fromObject(NIGHTLY_INPUT))],
      });
    }

    // ---- Routes --------------------------------------------------------------------------------
    // The user is the token's `sub` claim (intake reads it from the authorizer context).
    const authorizer = new HttpJwtAuthorizer('JwtAuthorizer', settings.jwtIssuer, {
      authorizerName: 'jwt',
      jwtAudience: [...settings.jwtAudience],
      identitySource: ['$request.header.Authorization'],
    });
    const integration = new HttpLambdaIntegration('IntakeIntegration', functions.intake, {
      payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
    });
    // POST submits, GET lists the caller's jobs (?status=&limit=&cursor=); GET /{jobId} is the
    // statusUrl, DELETE /{jobId} cancels. Every route needs a valid token.
    this.api.addRoutes({ path: '/api/batch/jobs', methods: [...API_ROUTES['/api/batch/jobs']], integration, authorizer });
    this.api.addRoutes({ path: '/api/batch/jobs/{jobId}', methods: [...API_ROUTES['/api/batch/jobs/{jobId}']], integration, authorizer });
    this.api.addRoutes({
      path: '/api/batch/jobs/{jobId}/results',
      methods: [...API_ROUTES['/api/batch/jobs/{jobId}/results']],
      integration,
      authorizer,
    });
    // The caller's own usage (images, tokens, USD per day).
    this.api.addRoutes({ path: '/api/batch/usage', methods: [...API_ROUTES['/api/batch/usage']], integration, authorizer });

    // ---- The night's dashboard (infra/lib/dashboard.ts) -----------------------------------------
    this.dashboard = nightDashboard(this, { prefix, queues, intakeEventsDlq: this.intakeEventsDlq });

    // ---- Alarms --------------------------------------------------------------------------------
    const topic = settings.alarmTopicArn === undefined
      ? undefined
      : sns.Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn);
    const alarm = (id: string, props: cloudwatch.AlarmProps): void => {
      const a = new cloudwatch.Alarm(this, id, props);
      if (topic !== undefined) a.addAlarmAction(new cwActions.SnsAction(topic));
    };
    alarm('IntakeEventsDlqAlarm', {
      alarmDescription: 'An S3 upload or nightly-run event failed in intake-events after its retries (a Lambda destination record: the event is its requestPayload) or could not be delivered to it: fix the cause, then re-invoke intake-events with the event (a nightly run with {"nightlyRun": {"day": "YYYY-MM-DD"}})',
      metric: this.intakeEventsDlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const name of QUEUES) {
      alarm(`${pascal(name)}DlqAlarm`, {
        alarmDescription: `A message reached the ${name} DLQ: fix the cause, then replay it (batch-orchestrator dlq replay)`,
        metric: queues[name].dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    // A job Bedrock refused for good (AccessDenied, ResourceNotFound, Validation): its intent
    // failed with a message naming the permission or setting to fix, and every intent of that
    // model will until someone fixes it (shared/src/app/submit.rs, metric jobs_refused).
    // An alarm on one of our own metrics (EMF, namespace BatchOrchestrator): one 5-minute
    // period at or over 1.
    const ownAlarm = (alarmId: string, alarmDescription: string, metricName: string, fn: FunctionName, statistic: string): void => {
      alarm(alarmId, {
        alarmDescription,
        metric: new cloudwatch.Metric({
          namespace: 'BatchOrchestrator',
          metricName,
          dimensionsMap: { function: fn },
          period: Duration.minutes(5),
          statistic,
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    };
    ownAlarm('JobsRefusedAlarm', 'Bedrock refused to create a batch job for good (access denied, model or role not found, validation): the failed intent\'s failureMessage and the submitter\'s log name the permission or setting to fix', 'jobs_refused', 'submitter', 'Sum');
    // An open intent with a deadline that its plan or a cut-off says may be missed (the
    // reconciler's gauge each pass, shared/src/app/deadline.rs, metric intents_at_risk). Jobs
    // stopped at a cut-off are redriven on-demand: this says it happened, and that on-demand
    // may not make it either (see the runbook in docs/operations.md).
    ownAlarm('DeadlineAtRiskAlarm', 'An intent may miss its deadline: a batch job was stopped at its cut-off and redriven on-demand, or the plan ends after the deadline (raise ON_DEMAND_RATES or the Bedrock quotas behind them)', 'intents_at_risk', 'reconciler', 'Maximum');
    // A stuck batch job, per model, as AWS's SLA sample raises it
    // (step-functions-workflows-collection, bedrock-batch-with-sla, monitoring_construct.py):
    // records pending (AWS/Bedrock/Batch NumberOfRecordsPendingProcessing > 0) while no input
    // token is processed (NumberOfInputTokensProcessedPerMinute = 0), 5-minute averages, for 30
    // minutes. Bedrock publishes these per `ModelId` (the sample's dimension name).
    for (const [i, modelId] of settings.modelIds.entries()) {
      const batchMetric = (metricName: string): cloudwatch.Metric => new cloudwatch.Metric({
        namespace: 'AWS/Bedrock/Batch',
        metricName,
        dimensionsMap: { ModelId: modelId },
        period: Duration.minutes(5),
        statistic: 'Average',
      });
      alarm(`BatchJobStuckAlarm${i + 1}`, {
        alarmDescription: `Bedrock batch jobs of ${modelId} hold pending records but processed no input token for 30 minutes: a stuck job (see docs/operations.md, Runbook, "A job is stuck"); deadlines are cut off and redriven on-demand by the reconciler`,
        metric: new cloudwatch.MathExpression({
          expression: 'IF(pending > 0 AND tokens == 0, 1, 0)',
          usingMetrics: {
            pending: batchMetric('NumberOfRecordsPendingProcessing'),
            tokens: batchMetric('NumberOfInputTokensProcessedPerMinute'),
          },
          period: Duration.minutes(5),
        }),
        threshold: 0,
        evaluationPeriods: 6,
        datapointsToAlarm: 6,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    for (const spec of FUNCTIONS) {
      alarm(`${pascal(spec.name)}ErrorsAlarm`, {
        alarmDescription: `The ${spec.name} function failed an invocation`,
        metric: functions[spec.name].metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    // ---- Outputs -------------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'IntentsTableName', { value: this.intentsTable.tableName });
    new CfnOutput(this, 'ResultsTableName', { value: this.resultsTable.tableName });
    new CfnOutput(this, 'UploadsTableName', { value: this.uploadsTable.tableName });
    new CfnOutput(this, 'EventBusName', { value: this.bus.eventBusName });
    new CfnOutput(this, 'UploadsBucketName', { value: this.uploadsBucket.bucketName });

    if (!this.bundle) {
      Annotations.of(this).addWarningV2(
        'batch-orchestrator:NotBundled',
        'bundle=false: the Rust functions were not built, so this assembly is for review and tests only. Deploy with `-c bundle=true` (needs cargo-lambda).',
      );
      // Unbuilt, each function's asset is its crate's source folder: a template made so must
      // never reach CloudFormation. This rule fails the change set before any resource moves.
      new CfnRule(this, 'RefuseUnbundledDeploy', {
        assertions: [{
          assert: Fn.conditionEquals('bundle=false', 'bundle=true'),
          assertDescription: 'This template was synthesized without building the Rust functions (bundle=false). Deploy with: npx cdk deploy -c bundle=true',
        }],
      });
    }
  }

  /**
   * Assets are built only when `bundle` is set, whatever the CLI asks: a plain `cdk synth` then
   * needs neither cargo-lambda nor Docker, and `cdk deploy -c bundle=true` builds the functions.
   */
  public override get bundlingRequired(): boolean {
    return this.bundle && super.bundlingRequired;
  }

  /**
   * Each function's role gets the actions its code calls, on its own resources only. DynamoDB
   * has no TransactWriteItems IAM action: the intent store's update transaction holds Put items
   * only (the intent, with its version condition, and one job-ARN pointer per job), so it is
   * authorized as dynamodb:PutItem alone (no UpdateItem, no ConditionCheckItem); a
   * BatchWriteItem is authorized as dynamodb:BatchWriteItem.
   *
   * What each function reaches (the use case its crate calls, and what that calls in turn):
   * - intake: app::intake::accept, app::status (job_status, list_jobs, list_results),
   *   app::cancel (cancel, leave_shared_job), app::usage;
   * - intake-events: app::intake::accept (direct invoke), app::uploads::index_object_created,
   *   app::nightly::nightly (which accepts each user's day, after app::nights::close_ended);
   * - manifest-builder: app::manifest::build_manifest (build_shared and relocate for a shared job);
   * - submitter: app::submit::submit_jobs;
   * - status-watcher: app::watch::apply_state_change (ingest, job_end::rerun::decide,
   *   results::put, pool::finish_members);
   * - reconciler: app::reconcile::reconcile (watch::apply_job_status as above, pool::pool_pass,
   *   sweep::sweep_outboxes, deadline::enforce, nights::record_pass);
   * - webhook-sender: app::webhooks::deliver (status::job_status).
   */
  private grantLeastPrivilege(jobArns: string, modelArns: string[]): void {
    const f = this.functions;
    // Every job the submitter creates carries this tag, valued with this stack's manifests
    // bucket (`shared/src/app/submit.rs`, STACK_TAG): stop and tag act on those jobs only
    // (the model-invocation-job resource supports aws:ResourceTag, Service Authorization
    // Reference for Amazon Bedrock). Stop acts on running jobs, whose tags Bedrock returns;
    // Get is not conditioned (see ReadBatchJobs).
    const ours = { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: this.manifestsBucket.bucketName } };
    const intents = this.intentsTable.tableArn;
    const index = (name: string): string => `${intents}/index/${name}`;
    const allow = (fn: lambda.Function, sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>): void => {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid, actions, resources, conditions }));
    };

    // Intent store: GetItem (consistent reads, the job-ARN pointer items, the slot items),
    // PutItem (conditional create, e.g. the reconciler's shared-job intent; the Puts of the
    // update transaction; a slot's conditional put). Every function saves through the outbox,
    // so every function publishes to our bus.
    for (const fn of [f.intake, f['intake-events'], f['manifest-builder'], f.submitter, f['status-watcher'], f.reconciler]) {
      allow(fn, 'IntentStore', ['dynamodb:GetItem', 'dynamodb:PutItem'], [intents]);
      this.bus.grantPutEventsTo(fn);
    }
    // DeleteItem, on the table only (no index): releases a per-model concurrency slot (item
    // `slot#<modelId>#<n>`, taken with a conditional PutItem before a job is created) with a
    // conditional delete. intake (cancel before submission frees any slot a dead submitter
    // took; the last member leaving a shared job frees the shared job's), submitter (Bedrock
    // refused the job), status-watcher (the job ended) and reconciler (applies terminal
    // statuses through the same path); manifest-builder never deletes an item.
    // Only slot items: `dynamodb:LeadingKeys` limits the partition keys it may delete.
    for (const fn of [f.intake, f.submitter, f['status-watcher'], f.reconciler]) {
      allow(fn, 'ReleaseSlots', ['dynamodb:DeleteItem'], [intents], {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['slot#*'] },
      });
    }
    // Query, only on the indexes each function's code reads: byJobId (lookups by our jobId),
    // byUserCreated (intake's list of the caller's jobs), byStatusUpdated (the reconciler's
    // open, stuck and pooled intents; submitter and status-watcher, when a slot frees, wake
    // the oldest intent waiting for one), byOutbox (the reconciler's outbox sweep).
    // intake and manifest-builder plan deadlines: with every slot of a model taken they count
    // the intents waiting ahead (byStatusUpdated, app::deadline).
    const queries: Array<[lambda.Function, string[]]> = [
      [f.intake, [GSI.byJobId, GSI.byUserCreated, GSI.byStatusUpdated]],
      // intake-events accepts requests as POST does (direct invoke, the nightly run).
      [f['intake-events'], [GSI.byJobId, GSI.byUserCreated, GSI.byStatusUpdated]],
      [f['manifest-builder'], [GSI.byStatusUpdated]],
      [f.submitter, [GSI.byStatusUpdated]],
      [f['status-watcher'], [GSI.byJobId, GSI.byStatusUpdated]],
      [f.reconciler, [GSI.byJobId, GSI.byOutbox, GSI.byStatusUpdated]],
    ];
    for (const [fn, names] of queries) {
      allow(fn, 'IntentIndexes', ['dynamodb:Query'], names.map(index));
    }
    // Job durations (shared/src/adapters/aws/dynamodb/history.rs): the functions that apply a
    // job's end keep its sample with an UpdateItem (list_append) on `history#{model}` items
    // only; every function that plans reads them with GetItem (granted above).
    for (const fn of [f['status-watcher'], f.reconciler]) {
      allow(fn, 'JobHistory', ['dynamodb:UpdateItem'], [intents], {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['history#*'] },
      });
    }
    // webhook-sender: reads the ended intent and its job view (GetItem: the intent, the jobId
    // pointer, a shared job's intent); it writes nothing and publishes nothing.
    allow(f['webhook-sender'], 'ReadIntents', ['dynamodb:GetItem'], [intents]);
    // Uploads index: intake-events records each uploaded object (two plain puts) and, in the
    // nightly run, queries the `day#{day}` partition for the day's users; manifest-builder queries a
    // `up#{day}#{userId}` partition to resolve a day's keys. No one else touches the table.
    allow(f['intake-events'], 'UploadsIndex', ['dynamodb:PutItem', 'dynamodb:Query'], [this.uploadsTable.tableArn]);
    allow(f['manifest-builder'], 'UploadsIndex', ['dynamodb:Query'], [this.uploadsTable.tableArn]);
    // intake reads a request's uploads (their digests) for the 202's estimate, which leaves
    // out the copies the duplicate index knows (app::duplicates::known_copies).
    allow(f.intake, 'UploadsIndex', ['dynamodb:Query'], [this.uploadsTable.tableArn]);
    // Result store: results are upserted with BatchWriteItem (put_results) and read with a
    // Query on the table's own key (list_results); no PutItem, no index.
    // - intake writes the `canceled` results of a member leaving a shared job, and reads a
    //   job's results for GET /api/batch/jobs/{jobId}/results;
    // - manifest-builder writes the `skipped` results of rejected images and the answers of
    //   copies of photos answered before; it reads the user's duplicate index (Query on
    //   `dup#{userId}`) and a first copy's result (GetItem), and writes the index's items with
    //   conditional PutItems, on `dup#`, `dupr#` and `dupf#` partitions only (below);
    // - every writer of answers reads the copies waiting on them (Query on `dupf#{intentId}`);
    // - status-watcher writes ingested (and re-run) results, to a shared job's members too, and
    //   reads a member's results to count them when the shared job ends (pool::finish_members);
    // - reconciler does the same when a poll finds a job finished, and in the pool pass reads
    //   a member's results (on-demand runs resume after the records that succeeded; finishing
    //   members) and writes its on-demand results.
    const results: Array<[lambda.Function, string[]]> = [
      // intake also asks which of a request's digests the duplicate index knows (BatchGetItem).
      [f.intake, ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query']],
      [f['manifest-builder'], ['dynamodb:BatchWriteItem', 'dynamodb:Query', 'dynamodb:GetItem']],
      [f['status-watcher'], ['dynamodb:BatchWriteItem', 'dynamodb:Query']],
      [f.reconciler, ['dynamodb:BatchWriteItem', 'dynamodb:Query']],
      // submitter: an on-demand job's results, and what is stored already (a resumed run).
      [f.submitter, ['dynamodb:BatchWriteItem', 'dynamodb:Query']],
      // intake-events: the nightly run's start tallies the intents of nights that ended since
      // the reconciler's last pass (their results, and the night's points and tallies).
      [f['intake-events'], ['dynamodb:Query']],
    ];
    for (const [fn, actions] of results) {
      allow(fn, 'ResultStore', actions, [this.resultsTable.tableArn]);
    }
    allow(f['manifest-builder'], 'DuplicateIndex', ['dynamodb:PutItem'], [this.resultsTable.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['dup#*', 'dupr#*', 'dupf#*'] },
    });
    // The nights (shared/src/adapters/aws/dynamodb/nights.rs): the reconciler keeps a point of
    // the night each pass and the tally of each intent that ended; the nightly run's start
    // (intake-events) the tallies of nights that ended since. Plain PutItems, on `night#`
    // partitions only; a night's summary is an intents-table item (IntentStore's PutItem).
    for (const fn of [f.reconciler, f['intake-events']]) {
      allow(fn, 'NightLog', ['dynamodb:PutItem'], [this.resultsTable.tableArn], {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['night#*'] },
      });
    }

    // manifest-builder: reads the uploaded images (GetObject; `head` is a ranged GetObject; the
    // source of the server-side copy of an s3Location image), lists a day's prefix by range
    // (ListObjectsV2 with StartAfter: s3:ListBucket, which also makes a missing image a 404);
    // writes the JSONL parts as streaming multipart uploads (Create/UploadPart/Complete are
    // s3:PutObject, the clean-up is Abort) and receives the copied images (PutObject); and for
    // a shared job reads its members' parts back, copying their images into its own folder
    // (GetObject on the manifests bucket: the copy source and the parts).
    allow(f['manifest-builder'], 'ReadUploads', ['s3:GetObject'], [this.uploadsBucket.arnForObjects('*')]);
    allow(f['manifest-builder'], 'ListUploads', ['s3:ListBucket'], [this.uploadsBucket.bucketArn]);
    allow(f['manifest-builder'], 'WriteManifests', ['s3:PutObject', 's3:AbortMultipartUpload'], [this.manifestsBucket.arnForObjects('*')]);
    allow(f['manifest-builder'], 'ReadManifests', ['s3:GetObject'], [this.manifestsBucket.arnForObjects('*')]);
    // Normalized copies of the uploads (shared/src/app/normalized.rs): intake-events makes one
    // at upload (reading the original; ListBucket makes a copy not made yet a 404, not a 403),
    // the manifest builder makes any still missing. Only under `normalized/`: no function
    // writes over an original.
    const normalized = [this.uploadsBucket.arnForObjects('normalized/*')];
    allow(f['intake-events'], 'ReadUploads', ['s3:GetObject'], [this.uploadsBucket.arnForObjects('*')]);
    allow(f['intake-events'], 'ListUploads', ['s3:ListBucket'], [this.uploadsBucket.bucketArn]);
    allow(f['intake-events'], 'WriteNormalized', ['s3:PutObject'], normalized);
    allow(f['manifest-builder'], 'WriteNormalized', ['s3:PutObject'], normalized);
    // A flagged answer is asked again with the whole photo (shared/src/app/reask.rs): the
    // functions that store answers read the original upload.
    for (const name of ['status-watcher', 'submitter', 'reconciler'] as const) {
      allow(f[name], 'ReadUploads', ['s3:GetObject'], [this.uploadsBucket.arnForObjects('*')]);
    }

    // submitter: creates its jobs (CreateModelInvocationJob is its only Bedrock call), tagging
    // them on create (authorized as bedrock:TagResource), and hands Bedrock exactly the service role.
    allow(f.submitter, 'CreateBatchJobs', ['bedrock:CreateModelInvocationJob'], [jobArns, ...modelArns]);
    // Only the three tags a job is created with (shared/src/app/submit.rs, create_request), and
    // the stack's valued with its own bucket: the submitter cannot put the stack's tag on a job
    // it did not make along with other keys, nor tag anything else (aws:TagKeys).
    allow(f.submitter, 'TagBatchJobs', ['bedrock:TagResource'], [jobArns], {
      StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: this.manifestsBucket.bucketName },
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['intentId', 'jobId', STACK_TAG] },
    });
    allow(f.submitter, 'PassBedrockRole', ['iam:PassRole'], [this.bedrockRole.roleArn], {
      StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' },
    });

    // StopModelInvocationJob, by the three functions whose code stops jobs: intake (the owner
    // cancels a running batch; the last member to leave a shared job stops the shared job's),
    // submitter (a job it just created for an intent cancelled meanwhile) and status-watcher (a
    // job whose intent was cancelled before its ARN was recorded). Job ARNs of this account
    // and region only; nobody else may stop a job.
    // The reconciler stops a job still running at its deadline's cut-off (app::deadline).
    for (const fn of [f.intake, f.submitter, f['status-watcher'], f.reconciler]) {
      allow(fn, 'StopBatchJobs', ['bedrock:StopModelInvocationJob'], [jobArns], ours);
    }

    // status-watcher and reconciler: read the outputs and manifest.json.out of finished jobs
    // (the reconciler ingests when a poll finds a job finished). ListBucket makes a missing
    // object a 404 (not found, handled) rather than a 403. The status-watcher reads no job
    // state from Bedrock (the state-change event carries the status).
    for (const fn of [f['status-watcher'], f.reconciler]) {
      allow(fn, 'ReadOutputs', ['s3:GetObject'], [this.outputsBucket.arnForObjects('*')]);
      allow(fn, 'ListOutputs', ['s3:ListBucket'], [this.outputsBucket.bucketArn]);
    }
    // ... and read manifest parts back for the on-demand path: status-watcher re-runs a
    // finished job's retryable failures (their modelInput comes from the job's input parts),
    // the reconciler runs a below-minimum pool's members (their parts) and re-runs like the
    // watcher. An s3Location record's InvokeModel also reads its image, copied into the
    // manifests bucket, with the caller's credentials. A missing part is an error either way
    // (no 404 handling), so no ListBucket on this bucket.
    // The submitter reads an on-demand job's parts (a deadline's share that batch cannot make).
    for (const fn of [f['status-watcher'], f.reconciler, f.submitter]) {
      allow(fn, 'ReadManifests', ['s3:GetObject'], [this.manifestsBucket.arnForObjects('*')]);
    }
    // Long lists outside the intent item (shared/src/app/lists.rs), all under
    // `manifests/{jobId}/lists/`: intake writes a request's keys past 1,000 (streaming, so
    // multipart) and, cancelling a pooled member, reads its images list and its shared job's
    // members list; the reconciler writes a shared job's members list when it seals one.
    const lists = [this.manifestsBucket.arnForObjects('manifests/*/lists/*')];
    for (const fn of [f.intake, f['intake-events']]) {
      allow(fn, 'WriteLists', ['s3:PutObject', 's3:AbortMultipartUpload'], lists);
    }
    allow(f.intake, 'ReadLists', ['s3:GetObject'], lists);
    allow(f.reconciler, 'WriteLists', ['s3:PutObject', 's3:AbortMultipartUpload'], lists);
    // reconciler: asks Bedrock for the state of each open job. Not conditioned on the stack's
    // tag: Bedrock does not return the tags of a batch job that has finished running (Pulumi's
    // aws.bedrockmodel.InvocationJob page: "Amazon Bedrock does not allow retrieving tags for a
    // batch inference job that has already finished running"), so a tag condition could deny
    // the very poll that finds a job whose completion event was lost. A read only, on this
    // account's and Region's job ARNs; the ARNs asked about come from the stack's own intents.
    allow(f.reconciler, 'ReadBatchJobs', ['bedrock:GetModelInvocationJob'], [jobArns]);

    // The on-demand path: status-watcher re-runs a finished job's retryable failures, and the
    // reconciler runs below-minimum pools at their deadline (policy on_demand), one InvokeModel
    // per record on the configured models only (the same ARNs as the Bedrock service role's).
    // The submitter runs a deadline's on-demand jobs the same way.
    for (const fn of [f['status-watcher'], f.reconciler, f.submitter]) {
      allow(fn, 'InvokeConfiguredModels', ['bedrock:InvokeModel'], modelArns);
    }
  }
}
