#!/usr/bin/env python3
"""Instructions a request costs the server, counted by valgrind's callgrind.

Timings on a shared 2-core machine drift by 10 to 25% between runs; instruction counts do not
(two runs of one build agree within 0.2%). This runs `opsiq serve` under callgrind on a copy of
a seeded database, sends warm-up requests on one keep-alive connection, zeroes the counters,
sends N requests of one operation, and prints the user-space instructions per request of all
the server's threads (the writer's batches included; the kernel's work is not counted).
`create` sends `POST /api/v1/tickets` as the load benchmark does, one at a time, so each is its
own commit (under load, concurrent creates share commits).

A seeded database comes from the load benchmark:
    OPSIQ_BENCH_KEEP=1 OPSIQ_BENCH_SCALE=0 OPSIQ_BENCH_ONLY=none cargo bench --bench load
    python3 benches/instructions.py --db target/bench/load-XXXX/opsiq.db --op point

Needs valgrind (`apt-get install valgrind`) and a release build of `opsiq`. Note that valgrind
does not run the CPU's SHA extensions, so a key's SHA-256 takes its software path here (about
3,500 instructions a request that the real CPU does not run).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

# The first ten of the first names benches/load/seed.rs gives its contacts (FIRST there).
FIRST = ["Ada", "Alan", "Alice", "Amara", "Anna", "Arjun", "Beatriz", "Ben", "Carla", "Carlos"]


def merge_full_text_indexes(db):
    """Does now the merging the server's writer would do while idle (upkeep.rs: FTS5 'merge'
    steps of 32 pages with usermerge 2, until a step changes nothing). A freshly seeded
    database holds several segments, and their merging (about 0.3 s of CPU, 800 million
    instructions at 100,000 contacts) would otherwise land among the requests counted."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for table in ("contacts_fts", "kb_articles_fts"):
            while True:
                before = conn.total_changes
                conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', 32)")
                if conn.total_changes - before < 2:
                    break
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="a database seeded by the load benchmark")
    parser.add_argument("--op", required=True, choices=["point", "search", "list", "create"])
    parser.add_argument("-n", type=int, default=1000, help="requests counted (default 1000)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--binary", default="target/release/opsiq")
    parser.add_argument("--profile", help="where to keep the callgrind profile, for callgrind_annotate")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install valgrind")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: cargo build --release -p opsiq-cli")

    with tempfile.TemporaryDirectory(prefix="opsiq-instructions-") as work:
        db = os.path.join(work, "opsiq.db")
        shutil.copy(args.db, db)
        made = subprocess.run(
            [args.binary, "--db", db, "--json", "keys", "create", "--name", "instructions",
             "--scopes", "tickets.read,tickets.write,contacts.read"],
            capture_output=True, text=True, check=True)
        key = json.loads(made.stdout)
        secret, workspace = key["secret"], key["workspace_id"]
        with sqlite3.connect(db) as conn:
            tickets = [r[0] for r in conn.execute(
                "SELECT id FROM tickets WHERE workspace_id = ? ORDER BY id", (workspace,))]
            department = conn.execute(
                "SELECT min(id) FROM departments WHERE workspace_id = ?", (workspace,)).fetchone()[0]
        if not tickets:
            sys.exit(f"{args.db} holds no tickets of workspace {workspace}")
        merge_full_text_indexes(db)

        def path(i):
            if args.op == "point":
                return f"/api/v1/tickets/{tickets[(i * 7919) % len(tickets)]}"
            if args.op == "search":
                return f"/api/v1/contacts?q={FIRST[i % len(FIRST)][:3].lower()}&limit=25"
            if args.op == "list":
                return f"/api/v1/tickets?status=open&department_id={department}&limit=50"
            return "/api/v1/tickets"

        def body(i):
            # As the load benchmark's POST: a thousand customers, found after their first ticket.
            if args.op != "create":
                return None
            return json.dumps({
                "customer_email": f"customer{i % 1000}@load.example",
                "customer_name": "Load Customer",
                "subject": "Instructions benchmark ticket",
                "body": "The parcel never arrived.",
                "priority": "high",
                "tags": ["load"],
            })

        out = os.path.join(work, "callgrind.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", args.binary,
             "--db", db, "serve", "--bind", "127.0.0.1:0", "--rate-limit", "1000000000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, OPSIQ_LOG="warn"))
        try:
            first = server.stdout.readline()
            found = re.search(r"127\.0\.0\.1:(\d+)", first)
            if not found:
                sys.exit(f"the server did not say where it listens: {first!r}")
            conn = http.client.HTTPConnection("127.0.0.1", int(found.group(1)), timeout=600)

            def send(i):
                method = "POST" if args.op == "create" else "GET"
                headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
                conn.request(method, path(i), body=body(i), headers=headers)
                answer = conn.getresponse()
                text = answer.read()
                if answer.status not in (200, 201):
                    sys.exit(f"{method} {path(i)} answered {answer.status}: {text[:200]!r}")

            for i in range(args.warmup):
                send(i)
            # Let the warm-up's lingering audit batch commit before counting starts.
            time.sleep(1.5)
            subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                           capture_output=True)
            for i in range(args.n):
                send(args.warmup + i)
            time.sleep(1.5)  # and the counted requests' batch
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                           capture_output=True)
        finally:
            server.terminate()
            server.wait()
        dump = out + ".1"
        with open(dump) as f:
            total = next(int(line.split()[1]) for line in f
                         if line.startswith(("summary:", "totals:")))
        if args.profile:
            shutil.copy(dump, args.profile)
        print(f"{args.op}: {total / args.n:,.0f} instructions a request ({total:,} for {args.n})")


if __name__ == "__main__":
    main()
