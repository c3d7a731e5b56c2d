// Run as another user by tests: one health check on a socket, the outcome
// printed as JSON (served, refused at connect, or the gRPC status).
import { Connection, unixTarget } from '@virtd/client';
import { HealthService } from '@virtd/protocol/health';

const socket = process.argv[2]!;
const conn = new Connection(unixTarget(socket));
conn.unary(HealthService, 'Check', {}, { deadlineMs: 5000 }).then(
  (r) => { process.stdout.write(JSON.stringify({ ok: true, reply: r })); },
  (e: Error) => { process.stdout.write(JSON.stringify({ ok: false, error: e.message })); },
).finally(() => conn.close());
