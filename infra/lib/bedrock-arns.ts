/**
 * The IAM resources a configured model id stands for (the Rust side reads the same forms, see
 * `shared/src/domain/family/mod.rs`, base_model_id):
 * - a plain id is one foundation model in this Region;
 * - a system (cross-Region) inference profile id (`us.anthropic.…`, `global.…`), or its ARN, is
 *   the profile plus the foundation model in every Region the profile may route to. Bedrock
 *   authorizes a call through a profile on both ("the role must have permissions to invoke the
 *   inference profile in an AWS Region, in addition to the model in each Region in the
 *   inference profile", user guide, inference-profiles-prereq); a `global.` profile also needs
 *   the Region-less foundation-model ARN (`arn:aws:bedrock:::foundation-model/<id>`, "Global
 *   cross-Region inference"), which `bedrock:*::` covers (a wildcard matches the empty Region);
 * - an application inference profile ARN names no model: the profile plus the foundation
 *   model `modelFamilies` says it routes to.
 */
import type { ConfiguredModel } from './settings';

/** Geographic prefixes of system-defined inference profiles. */
export const GEO_PREFIXES: readonly string[] = ['us', 'us-gov', 'eu', 'apac', 'jp', 'au', 'ca', 'global'];

export interface ArnParts {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

/** `["us", "anthropic.claude-…"]` for a profile id, undefined for a plain model id. */
export function splitGeoPrefix(modelId: string): [string, string] | undefined {
  const dot = modelId.indexOf('.');
  if (dot < 0) return undefined;
  const head = modelId.slice(0, dot);
  const rest = modelId.slice(dot + 1);
  return GEO_PREFIXES.includes(head) && rest.includes('.') ? [head, rest] : undefined;
}

/** The foundation model in every Region (and none: `global.` profiles). */
function everywhere(p: ArnParts, model: string): string {
  return `arn:${p.partition}:bedrock:*::foundation-model/${model}`;
}

/** ARNs `bedrock:InvokeModel` (and CreateModelInvocationJob) must allow for one model id. */
export function modelArns(
  modelId: string,
  p: ArnParts,
  configured: Readonly<Record<string, ConfiguredModel>> = {},
): string[] {
  if (modelId.startsWith('arn:')) {
    const resource = modelId.split(':').slice(5).join(':');
    const [kind, id] = [resource.slice(0, resource.indexOf('/')), resource.slice(resource.indexOf('/') + 1)];
    if (kind === 'inference-profile') {
      const geo = splitGeoPrefix(id);
      return [modelId, everywhere(p, geo === undefined ? id : geo[1])];
    }
    if (kind === 'application-inference-profile') {
      const c = configured[modelId];
      if (c === undefined) {
        throw new Error(`modelIds: ${modelId} is an application inference profile; modelFamilies must give its family and foundationModel`);
      }
      return [modelId, everywhere(p, c.foundationModel)];
    }
    return [modelId];
  }
  const geo = splitGeoPrefix(modelId);
  if (geo === undefined) {
    return [`arn:${p.partition}:bedrock:${p.region}::foundation-model/${modelId}`];
  }
  return [
    `arn:${p.partition}:bedrock:${p.region}:${p.account}:inference-profile/${modelId}`,
    everywhere(p, geo[1]),
  ];
}

export function allModelArns(
  modelIds: readonly string[],
  p: ArnParts,
  configured: Readonly<Record<string, ConfiguredModel>> = {},
): string[] {
  return [...new Set(modelIds.flatMap((m) => modelArns(m, p, configured)))];
}
