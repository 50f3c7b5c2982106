"""The developer docs' Python snippet (analytics summary), run with `requests`:

    OPSIQ_URL=http://127.0.0.1:8080 OPSIQ_KEY=opq_... target/pyenv/bin/python examples/clients/analytics.py

Prints the decoded response (a Python dict, as the docs' `print(r.json())` does); on an HTTP
error it exits 1 with the status and the error body instead of a traceback.
"""

import os
import sys

import requests

base = os.environ.get("OPSIQ_URL", "").rstrip("/")
key = os.environ.get("OPSIQ_KEY", "")
if not base or not key:
    sys.exit("analytics.py: set OPSIQ_URL (e.g. http://127.0.0.1:8080) and OPSIQ_KEY (opq_...)")

r = requests.get(
    f'{base}/api/v1/analytics/summary',
    headers={'Authorization': f'Bearer {key}'},
    params={'preset': '30d'},
    timeout=20,
)
try:
    r.raise_for_status()
except requests.HTTPError as e:
    sys.exit(f"analytics.py: {e}: {r.text}")
print(r.json())
