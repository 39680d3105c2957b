// Frames over a real WebSocket on 127.0.0.1: ws hands back Node Buffers (often slices of larger
// allocations, reassembled from fragments); decoding must still be bit-exact.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { adapterTensorShapes } from '../../../src/federation/protocol/adapterTensors.js';
import { decodeMessage, encodeMessage, tryDecodeMessage } from '../../../src/federation/protocol/codec.js';
import { LAYOUT, randomTensors, sampleMessages, welcomeParams } from './sample.js';

function asBytes(data: RawData): Uint8Array {
  return Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function nextMessage(socket: WebSocket): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data, isBinary) => (isBinary ? resolve(asBytes(data)) : reject(new Error('text frame'))));
    socket.once('error', reject);
  });
}

test('hello → welcome → client_update → update_ack over a loopback WebSocket', { timeout: 10_000 }, async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1 << 22 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  const layout = LAYOUT.map((m) => ({ ...m, in: 512, out: 512 }));
  const update = { ...sampleMessages().client_update, tensors: randomTensors(adapterTensorShapes(layout), 9) };
  const received: string[] = [];

  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const result = tryDecodeMessage(asBytes(data), { receiver: 'coordinator', layout });
      if (!result.ok) {
        socket.send(encodeMessage({ method: 'error', params: { code: result.error.code, message: result.error.message, fatal: false } }));
        return;
      }
      const msg = result.message;
      received.push(msg.method);
      if (msg.method === 'hello') socket.send(encodeMessage({ method: 'welcome', params: welcomeParams() }));
      if (msg.method === 'client_update') {
        update.tensors.forEach((t, i) => assert.deepEqual(msg.tensors[i].data, t.data));
        socket.send(encodeMessage({ method: 'update_ack', params: { round: msg.params.round } }));
      }
    });
  });

  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  try {
    client.send(encodeMessage(sampleMessages().hello));
    const welcome = decodeMessage(await nextMessage(client), { receiver: 'client' });
    assert.equal(welcome.method, 'welcome');

    client.send(encodeMessage(update, { layout }));
    const ack = decodeMessage(await nextMessage(client), { receiver: 'client' });
    assert.deepEqual([ack.method, ack.params], ['update_ack', { round: 2 }]);

    client.send(new Uint8Array([0x46, 0x45, 0x44, 0x58, 9, 0, 0, 0, 0, 0, 0, 0]));
    const error = decodeMessage(await nextMessage(client), { receiver: 'client' });
    assert.equal(error.method === 'error' && error.params.code, 'E_VERSION');
    assert.deepEqual(received, ['hello', 'client_update']);
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
