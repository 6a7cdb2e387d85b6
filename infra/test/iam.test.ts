/**
 * Least privilege: the Bedrock service role's trust and grants, each function role's exact
 * action set on its own resources, who may create / read / stop Bedrock jobs, and no `*`
 * action or resource anywhere.
 */
import { allModelArns, modelArns, splitGeoPrefix } from '../lib/bedrock-arns';
import { FunctionName } from '../lib/stack';
import { asArray, resourcesOf, roleActions, roleStatements, Statement, synth } from './helpers';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const { stack, template } = synth({}, { account: ACCOUNT, region: REGION });
const id = (c: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(c.node.defaultChild as any);
const arnOf = (c: { node: { defaultChild?: unknown } }) => ({ 'Fn::GetAtt': [id(c), 'Arn'] });
const objectsOf = (c: { node: { defaultChild?: unknown } }) => ({ 'Fn::Join': ['', [arnOf(c), '/*']] });
/** The long lists beside the manifests (shared/src/app/lists.rs): `manifests/{jobId}/lists/`. */
const listsOf = (c: { node: { defaultChild?: unknown } }) => ({ 'Fn::Join': ['', [arnOf(c), '/manifests/*/lists/*']] });
/** The normalized copies of the uploads (shared/src/app/normalized.rs): `normalized/`. */
const normalizedOf = (c: { node: { defaultChild?: unknown } }) => ({ 'Fn::Join': ['', [arnOf(c), '/normalized/*']] });
const JOBS = `arn:aws:bedrock:${REGION}:${ACCOUNT}:model-invocation-job/*`;
const roleId = (name: FunctionName): string => id(stack.functions[name].role!);
const bySid = (statements: Statement[], sid: string): Statement => {
  const found = statements.filter((s) => s.Sid === sid);
  expect(found).toHaveLength(1);
  return found[0];
};

describe('no wildcard grants', () => {
  /**
   * Actions that have no resource-level permissions and so would need Resource "*". None is in
   * use today; adding one here must come with the reason (e.g. a List* call).
   */
  const RESOURCE_STAR_ALLOWED: readonly string[] = [];

  it('when any policy statement is synthesized should name no "*" action, no service-wide action wildcard and no "*" resource', () => {
    const statements = [
      ...Object.values(resourcesOf(template, 'AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]),
      ...Object.values(resourcesOf(template, 'AWS::IAM::Role')).flatMap((r) =>
        (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement as Statement[])),
    ];
    expect(statements.length).toBeGreaterThan(20);
    for (const s of statements.filter((st) => st.Effect === 'Allow')) {
      for (const a of asArray(s.Action)) {
        expect(a).not.toBe('*');
        expect(a).not.toMatch(/:\*$/);
      }
      if (asArray(s.Resource).includes('*')) {
        expect(asArray(s.Action).every((a) => RESOURCE_STAR_ALLOWED.includes(a))).toBe(true);
      }
    }
  });

  it('when any role is synthesized should attach no managed policy', () => {
    for (const r of Object.values(resourcesOf(template, 'AWS::IAM::Role'))) {
      expect(r.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('Bedrock service role', () => {
  const role = resourcesOf(template, 'AWS::IAM::Role')[id(stack.bedrockRole)].Properties;

  it('when assumed should trust only bedrock.amazonaws.com for jobs of this account and region', () => {
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([{
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Principal: { Service: 'bedrock.amazonaws.com' },
      Condition: {
        StringEquals: { 'aws:SourceAccount': ACCOUNT },
        ArnLike: { 'aws:SourceArn': JOBS },
      },
    }]);
  });

  it('when a job runs should read manifests, write and list outputs, and invoke only the configured models', () => {
    const st = roleStatements(template, id(stack.bedrockRole));
    // The shape of AWS's documented service-role S3 policy (batch-iam-sr): one statement, the
    // three actions, both buckets and their objects, this account's buckets only.
    const s3 = bySid(st, 'S3Access');
    expect([...(s3.Action as string[])].sort()).toEqual(['s3:GetObject', 's3:ListBucket', 's3:PutObject']);
    const buckets = [
      arnOf(stack.manifestsBucket),
      objectsOf(stack.manifestsBucket),
      arnOf(stack.outputsBucket),
      objectsOf(stack.outputsBucket),
    ];
    expect(s3.Resource).toHaveLength(buckets.length);
    expect(s3.Resource).toEqual(expect.arrayContaining(buckets));
    expect(s3.Condition).toEqual({ StringEquals: { 'aws:ResourceAccount': [stack.account] } });
    expect(bySid(st, 'InvokeConfiguredModels')).toMatchObject({ Action: 'bedrock:InvokeModel' });
    // The cdk.json defaults: the catalog's models through us. system inference profiles.
    expect([...asArray(bySid(st, 'InvokeConfiguredModels').Resource as string[])].sort()).toEqual([
      'arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0',
      'arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0',
      `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/us.amazon.nova-lite-v1:0`,
      `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0`,
    ]);
    expect(roleActions(template, id(stack.bedrockRole))).toEqual(['bedrock:InvokeModel', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
  });

  it('when a model id has a geo prefix should allow its inference profile and the model in any region', () => {
    const { stack: s, template: t } = synth(
      { modelIds: ['global.anthropic.claude-sonnet-4-5-20250929-v1:0'] },
      { account: ACCOUNT, region: REGION },
    );
    const st = roleStatements(t, s.getLogicalId(s.bedrockRole.node.defaultChild as any));
    // `bedrock:*::` also matches the Region-less ARN a global profile is authorized on.
    expect([...(bySid(st, 'InvokeConfiguredModels').Resource as string[])].sort()).toEqual([
      'arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
      `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0`,
    ]);
  });
});

describe('model ARNs', () => {
  const p = { partition: 'aws', region: 'eu-west-1', account: ACCOUNT };
  it('when the id is plain should be the regional foundation model', () => {
    expect(modelArns('amazon.nova-pro-v1:0', p)).toEqual(['arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0']);
  });
  it('when the id is a geographic profile should be the profile plus the model in any region', () => {
    expect(splitGeoPrefix('eu.anthropic.claude-haiku-4-5-20251001-v1:0')).toEqual(['eu', 'anthropic.claude-haiku-4-5-20251001-v1:0']);
    for (const geo of ['us', 'us-gov', 'eu', 'apac', 'jp', 'au', 'ca', 'global']) {
      expect(splitGeoPrefix(`${geo}.amazon.nova-lite-v1:0`)).toEqual([geo, 'amazon.nova-lite-v1:0']);
    }
    expect(modelArns('apac.amazon.nova-pro-v1:0', p)).toEqual([
      `arn:aws:bedrock:eu-west-1:${ACCOUNT}:inference-profile/apac.amazon.nova-pro-v1:0`,
      'arn:aws:bedrock:*::foundation-model/amazon.nova-pro-v1:0',
    ]);
  });
  it('when the id is a system inference-profile ARN should be the profile plus its model in any region', () => {
    const arn = `arn:aws:bedrock:eu-west-1:${ACCOUNT}:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0`;
    expect(modelArns(arn, p)).toEqual([arn, 'arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0']);
  });
  it('when the id is an application profile should be the profile plus the configured model, and refuse one without configuration', () => {
    const arn = `arn:aws:bedrock:eu-west-1:${ACCOUNT}:application-inference-profile/abc123`;
    expect(modelArns(arn, p, { [arn]: { family: 'nova', foundationModel: 'amazon.nova-lite-v1:0' } }))
      .toEqual([arn, 'arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0']);
    expect(() => modelArns(arn, p)).toThrow(/modelFamilies/);
  });
  it('when the id is a foundation-model ARN should use it as is', () => {
    const arn = 'arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0';
    expect(modelArns(arn, p)).toEqual([arn]);
  });
  it('when two ids share a model should list each ARN once', () => {
    expect(allModelArns(['us.amazon.nova-pro-v1:0', 'eu.amazon.nova-pro-v1:0'], p)).toHaveLength(3);
  });
});

describe('function roles', () => {
  const OURS = { StringEquals: { 'aws:ResourceTag/batch-orchestrator-stack': { Ref: id(stack.manifestsBucket) } } };
  const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
  const SQS = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'];
  const INTENTS = ['dynamodb:GetItem', 'dynamodb:PutItem'];
  // intake-events' dynamodb:PutItem and dynamodb:Query also cover the uploads index (see UploadsIndex);
  // manifest-builder's dynamodb:Query is the uploads index alone. dynamodb:Query also covers the
  // results table for intake, intake-events, status-watcher and reconciler (see RESULTS below).
  const EXPECTED: Record<FunctionName, string[]> = {
    // No uploads: the index, the copies and the nightly run are intake-events'.
    intake: [...LOGS, ...INTENTS, 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem', 'events:PutEvents',
      'bedrock:StopModelInvocationJob', 's3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
    // sqs: the on-failure destination of its async invocations (the intake-events DLQ).
    'intake-events': [...LOGS, ...INTENTS, 'dynamodb:Query', 'events:PutEvents',
      'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage',
      's3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject'],
    'manifest-builder': [...LOGS, ...SQS, ...INTENTS, 'dynamodb:Query', 'dynamodb:BatchWriteItem', 'events:PutEvents',
      's3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject'],
    // ...plus a deadline's on-demand jobs: their parts, InvokeModel, their results.
    submitter: [...LOGS, ...SQS, ...INTENTS, 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem', 'events:PutEvents',
      'bedrock:CreateModelInvocationJob', 'bedrock:TagResource', 'bedrock:StopModelInvocationJob', 'iam:PassRole',
      's3:GetObject', 'bedrock:InvokeModel'],
    // UpdateItem: a finished job's durations (history#{model} items only).
    'status-watcher': [...LOGS, ...SQS, ...INTENTS, 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem',
      'events:PutEvents', 's3:GetObject', 's3:ListBucket', 'bedrock:StopModelInvocationJob', 'bedrock:InvokeModel'],
    // ...and StopModelInvocationJob: a job still running at its deadline's cut-off.
    reconciler: [...LOGS, ...INTENTS, 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem',
      'events:PutEvents', 's3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject',
      'bedrock:GetModelInvocationJob', 'bedrock:StopModelInvocationJob', 'bedrock:InvokeModel'],
    // Reads the ended intent and its job view; writes and publishes nothing.
    'webhook-sender': [...LOGS, ...SQS, 'dynamodb:GetItem'],
  };
  /** The functions that save intents (and so publish their outbox); webhook-sender only reads. */
  const WRITERS: FunctionName[] = (Object.keys(EXPECTED) as FunctionName[]).filter((n) => n !== 'webhook-sender');
  /** The results-table actions of each function, in one ResultStore statement (none for the others). */
  const RESULTS: Partial<Record<FunctionName, string[]>> = {
    // canceled results of a member leaving a shared job; GET /api/batch/jobs/{jobId}/results
    // and which of a request's digests the duplicate index knows (the 202's estimate)
    intake: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'],
    // skipped results of rejected images, copies answered from their first (its result read
    // with GetItem), the user's duplicate index (Query)
    'manifest-builder': ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query'],
    // ingest (and re-runs, routed to a shared job's members); counting a member's results
    'status-watcher': ['dynamodb:BatchWriteItem', 'dynamodb:Query'],
    // the same, plus the pool pass's on-demand runs (resumed after the records that succeeded)
    reconciler: ['dynamodb:BatchWriteItem', 'dynamodb:Query'],
    // an on-demand job's results, and the stored ones a resumed run skips
    submitter: ['dynamodb:BatchWriteItem', 'dynamodb:Query'],
    // the nightly run's start: the results, points and tallies of nights that ended
    'intake-events': ['dynamodb:Query'],
  };
  /** The functions that keep the nights' points and tallies: PutItem on `night#` partitions. */
  const NIGHT_LOG: FunctionName[] = ['intake-events', 'reconciler'];
  /**
   * Every S3 statement of each function, as [Sid, actions, bucket, objects?] (none for the
   * others): the buckets and keys its code reads and writes, and nothing else.
   */
  type S3Grant = [string, string[], 'uploads' | 'manifests' | 'outputs', 'objects' | 'bucket' | 'lists' | 'normalized'];
  const S3: Partial<Record<FunctionName, S3Grant[]>> = {
    intake: [
      // a request's keys past 1,000 (keep_keys, streaming); a member leaving a shared job
      // reads its images list and the shared job's members list
      ['WriteLists', ['s3:AbortMultipartUpload', 's3:PutObject'], 'manifests', 'lists'],
      ['ReadLists', ['s3:GetObject'], 'manifests', 'lists'],
    ],
    // the uploads it indexes, normalized; a request's keys past 1,000 (a direct invoke, a night)
    'intake-events': [
      ['ReadUploads', ['s3:GetObject'], 'uploads', 'objects'],
      ['ListUploads', ['s3:ListBucket'], 'uploads', 'bucket'],
      ['WriteNormalized', ['s3:PutObject'], 'uploads', 'normalized'],
      ['WriteLists', ['s3:AbortMultipartUpload', 's3:PutObject'], 'manifests', 'lists'],
    ],
    'manifest-builder': [
      // get (inline images), head (ranged GetObject), the source of the s3Location image copy
      ['ReadUploads', ['s3:GetObject'], 'uploads', 'objects'],
      // list_range (ListObjectsV2 + StartAfter) of a day's prefix; a missing image is a 404
      ['ListUploads', ['s3:ListBucket'], 'uploads', 'bucket'],
      // the streaming multipart part writes (and their abort), the copied images
      ['WriteManifests', ['s3:AbortMultipartUpload', 's3:PutObject'], 'manifests', 'objects'],
      // a shared job reads its members' parts and copies (relocates) their images
      ['ReadManifests', ['s3:GetObject'], 'manifests', 'objects'],
      // the normalized copy of an image not normalized at upload
      ['WriteNormalized', ['s3:PutObject'], 'uploads', 'normalized'],
    ],
    // an on-demand job's input parts; the originals a flagged answer is asked again with
    submitter: [
      ['ReadUploads', ['s3:GetObject'], 'uploads', 'objects'],
      ['ReadManifests', ['s3:GetObject'], 'manifests', 'objects'],
    ],
    'status-watcher': [
      ['ReadUploads', ['s3:GetObject'], 'uploads', 'objects'],
      ['ReadOutputs', ['s3:GetObject'], 'outputs', 'objects'],
      ['ListOutputs', ['s3:ListBucket'], 'outputs', 'bucket'],
      // re-runs read the job's input parts (rerun_retryable)
      ['ReadManifests', ['s3:GetObject'], 'manifests', 'objects'],
    ],
    reconciler: [
      ['ReadUploads', ['s3:GetObject'], 'uploads', 'objects'],
      ['ReadOutputs', ['s3:GetObject'], 'outputs', 'objects'],
      ['ListOutputs', ['s3:ListBucket'], 'outputs', 'bucket'],
      // a pooled member run on-demand, and re-runs, read manifest parts
      ['ReadManifests', ['s3:GetObject'], 'manifests', 'objects'],
      // a shared job's members list past 1,000, written when it is sealed
      ['WriteLists', ['s3:AbortMultipartUpload', 's3:PutObject'], 'manifests', 'lists'],
    ],
  };
  /** The intents-table indexes each function may Query (none for the others). */
  const INDEXES: Partial<Record<FunctionName, string[]>> = {
    // byStatusUpdated: a deadline's plan counts the intents waiting ahead when slots are full
    intake: ['byJobId', 'byStatusUpdated', 'byUserCreated'],
    'intake-events': ['byJobId', 'byStatusUpdated', 'byUserCreated'],
    'manifest-builder': ['byStatusUpdated'],
    submitter: ['byStatusUpdated'],
    'status-watcher': ['byJobId', 'byStatusUpdated'],
    reconciler: ['byJobId', 'byOutbox', 'byStatusUpdated'],
  };

  it('when every function is listed should cover every function of the stack', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(stack.functions).sort());
  });

  it.each(Object.keys(EXPECTED))('when %s is granted should get exactly the actions its code calls', (name) => {
    expect(roleActions(template, roleId(name as FunctionName))).toEqual([...EXPECTED[name as FunctionName]].sort());
  });

  it('when any function writes events should write only to our bus', () => {
    for (const name of WRITERS) {
      const put = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).includes('events:PutEvents'));
      expect(put).toHaveLength(1);
      expect(put[0].Resource).toEqual(arnOf(stack.bus));
    }
  });

  /** The functions that touch the uploads index, and how (none other may). */
  const UPLOADS_INDEX: Partial<Record<FunctionName, string[]>> = {
    'intake-events': ['dynamodb:PutItem', 'dynamodb:Query'],
    'manifest-builder': ['dynamodb:Query'],
    // a request's uploads and their digests, for the 202's estimate (known copies left out)
    intake: ['dynamodb:Query'],
  };

  it('when a function touches DynamoDB should reach only its tables and the indexes its code queries', () => {
    const intents = arnOf(stack.intentsTable);
    const uploads = arnOf(stack.uploadsTable);
    const index = (name: string) => ({ 'Fn::Join': ['', [intents, `/index/${name}`]] });
    for (const name of Object.keys(EXPECTED) as FunctionName[]) {
      const st = roleStatements(template, roleId(name));
      expect(bySid(st, WRITERS.includes(name) ? 'IntentStore' : 'ReadIntents').Resource).toEqual(intents);
      const queried = st.filter((x) => asArray(x.Action).includes('dynamodb:Query'));
      expect(queried.flatMap((q) => asArray(q.Resource as object | object[]))).toEqual([
        ...(INDEXES[name] ?? []).map(index),
        ...(UPLOADS_INDEX[name]?.includes('dynamodb:Query') ? [uploads] : []),
        ...(RESULTS[name]?.includes('dynamodb:Query') ? [arnOf(stack.resultsTable)] : []),
      ]);
      for (const s of st.filter((x) => asArray(x.Action).includes('dynamodb:BatchWriteItem'))) {
        expect(s.Resource).toEqual(arnOf(stack.resultsTable));
      }
      // The results table is written only with BatchWriteItem: no role may PutItem there, but
      // the manifest builder's conditional puts of the duplicate index, on its partitions only.
      for (const s of st.filter((x) => asArray(x.Action).includes('dynamodb:PutItem') && !['DuplicateIndex', 'NightLog'].includes(x.Sid as string))) {
        expect([intents, uploads]).toContainEqual(s.Resource);
      }
    }
  });

  it('when a function reaches the uploads index should be intake-events (PutItem, Query), manifest-builder and intake (Query) only, on the table itself', () => {
    const uploads = arnOf(stack.uploadsTable);
    for (const name of Object.keys(EXPECTED) as FunctionName[]) {
      const st = roleStatements(template, roleId(name))
        .filter((s) => asArray(s.Resource as object | object[]).some((r) => JSON.stringify(r).includes(id(stack.uploadsTable))));
      const expected = UPLOADS_INDEX[name];
      if (expected === undefined) {
        expect([name, st]).toEqual([name, []]);
        continue;
      }
      expect(st).toHaveLength(1);
      expect(st[0]).toEqual({
        Sid: 'UploadsIndex',
        Effect: 'Allow',
        Action: expected.length === 1 ? expected[0] : expected,
        Resource: uploads,
      });
    }
  });

  it('when a function may delete items should be intake, submitter, status-watcher and reconciler only, on the intents table only (slot release)', () => {
    const deleters = Object.keys(EXPECTED).filter((name) =>
      roleActions(template, roleId(name as FunctionName)).includes('dynamodb:DeleteItem'));
    // intake: cancel frees the slot a dead submitter may have taken, and the last member
    // leaving a shared job frees the shared job's (app::cancel).
    expect(deleters).toEqual(['intake', 'submitter', 'status-watcher', 'reconciler']);
    for (const name of deleters as FunctionName[]) {
      const st = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).includes('dynamodb:DeleteItem'));
      expect(st).toEqual([expect.objectContaining({ Sid: 'ReleaseSlots', Action: 'dynamodb:DeleteItem', Resource: arnOf(stack.intentsTable) })]);
      // Only slot items (`slot#<model>#<n>`), never an intent or a pointer.
      expect(st[0].Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['slot#*'] } });
    }
  });

  it('when submitter or status-watcher wakes the oldest intent waiting for a slot should query byStatusUpdated by its index ARN only', () => {
    const intents = arnOf(stack.intentsTable);
    const index = (n: string) => ({ 'Fn::Join': ['', [intents, `/index/${n}`]] });
    const queries = (name: FunctionName) =>
      roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).includes('dynamodb:Query'));
    // The submitter's other Query is the results table's own key (an on-demand job resumed
    // after the records it stored), never an index.
    expect(queries('submitter')).toEqual([
      expect.objectContaining({ Sid: 'IntentIndexes', Action: 'dynamodb:Query', Resource: index('byStatusUpdated') }),
      expect.objectContaining({ Sid: 'ResultStore', Resource: arnOf(stack.resultsTable) }),
    ]);
    // status-watcher's other Query is the results table's own key (counting a shared job's
    // members' results), never an index.
    expect(queries('status-watcher')).toEqual([
      expect.objectContaining({ Sid: 'IntentIndexes', Action: 'dynamodb:Query', Resource: ['byJobId', 'byStatusUpdated'].map(index) }),
      expect.objectContaining({ Sid: 'ResultStore', Resource: arnOf(stack.resultsTable) }),
    ]);
  });

  it('when manifest-builder reaches S3 should read and list uploads, and read and write manifests only', () => {
    const st = roleStatements(template, roleId('manifest-builder'));
    expect(bySid(st, 'ReadUploads').Resource).toEqual(objectsOf(stack.uploadsBucket));
    expect(bySid(st, 'ListUploads').Resource).toEqual(arnOf(stack.uploadsBucket));
    expect(bySid(st, 'WriteManifests')).toMatchObject({
      Action: ['s3:AbortMultipartUpload', 's3:PutObject'].sort(),
      Resource: objectsOf(stack.manifestsBucket),
    });
    expect(bySid(st, 'ReadManifests')).toMatchObject({ Action: 's3:GetObject', Resource: objectsOf(stack.manifestsBucket) });
  });

  it('when a function reaches S3 should hold exactly the statements its code needs, on its buckets only', () => {
    const buckets = { uploads: stack.uploadsBucket, manifests: stack.manifestsBucket, outputs: stack.outputsBucket };
    for (const name of Object.keys(EXPECTED) as FunctionName[]) {
      const st = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
      const expected = (S3[name] ?? []).map(([sid, actions, bucket, what]) => ({
        Sid: sid,
        Effect: 'Allow',
        Action: actions.length === 1 ? actions[0] : actions,
        Resource: what === 'objects' ? objectsOf(buckets[bucket]) : what === 'lists' ? listsOf(buckets[bucket])
          : what === 'normalized' ? normalizedOf(buckets[bucket]) : arnOf(buckets[bucket]),
      }));
      expect([name, st]).toEqual([name, expected]);
    }
  });

  it('when a copy moves an image should allow GetObject on the source bucket and PutObject on the destination (CopyObject)', () => {
    // uploads -> manifests (an s3Location image of a request), manifests -> manifests (a
    // shared job relocating its members' images): manifest-builder is the only copier.
    const actionsOn = (name: FunctionName, resource: unknown) => roleStatements(template, roleId(name))
      .filter((s) => JSON.stringify(s.Resource) === JSON.stringify(resource))
      .flatMap((s) => asArray(s.Action));
    expect(actionsOn('manifest-builder', objectsOf(stack.uploadsBucket))).toEqual(['s3:GetObject']);
    expect(actionsOn('manifest-builder', objectsOf(stack.manifestsBucket)).sort())
      .toEqual(['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject']);
    // The others copy no image: intake writes normalized copies and lists, the reconciler lists.
    for (const name of ['intake', 'intake-events', 'submitter', 'status-watcher', 'reconciler'] as const) {
      const writes = roleStatements(template, roleId(name))
        .filter((s) => asArray(s.Action).some((a) => a === 's3:PutObject' || a === 's3:AbortMultipartUpload'))
        .map((s) => s.Resource);
      const lists = name === 'intake' ? [listsOf(stack.manifestsBucket)]
        : name === 'intake-events' ? [normalizedOf(stack.uploadsBucket), listsOf(stack.manifestsBucket)]
        : name === 'reconciler' ? [listsOf(stack.manifestsBucket)] : [];
      expect([name, writes]).toEqual([name, lists]);
    }
  });

  it('when a function reaches the results table should hold exactly its result actions, in one statement', () => {
    for (const name of Object.keys(EXPECTED) as FunctionName[]) {
      const st = roleStatements(template, roleId(name))
        .filter((s) => asArray(s.Resource as object | object[]).some((r) => JSON.stringify(r).includes(id(stack.resultsTable))));
      const expected = RESULTS[name];
      if (expected === undefined) {
        expect([name, st]).toEqual([name, []]);
        continue;
      }
      // The manifest builder also writes the duplicate index: PutItem on its partitions only.
      const index = name === 'manifest-builder' ? [{
        Sid: 'DuplicateIndex',
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: arnOf(stack.resultsTable),
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['dup#*', 'dupr#*', 'dupf#*'] } },
      }] : [];
      const nights = NIGHT_LOG.includes(name) ? [{
        Sid: 'NightLog',
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: arnOf(stack.resultsTable),
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['night#*'] } },
      }] : [];
      expect(st).toEqual([{
        Sid: 'ResultStore',
        Effect: 'Allow',
        Action: expected.length === 1 ? expected[0] : expected,
        Resource: arnOf(stack.resultsTable),
      }, ...index, ...nights]);
    }
  });

  it('when intake serves the API should query byJobId, byUserCreated, byStatusUpdated (a deadline\'s waves ahead) and the results table only, and only stop jobs on Bedrock', () => {
    const st = roleStatements(template, roleId('intake'));
    const intents = arnOf(stack.intentsTable);
    expect(bySid(st, 'IntentIndexes')).toMatchObject({
      Action: 'dynamodb:Query',
      Resource: ['byJobId', 'byStatusUpdated', 'byUserCreated'].map((n) => ({ 'Fn::Join': ['', [intents, `/index/${n}`]] })),
    });
    expect(bySid(st, 'StopBatchJobs')).toMatchObject({ Action: 'bedrock:StopModelInvocationJob', Resource: JOBS });
    const actions = roleActions(template, roleId('intake'));
    expect(actions.filter((a) => a.startsWith('bedrock:'))).toEqual(['bedrock:StopModelInvocationJob']);
    expect(actions.filter((a) => a.startsWith('iam:'))).toEqual([]);
    // S3 only on the long lists (a request's keys, a leaving member's images and members).
    const allowed = [listsOf(stack.manifestsBucket)].map((r) => JSON.stringify(r));
    for (const s of st.filter((x) => asArray(x.Action).some((a: string) => a.startsWith('s3:')))) {
      expect(allowed).toContain(JSON.stringify(s.Resource));
    }
    // No queue: the async event sources and their DLQ are intake-events'.
    expect(st.filter((x) => asArray(x.Action).some((a: string) => a.startsWith('sqs:')))).toEqual([]);
    const dlq = { 'Fn::GetAtt': [id(stack.intakeEventsDlq), 'Arn'] };
    const events = roleStatements(template, roleId('intake-events'));
    for (const s of events.filter((x) => asArray(x.Action).some((a: string) => a.startsWith('sqs:')))) {
      expect(s.Resource).toEqual(dlq);
    }
    // GET …/results lists a job's results; leaving a shared job writes `canceled` results; the
    // 202's estimate asks the duplicate index which digests it knows.
    expect(bySid(st, 'ResultStore')).toMatchObject({
      Action: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'],
      Resource: arnOf(stack.resultsTable),
    });
  });

  it('when submitter creates jobs should be limited to job ARNs and the configured models, and pass only the Bedrock role to Bedrock', () => {
    const st = roleStatements(template, roleId('submitter'));
    const models = allModelArns(stack.settings.modelIds, { partition: 'aws', region: REGION, account: ACCOUNT });
    expect(asArray(bySid(st, 'CreateBatchJobs').Resource as string[]).sort()).toEqual([...models, JOBS].sort());
    expect(bySid(st, 'TagBatchJobs')).toMatchObject({ Action: 'bedrock:TagResource', Resource: JOBS });
    expect(bySid(st, 'StopBatchJobs')).toMatchObject({ Action: 'bedrock:StopModelInvocationJob', Resource: JOBS });
    // InvokeModel: a deadline's on-demand jobs, on the configured models only.
    expect(roleActions(template, roleId('submitter')).filter((a) => a.startsWith('bedrock:'))).toEqual([
      'bedrock:CreateModelInvocationJob', 'bedrock:InvokeModel', 'bedrock:StopModelInvocationJob', 'bedrock:TagResource',
    ]);
    expect(bySid(st, 'PassBedrockRole')).toMatchObject({
      Action: 'iam:PassRole',
      Resource: arnOf(stack.bedrockRole),
      Condition: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
    });
  });

  it('when status-watcher reads results should read outputs and manifest parts only, and on Bedrock only stop jobs and invoke models (never read or create jobs)', () => {
    const st = roleStatements(template, roleId('status-watcher'));
    expect(bySid(st, 'ReadOutputs').Resource).toEqual(objectsOf(stack.outputsBucket));
    expect(bySid(st, 'ListOutputs').Resource).toEqual(arnOf(stack.outputsBucket));
    // re-runs read the finished job's input parts
    expect(bySid(st, 'ReadManifests')).toMatchObject({ Action: 's3:GetObject', Resource: objectsOf(stack.manifestsBucket) });
    expect(bySid(st, 'StopBatchJobs')).toMatchObject({ Action: 'bedrock:StopModelInvocationJob', Resource: JOBS });
    expect(roleActions(template, roleId('status-watcher')).filter((a) => a.startsWith('bedrock:'))).toEqual([
      'bedrock:InvokeModel', 'bedrock:StopModelInvocationJob',
    ]);
  });

  it('when reconciler polls should read job state, stop a job at its deadline\'s cut-off and invoke models (never create jobs) and read outputs and manifest parts only', () => {
    const st = roleStatements(template, roleId('reconciler'));
    expect(bySid(st, 'ReadBatchJobs')).toMatchObject({ Action: 'bedrock:GetModelInvocationJob', Resource: JOBS });
    const actions = roleActions(template, roleId('reconciler'));
    expect(actions.filter((a) => a.startsWith('bedrock:'))).toEqual([
      'bedrock:GetModelInvocationJob', 'bedrock:InvokeModel', 'bedrock:StopModelInvocationJob',
    ]);
    expect(actions).not.toContain('bedrock:CreateModelInvocationJob');
    // Stops only the stack's own jobs (the tag condition).
    expect(bySid(st, 'StopBatchJobs')).toMatchObject({ Action: 'bedrock:StopModelInvocationJob', Resource: JOBS });
    expect(bySid(st, 'ReadOutputs').Resource).toEqual(objectsOf(stack.outputsBucket));
    expect(bySid(st, 'ListOutputs').Resource).toEqual(arnOf(stack.outputsBucket));
    // the pool pass runs a member's parts on-demand; re-runs read a job's parts
    expect(bySid(st, 'ReadManifests')).toMatchObject({ Action: 's3:GetObject', Resource: objectsOf(stack.manifestsBucket) });
    expect(actions.filter((a) => a.startsWith('sqs:'))).toEqual([]);
  });

  it('when any role may pass a role should be the submitter alone', () => {
    const passers = Object.keys(EXPECTED).filter((name) =>
      roleActions(template, roleId(name as FunctionName)).includes('iam:PassRole'));
    expect(passers).toEqual(['submitter']);
  });

  it('when a Bedrock job action is granted should be held only by the functions whose code calls it', () => {
    const holders = (action: string) => Object.keys(EXPECTED).filter((name) =>
      roleActions(template, roleId(name as FunctionName)).includes(action));
    expect(holders('bedrock:GetModelInvocationJob')).toEqual(['reconciler']);
    expect(holders('bedrock:CreateModelInvocationJob')).toEqual(['submitter']);
    expect(holders('bedrock:TagResource')).toEqual(['submitter']);
    expect(holders('bedrock:StopModelInvocationJob')).toEqual(['intake', 'submitter', 'status-watcher', 'reconciler']);
    expect(holders('bedrock:InvokeModel')).toEqual(['submitter', 'status-watcher', 'reconciler']);
  });

  it('when a function may invoke models on-demand should reach exactly the Bedrock role\'s model ARNs, in one statement', () => {
    const models = allModelArns(stack.settings.modelIds, { partition: 'aws', region: REGION, account: ACCOUNT });
    const roleModels = asArray(bySid(roleStatements(template, id(stack.bedrockRole)), 'InvokeConfiguredModels').Resource as string[]);
    for (const name of ['status-watcher', 'reconciler'] as const) {
      const invokes = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).includes('bedrock:InvokeModel'));
      expect(invokes).toEqual([expect.objectContaining({ Sid: 'InvokeConfiguredModels', Action: 'bedrock:InvokeModel' })]);
      expect(invokes[0].Condition).toBeUndefined();
      expect([...asArray(invokes[0].Resource as string[])].sort()).toEqual([...models].sort());
      expect([...asArray(invokes[0].Resource as string[])].sort()).toEqual([...roleModels].sort());
    }
  });

  it('when a model id has a geo prefix should let status-watcher and reconciler invoke its profile and the model in any region', () => {
    const { stack: s, template: t } = synth(
      { modelIds: ['us.anthropic.claude-3-5-sonnet-20240620-v1:0'] },
      { account: ACCOUNT, region: REGION },
    );
    for (const name of ['status-watcher', 'reconciler'] as const) {
      const st = roleStatements(t, s.getLogicalId(s.functions[name].role!.node.defaultChild as any));
      expect([...asArray(bySid(st, 'InvokeConfiguredModels').Resource as string[])].sort()).toEqual([
        'arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0',
        `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0`,
      ]);
    }
  });

  it('when a function may stop jobs should reach this account and region\'s job ARNs only, in one statement', () => {
    for (const name of ['intake', 'submitter', 'status-watcher'] as const) {
      const stops = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).includes('bedrock:StopModelInvocationJob'));
      expect(stops).toEqual([expect.objectContaining({ Sid: 'StopBatchJobs', Action: 'bedrock:StopModelInvocationJob', Resource: JOBS })]);
      // Only jobs this stack tagged at creation.
      expect(stops[0].Condition).toEqual(OURS);
    }
  });

  it('when the reconciler reads a job should not depend on its tags, which Bedrock does not return once it finished', () => {
    const read = bySid(roleStatements(template, roleId('reconciler')), 'ReadBatchJobs');
    expect(read).toMatchObject({ Action: 'bedrock:GetModelInvocationJob', Resource: JOBS });
    expect(read.Condition).toBeUndefined();
  });

  it('when a function tags jobs should tag only with this stack\'s tag', () => {
    const tag = bySid(roleStatements(template, roleId('submitter')), 'TagBatchJobs');
    expect(tag.Condition).toEqual({
      StringEquals: { 'aws:RequestTag/batch-orchestrator-stack': { Ref: id(stack.manifestsBucket) } },
      // The tag keys the submitter sets (shared/src/app/submit.rs) and no others.
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['intentId', 'jobId', 'batch-orchestrator-stack'] },
    });
  });

  it('when consuming should reach only its own queue', () => {
    for (const name of ['manifest-builder', 'submitter', 'status-watcher'] as const) {
      const sqs = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).some((a) => a.startsWith('sqs:')));
      expect(sqs).toHaveLength(1);
      expect(sqs[0].Resource).toEqual(arnOf(stack.queues[name].queue));
    }
  });

  it('when logging should write only to its own log group', () => {
    for (const name of Object.keys(EXPECTED) as FunctionName[]) {
      const logs = roleStatements(template, roleId(name)).filter((s) => asArray(s.Action).some((a) => a.startsWith('logs:')));
      expect(logs).toHaveLength(1);
      const fn = resourcesOf(template, 'AWS::Lambda::Function')[id(stack.functions[name])];
      expect(logs[0].Resource).toEqual({ 'Fn::GetAtt': [fn.Properties.LoggingConfig.LogGroup.Ref, 'Arn'] });
    }
  });
});
