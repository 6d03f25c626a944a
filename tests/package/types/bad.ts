// Must NOT compile: each line misuses the API. The test counts one error per line marked.
import { connect } from 'codepane';

export async function misuse(): Promise<void> {
  const s = await connect({ server: 1 });                                   // error: server is a string
  await s.code.run(42, 'python');                                           // error: code is a string
  await s.code.run('1', 'python', '60');                                    // error: timeoutS is a number
  await s.code.run('1', 'python', 60, { onStdout: (n: number) => n });      // error: chunks are strings
  await s.code.run('1', 'python', 60, { streamBeta: 'yes' });               // error: streamBeta is boolean
  await connect({ wsAuth: 'cookie' });                                      // error: not a WsAuth
  const r = await s.code.run('1', 'python');
  r.success = 'true';                                                       // error: success is boolean
  r.logs.stdout.push(1);                                                    // error: chunks are strings
}

import { upgrade } from 'codepane/element';
upgrade('pre', { timeout: 30 }); // error: attribute values are strings
document.querySelector('code-pane')?.run('print(1)'); // error: run() takes no code
