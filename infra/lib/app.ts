/**
 * Builds the app the CLI and the tests share: settings from context, the stack, cdk-nag's
 * AwsSolutions checks and the reasoned acknowledgments. cdk-nag 3 runs as a CDK policy
 * validation plugin: an unacknowledged error finding stops the synth.
 */
import { App, Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { applyNagSuppressions } from './nag';
import { readSettings, Settings } from './settings';
import { BatchOrchestratorStack } from './stack';

export function settingsOf(app: App): Settings {
  return readSettings((key) => app.node.tryGetContext(key));
}

export function stackId(settings: Settings): string {
  return `BatchOrchestrator-${settings.stage}`;
}

export function buildApp(app: App, env?: Environment): BatchOrchestratorStack {
  const settings = settingsOf(app);
  const stack = new BatchOrchestratorStack(app, stackId(settings), {
    settings,
    env,
    description: `batch-orchestrator (${settings.stage}): uploaded receipt images to Amazon Bedrock batch inference jobs`,
  });
  applyNagSuppressions(stack);
  // writeSuppressionsToCloudFormation keeps each acknowledgment and its reason in the
  // template's Metadata (cdk_nag.rules_to_suppress), an audit trail beside the resource.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
  return stack;
}
