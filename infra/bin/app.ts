#!/usr/bin/env node
/**
 * CDK entry point. Settings come from context (cdk.json, `-c key=value`); account and region
 * from the CLI's defaults, so a synth needs no credentials (the stack is then environment-
 * agnostic and the ARNs use CloudFormation pseudo parameters).
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';

const app = new App();
buildApp(app, {
  account: process.env.CDK_DEFAULT_ACCOUNT,
  region: process.env.CDK_DEFAULT_REGION,
});
app.synth();
