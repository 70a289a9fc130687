#!/usr/bin/env bash
# Re-extract the control bot's messages, merge them into the en/ru catalogs, and compile the .mo files.
# Run after changing any _("...") string in controlbot/, translate the new ru entries, run it again,
# and commit both the .po and the .mo files (a fresh install uses the .mo as shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
LOCALES=controlbot/locales
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
"$PYBABEL" extract -k _ -k __ --no-location --sort-output --project botrunner -o "$pot" controlbot
for lang in en ru; do
  if [ -f "$LOCALES/$lang/LC_MESSAGES/messages.po" ]; then
    "$PYBABEL" update --no-fuzzy-matching -i "$pot" -d "$LOCALES" -l "$lang"
  else
    "$PYBABEL" init -i "$pot" -d "$LOCALES" -l "$lang"
  fi
done
"$PYBABEL" compile -d "$LOCALES" --statistics
