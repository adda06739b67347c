#!/usr/bin/env bash
# Lints infra/template.yaml. Needs only python3 (3.10+) and access to the Python package index.
#
#   infra/check.sh            # from anywhere; exits non-zero on any finding
#
# Checks:
#   cfn-lint       the template as written (errors, warnings and informational findings)
#   sam-translate  the SAM transform succeeds and its CloudFormation output lints clean
#                  (catches what cfn-lint's SAM schema does not: invalid event/destination
#                  combinations, circular dependencies between generated resources)
#   checkov        security policies; each skip is justified in the template's Metadata
#
# Each tool gets its own venv (checkov pins an older boto3 than cfn-lint's SAM translator):
#   REIMPORT_CFNLINT_VENV  default <workspace>/.venv-cfnlint  (cfn-lint + aws-sam-translator)
#   REIMPORT_CHECKOV_VENV  default <workspace>/.venv-checkov  (checkov)
# Versions are pinned so a new upstream rule cannot turn the check red overnight; bump them here.
set -uo pipefail

infra_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$infra_dir/.." && pwd)"
template="$infra_dir/template.yaml"
python="${PYTHON:-python3}"

cfnlint_venv="${REIMPORT_CFNLINT_VENV:-$workspace/.venv-cfnlint}"
checkov_venv="${REIMPORT_CHECKOV_VENV:-$workspace/.venv-checkov}"
cfnlint_version="${CFNLINT_VERSION:-1.58.0}"
sam_translator_version="${SAM_TRANSLATOR_VERSION:-1.115.0}"
checkov_version="${CHECKOV_VERSION:-3.3.30}"

passed=0
failed=0
failures=()

# ensure_venv DIR REQUIREMENT...: creates DIR if missing, installs the pinned requirements
# (a no-op without network when they are already satisfied).
ensure_venv() {
    local dir="$1"
    shift
    if [[ ! -x "$dir/bin/python" ]]; then
        echo "infra: creating venv $dir" >&2
        "$python" -m venv "$dir" || return 1
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip || return 1
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

record() {
    local name="$1" status="$2"
    if [[ "$status" -eq 0 ]]; then
        passed=$((passed + 1))
        echo "infra: $name passed"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "infra: $name FAILED (exit $status)"
    fi
}

run_cfnlint() {
    "$cfnlint_venv/bin/cfn-lint" --include-checks I -- "$template"
}

# Runs the SAM transform offline (as `sam deploy` would on the service side), with the local
# CodeUri replaced by the S3 location `sam package` would upload to, then lints the result.
run_sam_translate() {
    local out
    out="$(mktemp "${TMPDIR:-/tmp}/reimport-template.XXXXXX.json")" || return 1
    AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$cfnlint_venv/bin/python" - "$template" "$out" <<'PY' || { rm -f "$out"; return 1; }
import json
import sys

from cfnlint.decode import decode
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

template_path, out_path = sys.argv[1], sys.argv[2]
template, errors = decode(template_path)
if errors:
    for error in errors:
        print(error, file=sys.stderr)
    sys.exit(1)
for name, resource in template["Resources"].items():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://reimport-artifacts/" + name


class NoManagedPolicies:
    def load(self):
        return {}


try:
    translated = transform(
        json.loads(json.dumps(template, default=str)), {"BucketName": "reimport-check"}, NoManagedPolicies()
    )
except InvalidDocumentException as error:
    for cause in error.causes:
        print(f"sam-translate: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(out_path, "w", encoding="utf-8") as out:
    json.dump(translated, out, indent=1, default=str)
PY
    "$cfnlint_venv/bin/cfn-lint" --include-checks I -- "$out"
    local status=$?
    rm -f "$out"
    return "$status"
}

run_checkov() {
    # --skip-download: no call to the vendor's platform; checks and inline skips work offline.
    "$checkov_venv/bin/checkov" --quiet --compact --skip-download \
        --framework cloudformation -f "$template"
}

if ensure_venv "$cfnlint_venv" "cfn-lint==$cfnlint_version" "aws-sam-translator==$sam_translator_version"; then
    run_cfnlint
    record cfn-lint $?
    run_sam_translate
    record sam-translate $?
else
    record cfn-lint 1
    record sam-translate 1
fi

if ensure_venv "$checkov_venv" "checkov==$checkov_version"; then
    run_checkov
    record checkov $?
else
    record checkov 1
fi

if [[ "$failed" -gt 0 ]]; then
    echo "infra: $passed passed, $failed failed (${failures[*]})"
    exit 1
fi
echo "infra: $passed passed, 0 failed"
