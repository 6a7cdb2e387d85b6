/**
 * The resources themselves: tables (keys, GSIs, TTL, PITR), queues and their DLQs, event
 * source mappings, buckets, the HTTP API, functions, alarms and outputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { API_ROUTES, FUNCTIONS, GSI, MAX_RECEIVE_COUNT, SQS_BATCH_SIZE, VISIBILITY_FACTOR } from '../lib/stack';
import { QUEUES } from '../lib/topology';
import { resourcesOf, synth } from './helpers';
import { rustGsiNames, rustIntakeRoutes, rustLocalGsis } from './rust-source';

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

  it('when the stack is deleted should keep both tables', () => {
    for (const t of [stack.intentsTable, stack.resultsTable]) {
      expect(template.toJSON().Resources[id(t)].DeletionPolicy).toBe('Retain');
    }
  });
});

describe('queues and event sources', () => {
  const queues = resourcesOf(template, 'AWS::SQS::Queue');
  const dlqIds = new Set(Object.values(queues).flatMap((q) => q.Properties.RedrivePolicy?.deadLetterTargetArn?.['Fn::GetAtt']?.[0] ?? []));

  it('when synthesized should have a queue and a DLQ per stage', () => {
    expect(Object.keys(queues)).toHaveLength(QUEUES.length * 2);
    expect(dlqIds.size).toBe(QUEUES.length);
  });

  it('when a queue is not a DLQ should redrive to a DLQ after 5 receives', () => {
    for (const [logicalId, q] of Object.entries(queues)) {
      if (dlqIds.has(logicalId)) continue;
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

  it('when any event source mapping exists should report batch item failures with batches of 10', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(3);
    for (const m of mappings) {
      expect(m.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.Properties.BatchSize).toBe(SQS_BATCH_SIZE);
    }
  });

  it('when wired should map each consumer to its own queue only', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    for (const spec of FUNCTIONS.filter((f) => f.queue !== undefined)) {
      const fnId = id(stack.functions[spec.name]);
      const mine = mappings.filter((m) => m.Properties.FunctionName.Ref === fnId);
      expect(mine).toHaveLength(1);
      expect(mine[0].Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': [id(stack.queues[spec.queue!].queue), 'Arn'] });
    }
    const intakeId = id(stack.functions.intake);
    expect(mappings.filter((m) => m.Properties.FunctionName.Ref === intakeId)).toHaveLength(0);
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

  it('when data buckets are synthesized should log access to the access-logs bucket', () => {
    for (const b of [stack.uploadsBucket, stack.manifestsBucket, stack.outputsBucket]) {
      expect(props(b).LoggingConfiguration.DestinationBucketName).toEqual({ Ref: id(stack.accessLogsBucket) });
    }
  });

  it('when lifecycle rules apply should expire manifests (30 d) and outputs (365 d) and abort stale multipart uploads (7 d)', () => {
    const rules = (b: { node: { defaultChild?: unknown } }) => props(b).LifecycleConfiguration.Rules as any[];
    expect(rules(stack.manifestsBucket)).toContainEqual(expect.objectContaining({ ExpirationInDays: 30, Status: 'Enabled' }));
    expect(rules(stack.outputsBucket)).toContainEqual(expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' }));
    for (const b of [stack.uploadsBucket, stack.manifestsBucket, stack.outputsBucket, stack.accessLogsBucket]) {
      expect(rules(b)).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }));
    }
    expect(rules(stack.uploadsBucket).some((r) => r.ExpirationInDays !== undefined)).toBe(false);
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
      expect(files[hash].source.path).toMatch(new RegExp(`functions/${spec.name}$`));
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
  const scheduled = () => Object.entries(resourcesOf(template, 'AWS::Events::Rule'))
    .filter(([, r]) => r.Properties.ScheduleExpression !== undefined);

  it('when synthesized should have exactly one schedule rule, on the default bus, every reconcileEveryMinutes (5)', () => {
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
      .filter((p) => p.Properties.Principal === 'events.amazonaws.com');
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

  it('when sized should run 2 minutes with 512 MB and consume no queue', () => {
    const fn = resourcesOf(template, 'AWS::Lambda::Function')[fnId()].Properties;
    expect(fn.Timeout).toBe(120);
    expect(fn.MemorySize).toBe(512);
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings.filter((m) => m.Properties.FunctionName.Ref === fnId())).toHaveLength(0);
  });

  it('when reconcileEveryMinutes is set should use it as the rate', () => {
    const { template: t } = synth({ reconcileEveryMinutes: '1' });
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
    const { template: t15 } = synth({ reconcileEveryMinutes: 15 });
    t15.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
  });
});

describe('HTTP API', () => {
  const ROUTE_KEYS = [
    'DELETE /api/batch/jobs/{jobId}',
    'GET /api/batch/jobs',
    'GET /api/batch/jobs/{jobId}',
    'GET /api/batch/jobs/{jobId}/results',
    'POST /api/batch/jobs',
  ];
  const routes = () => Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'));
  const integrations = () => resourcesOf(template, 'AWS::ApiGatewayV2::Integration');

  it('when routed should have exactly the five routes: submit, list, status, cancel, results', () => {
    expect(routes().map((r) => r.Properties.RouteKey).sort()).toEqual(ROUTE_KEYS);
    const declared = Object.entries(API_ROUTES).flatMap(([p, methods]) => methods.map((m) => `${m} ${p}`));
    expect(declared.sort()).toEqual(ROUTE_KEYS);
  });

  it('when compared with intake\'s dispatch (functions/intake/src/lib.rs) should route every method and path it serves', () => {
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
      expect(parts[parts.length - 1]).toMatch(/^\/\*\/\*\/api\/batch\/jobs(\/\{jobId\}(\/results)?)?$/);
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
    template.resourceCountIs('AWS::CloudWatch::Alarm', QUEUES.length + FUNCTIONS.length);
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
    expect(outputs.EventBusName.Value).toEqual({ Ref: id(stack.bus) });
  });
});
