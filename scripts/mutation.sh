#!/usr/bin/env bash
# Mutation testing of CAPE's core modules with mutmut 3 (docs/testing.md). Not part of CI: slow.
#
#   scripts/mutation.sh [--fresh] [--survivors] [--jobs N] [MODULE ...]
#
# MODULE is one of: losses samplers augment stats preprocessing pretrain-data ood store
# pretrain-train ingest (default: all, in that order). Each module runs in its own scratch copy
# of the working tree (.mutmut/MODULE/, gitignored; tracked + untracked-not-ignored files), whose
# [tool.mutmut] section is rewritten to mutate only that module and to run only the tests that
# exercise it, so a mutant costs seconds. Results are kept between runs (mutmut resumes);
#   --fresh      throw the module's previous mutants and results away first;
#   --survivors  re-run only the mutants that survived last time (after adding tests), and
#                those a changed test selection left unchecked;
#   --jobs N     mutmut --max-children (default 1: the machine is shared).
# Prints one Markdown table row per module (mutants, killed, survived, timeout, no tests, score)
# and lists the surviving mutants with their changed lines in .mutmut/MODULE/survivors.txt.
set -euo pipefail

root="$(git rev-parse --show-toplevel)"
cd "$root"

fresh=0
survivors=0
jobs=1
modules=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --fresh) fresh=1 ;;
        --survivors) survivors=1 ;;
        --jobs) jobs="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "mutation.sh: unknown option $1" >&2; exit 2 ;;
        *) modules+=("$1") ;;
    esac
    shift
done
all=(losses samplers augment stats preprocessing pretrain-data ood store pretrain-train ingest)
[[ ${#modules[@]} -eq 0 ]] && modules=("${all[@]}")

# module -> "only_mutate globs|test paths|pytest deselections" (space-separated within a field).
# Multi-process (DDP) tests are deselected: each costs ~40 s per mutant on a loaded machine; the
# code paths they cover are exercised by single-process tests with a fake process group where one
# exists (see docs/testing.md).
spec() {
    case "$1" in
        losses) echo "src/cape/losses.py|tests/pretrain/test_losses.py tests/pretrain/test_properties.py tests/mutation/test_losses_mutants.py|tests/pretrain/test_losses.py::test_two_process_loss_and_gradients_equal_single_process" ;;
        samplers) echo "src/cape/samplers.py|tests/pretrain/test_samplers.py tests/pretrain/test_properties.py::test_sampler_invariants tests/mutation/test_samplers_mutants.py|" ;;
        augment) echo "src/cape/augment.py|tests/pretrain/test_augment.py tests/pretrain/test_data.py tests/mutation/test_augment_mutants.py|" ;;
        stats) echo "src/cape/stats/*|tests/stats|" ;;  # its mutant-killing tests: tests/stats/test_stats_mutants.py
        preprocessing) echo "src/cape/preprocessing.py|tests/test_preprocessing.py tests/test_qc.py tests/mutation/test_preprocessing_mutants.py|" ;;
        pretrain-data) echo "src/cape/pretrain/data.py|tests/pretrain/test_data.py tests/mutation/test_pretrain_data_mutants.py|" ;;
        ood) echo "src/cape/protocols/ood.py|tests/protocols/test_ood_pool.py tests/protocols/test_ood.py tests/mutation/test_ood_mutants.py|" ;;
        store) echo "src/cape/store/*|tests/test_store.py tests/mutation/test_store_mutants.py|" ;;
        pretrain-train) echo "src/cape/pretrain/train.py|tests/pretrain/test_train.py tests/pretrain/test_resume_log.py tests/mutation/test_pretrain_train_mutants.py|" ;;
        ingest) echo "src/cape/ingest/*|tests/ingest tests/readers/test_code15_ingest.py tests/mutation/test_ingest_mutants.py|" ;;
        *) echo "mutation.sh: unknown module '$1' (one of: ${all[*]})" >&2; return 2 ;;
    esac
}

printf '| module | mutants | killed | survived | timeout | no tests | score |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for module in "${modules[@]}"; do
    s="$(spec "$module")"
    IFS='|' read -r globs tests deselect <<<"$s"
    work="$root/.mutmut/$module"
    mkdir -p "$work"
    [[ $fresh -eq 1 ]] && rm -rf "$work/mutants"
    # Scratch copy of the working tree (tracked and untracked-not-ignored files that exist).
    git ls-files -z -co --exclude-standard \
        | python3 -c 'import os,sys; sys.stdout.write("".join(p+"\0" for p in sys.stdin.read().split("\0") if p and os.path.isfile(p)))' \
        | tar --null -T - -cf - | tar -xf - -C "$work"
    # Rewrite [tool.mutmut] for this module (the section is the last one in pyproject.toml).
    MUT_GLOBS="$globs" MUT_TESTS="$tests" MUT_DESELECT="$deselect" python3 - "$work/pyproject.toml" <<'EOF'
import json, os, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
head = text[: text.index("[tool.mutmut]")]
here = os.path.dirname(path)
tests = [t for t in os.environ["MUT_TESTS"].split() if os.path.exists(os.path.join(here, t.split("::")[0]))]
sel = tests + [a for d in os.environ["MUT_DESELECT"].split() for a in ("--deselect", d)]
section = (
    "[tool.mutmut]\n"
    'source_paths = ["src"]\n'
    f"only_mutate = {json.dumps(os.environ['MUT_GLOBS'].split())}\n"
    'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    f"pytest_add_cli_args_test_selection = {json.dumps(sel)}\n"
    # the scratch copy sits inside the developer's git checkout: keep mutmut away from git
    "use_git_change_detection = false\n"
    # mutmut's CPU-time limit is 2 * multiplier * (tests' time + constant); its default
    # multiplier 15 lets one mutant that loops cost a quarter of an hour
    "timeout_multiplier = 3.0\n"
    "timeout_constant = 5.0\n"
)
open(path, "w", encoding="utf-8").write(head + section)
EOF
    (
        cd "$work"
        export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
        if [[ $survivors -eq 1 && -d mutants ]]; then
            mapfile -t names < <(mutmut results 2>/dev/null | sed -n 's/^ *\([^ ]*\): \(survived\|no tests\|timeout\|suspicious\|not checked\)$/\1/p')
            if [[ ${#names[@]} -gt 0 ]]; then
                mutmut run --max-children "$jobs" "${names[@]}" >"$work/run.log" 2>&1 || true
            fi
        else
            mutmut run --max-children "$jobs" >"$work/run.log" 2>&1 || true
        fi
        mutmut export-cicd-stats >/dev/null 2>&1 || true
        # One line per surviving mutant: its name and the changed lines (`mutmut show NAME`
        # gives the full diff but costs seconds per call).
        mutmut results 2>/dev/null | python3 -c '
import ast, difflib, os, re, sys
cache = {}
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    if status not in ("survived", "no tests"):
        continue
    module, function = re.match(r"(.*)\.(x.*)__mutmut_\d+$", name).groups()
    path = "mutants/src/" + module.replace(".", "/") + ".py"
    if not os.path.isfile(path):  # a package: cape.ingest -> cape/ingest/__init__.py
        path = path[: -len(".py")] + "/__init__.py"
    if path not in cache:
        text = open(path, encoding="utf-8").read()
        lines = text.splitlines()
        cache[path] = {
            n.name: lines[n.lineno - 1 : n.end_lineno]
            for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
    found = cache[path]
    original, mutant = found.get(function + "__mutmut_orig"), found.get(name.rsplit(".", 1)[1])
    changed = [d.strip() for d in difflib.unified_diff(original[1:], mutant[1:], lineterm="", n=0)
               if d[:1] in "+-" and d[:3] not in ("---", "+++")] if original and mutant else []
    print(f"{name} ({status}): " + " || ".join(changed))
' >"$work/survivors.txt" || true
    )
    python3 - "$module" "$work/mutants/mutmut-cicd-stats.json" <<'EOF'
import json, sys
module, path = sys.argv[1], sys.argv[2]
try:
    s = json.load(open(path))
except OSError:
    print(f"| {module} | run failed, see .mutmut/{module}/run.log | | | | | |")
    sys.exit(0)
tested = s["total"] - s["skipped"]
score = 100.0 * (s["killed"] + s["timeout"]) / tested if tested else 0.0
print(f"| {module} | {s['total']} | {s['killed']} | {s['survived']} | {s['timeout']} "
      f"| {s['no_tests']} | {score:.1f} % |")
EOF
done
