#!/usr/bin/env bash
# Until the first release, the schema is one initial migration regenerated from the models.
# (After a release, use `make migration m="…"` to add a migration instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/*_0001_initial_schema.py
KOPPEL_DATABASE_URL="sqlite+aiosqlite:///$tmp/gen.db" .venv/bin/alembic revision --autogenerate \
  -m "initial schema" --rev-id 0001 >/dev/null 2>&1
# autogenerate renders JSONB(astext_type=Text()) without importing Text
sed -i 's/astext_type=Text()/astext_type=sa.Text()/g' migrations/versions/*_0001_initial_schema.py
sed -i 's/^Create Date: .*/Create Date: 2026-11-21/' migrations/versions/*_0001_initial_schema.py
rm -rf "$tmp"
echo "regenerated $(ls migrations/versions/*_0001_initial_schema.py)"
