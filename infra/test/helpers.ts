/**
 * Synthesizes the stack the way the CLI would, minus the Rust build: bundling is skipped both
 * by the app's `bundle` setting and by the CDK's own `aws:cdk:bundling-stacks` context.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Environment, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { BatchOrchestratorStack } from '../lib/stack';

export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

export interface Synth {
  readonly app: App;
  readonly stack: BatchOrchestratorStack;
  readonly template: Template;
}

export function synth(overrides: Record<string, unknown> = {}, env?: Environment, bundlingStacks: string[] = []): Synth {
  const app = new App({
    context: { ...CDK_JSON_CONTEXT, ...overrides, 'aws:cdk:bundling-stacks': bundlingStacks },
  });
  const stack = buildApp(app, env);
  Validations.of(stack).acknowledge({
    id: 'Annotation::batch-orchestrator:NotBundled',
    reason: 'The tests synthesize without building the Rust functions on purpose.',
  });
  return { app, stack, template: Template.fromStack(stack) };
}

export type Resources = Record<string, { Type: string; Properties: Record<string, any>; Metadata?: Record<string, any> }>;

export function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export function asArray<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** All statements of one role's inline/attached AWS::IAM::Policy resources. */
export function roleStatements(template: Template, roleLogicalId: string): Statement[] {
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => asArray(p.Properties.Roles).some((r: any) => r.Ref === roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

/** Every action a role is allowed, sorted. */
export function roleActions(template: Template, roleLogicalId: string): string[] {
  return [...new Set(roleStatements(template, roleLogicalId).flatMap((s) => asArray(s.Action)))].sort();
}
