#!/usr/bin/env bash
# Lints a synthesized CloudFormation template with tools we did not write: cfn-lint (0 errors;
# the warnings kept are listed with reasons in infra/.cfnlintrc.yaml) and checkov (every skip
# reviewed, with its reason, in infra/.checkov.yaml). Both are pinned and installed into
# .venv-lint (their own venv: checkov's dependencies must not move moto's).
#   scripts/lint-template.sh infra/cdk.out/BatchOrchestrator-dev.template.json
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION="1.58.0"
CHECKOV_VERSION="3.3.30"
VENV=".venv-lint"
template="${1:?usage: scripts/lint-template.sh <template.json>}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION" \
  || ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "checkov==$CHECKOV_VERSION"
fi

echo "== cfn-lint $CFN_LINT_VERSION"
"$VENV/bin/cfn-lint" --config-file infra/.cfnlintrc.yaml -- "$template"
echo "cfn-lint: 0 errors, 0 warnings beyond the reviewed ones"
echo "== checkov $CHECKOV_VERSION"
# Offline: no guideline download from the vendor's platform (BC_SKIP_MAPPING, --skip-download).
BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --config-file infra/.checkov.yaml --skip-download -f "$template"
