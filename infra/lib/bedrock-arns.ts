/**
 * The IAM resources a configured model id stands for. A plain id is one foundation model in
 * this region. A cross-region inference profile id (`us.anthropic.…`) is the profile in this
 * account plus the foundation model in every region the profile may route to, which is how
 * Bedrock authorizes calls through a geographic profile.
 */

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

/** ARNs `bedrock:InvokeModel` (and CreateModelInvocationJob) must allow for one model id. */
export function modelArns(modelId: string, p: ArnParts): string[] {
  if (modelId.startsWith('arn:')) return [modelId];
  const geo = splitGeoPrefix(modelId);
  if (geo === undefined) {
    return [`arn:${p.partition}:bedrock:${p.region}::foundation-model/${modelId}`];
  }
  return [
    `arn:${p.partition}:bedrock:${p.region}:${p.account}:inference-profile/${modelId}`,
    `arn:${p.partition}:bedrock:*::foundation-model/${geo[1]}`,
  ];
}

export function allModelArns(modelIds: readonly string[], p: ArnParts): string[] {
  return [...new Set(modelIds.flatMap((m) => modelArns(m, p)))];
}
