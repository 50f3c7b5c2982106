// The developer docs' JavaScript snippet (creates a ticket), run with Node 20's global fetch:
//   OPSIQ_URL=http://127.0.0.1:8080 OPSIQ_KEY=opq_... node examples/clients/fetch.mjs
// Prints the ticket as JSON; exits 1 unless the response is 2xx and `success` is true.

const base = process.env.OPSIQ_URL?.replace(/\/$/, '');
const key = process.env.OPSIQ_KEY;
if (!base || !key) {
  console.error('fetch.mjs: set OPSIQ_URL (e.g. http://127.0.0.1:8080) and OPSIQ_KEY (opq_...)');
  process.exit(2);
}

const res = await fetch(`${base}/api/v1/tickets`, {
  method: 'POST',
  headers: {
    Authorization: `Bearer ${key}`,
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    customer_email: 'customer@example.com',
    subject: 'Need help',
    body: 'The checkout page is failing.'
  })
});
const ticket = await res.json();

if (!res.ok || !ticket.success) {
  console.error(`fetch.mjs: HTTP ${res.status}: ${JSON.stringify(ticket)}`);
  process.exit(1);
}
console.log(JSON.stringify(ticket));
