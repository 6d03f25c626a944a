// Compiles under --strict: how a TypeScript user writes against the package's types.
import { connect, heapInUse, resultText } from 'codepane';
import type { EnhancedCodeExecutionResult, ExecutionResult, Session, StreamError, StreamErrorPayload } from 'codepane';

export async function tour(server: string): Promise<string> {
  const session: Session = await connect({ server, wsAuth: 'header' });
  const adopted = await connect({ linkUrl: session.linkUrl, wsUrl: session.wsUrl, token: session.token, toolList: [] });
  const controller = new AbortController();
  const r: EnhancedCodeExecutionResult = await session.code.run('print(1)', 'python', 30, {
    streamBeta: true,
    onStdout: (chunk: string) => chunk.length,
    onStderr: (chunk) => chunk.toUpperCase(),
    onResult: (item: ExecutionResult) => item.isMainResult,
    onError: (e: StreamErrorPayload | StreamError) => (e instanceof Error ? e.name : e.code),
    signal: controller.signal,
  });
  const count: number | undefined = r.executionCount;
  const first = r.results[0]?.png ?? r.error?.traceback ?? r.logs.stderr.join('');
  await adopted.close();
  await session.close();
  return `${resultText(r)} ${count} ${first} ${session.streamState} ${heapInUse()}`;
}

// The element (codepane/element): typed properties, events and upgrade().
import { CodePane, canonicalLanguage, upgrade } from 'codepane/element';
import type { CodePaneDoneDetail, RunStatus } from 'codepane/element';

export async function widget(): Promise<RunStatus | null> {
  const pane = document.querySelector('code-pane');
  if (!pane) return null;
  const same: CodePane = pane;
  same.language = canonicalLanguage('py') ?? 'python';
  same.code = 'print(1)';
  same.timeout = 10;
  let status: RunStatus | null = null;
  pane.addEventListener('codepane-done', (e) => {
    const detail: CodePaneDoneDetail = e.detail;
    status = detail.status;
  });
  const result = await pane.run();
  const made: CodePane[] = upgrade('pre > code.language-r', { timeout: '30' });
  return result.success && made.length >= 0 ? status : 'failed';
}
