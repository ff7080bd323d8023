import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { Server } from 'socket.io';

import { parseRoomConfig } from '../../shared/config.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import type { JoinReply, Membership } from '../../shared/signaling-protocol.ts';

// A server may announce a newer generation in the same breath as its
// reply to a join: another peer was admitted right after this one. The
// client must end up with the newer membership. It used to start
// listening for memberships only after the reply was applied, kept the
// reply's older generation, and its ring session then connected to a
// generation the others had left, until a 20 s connect timeout (seen as
// an intermittent 30 s stall in the resync and server-restart tests).

const T = { timeout: 15_000 };

function membership(generation: number, ids: string[]): Membership {
  return {
    room: 'main',
    generation,
    members: ids.map((peerId, ringIndex) => ({
      peerId,
      ringIndex,
      kind: 'node',
      backend: 'wasm',
      connected: true,
    })),
  };
}

/**
 * A socket.io server on loopback that answers a join with generation 2
 * and, in the same tick, announces generation 3.
 */
async function eagerServer(): Promise<{ url: string; close(): void }> {
  const http = createServer();
  const io = new Server(http);
  io.on('connection', (socket) => {
    socket.on('join', (_request: unknown, ack: (reply: JoinReply) => void) => {
      ack({
        ok: true,
        peerId: 'peer-aaaaaaaa',
        resumeKey: 'k'.repeat(24),
        config: parseRoomConfig({}),
        membership: membership(2, ['peer-zzzzzzzz', 'peer-aaaaaaaa']),
      });
      socket.emit(
        'membership',
        membership(3, ['peer-zzzzzzzz', 'peer-aaaaaaaa', 'peer-bbbbbbbb']),
      );
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      void io.close();
    },
  };
}

describe('a membership announced with the join reply', () => {
  it('is the one the client holds when it is newer', T, async () => {
    const server = await eagerServer();
    const client = await SignalingClient.connect({
      url: server.url,
      room: 'main',
      kind: 'node',
      backend: 'wasm',
      reconnect: false,
    });
    try {
      assert.equal(client.membership.generation, 3);
      assert.equal(client.membership.members.length, 3);
      assert.equal(client.position?.size, 3);
    } finally {
      client.close();
      server.close();
    }
  });
});
