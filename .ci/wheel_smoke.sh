#!/usr/bin/env bash
# A wheel built from this checkout, used as a new user would: a clean venv outside the
# checkout, the built-in model, `probe`, then `baseline create` with the default suite
# (its sample set ships inside the wheel) and `check` against that baseline.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Build from a copy of the files git would commit, so no stale build/ directory leaks in.
mkdir "$work/src"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -d -t "$work/src")
"$root/.venv/bin/pip" wheel -q --no-deps -w "$work/dist" "$work/src"
python3.11 -m venv "$work/venv"
"$work/venv/bin/pip" install -q torch==2.13.0 "$work"/dist/repcheck-*.whl
cd "$work"  # nothing from the source tree is importable from here
export REPCHECK_CACHE="${REPCHECK_TEST_CACHE:-$root/.cache/test-cache}"  # the model the tests fetched
rc="$work/venv/bin/repcheck"
"$rc" probe "The committee approved the new budget after a long debate." --repeats 4 --quiet
"$rc" baseline create -o baseline.json --quiet
"$rc" check --baseline baseline.json --quiet
# the legitimate-repetition suite ships inside the wheel: a handful of its cases, by name
"$work/venv/bin/python" -c "from repcheck.legit import load_legit_suite; s = load_legit_suite(); assert len(s) >= 150, len(s)"
echo "wheel smoke test: probe, baseline create (default suite), check and the shipped legit suite passed from $(ls "$work"/dist)"
