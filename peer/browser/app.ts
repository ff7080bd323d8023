/**
 * The join page (`/` or `/join`): a tab becomes a full peer of a room's
 * ring. Room, token and backend come prefilled from the URL
 * (`/?room=main&token=...&backend=webgl`), so a link is enough to join.
 * Leaving with the button is graceful (between steps); closing the tab
 * sends the goodbyes and the `leave` at once (`pagehide`).
 *
 * TODO(#5): the data comes from the server only; loading it from a file
 * the user picks (for a server that does not serve the room's data set)
 * is not done. A tab keeps no checkpoint: closed, it joins again fresh.
 */
import { isTopkError } from '../../shared/errors.ts';
import { isBrowserBackendChoice } from './backend.ts';
import { BrowserSession } from './session.ts';
import { byId, PeerView } from './view.ts';

/** Where the server serves the wasm backend's files (serve.ts). */
const WASM_PATHS = '/browser/wasm/';
/** Test samples a tab downloads to evaluate on. */
const TEST_SAMPLES = 2000;

const view = new PeerView();
const form = byId('join-form') as HTMLFormElement;
const roomInput = byId('room') as HTMLInputElement;
const tokenInput = byId('token') as HTMLInputElement;
const backendSelect = byId('backend') as HTMLSelectElement;
const button = byId('join') as HTMLButtonElement;
let session: BrowserSession | undefined;

function prefill(): void {
  const params = new URLSearchParams(location.search);
  roomInput.value = params.get('room') ?? 'main';
  tokenInput.value = params.get('token') ?? '';
  const backend = params.get('backend') ?? 'auto';
  backendSelect.value = isBrowserBackendChoice(backend) ? backend : 'auto';
  linkDashboard();
}

function linkDashboard(): void {
  const link = byId('dashboard-link') as HTMLAnchorElement;
  link.href = `/dashboard?room=${encodeURIComponent(roomInput.value)}`;
}

async function join(): Promise<void> {
  const backend = backendSelect.value;
  view.reset();
  setFormEnabled(false);
  const current = new BrowserSession({
    server: location.origin,
    room: roomInput.value.trim(),
    token: tokenInput.value === '' ? undefined : tokenInput.value,
    backend: isBrowserBackendChoice(backend) ? backend : 'auto',
    wasmPaths: WASM_PATHS,
    testSamples: TEST_SAMPLES,
    onEvent: (event) => view.show(event),
  });
  session = current;
  try {
    await current.run();
  } catch (error) {
    if (isTopkError(error)) view.failed(error.code, error.message);
    else view.failed('ERR_INTERNAL', String(error));
  } finally {
    session = undefined;
    setFormEnabled(true);
  }
}

function setFormEnabled(enabled: boolean): void {
  roomInput.disabled = !enabled;
  tokenInput.disabled = !enabled;
  backendSelect.disabled = !enabled;
  button.disabled = false;
  button.textContent = enabled ? 'Join' : 'Leave';
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (session === undefined) {
    void join();
    return;
  }
  session.stop();
  button.disabled = true;
  view.status('leaving after this step…');
});
roomInput.addEventListener('input', linkDashboard);
// pagehide fires on closing and on navigating away, also where the page
// could be kept in the back/forward cache; either way the ring must not
// wait for this tab.
window.addEventListener('pagehide', () => session?.leaveNow());

prefill();
