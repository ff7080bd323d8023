/**
 * Node's `setImmediate` for the browser bundle, injected wherever bundled
 * code names it (the WebRTC channel hands signals on from a fresh task).
 * A message to a MessageChannel runs as a new task without the 4 ms
 * clamp that nested `setTimeout(fn, 0)` calls get.
 */

const queue: (() => void)[] = [];
let channel: MessageChannel | undefined;

function runQueued(): void {
  const callback = queue.shift();
  callback?.();
}

/** Runs `callback(...args)` in a new task, after pending I/O events. */
export function setImmediate<A extends unknown[]>(
  callback: (...args: A) => void,
  ...args: A
): void {
  if (channel === undefined) {
    channel = new MessageChannel();
    channel.port1.onmessage = runQueued;
  }
  queue.push(() => callback(...args));
  channel.port2.postMessage(null);
}
