/**
 * Reads the Rust sources the stack must agree with (env var names, routing rules, GSI names,
 * table keys).
 * Each parser fails loudly when it finds nothing, so a reformatted Rust file cannot make a
 * comparison pass vacuously.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SHARED_SRC = path.join(REPO_ROOT, 'shared', 'src');

function read(rel: string): string {
  return fs.readFileSync(path.join(SHARED_SRC, rel), 'utf8');
}

function rustFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return rustFiles(p);
    return e.name.endsWith('.rs') ? [p] : [];
  });
}

/** `pub const NAME: &str = "value";` of one source text. */
export function stringConsts(source: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of source.matchAll(/pub const ([A-Z][A-Z0-9_]*): &str = "((?:[^"\\]|\\.)*)";/g)) {
    out.set(m[1], m[2]);
  }
  return out;
}

/** Every `pub const …: &str` under shared/src (names are unique across the crate's domain). */
export function allStringConsts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of rustFiles(SHARED_SRC)) {
    for (const [k, v] of stringConsts(fs.readFileSync(file, 'utf8'))) out.set(k, v);
  }
  return out;
}

/** The text between `start` and the first `end` after it. */
function block(source: string, start: RegExp, end: string, what: string): string {
  const m = start.exec(source);
  if (m === null) throw new Error(`could not find ${what}`);
  const from = m.index + m[0].length;
  const to = source.indexOf(end, from);
  if (to < 0) throw new Error(`could not find the end of ${what}`);
  return source.slice(from, to);
}

export interface RustEnvVar {
  readonly name: string;
  readonly required: boolean;
}

/** The ENV_VARS table of shared/src/config.rs, names resolved through its constants. */
export function rustEnvVars(): RustEnvVar[] {
  const src = read('config.rs');
  const consts = stringConsts(src);
  const table = block(src, /pub const ENV_VARS: &\[\(&str, bool, &str\)\] = &\[/, '\n];', 'ENV_VARS');
  const vars = [...table.matchAll(/\(\s*([A-Z][A-Z0-9_]*)\s*,\s*(true|false)\s*,/g)].map((m) => {
    const name = consts.get(m[1]);
    if (name === undefined) throw new Error(`ENV_VARS names ${m[1]}, which is not a string constant of config.rs`);
    return { name, required: m[2] === 'true' };
  });
  if (vars.length === 0) throw new Error('ENV_VARS parsed to nothing');
  return vars;
}

export interface RustRule {
  readonly name: string;
  readonly source: string;
  readonly detailTypes: string[];
  readonly jobNamePrefix: string | undefined;
  readonly target: string;
  readonly defaultBus: boolean;
}

/** The RULES table of shared/src/topology.rs, constants and `Queue::X` resolved. */
export function rustRules(): RustRule[] {
  const src = read('topology.rs');
  const consts = allStringConsts();
  const value = (expr: string): string => {
    const e = expr.trim();
    const lit = /^"((?:[^"\\]|\\.)*)"$/.exec(e);
    if (lit !== null) return lit[1];
    const c = consts.get(e);
    if (c === undefined) throw new Error(`topology.rs refers to ${e}, not a string constant under shared/src`);
    return c;
  };
  const nameFn = block(src, /pub fn name\(self\) -> &'static str \{/, '\n    }', 'Queue::name');
  const queueNames = new Map([...nameFn.matchAll(/Self::(\w+) => "([^"]+)"/g)].map((m) => [m[1], m[2]]));
  if (queueNames.size === 0) throw new Error('Queue::name parsed to nothing');

  const table = block(src, /pub const RULES: \[Rule; \d+\] = \[/, '\n];', 'RULES');
  const rules = table.split(/\bRule \{/).slice(1).map((body) => {
    const field = (re: RegExp, what: string): RegExpExecArray => {
      const m = re.exec(body);
      if (m === null) throw new Error(`a rule in topology.rs has no ${what}: ${body}`);
      return m;
    };
    const target = field(/target:\s*Queue::(\w+)/, 'target')[1];
    const queue = queueNames.get(target);
    if (queue === undefined) throw new Error(`unknown queue ${target}`);
    return {
      name: value(field(/name:\s*("(?:[^"\\]|\\.)*"|[A-Z_]+)/, 'name')[1]),
      source: value(field(/source:\s*("(?:[^"\\]|\\.)*"|[A-Z_]+)/, 'source')[1]),
      detailTypes: field(/detail_types:\s*&\[([^\]]*)\]/, 'detail_types')[1]
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map(value),
      jobNamePrefix: (() => {
        const m = field(/job_name_prefix:\s*(None|Some\(([^)]*)\))/, 'job_name_prefix');
        return m[1] === 'None' ? undefined : value(m[2]);
      })(),
      target: queue,
      defaultBus: field(/default_bus:\s*(true|false)/, 'default_bus')[1] === 'true',
    };
  });
  if (rules.length === 0) throw new Error('RULES parsed to nothing');
  return rules;
}

/** The queue names of `Queue::name()` in topology.rs. */
export function rustQueueNames(): string[] {
  const src = read('topology.rs');
  const nameFn = block(src, /pub fn name\(self\) -> &'static str \{/, '\n    }', 'Queue::name');
  const names = [...nameFn.matchAll(/Self::\w+ => "([^"]+)"/g)].map((m) => m[1]);
  if (names.length === 0) throw new Error('Queue::name parsed to nothing');
  return names;
}

/** The GSI names the DynamoDB adapter queries (`pub const GSI_…`). */
export function rustGsiNames(): string[] {
  const consts = stringConsts(read('adapters/aws/dynamodb.rs'));
  const names = [...consts].filter(([k]) => k.startsWith('GSI_')).map(([, v]) => v);
  if (names.length === 0) throw new Error('no GSI_ constants in dynamodb.rs');
  return names;
}

export interface RustGsi {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey?: string;
}

/**
 * The GSIs (with their keys) the local-AWS setup creates in `src/local_aws.rs`, the Rust
 * mirror of this stack: `gsi(GSI_CONST, "pk", None | Some("sk"))`.
 */
export function rustLocalGsis(): RustGsi[] {
  const src = fs.readFileSync(path.join(REPO_ROOT, 'src', 'local_aws.rs'), 'utf8');
  const consts = stringConsts(read('adapters/aws/dynamodb.rs'));
  const gsis = [...src.matchAll(/gsi\(\s*(GSI_[A-Z0-9_]+)\s*,\s*"([^"]+)"\s*,\s*(None|Some\(\s*"([^"]+)"\s*\))\s*\)/g)].map((m) => {
    const name = consts.get(m[1]);
    if (name === undefined) throw new Error(`local_aws.rs uses ${m[1]}, which dynamodb.rs does not define`);
    return { name, partitionKey: m[2], sortKey: m[4] };
  });
  if (gsis.length === 0) throw new Error('no gsi(...) calls in src/local_aws.rs');
  return gsis;
}

/**
 * Numeric defaults of `Settings::local` (shared/src/domain/settings.rs) and `Quotas::default`
 * (shared/src/domain/quotas.rs),
 * by camelCase name: `max_images_per_intent: 1_000` -> maxImagesPerIntent = 1000,
 * `pool_deadline_secs: 6 * 3600` -> poolDeadlineSecs = 21600.
 */
export function rustNumericDefaults(): Map<string, number> {
  const sources: Record<string, string> = {
    'Quotas::default': read('domain/quotas.rs'),
    'Settings::local': read('domain/settings.rs'),
  };
  const out = new Map<string, number>();
  const camel = (s: string): string => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  const num = (expr: string): number => {
    const shift = /^(\d+)\s*<<\s*(\d+)$/.exec(expr);
    if (shift !== null) return Number(shift[1]) * 2 ** Number(shift[2]);
    return expr.split('*').reduce((product, factor) => product * Number(factor.trim().replace(/_/g, '')), 1);
  };
  for (const [start, what] of [
    [/impl Default for Quotas \{/, 'Quotas::default'],
    [/pub fn local\(stage: &str\) -> Self \{/, 'Settings::local'],
  ] as const) {
    const body = block(sources[what], start, '\n    }\n', what);
    for (const m of body.matchAll(/^\s+([a-z_]+): (\d[\d_]*(?:\s*\*\s*\d[\d_]*)*|\d+\s*<<\s*\d+),\s*$/gm)) {
      out.set(camel(m[1]), num(m[2]));
    }
  }
  if (out.size === 0) throw new Error('no numeric defaults parsed from settings.rs and quotas.rs');
  return out;
}

export interface RustBelowMinimum {
  /** The values `BelowMinimum::from_str` accepts. */
  readonly values: string[];
  /** The value of `Settings::local`'s `below_minimum`. */
  readonly default: string;
}

/**
 * The below-minimum policies of shared/src/domain/settings.rs: the `"wait" => Ok(Self::Wait)`
 * arms of `BelowMinimum::from_str`, and `below_minimum: BelowMinimum::OnDemand` of
 * `Settings::local` resolved through those arms.
 */
export function rustBelowMinimum(): RustBelowMinimum {
  const src = read('domain/settings.rs');
  const fromStr = block(src, /impl std::str::FromStr for BelowMinimum \{/, '\n}\n', 'BelowMinimum::from_str');
  const arms = [...fromStr.matchAll(/"([a-z_]+)" => Ok\(Self::(\w+)\)/g)].map((m) => ({ value: m[1], variant: m[2] }));
  if (arms.length === 0) throw new Error('BelowMinimum::from_str parsed to nothing');
  const local = block(src, /pub fn local\(stage: &str\) -> Self \{/, '\n    }\n', 'Settings::local');
  const m = /below_minimum: BelowMinimum::(\w+),/.exec(local);
  if (m === null) throw new Error('Settings::local sets no below_minimum');
  const arm = arms.find((a) => a.variant === m[1]);
  if (arm === undefined) throw new Error(`BelowMinimum::${m[1]} has no from_str arm`);
  return { values: arms.map((a) => a.value), default: arm.value };
}

export interface RustRoute {
  readonly method: string;
  readonly path: string;
}

/**
 * The API routes intake's axum router serves (`router()` in functions/intake/src/router.rs):
 * each `.route("PATH", get(..).post(..)…)` call, its method functions (the `fallback`, a 405,
 * is not a route), with axum's `{job_id}` written as API Gateway's `{jobId}`.
 */
export function rustIntakeRoutes(): RustRoute[] {
  const src = fs.readFileSync(path.join(REPO_ROOT, 'functions', 'intake', 'src', 'router.rs'), 'utf8');
  const body = block(src, /pub fn router\(deps: Deps, auth: Auth\) -> Router \{/, '.with_state(state)', 'intake router()');
  const routes: RustRoute[] = [];
  for (const chunk of body.split('.route(').slice(1)) {
    const p = /^\s*"([^"]+)"/.exec(chunk);
    if (p === null) throw new Error(`a .route( without a path literal: ${chunk.slice(0, 80)}`);
    const methods = chunk.split('.fallback(')[0];
    for (const m of methods.matchAll(/(?:^|[\s.(,])(get|post|delete|put|patch)\(/g)) {
      routes.push({ method: m[1].toUpperCase(), path: p[1].replace('{job_id}', '{jobId}') });
    }
  }
  if (routes.length === 0) throw new Error('no routes parsed from intake router()');
  return routes;
}

/**
 * The key schema of the uploads table the local-AWS setup creates (`src/local_aws.rs`): the
 * `.key_schema(key("pk", KeyType::Hash)?)` calls of the `create_table()` for
 * `stack.uploads_table`, in order, as `[name, "HASH" | "RANGE"]`.
 */
export function rustLocalUploadsKeys(): Array<[string, string]> {
  const src = fs.readFileSync(path.join(REPO_ROOT, 'src', 'local_aws.rs'), 'utf8');
  const call = block(src, /\.table_name\(&stack\.uploads_table\)/, '.send()', 'the uploads create_table in local_aws.rs');
  const keys = [...call.matchAll(/key_schema\(\s*key\(\s*"([^"]+)"\s*,\s*KeyType::(Hash|Range)\s*\)/g)]
    .map((m): [string, string] => [m[1], m[2] === 'Hash' ? 'HASH' : 'RANGE']);
  if (keys.length === 0) throw new Error('no key_schema(...) for the uploads table in src/local_aws.rs');
  return keys;
}
