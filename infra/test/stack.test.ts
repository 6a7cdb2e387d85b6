/**
 * The resources themselves: tables (keys, GSIs, TTL, PITR), queues and their DLQs, event
 * source mappings, buckets, the HTTP API, functions, intake's event sources (S3 uploads,
 * nightly run), alarms and outputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import {
  API_ROUTES,
  FUNCTIONS,
  GSI,
  INTAKE_EVENT_MAX_AGE,
  INTAKE_EVENT_RETRY_ATTEMPTS,
  MAX_RECEIVE_COUNT,
  SQS_BATCH_SIZE,
  VISIBILITY_FACTOR,
} from '../lib/stack';
import { QUEUES } from '../lib/topology';
import { resourcesOf, synth } from './helpers';
import { rustGsiNames, rustIntakeRoutes, rustLocalGsis, rustLocalUploadsKeys } from './rust-source';

const { app, stack, template } = synth();
const id = (c: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(c.node.defaultChild as any);

describe('tables', () => {
  it('when synthesized the intents table should have PK intentId only, on demand, PITR, SSE and TTL expiresAt', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'batch-orchestrator-dev-intents',
      KeySchema: [{ AttributeName: 'intentId', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  it('when synthesized the results table should expire results with their intents (TTL expiresAt)', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'batch-orchestrator-dev-results',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  const intentsGsis = () => {
    const table = resourcesOf(template, 'AWS::DynamoDB::Table')[id(stack.intentsTable)].Properties;
    return { table, gsis: Object.fromEntries(table.GlobalSecondaryIndexes.map((g: any) => [g.IndexName, g])) as Record<string, any> };
  };

  it('when synthesized the intents table should have the GSIs the adapter queries (string keys, projection ALL)', () => {
    const { table, gsis } = intentsGsis();
    const expected: Record<string, Array<[string, string]>> = {
      byJobId: [['jobId', 'HASH']],
      byUserCreated: [['userId', 'HASH'], ['createdAt', 'RANGE']],
      byOutbox: [['outboxPending', 'HASH'], ['outboxStagedAt', 'RANGE']],
      byBedrockJobArn: [['bedrockJobArn', 'HASH']],
      byStatusUpdated: [['status', 'HASH'], ['updatedAt', 'RANGE']],
    };
    expect(Object.keys(gsis).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, keys] of Object.entries(expected)) {
      expect(gsis[name].KeySchema).toEqual(keys.map(([AttributeName, KeyType]) => ({ AttributeName, KeyType })));
      expect(gsis[name].Projection).toEqual({ ProjectionType: 'ALL' });
    }
    for (const a of table.AttributeDefinitions) expect(a.AttributeType).toBe('S');
  });

  it('when compared with the DynamoDB adapter should define every GSI it names', () => {
    expect(rustGsiNames().sort()).toEqual(Object.values(GSI).sort());
  });

  it('when compared with the local-AWS mirror (src/local_aws.rs) should have the same GSI keys', () => {
    const { gsis } = intentsGsis();
    const rust = rustLocalGsis();
    expect(rust.map((g) => g.name).sort()).toEqual(Object.keys(gsis).sort());
    for (const g of rust) {
      const keys = [{ AttributeName: g.partitionKey, KeyType: 'HASH' }];
      if (g.sortKey !== undefined) keys.push({ AttributeName: g.sortKey, KeyType: 'RANGE' });
      expect(gsis[g.name].KeySchema).toEqual(keys);
    }
  });

  it('when synthesized the results table should have PK intentId and SK recordId with PITR and SSE', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'batch-orchestrator-dev-results',
      KeySchema: [{ AttributeName: 'intentId', KeyType: 'HASH' }, { AttributeName: 'recordId', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'intentId', AttributeType: 'S' }, { AttributeName: 'recordId', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it('when synthesized the uploads table should have PK pk and SK sk (strings), on demand, PITR, SSE, no GSI, and TTL expiresAt', () => {
    const table = resourcesOf(template, 'AWS::DynamoDB::Table')[id(stack.uploadsTable)].Properties;
    expect(table).toEqual({
      TableName: 'batch-orchestrator-dev-uploads',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    template.resourceCountIs('AWS::DynamoDB::Table', 3);
  });

  it('when compared with the local-AWS mirror (src/local_aws.rs) the uploads table should have the same keys', () => {
    const table = resourcesOf(template, 'AWS::DynamoDB::Table')[id(stack.uploadsTable)].Properties;
    const rust = rustLocalUploadsKeys();
    expect(table.KeySchema).toEqual(rust.map(([AttributeName, KeyType]) => ({ AttributeName, KeyType })));
  });

  it('when the stack is deleted should keep every table', () => {
    for (const t of [stack.intentsTable, stack.resultsTable, stack.uploadsTable]) {
      expect(template.toJSON().Resources[id(t)].DeletionPolicy).toBe('Retain');
    }
  });
});

describe('queues and event sources', () => {
  const queues = resourcesOf(template, 'AWS::SQS::Queue');
  const dlqIds = new Set(Object.values(queues).flatMap((q) => q.Properties.RedrivePolicy?.deadLetterTargetArn?.['Fn::GetAtt']?.[0] ?? []));
  /** Queues only EventBridge targets dead-letter into (no queue redrives to them). */
  const targetDlqIds = new Set(Object.values(resourcesOf(template, 'AWS::Events::Rule'))
    .flatMap((r) => (r.Properties.Targets as any[]).flatMap((t) => t.DeadLetterConfig?.Arn?.['Fn::GetAtt']?.[0] ?? []))
    .filter((q) => !dlqIds.has(q)));

  it('when synthesized should have a queue and a DLQ per stage, and the intake-events DLQ', () => {
    expect(Object.keys(queues)).toHaveLength(QUEUES.length * 2 + 1);
    expect(dlqIds.size).toBe(QUEUES.length);
    expect([...targetDlqIds]).toEqual([id(stack.intakeEventsDlq)]);
  });

  it('when a queue is a DLQ should keep messages 14 days (SQS\'s maximum) and redrive nowhere', () => {
    for (const q of [...dlqIds, ...targetDlqIds]) {
      expect(queues[q].Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
      expect(queues[q].Properties.RedrivePolicy).toBeUndefined();
    }
  });

  it('when a queue is not a DLQ should redrive to a DLQ after 5 receives', () => {
    for (const [logicalId, q] of Object.entries(queues)) {
      if (dlqIds.has(logicalId) || targetDlqIds.has(logicalId)) continue;
      expect(q.Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
        maxReceiveCount: MAX_RECEIVE_COUNT,
      });
      expect(dlqIds.has(q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0])).toBe(true);
    }
  });

  it('when any queue is synthesized should use SSE-SQS and refuse plain HTTP', () => {
    for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(Object.keys(queues).length);
    for (const p of policies) {
      expect(p.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({
        Effect: 'Deny',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }));
    }
  });

  it.each(FUNCTIONS.filter((f) => f.queue !== undefined).map((f) => [f.name, f]))(
    'when %s consumes its queue should hide messages for at least 6x its timeout',
    (_name, spec) => {
      const q = queues[id(stack.queues[spec.queue!].queue)].Properties;
      expect(q.VisibilityTimeout).toBeGreaterThanOrEqual(spec.timeout.toSeconds() * VISIBILITY_FACTOR);
    },
  );

  it('when status-watcher re-runs failures on-demand should have 15 minutes (Lambda\'s maximum), its queue hiding messages for 90 minutes', () => {
    const fn = resourcesOf(template, 'AWS::Lambda::Function')[id(stack.functions['status-watcher'])].Properties;
    expect(fn.Timeout).toBe(900);
    expect(queues[id(stack.queues['status-watcher'].queue)].Properties.VisibilityTimeout).toBe(900 * VISIBILITY_FACTOR);
  });

  it('when status-watcher consumes its queue should take one message per invocation, so each terminal event gets the whole timeout', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'))
      .filter((m) => m.Properties.FunctionName.Ref === id(stack.functions['status-watcher']));
    expect(mappings).toHaveLength(1);
    expect(mappings[0].Properties.BatchSize).toBe(1);
  });

  it('when any event source mapping exists should report batch item failures, one message a batch (each may take its function\'s whole timeout)', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(QUEUES.length);
    const heavy = ['status-watcher', 'manifest-builder', 'submitter', 'webhook-sender'].map((n) => id(stack.functions[n as keyof typeof stack.functions]));
    for (const m of mappings) {
      expect(m.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.Properties.BatchSize).toBe(heavy.includes(m.Properties.FunctionName.Ref) ? 1 : SQS_BATCH_SIZE);
    }
  });

  it('when manifest-builder consumes its queue should take one message per invocation, so a long build cannot time out (and spend) its neighbours', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'))
      .filter((m) => m.Properties.FunctionName.Ref === id(stack.functions['manifest-builder']));
    expect(mappings).toHaveLength(1);
    expect(mappings[0].Properties.BatchSize).toBe(1);
  });

  it('when wired should map each consumer to its own queue only', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    for (const spec of FUNCTIONS.filter((f) => f.queue !== undefined)) {
      const fnId = id(stack.functions[spec.name]);
      const mine = mappings.filter((m) => m.Properties.FunctionName.Ref === fnId);
      expect(mine).toHaveLength(1);
      expect(mine[0].Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': [id(stack.queues[spec.queue!].queue), 'Arn'] });
    }
    for (const name of ['intake', 'intake-events'] as const) {
      const intakeId = id(stack.functions[name]);
      expect(mappings.filter((m) => m.Properties.FunctionName.Ref === intakeId)).toHaveLength(0);
    }
  });
});

describe('buckets', () => {
  const buckets = resourcesOf(template, 'AWS::S3::Bucket');
  const props = (b: { node: { defaultChild?: unknown } }) => buckets[id(b)].Properties;

  it('when any bucket is synthesized should block public access, encrypt and refuse plain HTTP', () => {
    expect(Object.keys(buckets)).toHaveLength(4);
    for (const b of Object.values(buckets)) {
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    }
    for (const p of Object.values(resourcesOf(template, 'AWS::S3::BucketPolicy'))) {
      expect(p.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({
        Effect: 'Deny',
        Action: 's3:*',
        Principal: { AWS: '*' },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }));
    }
  });

  it('when objects are created in the uploads bucket should send its events to EventBridge, natively (no notifications custom resource)', () => {
    expect(props(stack.uploadsBucket).NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
    for (const b of [stack.manifestsBucket, stack.outputsBucket, stack.accessLogsBucket]) {
      expect(props(b).NotificationConfiguration).toBeUndefined();
    }
    template.resourceCountIs('Custom::S3BucketNotifications', 0);
  });

  it('when data buckets are synthesized should log access to the access-logs bucket', () => {
    for (const b of [stack.uploadsBucket, stack.manifestsBucket, stack.outputsBucket]) {
      expect(props(b).LoggingConfiguration.DestinationBucketName).toEqual({ Ref: id(stack.accessLogsBucket) });
    }
  });

  it('when lifecycle rules apply should expire every bucket\'s data (manifests and outputs 30 d, uploads and normalized copies 90 d) and abort stale multipart uploads (7 d)', () => {
    const rules = (b: { node: { defaultChild?: unknown } }) => props(b).LifecycleConfiguration.Rules as any[];
    expect(rules(stack.manifestsBucket)).toContainEqual(expect.objectContaining({ ExpirationInDays: 30, Status: 'Enabled' }));
    expect(rules(stack.outputsBucket)).toContainEqual(expect.objectContaining({ ExpirationInDays: 30, Status: 'Enabled' }));
    for (const prefix of ['uploads/', 'normalized/']) {
      expect(rules(stack.uploadsBucket)).toContainEqual(expect.objectContaining({ Prefix: prefix, ExpirationInDays: 90, Status: 'Enabled' }));
    }
    for (const b of [stack.uploadsBucket, stack.outputsBucket, stack.accessLogsBucket]) {
      expect(rules(b)).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }));
    }
  });

  it('when tables hold data should let DynamoDB expire every one of them (TTL expiresAt)', () => {
    const tables = resourcesOf(template, 'AWS::DynamoDB::Table');
    for (const t of [stack.intentsTable, stack.resultsTable, stack.uploadsTable]) {
      expect(tables[id(t)].Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    }
  });

  it('when manifest parts are streamed as multipart uploads should abort incomplete ones on the manifests bucket after 1 day, keeping its expiry', () => {
    const rules = props(stack.manifestsBucket).LifecycleConfiguration.Rules as any[];
    expect(rules).toEqual([
      { Id: 'abort-incomplete-multipart', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' },
      { Id: 'expire-manifests', ExpirationInDays: 30, Status: 'Enabled' },
    ]);
    // One whole-bucket abort rule: no overlapping 7-day rule beside the 1-day one.
    expect(rules.filter((r) => r.AbortIncompleteMultipartUpload !== undefined)).toHaveLength(1);
    // The other data buckets keep their 7 days.
    for (const b of [stack.uploadsBucket, stack.outputsBucket]) {
      const abort = (props(b).LifecycleConfiguration.Rules as any[]).filter((r) => r.AbortIncompleteMultipartUpload !== undefined);
      expect(abort).toEqual([expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } })]);
    }
  });
});

describe('functions', () => {
  it('when synthesized should run every crate on arm64 provided.al2023 with bootstrap', () => {
    template.resourceCountIs('AWS::Lambda::Function', FUNCTIONS.length);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      Handler: 'bootstrap',
    });
  });

  it('when synthesized should point each function at its own crate (an unbuilt asset: the crate folder)', () => {
    const dir = app.synth().directory;
    const files = JSON.parse(fs.readFileSync(path.join(dir, `${stack.artifactId}.assets.json`), 'utf8')).files as
      Record<string, { source: { path: string } }>;
    const fns = resourcesOf(template, 'AWS::Lambda::Function');
    for (const spec of FUNCTIONS) {
      const fn = fns[id(stack.functions[spec.name])].Properties;
      const hash = String(fn.Code.S3Key).replace(/\.zip$/, '');
      expect(files[hash].source.path).toMatch(new RegExp(`functions/${spec.crate ?? spec.name}$`));
      expect(fn.Timeout).toBe(spec.timeout.toSeconds());
    }
  });

  it('when logging should write to its own log group kept one month', () => {
    const groups = resourcesOf(template, 'AWS::Logs::LogGroup');
    for (const spec of FUNCTIONS) {
      const fn = resourcesOf(template, 'AWS::Lambda::Function')[id(stack.functions[spec.name])];
      const groupId = fn.Properties.LoggingConfig.LogGroup.Ref;
      expect(groups[groupId].Properties.RetentionInDays).toBe(30);
    }
  });
});

describe('reconciler schedule', () => {
  const fnId = () => id(stack.functions.reconciler);
  /** The schedule rules that invoke the reconciler (the other schedule is intake's nightly run). */
  const scheduled = () => Object.entries(resourcesOf(template, 'AWS::Events::Rule'))
    .filter(([, r]) => r.Properties.ScheduleExpression !== undefined)
    .filter(([, r]) => (r.Properties.Targets as any[]).some((t) => t.Arn['Fn::GetAtt']?.[0] === fnId()));

  it('when synthesized should have exactly one schedule rule for it, on the default bus, every reconcileEveryMinutes (5)', () => {
    const rules = scheduled();
    expect(rules).toHaveLength(1);
    const [ruleId, rule] = rules[0];
    expect(ruleId).toBe(id(stack.reconcileRule));
    expect(rule.Properties.ScheduleExpression).toBe('rate(5 minutes)');
    expect(rule.Properties.State).toBe('ENABLED');
    expect(rule.Properties.EventBusName).toBeUndefined();
    expect(rule.Properties.EventPattern).toBeUndefined();
  });

  it('when the schedule fires should target the reconciler function only, which EventBridge may invoke from that rule only', () => {
    const [ruleId, rule] = scheduled()[0];
    expect(rule.Properties.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [fnId(), 'Arn'] } })]);
    const permissions = Object.values(resourcesOf(template, 'AWS::Lambda::Permission'))
      .filter((p) => p.Properties.Principal === 'events.amazonaws.com')
      .filter((p) => p.Properties.FunctionName['Fn::GetAtt'][0] === fnId());
    expect(permissions).toHaveLength(1);
    expect(permissions[0].Properties).toMatchObject({
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fnId(), 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
  });

  it('when a pass fails should not be retried by Lambda (the next scheduled pass is the retry)', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId() },
      MaximumRetryAttempts: 0,
    });
  });

  it('when a pass is throttled (reserved concurrency 1) should wait in Lambda\'s queue one period at most, not 6 hours', () => {
    const configs = Object.values(resourcesOf(template, 'AWS::Lambda::EventInvokeConfig'))
      .filter((c) => c.Properties.FunctionName.Ref === fnId());
    expect(configs).toHaveLength(1);
    expect(configs[0].Properties).toEqual({
      FunctionName: { Ref: fnId() },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 5 * 60,
    });
    // One period, within Lambda's bounds (60 s to 6 h).
    for (const [minutes, seconds] of [[1, 60], [30, 1800], [360, 21600], [1440, 21600]]) {
      const { template: t } = synth({ reconcileEveryMinutes: minutes });
      t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: seconds });
    }
  });

  it('when sized should run 10 minutes (on-demand runs happen inside a pass) with 512 MB and consume no queue', () => {
    const fn = resourcesOf(template, 'AWS::Lambda::Function')[fnId()].Properties;
    expect(fn.Timeout).toBe(600);
    expect(fn.MemorySize).toBe(512);
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings.filter((m) => m.Properties.FunctionName.Ref === fnId())).toHaveLength(0);
  });

  it('when sealing pools should be the single sealer: reserved concurrency 1, and the only function with a reservation', () => {
    const fns = resourcesOf(template, 'AWS::Lambda::Function');
    expect(fns[fnId()].Properties.ReservedConcurrentExecutions).toBe(1);
    const reserved = Object.keys(fns).filter((k) => fns[k].Properties.ReservedConcurrentExecutions !== undefined);
    expect(reserved).toEqual([fnId()]);
  });

  it('when described should mention sealing pools and the on-demand path', () => {
    const fn = resourcesOf(template, 'AWS::Lambda::Function')[fnId()].Properties;
    expect(fn.Description).toMatch(/seals pools/);
    expect(fn.Description).toMatch(/on-demand/);
  });

  it('when reconcileEveryMinutes is set should use it as the rate', () => {
    const { template: t } = synth({ reconcileEveryMinutes: '1' });
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
    const { template: t15 } = synth({ reconcileEveryMinutes: 15 });
    t15.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
  });
});

describe('intake event sources (S3 uploads, nightly run)', () => {
  const rules = () => resourcesOf(template, 'AWS::Events::Rule');
  const intakeArn = () => ({ 'Fn::GetAtt': [id(stack.functions['intake-events']), 'Arn'] });
  const dlqArn = () => ({ 'Fn::GetAtt': [id(stack.intakeEventsDlq), 'Arn'] });
  const retryPolicy = {
    MaximumRetryAttempts: INTAKE_EVENT_RETRY_ATTEMPTS,
    MaximumEventAgeInSeconds: INTAKE_EVENT_MAX_AGE.toSeconds(),
  };

  it('when intake-events fails an async event after Lambda\'s retries should hand it to the intake-events DLQ, not drop it', () => {
    const configs = Object.values(resourcesOf(template, 'AWS::Lambda::EventInvokeConfig'))
      .filter((c) => c.Properties.FunctionName.Ref === id(stack.functions['intake-events']));
    expect(configs).toHaveLength(1);
    expect(configs[0].Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: dlqArn() } },
    });
  });

  it('when retrying delivery should try 8 times over at most 2 hours', () => {
    expect(retryPolicy).toEqual({ MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 });
  });

  it('when an object is created under uploads/ in the uploads bucket should match it on the default bus', () => {
    const rule = rules()[id(stack.uploadsRule)].Properties;
    expect(rule.EventBusName).toBe('default');
    expect(rule.State).toBe('ENABLED');
    expect(rule.ScheduleExpression).toBeUndefined();
    expect(rule.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [{ Ref: id(stack.uploadsBucket) }] },
        object: { key: [{ prefix: 'uploads/' }] },
      },
    });
  });

  it('when an object is created should invoke intake-events with the event itself, retried, dead letters to the intake-events DLQ', () => {
    const rule = rules()[id(stack.uploadsRule)].Properties;
    expect(rule.Targets).toEqual([{
      Id: expect.any(String),
      Arn: intakeArn(),
      RetryPolicy: retryPolicy,
      DeadLetterConfig: { Arn: dlqArn() },
    }]);
  });

  it('when the nightly schedule fires should run at 00:30 UTC on the default bus', () => {
    const rule = rules()[id(stack.nightlyRule!)].Properties;
    expect(rule.ScheduleExpression).toBe('cron(30 0 * * ? *)');
    expect(rule.State).toBe('ENABLED');
    expect(rule.EventBusName).toBeUndefined();
    expect(rule.EventPattern).toBeUndefined();
  });

  it('when the nightly schedule fires should invoke intake-events with {"nightlyRun": {}} (the previous UTC day), retried, dead letters to the intake-events DLQ', () => {
    const rule = rules()[id(stack.nightlyRule!)].Properties;
    expect(rule.Targets).toEqual([{
      Id: expect.any(String),
      Arn: intakeArn(),
      Input: JSON.stringify({ nightlyRun: {} }),
      RetryPolicy: retryPolicy,
      DeadLetterConfig: { Arn: dlqArn() },
    }]);
  });

  it('when EventBridge invokes intake-events should be allowed from these two rules only, and never intake', () => {
    const permissions = Object.values(resourcesOf(template, 'AWS::Lambda::Permission'))
      .filter((p) => p.Properties.Principal === 'events.amazonaws.com')
      .filter((p) => p.Properties.FunctionName['Fn::GetAtt'][0] === id(stack.functions['intake-events']));
    expect(Object.values(resourcesOf(template, 'AWS::Lambda::Permission'))
      .filter((p) => p.Properties.Principal === 'events.amazonaws.com')
      .filter((p) => p.Properties.FunctionName['Fn::GetAtt'][0] === id(stack.functions.intake))).toEqual([]);
    expect(permissions.map((p) => p.Properties.SourceArn['Fn::GetAtt'][0]).sort())
      .toEqual([id(stack.uploadsRule), id(stack.nightlyRule!)].sort());
    for (const p of permissions) expect(p.Properties.Action).toBe('lambda:InvokeFunction');
  });

  it('when the intake-events DLQ is synthesized should be SSE-SQS, TLS only, 14 days, and alarm on a message', () => {
    const q = resourcesOf(template, 'AWS::SQS::Queue')[id(stack.intakeEventsDlq)].Properties;
    expect(q).toEqual({
      QueueName: 'batch-orchestrator-dev-intake-events-dlq',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack.intakeEventsDlq), 'QueueName'] } }],
      Threshold: 1,
    });
  });

  it('when nightlyCron is set should use it as the schedule', () => {
    const { stack: s, template: t } = synth({ nightlyCron: 'cron(0 3 * * ? *)' });
    const rule = resourcesOf(t, 'AWS::Events::Rule')[s.getLogicalId(s.nightlyRule!.node.defaultChild as any)].Properties;
    expect(rule.ScheduleExpression).toBe('cron(0 3 * * ? *)');
  });

  it('when nightlyEnabled is false should have no nightly rule, while S3 uploads are still indexed', () => {
    const { stack: s, template: t } = synth({ nightlyEnabled: 'false' });
    expect(s.nightlyRule).toBeUndefined();
    const all = Object.values(resourcesOf(t, 'AWS::Events::Rule'));
    expect(all.filter((r) => r.Properties.ScheduleExpression?.startsWith('cron('))).toEqual([]);
    expect(all.filter((r) => JSON.stringify(r.Properties.Targets).includes('nightlyRun'))).toEqual([]);
    expect(all.filter((r) => r.Properties.ScheduleExpression !== undefined)).toHaveLength(1);
    const intakeId = s.getLogicalId(s.functions['intake-events'].node.defaultChild as any);
    const fromEvents = Object.values(resourcesOf(t, 'AWS::Lambda::Permission'))
      .filter((p) => p.Properties.Principal === 'events.amazonaws.com' && p.Properties.FunctionName['Fn::GetAtt'][0] === intakeId);
    expect(fromEvents.map((p) => p.Properties.SourceArn['Fn::GetAtt'][0]))
      .toEqual([s.getLogicalId(s.uploadsRule.node.defaultChild as any)]);
  });
});

describe('HTTP API', () => {
  const ROUTE_KEYS = [
    'DELETE /api/batch/jobs/{jobId}',
    'GET /api/batch/jobs',
    'GET /api/batch/jobs/{jobId}',
    'GET /api/batch/jobs/{jobId}/results',
    'GET /api/batch/usage',
    'POST /api/batch/jobs',
  ];
  const routes = () => Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'));
  const integrations = () => resourcesOf(template, 'AWS::ApiGatewayV2::Integration');

  it('when routed should have exactly the six routes: submit, list, status, cancel, results, usage', () => {
    expect(routes().map((r) => r.Properties.RouteKey).sort()).toEqual(ROUTE_KEYS);
    const declared = Object.entries(API_ROUTES).flatMap(([p, methods]) => methods.map((m) => `${m} ${p}`));
    expect(declared.sort()).toEqual(ROUTE_KEYS);
  });

  it('when compared with intake\'s router (functions/intake/src/router.rs) should route every method and path it serves', () => {
    expect(rustIntakeRoutes().map((r) => `${r.method} ${r.path}`).sort()).toEqual(ROUTE_KEYS);
  });

  it.each(ROUTE_KEYS)('when %s is called should require the JWT authorizer and reach intake', (key) => {
    const authorizers = resourcesOf(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(Object.keys(authorizers)).toHaveLength(1);
    const [authId] = Object.keys(authorizers);
    const found = routes().filter((r) => r.Properties.RouteKey === key);
    expect(found).toHaveLength(1);
    const route = found[0].Properties;
    expect(route.AuthorizationType).toBe('JWT');
    expect(route.AuthorizerId).toEqual({ Ref: authId });
    expect(route.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: expect.any(String) }]] });
    const integrationId = route.Target['Fn::Join'][1][1].Ref as string;
    expect(integrations()[integrationId].Properties.IntegrationUri).toEqual({ 'Fn::GetAtt': [id(stack.functions.intake), 'Arn'] });
  });

  it('when integrated should use one Lambda proxy integration (payload 2.0) to intake, invokable only through the API', () => {
    const all = Object.values(integrations());
    expect(all).toHaveLength(1);
    expect(all[0].Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [id(stack.functions.intake), 'Arn'] },
    });
    const permissions = Object.values(resourcesOf(template, 'AWS::Lambda::Permission'))
      .filter((p) => p.Properties.Principal === 'apigateway.amazonaws.com');
    expect(permissions).toHaveLength(ROUTE_KEYS.length);
    for (const p of permissions) {
      expect(p.Properties.FunctionName).toEqual({ 'Fn::GetAtt': [id(stack.functions.intake), 'Arn'] });
      // Only from this API (any stage and method), on one of its three paths.
      const parts = p.Properties.SourceArn['Fn::Join'][1] as unknown[];
      expect(parts).toContainEqual({ Ref: id(stack.api) });
      expect(parts[parts.length - 1]).toMatch(/^\/\*\/\*\/api\/batch\/(jobs(\/\{jobId\}(\/results)?)?|usage)$/);
    }
  });

  it('when the authorizer is configured should take issuer and audience from settings', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE',
        Audience: ['example-app-client-id'],
      },
    });
    const { template: other } = synth({ jwtIssuer: 'https://issuer.example.com/', jwtAudience: 'a,b' });
    other.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      JwtConfiguration: { Issuer: 'https://issuer.example.com/', Audience: ['a', 'b'] },
    });
  });

  it('when staged should throttle the $default stage from settings and log access', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] }, Format: Match.stringLikeRegexp('requestId') },
    });
  });
});

describe('operations', () => {
  it('when a DLQ holds a message should alarm', () => {
    for (const name of QUEUES) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack.queues[name].dlq), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it('when a function errors should alarm', () => {
    for (const spec of FUNCTIONS) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: id(stack.functions[spec.name]) } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
    // One per stage DLQ, one for the intake-events DLQ, one per function, one for refused
    // jobs, one for deadlines at risk, one stuck-job alarm per configured model.
    const models = stack.settings.modelIds.length;
    template.resourceCountIs('AWS::CloudWatch::Alarm', QUEUES.length + 1 + FUNCTIONS.length + 2 + models);
  });

  it('when a model\'s batch jobs hold pending records and process no token for 30 minutes should alarm', () => {
    for (const modelId of stack.settings.modelIds) {
      const dims = [{ Name: 'ModelId', Value: modelId }];
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: Match.arrayWith([
          Match.objectLike({ Expression: 'IF(pending > 0 AND tokens == 0, 1, 0)' }),
          Match.objectLike({
            Id: 'pending',
            MetricStat: Match.objectLike({
              Metric: { Namespace: 'AWS/Bedrock/Batch', MetricName: 'NumberOfRecordsPendingProcessing', Dimensions: dims },
              Period: 300,
              Stat: 'Average',
            }),
          }),
          Match.objectLike({
            Id: 'tokens',
            MetricStat: Match.objectLike({
              Metric: { Namespace: 'AWS/Bedrock/Batch', MetricName: 'NumberOfInputTokensProcessedPerMinute', Dimensions: dims },
            }),
          }),
        ]),
        EvaluationPeriods: 6,
        DatapointsToAlarm: 6,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  it('when an intent may miss its deadline should alarm on the reconciler\'s intents_at_risk gauge', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'intents_at_risk',
      Namespace: 'BatchOrchestrator',
      Dimensions: [{ Name: 'function', Value: 'reconciler' }],
      Statistic: 'Maximum',
      Threshold: 1,
    });
  });

  it('when Bedrock refuses a job for good should alarm on the submitter\'s jobs_refused metric', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'jobs_refused',
      Namespace: 'BatchOrchestrator',
      Dimensions: [{ Name: 'function', Value: 'submitter' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('when an alarm topic is configured should notify it', () => {
    const arn = 'arn:aws:sns:us-east-1:123456789012:ops';
    const { template: t } = synth({ alarmTopicArn: arn });
    t.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [arn] });
  });

  it('when deployed should output the API URL, table names and bus name', () => {
    const outputs = template.toJSON().Outputs;
    expect(outputs.ApiUrl.Value).toEqual({ 'Fn::GetAtt': [id(stack.api), 'ApiEndpoint'] });
    expect(outputs.IntentsTableName.Value).toEqual({ Ref: id(stack.intentsTable) });
    expect(outputs.ResultsTableName.Value).toEqual({ Ref: id(stack.resultsTable) });
    expect(outputs.UploadsTableName.Value).toEqual({ Ref: id(stack.uploadsTable) });
    expect(outputs.EventBusName.Value).toEqual({ Ref: id(stack.bus) });
  });
});

describe('dashboard', () => {
  const dashboards = () => Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'));

  it('when synthesized should draw the night: intake, pools, jobs, records, deadlines, cost, DLQs and Bedrock\'s own batch metrics', () => {
    expect(dashboards()).toHaveLength(1);
    const body = JSON.stringify(dashboards()[0].Properties.DashboardBody);
    for (const metric of [
      'intents_accepted', 'pools_sealed', 'jobs_submitted', 'jobs_waiting_for_slot', 'records_succeeded',
      'records_redriven', 'intents_at_risk', 'on_demand_extra_usd', 'ApproximateNumberOfMessagesVisible',
      'AWS/Bedrock/Batch', 'NumberOfRecordsPendingProcessing',
    ]) {
      expect([metric, body.includes(metric)]).toEqual([metric, true]);
    }
  });
});
