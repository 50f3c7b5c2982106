#!/usr/bin/env bash
# The developer docs' curl lines, run as written against OPSIQ_URL with the key in OPSIQ_KEY.
# Each response is printed as it arrives; the first HTTP error stops the script (exit 22) after
# printing the error body, which names the problem and carries the request_id.
set -euo pipefail

: "${OPSIQ_URL:?set OPSIQ_URL to the server, e.g. http://127.0.0.1:8080}"
: "${OPSIQ_KEY:?set OPSIQ_KEY to an API key (opq_...)}"
OPSIQ_URL="${OPSIQ_URL%/}"
trap 'echo; echo "curl.sh: the request on line $LINENO failed (HTTP error body, if any, above)" >&2' ERR

# Create a contact (contacts.write).
curl --fail-with-body --silent --show-error -X POST "$OPSIQ_URL/api/v1/contacts" \
-H "Authorization: Bearer $OPSIQ_KEY" \
-H "Content-Type: application/json" \
-d '{"name":"Ada Lovelace","email":"ada@example.com","tags":["trial"]}'
echo

# List tickets (tickets.read).
curl --fail-with-body --silent --show-error -H "Authorization: Bearer $OPSIQ_KEY" \
"$OPSIQ_URL/api/v1/tickets"
echo

# Analytics summary for the last 30 days (analytics.read).
curl --fail-with-body --silent --show-error -H "Authorization: Bearer $OPSIQ_KEY" \
"$OPSIQ_URL/api/v1/analytics/summary?preset=30d"
echo

# The OpenAPI contract ("always available"; the docs send no key for it).
curl --fail-with-body --silent --show-error "$OPSIQ_URL/api/v1/openapi.php"
echo
