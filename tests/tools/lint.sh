#!/usr/bin/env bash
# lint.sh - hostpatrol's machine-checked style (docs/CONTRIBUTING.md): clang-format, cppcheck,
# banned functions, shellcheck. Prints every finding and exits non-zero if there is any.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
fail=0
mapfile -t csrc < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^build/')
mapfile -t shsrc < <(git ls-files -co --exclude-standard -- '*.sh' '.ci/run')

echo "lint: clang-format (${#csrc[@]} files)"
clang-format --dry-run --Werror "${csrc[@]}" || fail=1

echo "lint: cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
  --inline-suppr --suppress=missingIncludeSystem -D__GNUC__ -Iinclude -Icontroller \
  controller tests/unit || fail=1

# Banned: unbounded string writes, unchecked number parsing, non-reentrant or unsafe calls.
echo "lint: banned functions"
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|atoi|atol|atoll|atof|gets|strtok|tmpnam|tempnam|mktemp|asctime|ctime|gmtime|localtime|rand|signal)[[:space:]]*\('
if grep -nE "$banned" "${csrc[@]}" | grep -v 'lint: allow'; then
  echo "lint: banned function used (see docs/CONTRIBUTING.md for the replacement)"
  fail=1
fi

echo "lint: shellcheck (${#shsrc[@]} files)"
shellcheck -x -S warning "${shsrc[@]}" || fail=1

[ $fail -eq 0 ] && echo "lint: clean"
exit $fail
