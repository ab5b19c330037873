// A signaling relay with Portal's semantics, written the usual Socket.IO way. It is the
// comparison peer of `cargo xtask bench signaling`: the same hello / join / signal flow
// as Portal's `/ws`, on Socket.IO 4 with the websocket transport only.
//
//   hello  {name, role}  -> welcome {protocol, peerId, serverTime, iceServers}
//   join   {room}        -> joined {room, peerId, peers: [{id, name, role}]}, and
//                           peerJoined {peer} to the others in the room
//   signal {to, data}    -> signal {from, data} to peer `to` (same room only)
//   leave / disconnect   -> peerLeft {peerId} to the room
//
// Environment: HOST (default 127.0.0.1), PORT (default 3000; 0 picks a free port). The
// first line on stdout is `listening on http://HOST:PORT`.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT ?? 3000);
const PROTOCOL = 1;

const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

function info(socket) {
  return { id: socket.id, name: socket.data.name, role: socket.data.role };
}

function leave(socket) {
  const room = socket.data.room;
  if (room === undefined) return;
  socket.data.room = undefined;
  socket.leave(room);
  socket.to(room).emit('peerLeft', { peerId: socket.id });
}

io.on('connection', (socket) => {
  socket.on('hello', (msg, ack) => {
    if (socket.data.name !== undefined) {
      socket.emit('failure', { code: 'alreadyHello' });
      return;
    }
    const name = typeof msg?.name === 'string' ? msg.name.trim() : '';
    if (name === '' || name.length > 64) {
      socket.emit('failure', { code: 'invalidName' });
      return;
    }
    socket.data.name = name;
    socket.data.role = msg.role === 'kiosk' ? 'kiosk' : 'browser';
    const welcome = {
      protocol: PROTOCOL,
      peerId: socket.id,
      serverTime: Date.now(),
      iceServers: [],
    };
    if (typeof ack === 'function') ack(welcome);
    else socket.emit('welcome', welcome);
  });

  socket.on('join', (msg) => {
    const room = msg?.room;
    if (socket.data.name === undefined) {
      socket.emit('failure', { code: 'helloRequired' });
      return;
    }
    if (typeof room !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(room)) {
      socket.emit('failure', { code: 'invalidRoomName' });
      return;
    }
    if (socket.data.room !== undefined) {
      socket.emit('failure', { code: 'alreadyInRoom' });
      return;
    }
    socket.join(room);
    socket.data.room = room;
    const peers = [];
    for (const id of io.of('/').adapter.rooms.get(room) ?? []) {
      const other = io.sockets.sockets.get(id);
      if (other && other !== socket) peers.push(info(other));
    }
    socket.emit('joined', { room, peerId: socket.id, peers });
    socket.to(room).emit('peerJoined', { peer: info(socket) });
  });

  socket.on('leave', () => leave(socket));

  socket.on('signal', (msg) => {
    const to = msg?.to;
    const target = typeof to === 'string' ? io.sockets.sockets.get(to) : undefined;
    if (socket.data.room === undefined) {
      socket.emit('failure', { code: 'notInRoom' });
      return;
    }
    if (target === undefined || target.data.room !== socket.data.room) {
      socket.emit('failure', { code: 'unknownPeer' });
      return;
    }
    io.to(to).emit('signal', { from: socket.id, data: msg.data });
  });

  socket.on('disconnect', () => leave(socket));
});

function shutdown() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

httpServer.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  console.log(`listening on http://${HOST}:${port}`);
});
