// Run as another user by tests (probeMethodsAs): reads { jobs, methods }
// as JSON on stdin, walks every job's socket and prints the outcomes as JSON.
import { unixTarget } from '@virtd/client';
import { probeMethods, type MethodShape, type ProbeJob } from './access.js';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => (input += d));
process.stdin.on('end', () => {
  const { jobs, methods } = JSON.parse(input) as { jobs: ProbeJob[]; methods: MethodShape[] };
  void Promise.all(jobs.map((j) => probeMethods(unixTarget(j.socket), methods, j.options)))
    .then((r) => process.stdout.write(JSON.stringify(r)));
});
